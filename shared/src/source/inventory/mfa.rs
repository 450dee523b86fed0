//! MFA: each user's authentication method registration
//! (`/reports/authenticationMethods/userRegistrationDetails`), marking users with no method
//! that can serve as a second factor and users with phone methods only (SMS, voice).
//!
//! Its throttling bucket is not documented; it is read in the reporting bucket (it sits under
//! `/reports`, beside the `credentialUserRegistrationDetails` the reports limits name) at
//! background priority, so it never takes the sign-in logs' share. Without a licence or
//! `AuditLog.Read.All` the stream is unavailable, reported as a degradation, and what was known
//! stays as it was.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{HIGH, INFO, LOW, MEDIUM, degraded, get_all, graph_url, item, s};
use crate::client::{ApiClient, Bucket, CallCost, Priority, SourceError, Tenant};
use crate::cloud::Api;
use crate::inventory::classify::{MfaStrength, mfa_strength};
use crate::ocsf::inventory::{InventoryObject, ObjectKind, inventory_events, user_object};
use crate::ocsf::{NormalizeError, NormalizeOptions};
use crate::source::{Change, SnapshotItem, SnapshotPage, SnapshotRead, SnapshotSource, SourceSpec};
use crate::stream::Stream;

const SPEC: SourceSpec = SourceSpec {
    stream: Stream::Mfa,
    name: "inventory.mfa",
    api: Api::Graph,
    bucket: Bucket::Reports,
};

/// The MFA registration inventory.
#[derive(Debug, Default)]
pub struct MfaSource;

impl MfaSource {
    /// The source.
    pub fn new() -> Self {
        MfaSource
    }
}

fn methods(r: &Value) -> Vec<String> {
    let mut m: Vec<String> = r
        .get("methodsRegistered")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    m.sort();
    m.dedup();
    m
}

#[async_trait]
impl SnapshotSource for MfaSource {
    fn spec(&self) -> &SourceSpec {
        &SPEC
    }

    async fn read(
        &self,
        client: &ApiClient,
        tenant: &Tenant,
        _state: Option<&Value>,
        deadline: DateTime<Utc>,
    ) -> Result<SnapshotPage, SourceError> {
        let mut cost = CallCost::default();
        let url = graph_url(
            tenant,
            "reports/authenticationMethods/userRegistrationDetails",
            &[],
        )?;
        let records = match get_all(
            client,
            tenant,
            Bucket::Reports,
            Priority::Background,
            &url,
            deadline,
            &mut cost,
        )
        .await
        {
            Ok(r) => r,
            Err(e @ (SourceError::LicenceRequired | SourceError::Forbidden { .. })) => {
                let (reason, need) = if matches!(e, SourceError::LicenceRequired) {
                    ("licence_required", "Microsoft Entra ID P1/P2")
                } else {
                    ("forbidden", "AuditLog.Read.All")
                };
                return Ok(SnapshotPage {
                    read: SnapshotRead::Unavailable,
                    cost,
                    degraded: vec![degraded(
                        "userRegistrationDetails",
                        reason,
                        &format!(
                            "MFA registration of every user: no-MFA and weak-MFA counts (needs {need})"
                        ),
                    )],
                });
            }
            Err(e) => return Err(e),
        };
        let items = records
            .iter()
            .filter_map(|r| {
                let id = s(r, "id")?;
                let m = methods(r);
                let strength = mfa_strength(m.iter().map(String::as_str));
                let guest = s(r, "userType").is_some_and(|t| t.eq_ignore_ascii_case("guest"));
                let admin = r.get("isAdmin").and_then(Value::as_bool) == Some(true);
                let mut tags = vec![strength.as_str().to_string()];
                if guest {
                    tags.push("guest".into());
                }
                if admin {
                    tags.push("admin".into());
                    if strength != MfaStrength::Strong {
                        tags.push("admin_without_strong_mfa".into());
                    }
                }
                let relevant = json!({
                    "methods": m, "mfa_registered": r.get("isMfaRegistered"),
                    "mfa_capable": r.get("isMfaCapable"), "admin": admin, "guest": guest,
                    "upn": s(r, "userPrincipalName"),
                    "preferred": s(r, "userPreferredMethodForSecondaryAuthentication"),
                });
                let mut raw = r.clone();
                if let Some(o) = raw.as_object_mut() {
                    o.insert("strength".into(), json!(strength.as_str()));
                }
                Some(item(id, &relevant, raw, tags))
            })
            .collect();
        Ok(SnapshotPage::whole(items, cost))
    }

    fn normalize(
        &self,
        item: &SnapshotItem,
        change: Change,
        opts: &NormalizeOptions,
    ) -> Result<Vec<Value>, NormalizeError> {
        let kind = ObjectKind::MfaRegistration;
        if change == Change::Disappeared {
            return inventory_events(Stream::Mfa, kind, &item.id, item.digest, None, change, opts);
        }
        let r = &item.raw;
        let upn = s(r, "userPrincipalName");
        let name = s(r, "userDisplayName");
        let strength = s(r, "strength").unwrap_or("no_mfa");
        let admin = r.get("isAdmin").and_then(Value::as_bool) == Some(true);
        let mut user = user_object(&item.id, upn, name, if admin { 2 } else { 1 }, None);
        if let Some(o) = user.as_object_mut() {
            o.insert("has_mfa".into(), json!(strength != "no_mfa"));
        }
        let severity = match (strength, admin) {
            ("mfa", _) => INFO,
            (_, true) => HIGH,
            ("weak_mfa_only", false) => LOW,
            _ => MEDIUM,
        };
        let obj = InventoryObject {
            kind,
            uid: item.id.clone(),
            name: upn.map(str::to_string),
            user: Some(user),
            data: json!({
                "strength": strength,
                "methods": methods(r),
                "is_mfa_registered": r.get("isMfaRegistered"),
                "is_mfa_capable": r.get("isMfaCapable"),
                "is_admin": admin,
                "user_type": s(r, "userType"),
                "preferred_method": s(r, "userPreferredMethodForSecondaryAuthentication"),
            }),
            created_time_ms: None,
            severity_id: severity,
            change_severity_id: severity,
            message: format!(
                "{} {}: {}",
                if admin { "Admin" } else { "User" },
                upn.unwrap_or(&item.id),
                match strength {
                    "mfa" => "strong MFA registered",
                    "weak_mfa_only" => "phone (SMS/voice) MFA only",
                    _ => "no MFA method registered",
                }
            ),
            labels: item.tags.clone(),
        };
        inventory_events(
            Stream::Mfa,
            kind,
            &item.id,
            item.digest,
            Some(&obj),
            change,
            opts,
        )
    }
}
