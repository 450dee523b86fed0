//! The operator commands on an AWS deployment's DynamoDB registry (`[registry] kind =
//! "dynamodb"`), against moto and the simulator. Built with `--features aws` (`make test` runs
//! it); without the feature, the DynamoDB registry is refused with a clear error.
#![cfg(feature = "aws")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::Output;
use std::sync::Arc;

use chrono::Utc;
use itdr_aws_tests::{AwsFixture, CURSOR_TABLE, REGISTRY_TABLE};
use itdr_shared::Stream;
use itdr_shared::aws::dynamo::{DynamoCursorStore, DynamoRegistry};
use itdr_shared::clock::{ScaledClock, SharedClock};
use itdr_shared::store::{CursorStore, TenantRegistry};

/// The US Government group's cursor table (its own, as the stack creates it).
const USGOV_CURSOR_TABLE: &str = "itdr-cursors-usgov";
use itdr_sim::{SimConfig, Simulator, onboarding_scenarios};

mod common;

use common::text;

async fn itdr(dir: &Path, args: &[&str]) -> Output {
    common::itdr(dir, "aws.toml", args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_are_onboarded_into_the_dynamodb_registry() {
    let aws = AwsFixture::start().await;
    aws.create_table(USGOV_CURSOR_TABLE, &["tenant_id", "stream"])
        .await;
    let scenarios: Vec<_> = onboarding_scenarios()
        .into_iter()
        .filter(|s| ["healthy", "gcc-high", "no-p1"].contains(&s.name))
        .collect();
    let clock: SharedClock = Arc::new(ScaledClock::new(Utc::now(), 1.0));
    let bind: SocketAddr = ([127, 0, 0, 1], 0).into();
    let sim = Simulator::start(
        SimConfig::new(9, scenarios.iter().map(|s| s.spec.clone()).collect()),
        clock,
        bind,
    )
    .await
    .unwrap();
    let spec = |name: &str| {
        scenarios
            .iter()
            .find(|s| s.name == name)
            .unwrap()
            .spec
            .clone()
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("c.secret"), spec("healthy").client_secret).unwrap();
    std::fs::write(dir.path().join("g.secret"), spec("gcc-high").client_secret).unwrap();
    std::fs::write(
        dir.path().join("aws.toml"),
        format!(
            "endpoint_override = \"{}\"\n[management_activity]\npublisher_id = \"3f2a9c61-0b7e-4d25-9a18-c6e5d4f3b2a1\"\n[store]\npath = \"unused.db\"\n[output]\nevents = \"e\"\ndead_letters = \"d\"\n\
             [registry]\nkind = \"dynamodb\"\ntenants_table = \"{REGISTRY_TABLE}\"\ncursors_table = \"{CURSOR_TABLE}\"\nusgov_cursors_table = \"{USGOV_CURSOR_TABLE}\"\naws_endpoint = \"{}\"\n\
             [apps.commercial]\nclient_id = \"{}\"\nclient_secret_file = \"c.secret\"\n\
             [apps.usgov]\nclient_id = \"{}\"\nclient_secret_file = \"g.secret\"\n",
            sim.base_url(),
            aws.moto.url,
            spec("healthy").app_id,
            spec("gcc-high").app_id
        ),
    )
    .unwrap();
    let registry = DynamoRegistry::new(aws.ddb.clone(), REGISTRY_TABLE);
    let d = dir.path();

    let out = itdr(
        d,
        &[
            "tenants",
            "add",
            "--tenant",
            &spec("gcc-high").domain,
            "--org",
            "Capitol",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let gov = registry
        .get(&spec("gcc-high").tenant_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(gov.cloud, itdr_shared::Cloud::GccHigh);
    assert_eq!(gov.app_ref, "usgov");
    assert_eq!(gov.org.as_deref(), Some("Capitol"));

    let out = itdr(
        d,
        &[
            "tenants",
            "add",
            "--tenant",
            &spec("healthy").domain,
            "--org",
            "capitol",
        ],
    )
    .await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("already mapped"),
        "{}",
        text(&out.stderr)
    );
    let out = itdr(
        d,
        &[
            "tenants",
            "add",
            "--tenant",
            &spec("healthy").domain,
            "--org",
            "Able Moose",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = itdr(
        d,
        &[
            "tenants",
            "add",
            "--tenant",
            &spec("no-p1").domain,
            "--org",
            "Dandelion",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));

    // Preflight and reauthorize read and write the same registry.
    let out = itdr(
        d,
        &["preflight", "--tenant", &spec("gcc-high").domain, "--json"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let out = itdr(
        d,
        &["tenants", "reauthorize", "--tenant", &spec("no-p1").domain],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let free = registry
        .get(&spec("no-p1").tenant_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(free.health.state.as_str(), "licence_missing");
    assert_eq!(free.health.retention_days, Some(7));

    let out = itdr(d, &["tenants", "list", "--json"]).await;
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(all.as_array().unwrap().len(), 3);

    let out = itdr(
        d,
        &[
            "tenants",
            "remove",
            "--tenant",
            &spec("healthy").tenant_id,
            "--purge",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        registry
            .get(&spec("healthy").tenant_id)
            .await
            .unwrap()
            .is_none()
    );

    // A US Government tenant's cursors are purged from its group's table, and only there.
    let gov_id = spec("gcc-high").tenant_id;
    let usgov = DynamoCursorStore::new(aws.ddb.clone(), USGOV_CURSOR_TABLE);
    let commercial = DynamoCursorStore::new(aws.ddb.clone(), CURSOR_TABLE);
    let doc = serde_json::json!({"marker": 1});
    usgov
        .commit(&gov_id, Stream::Signins, None, &doc)
        .await
        .unwrap();
    commercial
        .commit(&gov_id, Stream::Signins, None, &doc)
        .await
        .unwrap();
    let out = itdr(d, &["tenants", "remove", "--tenant", &gov_id, "--purge"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        usgov
            .load(&gov_id, Stream::Signins)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        commercial
            .load(&gov_id, Stream::Signins)
            .await
            .unwrap()
            .is_some(),
        "the commercial table is not the US Government tenant's"
    );

    let out = itdr(d, &["tenants", "--db", "x.db", "list"]).await;
    assert!(
        !out.status.success(),
        "--db contradicts a DynamoDB registry"
    );
    sim.shutdown().await;
}

/// The organization's contact for the emailed assessment reports: set at `tenants add`,
/// changed or removed by `tenants remap --contact`, kept by a remap of the organization, and
/// refused (before anything is registered) when it is not an address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_contact_address_is_set_at_add_and_changed_by_remap() {
    let aws = AwsFixture::start().await;
    let scenarios: Vec<_> = onboarding_scenarios()
        .into_iter()
        .filter(|s| s.name == "gcc-high")
        .collect();
    let spec = scenarios[0].spec.clone();
    let clock: SharedClock = Arc::new(ScaledClock::new(Utc::now(), 1.0));
    let bind: SocketAddr = ([127, 0, 0, 1], 0).into();
    let sim = Simulator::start(SimConfig::new(9, vec![spec.clone()]), clock, bind)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("g.secret"), &spec.client_secret).unwrap();
    std::fs::write(
        dir.path().join("aws.toml"),
        format!(
            "endpoint_override = \"{}\"\n[store]\npath = \"unused.db\"\n[output]\nevents = \"e\"\ndead_letters = \"d\"\n\
             [registry]\nkind = \"dynamodb\"\ntenants_table = \"{REGISTRY_TABLE}\"\ncursors_table = \"{CURSOR_TABLE}\"\naws_endpoint = \"{}\"\n\
             [apps.usgov]\nclient_id = \"{}\"\nclient_secret_file = \"g.secret\"\n",
            sim.base_url(),
            aws.moto.url,
            spec.app_id
        ),
    )
    .unwrap();
    let registry = DynamoRegistry::new(aws.ddb.clone(), REGISTRY_TABLE);
    let d = dir.path();
    let id = spec.tenant_id.as_str();
    let contact = |registry: DynamoRegistry| async move {
        registry
            .report_meta(id)
            .await
            .unwrap()
            .and_then(|m| m.contact_email)
    };

    let add = |c: &'static str| {
        [
            "tenants",
            "add",
            "--tenant",
            spec.domain.as_str(),
            "--org",
            "Capitol",
            "--contact",
            c,
        ]
    };
    let out = itdr(d, &add("security@capitol.example\r\nBcc: x@y.example")).await;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--contact"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        registry.get(id).await.unwrap().is_none(),
        "nothing registered"
    );

    let out = itdr(d, &add("Security@Capitol.Example")).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        contact(registry.clone()).await.as_deref(),
        Some("Security@capitol.example")
    );

    let remap = |args: &[&str]| {
        let mut v = vec!["tenants", "remap", "--tenant", id];
        v.extend_from_slice(args);
        v.into_iter().map(str::to_string).collect::<Vec<_>>()
    };
    let run_remap = |args: Vec<String>| {
        let d = d.to_path_buf();
        async move {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            itdr(&d, &refs).await
        }
    };
    let out = run_remap(remap(&["--org", "Capitol Hill"])).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        registry.get(id).await.unwrap().unwrap().org.as_deref(),
        Some("Capitol Hill")
    );
    assert_eq!(
        contact(registry.clone()).await.as_deref(),
        Some("Security@capitol.example"),
        "a whole-record update keeps the contact"
    );
    let out = run_remap(remap(&["--contact", "soc@capitol.example"])).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        contact(registry.clone()).await.as_deref(),
        Some("soc@capitol.example")
    );
    let out = run_remap(remap(&["--contact", "none"])).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(contact(registry.clone()).await, None);
    let out = run_remap(remap(&[])).await;
    assert!(!out.status.success(), "remap needs --org or --contact");
}
