//! Graph page parsing (`ApiClient::parse_page`), paging-link validation for both APIs, and the
//! classification of error responses (`classify_response`).
//!
//! Input: one selector byte (cloud, API, status), then the body.
//!
//! Properties:
//! - a parsed page's `bytes` is the body's length; a followed `@odata.nextLink` is `https` on
//!   the tenant's own Graph host; a refused one is `ForeignLink`;
//! - a body that is not a page is `Decode`, whose offset lies inside the body;
//! - an error response's message never reaches the error (a canary put into `message` never
//!   shows in its `Display` or `Debug`), codes are short and log-safe, and a `Retry-After`
//!   passed through is kept as is (it is already clamped by its parser).
#![no_main]

use std::time::Duration;

use itdr_shared::client::{ApiClient, SourceError, Tenant, classify_response};
use itdr_shared::{Api, Cloud};
use libfuzzer_sys::fuzz_target;

const CANARY: &str = "CANARYzq7";

fuzz_target!(|data: &[u8]| {
    let Some((&sel, body)) = data.split_first() else {
        return;
    };
    let cloud = Cloud::ALL[usize::from(sel) % Cloud::ALL.len()];
    let tenant = Tenant {
        id: "0b3e6c1a-1111-2222-3333-444455556666".into(),
        cloud,
    };
    page(&tenant, body);
    links(&tenant, body);
    errors(sel, body);
});

fn page(tenant: &Tenant, body: &[u8]) {
    match ApiClient::parse_page(tenant, body) {
        Ok(p) => {
            assert_eq!(p.bytes, body.len());
            if let Some(u) = &p.next_link {
                assert_eq!(u.scheme(), "https");
                assert_eq!(u.host_str(), Api::Graph.host(tenant.cloud));
                assert!(p.refused_link.is_none());
            }
            if let Some(e) = &p.refused_link {
                assert!(matches!(e, SourceError::ForeignLink { .. }), "{e:?}");
            }
        }
        Err(SourceError::Decode { offset, .. }) => {
            assert!(offset <= body.len(), "offset {offset} > {}", body.len());
        }
        Err(e) => panic!("a page body failed with {e:?}, not Decode"),
    }
}

fn links(tenant: &Tenant, body: &[u8]) {
    let Ok(link) = std::str::from_utf8(body) else {
        return;
    };
    for api in [Api::Graph, Api::ManagementActivity] {
        match ApiClient::validate_link(tenant, api, link) {
            Ok(u) => {
                assert_eq!(u.scheme(), "https");
                assert!(u.host_str().is_some());
                assert_eq!(u.host_str(), api.host(tenant.cloud), "{api}");
            }
            Err(e) => assert!(matches!(e, SourceError::ForeignLink { .. }), "{e:?}"),
        }
    }
}

fn errors(sel: u8, body: &[u8]) {
    let api = if sel & 0x80 == 0 {
        Api::Graph
    } else {
        Api::ManagementActivity
    };
    let statuses = [400u16, 401, 403, 404, 408, 409, 429, 500, 502, 503, 504];
    let status = statuses[usize::from(sel >> 3) % statuses.len()];
    let retry_after = (sel & 0x04 != 0).then(|| Duration::from_secs(u64::from(sel)));
    let text = String::from_utf8_lossy(body).replace(CANARY, "");
    // The fuzzed text as the code, and as the message with a canary inside.
    let mid = text
        .char_indices()
        .map(|(i, _)| i)
        .nth(text.chars().count() / 2)
        .unwrap_or(text.len());
    let (code, message) = text.split_at(mid);
    let code = code.to_string();
    let message = format!("{message}{CANARY}{message}");
    let bodies = [
        serde_json::json!({"error": {"code": code, "message": message}}).to_string(),
        message.clone(),
        text.clone(),
    ];
    for b in &bodies {
        let e = classify_response(api, status, b.as_bytes(), retry_after);
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains(CANARY), "message leaked into {shown:?}");
        assert!(
            !shown.chars().any(|c| c.is_control()),
            "control character in {shown:?}"
        );
        assert!(shown.len() < 1024, "unbounded error: {} bytes", shown.len());
        if let Some(ra) = e.retry_after() {
            assert_eq!(Some(ra), retry_after);
        }
    }
}
