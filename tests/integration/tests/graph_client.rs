//! The Graph client against the simulator, for each cloud: paging, throttling with and without
//! Retry-After, licence 403, revoked consent, foreign nextLink, truncated JSON, sovereignty.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use chrono::TimeDelta;
use itdr_shared::Api;
use itdr_shared::Cloud;
use itdr_shared::client::{ApiClient, Bucket, Rate, SourceError, Tenant};
use itdr_shared::clock::Clock;
use itdr_shared::source::graph_logs::filter_time;
use itdr_sim::{DelayModel, Faults, GroundTruthStream, SimConfig, TenantSpec, ThrottleConfig};

fn signins_url(
    t: &Tenant,
    version: &str,
    hours: i64,
    now: chrono::DateTime<chrono::Utc>,
) -> url::Url {
    let filter = format!(
        "createdDateTime ge {} and createdDateTime le {}",
        filter_time(now - TimeDelta::hours(hours)),
        filter_time(now)
    );
    ApiClient::url(
        t,
        Api::Graph,
        &format!("{version}/auditLogs/signIns"),
        &[("$filter", filter), ("$top", "200".into())],
    )
    .unwrap()
}

fn tenant(spec: &TenantSpec) -> Tenant {
    Tenant {
        id: spec.tenant_id.clone(),
        cloud: spec.cloud,
    }
}

#[tokio::test]
async fn each_cloud_drains_paged_sign_ins_and_gcc_high_only_touches_us_government_hosts() {
    let mut specs = vec![
        TenantSpec::new(0, Cloud::Global),
        TenantSpec::new(1, Cloud::GccHigh),
        TenantSpec::new(2, Cloud::Dod),
        TenantSpec::new(3, Cloud::Gcc),
    ];
    for s in &mut specs {
        s.signins_per_hour = 400.0;
    }
    let mut cfg = SimConfig::new(5, specs);
    cfg.delay = DelayModel::none();
    let env = common::start(cfg, Rate::REPORTS_PER_TENANT).await;
    let now = env.clock.now();
    for spec in &env.specs {
        let t = tenant(spec);
        let version = if spec.cloud.signins_v1_available() {
            "v1.0"
        } else {
            "beta"
        };
        let url = signins_url(&t, version, 6, now);
        let deadline = now + TimeDelta::hours(2);
        let records = env
            .client
            .get_all(&t, Bucket::Reports, &url, deadline)
            .await
            .unwrap();
        // Ground truth: interactive sign-ins in the window.
        let truth: Vec<_> = env
            .sim
            .ground_truth(&spec.tenant_id, GroundTruthStream::SignIns, now)
            .into_iter()
            .filter(|e| {
                e.event_type == "interactiveUser" && e.event_time >= now - TimeDelta::hours(6)
            })
            .collect();
        assert!(records.len() > 200, "several pages for {}", spec.cloud);
        assert_eq!(
            records.len(),
            truth.len(),
            "{}: every visible record drained",
            spec.cloud
        );
        let mut ids: Vec<&str> = records.iter().filter_map(|r| r["id"].as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), records.len(), "no record twice");
    }
    // Sovereignty: every request for the GCC High tenant went to US Government hosts only.
    let gcch = &env.specs[1].tenant_id;
    let log = env.sim.request_log();
    let hosts: std::collections::BTreeSet<String> = log
        .iter()
        .filter(|r| r.tenant_id.as_deref() == Some(gcch.as_str()))
        .map(|r| r.host.clone())
        .collect();
    assert!(!hosts.is_empty());
    for h in &hosts {
        assert!(Cloud::GccHigh.owns_host(h), "GCC High request went to {h}");
    }
    assert!(hosts.contains("graph.microsoft.us") && hosts.contains("login.microsoftonline.us"));
    env.sim.shutdown().await;
}

#[tokio::test]
async fn throttling_with_and_without_retry_after_is_survived() {
    for retry_after_header in [true, false] {
        let mut cfg = SimConfig::new(9, vec![TenantSpec::new(0, Cloud::Global)]);
        cfg.delay = DelayModel::none();
        cfg.throttle = ThrottleConfig {
            retry_after_header,
            ..ThrottleConfig::default()
        };
        // A pacer that allows more than Microsoft does, so the simulator must throttle.
        let loose = Rate {
            requests: 50,
            window: Duration::from_secs(10),
        };
        let env = common::start(cfg, loose).await;
        let t = tenant(&env.specs[0]);
        let start = env.clock.now();
        let url = signins_url(&t, "v1.0", 1, start);
        let deadline = start + TimeDelta::hours(1);
        for _ in 0..12 {
            env.client.get_page(&t, &url, deadline).await.unwrap();
        }
        let stats = env.client.stats(&t.id);
        assert!(
            stats.throttled > 0,
            "the simulator throttled (header {retry_after_header})"
        );
        assert!(stats.retries >= stats.throttled);
        // Waiting happened on the injected clock: at least one 10 s window passed.
        assert!(env.clock.now() - start >= TimeDelta::seconds(10));
        env.sim.shutdown().await;
    }
}

#[tokio::test]
async fn permanent_and_transient_failures_are_typed() {
    let mut no_p1 = TenantSpec::new(0, Cloud::Global);
    no_p1.has_p1 = false;
    let revoked = TenantSpec::new(1, Cloud::Global);
    let faulty = TenantSpec::new(2, Cloud::GccHigh);
    let mut cfg = SimConfig::new(3, vec![no_p1, revoked, faulty]);
    cfg.delay = DelayModel::none();
    let env = common::start(cfg, Rate::REPORTS_PER_TENANT).await;
    let now = env.clock.now();
    let deadline = now + TimeDelta::hours(1);

    // No P1: the documented 403 becomes LicenceRequired, not a permission error.
    let t = tenant(&env.specs[0]);
    let e = env
        .client
        .get_page(&t, &signins_url(&t, "v1.0", 1, now), deadline)
        .await
        .unwrap_err();
    assert!(matches!(e, SourceError::LicenceRequired), "{e:?}");
    assert!(!e.is_retryable());

    // Revoked consent: tokens come without roles.
    let t = tenant(&env.specs[1]);
    env.sim.revoke_consent(&t.id);
    let e = env
        .client
        .get_page(&t, &signins_url(&t, "v1.0", 1, now), deadline)
        .await
        .unwrap_err();
    assert_eq!(e.kind().as_str(), "consent_revoked", "{e:?}");

    // Truncated JSON once: retried and then read; a foreign nextLink: refused, never followed.
    let t = tenant(&env.specs[2]);
    env.sim.set_faults(
        &t.id,
        Faults {
            truncate_json: 1,
            ..Faults::default()
        },
    );
    let page = env
        .client
        .get_page(&t, &signins_url(&t, "beta", 1, now), deadline)
        .await
        .unwrap();
    assert!(!page.value.is_empty());
    assert!(env.client.stats(&t.id).retries >= 1);
    env.sim.set_faults(
        &t.id,
        Faults {
            foreign_next_link: 1,
            ..Faults::default()
        },
    );
    let before = env.sim.request_log().len();
    let e = env
        .client
        .get_all(
            &t,
            Bucket::Reports,
            &signins_url(&t, "beta", 6, now),
            deadline,
        )
        .await
        .unwrap_err();
    assert!(matches!(e, SourceError::ForeignLink { .. }), "{e:?}");
    let after = env.sim.request_log();
    assert!(
        after[before..]
            .iter()
            .all(|r| Cloud::GccHigh.owns_host(&r.host))
    );

    // 5xx burst with Retry-After: waited out on the clock, then served.
    env.sim.set_faults(
        &t.id,
        Faults {
            http_5xx_burst: 2,
            retry_after_on_5xx: Some(7),
            ..Faults::default()
        },
    );
    let t_before = env.clock.now();
    env.client
        .get_page(
            &t,
            &signins_url(&t, "beta", 1, now),
            deadline + TimeDelta::hours(1),
        )
        .await
        .unwrap();
    assert!(env.clock.now() - t_before >= TimeDelta::seconds(14));

    // A deadline that cannot be met gives up cleanly instead of waiting.
    env.sim.set_faults(
        &t.id,
        Faults {
            http_5xx_burst: 3,
            retry_after_on_5xx: Some(600),
            ..Faults::default()
        },
    );
    let soon = env.clock.now() + TimeDelta::seconds(60);
    let e = env
        .client
        .get_page(&t, &signins_url(&t, "beta", 1, now), soon)
        .await
        .unwrap_err();
    assert!(matches!(e, SourceError::DeadlineExceeded { .. }), "{e:?}");
    env.sim.shutdown().await;
}
