//! The identity inventory's snapshot sources: users, apps, roles, MFA registration,
//! conditional access and inbox rules (Microsoft Graph; `microsoft-apis` §7–8 of the team's
//! reference). Each reads the current state, classifies every object (the tags the summary
//! counts: billable, admin, no MFA, flagged rule...) and maps it to OCSF
//! (`crate::ocsf::inventory`).
//!
//! Budgets: directory objects are read in the directory bucket, mailboxes in the Outlook
//! bucket, `signInActivity` and `userRegistrationDetails` in the reporting bucket at background
//! priority (so the sign-in and audit logs always keep their share), never faster than
//! `signInActivity`'s own 10 requests a minute.
//!
//! Optional permissions and licences degrade the stream instead of failing it: the part that
//! cannot be read is reported as a [`Degradation`] (shown in the inventory summary) and the
//! rest goes on.

mod apps;
mod conditional_access;
mod inbox_rules;
mod mfa;
mod roles;
mod users;

pub use apps::AppsSource;
pub use conditional_access::ConditionalAccessSource;
pub use inbox_rules::InboxRulesSource;
pub use mfa::MfaSource;
pub use roles::RolesSource;
pub use users::UsersSource;

use chrono::{DateTime, Utc};
use serde_json::Value;
use url::Url;

use crate::client::{ApiClient, Bucket, Call, CallCost, Priority, SourceError, Tenant};
use crate::cloud::Api;
use crate::inventory::Degradation;
use crate::source::{Change, SnapshotItem};

/// OCSF severities used by the inventory.
pub(crate) const INFO: u32 = 1;
pub(crate) const LOW: u32 = 2;
pub(crate) const MEDIUM: u32 = 3;
pub(crate) const HIGH: u32 = 4;

/// A stable 64-bit digest (FNV-1a) of a JSON value. `serde_json` maps keep their keys
/// sorted, so equal objects have equal digests whatever order Microsoft sent them in.
pub(crate) fn digest_of(v: &Value) -> u64 {
    let s = v.to_string();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// A Graph v1.0 URL in the tenant's cloud.
pub(crate) fn graph_url(
    tenant: &Tenant,
    path: &str,
    query: &[(&str, String)],
) -> Result<Url, SourceError> {
    ApiClient::url(tenant, Api::Graph, &format!("v1.0/{path}"), query)
}

/// The application permissions the tenant granted (the token's `roles`).
pub(crate) async fn granted_roles(
    client: &ApiClient,
    tenant: &Tenant,
    deadline: DateTime<Utc>,
) -> Result<Vec<String>, SourceError> {
    let token = client
        .tokens()
        .token(tenant.cloud, &tenant.id, Api::Graph, deadline)
        .await?;
    if token.roles.is_empty() {
        return Err(SourceError::ConsentRevoked);
    }
    Ok(token.roles)
}

/// Whether any of `wanted` is among `roles`.
pub(crate) fn has_any(roles: &[String], wanted: &[&str]) -> bool {
    roles
        .iter()
        .any(|r| wanted.iter().any(|w| r.eq_ignore_ascii_case(w)))
}

/// A degradation.
pub(crate) fn degraded(what: &str, reason: &str, lost: &str) -> Degradation {
    Degradation {
        what: what.to_string(),
        reason: reason.to_string(),
        lost: lost.to_string(),
    }
}

/// Reads every page of a Graph collection.
pub(crate) async fn get_all(
    client: &ApiClient,
    tenant: &Tenant,
    bucket: Bucket,
    priority: Priority,
    first: &Url,
    deadline: DateTime<Utc>,
    cost: &mut CallCost,
) -> Result<Vec<Value>, SourceError> {
    let mut out = Vec::new();
    let mut next = Some(first.clone());
    while let Some(url) = next {
        let page = client
            .get_page_as(tenant, bucket, &url, deadline, priority)
            .await?;
        cost.add(page.cost);
        out.extend(page.value);
        next = page.next_link;
    }
    Ok(out)
}

/// GETs one Graph object (not a collection).
pub(crate) async fn get_object(
    client: &ApiClient,
    tenant: &Tenant,
    bucket: Bucket,
    url: &Url,
    deadline: DateTime<Utc>,
    cost: &mut CallCost,
) -> Result<Value, SourceError> {
    let call = Call::get(tenant, Api::Graph, bucket, url, deadline);
    let (resp, v) = client
        .send_with(&call, |http| {
            serde_json::from_slice::<Value>(&http.body)
                .map_err(|e| crate::client::error::decode_error(&e, &http.body))
        })
        .await?;
    cost.add(resp.cost);
    Ok(v)
}

/// Whether an error on a mailbox call means "this user has no Exchange Online mailbox".
pub(crate) fn is_no_mailbox(e: &SourceError) -> bool {
    match e {
        SourceError::NotFound { .. } => true,
        SourceError::BadRequest { code, .. } | SourceError::Forbidden { code } => {
            code.eq_ignore_ascii_case("MailboxNotEnabledForRESTAPI")
                || code.eq_ignore_ascii_case("MailboxNotHostedInExchangeOnline")
        }
        _ => false,
    }
}

/// A string field.
pub(crate) fn s<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// Builds an item: the id, the digest of `relevant`, the raw object and its tags.
pub(crate) fn item(id: &str, relevant: &Value, raw: Value, tags: Vec<String>) -> SnapshotItem {
    SnapshotItem {
        id: id.to_string(),
        digest: digest_of(relevant),
        raw,
        tags,
    }
}

/// Milliseconds since the epoch of a Graph timestamp field.
pub(crate) fn time_ms(v: &Value, key: &str) -> Option<i64> {
    s(v, key).and_then(crate::ocsf::parse_time_ms)
}

/// The wording of a change for messages.
pub(crate) fn is_new(change: Change) -> bool {
    matches!(change, Change::Appeared)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_ignore_key_order_and_see_value_changes() {
        let a: Value = serde_json::from_str(r#"{"a":1,"b":[1,2]}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"b":[1,2],"a":1}"#).unwrap();
        let c: Value = serde_json::from_str(r#"{"b":[2,1],"a":1}"#).unwrap();
        assert_eq!(digest_of(&a), digest_of(&b));
        assert_ne!(digest_of(&a), digest_of(&c));
    }

    #[test]
    fn mailbox_errors() {
        assert!(is_no_mailbox(&SourceError::NotFound {
            code: "ResourceNotFound".into()
        }));
        assert!(is_no_mailbox(&SourceError::BadRequest {
            status: 400,
            code: "MailboxNotEnabledForRESTAPI".into()
        }));
        assert!(!is_no_mailbox(&SourceError::Forbidden {
            code: "ErrorAccessDenied".into()
        }));
    }
}
