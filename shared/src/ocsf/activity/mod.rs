//! Unified Audit Log records (Office 365 Management Activity API) → OCSF 1.8.0.
//!
//! [`route_unified_audit`] picks the class from the record's `Operation` (and `Workload`);
//! [`normalize_unified_audit`] builds the event. The choices are written down in `DESIGN.md`
//! ("Unified audit log"). In short:
//! - inbox rules (`New-`, `Set-`, `Remove-`, `Enable-`, `Disable-InboxRule`, and Outlook's
//!   `UpdateInboxRules`) → **3004 Entity Management**, the rule as the entity (type 99 "Inbox
//!   Rule"), its conditions, exceptions and actions (forward/redirect targets, delete,
//!   move/copy to folder, mark as read, stop processing) in `entity.data`;
//! - `Set-Mailbox` → 3004 on the mailbox (type 99 "Mailbox"), forwarding in
//!   `entity.data.forwarding`; transport rules → 3004 on a policy (type 5);
//! - mailbox, recipient and folder permissions → **3005 User Access Management** (the grantee
//!   as `user`, the access rights as `privileges`, the mailbox or folder as `resource`);
//! - consent and permission grants from Entra ID → 3005; application and service principal
//!   changes → **6003 API Activity** with the object in `resources`;
//! - `UserLoggedIn` / `UserLoginFailed` → **3002 Authentication**, the fields Graph sign-ins
//!   fill where the record has them;
//! - Power Automate `CreateFlow` / `EditFlow` / `DeleteFlow` / permission changes → 3004 on the
//!   flow (type 99 "Power Automate flow");
//! - `MailItemsAccessed` and every other operation → 6003 API Activity (activity from the
//!   operation's verb), its parameters in `api.request.data`.
//!
//! Only a missing `Id`, or a missing or unparseable `CreationTime`, is an error; an unknown
//! operation, record type or workload is a generic 6003 event, never a failure.

use serde_json::{Map, Value, json};

mod value;

use super::common::{clean_ip, is_valid_email, parse_time_ms};
use super::enums::{self, Class, OTHER, observable as obs};
use super::{NormalizeError, NormalizeOptions};
use crate::stream::Stream;
use value::{Envelope, Src, UserOut, finish, observable};

/// `metadata.log_provider` of unified audit events.
pub const LOG_PROVIDER: &str = "Office 365 Management Activity API";

/// Where a unified audit record goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UalRoute {
    /// An inbox rule cmdlet or Outlook's `UpdateInboxRules`: 3004, the rule as the entity.
    InboxRule,
    /// `Set-Mailbox` (forwarding among its parameters): 3004, the mailbox as the entity.
    Mailbox,
    /// A transport (mail flow) rule cmdlet: 3004, the rule as a policy entity.
    TransportRule,
    /// A mailbox, recipient or folder permission change: 3005.
    MailboxPermission,
    /// `UserLoggedIn` / `UserLoginFailed`: 3002.
    Logon,
    /// A consent or permission grant in Entra ID: 3005.
    AppGrant,
    /// An application or service principal change in Entra ID: 6003 with the object.
    AppChange,
    /// A Power Automate flow change: 3004, the flow as the entity.
    Flow,
    /// `MailItemsAccessed`: 6003 Read with the mailbox and folders.
    MailItemsAccessed,
    /// Anything else: 6003, activity from the operation's verb.
    Generic,
}

impl UalRoute {
    /// The OCSF class of the route.
    pub fn class(self) -> Class {
        match self {
            UalRoute::InboxRule | UalRoute::Mailbox | UalRoute::TransportRule | UalRoute::Flow => {
                Class::EntityManagement
            }
            UalRoute::MailboxPermission | UalRoute::AppGrant => Class::UserAccess,
            UalRoute::Logon => Class::Authentication,
            UalRoute::AppChange | UalRoute::MailItemsAccessed | UalRoute::Generic => {
                Class::ApiActivity
            }
        }
    }
}

/// Picks the route of a record from its `Operation` and `Workload` (case-insensitive; Entra
/// ID operations end with a period, "Consent to application.").
pub fn route_unified_audit(operation: &str, workload: Option<&str>) -> UalRoute {
    let op = operation.trim().trim_end_matches('.').to_ascii_lowercase();
    let workload = workload.unwrap_or("").to_ascii_lowercase();
    match op.as_str() {
        "new-inboxrule" | "set-inboxrule" | "remove-inboxrule" | "enable-inboxrule"
        | "disable-inboxrule" | "updateinboxrules" => return UalRoute::InboxRule,
        "set-mailbox" => return UalRoute::Mailbox,
        "new-transportrule"
        | "set-transportrule"
        | "remove-transportrule"
        | "enable-transportrule"
        | "disable-transportrule" => return UalRoute::TransportRule,
        "add-mailboxpermission"
        | "remove-mailboxpermission"
        | "add-recipientpermission"
        | "remove-recipientpermission"
        | "add-mailboxfolderpermission"
        | "set-mailboxfolderpermission"
        | "remove-mailboxfolderpermission" => return UalRoute::MailboxPermission,
        "userloggedin" | "userloginfailed" => return UalRoute::Logon,
        "mailitemsaccessed" => return UalRoute::MailItemsAccessed,
        "consent to application"
        | "add delegated permission grant"
        | "remove delegated permission grant"
        | "add app role assignment to service principal"
        | "remove app role assignment from service principal"
        | "add app role assignment grant to user"
        | "remove app role assignment from user"
        | "revoke consent" => return UalRoute::AppGrant,
        _ => {}
    }
    if workload == "azureactivedirectory"
        && (op.contains("service principal") || op.contains("application"))
    {
        return UalRoute::AppChange;
    }
    if workload == "microsoftflow" && (op.contains("flow") || op.ends_with("permissions")) {
        return UalRoute::Flow;
    }
    UalRoute::Generic
}

/// The generic activity of an operation from its verb: create 1, read 2, update 3, delete 4,
/// else 99 (Other, labelled with the operation).
fn verb_activity(op: &str) -> u32 {
    let o = op.trim().to_ascii_lowercase();
    let starts = |p: &[&str]| p.iter().any(|x| o.starts_with(x));
    if starts(&["new-", "add", "create", "register", "install", "upload"]) {
        1
    } else if starts(&[
        "remove-",
        "delete",
        "softdelete",
        "harddelete",
        "movetodeleteditems",
        "purge",
        "revoke",
    ]) {
        4
    } else if starts(&[
        "set-", "update", "edit", "enable", "disable", "modify", "change", "reset", "restore",
        "rename", "put",
    ]) {
        3
    } else if starts(&[
        "get-", "read", "view", "access", "search", "preview", "download", "sync", "list", "export",
    ]) {
        2
    } else {
        OTHER
    }
}

/// A collection of `{Name, Value}` pairs (`Parameters`, `ExtendedProperties`,
/// `OperationProperties`, `DeviceProperties`) as an ordered name → value object. Values stay as
/// Microsoft sent them (usually strings); pairs without a name are skipped.
fn name_values(v: Option<&Value>) -> Map<String, Value> {
    let mut out = Map::new();
    let Some(items) = v.and_then(Value::as_array) else {
        // Some exports flatten the collection into an object already.
        if let Some(o) = v.and_then(Value::as_object) {
            return o.clone();
        }
        return out;
    };
    for item in items {
        let name = item
            .get("Name")
            .or_else(|| item.get("name"))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|n| !n.is_empty());
        if let Some(name) = name {
            let value = item
                .get("Value")
                .or_else(|| item.get("value"))
                .cloned()
                .unwrap_or(Value::Null);
            out.insert(name.to_string(), value);
        }
    }
    out
}

/// A case-insensitive lookup in a name → value object.
fn get_ci<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    m.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
        .filter(|v| !v.is_null())
}

fn text_ci<'a>(m: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    get_ci(m, key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// A cmdlet parameter value as a typed JSON value: `"True"`/`"False"` → booleans, integers →
/// numbers, anything else as given.
fn typed(v: &Value) -> Value {
    match v {
        Value::String(s) => {
            let t = s.trim();
            if t.eq_ignore_ascii_case("true") {
                Value::Bool(true)
            } else if t.eq_ignore_ascii_case("false") {
                Value::Bool(false)
            } else {
                Value::String(t.to_string())
            }
        }
        other => other.clone(),
    }
}

fn as_bool(v: Option<&Value>) -> Option<bool> {
    match v.map(typed)? {
        Value::Bool(b) => Some(b),
        _ => None,
    }
}

/// The e-mail address in a recipient as cmdlets log it: `a@b.example`, `smtp:a@b.example`,
/// `"Name" [SMTP:a@b.example]`, `Name <a@b.example>`; otherwise the text as given (a mailbox
/// alias or display name).
fn recipient_address(s: &str) -> String {
    let s = s.trim().trim_matches('"');
    let inner = if let (Some(a), Some(b)) = (s.rfind('['), s.rfind(']')) {
        s.get(a + 1..b).unwrap_or(s)
    } else if let (Some(a), Some(b)) = (s.rfind('<'), s.rfind('>')) {
        s.get(a + 1..b).unwrap_or(s)
    } else {
        s
    };
    let inner = inner.trim();
    let lower = inner.to_ascii_lowercase();
    let stripped = if lower.starts_with("smtp:") {
        inner.get(5..).unwrap_or(inner)
    } else {
        inner
    };
    stripped.trim().to_string()
}

/// A recipient list: a JSON array of strings or objects (`Address`, `EmailAddress`,
/// `SmtpAddress`), or a string delimited by `;` (or `,` between addresses).
fn recipients(v: &Value) -> Vec<String> {
    let from_obj = |o: &Map<String, Value>| {
        [
            "Address",
            "EmailAddress",
            "SmtpAddress",
            "address",
            "PrimarySmtpAddress",
        ]
        .iter()
        .find_map(|k| o.get(*k))
        .and_then(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Object(inner) => inner
                .get("address")
                .or_else(|| inner.get("Address"))
                .and_then(Value::as_str)
                .map(str::to_string),
            _ => None,
        })
    };
    let mut out: Vec<String> = match v {
        Value::Array(items) => items
            .iter()
            .filter_map(|i| match i {
                Value::String(s) => Some(recipient_address(s)),
                Value::Object(o) => from_obj(o).map(|s| recipient_address(&s)),
                _ => None,
            })
            .collect(),
        Value::String(s) => {
            let parts: Vec<&str> = if s.contains(';') {
                s.split(';').collect()
            } else if s.contains('@') && s.matches('@').count() > 1 && s.contains(',') {
                s.split(',').collect()
            } else {
                vec![s.as_str()]
            };
            parts.into_iter().map(recipient_address).collect()
        }
        Value::Object(o) => from_obj(o)
            .map(|s| vec![recipient_address(&s)])
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    out.retain(|s| !s.is_empty());
    out
}

/// A word list (`SubjectContainsWords`): a JSON array, or a `;`-delimited string.
fn words(v: &Value) -> Value {
    match v {
        Value::Array(_) => v.clone(),
        Value::String(s) if s.contains(';') => Value::Array(
            s.split(';')
                .map(str::trim)
                .filter(|w| !w.is_empty())
                .map(Value::from)
                .collect(),
        ),
        other => typed(other),
    }
}

/// Inbox-rule parameters that are actions, by cmdlet parameter name.
const RULE_RECIPIENT_ACTIONS: [(&str, &str); 4] = [
    ("ForwardTo", "forward_to"),
    ("ForwardAsAttachmentTo", "forward_as_attachment_to"),
    ("RedirectTo", "redirect_to"),
    (
        "SendTextMessageNotificationTo",
        "send_text_message_notification_to",
    ),
];
const RULE_FLAG_ACTIONS: [(&str, &str); 5] = [
    ("DeleteMessage", "delete"),
    ("SoftDeleteMessage", "soft_delete"),
    ("PermanentDelete", "permanent_delete"),
    ("MarkAsRead", "mark_as_read"),
    ("StopProcessingRules", "stop_processing_rules"),
];
const RULE_TEXT_ACTIONS: [(&str, &str); 4] = [
    ("MoveToFolder", "move_to_folder"),
    ("CopyToFolder", "copy_to_folder"),
    ("MarkImportance", "mark_importance"),
    ("ApplyCategory", "apply_category"),
];
/// Inbox-rule parameters that say which rule and how to run the cmdlet, not what it does.
const RULE_HOUSEKEEPING: [&str; 10] = [
    "Name",
    "Identity",
    "Mailbox",
    "Priority",
    "Enabled",
    "Force",
    "AlwaysDeleteOutlookRulesBlob",
    "Confirm",
    "WhatIf",
    "DomainController",
];

/// Structured conditions, exceptions and actions of an inbox rule's cmdlet parameters.
fn rule_from_parameters(params: &Map<String, Value>) -> Map<String, Value> {
    let mut actions = Map::new();
    let mut conditions = Map::new();
    let mut exceptions = Map::new();
    let mut settings = Map::new();
    for (name, value) in params {
        if let Some((_, key)) = RULE_RECIPIENT_ACTIONS
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            actions.insert((*key).into(), json!(recipients(value)));
        } else if let Some((_, key)) = RULE_FLAG_ACTIONS
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            actions.insert((*key).into(), typed(value));
        } else if let Some((_, key)) = RULE_TEXT_ACTIONS
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            actions.insert((*key).into(), typed(value));
        } else if RULE_HOUSEKEEPING
            .iter()
            .any(|h| h.eq_ignore_ascii_case(name))
        {
            settings.insert(name.clone(), typed(value));
        } else if name.len() > 8 && name[..8].eq_ignore_ascii_case("ExceptIf") {
            exceptions.insert(name[8..].to_string(), condition_value(&name[8..], value));
        } else {
            conditions.insert(name.clone(), condition_value(name, value));
        }
    }
    let mut rule = Map::new();
    rule.insert("conditions".into(), Value::Object(conditions));
    rule.insert("exceptions".into(), Value::Object(exceptions));
    rule.insert("actions".into(), Value::Object(actions));
    rule.insert("settings".into(), Value::Object(settings));
    rule
}

fn condition_value(name: &str, value: &Value) -> Value {
    let n = name.to_ascii_lowercase();
    if n == "from" || n == "sentto" {
        json!(recipients(value))
    } else if n.ends_with("words") {
        words(value)
    } else {
        typed(value)
    }
}

/// The structured actions of Outlook's `RuleActions` (a JSON text, an array of
/// `{ActionType, Recipients, FolderName, …}`, possibly nested under `Actions`); the layout is
/// not documented, so anything unrecognised is kept as it came under `raw`.
fn rule_actions_from_outlook(text: &str) -> Map<String, Value> {
    let mut actions = Map::new();
    let parsed: Option<Value> = serde_json::from_str(text.trim()).ok();
    let Some(parsed) = parsed else {
        actions.insert("raw".into(), Value::from(text));
        return actions;
    };
    let mut list: Vec<&Value> = Vec::new();
    let mut walk = vec![&parsed];
    while let Some(v) = walk.pop() {
        match v {
            Value::Array(items) => walk.extend(items.iter().rev()),
            Value::Object(o) => {
                if o.contains_key("ActionType") || o.contains_key("actionType") {
                    list.push(v);
                } else if let Some(inner) = o.get("Actions").or_else(|| o.get("actions")) {
                    walk.push(inner);
                }
            }
            _ => {}
        }
    }
    let add_recipients = |key: &str, v: Option<&Value>, actions: &mut Map<String, Value>| {
        let new = v.map(recipients).unwrap_or_default();
        let entry = actions.entry(key.to_string()).or_insert_with(|| json!([]));
        if let Value::Array(a) = entry {
            a.extend(new.into_iter().map(Value::from));
        }
    };
    for a in list {
        let Some(o) = a.as_object() else { continue };
        let kind = o
            .get("ActionType")
            .or_else(|| o.get("actionType"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_ascii_lowercase()
            .replace(['_', ' '], "");
        let rcpt = o.get("Recipients").or_else(|| o.get("recipients"));
        let folder = o
            .get("FolderName")
            .or_else(|| o.get("Folder"))
            .or_else(|| o.get("folderName"))
            .cloned();
        match kind.as_str() {
            "forward" => add_recipients("forward_to", rcpt, &mut actions),
            "forwardasattachment" => add_recipients("forward_as_attachment_to", rcpt, &mut actions),
            "redirect" => add_recipients("redirect_to", rcpt, &mut actions),
            "delete" | "deletemessage" => {
                actions.insert("delete".into(), json!(true));
            }
            "permanentdelete" | "harddelete" => {
                actions.insert("permanent_delete".into(), json!(true));
            }
            "movetofolder" | "move" => {
                actions.insert("move_to_folder".into(), folder.unwrap_or(json!(true)));
            }
            "copytofolder" | "copy" => {
                actions.insert("copy_to_folder".into(), folder.unwrap_or(json!(true)));
            }
            "markasread" | "markread" => {
                actions.insert("mark_as_read".into(), json!(true));
            }
            "stopprocessingrules" | "stopprocessing" => {
                actions.insert("stop_processing_rules".into(), json!(true));
            }
            _ => {
                let entry = actions
                    .entry("other".to_string())
                    .or_insert_with(|| json!([]));
                if let Value::Array(v) = entry {
                    v.push(a.clone());
                }
            }
        }
    }
    actions
}

/// Transport-rule parameters that are actions, by cmdlet parameter name.
const TRANSPORT_RECIPIENT_ACTIONS: [(&str, &str); 5] = [
    ("RedirectMessageTo", "redirect_message_to"),
    ("BlindCopyTo", "blind_copy_to"),
    ("AddToRecipients", "add_to_recipients"),
    ("CopyTo", "copy_to"),
    ("ModerateMessageByUser", "moderate_message_by_user"),
];
const TRANSPORT_OTHER_ACTIONS: [(&str, &str); 8] = [
    ("DeleteMessage", "delete_message"),
    ("Quarantine", "quarantine"),
    ("StopRuleProcessing", "stop_rule_processing"),
    ("SetSCL", "set_scl"),
    (
        "RouteMessageOutboundConnector",
        "route_message_outbound_connector",
    ),
    ("RejectMessageReasonText", "reject_message_reason_text"),
    ("SetHeaderName", "set_header_name"),
    ("SetHeaderValue", "set_header_value"),
];
const TRANSPORT_SETTINGS: [&str; 10] = [
    "Name",
    "Identity",
    "Priority",
    "Mode",
    "Enabled",
    "Comments",
    "Force",
    "Confirm",
    "State",
    "RuleErrorAction",
];

fn transport_rule_from_parameters(params: &Map<String, Value>) -> Map<String, Value> {
    let mut actions = Map::new();
    let mut conditions = Map::new();
    let mut exceptions = Map::new();
    let mut settings = Map::new();
    for (name, value) in params {
        if let Some((_, key)) = TRANSPORT_RECIPIENT_ACTIONS
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            actions.insert((*key).into(), json!(recipients(value)));
        } else if let Some((_, key)) = TRANSPORT_OTHER_ACTIONS
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            actions.insert((*key).into(), typed(value));
        } else if TRANSPORT_SETTINGS
            .iter()
            .any(|h| h.eq_ignore_ascii_case(name))
        {
            settings.insert(name.clone(), typed(value));
        } else if name.len() > 8 && name[..8].eq_ignore_ascii_case("ExceptIf") {
            exceptions.insert(name[8..].to_string(), typed(value));
        } else {
            conditions.insert(name.clone(), typed(value));
        }
    }
    let mut rule = Map::new();
    rule.insert("conditions".into(), Value::Object(conditions));
    rule.insert("exceptions".into(), Value::Object(exceptions));
    rule.insert("actions".into(), Value::Object(actions));
    rule.insert("settings".into(), Value::Object(settings));
    rule
}

/// The last segment of an Exchange identity (`mailbox\RuleName`, `…/org/mailbox\Rule`).
fn last_segment(s: &str) -> &str {
    s.rsplit(['\\', '/']).next().unwrap_or(s).trim()
}

/// The mailbox part of an inbox rule's identity (`mailbox\RuleName` → `mailbox`;
/// `…/contoso.onmicrosoft.com/<guid>\Rule` → `<guid>`).
fn rule_mailbox(identity: &str) -> Option<&str> {
    let (before, _) = identity.rsplit_once('\\')?;
    let m = before.rsplit('/').next().unwrap_or(before).trim();
    (!m.is_empty()).then_some(m)
}

/// `UserType` → `user.type_id`: Regular 1 User; Admin and DcAdmin 2 Admin; System, CustomPolicy
/// and SystemPolicy 3 System; Application and ServicePrincipal 4 Service; else 0 Unknown.
fn user_type(t: Option<i64>) -> u32 {
    match t {
        Some(0) => 1,
        Some(2 | 3) => 2,
        Some(4 | 7 | 8) => 3,
        Some(5 | 6) => 4,
        _ => 0,
    }
}

/// `Workload` → the product's name.
fn product_name(workload: Option<&str>) -> &'static str {
    match workload.unwrap_or("").to_ascii_lowercase().as_str() {
        "exchange" => "Exchange Online",
        "azureactivedirectory" => "Microsoft Entra ID",
        "sharepoint" => "SharePoint Online",
        "onedrive" => "OneDrive for Business",
        "microsoftflow" => "Power Automate",
        "microsoftteams" => "Microsoft Teams",
        _ => "Microsoft 365",
    }
}

/// The content type that carries a workload's records (`metadata.log_name`).
fn content_type_of(workload: Option<&str>) -> &'static str {
    match workload.unwrap_or("").to_ascii_lowercase().as_str() {
        "exchange" => "Audit.Exchange",
        "azureactivedirectory" => "Audit.AzureActiveDirectory",
        "sharepoint" | "onedrive" => "Audit.SharePoint",
        _ => "Audit.General",
    }
}

/// `ResultStatus` → (status_id, detail): Succeeded/Success/True 1; Failed/False 2;
/// PartiallySucceeded 1 with the detail; anything else 99 with its label; none 0.
fn result_status(s: Option<&str>) -> (u32, Option<String>) {
    match s.map(|s| s.to_ascii_lowercase()) {
        None => (0, None),
        Some(v) => match v.as_str() {
            "succeeded" | "success" | "true" => (1, None),
            "failed" | "failure" | "false" => (2, None),
            "partiallysucceeded" => (1, Some("PartiallySucceeded".into())),
            _ => (OTHER, s.map(str::to_string)),
        },
    }
}

/// The Entra ID object ids in a record's `Target` or `Actor` (`[{ID, Type}]`): (id, type).
fn identities(v: Option<&Value>) -> Vec<(&str, i64)> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|i| {
                    let id = i
                        .get("ID")
                        .or_else(|| i.get("Id"))
                        .and_then(Value::as_str)?;
                    let ty = match i.get("Type") {
                        Some(Value::Number(n)) => n.as_i64(),
                        Some(Value::String(s)) => s.trim().parse().ok(),
                        _ => None,
                    }
                    .unwrap_or(-1);
                    Some((id.trim(), ty))
                })
                .filter(|(id, _)| !id.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

fn is_guid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}

/// The scopes or app roles a grant names, from `ModifiedProperties`: `… Scope: Mail.Read
/// offline_access, …` (consent), `DelegatedPermissionGrant.Scope` or `AppRole.Value`.
fn granted_privileges(modified: Option<&Value>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let items = modified
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for m in &items {
        let name = m.get("Name").and_then(Value::as_str).unwrap_or("");
        let new = m.get("NewValue").and_then(Value::as_str).unwrap_or("");
        let clean = |s: &str| s.trim().trim_matches(['"', '[', ']']).trim().to_string();
        if name.eq_ignore_ascii_case("ConsentAction.Permissions") {
            // `[[Id: …, Scope:  Mail.Read offline_access, CreatedDateTime: …]]`
            for part in new.split("Scope:").skip(1) {
                let scopes = part.split(',').next().unwrap_or("");
                out.extend(scopes.split_whitespace().map(clean));
            }
        } else if name.eq_ignore_ascii_case("DelegatedPermissionGrant.Scope") {
            out.extend(new.split_whitespace().map(clean));
        } else if name.eq_ignore_ascii_case("AppRole.Value") {
            out.push(clean(new));
        }
    }
    out.retain(|s| !s.is_empty());
    out.dedup();
    out
}

/// The reading of a record shared by every route.
struct Common<'a> {
    id: &'a str,
    original_time: &'a str,
    time_ms: i64,
    operation: &'a str,
    workload: Option<&'a str>,
    status_id: u32,
    status_detail: Option<String>,
    actor: UserOut<'a>,
    ip: Option<(String, Option<u16>)>,
}

fn common<'a>(src: &Src<'a>) -> Result<Common<'a>, NormalizeError> {
    let id = src.str("Id").ok_or(NormalizeError::MissingField("Id"))?;
    let original_time = src
        .str("CreationTime")
        .ok_or(NormalizeError::MissingField("CreationTime"))?;
    let time_ms =
        parse_time_ms(original_time)
            .filter(|t| *t >= 0)
            .ok_or(NormalizeError::BadTimestamp {
                field: "CreationTime",
            })?;
    let operation = src.str("Operation").unwrap_or("Unknown");
    let workload = src.str("Workload");
    let (status_id, status_detail) = result_status(src.str("ResultStatus"));
    let actor = UserOut {
        uid: src.str("UserKey"),
        name: src.str("UserId"),
        full_name: None,
        type_id: user_type(src.i64("UserType")),
        entra_account: false,
    };
    let raw_ip = ["ClientIP", "ClientIPAddress", "ActorIpAddress"]
        .into_iter()
        .find_map(|k| src.peek_str(k).and_then(clean_ip).map(|ip| (k, ip)));
    let ip = raw_ip.map(|(k, ip)| {
        src.mark(k);
        ip
    });
    Ok(Common {
        id,
        original_time,
        time_ms,
        operation,
        workload,
        status_id,
        status_detail,
        actor,
        ip,
    })
}

fn actor_json(src: &Src<'_>, c: &Common<'_>) -> Value {
    let app = ["AppId", "ApplicationId", "ClientAppId"]
        .into_iter()
        .find_map(|k| src.str(k));
    let session = src.str("SessionId");
    json!({
        "user": if c.actor.is_empty() { Value::Null } else { c.actor.to_json() },
        "app_uid": app,
        // actor needs a user or an app: name the workload when the record has neither.
        "app_name": if c.actor.is_empty() && app.is_none() { Value::from(c.workload.unwrap_or("Microsoft 365")) } else { Value::Null },
        "session": { "uid": session },
    })
}

fn src_endpoint_json(c: &Common<'_>, fallback_name: bool) -> Value {
    match &c.ip {
        Some((ip, port)) => json!({ "ip": ip, "port": port }),
        // 6003 needs a src_endpoint: name the service the record came from.
        None if fallback_name => json!({ "name": c.workload.unwrap_or("Microsoft 365") }),
        None => Value::Null,
    }
}

fn api_json(c: &Common<'_>, data: Option<Value>) -> Value {
    json!({
        "operation": c.operation,
        "service": { "name": c.workload },
        "request": { "uid": c.id, "data": data },
    })
}

fn observables(c: &Common<'_>, user_name: Option<&str>) -> Value {
    let email = user_name.filter(|n| is_valid_email(n));
    Value::Array(
        [
            observable(
                obs::IP,
                "src_endpoint.ip",
                c.ip.as_ref().map(|(ip, _)| ip.as_str()),
            ),
            observable(obs::USER_NAME, "actor.user.name", user_name),
            observable(obs::EMAIL, "actor.user.email_addr", email),
        ]
        .into_iter()
        .flatten()
        .collect(),
    )
}

/// What a route produced besides the common parts.
struct Built {
    class: Class,
    activity_id: u32,
    /// Label when `activity_id` is 99.
    activity_other: Option<String>,
    status_override: Option<(u32, Option<String>)>,
    status_code: Option<String>,
    event_code: Option<String>,
    correlation: Option<String>,
    message: Option<String>,
    host: bool,
    /// Name/value collections turned into objects: what was not mapped goes under
    /// `unmapped` as an object.
    leftovers: Vec<(&'static str, Map<String, Value>)>,
}

impl Built {
    fn new(class: Class, activity_id: u32) -> Self {
        Built {
            class,
            activity_id,
            activity_other: None,
            status_override: None,
            status_code: None,
            event_code: None,
            correlation: None,
            message: None,
            host: false,
            leftovers: Vec::new(),
        }
    }
}

fn inbox_rule(src: &Src<'_>, c: &Common<'_>, ev: &mut Map<String, Value>) -> Built {
    let op = c.operation.trim().to_ascii_lowercase();
    if op == "updateinboxrules" {
        return outlook_inbox_rule(src, ev);
    }
    let params = name_values(src.raw("Parameters"));
    src.mark("Parameters");
    let activity = match op.as_str() {
        "new-inboxrule" => 1,
        "remove-inboxrule" => 4,
        "enable-inboxrule" => 8,
        "disable-inboxrule" => 9,
        _ => 3,
    };
    let identity = text_ci(&params, "Identity");
    let object_id = src.str("ObjectId");
    let name = text_ci(&params, "Name")
        .or_else(|| identity.map(last_segment))
        .or_else(|| src.str("ModifiedObjectResolvedName"))
        .or_else(|| object_id.map(last_segment));
    let mailbox = text_ci(&params, "Mailbox")
        .or_else(|| identity.and_then(rule_mailbox))
        .or_else(|| object_id.and_then(rule_mailbox));
    let mut data = rule_from_parameters(&params);
    data.insert("parameters".into(), Value::Object(params.clone()));
    let uid = object_id.or(identity);
    ev.insert(
        "entity".into(),
        json!({
            "type_id": OTHER,
            "type": "Inbox Rule",
            "name": name.or(if uid.is_none() { Some("unnamed inbox rule") } else { None }),
            "uid": uid,
            "user": mailbox.map(mailbox_user),
            "data": data,
        }),
    );
    let mut b = Built::new(Class::EntityManagement, activity);
    b.message = Some(format!(
        "{} on inbox rule {}",
        c.operation,
        name.unwrap_or("(unnamed)")
    ));
    b
}

fn mailbox_user(m: &str) -> Value {
    let email = is_valid_email(m).then_some(m);
    json!({ "name": m, "email_addr": email, "type_id": 1, "type": "User" })
}

/// Outlook's `UpdateInboxRules` (a mailbox-audit record; its layout is not documented):
/// `OperationProperties` (or top-level fields) `RuleName`, `RuleId`, `RuleOperation`,
/// `RuleCondition`, `RuleActions`, `RuleState`.
fn outlook_inbox_rule(src: &Src<'_>, ev: &mut Map<String, Value>) -> Built {
    let mut props = name_values(src.raw("OperationProperties"));
    src.mark("OperationProperties");
    for k in [
        "RuleName",
        "RuleId",
        "RuleOperation",
        "RuleCondition",
        "RuleActions",
        "RuleState",
    ] {
        if get_ci(&props, k).is_none()
            && let Some(v) = src.raw(k)
        {
            src.mark(k);
            props.insert(k.to_string(), v.clone());
        }
    }
    let rule_op = text_ci(&props, "RuleOperation").map(str::to_string);
    let activity = match rule_op.as_deref().map(str::to_ascii_lowercase).as_deref() {
        Some(o) if o.starts_with("add") || o.starts_with("new") || o.starts_with("create") => 1,
        Some(o) if o.starts_with("remove") || o.starts_with("delete") => 4,
        _ => 3,
    };
    let name = text_ci(&props, "RuleName").map(str::to_string);
    let uid = text_ci(&props, "RuleId").map(str::to_string);
    let owner = src.str("MailboxOwnerUPN");
    let mut data = Map::new();
    if let Some(actions) = get_ci(&props, "RuleActions") {
        let parsed = match actions {
            Value::String(s) => rule_actions_from_outlook(s),
            other => rule_actions_from_outlook(&other.to_string()),
        };
        data.insert("actions".into(), Value::Object(parsed));
    }
    if let Some(cond) = get_ci(&props, "RuleCondition") {
        let parsed = match cond {
            Value::String(s) => serde_json::from_str(s.trim()).unwrap_or_else(|_| cond.clone()),
            other => other.clone(),
        };
        data.insert("conditions".into(), parsed);
    }
    if let Some(state) = text_ci(&props, "RuleState") {
        data.insert("state".into(), Value::from(state));
    }
    if let Some(op) = &rule_op {
        data.insert("rule_operation".into(), Value::from(op.clone()));
    }
    data.insert("operation_properties".into(), Value::Object(props.clone()));
    ev.insert(
        "entity".into(),
        json!({
            "type_id": OTHER,
            "type": "Inbox Rule",
            "name": name.clone().or(if uid.is_none() { Some("unnamed inbox rule".to_string()) } else { None }),
            "uid": uid,
            "user": owner.map(mailbox_user),
            "data": data,
        }),
    );
    let mut b = Built::new(Class::EntityManagement, activity);
    b.message = Some(format!(
        "Outlook {} on inbox rule {}",
        rule_op.as_deref().unwrap_or("UpdateInboxRules"),
        name.as_deref().unwrap_or("(unnamed)")
    ));
    b
}

const FORWARDING_PARAMETERS: [(&str, &str); 3] = [
    ("ForwardingSmtpAddress", "smtp_address"),
    ("ForwardingAddress", "address"),
    (
        "DeliverToMailboxAndForward",
        "deliver_to_mailbox_and_forward",
    ),
];

fn mailbox(src: &Src<'_>, c: &Common<'_>, ev: &mut Map<String, Value>) -> Built {
    let params = name_values(src.raw("Parameters"));
    src.mark("Parameters");
    let identity = text_ci(&params, "Identity")
        .or_else(|| src.str("ModifiedObjectResolvedName"))
        .or_else(|| src.str("ObjectId"));
    let mut forwarding = Map::new();
    let mut cleared = Vec::new();
    for (param, key) in FORWARDING_PARAMETERS {
        let Some((_, v)) = params.iter().find(|(k, _)| k.eq_ignore_ascii_case(param)) else {
            continue;
        };
        match v {
            Value::Null => cleared.push(param),
            Value::String(s) if s.trim().is_empty() || s.trim().eq_ignore_ascii_case("$null") => {
                cleared.push(param)
            }
            Value::String(s) if key != "deliver_to_mailbox_and_forward" => {
                forwarding.insert(key.into(), Value::from(recipient_address(s)));
            }
            other => {
                forwarding.insert(key.into(), typed(other));
            }
        }
    }
    if !cleared.is_empty() {
        forwarding.insert("cleared".into(), json!(cleared));
    }
    let sets_forwarding = !forwarding.is_empty();
    let mut data = Map::new();
    data.insert("forwarding".into(), Value::Object(forwarding));
    data.insert("parameters".into(), Value::Object(params.clone()));
    ev.insert(
        "entity".into(),
        json!({
            "type_id": OTHER,
            "type": "Mailbox",
            "name": identity.unwrap_or("unknown mailbox"),
            "user": identity.map(mailbox_user),
            "data": data,
        }),
    );
    let mut b = Built::new(Class::EntityManagement, 3);
    b.message = Some(if sets_forwarding {
        format!(
            "Mailbox forwarding changed on {}",
            identity.unwrap_or("a mailbox")
        )
    } else {
        format!("{} on {}", c.operation, identity.unwrap_or("a mailbox"))
    });
    b
}

fn transport_rule(src: &Src<'_>, c: &Common<'_>, ev: &mut Map<String, Value>) -> Built {
    let params = name_values(src.raw("Parameters"));
    src.mark("Parameters");
    let op = c.operation.trim().to_ascii_lowercase();
    let activity = match op.as_str() {
        "new-transportrule" => 1,
        "remove-transportrule" => 4,
        "enable-transportrule" => 8,
        "disable-transportrule" => 9,
        _ => 3,
    };
    let name = text_ci(&params, "Name")
        .or_else(|| text_ci(&params, "Identity"))
        .or_else(|| src.str("ModifiedObjectResolvedName"));
    let uid = src.str("ObjectId");
    let mut data = transport_rule_from_parameters(&params);
    data.insert("parameters".into(), Value::Object(params.clone()));
    let policy_name = name.or(uid).unwrap_or("unnamed transport rule");
    ev.insert(
        "entity".into(),
        json!({
            "type_id": 5,
            "type": "Policy",
            "name": policy_name,
            "uid": uid,
            "policy": { "name": policy_name, "type": "Exchange transport rule", "uid": uid },
            "data": data,
        }),
    );
    let mut b = Built::new(Class::EntityManagement, activity);
    b.message = Some(format!("{} {}", c.operation, policy_name));
    b
}

fn mailbox_permission(src: &Src<'_>, c: &Common<'_>, ev: &mut Map<String, Value>) -> Option<Built> {
    let params = name_values(src.raw("Parameters"));
    let grantee = text_ci(&params, "User").or_else(|| text_ci(&params, "Trustee"))?;
    src.mark("Parameters");
    let op = c.operation.trim().to_ascii_lowercase();
    let activity = if op.starts_with("remove-") { 2 } else { 1 };
    let rights: Vec<String> = match get_ci(&params, "AccessRights") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(|s| s.trim().to_string())
            .collect(),
        Some(Value::String(s)) => s
            .split([',', ';'])
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        _ => Vec::new(),
    };
    // Removing without naming rights removes them all.
    let privileges = if rights.is_empty() {
        vec![if activity == 2 {
            "All".to_string()
        } else {
            "Unspecified".to_string()
        }]
    } else {
        rights
    };
    let identity = text_ci(&params, "Identity").or_else(|| src.str("ObjectId"));
    let folder = op.contains("folder");
    let resource = identity.map(|id| {
        json!({
            "name": id,
            "type": if folder { "Mailbox folder" } else { "Mailbox" },
            "owner": rule_mailbox_or_self(id, folder).map(|o| json!({ "name": o })),
        })
    });
    ev.insert("user".into(), mailbox_user(grantee));
    ev.insert("privileges".into(), json!(privileges));
    ev.insert("resource".into(), resource.clone().unwrap_or(Value::Null));
    ev.insert(
        "resources".into(),
        resource.map(|r| json!([r])).unwrap_or(Value::Null),
    );
    let mut data = Map::new();
    data.insert("parameters".into(), Value::Object(params.clone()));
    ev.insert("api".into(), api_json(c, Some(Value::Object(data))));
    let mut b = Built::new(Class::UserAccess, activity);
    b.message = Some(format!(
        "{} {} {} on {}",
        c.operation,
        if activity == 2 { "from" } else { "to" },
        grantee,
        identity.unwrap_or("a mailbox")
    ));
    Some(b)
}

/// The mailbox owning a folder identity (`alice@contoso.com:\Inbox` → `alice@contoso.com`),
/// or the mailbox itself.
fn rule_mailbox_or_self(identity: &str, folder: bool) -> Option<&str> {
    if folder {
        identity
            .split(":\\")
            .next()
            .map(str::trim)
            .filter(|s| !s.is_empty())
    } else {
        Some(identity)
    }
}

fn os_type(os: &str) -> u32 {
    let o = os.to_ascii_lowercase().replace(' ', "");
    if o.starts_with("windows") {
        100
    } else if o.starts_with("ipados") {
        302
    } else if o.starts_with("ios") || o.starts_with("iphone") {
        301
    } else if o.starts_with("macos") || o.starts_with("osx") || o.starts_with("mac") {
        300
    } else if o.starts_with("android") {
        201
    } else if o.starts_with("linux") || o.starts_with("ubuntu") || o.starts_with("chromeos") {
        200
    } else {
        OTHER
    }
}

/// `UserLoggedIn` / `UserLoginFailed` → 3002, filling what a Graph sign-in fills where the
/// record has it.
fn logon(src: &Src<'_>, c: &Common<'_>, ev: &mut Map<String, Value>) -> Built {
    let failed_op = c.operation.trim().eq_ignore_ascii_case("UserLoginFailed");
    let code = ["ErrorNumber", "ErrorCode"].into_iter().find_map(|k| {
        src.str(k)
            .map(str::to_string)
            .or_else(|| src.i64(k).map(|n| n.to_string()))
    });
    let logon_error = src.str("LogonError");
    let status_id = match (failed_op, code.as_deref()) {
        (true, _) => 2,
        (false, Some("0")) | (false, None) => 1,
        (false, Some(_)) => 2,
    };
    let mut ext = name_values(src.raw("ExtendedProperties"));
    src.mark("ExtendedProperties");
    let take = |m: &mut Map<String, Value>, k: &str| {
        let key = m.keys().find(|x| x.eq_ignore_ascii_case(k)).cloned()?;
        m.remove(&key)
            .and_then(|v| v.as_str().map(|s| s.trim().to_string()))
            .filter(|s| !s.is_empty())
    };
    let user_agent = take(&mut ext, "UserAgent");
    let request_type = take(&mut ext, "RequestType");
    let result_detail = take(&mut ext, "ResultStatusDetail");

    // The subject: the user who signed in.
    let user = UserOut {
        uid: c.actor.uid,
        name: c.actor.name,
        full_name: None,
        type_id: 1,
        entra_account: true,
    };
    ev.insert(
        "user".into(),
        if user.is_empty() {
            json!({ "name": "unknown", "type_id": 0, "type": "Unknown" })
        } else {
            user.to_json()
        },
    );
    ev.insert(
        "actor".into(),
        json!({ "app_uid": src.str("ApplicationId").or_else(|| src.str("AppId")) }),
    );
    // The resource signed in to.
    let targets = identities(src.raw("Target"));
    let resource = src.str("ObjectId").or_else(|| {
        targets
            .iter()
            .find(|(id, _)| is_guid(id))
            .map(|(id, _)| *id)
    });
    ev.insert(
        "service".into(),
        match resource {
            Some(r) => json!({ "uid": r }),
            None => json!({ "name": "Microsoft Entra ID" }),
        },
    );
    if let Some((ip, port)) = &c.ip {
        ev.insert("src_endpoint".into(), json!({ "ip": ip, "port": port }));
    }
    let (proto_id, proto) = match request_type.as_deref().map(str::to_ascii_lowercase) {
        Some(r) if r.starts_with("oauth2") => (6, "OAUTH 2.0".to_string()),
        Some(r) if r.starts_with("saml") => (5, "SAML".to_string()),
        Some(r) if r.starts_with("wsfed") => (OTHER, "WS-Federation".to_string()),
        _ => (0, "Unknown".to_string()),
    };
    ev.insert("auth_protocol_id".into(), json!(proto_id));
    ev.insert("auth_protocol".into(), json!(proto));
    ev.insert("logon_type_id".into(), json!(2));
    ev.insert(
        "logon_type".into(),
        json!(enums::logon_type_caption(2).unwrap_or("Interactive")),
    );
    ev.insert("is_remote".into(), json!(true));
    ev.insert("http_request".into(), json!({ "user_agent": user_agent }));

    // Device (host profile), only when the record identifies it.
    let mut dev = name_values(src.raw("DeviceProperties"));
    src.mark("DeviceProperties");
    let session = take(&mut dev, "SessionId");
    let dev_id = take(&mut dev, "Id");
    let dev_name = take(&mut dev, "DisplayName");
    let host = dev_id.is_some() || dev_name.is_some();
    if host {
        let os = take(&mut dev, "OS").map(|n| {
            let id = os_type(&n);
            let caption = if id == OTHER {
                n.clone()
            } else {
                enums::os_type_caption(id).unwrap_or(&n).to_string()
            };
            json!({ "name": n, "type_id": id, "type": caption })
        });
        let flag =
            |m: &mut Map<String, Value>, k: &str| as_bool(take(m, k).map(Value::from).as_ref());
        let compliant = flag(&mut dev, "IsCompliant");
        let managed = flag(&mut dev, "IsCompliantAndManaged");
        ev.insert(
            "device".into(),
            json!({
                "type_id": 0, "type": "Unknown",
                "uid": dev_id, "name": dev_name, "os": os,
                "is_compliant": compliant, "is_managed": managed,
            }),
        );
    }
    ev.insert(
        "session".into(),
        json!({ "uid": session, "uid_alt": src.str("IntraSystemId") }),
    );
    let user_name = c.actor.name;
    ev.insert(
        "observables".into(),
        Value::Array(
            [
                observable(
                    obs::IP,
                    "src_endpoint.ip",
                    c.ip.as_ref().map(|(ip, _)| ip.as_str()),
                ),
                observable(obs::USER_NAME, "user.name", user_name),
                observable(
                    obs::EMAIL,
                    "user.email_addr",
                    user_name.filter(|n| is_valid_email(n)),
                ),
                observable(
                    obs::USER_AGENT,
                    "http_request.user_agent",
                    user_agent.as_deref(),
                ),
            ]
            .into_iter()
            .flatten()
            .collect(),
        ),
    );
    let mut b = Built::new(Class::Authentication, 1);
    let detail: Vec<String> = [logon_error.map(str::to_string), result_detail.clone()]
        .into_iter()
        .flatten()
        .collect();
    b.status_override = Some((status_id, (!detail.is_empty()).then(|| detail.join(" "))));
    b.status_code = code.clone();
    b.event_code = code;
    b.correlation = src.str("InterSystemsId").map(str::to_string);
    b.message = Some(format!(
        "Sign-in {}",
        if status_id == 1 {
            "succeeded"
        } else {
            "failed"
        }
    ));
    b.host = host;
    b.leftovers.push(("ExtendedProperties", ext));
    b.leftovers.push(("DeviceProperties", dev));
    b
}

/// The Entra ID object an application record is about: (uid, name, app id) from `Target`
/// (Type 2 object ids, skipping typed `ServicePrincipal_<id>` forms; Type 1 names; Type 4
/// SPNs).
fn app_target<'a>(src: &Src<'a>) -> (Option<&'a str>, Option<&'a str>, Option<&'a str>) {
    let t = identities(src.raw("Target"));
    let uid = t
        .iter()
        .find(|(id, ty)| *ty == 2 && is_guid(id))
        .map(|(id, _)| *id);
    let name = t.iter().find(|(_, ty)| *ty == 1).map(|(id, _)| *id);
    let spn = t
        .iter()
        .find(|(id, ty)| *ty == 4 && is_guid(id))
        .map(|(id, _)| *id);
    (uid, name, spn)
}

fn app_grant(src: &Src<'_>, c: &Common<'_>, ev: &mut Map<String, Value>) -> Option<Built> {
    let (uid, name, spn) = app_target(src);
    if uid.is_none() && name.is_none() && spn.is_none() {
        return None;
    }
    src.mark("Target");
    let op = c.operation.trim().to_ascii_lowercase();
    let activity = if op.starts_with("remove") || op.starts_with("revoke") {
        2
    } else {
        1
    };
    let mut privileges = granted_privileges(src.raw("ModifiedProperties"));
    if privileges.is_empty() {
        privileges.push(c.operation.trim().trim_end_matches('.').to_string());
    }
    ev.insert(
        "user".into(),
        json!({ "uid": uid.or(spn), "name": name.or(spn).or(uid), "type_id": 4, "type": "Service" }),
    );
    ev.insert("privileges".into(), json!(privileges));
    ev.insert(
        "resource".into(),
        json!({ "uid": uid.or(spn), "name": name.or(uid).or(spn), "type": "ServicePrincipal" }),
    );
    ev.insert("api".into(), api_json(c, None));
    let mut b = Built::new(Class::UserAccess, activity);
    b.correlation = src.str("InterSystemsId").map(str::to_string);
    b.message = Some(format!(
        "{} {}",
        c.operation.trim().trim_end_matches('.'),
        name.or(uid).unwrap_or("an application")
    ));
    Some(b)
}

fn app_change(src: &Src<'_>, c: &Common<'_>, ev: &mut Map<String, Value>) -> Built {
    let (uid, name, spn) = app_target(src);
    let kind = if c
        .operation
        .to_ascii_lowercase()
        .contains("service principal")
    {
        "ServicePrincipal"
    } else {
        "Application"
    };
    if uid.is_some() || name.is_some() || spn.is_some() {
        src.mark("Target");
        ev.insert(
            "resources".into(),
            json!([{ "uid": uid.or(spn), "name": name.or(uid).or(spn), "type": kind }]),
        );
    }
    generic_api(src, c, ev)
}

fn flow(src: &Src<'_>, c: &Common<'_>, ev: &mut Map<String, Value>) -> Option<Built> {
    let url = src.str("FlowDetailsUrl");
    let from_url = url.and_then(|u| {
        let mut parts = u.split('/');
        parts.find(|p| *p == "flows")?;
        parts.next().filter(|s| !s.is_empty())
    });
    let uid = src.str("ObjectId").or(from_url);
    uid?;
    let op = c.operation.trim().to_ascii_lowercase();
    let activity = match op.as_str() {
        "createflow" => 1,
        "deleteflow" => 4,
        _ => 3,
    };
    let connectors: Vec<String> = src
        .str("FlowConnectorNames")
        .map(|s| {
            s.split(',')
                .map(|c| c.trim().to_string())
                .filter(|c| !c.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let owner = src.str("UserUPN");
    ev.insert(
        "entity".into(),
        json!({
            "type_id": OTHER,
            "type": "Power Automate flow",
            "uid": uid,
            "user": owner.map(mailbox_user),
            "data": {
                "connectors": connectors,
                "details_url": url,
                "license": src.str("LicenseDisplayName"),
                "sharing_recipient": src.str("RecipientUPN"),
                "sharing_permission": src.i64("SharingPermission"),
            },
        }),
    );
    let mut b = Built::new(Class::EntityManagement, activity);
    b.message = Some(format!("{} {}", c.operation, uid.unwrap_or("flow")));
    Some(b)
}

fn mail_items_accessed(src: &Src<'_>, c: &Common<'_>, ev: &mut Map<String, Value>) -> Built {
    let mut props = name_values(src.raw("OperationProperties"));
    src.mark("OperationProperties");
    let mut take = |k: &str| {
        let key = props.keys().find(|x| x.eq_ignore_ascii_case(k)).cloned()?;
        props.remove(&key)
    };
    let access_type = take("MailAccessType");
    let throttled = as_bool(take("IsThrottled").as_ref());
    let mut resources = Vec::new();
    let owner = src.str("MailboxOwnerUPN");
    let mailbox_guid = src.str("MailboxGuid");
    if owner.is_some() || mailbox_guid.is_some() {
        resources.push(json!({ "type": "Mailbox", "name": owner, "uid": mailbox_guid }));
    }
    let mut items = 0usize;
    if let Some(folders) = src.raw("Folders").and_then(Value::as_array) {
        src.mark("Folders");
        for f in folders {
            let messages: Vec<Value> = f
                .get("FolderItems")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|i| i.get("InternetMessageId").cloned())
                        .collect()
                })
                .unwrap_or_default();
            items += f
                .get("FolderItems")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let path = f.get("Path").and_then(Value::as_str);
            let id = f.get("Id").and_then(Value::as_str);
            if path.is_some() || id.is_some() {
                resources.push(json!({
                    "type": "Mail folder", "name": path, "uid": id,
                    "data": { "internet_message_ids": messages },
                }));
            }
        }
    }
    ev.insert("resources".into(), Value::Array(resources));
    let data = json!({
        "mail_access_type": access_type,
        "is_throttled": throttled,
        "operation_count": src.i64("OperationCount"),
        "items": if items > 0 { Value::from(items) } else { Value::Null },
    });
    ev.insert("api".into(), api_json(c, Some(data)));
    ev.insert(
        "http_request".into(),
        json!({ "user_agent": src.str("ClientInfoString") }),
    );
    let mut b = Built::new(Class::ApiActivity, 2);
    b.message = Some(format!(
        "Mail items accessed in {}",
        owner.unwrap_or("a mailbox")
    ));
    b.leftovers.push(("OperationProperties", props));
    b
}

/// 6003 API Activity, activity from the operation's verb, the cmdlet parameters (if any) in
/// `api.request.data` and the object (`ObjectId`) as a resource.
fn generic_api(src: &Src<'_>, c: &Common<'_>, ev: &mut Map<String, Value>) -> Built {
    let params = name_values(src.raw("Parameters"));
    let data = if params.is_empty() {
        None
    } else {
        src.mark("Parameters");
        Some(json!({ "parameters": params }))
    };
    if !ev.contains_key("api") {
        ev.insert("api".into(), api_json(c, data));
    }
    if !ev.contains_key("resources")
        && let Some(obj) = src.str("ObjectId")
    {
        ev.insert(
            "resources".into(),
            json!([{ "name": obj, "type": c.workload }]),
        );
    }
    let activity = verb_activity(c.operation);
    let mut b = Built::new(Class::ApiActivity, activity);
    if activity == OTHER {
        b.activity_other = Some(c.operation.to_string());
    }
    b
}

/// Maps one Unified Audit Log record to its OCSF event (see the module docs).
pub fn normalize_unified_audit(
    record: &Value,
    opts: &NormalizeOptions,
) -> Result<Value, NormalizeError> {
    let src = Src::new(record)?;
    let c = common(&src)?;
    let route = route_unified_audit(c.operation, c.workload);
    let mut ev = Map::new();
    let built = match route {
        UalRoute::InboxRule => Some(inbox_rule(&src, &c, &mut ev)),
        UalRoute::Mailbox => Some(mailbox(&src, &c, &mut ev)),
        UalRoute::TransportRule => Some(transport_rule(&src, &c, &mut ev)),
        UalRoute::MailboxPermission => mailbox_permission(&src, &c, &mut ev),
        UalRoute::Logon => Some(logon(&src, &c, &mut ev)),
        UalRoute::AppGrant => app_grant(&src, &c, &mut ev),
        UalRoute::AppChange => Some(app_change(&src, &c, &mut ev)),
        UalRoute::Flow => flow(&src, &c, &mut ev),
        UalRoute::MailItemsAccessed => Some(mail_items_accessed(&src, &c, &mut ev)),
        UalRoute::Generic => None,
    };
    // A routed record without what its class needs (a grantee, a target, a flow id) falls
    // back to the generic event rather than fail or emit an invalid one.
    let built = match built {
        Some(b) => b,
        None => {
            ev.clear();
            generic_api(&src, &c, &mut ev)
        }
    };
    if built.class != Class::Authentication {
        ev.insert("actor".into(), actor_json(&src, &c));
        let fallback = built.class == Class::ApiActivity;
        let se = src_endpoint_json(&c, fallback);
        if !se.is_null() {
            ev.insert("src_endpoint".into(), se);
        }
        if !ev.contains_key("api") {
            ev.insert("api".into(), api_json(&c, None));
        }
        ev.insert("observables".into(), observables(&c, c.actor.name));
    }
    let (status_id, status_detail) = built
        .status_override
        .clone()
        .unwrap_or((c.status_id, c.status_detail.clone()));
    let (status_id, status_other) = if status_id == OTHER {
        (OTHER, status_detail.clone())
    } else {
        (status_id, None)
    };
    let envelope = Envelope {
        class: built.class,
        activity_id: built.activity_id,
        activity_other: built.activity_other.clone(),
        severity_id: 1,
        status_id,
        status_other,
        status_code: built.status_code.clone(),
        status_detail: if status_id == OTHER {
            None
        } else {
            status_detail
        },
        message: built.message.clone(),
        time_ms: c.time_ms,
        original_time: c.original_time,
        source_id: c.id,
        correlation_uid: built.correlation.as_deref(),
        event_code: Some(
            built
                .event_code
                .clone()
                .unwrap_or_else(|| c.operation.to_string()),
        ),
        stream: Stream::UnifiedAudit,
        host: built.host,
        security_control: false,
    };
    let mut event = finish(ev, envelope, &src, record, opts);
    if let Some(o) = event.as_object_mut() {
        if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
            m.insert("log_name".into(), json!(content_type_of(c.workload)));
            m.insert("log_provider".into(), json!(LOG_PROVIDER));
            if let Some(p) = m.get_mut("product").and_then(Value::as_object_mut) {
                p.insert("name".into(), json!(product_name(c.workload)));
            }
        }
        let leftovers: Vec<(&str, Map<String, Value>)> = built
            .leftovers
            .into_iter()
            .filter(|(_, m)| !m.is_empty())
            .collect();
        if !leftovers.is_empty() {
            let un = o
                .entry("unmapped")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Some(un) = un.as_object_mut() {
                for (k, m) in leftovers {
                    let mut v = Value::Object(m);
                    if super::common::prune(&mut v) {
                        un.insert(k.to_string(), v);
                    }
                }
            }
        }
    }
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cloud;
    use crate::ocsf::{check_event, event_class_uid};

    fn opts() -> NormalizeOptions {
        NormalizeOptions::new("2b6f0c1e-5a7d-4e93-8c4b-7f1a0d9e6c52", Cloud::Global)
    }

    #[test]
    fn routes() {
        let r = |op: &str, w: &str| route_unified_audit(op, Some(w));
        assert_eq!(r("New-InboxRule", "Exchange"), UalRoute::InboxRule);
        assert_eq!(r("UpdateInboxRules", "Exchange"), UalRoute::InboxRule);
        assert_eq!(r("Set-Mailbox", "Exchange"), UalRoute::Mailbox);
        assert_eq!(r("New-TransportRule", "Exchange"), UalRoute::TransportRule);
        assert_eq!(
            r("Add-MailboxPermission", "Exchange"),
            UalRoute::MailboxPermission
        );
        assert_eq!(
            r("Set-MailboxFolderPermission", "Exchange"),
            UalRoute::MailboxPermission
        );
        assert_eq!(r("UserLoggedIn", "AzureActiveDirectory"), UalRoute::Logon);
        assert_eq!(
            r("Consent to application.", "AzureActiveDirectory"),
            UalRoute::AppGrant
        );
        assert_eq!(
            r("Add service principal.", "AzureActiveDirectory"),
            UalRoute::AppChange
        );
        assert_eq!(
            r("Update application.", "AzureActiveDirectory"),
            UalRoute::AppChange
        );
        assert_eq!(r("Add user.", "AzureActiveDirectory"), UalRoute::Generic);
        assert_eq!(r("CreateFlow", "MicrosoftFlow"), UalRoute::Flow);
        assert_eq!(r("PutPermissions", "MicrosoftFlow"), UalRoute::Flow);
        assert_eq!(
            r("MailItemsAccessed", "Exchange"),
            UalRoute::MailItemsAccessed
        );
        assert_eq!(r("MemberAdded", "MicrosoftTeams"), UalRoute::Generic);
        assert_eq!(r("", ""), UalRoute::Generic);
    }

    #[test]
    fn verbs() {
        assert_eq!(verb_activity("New-ManagementRoleAssignment"), 1);
        assert_eq!(verb_activity("Set-CASMailbox"), 3);
        assert_eq!(verb_activity("Remove-MailContact"), 4);
        assert_eq!(verb_activity("SoftDelete"), 4);
        assert_eq!(verb_activity("Get-Mailbox"), 2);
        assert_eq!(verb_activity("MailboxLogin"), OTHER);
        assert_eq!(verb_activity("Send"), OTHER);
    }

    #[test]
    fn recipients_are_read_in_every_logged_form() {
        assert_eq!(
            recipients(&json!(
                "\"Attacker\" [SMTP:attacker@evil.example];bob@contoso.com"
            )),
            vec!["attacker@evil.example", "bob@contoso.com"]
        );
        assert_eq!(recipients(&json!("smtp:a@b.example")), vec!["a@b.example"]);
        assert_eq!(
            recipients(&json!("Alice <alice@contoso.com>")),
            vec!["alice@contoso.com"]
        );
        assert_eq!(
            recipients(&json!([{"Address": "x@y.example"}, "z@y.example"])),
            vec!["x@y.example", "z@y.example"]
        );
        assert!(recipients(&json!(5)).is_empty());
    }

    #[test]
    fn a_forwarding_and_deleting_inbox_rule_keeps_its_actions_in_structured_form() {
        let rec = json!({
            "CreationTime": "2024-03-11T08:41:07", "Id": "4f1a9c2e-7d3b-4e85-b6a0-08dc11e2f0a7",
            "Operation": "New-InboxRule", "RecordType": 1, "ResultStatus": "True",
            "UserKey": "10032003B1C2D4E5", "UserType": 2, "Workload": "Exchange",
            "ClientIP": "203.0.113.45:50122", "UserId": "it.admin@contoso.onmicrosoft.com",
            "ObjectId": "EURPR05A004.PROD.OUTLOOK.COM/Microsoft Exchange Hosted Organizations/contoso.onmicrosoft.com/6b0e2f7a-93d1-4c55-8e2a-1f4d7c9b3a60\\Direct",
            "Parameters": [
                {"Name": "Name", "Value": "Direct"},
                {"Name": "SubjectContainsWords", "Value": "Attention;invoice"},
                {"Name": "ForwardTo", "Value": "attacker@evil.example"},
                {"Name": "DeleteMessage", "Value": "True"},
                {"Name": "MoveToFolder", "Value": "RSS Feeds"},
                {"Name": "StopProcessingRules", "Value": "True"}
            ]
        });
        let ev = normalize_unified_audit(&rec, &opts()).unwrap_or_default();
        assert_eq!(check_event(&ev), Ok(()));
        assert_eq!(event_class_uid(&ev), Some(3004));
        assert_eq!(ev["activity_id"], 1);
        let e = &ev["entity"];
        assert_eq!(e["type"], "Inbox Rule");
        assert_eq!(e["name"], "Direct");
        assert_eq!(e["user"]["name"], "6b0e2f7a-93d1-4c55-8e2a-1f4d7c9b3a60");
        let a = &e["data"]["actions"];
        assert_eq!(a["forward_to"], json!(["attacker@evil.example"]));
        assert_eq!(a["delete"], true);
        assert_eq!(a["move_to_folder"], "RSS Feeds");
        assert_eq!(a["stop_processing_rules"], true);
        assert_eq!(
            e["data"]["conditions"]["SubjectContainsWords"],
            json!(["Attention", "invoice"])
        );
        assert_eq!(ev["src_endpoint"]["ip"], "203.0.113.45");
        assert_eq!(ev["src_endpoint"]["port"], 50122);
        assert_eq!(ev["actor"]["user"]["type_id"], 2);
        assert_eq!(ev["status_id"], 1);
        assert!(
            ev.get("unmapped")
                .and_then(|u| u.get("Parameters"))
                .is_none()
        );
        assert_eq!(ev["metadata"]["log_name"], "Audit.Exchange");
        assert_eq!(ev["metadata"]["product"]["name"], "Exchange Online");
        assert_eq!(ev["metadata"]["event_code"], "New-InboxRule");
    }

    #[test]
    fn records_without_id_or_time_are_errors_naming_the_field() {
        let e = normalize_unified_audit(
            &json!({"CreationTime": "2024-01-01T00:00:00", "UserId": "secret@x.com"}),
            &opts(),
        );
        assert_eq!(e, Err(NormalizeError::MissingField("Id")));
        let e = normalize_unified_audit(&json!({"Id": "a", "CreationTime": "later"}), &opts());
        assert_eq!(
            e,
            Err(NormalizeError::BadTimestamp {
                field: "CreationTime"
            })
        );
        assert_eq!(
            normalize_unified_audit(&json!([]), &opts()),
            Err(NormalizeError::NotAnObject)
        );
        // An unknown operation is a generic event, never an error.
        let ev = normalize_unified_audit(
            &json!({"Id": "b", "CreationTime": "2024-01-01T00:00:00", "Operation": "SomethingNew", "RecordType": 999}),
            &opts(),
        )
        .unwrap_or_default();
        assert_eq!(event_class_uid(&ev), Some(6003));
        assert_eq!(ev["activity_id"], 99);
        assert_eq!(ev["activity_name"], "SomethingNew");
        assert_eq!(check_event(&ev), Ok(()));
    }
}
