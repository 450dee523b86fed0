//! Inbox rules: every mailbox's rules (`/users/{id}/mailFolders/inbox/messageRules`), each
//! flagged when it forwards or redirects outside the tenant's domains, deletes, moves mail to
//! Deleted Items, Junk, RSS or Archive, marks it read, or has a name made only of punctuation.
//! Rules set before onboarding are found this way: the audit log only shows new ones.
//!
//! The snapshot is spread over the day: each poll reads one part, a page of
//! [`USERS_PER_PART`] users from the directory and the rules of those with a mailbox (Outlook
//! bucket, one request per mailbox, plus one listing of its top-level folders when a rule
//! moves mail somewhere that is not a well-known folder name). A
//! 5,000-mailbox tenant polled every 5 minutes is read in about 8 hours, at a few requests a
//! second; Outlook's own limit is per mailbox (10,000 requests per 10 minutes), far above.
//! Without `MailboxSettings.Read` the stream is unavailable (a degradation).

use std::collections::{BTreeSet, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{
    HIGH, INFO, LOW, MEDIUM, degraded, get_all, granted_roles, graph_url, has_any, is_no_mailbox,
    item, s,
};
use crate::client::{ApiClient, Bucket, CallCost, Priority, SourceError, Tenant};
use crate::cloud::Api;
use crate::inventory::classify::{RuleFlag, is_external, is_hidden_folder, is_punctuation_name};
use crate::ocsf::inventory::{InventoryObject, ObjectKind, inventory_events, user_object};
use crate::ocsf::{NormalizeError, NormalizeOptions};
use crate::source::{Change, SnapshotItem, SnapshotPage, SnapshotRead, SnapshotSource, SourceSpec};
use crate::stream::Stream;

/// Users (hence at most as many mailboxes) read per part, one part per poll.
pub const USERS_PER_PART: u32 = 100;

const SPEC: SourceSpec = SourceSpec {
    stream: Stream::InboxRules,
    name: "inventory.inbox_rules",
    api: Api::Graph,
    bucket: Bucket::Outlook,
};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    /// The next page of users to read.
    link: String,
    /// The tenant's domains (lowercase): forwarding elsewhere is external.
    domains: Vec<String>,
}

/// The inbox rules inventory.
#[derive(Debug, Default)]
pub struct InboxRulesSource;

impl InboxRulesSource {
    /// The source.
    pub fn new() -> Self {
        InboxRulesSource
    }
}

/// Recipient addresses of an action that may be one recipient or a list.
fn addresses(v: Option<&Value>) -> Vec<String> {
    let one = |r: &Value| {
        r.get("emailAddress")
            .and_then(|e| s(e, "address"))
            .map(str::to_ascii_lowercase)
    };
    match v {
        Some(Value::Array(a)) => a.iter().filter_map(one).collect(),
        Some(o @ Value::Object(_)) => one(o).into_iter().collect(),
        _ => Vec::new(),
    }
}

/// The flags of one rule, given the display names of the folders it moves mail to.
pub fn rule_flags(
    rule: &Value,
    domains: &[String],
    folder_names: &HashMap<String, String>,
) -> (BTreeSet<RuleFlag>, Vec<String>) {
    let mut flags = BTreeSet::new();
    let a = rule.get("actions").cloned().unwrap_or(Value::Null);
    let mut external = Vec::new();
    for key in ["forwardTo", "forwardAsAttachmentTo", "redirectTo"] {
        for addr in addresses(a.get(key)) {
            if is_external(&addr, domains) {
                external.push(addr);
            }
        }
    }
    if !external.is_empty() {
        flags.insert(RuleFlag::ForwardsExternal);
    }
    if a.get("delete").and_then(Value::as_bool) == Some(true)
        || a.get("permanentDelete").and_then(Value::as_bool) == Some(true)
    {
        flags.insert(RuleFlag::Deletes);
    }
    if let Some(folder) = s(&a, "moveToFolder") {
        let name = folder_names
            .get(folder)
            .map(String::as_str)
            .unwrap_or(folder);
        if is_hidden_folder(name) || is_hidden_folder(folder) {
            flags.insert(RuleFlag::MovesToHiddenFolder);
        }
    }
    if a.get("markAsRead").and_then(Value::as_bool) == Some(true) {
        flags.insert(RuleFlag::MarksRead);
    }
    if is_punctuation_name(s(rule, "displayName").unwrap_or_default()) {
        flags.insert(RuleFlag::PunctuationName);
    }
    external.sort();
    external.dedup();
    (flags, external)
}

#[async_trait]
impl SnapshotSource for InboxRulesSource {
    fn spec(&self) -> &SourceSpec {
        &SPEC
    }

    fn max_parts_per_poll(&self) -> Option<usize> {
        Some(1)
    }

    async fn read(
        &self,
        client: &ApiClient,
        tenant: &Tenant,
        state: Option<&Value>,
        deadline: DateTime<Utc>,
    ) -> Result<SnapshotPage, SourceError> {
        let mut cost = CallCost::default();
        let st: State = match state.and_then(|v| serde_json::from_value(v.clone()).ok()) {
            Some(s) => s,
            None => {
                let roles = granted_roles(client, tenant, deadline).await?;
                if !has_any(
                    &roles,
                    &["MailboxSettings.Read", "MailboxSettings.ReadWrite"],
                ) {
                    return Ok(SnapshotPage {
                        read: SnapshotRead::Unavailable,
                        cost,
                        degraded: vec![degraded(
                            "messageRules",
                            "forbidden",
                            "inbox rules of every mailbox: existing forwarding and hiding rules go unseen (needs MailboxSettings.Read)",
                        )],
                    });
                }
                let url = graph_url(tenant, "domains", &[("$select", "id".into())])?;
                let mut domains: Vec<String> = get_all(
                    client,
                    tenant,
                    Bucket::Directory,
                    Priority::Regular,
                    &url,
                    deadline,
                    &mut cost,
                )
                .await?
                .iter()
                .filter_map(|d| s(d, "id").map(str::to_ascii_lowercase))
                .collect();
                domains.sort();
                domains.dedup();
                let link = graph_url(
                    tenant,
                    "users",
                    &[
                        (
                            "$select",
                            "id,userPrincipalName,displayName,mail,userType".into(),
                        ),
                        ("$top", USERS_PER_PART.to_string()),
                    ],
                )?
                .to_string();
                State { link, domains }
            }
        };
        let url = ApiClient::validate_link(tenant, Api::Graph, &st.link)?;
        let page = client
            .get_page_as(tenant, Bucket::Directory, &url, deadline, Priority::Regular)
            .await?;
        cost.add(page.cost);
        let mut items = Vec::new();
        for u in &page.value {
            let (Some(uid), Some(_mail)) = (s(u, "id"), s(u, "mail")) else {
                continue;
            };
            if s(u, "userType").is_some_and(|t| t.eq_ignore_ascii_case("guest")) {
                continue;
            }
            let url = graph_url(
                tenant,
                &format!("users/{uid}/mailFolders/inbox/messageRules"),
                &[],
            )?;
            let rules = match get_all(
                client,
                tenant,
                Bucket::Outlook,
                Priority::Regular,
                &url,
                deadline,
                &mut cost,
            )
            .await
            {
                Ok(r) => r,
                Err(e) if is_no_mailbox(&e) => continue,
                // Out of an application access policy's scope: nothing to read here.
                Err(SourceError::Forbidden { .. }) => continue,
                Err(e) => return Err(e),
            };
            // Where rules move mail: one listing of the mailbox's top-level folders (Deleted
            // Items, Junk Email, Archive, RSS Feeds are all top-level; a folder not among
            // them is a subfolder, somewhere the owner still looks).
            let mut folder_names: HashMap<String, String> = HashMap::new();
            let moves = rules.iter().any(|r| {
                r.get("actions")
                    .and_then(|a| s(a, "moveToFolder"))
                    .is_some_and(|f| !is_hidden_folder(f))
            });
            if moves {
                let url = graph_url(
                    tenant,
                    &format!("users/{uid}/mailFolders"),
                    &[("$select", "id,displayName".into()), ("$top", "100".into())],
                )?;
                match get_all(
                    client,
                    tenant,
                    Bucket::Outlook,
                    Priority::Regular,
                    &url,
                    deadline,
                    &mut cost,
                )
                .await
                {
                    Ok(folders) => {
                        for f in folders {
                            if let (Some(id), Some(name)) = (s(&f, "id"), s(&f, "displayName")) {
                                folder_names.insert(id.to_string(), name.to_string());
                            }
                        }
                    }
                    Err(e) if is_no_mailbox(&e) => {}
                    Err(e) => return Err(e),
                }
            }
            for r in &rules {
                let Some(rid) = s(r, "id") else { continue };
                let (flags, external) = rule_flags(r, &st.domains, &folder_names);
                let id = format!("{uid}/{rid}");
                let mut tags: Vec<String> = vec!["rule".into()];
                if !flags.is_empty() {
                    tags.push("flagged".into());
                }
                tags.extend(flags.iter().map(|f| f.as_str().to_string()));
                let mut relevant = r.clone();
                if let Some(o) = relevant.as_object_mut() {
                    o.remove("hasError");
                }
                let target = r
                    .get("actions")
                    .and_then(|a| s(a, "moveToFolder"))
                    .and_then(|f| folder_names.get(f).cloned());
                let raw = json!({
                    "rule": r,
                    "mailbox": {"id": uid, "userPrincipalName": s(u, "userPrincipalName"), "displayName": s(u, "displayName")},
                    "flags": flags.iter().map(|f| f.as_str()).collect::<Vec<_>>(),
                    "externalRecipients": external,
                    "moveToFolderName": target,
                });
                items.push(item(&id, &relevant, raw, tags));
            }
        }
        let (state, complete) = match page.next_link {
            Some(next) => (
                Some(
                    serde_json::to_value(State {
                        link: next.to_string(),
                        domains: st.domains,
                    })
                    .unwrap_or(Value::Null),
                ),
                false,
            ),
            None => (None, true),
        };
        Ok(SnapshotPage::new(
            SnapshotRead::Full {
                items,
                state,
                complete,
            },
            cost,
        ))
    }

    fn normalize(
        &self,
        item: &SnapshotItem,
        change: Change,
        opts: &NormalizeOptions,
    ) -> Result<Vec<Value>, NormalizeError> {
        let kind = ObjectKind::InboxRule;
        let stream = Stream::InboxRules;
        if change == Change::Disappeared {
            return inventory_events(stream, kind, &item.id, item.digest, None, change, opts);
        }
        let raw = &item.raw;
        let rule = &raw["rule"];
        let mbx = &raw["mailbox"];
        let upn = s(mbx, "userPrincipalName");
        let tag = |t: &str| item.tags.iter().any(|x| x == t);
        let flagged = tag("flagged");
        let severity = if tag("forwards_external") || (tag("deletes") && tag("punctuation_name")) {
            HIGH
        } else if flagged {
            MEDIUM
        } else {
            INFO
        };
        let change_severity = if flagged { severity.max(MEDIUM) } else { LOW };
        let name = s(rule, "displayName").unwrap_or_default();
        let flags: Vec<&str> = raw["flags"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let obj = InventoryObject {
            kind,
            uid: item.id.clone(),
            name: Some(name.to_string()),
            user: Some(user_object(
                s(mbx, "id").unwrap_or_default(),
                upn,
                s(mbx, "displayName"),
                1,
                None,
            )),
            data: json!({
                "enabled": rule.get("isEnabled"),
                "sequence": rule.get("sequence"),
                "conditions": rule.get("conditions"),
                "actions": rule.get("actions"),
                "flags": flags,
                "external_recipients": raw.get("externalRecipients"),
                "move_to_folder_name": raw.get("moveToFolderName"),
            }),
            created_time_ms: None,
            severity_id: severity,
            change_severity_id: change_severity,
            message: format!(
                "Inbox rule {name:?} of {}: {}",
                upn.unwrap_or("a mailbox"),
                if flags.is_empty() {
                    "not flagged".to_string()
                } else {
                    format!("flagged ({})", flags.join(", "))
                }
            ),
            labels: item.tags.clone(),
        };
        inventory_events(
            stream,
            kind,
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

    fn flags(rule: Value, folders: &[(&str, &str)]) -> Vec<&'static str> {
        let domains = vec!["contoso.com".to_string()];
        let names = folders
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        rule_flags(&rule, &domains, &names)
            .0
            .iter()
            .map(|f| f.as_str())
            .collect()
    }

    #[test]
    fn flags_follow_the_actions() {
        let ordinary = json!({"displayName": "Newsletters", "actions": {"moveToFolder": "AAMk1", "stopProcessingRules": true}});
        assert!(flags(ordinary.clone(), &[("AAMk1", "Newsletters")]).is_empty());
        assert_eq!(
            flags(ordinary, &[("AAMk1", "RSS Feeds")]),
            vec!["moves_to_hidden_folder"]
        );
        let fwd = json!({"displayName": "x", "actions": {"forwardTo": [{"emailAddress": {"address": "Drop@Evil.example"}}]}});
        assert_eq!(flags(fwd, &[]), vec!["forwards_external"]);
        let internal = json!({"displayName": "x", "actions": {"forwardTo": [{"emailAddress": {"address": "boss@contoso.com"}}]}});
        assert!(flags(internal, &[]).is_empty());
        // `redirectTo` as one recipient (older v1.0) or a list.
        let redirect_one = json!({"displayName": "x", "actions": {"redirectTo": {"emailAddress": {"address": "a@b.example"}}}});
        assert_eq!(flags(redirect_one, &[]), vec!["forwards_external"]);
        let hide = json!({"displayName": ".", "actions": {"delete": true, "markAsRead": true}});
        assert_eq!(
            flags(hide, &[]),
            vec!["deletes", "marks_read", "punctuation_name"]
        );
        let wk = json!({"displayName": "junk it", "actions": {"moveToFolder": "junkemail"}});
        assert_eq!(flags(wk, &[]), vec!["moves_to_hidden_folder"]);
    }
}
