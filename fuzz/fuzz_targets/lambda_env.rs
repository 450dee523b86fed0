//! The Lambda functions' environment (`PollerConfig::from_lookup`,
//! `SchedulerConfig::from_lookup`). Needs the `aws` feature (`make fuzz` passes it).
//!
//! Input: lines `NAME=VALUE` set over a valid poller environment (`NAME=` alone unsets one;
//! a bare `NAME` without `=` sets it to the empty string).
//!
//! Properties: never panics; an accepted poller config serves the binary's own cloud group
//! only (a binary never runs as the other group), its poll tunables validate, its rate is
//! within the per-app limit and its endpoint override, if any, is loopback; parsing is
//! deterministic.
#![no_main]

use std::collections::BTreeMap;

use itdr_shared::CloudGroup;
use itdr_shared::aws::config::{PollerConfig, SchedulerConfig};
use itdr_shared::client::Rate;
use libfuzzer_sys::fuzz_target;

fn base() -> BTreeMap<String, String> {
    [
        ("ITDR_CLOUD_GROUP", "commercial"),
        ("ITDR_SECRET_PREFIX", "itdr/apps"),
        ("ITDR_REGISTRY_TABLE", "itdr-registry"),
        ("ITDR_CURSOR_TABLE", "itdr-cursors"),
        (
            "ITDR_EVENTS_QUEUE_URL",
            "https://sqs.us-east-1.amazonaws.com/123456789012/itdr-events",
        ),
        (
            "ITDR_DEAD_LETTERS_QUEUE_URL",
            "https://sqs.us-east-1.amazonaws.com/123456789012/itdr-dead-letters",
        ),
        ("ITDR_APP_REQUESTS_PER_10S", "60"),
        (
            "ITDR_JOBS_QUEUE_COMMERCIAL_URL",
            "https://sqs.us-east-1.amazonaws.com/123456789012/itdr-jobs.fifo",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut env = base();
    for line in text.lines() {
        match line.split_once('=') {
            Some((k, "")) => {
                env.remove(k);
            }
            Some((k, v)) => {
                env.insert(k.to_string(), v.to_string());
            }
            None => {
                env.insert(line.to_string(), String::new());
            }
        }
    }
    let get = |k: &str| env.get(k).cloned();
    for group in [CloudGroup::Commercial, CloudGroup::UsGov] {
        let first = PollerConfig::from_lookup(group, &get);
        let second = PollerConfig::from_lookup(group, &get);
        assert_eq!(first, second, "not deterministic");
        if let Ok(cfg) = first {
            assert_eq!(cfg.cloud_group, group);
            let configured = env
                .get("ITDR_CLOUD_GROUP")
                .and_then(|g| g.trim().parse::<CloudGroup>().ok());
            assert_eq!(configured, Some(group), "ran as another cloud group");
            assert!(cfg.poll.validate().is_ok());
            assert!(
                (1..=Rate::REPORTS_PER_APP.requests).contains(&cfg.app_requests_per_10s),
                "{}",
                cfg.app_requests_per_10s
            );
            if let Some(o) = &cfg.endpoint_override {
                assert_eq!(o.base().scheme(), "http");
            }
            assert!(!cfg.secret_prefix.starts_with('/') && !cfg.secret_prefix.ends_with('/'));
        }
    }
    let first = SchedulerConfig::from_lookup(&get);
    assert_eq!(
        first,
        SchedulerConfig::from_lookup(&get),
        "not deterministic"
    );
    if let Ok(cfg) = first {
        assert!(cfg.jobs_queue_commercial_url.is_some() || cfg.jobs_queue_usgov_url.is_some());
        assert!((60..=3600).contains(&cfg.slot_secs));
    }
});
