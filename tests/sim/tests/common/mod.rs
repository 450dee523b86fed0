//! Shared helpers for the simulator's HTTP tests: start a simulator on a manual clock and
//! talk to it with a plain HTTP client, sending real Microsoft URLs to the loopback port with
//! the original host in the `Host` header.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeZone, Utc};
use itdr_shared::Cloud;
use itdr_shared::clock::ManualClock;
use itdr_sim::{DelayModel, SimConfig, SimHandle, Simulator, TenantSpec, ThrottleConfig};
use reqwest::header::{HOST, HeaderMap};
use serde_json::Value;

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 15, 12, 0, 0)
        .single()
        .unwrap()
}

pub struct Env {
    pub sim: SimHandle,
    pub clock: ManualClock,
    pub http: reqwest::Client,
    pub cfg: SimConfig,
}

pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
    pub fn header(&self, n: &str) -> Option<String> {
        self.headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

/// A quiet config: no delay, no throttling, one global tenant unless given.
pub fn quiet(tenants: Vec<TenantSpec>) -> SimConfig {
    let mut cfg = SimConfig::new(42, tenants);
    cfg.delay = DelayModel::none();
    cfg.throttle = ThrottleConfig::disabled();
    cfg.history = chrono::Duration::days(2);
    cfg
}

pub async fn start(cfg: SimConfig) -> Env {
    itdr_shared::http::install_crypto_provider();
    let clock = ManualClock::new(t0());
    let sim = Simulator::start(
        cfg.clone(),
        Arc::new(clock.clone()),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    Env {
        sim,
        clock,
        http,
        cfg,
    }
}

impl Env {
    /// Sends `url` (a real https Microsoft URL) to the simulator with the Host header.
    fn target(&self, url: &str) -> (String, String) {
        let u = url::Url::parse(url).unwrap();
        let host = u.host_str().unwrap().to_string();
        let mut t = format!("{}{}", self.sim.base_url(), u.path());
        if let Some(q) = u.query() {
            t.push('?');
            t.push_str(q);
        }
        (t, host)
    }

    pub async fn get(&self, url: &str, token: Option<&str>) -> Resp {
        let (target, host) = self.target(url);
        let mut req = self.http.get(target).header(HOST, host);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        Resp {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            text: r.text().await.unwrap(),
        }
    }

    pub async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> Resp {
        let (target, host) = self.target(url);
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.iter())
            .finish();
        let r = self
            .http
            .post(target)
            .header(HOST, host)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        Resp {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            text: r.text().await.unwrap(),
        }
    }

    /// POSTs to `url` with a bearer token and no body (Management Activity subscriptions).
    pub async fn post_bearer(&self, url: &str, token: &str) -> Resp {
        let (target, host) = self.target(url);
        let r = self
            .http
            .post(target)
            .header(HOST, host)
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        Resp {
            status: r.status().as_u16(),
            headers: r.headers().clone(),
            text: r.text().await.unwrap(),
        }
    }

    pub async fn token_resp(&self, t: &TenantSpec, scope_cloud: Cloud, login_host: &str) -> Resp {
        let url = format!("https://{login_host}/{}/oauth2/v2.0/token", t.tenant_id);
        let scope = scope_cloud.graph_scope();
        self.post_form(
            &url,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &t.app_id),
                ("client_secret", &t.client_secret),
                ("scope", &scope),
            ],
        )
        .await
    }

    /// A token for tenant `i` of the config.
    pub async fn token(&self, i: usize) -> String {
        let t = &self.cfg.tenants[i];
        let r = self.token_resp(t, t.cloud, t.cloud.login_host()).await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.json()["access_token"].as_str().unwrap().to_string()
    }

    /// Follows nextLinks from `url`, returning every page body.
    pub async fn drain(&self, url: &str, token: &str) -> Vec<Value> {
        let mut pages = Vec::new();
        let mut next = Some(url.to_string());
        while let Some(u) = next {
            let r = self.get(&u, Some(token)).await;
            assert_eq!(r.status, 200, "{u}: {}", r.text);
            let v = r.json();
            next = v["@odata.nextLink"].as_str().map(str::to_string);
            pages.push(v);
            assert!(pages.len() < 10_000, "runaway paging");
        }
        pages
    }
}

/// Decodes a JWT's payload.
pub fn jwt_claims(t: &str) -> Value {
    let p = t.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
}

/// Graph timestamp for a filter.
pub fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

pub fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
