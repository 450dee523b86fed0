//! HTTP tests of the simulator: tokens, Graph paging and filtering, ingestion delay,
//! throttling, licences, faults, OpenID configuration and determinism. The test certificate
//! and keys in `fixtures/` were generated for these tests only.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use common::*;
use itdr_shared::Cloud;
use itdr_sim::{
    DelayModel, Faults, GroundTruthStream, SimConfig, TenantSpec, ThrottleConfig,
    cert_thumbprint_sha256,
};
use serde_json::{Value, json};

const CERT: &[u8] = include_bytes!("fixtures/cert.der");
const KEY: &[u8] = include_bytes!("fixtures/key.pk8.der");
const OTHER_KEY: &[u8] = include_bytes!("fixtures/other_key.pk8.der");

fn signins_url(host: &str, version: &str, query: &str) -> String {
    format!("https://{host}/{version}/auditLogs/signIns?{query}")
}

#[tokio::test]
async fn token_carries_roles_and_host_header_routes() {
    let env = start(quiet(vec![TenantSpec::new(0, Cloud::Global)])).await;
    let t = &env.cfg.tenants[0];
    let r = env
        .token_resp(t, Cloud::Global, "login.microsoftonline.com")
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["token_type"], "Bearer");
    let n = v["expires_in"].as_i64().unwrap();
    assert!((3600..=5399).contains(&n), "{n}");
    assert_eq!(v["ext_expires_in"].as_i64(), Some(n));
    let tok = v["access_token"].as_str().unwrap();
    let c = jwt_claims(tok);
    assert_eq!(c["aud"], "https://graph.microsoft.com");
    assert_eq!(c["tid"], t.tenant_id.as_str());
    assert_eq!(c["appid"], t.app_id.as_str());
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), n);
    assert_eq!(c["iat"].as_i64(), Some(t0().timestamp()));
    let roles: Vec<&str> = c["roles"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(roles.contains(&"AuditLog.Read.All") && roles.contains(&"Directory.Read.All"));
    // By domain too.
    let url = format!(
        "https://login.microsoftonline.com/{}/oauth2/v2.0/token",
        t.domain
    );
    let r = env
        .post_form(
            &url,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &t.app_id),
                ("client_secret", &t.client_secret),
                ("scope", "https://graph.microsoft.com/.default"),
            ],
        )
        .await;
    assert_eq!(r.status, 200);
    // Unknown host: refused and counted; the reqwest Host header was kept (routing works).
    let r = env
        .get(
            "https://graph.evil.example/v1.0/auditLogs/signIns",
            Some(tok),
        )
        .await;
    assert_eq!(r.status, 421);
    let c = env.sim.counters();
    assert_eq!(c.unknown_host, 1);
    assert_eq!(c.tokens_issued, 2);
    // The log never holds the secret or the token.
    for l in env.sim.request_log() {
        let s = format!("{l:?}");
        assert!(!s.contains(&t.client_secret) && !s.contains(tok), "{s}");
    }
    assert!(
        env.sim
            .request_log()
            .iter()
            .any(|l| l.host == "graph.evil.example" && l.status == 421)
    );
}

fn assert_aad(r: &Resp, status: u16, error: &str, code: u64, host: &str) {
    assert_eq!(r.status, status, "{}", r.text);
    let v = r.json();
    assert_eq!(v["error"], error, "{v}");
    assert_eq!(v["error_codes"], json!([code]));
    let d = v["error_description"].as_str().unwrap();
    assert!(d.starts_with(&format!("AADSTS{code}:")), "{d}");
    assert!(d.contains("\r\nTrace ID: "));
    assert_eq!(v["error_uri"], format!("https://{host}/error?code={code}"));
    for k in ["timestamp", "trace_id", "correlation_id"] {
        assert!(v[k].is_string(), "{k}");
    }
}

#[tokio::test]
async fn token_errors_match_the_identity_platform() {
    let env = start(quiet(vec![
        TenantSpec::new(0, Cloud::Global),
        TenantSpec::new(1, Cloud::GccHigh),
    ]))
    .await;
    let g = env.cfg.tenants[0].clone();
    let h = env.cfg.tenants[1].clone();
    let com = "login.microsoftonline.com";
    let mut wrong = g.clone();
    wrong.client_secret = "nope".into();
    assert_aad(
        &env.token_resp(&wrong, Cloud::Global, com).await,
        401,
        "invalid_client",
        7000215,
        com,
    );
    // GCC High tenant asked at the worldwide login host, and the reverse.
    assert_aad(
        &env.token_resp(&h, Cloud::GccHigh, com).await,
        400,
        "invalid_request",
        90002,
        com,
    );
    assert_aad(
        &env.token_resp(&g, Cloud::Global, "login.microsoftonline.us")
            .await,
        400,
        "invalid_request",
        90002,
        "login.microsoftonline.us",
    );
    // A scope for another cloud's Graph.
    assert_aad(
        &env.token_resp(&g, Cloud::GccHigh, com).await,
        400,
        "invalid_resource",
        500011,
        com,
    );
    assert_eq!(
        env.token_resp(&h, Cloud::GccHigh, "login.microsoftonline.us")
            .await
            .status,
        200
    );
    env.sim.expire_secret(&g.tenant_id);
    assert_aad(
        &env.token_resp(&g, Cloud::Global, com).await,
        401,
        "invalid_client",
        7000222,
        com,
    );
    env.sim.remove_service_principal(&g.tenant_id);
    assert_aad(
        &env.token_resp(&g, Cloud::Global, com).await,
        400,
        "unauthorized_client",
        700016,
        com,
    );
    let url = format!("https://{com}/{}/oauth2/v2.0/token", g.tenant_id);
    let r = env.post_form(&url, &[("client_id", &g.app_id)]).await;
    assert_aad(&r, 400, "invalid_request", 900144, com);
}

#[tokio::test]
async fn cross_cloud_tokens_and_missing_roles_are_refused() {
    let env = start(quiet(vec![
        TenantSpec::new(0, Cloud::Global),
        TenantSpec::new(1, Cloud::GccHigh),
    ]))
    .await;
    let tok = env.token(0).await;
    let r = env
        .get(&signins_url("graph.microsoft.us", "beta", ""), Some(&tok))
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["code"], "InvalidAuthenticationToken");
    let inner = &r.json()["error"]["innerError"];
    assert!(
        inner["date"].is_string()
            && inner["request-id"].is_string()
            && inner["client-request-id"].is_string()
    );
    let us = env.token(1).await;
    assert_eq!(
        env.get(
            &signins_url("graph.microsoft.us", "beta", "$top=5"),
            Some(&us)
        )
        .await
        .status,
        200
    );
    assert_eq!(
        env.get(&signins_url("graph.microsoft.com", "beta", ""), None)
            .await
            .status,
        401
    );
    // Tampered token.
    let mut bad = tok.clone();
    bad.push('x');
    assert_eq!(
        env.get(&signins_url("graph.microsoft.com", "v1.0", ""), Some(&bad))
            .await
            .status,
        401
    );
    // Expired token (sim clock).
    env.clock.advance(Duration::from_secs(5400));
    let r = env
        .get(&signins_url("graph.microsoft.com", "v1.0", ""), Some(&tok))
        .await;
    assert_eq!(r.status, 401);
    // Consent revoked: token without roles, Graph 401.
    let tid = env.cfg.tenants[0].tenant_id.clone();
    env.sim.revoke_consent(&tid);
    let tok = env.token(0).await;
    assert!(jwt_claims(&tok).get("roles").is_none());
    let r = env
        .get(&signins_url("graph.microsoft.com", "v1.0", ""), Some(&tok))
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.json()["error"]["message"],
        "Either scp or roles claim need to be present in the token."
    );
    // Roles without AuditLog.Read.All: 403.
    env.sim.restore_consent(&tid);
    env.sim.set_roles(&tid, vec!["Directory.Read.All".into()]);
    let tok = env.token(0).await;
    let r = env
        .get(&signins_url("graph.microsoft.com", "v1.0", ""), Some(&tok))
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"]["code"], "Authorization_RequestDenied");
    assert_eq!(
        r.json()["error"]["message"],
        "Insufficient privileges to complete the operation."
    );
    // subscribedSkus only needs Directory.Read.All.
    assert_eq!(
        env.get(
            "https://graph.microsoft.com/v1.0/subscribedSkus",
            Some(&tok)
        )
        .await
        .status,
        200
    );
}

fn sign_assertion(key: &[u8], header: Value, claims: Value) -> String {
    let h = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap());
    let c = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
    let msg = format!("{h}.{c}");
    let kp = ring::signature::RsaKeyPair::from_pkcs8(key).unwrap();
    let mut sig = vec![0u8; kp.public().modulus_len()];
    kp.sign(
        &ring::signature::RSA_PSS_SHA256,
        &ring::rand::SystemRandom::new(),
        msg.as_bytes(),
        &mut sig,
    )
    .unwrap();
    format!("{msg}.{}", URL_SAFE_NO_PAD.encode(sig))
}

#[tokio::test]
async fn certificate_assertions_are_verified() {
    let mut t = TenantSpec::new(3, Cloud::Dod);
    t.cert_der = Some(CERT.to_vec());
    let env = start(quiet(vec![t.clone()])).await;
    let host = "login.microsoftonline.us";
    let aud = Cloud::Dod.token_url(&t.tenant_id);
    let now = t0().timestamp();
    let header = json!({"alg": "PS256", "typ": "JWT", "x5t#S256": cert_thumbprint_sha256(CERT)});
    let claims = |aud: &str, nbf: i64, exp: i64| json!({"aud": aud, "iss": t.app_id, "sub": t.app_id, "jti": "1", "nbf": nbf, "iat": nbf, "exp": exp});
    let send = |assertion: String| {
        let env = &env;
        let t = &t;
        let aud = aud.clone();
        async move {
            let _ = aud;
            let url = format!("https://{host}/{}/oauth2/v2.0/token", t.tenant_id);
            env.post_form(
                &url,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", &t.app_id),
                    ("scope", "https://dod-graph.microsoft.us/.default"),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", &assertion),
                ],
            )
            .await
        }
    };
    let ok = send(sign_assertion(
        KEY,
        header.clone(),
        claims(&aud, now, now + 600),
    ))
    .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(
        jwt_claims(ok.json()["access_token"].as_str().unwrap())["aud"],
        "https://dod-graph.microsoft.us"
    );
    assert_aad(
        &send(sign_assertion(
            OTHER_KEY,
            header.clone(),
            claims(&aud, now, now + 600),
        ))
        .await,
        401,
        "invalid_client",
        700027,
        host,
    );
    let wrong_aud = Cloud::Global.token_url(&t.tenant_id);
    assert_aad(
        &send(sign_assertion(
            KEY,
            header.clone(),
            claims(&wrong_aud, now, now + 600),
        ))
        .await,
        401,
        "invalid_client",
        700027,
        host,
    );
    assert_aad(
        &send(sign_assertion(
            KEY,
            header.clone(),
            claims(&aud, now - 900, now - 300),
        ))
        .await,
        401,
        "invalid_client",
        700024,
        host,
    );
    let bad_thumb = json!({"alg": "PS256", "typ": "JWT", "x5t#S256": "AAAA"});
    assert_aad(
        &send(sign_assertion(KEY, bad_thumb, claims(&aud, now, now + 600))).await,
        401,
        "invalid_client",
        700027,
        host,
    );
}

fn ids_of(pages: &[Value]) -> Vec<(String, String)> {
    pages
        .iter()
        .flat_map(|p| p["value"].as_array().unwrap().iter())
        .map(|v| {
            let t = v
                .get("createdDateTime")
                .or_else(|| v.get("activityDateTime"))
                .unwrap();
            (
                v["id"].as_str().unwrap().to_string(),
                t.as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn paging_drains_the_window_newest_first() {
    let mut t = TenantSpec::new(0, Cloud::Global);
    t.signins_per_hour = 400.0;
    let env = start(quiet(vec![t.clone()])).await;
    let tok = env.token(0).await;
    let from = t0() - chrono::Duration::hours(8);
    let filter = format!(
        "createdDateTime ge {} and createdDateTime le {}",
        ts(from),
        ts(t0())
    );
    let url = signins_url(
        "graph.microsoft.com",
        "v1.0",
        &format!("$filter={}&$top=50", enc(&filter)),
    );
    let pages = env.drain(&url, &tok).await;
    assert!(pages.len() > 10);
    let got = ids_of(&pages);
    let truth: Vec<_> = env
        .sim
        .ground_truth(&t.tenant_id, GroundTruthStream::SignIns, t0())
        .into_iter()
        .filter(|e| {
            e.event_type == "interactiveUser" && e.event_time >= from && e.visible_at <= t0()
        })
        .collect();
    assert_eq!(got.len(), truth.len());
    let got_ids: HashSet<_> = got.iter().map(|g| g.0.clone()).collect();
    assert_eq!(got_ids.len(), got.len(), "duplicates");
    assert!(truth.iter().all(|e| got_ids.contains(&e.id)));
    assert!(got.windows(2).all(|w| w[0].1 >= w[1].1), "newest first");
    assert_eq!(got[0].0, truth[0].id);
    for p in &pages[..pages.len() - 1] {
        let next = p["@odata.nextLink"].as_str().unwrap();
        assert!(
            next.starts_with("https://graph.microsoft.com/v1.0/auditLogs/signIns?$filter="),
            "{next}"
        );
        assert!(next.contains("&$top=50&$skiptoken="));
        assert!(
            !next.contains("2026-01-15T0") || next.contains("ge+2026"),
            "position not in clear"
        );
    }
    assert_eq!(
        pages[0]["@odata.context"],
        "https://graph.microsoft.com/v1.0/$metadata#auditLogs/signIns"
    );
    assert!(pages.last().unwrap().get("@odata.nextLink").is_none());
    // A 400 page was never needed; tampering with a skiptoken is refused.
    let next = pages[0]["@odata.nextLink"].as_str().unwrap();
    let mut tampered = next.to_string();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let r = env.get(&tampered, Some(&tok)).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.json()["error"]["code"], "BadRequest");
    // A skiptoken moved to another query is refused too.
    let tok_part = next.split("$skiptoken=").nth(1).unwrap();
    let moved = signins_url(
        "graph.microsoft.com",
        "v1.0",
        &format!("$top=50&$skiptoken={tok_part}"),
    );
    assert_eq!(env.get(&moved, Some(&tok)).await.status, 400);
}

#[tokio::test]
async fn empty_pages_with_next_links_occur_and_are_followable() {
    let mut t = TenantSpec::new(0, Cloud::Global);
    t.signins_per_hour = 400.0;
    let env = start(quiet(vec![t.clone()])).await;
    let tok = env.token(0).await;
    let url = signins_url(
        "graph.microsoft.com",
        "beta",
        "$top=5&$filter=signInEventTypes%2Fany(t%3A+t+ne+%27interactiveUser%27)",
    );
    let pages = env.drain(&url, &tok).await;
    let empties = pages
        .iter()
        .filter(|p| p["value"].as_array().unwrap().is_empty() && p.get("@odata.nextLink").is_some())
        .count();
    assert!(empties > 0, "no empty page in {} pages", pages.len());
    let got = ids_of(&pages);
    let truth = env
        .sim
        .ground_truth(&t.tenant_id, GroundTruthStream::SignIns, t0())
        .into_iter()
        .filter(|e| e.event_type != "interactiveUser")
        .count();
    assert_eq!(got.len(), truth);
}

#[tokio::test]
async fn query_validation_like_graph() {
    let env = start(quiet(vec![TenantSpec::new(0, Cloud::Global)])).await;
    let tok = env.token(0).await;
    let g = "graph.microsoft.com";
    for (version, q) in [
        ("v1.0", "$top=1001".to_string()),
        ("v1.0", "$top=0".to_string()),
        (
            "v1.0",
            format!("$filter={}", enc("createdDateTime gt 2026-01-15T00:00:00Z")),
        ),
        (
            "v1.0",
            format!("$filter={}", enc("createdDateTime lt 2026-01-15T00:00:00Z")),
        ),
        (
            "v1.0",
            format!(
                "$filter={}",
                enc("signInEventTypes/any(t: t eq 'nonInteractiveUser')")
            ),
        ),
        (
            "beta",
            format!("$filter={}", enc("createdDateTime ge banana")),
        ),
        (
            "beta",
            format!("$filter={}", enc("startswith(userPrincipalName,'a')")),
        ),
    ] {
        let r = env.get(&signins_url(g, version, &q), Some(&tok)).await;
        assert_eq!(r.status, 400, "{version} {q}: {}", r.text);
        assert_eq!(r.json()["error"]["code"], "BadRequest");
    }
    let r = env
        .get(
            &signins_url(
                g,
                "v1.0",
                &format!(
                    "$filter={}",
                    enc("signInEventTypes/any(t: t eq 'nonInteractiveUser')")
                ),
            ),
            Some(&tok),
        )
        .await;
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Could not find a property named 'signInEventTypes'")
    );
    // Audits filter on activityDateTime, not createdDateTime.
    let au = format!(
        "https://{g}/v1.0/auditLogs/directoryAudits?$filter={}",
        enc("createdDateTime ge 2026-01-15T00:00:00Z")
    );
    assert_eq!(env.get(&au, Some(&tok)).await.status, 400);
    // Spaces as %20 and fractional seconds are fine; $top=1000 is fine.
    let q = "$top=1000&$filter=createdDateTime%20ge%202026-01-15T10:00:00.1234567Z%20and%20createdDateTime%20le%202026-01-15T11:00:00Z";
    assert_eq!(
        env.get(&signins_url(g, "v1.0", q), Some(&tok)).await.status,
        200
    );
}

#[tokio::test]
async fn v1_and_beta_event_types() {
    let env = start(quiet(vec![TenantSpec::new(0, Cloud::Global)])).await;
    let tok = env.token(0).await;
    let tid = env.cfg.tenants[0].tenant_id.clone();
    let truth = env.sim.ground_truth(&tid, GroundTruthStream::SignIns, t0());
    let count = |ty: &str| truth.iter().filter(|e| e.event_type == ty).count();
    let g = "graph.microsoft.com";
    let v1 = env.drain(&signins_url(g, "v1.0", ""), &tok).await;
    let recs: Vec<&Value> = v1
        .iter()
        .flat_map(|p| p["value"].as_array().unwrap())
        .collect();
    assert_eq!(recs.len(), count("interactiveUser"));
    for r in &recs {
        assert_eq!(r["isInteractive"], true);
        assert!(r.get("signInEventTypes").is_none() && r.get("authenticationDetails").is_none());
        for k in [
            "id",
            "createdDateTime",
            "userPrincipalName",
            "ipAddress",
            "status",
            "location",
            "deviceDetail",
            "appliedConditionalAccessPolicies",
            "riskLevelDuringSignIn",
        ] {
            assert!(r.get(k).is_some(), "{k}");
        }
        assert_eq!(r["riskLevelDuringSignIn"], "hidden", "P2 absent");
        let upn = r["userPrincipalName"].as_str().unwrap();
        assert_eq!(upn, upn.to_lowercase());
        assert!(!upn.contains("#ext#"));
    }
    let beta_default = env.drain(&signins_url(g, "beta", ""), &tok).await;
    assert_eq!(ids_of(&beta_default).len(), count("interactiveUser"));
    for (ty, n) in [
        ("nonInteractiveUser", 1usize),
        ("servicePrincipal", 2),
        ("managedIdentity", 3),
    ] {
        let q = format!(
            "$filter={}",
            enc(&format!("signInEventTypes/any(t: t eq '{ty}')"))
        );
        let pages = env.drain(&signins_url(g, "beta", &q), &tok).await;
        let recs: Vec<&Value> = pages
            .iter()
            .flat_map(|p| p["value"].as_array().unwrap())
            .collect();
        assert_eq!(recs.len(), count(ty), "{ty}");
        for r in recs {
            assert_eq!(r["signInEventTypes"], json!([ty]));
            if n >= 2 {
                assert!(
                    r["servicePrincipalId"]
                        .as_str()
                        .is_some_and(|s| !s.is_empty())
                );
            }
        }
    }
    // Shares roughly as documented.
    let total = truth.len() as f64;
    let inter = count("interactiveUser") as f64 / total;
    assert!((0.6..0.8).contains(&inter), "{inter}");
    // Failures and MFA details exist.
    let beta_recs: Vec<&Value> = beta_default
        .iter()
        .flat_map(|p| p["value"].as_array().unwrap())
        .collect();
    assert!(beta_recs.iter().any(|r| r["status"]["errorCode"] == 50126));
    assert!(
        beta_recs
            .iter()
            .any(|r| r["authenticationRequirement"] == "multiFactorAuthentication")
    );
}

#[tokio::test]
async fn ingestion_delay_hides_events_until_visible() {
    let mut cfg = quiet(vec![TenantSpec::new(0, Cloud::Global)]);
    cfg.delay = DelayModel::fixed(Duration::from_secs(600));
    let env = start(cfg).await;
    let tid = env.cfg.tenants[0].tenant_id.clone();
    let filter = format!(
        "createdDateTime ge {}",
        ts(t0() - chrono::Duration::hours(1))
    );
    let url = format!(
        "https://graph.microsoft.com/v1.0/auditLogs/directoryAudits?$filter={}",
        enc(&filter.replace("createdDateTime", "activityDateTime"))
    );
    let signins = signins_url(
        "graph.microsoft.com",
        "v1.0",
        &format!("$filter={}", enc(&filter)),
    );
    let tok = env.token(0).await;
    let visible = |now| {
        env.sim
            .ground_truth(&tid, GroundTruthStream::SignIns, now)
            .into_iter()
            .filter(|e| {
                e.event_type == "interactiveUser"
                    && e.event_time >= t0() - chrono::Duration::hours(1)
                    && e.visible_at <= now
            })
            .count()
    };
    let before = ids_of(&env.drain(&signins, &tok).await).len();
    assert_eq!(before, visible(t0()));
    let hidden = env
        .sim
        .ground_truth(&tid, GroundTruthStream::SignIns, t0())
        .into_iter()
        .filter(|e| e.event_type == "interactiveUser" && e.visible_at > t0())
        .count();
    assert!(hidden > 0, "the last 10 minutes are not visible yet");
    env.clock.advance(Duration::from_secs(600));
    let after = ids_of(&env.drain(&signins, &tok).await).len();
    assert_eq!(after, visible(env.sim.now()));
    assert!(after >= before + hidden);
    let audits = env.drain(&url, &tok).await;
    assert!(
        ids_of(&audits)
            .iter()
            .all(|(id, _)| id.starts_with("Directory_"))
    );
}

#[tokio::test]
async fn throttling_per_tenant_with_retry_after() {
    let mut cfg = quiet(vec![
        TenantSpec::new(0, Cloud::Global),
        TenantSpec::new(1, Cloud::Global),
    ]);
    cfg.throttle = ThrottleConfig::default();
    let env = start(cfg).await;
    let tok = env.token(0).await;
    let tok1 = env.token(1).await;
    let url = signins_url("graph.microsoft.com", "v1.0", "$top=1");
    for _ in 0..5 {
        assert_eq!(env.get(&url, Some(&tok)).await.status, 200);
    }
    env.clock.advance(Duration::from_secs(3));
    let r = env.get(&url, Some(&tok)).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.json()["error"]["code"], "TooManyRequests");
    assert_eq!(r.header("retry-after").as_deref(), Some("7"));
    // Another tenant of the same app is unaffected.
    assert_eq!(env.get(&url, Some(&tok1)).await.status, 200);
    env.clock.advance(Duration::from_secs(7));
    assert_eq!(env.get(&url, Some(&tok)).await.status, 200);
    let c = env.sim.counters();
    assert_eq!(
        c.throttled_tenant_level.get(&env.cfg.tenants[0].tenant_id),
        Some(&1)
    );
    assert_eq!(c.throttled_app_level, 0);
}

#[tokio::test]
async fn throttling_per_app_across_tenants() {
    let tenants: Vec<TenantSpec> = (0..26)
        .map(|i| {
            let mut t = TenantSpec::new(i, Cloud::Global);
            t.signins_per_hour = 5.0;
            t
        })
        .collect();
    let mut cfg = quiet(tenants);
    cfg.throttle = ThrottleConfig {
        retry_after_header: false,
        ..ThrottleConfig::default()
    };
    let env = start(cfg).await;
    let mut toks = Vec::new();
    for i in 0..26 {
        toks.push(env.token(i).await);
    }
    let url = signins_url("graph.microsoft.com", "v1.0", "$top=1");
    let mut statuses = Vec::new();
    for tok in &toks {
        for _ in 0..5 {
            let r = env.get(&url, Some(tok)).await;
            if r.status == 429 {
                assert!(r.header("retry-after").is_none());
            }
            statuses.push(r.status);
        }
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 122);
    let c = env.sim.counters();
    assert_eq!(c.throttled_app_level, 130 - 122);
    assert!(c.throttled_tenant_level.is_empty());
    env.clock.advance(Duration::from_secs(10));
    assert_eq!(env.get(&url, Some(&toks[0])).await.status, 200);
}

#[tokio::test]
async fn licences_and_posture() {
    let mut t = TenantSpec::new(0, Cloud::Gcc);
    t.has_p2 = true;
    let env = start(quiet(vec![t.clone()])).await;
    let tok = env.token(0).await;
    let g = "graph.microsoft.com";
    let skus = env
        .get(&format!("https://{g}/v1.0/subscribedSkus"), Some(&tok))
        .await
        .json();
    let parts: Vec<&str> = skus["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["skuPartNumber"].as_str())
        .collect();
    assert!(parts.contains(&"AAD_PREMIUM_P2"), "{parts:?}");
    let plans = skus.to_string();
    assert!(plans.contains("EXCHANGE_S_ENTERPRISE"));
    let reg = env
        .get(
            &format!("https://{g}/v1.0/reports/authenticationMethods/userRegistrationDetails"),
            Some(&tok),
        )
        .await;
    assert_eq!(reg.status, 200);
    let users = reg.json()["value"].as_array().unwrap().clone();
    assert_eq!(users.len(), 40);
    assert!(
        users
            .iter()
            .any(|u| u["isAdmin"] == true && u["isMfaRegistered"] == true)
    );
    assert!(
        users.iter().any(|u| u["userType"] == "guest"
            && u["userPrincipalName"].as_str().unwrap().contains("#EXT#"))
    );
    // P2: risk not hidden.
    let recs = env.drain(&signins_url(g, "v1.0", ""), &tok).await;
    assert!(ids_of(&recs).len() > 10);
    assert!(
        recs.iter()
            .flat_map(|p| p["value"].as_array().unwrap())
            .all(|r| r["riskLevelDuringSignIn"] != "hidden")
    );
    env.sim.set_p1(&t.tenant_id, false);
    env.sim.set_p2(&t.tenant_id, false);
    for path in [
        "v1.0/auditLogs/signIns",
        "beta/auditLogs/signIns",
        "v1.0/reports/authenticationMethods/userRegistrationDetails",
    ] {
        let r = env.get(&format!("https://{g}/{path}"), Some(&tok)).await;
        assert_eq!(r.status, 403, "{path}");
        assert_eq!(
            r.json()["error"]["code"],
            "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
        );
        assert_eq!(
            r.json()["error"]["message"],
            "Neither tenant is B2C or tenant doesn't have premium license"
        );
    }
    // Directory audits stay available (7-day retention without P1).
    assert_eq!(
        env.get(
            &format!("https://{g}/v1.0/auditLogs/directoryAudits"),
            Some(&tok)
        )
        .await
        .status,
        200
    );
    let skus = env
        .get(&format!("https://{g}/v1.0/subscribedSkus"), Some(&tok))
        .await
        .json()
        .to_string();
    assert!(!skus.contains("AAD_PREMIUM"));
}

#[tokio::test]
async fn faults_are_injected_and_consumed() {
    let env = start(quiet(vec![TenantSpec::new(0, Cloud::Global)])).await;
    let tid = env.cfg.tenants[0].tenant_id.clone();
    let tok = env.token(0).await;
    let url = signins_url("graph.microsoft.com", "v1.0", "$top=10");
    env.sim.set_faults(
        &tid,
        Faults {
            http_5xx_burst: 2,
            retry_after_on_5xx: Some(7),
            ..Faults::default()
        },
    );
    for _ in 0..2 {
        let r = env.get(&url, Some(&tok)).await;
        assert_eq!(r.status, 503);
        assert_eq!(r.json()["error"]["code"], "serviceNotAvailable");
        assert_eq!(r.header("retry-after").as_deref(), Some("7"));
    }
    assert_eq!(env.get(&url, Some(&tok)).await.status, 200);
    assert_eq!(env.sim.counters().injected_5xx, 2);
    env.sim.set_faults(
        &tid,
        Faults {
            truncate_json: 1,
            ..Faults::default()
        },
    );
    let r = env.get(&url, Some(&tok)).await;
    assert_eq!(r.status, 200);
    assert!(serde_json::from_str::<Value>(&r.text).is_err());
    assert!(serde_json::from_str::<Value>(&env.get(&url, Some(&tok)).await.text).is_ok());
    env.sim.set_faults(
        &tid,
        Faults {
            foreign_next_link: 1,
            ..Faults::default()
        },
    );
    let v = env.get(&url, Some(&tok)).await.json();
    assert!(
        v["@odata.nextLink"]
            .as_str()
            .unwrap()
            .starts_with("https://graph.evil.example/v1.0/auditLogs/signIns?")
    );
    let v = env.get(&url, Some(&tok)).await.json();
    assert!(
        v["@odata.nextLink"]
            .as_str()
            .unwrap()
            .starts_with("https://graph.microsoft.com/")
    );
    env.sim.set_faults(
        &tid,
        Faults {
            slow_ms: 300,
            ..Faults::default()
        },
    );
    let started = Instant::now();
    assert_eq!(env.get(&url, Some(&tok)).await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn chaos_faults_strike_after_the_given_requests_and_are_consumed() {
    let env = start(quiet(vec![TenantSpec::new(0, Cloud::Global)])).await;
    let tid = env.cfg.tenants[0].tenant_id.clone();
    let tok = env.token(0).await;
    let url = signins_url("graph.microsoft.com", "v1.0", "$top=10");
    env.sim.set_faults(
        &tid,
        Faults {
            after_requests: 1,
            http_429_burst: 1,
            retry_after_on_429: Some("1e20".into()),
            http_5xx_burst: 1,
            http_5xx_status: Some(504),
            expired_token: 1,
            consent_revoked_requests: 1,
            non_json_body: 1,
            ..Faults::default()
        },
    );
    // The first request is answered normally, then each fault strikes once, in order.
    assert_eq!(env.get(&url, Some(&tok)).await.status, 200);
    let r = env.get(&url, Some(&tok)).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after").as_deref(), Some("1e20"));
    let r = env.get(&url, Some(&tok)).await;
    assert_eq!(r.status, 504);
    assert_eq!(r.json()["error"]["code"], "gatewayTimeout");
    let r = env.get(&url, Some(&tok)).await;
    assert_eq!(r.status, 401);
    assert!(r.text.contains("token is expired"));
    let r = env.get(&url, Some(&tok)).await;
    assert_eq!(r.status, 401);
    assert!(r.text.contains("roles claim"));
    let r = env.get(&url, Some(&tok)).await;
    assert_eq!(r.status, 200);
    assert!(r.text.starts_with("<html>"));
    assert!(serde_json::from_str::<Value>(&env.get(&url, Some(&tok)).await.text).is_ok());
    let left = env.sim.faults(&tid).unwrap();
    assert_eq!(
        left.after_requests
            + left.http_429_burst
            + left.http_5xx_burst
            + left.expired_token
            + left.consent_revoked_requests
            + left.non_json_body,
        0
    );
}

#[tokio::test]
async fn openid_configuration_classifies_clouds() {
    let tenants = vec![
        TenantSpec::new(0, Cloud::Global),
        TenantSpec::new(1, Cloud::Gcc),
        TenantSpec::new(2, Cloud::GccHigh),
        TenantSpec::new(3, Cloud::Dod),
        TenantSpec::new(4, Cloud::China),
    ];
    let env = start(quiet(tenants.clone())).await;
    let doc =
        |host: &str, t: &str| format!("https://{host}/{t}/v2.0/.well-known/openid-configuration");
    let com = "login.microsoftonline.com";
    for t in &tenants[..4] {
        let r = env.get(&doc(com, &t.domain), None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let v = r.json();
        let cloud = Cloud::from_openid_scopes(
            v["tenant_region_scope"].as_str(),
            v["tenant_region_sub_scope"].as_str(),
            v["cloud_instance_name"].as_str(),
        );
        assert_eq!(cloud, t.cloud);
        assert_eq!(
            v["issuer"],
            format!("https://{}/{}/v2.0", t.cloud.login_host(), t.tenant_id)
        );
        assert_eq!(v["token_endpoint"], t.cloud.token_url(&t.tenant_id));
        assert_eq!(v["msgraph_host"], t.cloud.graph_host());
    }
    assert_eq!(
        env.get(&doc(com, &tenants[2].tenant_id), None).await.json()["tenant_region_sub_scope"],
        "DODCON"
    );
    assert!(
        env.get(&doc(com, &tenants[0].tenant_id), None)
            .await
            .json()
            .get("tenant_region_sub_scope")
            .is_none()
    );
    let r = env.get(&doc(com, &tenants[4].tenant_id), None).await;
    assert_aad(&r, 400, "invalid_tenant", 90002, com);
    let r = env
        .get(&doc("login.chinacloudapi.cn", &tenants[4].tenant_id), None)
        .await;
    assert_eq!(
        r.json()["cloud_instance_name"],
        "partner.microsoftonline.cn"
    );
    assert_eq!(
        env.get(&doc(com, "nobody.onmicrosoft.com"), None)
            .await
            .status,
        400
    );
}

async fn first_ids(seed: u64) -> (Vec<String>, Vec<String>) {
    let mut cfg = quiet(vec![TenantSpec::new(0, Cloud::Global)]);
    cfg.seed = seed;
    let env = start(cfg).await;
    let tok = env.token(0).await;
    let s = env
        .get(
            &signins_url("graph.microsoft.com", "beta", "$top=20"),
            Some(&tok),
        )
        .await
        .json();
    let a = env
        .get(
            "https://graph.microsoft.com/v1.0/auditLogs/directoryAudits?$top=20",
            Some(&tok),
        )
        .await
        .json();
    let ids = |v: &Value| {
        v["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let out = (ids(&s), ids(&a));
    env.sim.shutdown().await;
    out
}

#[tokio::test]
async fn same_seed_same_data() {
    let a = first_ids(7).await;
    let b = first_ids(7).await;
    let c = first_ids(8).await;
    assert_eq!(a, b);
    assert_eq!(a.0.len(), 20);
    assert_eq!(a.1.len(), 20);
    assert_ne!(a.0, c.0);
    assert!(a.1.iter().all(|id| id.starts_with("Directory_")));
}

#[tokio::test]
async fn directory_audits_have_the_documented_shape() {
    let mut t = TenantSpec::new(0, Cloud::GccHigh);
    t.audits_per_hour = 60.0;
    let env = start(quiet(vec![t.clone()])).await;
    let tok = env.token(0).await;
    let pages = env
        .drain(
            "https://graph.microsoft.us/v1.0/auditLogs/directoryAudits?$top=200",
            &tok,
        )
        .await;
    let recs: Vec<&Value> = pages
        .iter()
        .flat_map(|p| p["value"].as_array().unwrap())
        .collect();
    let truth = env.sim.ground_truth(
        &t.tenant_id,
        GroundTruthStream::DirectoryAudits,
        Utc::now().max(t0()),
    );
    assert_eq!(
        recs.len(),
        truth.iter().filter(|e| e.visible_at <= t0()).count()
    );
    let cats: HashSet<&str> = recs.iter().filter_map(|r| r["category"].as_str()).collect();
    for c in ["UserManagement", "GroupManagement"] {
        assert!(cats.contains(c), "{cats:?}");
    }
    for r in &recs {
        for k in [
            "id",
            "category",
            "correlationId",
            "result",
            "resultReason",
            "activityDisplayName",
            "activityDateTime",
            "loggedByService",
            "operationType",
            "initiatedBy",
            "targetResources",
            "additionalDetails",
        ] {
            assert!(r.get(k).is_some(), "{k}");
        }
        assert!(r["initiatedBy"]["user"].is_object() != r["initiatedBy"]["app"].is_object());
    }
    assert!(recs.iter().any(|r| r["initiatedBy"]["app"].is_object()));
}

#[tokio::test]
async fn start_refuses_bad_config_and_non_loopback() {
    let t = TenantSpec::new(0, Cloud::Global);
    let cfg = SimConfig::new(1, vec![t.clone(), t]);
    let clock = std::sync::Arc::new(itdr_shared::clock::ManualClock::new(t0()));
    assert!(
        itdr_sim::Simulator::start(cfg, clock.clone(), "127.0.0.1:0".parse().unwrap())
            .await
            .is_err()
    );
    let cfg = SimConfig::new(1, vec![]);
    assert!(
        itdr_sim::Simulator::start(cfg, clock, "0.0.0.0:0".parse().unwrap())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn busy_tenant_is_served_quickly() {
    let mut t = TenantSpec::new(0, Cloud::Global);
    t.signins_per_hour = 5000.0;
    let mut cfg = quiet(vec![t.clone()]);
    cfg.history = chrono::Duration::hours(3);
    let env = start(cfg).await;
    let tok = env.token(0).await;
    let started = Instant::now();
    let pages = env
        .drain(
            &signins_url("graph.microsoft.com", "v1.0", "$top=1000"),
            &tok,
        )
        .await;
    let n = ids_of(&pages).len();
    let truth = env
        .sim
        .ground_truth(&t.tenant_id, GroundTruthStream::SignIns, t0())
        .into_iter()
        .filter(|e| e.event_type == "interactiveUser")
        .count();
    assert_eq!(n, truth);
    assert!(n > 5_000, "{n}");
    // Debug build: about 0.25 s per 1000-record page including the client-side parse.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}
