//! The Microsoft Graph calls behind each step. Every step reads the state first, so that a
//! second run sends no write and says `already`.
//!
//! | step | read | write |
//! |---|---|---|
//! | disable / enable | `GET /users/{id}?$select=id,userPrincipalName,accountEnabled` | `PATCH /users/{id}` `{"accountEnabled": false\|true}` (204) |
//! | revoke sessions | | `POST /users/{id}/revokeSignInSessions` (200 `{"value": true}`) |
//! | rules | `GET /users/{id}/mailFolders/inbox/messageRules`, `GET /domains`, `GET /users/{id}/mailFolders/{folder}` | `PATCH …/messageRules/{rule}` `{"isEnabled": false}` (200), `DELETE …/messageRules/{rule}` (204) |
//! | authentication methods | `GET /users/{id}/authentication/methods` | `DELETE /users/{id}/authentication/{kind}Methods/{method}` (204) |
//! | last Global Administrator | `GET /roleManagement/directory/roleAssignments?$filter=roleDefinitionId eq '…'`, then `GET /users/{id}` of the other holders | |
//!
//! Mailbox forwarding (`ForwardingSmtpAddress`, `ForwardingAddress`) is an Exchange mailbox
//! property that Graph neither reads nor writes (`mailboxSettings` has no forwarding): that
//! step is [`StepOutcome::Manual`] with the exact Exchange Online PowerShell to run.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde_json::{Value, json};
use url::Url;

use super::{
    Action, CallOutcome, CallRecord, GLOBAL_ADMIN_ROLE, RemovedMethod, RespondError, RuleRef,
    StepKind, StepOutcome, StepReport, TargetUser,
};
use crate::client::{ApiClient, Bucket, Call, Priority, SourceError, Tenant};
use crate::cloud::{Api, Cloud};
use crate::inventory::classify::{is_external, is_hidden_folder, is_punctuation_name};

/// What every step needs.
pub(super) struct Ctx<'a> {
    pub client: &'a ApiClient,
    pub tenant: &'a Tenant,
    pub deadline: DateTime<Utc>,
    pub dry_run: bool,
}

/// Characters escaped in a path segment (UPNs carry `@` and, for guests, `#EXT#`; rule and
/// method ids may carry `/`, `+` and `=`).
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'@');

fn seg(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s.trim(), SEGMENT).to_string()
}

fn url(ctx: &Ctx<'_>, path: &str, query: &[(&str, String)]) -> Result<Url, SourceError> {
    ApiClient::url(ctx.tenant, Api::Graph, &format!("v1.0/{path}"), query)
}

fn record(method: &Method, url: &Url, body: Option<&Value>, outcome: CallOutcome) -> CallRecord {
    CallRecord {
        method: method.to_string(),
        url: url.to_string(),
        body: body.cloned(),
        outcome,
    }
}

/// A GET whose JSON body is returned.
async fn get(
    ctx: &Ctx<'_>,
    bucket: Bucket,
    url: &Url,
    calls: &mut Vec<CallRecord>,
) -> Result<Value, SourceError> {
    let call = Call::get(ctx.tenant, Api::Graph, bucket, url, ctx.deadline);
    let res = ctx
        .client
        .send_with(&call, |http| {
            serde_json::from_slice::<Value>(&http.body).map_err(|_| SourceError::BadRequest {
                status: http.status,
                code: "undecodable_body".into(),
            })
        })
        .await;
    match res {
        Ok((resp, v)) => {
            calls.push(record(
                &Method::GET,
                url,
                None,
                CallOutcome::Ok {
                    status: resp.status,
                },
            ));
            Ok(v)
        }
        Err(e) => {
            calls.push(record(&Method::GET, url, None, CallOutcome::from_error(&e)));
            Err(e)
        }
    }
}

/// Every record of a collection, each page's call recorded.
async fn get_all(
    ctx: &Ctx<'_>,
    bucket: Bucket,
    first: Url,
    calls: &mut Vec<CallRecord>,
) -> Result<Vec<Value>, SourceError> {
    let mut out = Vec::new();
    let mut next = Some(first);
    while let Some(url) = next {
        let res = ctx
            .client
            .get_page_as(ctx.tenant, bucket, &url, ctx.deadline, Priority::Regular)
            .await;
        match res {
            Ok(page) => {
                calls.push(record(
                    &Method::GET,
                    &url,
                    None,
                    CallOutcome::Ok { status: 200 },
                ));
                out.extend(page.value);
                if let Some(e) = page.refused_link {
                    return Err(e);
                }
                next = page.next_link;
            }
            Err(e) => {
                calls.push(record(
                    &Method::GET,
                    &url,
                    None,
                    CallOutcome::from_error(&e),
                ));
                return Err(e);
            }
        }
    }
    Ok(out)
}

/// A write: planned in a dry run, sent otherwise.
async fn write(
    ctx: &Ctx<'_>,
    method: Method,
    bucket: Bucket,
    url: &Url,
    body: Option<Value>,
    calls: &mut Vec<CallRecord>,
) -> Result<(), SourceError> {
    if ctx.dry_run {
        calls.push(record(&method, url, body.as_ref(), CallOutcome::Planned));
        return Ok(());
    }
    let call = Call {
        tenant: ctx.tenant,
        api: Api::Graph,
        bucket,
        method: method.clone(),
        url,
        deadline: ctx.deadline,
        priority: Priority::Regular,
    };
    let res = match &body {
        Some(b) => ctx.client.send_json(&call, b).await,
        None => ctx.client.send(&call).await,
    };
    match res {
        Ok(resp) => {
            calls.push(record(
                &method,
                url,
                body.as_ref(),
                CallOutcome::Ok {
                    status: resp.status,
                },
            ));
            Ok(())
        }
        Err(e) => {
            calls.push(record(
                &method,
                url,
                body.as_ref(),
                CallOutcome::from_error(&e),
            ));
            Err(e)
        }
    }
}

fn read_err(ctx: &Ctx<'_>, what: &'static str) -> impl FnOnce(SourceError) -> RespondError {
    let tenant = ctx.tenant.id.clone();
    move |source| RespondError::Read {
        tenant,
        what,
        source,
    }
}

fn text<'v>(v: &'v Value, k: &str) -> Option<&'v str> {
    v.get(k).and_then(Value::as_str)
}

/// Reads the target user.
pub(super) async fn read_user(
    ctx: &Ctx<'_>,
    user: &str,
    calls: &mut Vec<CallRecord>,
) -> Result<TargetUser, RespondError> {
    let u = url(
        ctx,
        &format!("users/{}", seg(user)),
        &[("$select", "id,userPrincipalName,accountEnabled".into())],
    )
    .map_err(read_err(ctx, "building the user URL"))?;
    match get(ctx, Bucket::Directory, &u, calls).await {
        Ok(v) => Ok(TargetUser {
            id: text(&v, "id").unwrap_or(user).to_string(),
            upn: text(&v, "userPrincipalName").map(str::to_string),
            enabled_before: v.get("accountEnabled").and_then(Value::as_bool),
        }),
        Err(SourceError::NotFound { .. }) => Err(RespondError::UserNotFound {
            tenant: ctx.tenant.id.clone(),
            user: user.to_string(),
        }),
        Err(e) => Err(read_err(ctx, "reading the target user")(e)),
    }
}

/// `None` when `user_id` holds no active Global Administrator assignment; otherwise how many
/// *other* enabled users hold one (counting stops at the first). Group and service-principal
/// holders do not count: they cannot sign in to recover the tenant as a person can.
pub(super) async fn other_enabled_global_admins(
    ctx: &Ctx<'_>,
    user_id: &str,
    calls: &mut Vec<CallRecord>,
) -> Result<Option<usize>, RespondError> {
    let u = url(
        ctx,
        "roleManagement/directory/roleAssignments",
        &[(
            "$filter",
            format!("roleDefinitionId eq '{GLOBAL_ADMIN_ROLE}'"),
        )],
    )
    .map_err(read_err(ctx, "building the role assignments URL"))?;
    let assignments = get_all(ctx, Bucket::Directory, u, calls)
        .await
        .map_err(read_err(ctx, "reading the Global Administrators"))?;
    let holders: BTreeSet<String> = assignments
        .iter()
        .filter(|a| {
            text(a, "roleDefinitionId").is_some_and(|r| r.eq_ignore_ascii_case(GLOBAL_ADMIN_ROLE))
        })
        .filter(|a| text(a, "directoryScopeId").is_none_or(|s| s == "/"))
        .filter_map(|a| text(a, "principalId").map(str::to_ascii_lowercase))
        .collect();
    if !holders.contains(&user_id.to_ascii_lowercase()) {
        return Ok(None);
    }
    for other in holders.iter().filter(|h| !h.eq_ignore_ascii_case(user_id)) {
        let u = url(
            ctx,
            &format!("users/{}", seg(other)),
            &[("$select", "id,accountEnabled".into())],
        )
        .map_err(read_err(ctx, "building the user URL"))?;
        match get(ctx, Bucket::Directory, &u, calls).await {
            Ok(v) if v.get("accountEnabled").and_then(Value::as_bool) == Some(true) => {
                return Ok(Some(1));
            }
            Ok(_) => {}
            // Not a user (a group or a service principal): it does not count.
            Err(SourceError::NotFound { .. }) => {}
            Err(e) => return Err(read_err(ctx, "reading a Global Administrator")(e)),
        }
    }
    Ok(Some(0))
}

fn rules_url(ctx: &Ctx<'_>, user_id: &str) -> Result<Url, SourceError> {
    url(
        ctx,
        &format!("users/{}/mailFolders/inbox/messageRules", seg(user_id)),
        &[],
    )
}

fn rule_url(ctx: &Ctx<'_>, user_id: &str, rule_id: &str) -> Result<Url, SourceError> {
    url(
        ctx,
        &format!(
            "users/{}/mailFolders/inbox/messageRules/{}",
            seg(user_id),
            seg(rule_id)
        ),
        &[],
    )
}

/// The inbox rules of the user's mailbox.
pub(super) async fn list_rules(
    ctx: &Ctx<'_>,
    user_id: &str,
    calls: &mut Vec<CallRecord>,
) -> Result<Vec<Value>, RespondError> {
    let u = rules_url(ctx, user_id).map_err(read_err(ctx, "building the rules URL"))?;
    get_all(ctx, Bucket::Outlook, u, calls)
        .await
        .map_err(read_err(ctx, "reading the inbox rules"))
}

/// Runs one step.
pub(super) async fn run(
    ctx: &Ctx<'_>,
    step: StepKind,
    action: &Action,
    target: &TargetUser,
) -> StepReport {
    let mut r = StepReport {
        step,
        outcome: StepOutcome::Failed,
        detail: String::new(),
        calls: Vec::new(),
        rules: Vec::new(),
        methods: Vec::new(),
    };
    let result = match step {
        StepKind::DisableAccount => account_enabled(ctx, target, false, &mut r).await,
        StepKind::EnableAccount => account_enabled(ctx, target, true, &mut r).await,
        StepKind::RevokeSessions => revoke(ctx, target, &mut r).await,
        StepKind::DisableRule | StepKind::DeleteRule => match action {
            Action::DisableRule { rule_id } | Action::DeleteRule { rule_id } => {
                one_rule(ctx, target, rule_id, step == StepKind::DeleteRule, &mut r).await
            }
            _ => Err("no rule id".to_string()),
        },
        StepKind::DisableForwardingRules => rules_by_flags(ctx, target, false, &mut r).await,
        StepKind::DisableHidingRules => rules_by_flags(ctx, target, true, &mut r).await,
        StepKind::RemoveMailboxForwarding => {
            r.outcome = StepOutcome::Manual;
            r.detail = forwarding_instruction(ctx.tenant.cloud, target);
            Ok(())
        }
        StepKind::RemoveAuthMethods => auth_methods(ctx, target, &mut r).await,
    };
    if let Err(detail) = result {
        r.outcome = StepOutcome::Failed;
        r.detail = detail;
    }
    r
}

fn failure(what: &str, e: &SourceError) -> String {
    format!("{what} failed: {}", e.kind().as_str())
}

async fn account_enabled(
    ctx: &Ctx<'_>,
    target: &TargetUser,
    enable: bool,
    r: &mut StepReport,
) -> Result<(), String> {
    let word = if enable { "enabled" } else { "disabled" };
    if target.enabled_before == Some(enable) {
        r.outcome = StepOutcome::Already;
        r.detail = format!("account already {word}");
        return Ok(());
    }
    let u = url(ctx, &format!("users/{}", seg(&target.id)), &[]).map_err(|e| failure("URL", &e))?;
    write(
        ctx,
        Method::PATCH,
        Bucket::Directory,
        &u,
        Some(json!({"accountEnabled": enable})),
        &mut r.calls,
    )
    .await
    .map_err(|e| failure("setting accountEnabled", &e))?;
    r.outcome = if ctx.dry_run {
        StepOutcome::Planned
    } else {
        StepOutcome::Done
    };
    r.detail = format!("account {word}");
    Ok(())
}

async fn revoke(ctx: &Ctx<'_>, target: &TargetUser, r: &mut StepReport) -> Result<(), String> {
    let u = url(
        ctx,
        &format!("users/{}/revokeSignInSessions", seg(&target.id)),
        &[],
    )
    .map_err(|e| failure("URL", &e))?;
    write(ctx, Method::POST, Bucket::Directory, &u, None, &mut r.calls)
        .await
        .map_err(|e| failure("revokeSignInSessions", &e))?;
    r.outcome = if ctx.dry_run {
        StepOutcome::Planned
    } else {
        StepOutcome::Done
    };
    // Graph cannot tell whether sessions were already revoked: the call is repeated, which is
    // harmless (it moves signInSessionsValidFromDateTime to now).
    r.detail = "refresh tokens and session cookies revoked (Microsoft applies it within minutes; access tokens already issued stay valid until they expire)".into();
    Ok(())
}

async fn one_rule(
    ctx: &Ctx<'_>,
    target: &TargetUser,
    rule_id: &str,
    delete: bool,
    r: &mut StepReport,
) -> Result<(), String> {
    let rules = match list_rules(ctx, &target.id, &mut r.calls).await {
        Ok(rules) => rules,
        Err(RespondError::Read {
            source: SourceError::NotFound { .. },
            ..
        }) if delete => Vec::new(),
        Err(e) => return Err(e.to_string()),
    };
    let Some(rule) = rules.iter().find(|x| text(x, "id") == Some(rule_id)) else {
        if delete {
            r.outcome = StepOutcome::Already;
            r.detail = "no such rule: already deleted".into();
            return Ok(());
        }
        return Err("no such rule in the inbox".into());
    };
    let name = text(rule, "displayName").unwrap_or_default().to_string();
    let mut rref = RuleRef {
        id: rule_id.to_string(),
        name: name.clone(),
        flags: Vec::new(),
        external: Vec::new(),
        result: String::new(),
    };
    let enabled = rule.get("isEnabled").and_then(Value::as_bool) != Some(false);
    if !delete && !enabled {
        rref.result = "already".into();
        r.rules.push(rref);
        r.outcome = StepOutcome::Already;
        r.detail = "rule already disabled".into();
        return Ok(());
    }
    if rule.get("isReadOnly").and_then(Value::as_bool) == Some(true) {
        rref.result = "manual".into();
        r.rules.push(rref);
        r.outcome = StepOutcome::Manual;
        r.detail = read_only_instruction(ctx.tenant.cloud, target, &name, delete);
        return Ok(());
    }
    let u = rule_url(ctx, &target.id, rule_id).map_err(|e| failure("URL", &e))?;
    let res = if delete {
        write(ctx, Method::DELETE, Bucket::Outlook, &u, None, &mut r.calls).await
    } else {
        write(
            ctx,
            Method::PATCH,
            Bucket::Outlook,
            &u,
            Some(json!({"isEnabled": false})),
            &mut r.calls,
        )
        .await
    };
    match res {
        Ok(()) => {}
        Err(SourceError::NotFound { .. }) if delete => {
            rref.result = "already".into();
            r.rules.push(rref);
            r.outcome = StepOutcome::Already;
            r.detail = "no such rule: already deleted".into();
            return Ok(());
        }
        Err(e) => {
            rref.result = "failed".into();
            r.rules.push(rref);
            return Err(failure(
                if delete { "DELETE rule" } else { "PATCH rule" },
                &e,
            ));
        }
    }
    r.outcome = if ctx.dry_run {
        StepOutcome::Planned
    } else {
        StepOutcome::Done
    };
    rref.result = r.outcome.as_str().into();
    r.rules.push(rref);
    r.detail = if delete {
        "rule deleted (not reversible: the rule's definition is kept in the audit trail's lookups only as its id and name)".into()
    } else {
        "rule disabled (re-enable it in Outlook or with PATCH isEnabled=true)".into()
    };
    Ok(())
}

/// Recipient addresses of a rule action that may be one recipient or a list.
fn addresses(v: Option<&Value>) -> Vec<String> {
    let one = |r: &Value| {
        r.get("emailAddress")
            .and_then(|e| text(e, "address"))
            .map(str::to_ascii_lowercase)
    };
    match v {
        Some(Value::Array(a)) => a.iter().filter_map(one).collect(),
        Some(o @ Value::Object(_)) => one(o).into_iter().collect(),
        _ => Vec::new(),
    }
}

/// Why a rule hides mail from its owner, and the outside addresses it sends mail to.
pub(super) fn hiding_flags(
    rule: &Value,
    domains: &[String],
    folder_names: &BTreeMap<String, String>,
) -> (Vec<String>, Vec<String>) {
    let a = rule.get("actions").cloned().unwrap_or(Value::Null);
    let mut external: Vec<String> = ["forwardTo", "forwardAsAttachmentTo", "redirectTo"]
        .iter()
        .flat_map(|k| addresses(a.get(*k)))
        .filter(|addr| is_external(addr, domains))
        .collect();
    external.sort();
    external.dedup();
    let mut flags = Vec::new();
    if !external.is_empty() {
        flags.push("forwards_external".to_string());
    }
    if a.get("delete").and_then(Value::as_bool) == Some(true)
        || a.get("permanentDelete").and_then(Value::as_bool) == Some(true)
    {
        flags.push("deletes".into());
    }
    if let Some(folder) = text(&a, "moveToFolder") {
        let name = folder_names.get(folder).map(String::as_str).unwrap_or("");
        if is_hidden_folder(folder) || is_hidden_folder(name) {
            flags.push("moves_to_hidden_folder".into());
        }
    }
    if a.get("markAsRead").and_then(Value::as_bool) == Some(true) {
        flags.push("marks_read".into());
    }
    if !flags.is_empty() && is_punctuation_name(text(rule, "displayName").unwrap_or_default()) {
        flags.push("punctuation_name".into());
    }
    (flags, external)
}

async fn rules_by_flags(
    ctx: &Ctx<'_>,
    target: &TargetUser,
    hiding: bool,
    r: &mut StepReport,
) -> Result<(), String> {
    let rules = match list_rules(ctx, &target.id, &mut r.calls).await {
        Ok(rules) => rules,
        Err(RespondError::Read {
            source: SourceError::NotFound { .. },
            ..
        }) => {
            r.outcome = StepOutcome::Already;
            r.detail = "no Exchange Online mailbox: no inbox rules".into();
            return Ok(());
        }
        Err(e) => return Err(e.to_string()),
    };
    let forwards = rules.iter().any(|x| {
        let a = x.get("actions");
        ["forwardTo", "forwardAsAttachmentTo", "redirectTo"]
            .iter()
            .any(|k| !addresses(a.and_then(|a| a.get(*k))).is_empty())
    });
    let mut domains = Vec::new();
    if forwards {
        let u = url(ctx, "domains", &[("$select", "id".into())]).map_err(|e| failure("URL", &e))?;
        domains = get_all(ctx, Bucket::Directory, u, &mut r.calls)
            .await
            .map_err(|e| failure("reading the tenant's domains", &e))?
            .iter()
            .filter_map(|d| text(d, "id").map(str::to_ascii_lowercase))
            .collect();
    }
    let mut folder_names = BTreeMap::new();
    if hiding {
        let folders: BTreeSet<&str> = rules
            .iter()
            .filter_map(|x| x.get("actions").and_then(|a| text(a, "moveToFolder")))
            .filter(|f| !is_hidden_folder(f))
            .collect();
        for f in folders {
            let u = url(
                ctx,
                &format!("users/{}/mailFolders/{}", seg(&target.id), seg(f)),
                &[("$select", "id,displayName".into())],
            )
            .map_err(|e| failure("URL", &e))?;
            // An unreadable folder is not taken as hidden: only what is shown to hide mail is
            // disabled.
            if let Ok(v) = get(ctx, Bucket::Outlook, &u, &mut r.calls).await
                && let Some(name) = text(&v, "displayName")
            {
                folder_names.insert(f.to_string(), name.to_string());
            }
        }
    }
    let (mut done, mut failed, mut already, mut manual) = (0, 0, 0, 0);
    let mut first_error = None;
    for rule in &rules {
        let (mut flags, external) = hiding_flags(rule, &domains, &folder_names);
        if !hiding {
            flags.retain(|f| f == "forwards_external");
        }
        if flags.is_empty() {
            continue;
        }
        let Some(id) = text(rule, "id") else {
            continue;
        };
        let mut rref = RuleRef {
            id: id.to_string(),
            name: text(rule, "displayName").unwrap_or_default().to_string(),
            flags,
            external,
            result: String::new(),
        };
        if rule.get("isEnabled").and_then(Value::as_bool) == Some(false) {
            already += 1;
            rref.result = "already".into();
        } else if rule.get("isReadOnly").and_then(Value::as_bool) == Some(true) {
            manual += 1;
            rref.result = "manual".into();
        } else {
            let u = rule_url(ctx, &target.id, id).map_err(|e| failure("URL", &e))?;
            match write(
                ctx,
                Method::PATCH,
                Bucket::Outlook,
                &u,
                Some(json!({"isEnabled": false})),
                &mut r.calls,
            )
            .await
            {
                Ok(()) => {
                    done += 1;
                    rref.result = if ctx.dry_run { "planned" } else { "done" }.into();
                }
                Err(e) => {
                    failed += 1;
                    rref.result = "failed".into();
                    first_error.get_or_insert_with(|| failure("PATCH rule", &e));
                }
            }
        }
        r.rules.push(rref);
    }
    let what = if hiding {
        "rules that hide mail"
    } else {
        "rules that forward outside the tenant"
    };
    r.outcome = match (done, failed, manual) {
        (0, 0, 0) => StepOutcome::Already,
        (_, 0, 0) if ctx.dry_run => StepOutcome::Planned,
        (_, 0, 0) => StepOutcome::Done,
        (0, 0, _) => StepOutcome::Manual,
        (0, _, 0) => StepOutcome::Failed,
        _ => StepOutcome::Partial,
    };
    let verb = if ctx.dry_run {
        "to disable"
    } else {
        "disabled"
    };
    r.detail = format!(
        "{what}: {done} {verb}, {already} already disabled, {failed} failed, {manual} read-only (disable them in Outlook or with Disable-InboxRule)"
    );
    if let Some(e) = first_error {
        r.detail.push_str(&format!("; {e}"));
    }
    Ok(())
}

/// `Connect-ExchangeOnline` for the tenant's cloud.
fn connect_exchange(cloud: Cloud) -> &'static str {
    match cloud {
        Cloud::Global | Cloud::Gcc => "Connect-ExchangeOnline",
        Cloud::GccHigh => "Connect-ExchangeOnline -ExchangeEnvironmentName O365USGovGCCHigh",
        Cloud::Dod => "Connect-ExchangeOnline -ExchangeEnvironmentName O365USGovDoD",
        Cloud::China => "Connect-ExchangeOnline -ExchangeEnvironmentName O365China",
    }
}

fn mailbox(target: &TargetUser) -> String {
    target
        .upn
        .clone()
        .unwrap_or_else(|| target.id.clone())
        .replace('\'', "''")
}

/// The exact commands that remove a mailbox's own forwarding.
pub(super) fn forwarding_instruction(cloud: Cloud, target: &TargetUser) -> String {
    let m = mailbox(target);
    format!(
        "Microsoft Graph cannot read or clear mailbox forwarding (ForwardingSmtpAddress, ForwardingAddress). In Exchange Online PowerShell run: {}; Set-Mailbox -Identity '{m}' -ForwardingSmtpAddress $null -ForwardingAddress $null -DeliverToMailboxAndForward $false; then check with: Get-Mailbox -Identity '{m}' | Format-List ForwardingSmtpAddress,ForwardingAddress,DeliverToMailboxAndForward",
        connect_exchange(cloud)
    )
}

fn read_only_instruction(cloud: Cloud, target: &TargetUser, name: &str, delete: bool) -> String {
    let verb = if delete {
        "Remove-InboxRule"
    } else {
        "Disable-InboxRule"
    };
    format!(
        "the rule is read-only through Microsoft Graph. In Exchange Online PowerShell run: {}; {verb} -Mailbox '{}' -Identity '{}' -Confirm:$false",
        connect_exchange(cloud),
        mailbox(target),
        name.replace('\'', "''")
    )
}

/// The `/users/{id}/authentication/…` collection of a method type, and what identifies it.
fn method_kind(odata_type: &str) -> Option<&'static str> {
    let t = odata_type.trim_start_matches("#microsoft.graph.");
    Some(match t {
        "microsoftAuthenticatorAuthenticationMethod" => "microsoftAuthenticatorMethods",
        "phoneAuthenticationMethod" => "phoneMethods",
        "fido2AuthenticationMethod" => "fido2Methods",
        "emailAuthenticationMethod" => "emailMethods",
        "softwareOathAuthenticationMethod" => "softwareOathMethods",
        "windowsHelloForBusinessAuthenticationMethod" => "windowsHelloForBusinessMethods",
        "temporaryAccessPassAuthenticationMethod" => "temporaryAccessPassMethods",
        "platformCredentialAuthenticationMethod" => "platformCredentialMethods",
        _ => return None,
    })
}

fn method_detail(m: &Value) -> Option<String> {
    let parts: Vec<&str> = [
        "phoneType",
        "phoneNumber",
        "emailAddress",
        "displayName",
        "deviceTag",
        "model",
    ]
    .iter()
    .filter_map(|k| text(m, k))
    .filter(|s| !s.trim().is_empty())
    .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

async fn auth_methods(
    ctx: &Ctx<'_>,
    target: &TargetUser,
    r: &mut StepReport,
) -> Result<(), String> {
    let u = url(
        ctx,
        &format!("users/{}/authentication/methods", seg(&target.id)),
        &[],
    )
    .map_err(|e| failure("URL", &e))?;
    let methods = get_all(ctx, Bucket::Directory, u, &mut r.calls)
        .await
        .map_err(|e| failure("listing authentication methods", &e))?;
    let (mut done, mut failed) = (0, 0);
    let mut first_error = None;
    for m in &methods {
        let odata = text(m, "@odata.type").unwrap_or_default();
        let method_type = odata.trim_start_matches("#microsoft.graph.").to_string();
        let Some(id) = text(m, "id") else { continue };
        let mut removed = RemovedMethod {
            method_type: method_type.clone(),
            id: id.to_string(),
            detail: method_detail(m),
            result: String::new(),
        };
        match method_kind(odata) {
            None => removed.result = "kept".into(),
            Some(kind) => {
                let u = url(
                    ctx,
                    &format!(
                        "users/{}/authentication/{kind}/{}",
                        seg(&target.id),
                        seg(id)
                    ),
                    &[],
                )
                .map_err(|e| failure("URL", &e))?;
                match write(
                    ctx,
                    Method::DELETE,
                    Bucket::Directory,
                    &u,
                    None,
                    &mut r.calls,
                )
                .await
                {
                    Ok(()) => {
                        done += 1;
                        removed.result = if ctx.dry_run { "planned" } else { "done" }.into();
                    }
                    // Removed meanwhile.
                    Err(SourceError::NotFound { .. }) => removed.result = "already".into(),
                    Err(e) => {
                        failed += 1;
                        removed.result = "failed".into();
                        first_error.get_or_insert_with(|| failure("DELETE method", &e));
                    }
                }
            }
        }
        r.methods.push(removed);
    }
    r.outcome = match (done, failed) {
        (0, 0) => StepOutcome::Already,
        (_, 0) if ctx.dry_run => StepOutcome::Planned,
        (_, 0) => StepOutcome::Done,
        (0, _) => StepOutcome::Failed,
        _ => StepOutcome::Partial,
    };
    let verb = if ctx.dry_run { "to remove" } else { "removed" };
    r.detail = format!(
        "{done} authentication method(s) {verb}, {failed} failed; the password is kept (reset it separately); the user must register again (a Temporary Access Pass helps)"
    );
    if let Some(e) = first_error {
        r.detail.push_str(&format!("; {e}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rcpt(a: &str) -> Value {
        json!({"emailAddress": {"address": a}})
    }

    #[test]
    fn hiding_flags_follow_the_actions() {
        let domains = vec!["contoso.com".to_string()];
        let mut folders = BTreeMap::new();
        folders.insert("f1".to_string(), "RSS Feeds".to_string());
        folders.insert("f2".to_string(), "Newsletters".to_string());
        let f = |actions: Value, name: &str| {
            hiding_flags(
                &json!({"displayName": name, "actions": actions}),
                &domains,
                &folders,
            )
        };
        let (fl, ext) = f(
            json!({"forwardTo": [rcpt("a@contoso.com"), rcpt("x@evil.example")]}),
            "fw",
        );
        assert_eq!(fl, ["forwards_external"]);
        assert_eq!(ext, ["x@evil.example"]);
        assert_eq!(
            f(json!({"redirectTo": rcpt("x@evil.example")}), "r").0,
            ["forwards_external"]
        );
        assert!(
            f(json!({"forwardTo": [rcpt("b@sales.contoso.com")]}), "in")
                .0
                .is_empty()
        );
        assert_eq!(
            f(json!({"moveToFolder": "f1", "markAsRead": true}), ".").0,
            ["moves_to_hidden_folder", "marks_read", "punctuation_name"]
        );
        assert!(f(json!({"moveToFolder": "f2"}), "news").0.is_empty());
        assert_eq!(f(json!({"delete": true}), "x").0, ["deletes"]);
        assert!(f(json!({"markImportance": "high"}), "..").0.is_empty());
    }

    #[test]
    fn the_forwarding_instruction_names_the_clouds_exchange_environment() {
        let t = TargetUser {
            id: "id".into(),
            upn: Some("o'neil@contoso.us".into()),
            enabled_before: None,
        };
        let s = forwarding_instruction(Cloud::GccHigh, &t);
        assert!(s.contains("-ExchangeEnvironmentName O365USGovGCCHigh"));
        assert!(
            s.contains("Set-Mailbox -Identity 'o''neil@contoso.us' -ForwardingSmtpAddress $null")
        );
        assert!(!forwarding_instruction(Cloud::Global, &t).contains("ExchangeEnvironmentName"));
    }

    #[test]
    fn path_segments_escape_what_graph_paths_cannot_carry() {
        assert_eq!(seg("a_b#EXT#@x.com"), "a_b%23EXT%23@x.com");
        assert_eq!(seg("AQAB/c+d="), "AQAB%2Fc%2Bd%3D");
    }
}
