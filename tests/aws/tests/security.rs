//! Security of the AWS pipeline against moto and the simulator: the apps' client secrets are
//! distinctive canaries in Secrets Manager; every log line (at `trace`, every crate), every
//! Embedded Metric Format document, every message on the events and dead-letter queues, every
//! item of the registry and cursor tables and every batch response is searched for them, and
//! for every access token the simulator issued. The pollers run every stream (logs and
//! inventory) through the error paths: throttling with an absurd `Retry-After`, 5xx, truncated
//! and non-JSON bodies, an expired token mid-paging, a foreign nextLink, revoked consent, and a
//! tenant whose stored secret is wrong.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use itdr_aws_tests::{
    AwsFixture, CURSOR_TABLE, LogCapture, REGISTRY_TABLE, SECRET_PREFIX, sqs_event,
};
use itdr_shared::aws::dynamo::DynamoRegistry;
use itdr_shared::aws::handler::{PollerContext, SchedulerContext, handle_jobs, handle_schedule};
use itdr_shared::clock::{Clock, ManualClock};
use itdr_shared::store::{Health, TenantRecord, TenantRegistry};
use itdr_shared::telemetry::{Event, Telemetry};
use itdr_shared::{Cloud, CloudGroup, Stream};
use itdr_sim::{Faults, SimConfig, Simulator, TenantSpec};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 12, 0, 0).single().unwrap()
}

/// A value nobody would write by accident, unique to this run.
fn canary(label: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let mixed = (nanos as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!("Cnry~{label}~{nanos:x}Q{}Z{mixed:x}", std::process::id())
}

/// The Lambda's telemetry (log line + EMF document), with the EMF documents kept.
#[derive(Debug, Default)]
struct CapturedMetrics {
    group: Option<CloudGroup>,
    lines: Mutex<Vec<String>>,
}

impl Telemetry for CapturedMetrics {
    fn emit(&self, event: &Event<'_>, at: DateTime<Utc>) {
        event.log();
        let group = self.group.unwrap_or(CloudGroup::Commercial);
        self.lines.lock().unwrap().push(event.emf_line(group, at));
    }
}

async fn scan(f: &AwsFixture, table: &str) -> String {
    let mut all = String::new();
    let mut start = None;
    loop {
        let out = f
            .ddb
            .scan()
            .table_name(table)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        for item in out.items() {
            all.push_str(&format!("{item:?}\n"));
        }
        match out.last_evaluated_key() {
            Some(k) if !k.is_empty() => start = Some(k.clone()),
            _ => break,
        }
    }
    all
}

/// Current-thread runtime: the log capture is this thread's subscriber, and every task runs here.
#[tokio::test]
async fn no_secret_or_token_reaches_a_log_metric_queue_or_table() {
    let logs = LogCapture::default();
    let writer = logs.clone();
    let _g = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .finish(),
    );
    let commercial_secret = canary("commercial");
    let usgov_secret = canary("usgov");
    let wrong_secret = canary("wrong");
    let mut specs = vec![
        TenantSpec::new(0, Cloud::Global),
        TenantSpec::new(1, Cloud::Gcc),
        TenantSpec::new(2, Cloud::GccHigh),
        TenantSpec::new(3, Cloud::Global),
    ];
    for s in &mut specs {
        s.client_secret = match s.cloud.group() {
            CloudGroup::Commercial => commercial_secret.clone(),
            CloudGroup::UsGov => usgov_secret.clone(),
        };
        s.audits_per_hour = 60.0;
    }
    let f = AwsFixture::start().await;
    let clock = ManualClock::new(t0());
    let bind: SocketAddr = ([127, 0, 0, 1], 0).into();
    let sim = Simulator::start(
        SimConfig::new(13, specs.clone()),
        Arc::new(clock.clone()),
        bind,
    )
    .await
    .unwrap();
    let reg = DynamoRegistry::new(f.ddb.clone(), REGISTRY_TABLE);
    for (i, s) in specs.iter().enumerate() {
        let app_ref = format!("app-{i}");
        reg.insert(&TenantRecord {
            tenant_id: s.tenant_id.clone(),
            domain: Some(s.domain.clone()),
            org: Some(format!("Org {i}")),
            cloud: s.cloud,
            app_ref: app_ref.clone(),
            streams: Stream::EVERY.to_vec(),
            include_noninteractive: true,
            enabled: true,
            health: Health::default(),
            created_at: t0(),
        })
        .await
        .unwrap();
        // The last tenant's stored secret is wrong: the token endpoint refuses it.
        let secret = if i == 3 {
            &wrong_secret
        } else {
            &s.client_secret
        };
        f.put_secret(
            &format!("{SECRET_PREFIX}/{}/{app_ref}", s.cloud.group()),
            &serde_json::json!({"client_id": s.app_id, "client_secret": secret}).to_string(),
        )
        .await;
    }
    sim.set_faults(
        &specs[0].tenant_id,
        Faults {
            after_requests: 2,
            http_429_burst: 2,
            retry_after_on_429: Some("1e20".into()),
            http_5xx_burst: 1,
            truncate_json: 1,
            non_json_body: 1,
            expired_token: 1,
            foreign_next_link: 1,
            ..Faults::default()
        },
    );
    // Consent revoked in GCC: its Graph requests are refused.
    sim.set_faults(
        &specs[1].tenant_id,
        Faults {
            consent_revoked_requests: 1000,
            ..Faults::default()
        },
    );

    let poll = serde_json::json!({"cursor": {"initial_lookback_secs": 3600}});
    let mut pollers = Vec::new();
    let mut metrics = Vec::new();
    for group in [CloudGroup::Commercial, CloudGroup::UsGov] {
        let cfg = f.poller_config(group, 48, &poll, &sim.base_url());
        let mut ctx = PollerContext::from_config(&cfg, &f.sdk, Arc::new(clock.clone())).unwrap();
        let m = Arc::new(CapturedMetrics {
            group: Some(group),
            ..CapturedMetrics::default()
        });
        ctx.env.telemetry = m.clone();
        pollers.push((group, ctx));
        metrics.push(m);
    }
    let sched =
        SchedulerContext::from_config(&f.scheduler_config(), &f.sdk, Arc::new(clock.clone()));
    let mut responses = String::new();
    for slot in 0..2 {
        let at = clock.now();
        let mut event: serde_json::Value =
            serde_json::from_str(include_str!("../events/scheduler-eventbridge.json")).unwrap();
        event["time"] = serde_json::json!(at.to_rfc3339());
        handle_schedule(event, &sched).await.unwrap();
        for (group, ctx) in &pollers {
            let queue = match group {
                CloudGroup::Commercial => &f.queues.jobs_commercial,
                CloudGroup::UsGov => &f.queues.jobs_usgov,
            };
            let jobs = f.drain(queue).await;
            assert!(!jobs.is_empty(), "{group} slot {slot}");
            let r = handle_jobs(sqs_event(queue, &jobs), ctx, Duration::from_secs(600)).await;
            responses.push_str(&format!("{r:?}\n"));
        }
        clock.advance(Duration::from_secs(300));
    }

    let events: Vec<String> = f
        .drain(&f.queues.events)
        .await
        .iter()
        .map(|m| format!("{:?} {:?}", m.body(), m.message_attributes()))
        .collect();
    assert!(events.len() > 5, "events were delivered");
    let dead: Vec<String> = f
        .drain(&f.queues.dead_letters)
        .await
        .iter()
        .map(|m| format!("{:?} {:?}", m.body(), m.message_attributes()))
        .collect();
    let registry = scan(&f, REGISTRY_TABLE).await;
    let cursors = scan(&f, CURSOR_TABLE).await;
    // The error paths really ran and were recorded.
    let health = |i: usize| reg.get(&specs[i].tenant_id);
    let wrong = health(3).await.unwrap().unwrap().health;
    assert!(wrong.last_error_kind.is_some(), "{wrong:?}");
    let revoked = health(1).await.unwrap().unwrap().health;
    assert!(revoked.last_error_kind.is_some(), "{revoked:?}");
    let emf: String = metrics
        .iter()
        .flat_map(|m| m.lines.lock().unwrap().clone())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(emf.contains("\"_aws\""), "EMF documents were captured");
    let log_text = logs.text();
    assert!(log_text.contains("TRACE"), "trace logs were captured");

    let mut needles: Vec<(String, String)> = Vec::new();
    for secret in [&commercial_secret, &usgov_secret, &wrong_secret] {
        needles.push(("a client secret".into(), secret.clone()));
        let random = secret.rsplit('~').next().unwrap();
        for i in 0..=random.len() - 10 {
            needles.push((
                "part of a client secret".into(),
                random[i..i + 10].to_string(),
            ));
        }
    }
    let tokens = sim.issued_tokens();
    assert!(tokens.len() >= 3, "{} tokens", tokens.len());
    for t in &tokens {
        needles.push(("an access token".into(), t.clone()));
        needles.push((
            "an access token's signature".into(),
            t.rsplit('.').next().unwrap().to_string(),
        ));
    }
    let places = [
        ("the logs", log_text),
        ("the metrics", emf),
        ("the events queue", events.join("\n")),
        ("the dead-letter queue", dead.join("\n")),
        ("the registry table", registry),
        ("the cursor table", cursors),
        ("the batch responses", responses),
    ];
    for (place, hay) in &places {
        for (what, n) in &needles {
            assert!(!hay.contains(n.as_str()), "{what} in {place}");
        }
    }
    for (place, hay) in &places[1..] {
        assert!(!hay.contains("eyJ"), "a JWT in {place}");
    }
    sim.shutdown().await;
}
