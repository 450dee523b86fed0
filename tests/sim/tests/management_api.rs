//! The simulator's Office 365 Management Activity API over plain HTTP: tokens for each cloud's
//! Management host, subscriptions (start, list, stop, audit log off, AF20022, AF20023,
//! AF20024), the window rules of content listings, `NextPageUri` paging, blobs that become
//! available late and hold older events out of order, expiry and `AF429` throttling.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use chrono::TimeDelta;
use common::{Env, jwt_claims, quiet, start, t0};
use itdr_shared::Cloud;
use itdr_sim::{Faults, GroundTruthStream, TenantSpec};
use serde_json::Value;

async fn mgmt_token(env: &Env, i: usize) -> String {
    let t = &env.cfg.tenants[i];
    let scope = t.cloud.management_scope().unwrap();
    let r = env
        .post_form(
            &format!(
                "https://{}/{}/oauth2/v2.0/token",
                t.cloud.login_host(),
                t.tenant_id
            ),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &t.app_id),
                ("client_secret", &t.client_secret),
                ("scope", &scope),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()["access_token"].as_str().unwrap().to_string()
}

fn feed(t: &TenantSpec, op: &str) -> String {
    format!(
        "https://{}/api/v1.0/{}/activity/feed/{op}",
        t.cloud.management_host().unwrap(),
        t.tenant_id
    )
}

fn code(r: &common::Resp) -> String {
    r.json()["error"]["code"].as_str().unwrap_or("").to_string()
}

#[tokio::test]
async fn tokens_are_issued_per_cloud_for_the_management_host_with_its_own_roles() {
    let specs: Vec<TenantSpec> = [Cloud::Global, Cloud::Gcc, Cloud::GccHigh, Cloud::Dod]
        .iter()
        .enumerate()
        .map(|(i, c)| TenantSpec::new(u32::try_from(i).unwrap(), *c))
        .collect();
    let env = start(quiet(specs)).await;
    for i in 0..4 {
        let t = &env.cfg.tenants[i];
        let tok = mgmt_token(&env, i).await;
        let claims = jwt_claims(&tok);
        assert_eq!(
            claims["aud"],
            format!("https://{}", t.cloud.management_host().unwrap())
        );
        assert_eq!(claims["roles"], serde_json::json!(["ActivityFeed.Read"]));
        let r = env.get(&feed(t, "subscriptions/list"), Some(&tok)).await;
        assert_eq!(r.status, 200, "{}: {}", t.cloud, r.text);
        // A Graph token is not accepted here, nor a management token on another cloud's host.
        let graph = env.token(i).await;
        let r = env.get(&feed(t, "subscriptions/list"), Some(&graph)).await;
        assert_eq!(r.status, 401);
    }
    let commercial = mgmt_token(&env, 0).await;
    let gcch = &env.cfg.tenants[2];
    let r = env
        .get(
            &format!(
                "https://manage.office365.us/api/v1.0/{}/activity/feed/subscriptions/list",
                gcch.tenant_id
            ),
            Some(&commercial),
        )
        .await;
    assert_eq!(r.status, 401);
    // Without ActivityFeed.Read: AF10001.
    env.sim
        .set_management_roles(&env.cfg.tenants[1].tenant_id, vec!["Other.Read".into()]);
    let tok = mgmt_token(&env, 1).await;
    let r = env
        .get(&feed(&env.cfg.tenants[1], "subscriptions/list"), Some(&tok))
        .await;
    assert_eq!((r.status, code(&r)), (403, "AF10001".to_string()));
}

#[tokio::test]
async fn subscriptions_start_list_stop_and_the_audit_log_off_answer() {
    let mut a = TenantSpec::new(0, Cloud::Global);
    a.subscribed = false;
    let mut off = TenantSpec::new(1, Cloud::Global);
    off.audit_log_enabled = false;
    let env = start(quiet(vec![a.clone(), off.clone()])).await;
    let tok = mgmt_token(&env, 0).await;
    let url = |op: &str| format!("{}?contentType=Audit.Exchange", feed(&a, op));
    // No subscription: listing content is AF20022.
    let r = env
        .get(
            &format!(
                "{}?contentType=Audit.Exchange",
                feed(&a, "subscriptions/content")
            ),
            Some(&tok),
        )
        .await;
    assert_eq!((r.status, code(&r)), (400, "AF20022".into()));
    let r = env.post_bearer(&url("subscriptions/start"), &tok).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["status"], "enabled");
    let r = env.post_bearer(&url("subscriptions/start"), &tok).await;
    assert_eq!(code(&r), "AF20024", "a repeated start");
    let r = env.get(&feed(&a, "subscriptions/list"), Some(&tok)).await;
    assert_eq!(r.json()[0]["contentType"], "Audit.Exchange");
    assert_eq!(r.json()[0]["status"], "enabled");
    env.sim.disable_subscription(&a.tenant_id, "Audit.Exchange");
    let r = env
        .get(
            &format!(
                "{}?contentType=Audit.Exchange",
                feed(&a, "subscriptions/content")
            ),
            Some(&tok),
        )
        .await;
    assert_eq!(code(&r), "AF20023");
    assert_eq!(
        code(&env.post_bearer(&url("subscriptions/start"), &tok).await),
        "AF20023"
    );
    let r = env.post_bearer(&url("subscriptions/stop"), &tok).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        code(&env.post_bearer(&url("subscriptions/stop"), &tok).await),
        "AF20022"
    );
    let r = env
        .post_bearer(
            &format!("{}?contentType=Audit.Nope", feed(&a, "subscriptions/start")),
            &tok,
        )
        .await;
    assert_eq!(code(&r), "AF20020");
    // Audit log off: the odd shape Microsoft's troubleshooting guide shows.
    let tok = mgmt_token(&env, 1).await;
    let r = env
        .post_bearer(
            &format!(
                "{}?contentType=Audit.Exchange",
                feed(&off, "subscriptions/start")
            ),
            &tok,
        )
        .await;
    assert_eq!(r.status, 400);
    let e = &r.json()["error"];
    assert!(
        e["code"]
            .as_str()
            .unwrap()
            .starts_with("StartSubscription [CorrId=")
    );
    assert!(e["message"].as_str().unwrap().ends_with(&format!(
        "DataServiceException: Tenant {} does not exist.",
        off.tenant_id
    )));
}

#[tokio::test]
async fn listings_follow_the_window_rules_page_with_next_page_uri_and_serve_late_content() {
    let mut spec = TenantSpec::new(0, Cloud::GccHigh);
    spec.exchange_per_hour = 400.0;
    let mut cfg = quiet(vec![spec.clone()]);
    cfg.management.page_size = 5;
    let env = start(cfg).await;
    let tok = mgmt_token(&env, 0).await;
    let base = feed(&spec, "subscriptions/content");
    let q =
        |s: &str, e: &str| format!("{base}?contentType=Audit.Exchange&startTime={s}&endTime={e}");
    let fmt = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let now = t0();
    // The window rules.
    for (url, want) in [
        (q(&fmt(now - TimeDelta::hours(25)), &fmt(now)), "AF20055"),
        (q(&fmt(now), &fmt(now - TimeDelta::hours(1))), "AF20055"),
        (
            q(
                &fmt(now - TimeDelta::days(8)),
                &fmt(now - TimeDelta::days(8) + TimeDelta::hours(1)),
            ),
            "AF20055",
        ),
        (
            format!("{base}?contentType=Audit.Exchange&startTime={}", fmt(now)),
            "AF20030",
        ),
        (q("2026-01-15T10:00:00Z", "2026-01-15T11:00:00Z"), "AF20030"),
        (
            format!(
                "{}&nextPage=garbage",
                q(&fmt(now - TimeDelta::hours(2)), &fmt(now))
            ),
            "AF20031",
        ),
    ] {
        let r = env.get(&url, Some(&tok)).await;
        assert_eq!((r.status, code(&r)), (400, want.to_string()), "{url}");
    }
    // Paging: a NextPageUri on /api/v1/ until the window is exhausted; the three formats work.
    let first = q(&fmt(now - TimeDelta::hours(6)), &fmt(now));
    let mut next = Some(first);
    let mut items: Vec<Value> = Vec::new();
    let mut pages = 0;
    while let Some(u) = next {
        let r = env.get(&u, Some(&tok)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        items.extend(r.json().as_array().unwrap().iter().cloned());
        next = r.header("NextPageUri");
        if let Some(n) = &next {
            assert!(n.starts_with("https://manage.office365.us/api/v1/"), "{n}");
            assert!(n.contains("nextPage="));
        }
        pages += 1;
    }
    assert!(
        pages > 2 && items.len() > 10,
        "{pages} pages, {} items",
        items.len()
    );
    let created: Vec<&str> = items
        .iter()
        .map(|i| i["contentCreated"].as_str().unwrap())
        .collect();
    assert!(
        created.windows(2).all(|w| w[0] <= w[1]),
        "in the order they became available"
    );
    let r = env
        .get(&q("2026-01-15", "2026-01-15T12:00"), Some(&tok))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // Blobs: records hold events older than their blob, in no order.
    let mut late = 0;
    let mut unordered = false;
    for item in items.iter().take(8) {
        assert_eq!(item["contentType"], "Audit.Exchange");
        let uri = item["contentUri"].as_str().unwrap();
        assert!(
            uri.starts_with("https://manage.office365.us/api/v1.0/"),
            "{uri}"
        );
        let r = env.get(uri, Some(&tok)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let recs = r.json();
        let times: Vec<&str> = recs
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["CreationTime"].as_str().unwrap())
            .collect();
        unordered |= times.windows(2).any(|w| w[0] > w[1]);
        let c = &item["contentCreated"].as_str().unwrap()[..19];
        late += times.iter().filter(|t| **t < c).count();
    }
    assert!(late > 0 && unordered);
    // Content made available later is listed later: the ground truth knows when.
    let truth = env
        .sim
        .ground_truth(&spec.tenant_id, GroundTruthStream::AuditExchange, now)
        .into_iter()
        .filter(|e| e.content_created.unwrap() >= now - TimeDelta::hours(6))
        .count();
    assert!(truth > 0);
    // Expired content and throttling (AF429 with HTTP 403, no Retry-After).
    let uri = items[0]["contentUri"].as_str().unwrap().to_string();
    env.sim.set_faults(
        &spec.tenant_id,
        Faults {
            expired_content: 1,
            af429_burst: 1,
            ..Faults::default()
        },
    );
    let r = env.get(&uri, Some(&tok)).await;
    assert_eq!((r.status, code(&r)), (403, "AF429".to_string()));
    assert!(r.header("retry-after").is_none());
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Method=GetBlob")
    );
    let r = env.get(&uri, Some(&tok)).await;
    assert_eq!(code(&r), "AF20051");
    env.clock.advance(Duration::from_secs(8 * 86_400));
    let tok = mgmt_token(&env, 0).await;
    let r = env.get(&uri, Some(&tok)).await;
    assert_eq!(code(&r), "AF20051", "older than 7 days");
    let r = env
        .get(&uri.replace("$audit_exchange$", "$audit_nope$"), Some(&tok))
        .await;
    assert_eq!(code(&r), "AF20052");
}
