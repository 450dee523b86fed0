//! The Identity Security Assessment against the simulator: a P1 tenant with busy sign-ins and
//! a tenant without P1, each snapshotted and polled like the pipeline does, then assessed
//! from the OCSF events delivered. Their reports validate against the repository's JSON
//! Schema, their findings against OCSF 1.8.0, and they differ where their data differ.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use chrono::TimeDelta;
use itdr_shared::assess::{self, FindingKind, InputBuilder, Report, Section, TenantInfo};
use itdr_shared::client::Rate;
use itdr_shared::clock::Clock;
use itdr_shared::embedded::{MemoryDeadLetters, MemorySink, SqliteStore};
use itdr_shared::poll::{PollConfig, PollContext, PollJob, poll};
use itdr_shared::{Cloud, Stream};
use itdr_sim::{SimConfig, TenantSpec};
use serde_json::Value;

fn report_schema() -> jsonschema::Validator {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/schemas/assessment-report.schema.json");
    let schema = common::ocsf::read_json(&path);
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap()
}

fn schema_errors(v: &jsonschema::Validator, doc: &Value) -> Vec<String> {
    v.iter_errors(doc)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect()
}

struct Tenant {
    spec: TenantSpec,
    report: Report,
    /// The simulator's own directory of the tenant (the ground truth).
    users: Vec<itdr_sim::InvUser>,
}

async fn assess_all(specs: Vec<TenantSpec>) -> Vec<Tenant> {
    let env = common::start(SimConfig::new(13, specs), Rate::REPORTS_PER_TENANT).await;
    let store = SqliteStore::in_memory().unwrap();
    let sink = Arc::new(MemorySink::new());
    let ctx = PollContext {
        client: env.client.clone(),
        cursors: Arc::new(store.clone()),
        sink: sink.clone(),
        dead_letters: Arc::new(MemoryDeadLetters::new()),
        config: PollConfig::default().validated().unwrap(),
        hook: None,
    };
    for spec in &env.specs {
        let job = |stream| PollJob {
            tenant_id: spec.tenant_id.clone(),
            cloud: Cloud::Global,
            stream,
            include_noninteractive: false,
            retention_days: None,
        };
        // Sign-ins first (refused without P1), then every inventory snapshot to completion.
        let started = env.clock.now();
        let _ = poll(
            &ctx,
            &job(Stream::Signins),
            started + TimeDelta::minutes(14),
        )
        .await;
        for stream in Stream::INVENTORY {
            let mut done = false;
            for _ in 0..500 {
                let started = env.clock.now();
                let out = poll(&ctx, &job(stream), started + TimeDelta::minutes(14))
                    .await
                    .unwrap_or_else(|e| panic!("{stream}: {e}"));
                if out.pass_complete {
                    done = true;
                    break;
                }
                env.clock.advance_to(started + TimeDelta::minutes(5));
            }
            assert!(done, "{stream} never completed");
        }
    }
    let events = sink.events();
    let mut out = Vec::new();
    for spec in &env.specs {
        let mut b = InputBuilder::new(&spec.tenant_id);
        for e in &events {
            b.push(e);
        }
        let degraded = assess::input::degradations(&store, &spec.tenant_id)
            .await
            .unwrap();
        let input = b.finish(degraded);
        let tenant = TenantInfo {
            id: spec.tenant_id.clone(),
            domain: Some(spec.domain.clone()),
            org: None,
        };
        let report = assess::assess(&input, tenant, env.clock.now(), None);
        out.push(Tenant {
            spec: spec.clone(),
            report,
            users: env.sim.inventory(&spec.tenant_id).unwrap().users,
        });
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p1_and_no_p1_tenants_get_valid_reports_that_differ_where_their_data_differ() {
    // Sign-in volume stays modest: the first poll reads the simulator's whole history.
    let mut busy = TenantSpec::new(0, Cloud::Global);
    busy.signins_per_hour = 150.0;
    let mut no_p1 = TenantSpec::new(1, Cloud::Global);
    no_p1.has_p1 = false;
    let tenants = assess_all(vec![busy, no_p1]).await;
    let schema = report_schema();
    for t in &tenants {
        let json = serde_json::to_value(&t.report).unwrap();
        let errs = schema_errors(&schema, &json);
        assert!(errs.is_empty(), "{}: {errs:?}", t.spec.domain);
        let back: Report = serde_json::from_value(json).unwrap();
        assert_eq!(back, t.report);
        for e in assess::ocsf::finding_events(&t.report, Cloud::Global) {
            let errs = common::ocsf::all_errors(&e);
            assert!(errs.is_empty(), "{errs:?}\n{e:#}");
        }
        assert_eq!(t.report.sections.len(), Section::ALL.len());
        assert!(t.report.inventory.users > 0);
        assert!(!t.report.apps.is_empty());
    }
    let (p1, np) = (&tenants[0].report, &tenants[1].report);

    // Sign-in based parts: measured with P1, "not assessed" without.
    let n = p1.coverage.sign_ins.expect("P1 tenant has sign-in logs");
    assert!(n > 100, "{n} sign-ins");
    assert!(!p1.charts.sign_ins_by_protocol.is_empty());
    let legacy = p1.section(Section::LegacyAuth).unwrap();
    assert!(legacy.not_assessed.is_empty(), "{legacy:?}");
    assert!(p1.coverage.mfa_registration && p1.coverage.last_sign_in);
    assert_eq!(np.coverage.sign_ins, None);
    assert!(np.charts.sign_ins_by_protocol.is_empty());
    assert!(np.charts.mfa_coverage.is_empty());
    let kinds = |r: &Report, s: Section| -> Vec<FindingKind> {
        r.section(s)
            .unwrap()
            .not_assessed
            .iter()
            .map(|n| n.kind)
            .collect()
    };
    assert_eq!(
        kinds(np, Section::LegacyAuth),
        vec![FindingKind::LegacySignIns]
    );
    assert!(kinds(np, Section::Mfa).contains(&FindingKind::NoMfa));
    assert!(
        !np.coverage.degraded.is_empty(),
        "the store's degradations are shown"
    );
    let html = assess::html::render(np);
    assert!(html.contains("no-sign-in-logs"));

    // The simulator's P1 tenant has legacy sign-ins (about 2 % of them): they are found, with
    // their users, and the protocol chart counts them.
    if let Some(f) = p1.finding(FindingKind::LegacySignIns) {
        let legacy_chart: u64 = p1
            .charts
            .sign_ins_by_protocol
            .iter()
            .filter(|(k, _)| assess::is_legacy_client(k))
            .map(|(_, n)| n)
            .sum();
        assert!(
            legacy_chart >= f.count,
            "{legacy_chart} sign-ins, {} users",
            f.count
        );
        assert!(!f.evidence.is_empty());
    } else {
        panic!("no legacy sign-ins found among {n}");
    }

    // Disabled-but-licensed, checked against the simulator's own directory.
    for t in &tenants {
        let expected = t
            .users
            .iter()
            .filter(|u| {
                !u.enabled
                    && !u.licences.is_empty()
                    && !matches!(u.purpose, Some("shared" | "room" | "equipment"))
            })
            .count() as u64;
        let got = t
            .report
            .finding(FindingKind::DisabledLicensed)
            .map_or(0, |f| f.count);
        assert_eq!(got, expected, "{}", t.spec.domain);
    }
}
