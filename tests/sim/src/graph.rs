//! Microsoft Graph: `/auditLogs/signIns`, `/auditLogs/directoryAudits`, `/subscribedSkus` and
//! `/reports/authenticationMethods/userRegistrationDetails`, with token validation,
//! permissions, licence checks, throttling, paging and fault injection.
//!
//! Order of checks for a request: route, bearer token (401), reports throttle (429; the
//! request is counted even when refused later), injected 503, permission (403), licence (403),
//! query validation (400), then the page. Error bodies are always
//! `{"error":{"code","message","innerError":{"date","request-id","client-request-id"}}}`.
//!
//! The `$skiptoken` is base64url of a MACed record: snapshot time, position of the last
//! record served, page number and a hash of the tenant, stream, version, `$filter` and
//! `$top`, so paging is stable while new events arrive and a token cannot be forged or moved
//! to another query.

use std::time::Duration;

use axum::http::{HeaderMap, Method};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use ring::hmac;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::auth::{TokenProblem, verify_token};
use crate::filter::{self, Filter};
use crate::generator::{
    CompactEvent, Generator, GroundTruthStream, TICKS_PER_SEC, render_audit, render_signin,
    to_ticks,
};
use crate::server::{Reply, SimState};
use crate::throttle::Limit;
use itdr_shared::Cloud;

const MAX_TOP: u32 = 1000;
const DAY_TICKS: i64 = 86_400 * TICKS_PER_SEC;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    SignIns,
    Audits,
    Skus,
    Registration,
    /// The identity inventory (`crate::inventory`).
    Inventory,
}

/// Builds a Graph error reply.
fn graph_error(
    st: &SimState,
    status: u16,
    code: &str,
    message: &str,
    headers: &HeaderMap,
) -> Reply {
    let request_id = uuid::Uuid::new_v4().to_string();
    let client_request_id = headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| request_id.clone());
    let body = json!({"error": {"code": code, "message": message, "innerError": {
        "date": st.now().format("%Y-%m-%dT%H:%M:%S").to_string(),
        "request-id": request_id,
        "client-request-id": client_request_id,
    }}});
    Reply::json(status, &body).with_header("request-id", request_id)
}

/// Handles one Graph request; returns the reply and the tenant it was attributed to.
pub(crate) async fn handle(
    st: &SimState,
    host: &str,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
) -> (Reply, Option<String>) {
    let segs: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(str::to_ascii_lowercase)
        .collect();
    let (version, rest) = match segs.split_first() {
        Some((v, rest)) if v == "v1.0" || v == "beta" => (v.clone(), rest),
        _ => {
            return (
                graph_error(
                    st,
                    400,
                    "BadRequest",
                    "Invalid version: the API version must be v1.0 or beta.",
                    headers,
                ),
                None,
            );
        }
    };
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    let route = match rest.as_slice() {
        ["auditlogs", "signins"] => Route::SignIns,
        ["auditlogs", "directoryaudits"] => Route::Audits,
        ["subscribedskus"] => Route::Skus,
        [
            "reports",
            "authenticationmethods",
            "userregistrationdetails",
        ] => Route::Registration,
        other if crate::inventory::is_route(other) => Route::Inventory,
        other => {
            let seg = other.first().copied().unwrap_or("");
            return (
                graph_error(
                    st,
                    400,
                    "BadRequest",
                    &format!("Resource not found for the segment '{seg}'."),
                    headers,
                ),
                None,
            );
        }
    };
    if method != Method::GET {
        return (
            graph_error(
                st,
                405,
                "Request_BadRequest",
                "The requested HTTP method is not supported on this resource.",
                headers,
            ),
            None,
        );
    }

    // Bearer token.
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let unauth = |msg: &str| graph_error(st, 401, "InvalidAuthenticationToken", msg, headers);
    let claims = match token.map(|t| verify_token(&st.token_key, t, st.now())) {
        None => return (unauth("Access token is empty."), None),
        Some(Err(TokenProblem::Malformed)) => {
            return (
                unauth("Access token validation failure. The token is not a well-formed JWT."),
                None,
            );
        }
        Some(Err(TokenProblem::Signature)) => {
            return (
                unauth("Access token validation failure. Invalid signature."),
                None,
            );
        }
        Some(Err(TokenProblem::Expired)) => {
            return (
                unauth("Lifetime validation failed, the token is expired."),
                None,
            );
        }
        Some(Ok(c)) => c,
    };
    if !claims.aud.eq_ignore_ascii_case(&format!("https://{host}")) {
        return (
            unauth("Access token validation failure. Invalid audience."),
            Some(claims.tid),
        );
    }
    let Some(idx) = st.find_tenant(&claims.tid) else {
        return (
            unauth("Access token validation failure. Unknown tenant."),
            None,
        );
    };
    let model = &st.events.tenants[idx];
    let tenant_id = model.spec.tenant_id.clone();
    let tid = Some(tenant_id.clone());
    let Some(roles) = claims.roles.clone() else {
        return (
            unauth("Either scp or roles claim need to be present in the token."),
            tid,
        );
    };

    if route == Route::Inventory {
        let ts = st.tenant(idx);
        let inv = st.inventory.model(idx, || {
            crate::inventory::Inventory::build(&model.spec, &model.users, st.now())
        });
        let ctx = crate::inventory::Ctx {
            idx,
            host,
            query,
            roles: &roles,
            has_p1: ts.has_p1,
            now: st.now(),
        };
        return (
            crate::inventory::handle(&st.inventory, &inv, &ctx, &rest, path),
            tid,
        );
    }

    let faults_slow = st.tenant(idx).faults.slow_ms;
    if faults_slow > 0 {
        tokio::time::sleep(Duration::from_millis(faults_slow)).await;
    }

    // Reports throttle (counted for every request of these routes).
    let throttled = crate::server::lock(&st.throttle).check(
        &st.throttle_cfg,
        &claims.appid,
        &tenant_id,
        to_ticks(st.now()),
    );
    if let Some((limit, secs)) = throttled {
        st.count_429(&tenant_id, limit == Limit::App);
        let mut r = graph_error(
            st,
            429,
            "TooManyRequests",
            "Too many requests. Please retry later.",
            headers,
        );
        if st.throttle_cfg.retry_after_header {
            r = r.with_header("retry-after", secs.to_string());
        }
        return (r, tid);
    }

    // Injected faults strike only once `after_requests` normal answers have gone by.
    let armed = st.with_tenant(idx, |t| {
        if t.faults.after_requests > 0 {
            t.faults.after_requests -= 1;
            false
        } else {
            true
        }
    });

    // Injected 429 storm.
    let storm = armed
        .then(|| {
            st.with_tenant(idx, |t| {
                if t.faults.http_429_burst > 0 {
                    t.faults.http_429_burst -= 1;
                    Some(t.faults.retry_after_on_429.clone())
                } else {
                    None
                }
            })
        })
        .flatten();
    if let Some(retry) = storm {
        let mut r = graph_error(
            st,
            429,
            "TooManyRequests",
            "Too many requests. Please retry later.",
            headers,
        );
        if let Some(v) = retry {
            r = r.with_header("retry-after", v);
        }
        return (r, tid);
    }

    // Injected 5xx.
    let burst = armed
        .then(|| {
            st.with_tenant(idx, |t| {
                if t.faults.http_5xx_burst > 0 {
                    t.faults.http_5xx_burst -= 1;
                    Some((t.faults.retry_after_on_5xx, t.faults.http_5xx_status))
                } else {
                    None
                }
            })
        })
        .flatten();
    if let Some((retry, status)) = burst {
        st.count_5xx();
        let (status, code) = match status {
            Some(500) => (500, "generalException"),
            Some(504) => (504, "gatewayTimeout"),
            _ => (503, "serviceNotAvailable"),
        };
        let mut r = graph_error(
            st,
            status,
            code,
            "The service is temporarily unavailable. Please retry later.",
            headers,
        );
        if let Some(s) = retry {
            r = r.with_header("retry-after", s.to_string());
        }
        return (r, tid);
    }

    // Injected token expiry and consent revocation.
    let auth_fault = armed
        .then(|| {
            st.with_tenant(idx, |t| {
                if t.faults.expired_token > 0 {
                    t.faults.expired_token -= 1;
                    Some("Lifetime validation failed, the token is expired.")
                } else if t.faults.consent_revoked_requests > 0 {
                    t.faults.consent_revoked_requests -= 1;
                    Some("Either scp or roles claim need to be present in the token.")
                } else {
                    None
                }
            })
        })
        .flatten();
    if let Some(msg) = auth_fault {
        return (unauth(msg), tid);
    }

    // Permissions and licences.
    let has = |r: &str| roles.iter().any(|x| x.eq_ignore_ascii_case(r));
    let allowed = match route {
        Route::SignIns | Route::Audits | Route::Registration => has("AuditLog.Read.All"),
        Route::Skus => has("Organization.Read.All") || has("Directory.Read.All"),
        Route::Inventory => true,
    };
    if !allowed {
        return (
            graph_error(
                st,
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
                headers,
            ),
            tid,
        );
    }
    let ts = st.tenant(idx);
    if matches!(route, Route::SignIns | Route::Registration) && !ts.has_p1 {
        return (
            graph_error(
                st,
                403,
                "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
                "Neither tenant is B2C or tenant doesn't have premium license",
                headers,
            ),
            tid,
        );
    }
    if matches!(route, Route::SignIns | Route::Audits) && model.spec.cloud == Cloud::China {
        return (
            graph_error(
                st,
                400,
                "BadRequest",
                "Resource not found for the segment 'auditLogs'.",
                headers,
            ),
            tid,
        );
    }

    let reply = match route {
        Route::SignIns | Route::Audits => {
            let stream = if route == Route::SignIns {
                GroundTruthStream::SignIns
            } else {
                GroundTruthStream::DirectoryAudits
            };
            list(st, idx, host, &version, stream, query, headers)
        }
        Route::Skus => Ok(skus(
            host,
            ts.has_p1,
            ts.has_p2,
            model.spec.exchange_licence,
            model.users.len(),
        )),
        Route::Registration => Ok(registration(st, idx, host)),
        Route::Inventory => Err("inventory routes are served above".to_string()),
    };
    let mut reply = match reply {
        Ok(r) => r,
        Err(msg) => graph_error(st, 400, "BadRequest", &msg, headers),
    };
    if reply.status == 200 && armed {
        let (truncate, html) = st.with_tenant(idx, |t| {
            if t.faults.truncate_json > 0 {
                t.faults.truncate_json -= 1;
                (true, false)
            } else if t.faults.non_json_body > 0 {
                t.faults.non_json_body -= 1;
                (false, true)
            } else {
                (false, false)
            }
        });
        if truncate {
            let cut = reply.body.len() * 6 / 10;
            reply.body.truncate(cut);
        }
        if html {
            reply.headers = vec![("content-type", "text/html; charset=utf-8".into())];
            reply.body = b"<html><body><h1>502 Bad Gateway</h1></body></html>".to_vec();
        }
    }
    (reply, tid)
}

/// Position and context carried by a `$skiptoken`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cursor {
    snapshot: i64,
    pos_ticks: i64,
    pos_seed: u64,
    page: u32,
    query_hash: [u8; 16],
}

const TOKEN_VERSION: u8 = 1;

fn encode_cursor(key: &hmac::Key, c: &Cursor) -> String {
    let mut p = Vec::with_capacity(64);
    p.push(TOKEN_VERSION);
    p.extend_from_slice(&c.snapshot.to_le_bytes());
    p.extend_from_slice(&c.pos_ticks.to_le_bytes());
    p.extend_from_slice(&c.pos_seed.to_le_bytes());
    p.extend_from_slice(&c.page.to_le_bytes());
    p.extend_from_slice(&c.query_hash);
    let tag = hmac::sign(key, &p);
    p.extend_from_slice(&tag.as_ref()[..16]);
    URL_SAFE_NO_PAD.encode(p)
}

fn decode_cursor(key: &hmac::Key, s: &str) -> Option<Cursor> {
    let raw = URL_SAFE_NO_PAD.decode(s.trim()).ok()?;
    if raw.len() != 1 + 8 + 8 + 8 + 4 + 16 + 16 || raw[0] != TOKEN_VERSION {
        return None;
    }
    let (payload, tag) = raw.split_at(raw.len() - 16);
    let expected = hmac::sign(key, payload);
    if !ring_eq(&expected.as_ref()[..16], tag) {
        return None;
    }
    let i64_at = |o: usize| {
        payload
            .get(o..o + 8)
            .and_then(|b| b.try_into().ok())
            .map(i64::from_le_bytes)
    };
    let u64_at = |o: usize| {
        payload
            .get(o..o + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    let page = payload
        .get(25..29)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_le_bytes)?;
    let mut query_hash = [0u8; 16];
    query_hash.copy_from_slice(payload.get(29..45)?);
    Some(Cursor {
        snapshot: i64_at(1)?,
        pos_ticks: i64_at(9)?,
        pos_seed: u64_at(17)?,
        page,
        query_hash,
    })
}

fn ring_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn query_hash(
    tenant: &str,
    stream: GroundTruthStream,
    version: &str,
    filter: &str,
    top: Option<u32>,
) -> [u8; 16] {
    let d = Sha256::new()
        .chain_update(tenant.as_bytes())
        .chain_update([0, stream.code(), 0])
        .chain_update(version.as_bytes())
        .chain_update([0])
        .chain_update(filter.trim().as_bytes())
        .chain_update([0])
        .chain_update(top.unwrap_or(0).to_le_bytes())
        .finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    out
}

fn list(
    st: &SimState,
    idx: usize,
    host: &str,
    version: &str,
    stream: GroundTruthStream,
    query: &str,
    headers: &HeaderMap,
) -> Result<Reply, String> {
    let mut filter_raw: Option<String> = None;
    let mut top_raw: Option<String> = None;
    let mut skip: Option<String> = None;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.to_ascii_lowercase().as_str() {
            "$filter" => filter_raw = Some(v.into_owned()),
            "$top" => top_raw = Some(v.into_owned()),
            "$skiptoken" => skip = Some(v.into_owned()),
            "$orderby" => {
                let v = v.to_ascii_lowercase();
                let prop = time_prop(stream).to_ascii_lowercase();
                if v.trim() != prop && v.trim() != format!("{prop} desc") {
                    return Err(format!(
                        "The $orderby value '{v}' is not supported; only '{} desc' is.",
                        time_prop(stream)
                    ));
                }
            }
            "$select" | "$count" => {}
            other if other.starts_with('$') => {
                return Err(format!(
                    "Query option '{other}' is not allowed. To allow it, set the 'AllowedQueryOptions' property on EnableQueryAttribute or QueryValidationSettings."
                ));
            }
            _ => {}
        }
    }
    let top = match &top_raw {
        None => None,
        Some(t) => match t.trim().parse::<u32>() {
            Ok(n) if (1..=MAX_TOP).contains(&n) => Some(n),
            _ => {
                return Err(format!(
                    "Invalid page size specified: '{t}'. Must be between 1 and {MAX_TOP} inclusive."
                ));
            }
        },
    };
    let entity = match stream {
        GroundTruthStream::SignIns => "microsoft.graph.signIn",
        _ => "microsoft.graph.directoryAudit",
    };
    let allow_types = stream == GroundTruthStream::SignIns && version == "beta";
    let filter_text = filter_raw.clone().unwrap_or_default();
    if st.tenant(idx).faults.refuse_or_in_any
        && filter_text.contains("signInEventTypes")
        && filter_text.contains(" or ")
    {
        return Err("Invalid filter clause: 'or' is not supported in this lambda.".into());
    }
    let f = filter::parse(&filter_text, time_prop(stream), entity, allow_types).map_err(|e| e.0)?;
    let model = &st.events.tenants[idx];
    let qh = query_hash(&model.spec.tenant_id, stream, version, &filter_text, top);
    let now = to_ticks(st.now());
    let cursor = match &skip {
        None => None,
        Some(s) => {
            let c = decode_cursor(&st.skip_key, s).ok_or_else(|| {
                "The $skiptoken is invalid or has been tampered with.".to_string()
            })?;
            if c.query_hash != qh {
                return Err("The $skiptoken does not belong to this query; request the @odata.nextLink exactly as returned.".into());
            }
            Some(c)
        }
    };
    let snapshot = cursor.map_or(now, |c| c.snapshot);
    let page_no = cursor.map_or(0, |c| c.page);
    let retention_days = if st.tenant(idx).has_p1 { 30 } else { 7 };
    let lower = [
        Some(snapshot - retention_days * DAY_TICKS),
        Some(st.events.history_start_ticks),
        f.ge,
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or(i64::MIN);
    let upper = f.le.map_or(snapshot, |l| l.min(snapshot));
    let after = cursor.map(|c| (c.pos_ticks, c.pos_seed));
    let limit = top.unwrap_or(MAX_TOP) as usize;
    let page = collect(
        &st.events,
        idx,
        stream,
        &f,
        lower,
        upper,
        after,
        snapshot,
        limit + 1,
    );
    let more = page.len() > limit;
    let page: Vec<CompactEvent> = page.into_iter().take(limit).collect();
    // Occasionally an empty page that still carries a nextLink (deterministic).
    let empty = more && {
        let h = Sha256::new()
            .chain_update(qh)
            .chain_update(snapshot.to_le_bytes())
            .chain_update(page_no.to_le_bytes())
            .finalize();
        u16::from_le_bytes([h[0], h[1]]) % 100 < 3
    };
    let (served, next_pos): (Vec<CompactEvent>, Option<(i64, u64)>) = if empty {
        (Vec::new(), Some(after.unwrap_or((upper + 1, 0))))
    } else if more {
        let last = page.last().map(CompactEvent::key);
        (page, last)
    } else {
        (page, None)
    };
    let ts = st.tenant(idx);
    let beta = version == "beta";
    let values: Vec<Value> = served
        .iter()
        .map(|ev| match stream {
            GroundTruthStream::SignIns => {
                let mut v = render_signin(model, ev, beta, ts.has_p2);
                crate::respond::reflect_signin(st, idx, &mut v);
                v
            }
            _ => render_audit(model, ev),
        })
        .collect();
    let segment = match stream {
        GroundTruthStream::SignIns => "signIns",
        _ => "directoryAudits",
    };
    let mut body = serde_json::Map::new();
    body.insert(
        "@odata.context".into(),
        Value::from(format!(
            "https://{host}/{version}/$metadata#auditLogs/{segment}"
        )),
    );
    let foreign = st.with_tenant(idx, |t| {
        if t.faults.foreign_next_link > 0 {
            t.faults.foreign_next_link -= 1;
            true
        } else {
            false
        }
    });
    let next = next_pos.map(|(pt, ps)| {
        let c = Cursor {
            snapshot,
            pos_ticks: pt,
            pos_seed: ps,
            page: page_no + 1,
            query_hash: qh,
        };
        encode_cursor(&st.skip_key, &c)
    });
    let link_host = if foreign { "graph.evil.example" } else { host };
    let link_token = match (&next, foreign) {
        (Some(t), _) => Some(t.clone()),
        (None, true) => Some(encode_cursor(
            &st.skip_key,
            &Cursor {
                snapshot,
                pos_ticks: i64::MIN,
                pos_seed: 0,
                page: page_no + 1,
                query_hash: qh,
            },
        )),
        (None, false) => None,
    };
    if let Some(tok) = link_token {
        let mut q = Vec::new();
        if let Some(fr) = &filter_raw {
            q.push(format!(
                "$filter={}",
                url::form_urlencoded::byte_serialize(fr.as_bytes()).collect::<String>()
            ));
        }
        if let Some(t) = top {
            q.push(format!("$top={t}"));
        }
        q.push(format!("$skiptoken={tok}"));
        body.insert(
            "@odata.nextLink".into(),
            Value::from(format!(
                "https://{link_host}/{version}/auditLogs/{segment}?{}",
                q.join("&")
            )),
        );
    }
    body.insert("value".into(), Value::from(values));
    let _ = headers;
    Ok(Reply::json(200, &Value::Object(body)))
}

fn time_prop(stream: GroundTruthStream) -> &'static str {
    match stream {
        GroundTruthStream::SignIns => "createdDateTime",
        _ => "activityDateTime",
    }
}

/// Up to `limit` visible, matching events in `[lower, upper]`, newest first, strictly after
/// `after` in that order.
#[allow(clippy::too_many_arguments)]
fn collect(
    g: &Generator,
    idx: usize,
    stream: GroundTruthStream,
    f: &Filter,
    lower: i64,
    upper: i64,
    after: Option<(i64, u64)>,
    snapshot: i64,
    limit: usize,
) -> Vec<CompactEvent> {
    let mut out = Vec::new();
    if lower > upper {
        return out;
    }
    let top = after.map_or(upper, |a| a.0.min(upper));
    let mut hour = Generator::hour_of(top);
    let last_hour = Generator::hour_of(lower);
    while hour >= last_hour {
        for ev in g.bucket(idx, stream, hour).iter() {
            if ev.ticks > upper || after.is_some_and(|a| ev.key() >= a) {
                continue;
            }
            if ev.ticks < lower {
                return out;
            }
            if ev.visible_ticks() > snapshot {
                continue;
            }
            if stream == GroundTruthStream::SignIns && !f.type_matches(ev.kind) {
                continue;
            }
            out.push(*ev);
            if out.len() >= limit {
                return out;
            }
        }
        hour -= 1;
    }
    out
}

fn skus(host: &str, p1: bool, p2: bool, exchange: bool, users: usize) -> Reply {
    let units = u32::try_from(users).unwrap_or(u32::MAX);
    let plan = |id: &str, name: &str| json!({"servicePlanId": id, "servicePlanName": name, "provisioningStatus": "Success", "appliesTo": "User"});
    let sku = |id: &str, part: &str, plans: Vec<Value>| {
        json!({"capabilityStatus": "Enabled", "consumedUnits": units, "id": format!("sim_{id}"), "skuId": id, "skuPartNumber": part, "appliesTo": "User",
               "prepaidUnits": {"enabled": units + 5, "suspended": 0, "warning": 0, "lockedOut": 0}, "servicePlans": plans})
    };
    let mut value = Vec::new();
    if exchange {
        value.push(sku(
            "6fd2c87f-b296-42f0-b197-1e91e994b900",
            "ENTERPRISEPACK",
            vec![
                plan(
                    "efb87545-963c-4e0d-99df-69c6916d9eb0",
                    "EXCHANGE_S_ENTERPRISE",
                ),
                plan(
                    "5dbe027f-2339-4123-9542-606e4d348a72",
                    "SHAREPOINTENTERPRISE",
                ),
                plan("57ff2da0-773e-42df-b2af-ffb7a2317929", "TEAMS1"),
            ],
        ));
    } else {
        value.push(sku(
            "710779e8-3d4a-4c88-adb9-386c958d1fdf",
            "TEAMS_EXPLORATORY",
            vec![
                plan(
                    "113feb6c-3fe4-4440-bddc-54d774bf0318",
                    "EXCHANGE_S_FOUNDATION",
                ),
                plan("57ff2da0-773e-42df-b2af-ffb7a2317929", "TEAMS1"),
            ],
        ));
    }
    if p1 && !p2 {
        value.push(sku(
            "078d2b04-f1bd-4111-bbd4-b4b1b354cef4",
            "AAD_PREMIUM",
            vec![plan("41781fb2-bc02-4b7c-bd55-b576c07bb09d", "AAD_PREMIUM")],
        ));
    }
    if p2 {
        value.push(sku(
            "84a661c4-e949-4bd2-a560-ed7766fcaf2b",
            "AAD_PREMIUM_P2",
            vec![
                plan("41781fb2-bc02-4b7c-bd55-b576c07bb09d", "AAD_PREMIUM"),
                plan("eec0eb4f-6444-4f95-aba0-50c24d67f998", "AAD_PREMIUM_P2"),
            ],
        ));
    }
    Reply::json(
        200,
        &json!({"@odata.context": format!("https://{host}/v1.0/$metadata#subscribedSkus"), "value": value}),
    )
}

fn registration(st: &SimState, idx: usize, host: &str) -> Reply {
    let model = &st.events.tenants[idx];
    let updated: DateTime<Utc> = st.now();
    let value: Vec<Value> = model
        .users
        .iter()
        .map(|u| {
            let mfa = !u.methods.is_empty();
            let mut methods: Vec<&str> = u.methods.clone();
            if !u.service {
                methods.push("email");
                methods.dedup();
            }
            json!({
                "id": u.id,
                "userPrincipalName": u.upn,
                "userDisplayName": u.display,
                "userType": if u.guest { "guest" } else { "member" },
                "isAdmin": u.admin,
                "isSsprRegistered": mfa,
                "isSsprEnabled": true,
                "isSsprCapable": mfa,
                "isMfaRegistered": mfa,
                "isMfaCapable": mfa,
                "isPasswordlessCapable": u.methods.contains(&"fido2"),
                "methodsRegistered": if mfa { methods } else { Vec::new() },
                "lastUpdatedDateTime": updated.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            })
        })
        .collect();
    Reply::json(
        200,
        &json!({"@odata.context": format!("https://{host}/v1.0/$metadata#reports/authenticationMethods/userRegistrationDetails"), "value": value}),
    )
}
