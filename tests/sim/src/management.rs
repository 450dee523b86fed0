//! The Office 365 Management Activity API on every cloud's Management host
//! (`manage.office.com`, `manage-gcc.office.com`, `manage.office365.us`,
//! `manage.protection.apps.mil`).
//!
//! Routes under `/api/v1.0/{tenant}/activity/feed/` (and `/api/v1/`, as the reference's
//! `NextPageUri` example spells it):
//! - `POST subscriptions/start?contentType=X`: creates or re-enables the subscription (200
//!   `{"contentType","status":"enabled","webhook":null}`); `AF20024` when it is enabled
//!   already; `AF20023` when an administrator disabled it; and, when the tenant's unified audit
//!   log is off, the odd 400 Microsoft's troubleshooting guide shows (a `StartSubscription […]`
//!   code and a `DataServiceException: Tenant … does not exist.` message);
//! - `POST subscriptions/stop?contentType=X`: removes it (`AF20022` when there is none);
//! - `GET subscriptions/list`: every subscription and its status;
//! - `GET subscriptions/content?contentType&startTime&endTime[&nextPage]`: blobs by
//!   `contentCreated` in `[startTime, endTime)` that are listable now, oldest first, paged
//!   with a `NextPageUri` header; the window rules of the reference (both or neither, at most
//!   24 hours, start at most 7 days back, the three documented formats) with `AF20055` /
//!   `AF20030`; `AF20022` without a subscription, `AF20023` when disabled;
//! - `GET audit/{contentId}`: a blob's records (a JSON array); `AF20051` once it is older than
//!   7 days, `AF20050` for an unknown blob, `AF20052` for a malformed id.
//!
//! Every request needs a bearer token for this host whose tenant is the URL's (`AF20010`)
//! and which carries `ActivityFeed.Read` (`AF10001`). Throttling is per tenant (2,000 requests
//! a minute by default), answered `AF429` with HTTP 403 and no `Retry-After`.

use std::collections::VecDeque;

use axum::http::{HeaderMap, Method};
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, Utc};
use itdr_shared::Cloud;
use serde_json::{Value, json};

use crate::audit_gen::{Ct, hour_of_ms, ms_to_time, render};
use crate::auth::{TokenProblem, verify_token};
use crate::server::{Reply, SimState, SubState, lock};

const DAY_MS: i64 = 86_400_000;

fn af(status: u16, code: &str, message: &str) -> Reply {
    Reply::json(
        status,
        &json!({"error": {"code": code, "message": message}}),
    )
}

/// The cloud whose Management host `host` is.
pub(crate) fn cloud_of_host(host: &str) -> Option<Cloud> {
    Cloud::ALL.into_iter().find(|c| {
        c.management_host()
            .is_some_and(|h| h.eq_ignore_ascii_case(host))
    })
}

/// Handles one request to a Management host; returns the reply and the tenant it was
/// attributed to.
pub(crate) fn handle(
    st: &SimState,
    host: &str,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
) -> (Reply, Option<String>) {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (tenant_in_url, rest) = match segs.as_slice() {
        ["api", v, tenant, "activity", "feed", rest @ ..] if *v == "v1.0" || *v == "v1" => {
            (tenant.to_ascii_lowercase(), rest.to_vec())
        }
        _ => return (af(404, "AF20000", "Resource not found."), None),
    };
    // Bearer token.
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let claims = match token.map(|t| verify_token(&st.token_key, t, st.now())) {
        Some(Ok(c)) => c,
        Some(Err(TokenProblem::Expired)) => {
            return (af(401, "AF10002", "Authorization token has expired."), None);
        }
        _ => return (af(401, "AF10000", "Invalid authorization token."), None),
    };
    if !claims.aud.eq_ignore_ascii_case(&format!("https://{host}")) {
        return (
            af(401, "AF10000", "The token's audience is not this resource."),
            Some(claims.tid),
        );
    }
    let Some(idx) = st.find_tenant(&claims.tid) else {
        return (
            af(400, "AF20011", "Specified tenant ID does not exist."),
            None,
        );
    };
    let model = &st.events.tenants[idx];
    let tenant_id = model.spec.tenant_id.clone();
    let tid = Some(tenant_id.clone());
    if tenant_in_url != tenant_id {
        return (
            af(
                400,
                "AF20010",
                "The tenant ID in the URL does not match the token's tenant.",
            ),
            tid,
        );
    }
    if cloud_of_host(host) != Some(model.spec.cloud) {
        return (
            af(400, "AF20011", "Specified tenant ID does not exist."),
            tid,
        );
    }
    let roles = claims.roles.clone().unwrap_or_default();
    if !roles
        .iter()
        .any(|r| r.eq_ignore_ascii_case("ActivityFeed.Read"))
    {
        return (
            af(
                403,
                "AF10001",
                "The permission set (ActivityFeed.Read) sent in the request does not include the expected permission.",
            ),
            tid,
        );
    }
    // Throttling: the injected burst first, then the per-tenant window.
    let forced = st.with_tenant(idx, |t| {
        if t.faults.af429_burst > 0 {
            t.faults.af429_burst -= 1;
            true
        } else {
            false
        }
    });
    let now_ms = st.now().timestamp_millis();
    let over = forced || {
        let (limit, window) = st.management.per_tenant;
        let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        let mut w = lock(&st.management_hits);
        let q: &mut VecDeque<i64> = w.entry(tenant_id.clone()).or_default();
        while q.front().is_some_and(|t| *t <= now_ms - window_ms) {
            q.pop_front();
        }
        q.push_back(now_ms);
        q.len() > usize::try_from(limit).unwrap_or(usize::MAX)
    };
    let method_name = match rest.as_slice() {
        ["audit", ..] => "GetBlob",
        ["subscriptions", op] => op,
        _ => "Unknown",
    };
    if over {
        st.count_429(&tenant_id, false);
        return (
            af(
                403,
                "AF429",
                &format!(
                    "Too many requests. Method={method_name}, PublisherId={}",
                    publisher(query).unwrap_or_default()
                ),
            ),
            tid,
        );
    }
    let burst = st.with_tenant(idx, |t| {
        if t.faults.management_5xx_burst > 0 {
            t.faults.management_5xx_burst -= 1;
            true
        } else {
            false
        }
    });
    if burst {
        st.count_5xx();
        return (
            af(
                500,
                "AF50000",
                "An internal error occurred. Retry the request.",
            ),
            tid,
        );
    }
    let q = parse_query(query);
    let reply = match (method.as_str(), rest.as_slice()) {
        ("POST", ["subscriptions", "start"]) => start(st, idx, &q),
        ("POST", ["subscriptions", "stop"]) => stop(st, idx, &q),
        ("GET", ["subscriptions", "list"]) => list(st, idx),
        ("GET", ["subscriptions", "content"]) => content(st, idx, host, &q, query),
        ("GET", ["audit", content_id]) => blob(st, idx, content_id),
        _ => af(404, "AF20000", "Resource not found."),
    };
    (reply, tid)
}

fn parse_query(q: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param<'a>(q: &'a [(String, String)], k: &str) -> Option<&'a str> {
    q.iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(k))
        .map(|(_, v)| v.as_str())
}

fn publisher(query: &str) -> Option<String> {
    param(&parse_query(query), "PublisherIdentifier").map(str::to_string)
}

fn content_type(q: &[(String, String)]) -> Result<Ct, Reply> {
    match param(q, "contentType") {
        None => Err(af(400, "AF20001", "Missing parameter: contentType.")),
        Some(c) => {
            Ct::from_name(c).ok_or_else(|| af(400, "AF20020", "The content type is not valid."))
        }
    }
}

fn start(st: &SimState, idx: usize, q: &[(String, String)]) -> Reply {
    let ct = match content_type(q) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let ts = st.tenant(idx);
    let tenant = st.events.tenants[idx].spec.tenant_id.clone();
    if !ts.audit_log_enabled {
        return af(
            400,
            &format!(
                "StartSubscription [CorrId={}][TenantId={tenant},ContentType={},ApplicationId=,PublisherId=][AppId=]",
                uuid::Uuid::new_v4(),
                ct.name()
            ),
            &format!(
                "Microsoft.Office.Compliance.Audit.DataServiceException: Tenant {tenant} does not exist."
            ),
        );
    }
    let now = st.now();
    st.with_tenant(idx, |t| match t.subscriptions.get(&ct) {
        Some(SubState::Disabled) => af(400, "AF20023", "The subscription was disabled."),
        Some(SubState::Enabled { .. }) => af(
            400,
            "AF20024",
            "The subscription is already enabled. No property change.",
        ),
        None => {
            t.subscriptions.insert(ct, SubState::Enabled { since: now });
            Reply::json(
                200,
                &json!({"contentType": ct.name(), "status": "enabled", "webhook": null}),
            )
        }
    })
}

fn stop(st: &SimState, idx: usize, q: &[(String, String)]) -> Reply {
    let ct = match content_type(q) {
        Ok(c) => c,
        Err(r) => return r,
    };
    st.with_tenant(idx, |t| match t.subscriptions.remove(&ct) {
        Some(_) => Reply {
            status: 200,
            headers: Vec::new(),
            body: Vec::new(),
        },
        None => af(
            400,
            "AF20022",
            "No subscription found for the specified content type.",
        ),
    })
}

fn list(st: &SimState, idx: usize) -> Reply {
    let subs = st.tenant(idx).subscriptions;
    let v: Vec<Value> = subs
        .iter()
        .map(|(ct, s)| {
            json!({"contentType": ct.name(), "status": match s { SubState::Enabled { .. } => "enabled", SubState::Disabled => "disabled" }, "webhook": null})
        })
        .collect();
    Reply::json(200, &Value::Array(v))
}

/// A listing time in one of the documented formats: `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM`,
/// `YYYY-MM-DDTHH:MM:SS`.
fn parse_api_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    for fmt in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(t.and_utc());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

/// A position in a listing: (contentCreated ms, hour, index) of the next item.
fn parse_next(s: &str) -> Option<(i64, i64, u32)> {
    let mut p = s.split('_');
    let a = p.next()?.parse().ok()?;
    let b = p.next()?.parse().ok()?;
    let c = p.next()?.parse().ok()?;
    p.next().is_none().then_some((a, b, c))
}

pub(crate) fn content_id(ct: Ct, hour: i64, idx: u32, created_ms: i64) -> String {
    format!(
        "{}{:07}${hour}${idx}${}$na0035",
        ms_to_time(created_ms).format("%Y%m%d%H%M%S%3f"),
        idx,
        ct.code()
    )
}

fn content(
    st: &SimState,
    idx: usize,
    host: &str,
    q: &[(String, String)],
    raw_query: &str,
) -> Reply {
    let ct = match content_type(q) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let ts = st.tenant(idx);
    let since = match ts.subscriptions.get(&ct) {
        None => {
            return af(
                400,
                "AF20022",
                "No subscription found for the specified content type.",
            );
        }
        Some(SubState::Disabled) => return af(400, "AF20023", "The subscription was disabled."),
        Some(SubState::Enabled { since }) => *since,
    };
    let now = st.now();
    let (start, end) = match (param(q, "startTime"), param(q, "endTime")) {
        (None, None) => (now - TimeDelta::hours(24), now),
        (Some(s), Some(e)) => match (parse_api_time(s), parse_api_time(e)) {
            (Some(s), Some(e)) => (s, e),
            _ => {
                return af(
                    400,
                    "AF20030",
                    "Start time and end time must both be specified (or both omitted) and be in a valid format.",
                );
            }
        },
        _ => {
            return af(
                400,
                "AF20030",
                "Start time and end time must both be specified (or both omitted) and be in a valid format.",
            );
        }
    };
    if end <= start || end - start > TimeDelta::hours(24) || start < now - TimeDelta::days(7) {
        return af(
            400,
            "AF20055",
            "Start time and end time must be in the past 7 days, start before end, and no more than 24 hours apart.",
        );
    }
    let after = match param(q, "nextPage") {
        None => None,
        Some(n) => match parse_next(n) {
            Some(p) => Some(p),
            None => return af(400, "AF20031", "Invalid nextPage input."),
        },
    };
    let model = &st.events.tenants[idx];
    let lag = &st.management.listing_lag;
    let (start_ms, end_ms, now_ms) = (
        start.timestamp_millis(),
        end.timestamp_millis(),
        now.timestamp_millis(),
    );
    let since_ms = since.timestamp_millis();
    let page_size = st.management.page_size.max(1);
    let mut items = Vec::new();
    let mut next = None;
    let mut hour = hour_of_ms(after.map_or(start_ms, |a| a.0.max(start_ms)));
    'hours: while hour <= hour_of_ms(end_ms - 1) {
        for b in st.audit.blobs(model, idx, ct, hour, lag).iter() {
            let key = (b.created_ms, hour, b.idx);
            if b.created_ms < start_ms || b.created_ms >= end_ms || b.created_ms < since_ms {
                continue;
            }
            if after.is_some_and(|a| key < a) || b.listable_ms() > now_ms {
                continue;
            }
            if items.len() == page_size {
                next = Some(key);
                break 'hours;
            }
            items.push((ct, hour, b.idx, b.created_ms));
        }
        hour += 1;
    }
    let foreign = st.with_tenant(idx, |t| {
        if t.faults.foreign_content_uri > 0 {
            t.faults.foreign_content_uri -= 1;
            true
        } else {
            false
        }
    });
    let uri_host = if foreign {
        match model.spec.cloud {
            Cloud::GccHigh | Cloud::Dod => "manage.office.com",
            _ => "manage.office365.us",
        }
    } else {
        host
    };
    let tenant = &model.spec.tenant_id;
    let body: Vec<Value> = items
        .iter()
        .map(|(ct, hour, i, created)| {
            let id = content_id(*ct, *hour, *i, *created);
            json!({
                "contentType": ct.name(),
                "contentId": id,
                "contentUri": format!("https://{uri_host}/api/v1.0/{tenant}/activity/feed/audit/{id}"),
                "contentCreated": ms_to_time(*created).format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
                "contentExpiration": ms_to_time(created + 7 * DAY_MS).format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
            })
        })
        .collect();
    let mut reply = Reply::json(200, &Value::Array(body));
    if let Some((c, h, i)) = next {
        // The next page: the same query with `nextPage`, on `/api/v1/` as in the reference.
        let kept: Vec<String> = raw_query
            .split('&')
            .filter(|p| !p.to_ascii_lowercase().starts_with("nextpage="))
            .map(str::to_string)
            .collect();
        let link = format!(
            "https://{host}/api/v1/{tenant}/activity/feed/subscriptions/content?{}&nextPage={c}_{h}_{i}",
            kept.join("&")
        );
        reply = reply.with_header("NextPageUri", link);
    }
    reply
}

fn blob(st: &SimState, idx: usize, content_id: &str) -> Reply {
    let parts: Vec<&str> = content_id.split('$').collect();
    let parsed = match parts.as_slice() {
        [_, hour, i, code, _] => match (hour.parse::<i64>(), i.parse::<u32>(), Ct::from_code(code))
        {
            (Ok(h), Ok(i), Some(ct)) => Some((h, i, ct)),
            _ => None,
        },
        _ => None,
    };
    let Some((hour, i, ct)) = parsed else {
        return af(400, "AF20052", "Content ID in the URL is invalid.");
    };
    let model = &st.events.tenants[idx];
    let blobs = st
        .audit
        .blobs(model, idx, ct, hour, &st.management.listing_lag);
    let Some(b) = blobs.iter().find(|b| b.idx == i) else {
        return af(404, "AF20050", "The specified content does not exist.");
    };
    let now_ms = st.now().timestamp_millis();
    let expired = st.with_tenant(idx, |t| {
        if t.faults.expired_content > 0 {
            t.faults.expired_content -= 1;
            true
        } else {
            false
        }
    });
    if expired || now_ms > b.created_ms + 7 * DAY_MS {
        return af(
            400,
            "AF20051",
            "Content requested with the content ID has already expired.",
        );
    }
    if b.listable_ms() > now_ms {
        return af(404, "AF20050", "The specified content does not exist.");
    }
    let records: Vec<Value> = b.records.iter().map(|r| render(model, ct, r)).collect();
    Reply::json(200, &Value::Array(records))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_time_formats_only() {
        assert!(parse_api_time("2024-05-01T00:00").is_some());
        assert!(parse_api_time("2024-05-01T00:00:05").is_some());
        assert!(parse_api_time("2024-05-01").is_some());
        assert!(parse_api_time("2024-05-01T00:00:05Z").is_none());
        assert!(parse_api_time("yesterday").is_none());
        assert_eq!(parse_next("1_2_3"), Some((1, 2, 3)));
        assert_eq!(parse_next("1_2"), None);
    }
}
