//! Users: every member and guest, enabled or not, with licences, last sign-in (Entra ID P1)
//! and mailbox purpose (user, shared, room, equipment), and whether each is billable.
//!
//! A full snapshot, one page of `/users` per read (so a large tenant's snapshot continues over
//! several polls): 999 users a page, or 120 with `signInActivity`, whose pages are also paced
//! at 10 a minute and counted in the reporting bucket at background priority. For each member
//! with a mail address, `/users/{id}/mailboxSettings` gives the mailbox purpose (Outlook
//! bucket). Without Entra ID P1 or `AuditLog.Read.All` the last sign-in is left out; without
//! `MailboxSettings.Read` the mailbox purpose is: both are reported as degradations.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{
    INFO, LOW, degraded, get_object, granted_roles, graph_url, has_any, is_new, is_no_mailbox,
    item, s, time_ms,
};
use crate::client::{ApiClient, Bucket, CallCost, Priority, SourceError, Tenant};
use crate::cloud::Api;
use crate::inventory::billable::{
    BILLABLE_TAG, Exclusion, Identity, MailboxPurpose, UserKind, billable,
};
use crate::ocsf::inventory::{InventoryObject, ObjectKind, inventory_events, user_object};
use crate::ocsf::{NormalizeError, NormalizeOptions};
use crate::source::{Change, SnapshotItem, SnapshotPage, SnapshotRead, SnapshotSource, SourceSpec};
use crate::stream::Stream;

const SELECT: &str = "id,displayName,userPrincipalName,mail,userType,accountEnabled,createdDateTime,assignedLicenses,onPremisesSyncEnabled";
/// Users per page without `signInActivity` (Graph's maximum).
pub const PAGE: u32 = 999;
/// Users per page with `signInActivity` (Graph returns at most 120).
pub const SIGNIN_ACTIVITY_PAGE: u32 = 120;
/// `signInActivity` requests are limited to 10 a minute.
pub const SIGNIN_ACTIVITY_SPACING: Duration = Duration::from_secs(6);

const SPEC: SourceSpec = SourceSpec {
    stream: Stream::Users,
    name: "inventory.users",
    api: Api::Graph,
    bucket: Bucket::Directory,
};

/// Progress of a users snapshot.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    /// The page being read (`None`: the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    link: Option<String>,
    /// Users of that page already delivered.
    #[serde(default)]
    skip: usize,
    /// Whether `signInActivity` can be read.
    sign_in_activity: bool,
    /// Whether mailbox settings can be read.
    mailbox_settings: bool,
}

/// The users inventory.
#[derive(Debug, Default)]
pub struct UsersSource {
    last_signin_activity: Mutex<Option<DateTime<Utc>>>,
}

impl UsersSource {
    /// The source.
    pub fn new() -> Self {
        Self::default()
    }

    async fn pace_signin_activity(
        &self,
        client: &ApiClient,
        deadline: DateTime<Utc>,
    ) -> Result<(), SourceError> {
        let clock = client.clock();
        let last = *self
            .last_signin_activity
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(last) = last {
            let at = last + TimeDelta::from_std(SIGNIN_ACTIVITY_SPACING).unwrap_or_default();
            let now = clock.now();
            if at > now {
                if at > deadline {
                    return Err(SourceError::DeadlineExceeded { cause: None });
                }
                clock
                    .sleep((at - now).to_std().unwrap_or(SIGNIN_ACTIVITY_SPACING))
                    .await;
            }
        }
        *self
            .last_signin_activity
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(clock.now());
        Ok(())
    }
}

fn first_link(tenant: &Tenant, sign_in_activity: bool) -> Result<String, SourceError> {
    let (select, top) = if sign_in_activity {
        (format!("{SELECT},signInActivity"), SIGNIN_ACTIVITY_PAGE)
    } else {
        (SELECT.to_string(), PAGE)
    };
    Ok(graph_url(
        tenant,
        "users",
        &[("$select", select), ("$top", top.to_string())],
    )?
    .to_string())
}

/// The user's kind: a guest by `userType`, or by the `#EXT#` UPN of a B2B account.
fn kind(u: &Value) -> UserKind {
    let guest = s(u, "userType").is_some_and(|t| t.eq_ignore_ascii_case("guest"))
        || s(u, "userPrincipalName").is_some_and(|p| p.contains("#EXT#"));
    if guest {
        UserKind::Guest
    } else {
        UserKind::Member
    }
}

fn licences(u: &Value) -> Vec<String> {
    let mut v: Vec<String> = u
        .get("assignedLicenses")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|l| s(l, "skuId").map(str::to_ascii_lowercase))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v.dedup();
    v
}

/// The inventory item of one user, with its mailbox purpose when known.
fn user_item(u: &Value, mailbox: Option<MailboxPurpose>, sign_in_activity: bool) -> SnapshotItem {
    let id = s(u, "id").unwrap_or_default();
    let kind = kind(u);
    let enabled = u.get("accountEnabled").and_then(Value::as_bool);
    let lic = licences(u);
    let identity = Identity {
        kind,
        enabled,
        licensed: !lic.is_empty(),
        mailbox,
    };
    let billing = billable(&identity);
    let relevant = json!({
        "upn": s(u, "userPrincipalName"), "name": s(u, "displayName"), "mail": s(u, "mail"),
        "type": s(u, "userType"), "enabled": enabled, "created": s(u, "createdDateTime"),
        "licences": lic, "mailbox": mailbox.map(MailboxPurpose::as_str),
    });
    let mut raw = u.clone();
    if let Some(o) = raw.as_object_mut() {
        o.insert(
            "mailboxPurpose".into(),
            json!(mailbox.map(MailboxPurpose::as_str)),
        );
        o.insert(
            "billing".into(),
            json!({"billable": billing.is_ok(), "exclusion": billing.err().map(Exclusion::as_str)}),
        );
        o.insert("signInActivityRead".into(), json!(sign_in_activity));
    }
    let mut tags = vec![
        match billing {
            Ok(()) => BILLABLE_TAG.to_string(),
            Err(e) => e.tag(),
        },
        match kind {
            UserKind::Member => "member".to_string(),
            UserKind::Guest => "guest".to_string(),
        },
    ];
    if enabled == Some(false) {
        tags.push("disabled".into());
    }
    if let Some(m) = mailbox {
        tags.push(format!("mailbox:{}", m.as_str()));
    }
    item(id, &relevant, raw, tags)
}

#[async_trait]
impl SnapshotSource for UsersSource {
    fn spec(&self) -> &SourceSpec {
        &SPEC
    }

    fn usage_tag(&self) -> Option<&'static str> {
        Some(BILLABLE_TAG)
    }

    async fn read(
        &self,
        client: &ApiClient,
        tenant: &Tenant,
        state: Option<&Value>,
        deadline: DateTime<Utc>,
    ) -> Result<SnapshotPage, SourceError> {
        let mut cost = CallCost::default();
        let mut notes = Vec::new();
        let mut st: State = match state.and_then(|v| serde_json::from_value(v.clone()).ok()) {
            Some(s) => s,
            None => {
                let roles = granted_roles(client, tenant, deadline).await?;
                let sia = has_any(&roles, &["AuditLog.Read.All"]);
                if !sia {
                    notes.push(degraded(
                        "signInActivity",
                        "forbidden",
                        "last sign-in of each user (needs AuditLog.Read.All)",
                    ));
                }
                let mbx = has_any(
                    &roles,
                    &["MailboxSettings.Read", "MailboxSettings.ReadWrite"],
                );
                if !mbx {
                    notes.push(degraded(
                        "mailboxSettings",
                        "forbidden",
                        "mailbox purpose (shared, room, equipment) and so the shared-mailbox billing exclusion (needs MailboxSettings.Read)",
                    ));
                }
                State {
                    link: None,
                    skip: 0,
                    sign_in_activity: sia,
                    mailbox_settings: mbx,
                }
            }
        };
        // One page of users (again, when a previous read stopped part-way through it).
        let page = loop {
            let link = match &st.link {
                Some(l) => l.clone(),
                None => first_link(tenant, st.sign_in_activity)?,
            };
            let url = ApiClient::validate_link(tenant, Api::Graph, &link)?;
            let (bucket, priority) = if st.sign_in_activity {
                self.pace_signin_activity(client, deadline).await?;
                (Bucket::Reports, Priority::Background)
            } else {
                (Bucket::Directory, Priority::Regular)
            };
            match client
                .get_page_as(tenant, bucket, &url, deadline, priority)
                .await
            {
                Ok(p) => break (link, p),
                Err(SourceError::LicenceRequired | SourceError::Forbidden { .. })
                    if st.sign_in_activity =>
                {
                    // No Entra ID P1: read the users without their last sign-in, from the start.
                    notes.push(degraded(
                        "signInActivity",
                        "licence_required",
                        "last sign-in of each user (needs Microsoft Entra ID P1)",
                    ));
                    st = State {
                        link: None,
                        skip: 0,
                        sign_in_activity: false,
                        ..st
                    };
                }
                Err(e) => return Err(e),
            }
        };
        let (link, page) = page;
        cost.add(page.cost);
        let mut items = Vec::new();
        let mut stopped_at = None;
        for (i, u) in page.value.iter().enumerate().skip(st.skip) {
            let Some(id) = s(u, "id") else { continue };
            let mailbox = if st.mailbox_settings
                && kind(u) == UserKind::Member
                && s(u, "mail").is_some()
            {
                let url = graph_url(tenant, &format!("users/{id}/mailboxSettings"), &[])?;
                match get_object(client, tenant, Bucket::Outlook, &url, deadline, &mut cost).await {
                    Ok(v) => Some(
                        s(&v, "userPurpose")
                            .map(MailboxPurpose::parse)
                            .unwrap_or(MailboxPurpose::Other),
                    ),
                    Err(e) if is_no_mailbox(&e) => Some(MailboxPurpose::None),
                    // Out of an application access policy's scope: purpose unknown.
                    Err(SourceError::Forbidden { .. }) => None,
                    Err(SourceError::DeadlineExceeded { .. }) => {
                        stopped_at = Some(i);
                        break;
                    }
                    Err(e) => return Err(e),
                }
            } else if kind(u) == UserKind::Member && st.mailbox_settings {
                Some(MailboxPurpose::None)
            } else {
                None
            };
            items.push(user_item(u, mailbox, st.sign_in_activity));
        }
        let (state, complete) = match (stopped_at, page.next_link) {
            (Some(i), _) => (
                Some(State {
                    link: Some(link),
                    skip: i,
                    ..st
                }),
                false,
            ),
            (None, Some(next)) => (
                Some(State {
                    link: Some(next.to_string()),
                    skip: 0,
                    ..st
                }),
                false,
            ),
            (None, None) => (None, true),
        };
        let state = state.map(|s| serde_json::to_value(s).unwrap_or(Value::Null));
        Ok(SnapshotPage {
            read: SnapshotRead::Full {
                items,
                state,
                complete,
            },
            cost,
            degraded: notes,
        })
    }

    fn normalize(
        &self,
        item: &SnapshotItem,
        change: Change,
        opts: &NormalizeOptions,
    ) -> Result<Vec<Value>, NormalizeError> {
        if change == Change::Disappeared {
            return inventory_events(
                Stream::Users,
                ObjectKind::User,
                &item.id,
                item.digest,
                None,
                change,
                opts,
            );
        }
        let u = &item.raw;
        let upn = s(u, "userPrincipalName");
        let name = s(u, "displayName");
        let enabled = u.get("accountEnabled").and_then(Value::as_bool);
        let guest = kind(u) == UserKind::Guest;
        let billing = u.get("billing").cloned().unwrap_or(Value::Null);
        let sia = u.get("signInActivity");
        let last_sign_in = if u.get("signInActivityRead").and_then(Value::as_bool) == Some(true) {
            json!({
                "interactive": sia.and_then(|v| s(v, "lastSignInDateTime")),
                "non_interactive": sia.and_then(|v| s(v, "lastNonInteractiveSignInDateTime")),
                "successful": sia.and_then(|v| s(v, "lastSuccessfulSignInDateTime")),
                "never": sia.is_none(),
            })
        } else {
            json!("unavailable")
        };
        let exclusion = billing.get("exclusion").and_then(Value::as_str);
        let message = format!(
            "{} {} ({}, {}): {}",
            if guest { "Guest" } else { "Member" },
            upn.or(name).unwrap_or(&item.id),
            if enabled == Some(false) {
                "disabled"
            } else {
                "enabled"
            },
            s(u, "mailboxPurpose")
                .map_or("mailbox unknown".to_string(), |m| format!("mailbox {m}")),
            match exclusion {
                None => "billable".to_string(),
                Some(e) => format!("not billable ({e})"),
            }
        );
        let obj = InventoryObject {
            kind: ObjectKind::User,
            uid: item.id.clone(),
            name: upn.map(str::to_string),
            user: Some(user_object(&item.id, upn, name, 1, enabled.map(|e| !e))),
            data: json!({
                "user_type": s(u, "userType"),
                "account_enabled": enabled,
                "created": s(u, "createdDateTime"),
                "licences": licences(u),
                "mailbox_purpose": s(u, "mailboxPurpose"),
                "on_premises_sync": u.get("onPremisesSyncEnabled"),
                "last_sign_in": last_sign_in,
                "billing": billing,
            }),
            created_time_ms: time_ms(u, "createdDateTime"),
            severity_id: INFO,
            change_severity_id: if guest && is_new(change) { LOW } else { INFO },
            message,
            labels: item.tags.clone(),
        };
        inventory_events(
            Stream::Users,
            ObjectKind::User,
            &item.id,
            item.digest,
            Some(&obj),
            change,
            opts,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_carry_billing_tags_and_ignore_sign_in_times_in_the_digest() {
        let u = json!({"id": "1", "userPrincipalName": "a@contoso.com", "userType": "Member",
            "accountEnabled": true, "assignedLicenses": [{"skuId": "X"}], "mail": "a@contoso.com",
            "signInActivity": {"lastSignInDateTime": "2026-01-01T00:00:00Z"}});
        let a = user_item(&u, Some(MailboxPurpose::User), true);
        assert_eq!(a.tags[0], "billable");
        let mut later = u.clone();
        later["signInActivity"]["lastSignInDateTime"] = json!("2026-02-01T00:00:00Z");
        assert_eq!(
            user_item(&later, Some(MailboxPurpose::User), true).digest,
            a.digest
        );
        let shared = user_item(&u, Some(MailboxPurpose::Room), true);
        assert_eq!(shared.tags[0], "excluded:resource_mailbox");
        assert_ne!(shared.digest, a.digest);
        let guest = json!({"id": "2", "userPrincipalName": "b_x.com#EXT#@contoso.com",
            "assignedLicenses": [{"skuId": "X"}]});
        assert_eq!(
            user_item(&guest, None, false).tags[..2],
            ["excluded:guest", "guest"]
        );
    }
}
