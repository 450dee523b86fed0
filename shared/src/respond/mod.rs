//! Response actions on a customer tenant: disable or re-enable an account, revoke its sign-in
//! sessions, disable or delete inbox rules, remove mailbox forwarding (or say exactly how, where
//! Graph cannot), remove registered authentication methods, and `contain` (disable, revoke,
//! disable the rules that hide mail, in that order).
//!
//! Every action goes through the same [`ApiClient`] as the pollers, so the tenant's cloud picks
//! every host and token scope: a GCC High action only ever reaches `graph.microsoft.us` and
//! `login.microsoftonline.us`, and an app registered in another cloud group is refused before
//! any request ([`RespondError::CloudMismatch`]).
//!
//! Order of an action ([`Responder::run`]):
//! 1. the request is checked: a reason and a requester are mandatory;
//! 2. the token's application `roles` are compared with what the action needs
//!    ([`permissions`]); anything missing refuses the action with the preflight remedy;
//! 3. the target user is read (`GET /users/{id}`);
//! 4. the rails: a protected account (per organization) is never disabled, nor stripped of its
//!    authentication methods; the last enabled Global Administrator is never disabled;
//! 5. the audit record is written (outcome `started`), then each step runs, reading the state
//!    first so that a second run changes nothing and says `already`;
//! 6. the final record is written ([`ActionLog`]) and the OCSF events are sent
//!    ([`crate::ocsf::response`]).
//!
//! A dry run does steps 1 to 4 and the reads of step 5, and returns the writes it would have
//! sent ([`CallOutcome::Planned`]) without sending them.
//!
//! Errors name the step, the user id and the failure kind, never a token, a secret or a
//! response body.

pub mod audit;
pub mod permissions;
mod steps;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::AuthError;
use crate::client::{ApiClient, SourceError, Tenant};
use crate::cloud::{Api, Cloud, CloudGroup};
use crate::store::{EventSink, StoreError};

pub use audit::{ActionLog, MemoryActionLog};
pub use permissions::{MissingPermission, Requirement};

/// Global Administrator's role template id.
pub const GLOBAL_ADMIN_ROLE: &str = "62e90394-69f5-4237-9190-012177145e10";

/// A response action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// `accountEnabled = false`.
    DisableAccount,
    /// `accountEnabled = true`.
    EnableAccount,
    /// `revokeSignInSessions`: refresh tokens and session cookies stop working.
    RevokeSessions,
    /// Disable one inbox rule of the user's mailbox.
    DisableRule {
        /// The rule's Graph id.
        rule_id: String,
    },
    /// Delete one inbox rule of the user's mailbox.
    DeleteRule {
        /// The rule's Graph id.
        rule_id: String,
    },
    /// Disable every enabled rule of the mailbox that forwards or redirects outside the
    /// tenant's domains.
    DisableForwardingRules,
    /// Remove the mailbox's own forwarding (`ForwardingSmtpAddress`): not exposed by Graph, so
    /// the result is the exact Exchange Online PowerShell the operator must run.
    RemoveMailboxForwarding,
    /// Remove every registered authentication method but the password, listing each one so
    /// it can be registered again.
    RemoveAuthMethods,
    /// Disable the account, revoke its sessions, disable the rules that hide mail.
    Contain,
}

impl Action {
    /// Stable name (CLI, audit trail, events).
    pub fn as_str(&self) -> &'static str {
        match self {
            Action::DisableAccount => "disable_account",
            Action::EnableAccount => "enable_account",
            Action::RevokeSessions => "revoke_sessions",
            Action::DisableRule { .. } => "disable_rule",
            Action::DeleteRule { .. } => "delete_rule",
            Action::DisableForwardingRules => "disable_forwarding_rules",
            Action::RemoveMailboxForwarding => "remove_mailbox_forwarding",
            Action::RemoveAuthMethods => "remove_auth_methods",
            Action::Contain => "contain",
        }
    }

    /// The permissions the action needs, all of them checked before any call.
    pub fn requirements(&self) -> Vec<Requirement> {
        use permissions::*;
        match self {
            Action::DisableAccount => vec![READ_USER, ENABLE_DISABLE, READ_ROLES],
            Action::EnableAccount => vec![READ_USER, ENABLE_DISABLE],
            Action::RevokeSessions => vec![READ_USER, REVOKE],
            Action::DisableRule { .. } | Action::DeleteRule { .. } => {
                vec![READ_USER, RULES_WRITE]
            }
            Action::DisableForwardingRules => vec![READ_USER, RULES_WRITE, READ_DOMAINS],
            Action::RemoveMailboxForwarding => vec![READ_USER],
            Action::RemoveAuthMethods => vec![READ_USER, AUTH_METHODS],
            Action::Contain => vec![
                READ_USER,
                ENABLE_DISABLE,
                READ_ROLES,
                REVOKE,
                RULES_WRITE,
                READ_DOMAINS,
            ],
        }
    }

    /// Whether the action takes the account out of its owner's hands (refused for protected
    /// accounts).
    fn locks_out(&self) -> bool {
        matches!(
            self,
            Action::DisableAccount | Action::Contain | Action::RemoveAuthMethods
        )
    }

    /// Whether the action disables the account (the last-Global-Administrator rail).
    fn disables(&self) -> bool {
        matches!(self, Action::DisableAccount | Action::Contain)
    }
}

/// One request for an action.
#[derive(Debug, Clone)]
pub struct ActionRequest {
    /// The tenant (its cloud routes every call).
    pub tenant: Tenant,
    /// The organization the tenant belongs to (whose protected accounts apply).
    pub organization: String,
    /// The target user: object id or user principal name.
    pub user: String,
    /// What to do.
    pub action: Action,
    /// Why (mandatory; recorded and emitted).
    pub reason: String,
    /// Who asks (mandatory; recorded and emitted).
    pub requester: String,
    /// Read and plan only.
    pub dry_run: bool,
}

/// Protected accounts (break-glass administrators) per organization, by UPN or object id,
/// compared case-insensitively. They are never disabled nor stripped of their methods.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProtectedAccounts {
    by_org: BTreeMap<String, Vec<String>>,
}

impl ProtectedAccounts {
    /// None protected.
    pub fn new() -> Self {
        Self::default()
    }

    /// Protects `accounts` in `organization` (added to those already there).
    pub fn protect(
        &mut self,
        organization: &str,
        accounts: impl IntoIterator<Item = impl Into<String>>,
    ) {
        let list = self.by_org.entry(org_key(organization)).or_default();
        for a in accounts {
            let a: String = a.into();
            let a = a.trim().to_ascii_lowercase();
            if !a.is_empty() && !list.contains(&a) {
                list.push(a);
            }
        }
    }

    /// Whether any of `names` (UPN, object id) is protected in `organization`.
    pub fn is_protected<'a>(
        &self,
        organization: &str,
        names: impl IntoIterator<Item = &'a str>,
    ) -> bool {
        let Some(list) = self.by_org.get(&org_key(organization)) else {
            return false;
        };
        names
            .into_iter()
            .any(|n| list.contains(&n.trim().to_ascii_lowercase()))
    }
}

fn org_key(org: &str) -> String {
    crate::store::org_key(org)
}

/// Why an action was refused or could not run. Never carries a token, a secret or a
/// response body.
#[derive(Debug, thiserror::Error)]
pub enum RespondError {
    /// No reason was given.
    #[error("every action needs a reason (--reason)")]
    MissingReason,
    /// No requester was given.
    #[error("every action needs the requester's identity (--requester)")]
    MissingRequester,
    /// The tenant's cloud is not served by this responder's cloud group.
    #[error("tenant {tenant} is in the {cloud} cloud, which the {group} responder does not serve")]
    WrongGroup {
        /// Tenant.
        tenant: String,
        /// Its cloud.
        cloud: Cloud,
        /// The responder's group.
        group: CloudGroup,
    },
    /// The app registration belongs to another cloud group: nothing was sent.
    #[error(
        "the write app is registered in the {app_group} cloud group; tenant {tenant} is in {cloud}: refused, nothing was sent"
    )]
    CloudMismatch {
        /// Tenant.
        tenant: String,
        /// Its cloud.
        cloud: Cloud,
        /// The app's group.
        app_group: CloudGroup,
    },
    /// No token could be had.
    #[error("no token for tenant {tenant}: {source}")]
    Token {
        /// Tenant.
        tenant: String,
        /// Why.
        #[source]
        source: AuthError,
    },
    /// The token lacks permissions the action needs.
    #[error("missing permission(s) {}: {remedy}", names(.missing))]
    PermissionMissing {
        /// What is missing.
        missing: Vec<MissingPermission>,
        /// The fix.
        remedy: String,
    },
    /// The target user does not exist.
    #[error("user {user} not found in tenant {tenant}")]
    UserNotFound {
        /// Tenant.
        tenant: String,
        /// The user as given.
        user: String,
    },
    /// The inbox rule does not exist in the user's inbox.
    #[error("inbox rule {rule_id} not found in the inbox of user {user_id}")]
    RuleNotFound {
        /// User object id.
        user_id: String,
        /// Rule id.
        rule_id: String,
    },
    /// The account is protected in its organization.
    #[error(
        "user {user_id} is a protected account of organization {organization:?}: {action} refused"
    )]
    Protected {
        /// User object id.
        user_id: String,
        /// Organization.
        organization: String,
        /// The refused action.
        action: &'static str,
    },
    /// Disabling the account would leave no enabled Global Administrator.
    #[error(
        "user {user_id} is the last enabled Global Administrator of tenant {tenant}: disabling refused"
    )]
    LastGlobalAdmin {
        /// Tenant.
        tenant: String,
        /// User object id.
        user_id: String,
    },
    /// A read the action depends on failed.
    #[error("{what} failed for tenant {tenant}: {source}")]
    Read {
        /// Tenant.
        tenant: String,
        /// What was read.
        what: &'static str,
        /// Why.
        #[source]
        source: SourceError,
    },
    /// The audit trail could not be written: no write was sent (or, after the writes, the
    /// final record is missing and the `started` record stands).
    #[error("audit trail: {0}")]
    Audit(#[from] StoreError),
}

fn names(m: &[MissingPermission]) -> String {
    m.iter()
        .map(|m| m.permission.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

impl RespondError {
    /// Whether the action was refused by a rail or a check (nothing was changed).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            RespondError::MissingReason
                | RespondError::MissingRequester
                | RespondError::WrongGroup { .. }
                | RespondError::CloudMismatch { .. }
                | RespondError::PermissionMissing { .. }
                | RespondError::Protected { .. }
                | RespondError::LastGlobalAdmin { .. }
                | RespondError::UserNotFound { .. }
                | RespondError::RuleNotFound { .. }
        )
    }
}

/// One Microsoft call of an action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallRecord {
    /// HTTP method.
    pub method: String,
    /// The full URL (its host shows the cloud).
    pub url: String,
    /// The JSON body sent (or to be sent), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
    /// What became of it.
    pub outcome: CallOutcome,
}

/// What became of a call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum CallOutcome {
    /// Answered 2xx.
    Ok {
        /// The status.
        status: u16,
    },
    /// A dry run: not sent.
    Planned,
    /// Failed.
    Failed {
        /// The failure kind.
        kind: String,
        /// Microsoft's error code, when it gave one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<String>,
    },
}

impl CallOutcome {
    fn from_error(e: &SourceError) -> Self {
        let code = match e {
            SourceError::Forbidden { code }
            | SourceError::NotFound { code }
            | SourceError::Unauthorized { code }
            | SourceError::BadRequest { code, .. } => Some(code.clone()),
            _ => None,
        };
        CallOutcome::Failed {
            kind: e.kind().as_str().to_string(),
            code,
        }
    }
}

/// The steps an action is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// Set `accountEnabled = false`.
    DisableAccount,
    /// Set `accountEnabled = true`.
    EnableAccount,
    /// Revoke sign-in sessions.
    RevokeSessions,
    /// Disable one rule.
    DisableRule,
    /// Delete one rule.
    DeleteRule,
    /// Disable the rules that forward or redirect outside the tenant.
    DisableForwardingRules,
    /// Disable the rules that hide mail (forward outside, delete, move out of sight, mark
    /// read).
    DisableHidingRules,
    /// Remove mailbox forwarding.
    RemoveMailboxForwarding,
    /// Remove authentication methods.
    RemoveAuthMethods,
}

impl StepKind {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::DisableAccount => "disable_account",
            StepKind::EnableAccount => "enable_account",
            StepKind::RevokeSessions => "revoke_sessions",
            StepKind::DisableRule => "disable_rule",
            StepKind::DeleteRule => "delete_rule",
            StepKind::DisableForwardingRules => "disable_forwarding_rules",
            StepKind::DisableHidingRules => "disable_hiding_rules",
            StepKind::RemoveMailboxForwarding => "remove_mailbox_forwarding",
            StepKind::RemoveAuthMethods => "remove_auth_methods",
        }
    }
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    /// Changed what it had to change.
    Done,
    /// Nothing to change: the state was already the wanted one.
    Already,
    /// A dry run: the writes are planned, not sent.
    Planned,
    /// Cannot be done through the API: `detail` says what the operator must do.
    Manual,
    /// Some writes succeeded, others failed.
    Partial,
    /// Failed.
    Failed,
}

impl StepOutcome {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            StepOutcome::Done => "done",
            StepOutcome::Already => "already",
            StepOutcome::Planned => "planned",
            StepOutcome::Manual => "manual",
            StepOutcome::Partial => "partial",
            StepOutcome::Failed => "failed",
        }
    }
}

/// An inbox rule a step touched (or would touch).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleRef {
    /// Rule id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Why it was chosen (`forwards_external`, `deletes`, …).
    pub flags: Vec<String>,
    /// The outside addresses it forwards to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external: Vec<String>,
    /// The step's result for this rule: `done`, `already`, `planned`, `failed`, `manual`.
    pub result: String,
}

/// An authentication method that was (or would be) removed: enough to register it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemovedMethod {
    /// The Graph type (`phoneAuthenticationMethod`, …).
    pub method_type: String,
    /// Its id.
    pub id: String,
    /// What identifies it to the user (phone number and type, e-mail address, device name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// `done`, `planned`, `failed`, `kept` (cannot be removed through the API).
    pub result: String,
}

/// One step of an action and its calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepReport {
    /// Which step.
    pub step: StepKind,
    /// How it ended.
    pub outcome: StepOutcome,
    /// One line for the operator (the manual instruction for [`StepOutcome::Manual`]).
    pub detail: String,
    /// The Microsoft calls made (or planned), in order.
    pub calls: Vec<CallRecord>,
    /// Rules touched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<RuleRef>,
    /// Methods removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<RemovedMethod>,
}

/// How an action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Recorded before the first write; replaced when the action ends.
    Started,
    /// Every step done, already done, or left to the operator.
    Completed,
    /// Some step failed or was partial.
    Partial,
    /// Every step that was tried failed.
    Failed,
    /// Refused by a check or a rail; nothing was written.
    Refused,
    /// A dry run.
    DryRun,
}

impl Outcome {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Started => "started",
            Outcome::Completed => "completed",
            Outcome::Partial => "partial",
            Outcome::Failed => "failed",
            Outcome::Refused => "refused",
            Outcome::DryRun => "dry_run",
        }
    }
}

/// The target user as read from Graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetUser {
    /// Object id (or, when the user could not be read, the input).
    pub id: String,
    /// User principal name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upn: Option<String>,
    /// `accountEnabled` before the action, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled_before: Option<bool>,
}

/// The audit record of one action: who, why, on whom, each call and its outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionReport {
    /// Unique id of the action.
    pub id: String,
    /// Tenant GUID (or domain as given).
    pub tenant_id: String,
    /// The tenant's cloud.
    pub cloud: Cloud,
    /// Organization.
    pub organization: String,
    /// The action.
    pub action: Action,
    /// Requester.
    pub requester: String,
    /// Reason.
    pub reason: String,
    /// Target.
    pub target: TargetUser,
    /// A dry run.
    pub dry_run: bool,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended (the `started` record has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// How it ended.
    pub outcome: Outcome,
    /// Why it was refused or could not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The reads made before the steps (target user, Global Administrators).
    pub lookups: Vec<CallRecord>,
    /// The steps, in order.
    pub steps: Vec<StepReport>,
}

impl ActionReport {
    /// Every call of the action (lookups, then each step's), in order.
    pub fn calls(&self) -> impl Iterator<Item = &CallRecord> {
        self.lookups
            .iter()
            .chain(self.steps.iter().flat_map(|s| s.calls.iter()))
    }

    /// The writes the action sent or planned (anything but GET).
    pub fn writes(&self) -> Vec<&CallRecord> {
        self.calls().filter(|c| c.method != "GET").collect()
    }
}

/// Runs response actions.
pub struct Responder {
    client: Arc<ApiClient>,
    log: Arc<dyn ActionLog>,
    events: Option<Arc<dyn EventSink>>,
    protected: ProtectedAccounts,
    group: Option<CloudGroup>,
    timeout: Duration,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder")
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

/// Default time an action may take, all calls included.
pub const DEFAULT_ACTION_TIMEOUT: Duration = Duration::from_secs(120);

impl Responder {
    /// A responder calling Microsoft through `client` (built with
    /// [`crate::stack::StackBuilder`], with the write app's credentials) and recording every
    /// action in `log`.
    pub fn new(client: Arc<ApiClient>, log: Arc<dyn ActionLog>) -> Self {
        Self {
            client,
            log,
            events: None,
            protected: ProtectedAccounts::default(),
            group: None,
            timeout: DEFAULT_ACTION_TIMEOUT,
        }
    }

    /// Sends each action's OCSF events to `sink`.
    pub fn with_events(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.events = Some(sink);
        self
    }

    /// The protected accounts.
    pub fn with_protected(mut self, protected: ProtectedAccounts) -> Self {
        self.protected = protected;
        self
    }

    /// Serves only tenants of `group`'s clouds (a per-group deployment).
    pub fn for_group(mut self, group: CloudGroup) -> Self {
        self.group = Some(group);
        self
    }

    /// The time an action may take.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The audit trail.
    pub fn log(&self) -> &Arc<dyn ActionLog> {
        &self.log
    }

    /// Runs one action and returns its report (also recorded in the audit trail). A refusal
    /// after the request was validated is recorded too, then returned as the error.
    pub async fn run(&self, req: &ActionRequest) -> Result<ActionReport, RespondError> {
        match self.run_recorded(req).await? {
            (report, None) => Ok(report),
            (_, Some(e)) => Err(e),
        }
    }

    /// [`Responder::run`], keeping the recorded report of an action stopped before its steps
    /// (refused by a check or a rail, or a read it depends on failed): `(report, Some(why))`,
    /// the report's outcome [`Outcome::Refused`]. `Err` only when nothing was recorded (no
    /// reason or requester) or the audit trail could not be written.
    pub async fn run_recorded(
        &self,
        req: &ActionRequest,
    ) -> Result<(ActionReport, Option<RespondError>), RespondError> {
        if req.reason.trim().is_empty() {
            return Err(RespondError::MissingReason);
        }
        if req.requester.trim().is_empty() {
            return Err(RespondError::MissingRequester);
        }
        let clock = self.client.clock().clone();
        let started_at = clock.now();
        let deadline =
            started_at + chrono::Duration::from_std(self.timeout).unwrap_or(chrono::Duration::MAX);
        let mut report = ActionReport {
            id: uuid::Uuid::new_v4().to_string(),
            tenant_id: req.tenant.id.clone(),
            cloud: req.tenant.cloud,
            organization: req.organization.clone(),
            action: req.action.clone(),
            requester: req.requester.trim().to_string(),
            reason: req.reason.trim().to_string(),
            target: TargetUser {
                id: req.user.trim().to_string(),
                upn: None,
                enabled_before: None,
            },
            dry_run: req.dry_run,
            started_at,
            finished_at: None,
            outcome: Outcome::Started,
            error: None,
            lookups: Vec::new(),
            steps: Vec::new(),
        };
        match self.prepare(req, &mut report, deadline).await {
            Ok(()) => {}
            Err(e) => {
                report.outcome = Outcome::Refused;
                report.error = Some(e.to_string());
                report.finished_at = Some(clock.now());
                self.log.record(&report).await?;
                self.emit(&report).await;
                return Ok((report, Some(e)));
            }
        }
        if !req.dry_run {
            // Durable intent before the first write.
            self.log.record(&report).await?;
        }
        let ctx = steps::Ctx {
            client: &self.client,
            tenant: &req.tenant,
            deadline,
            dry_run: req.dry_run,
        };
        let plan: Vec<StepKind> = match &req.action {
            Action::DisableAccount => vec![StepKind::DisableAccount],
            Action::EnableAccount => vec![StepKind::EnableAccount],
            Action::RevokeSessions => vec![StepKind::RevokeSessions],
            Action::DisableRule { .. } => vec![StepKind::DisableRule],
            Action::DeleteRule { .. } => vec![StepKind::DeleteRule],
            Action::DisableForwardingRules => vec![StepKind::DisableForwardingRules],
            Action::RemoveMailboxForwarding => vec![StepKind::RemoveMailboxForwarding],
            Action::RemoveAuthMethods => vec![StepKind::RemoveAuthMethods],
            Action::Contain => vec![
                StepKind::DisableAccount,
                StepKind::RevokeSessions,
                StepKind::DisableHidingRules,
            ],
        };
        for step in plan {
            let r = steps::run(&ctx, step, &req.action, &report.target).await;
            report.steps.push(r);
        }
        report.outcome = if req.dry_run {
            Outcome::DryRun
        } else {
            let failed = report
                .steps
                .iter()
                .filter(|s| s.outcome == StepOutcome::Failed)
                .count();
            let partial = report
                .steps
                .iter()
                .any(|s| s.outcome == StepOutcome::Partial);
            if failed == report.steps.len() && failed > 0 {
                Outcome::Failed
            } else if failed > 0 || partial {
                Outcome::Partial
            } else {
                Outcome::Completed
            }
        };
        report.finished_at = Some(clock.now());
        self.log.record(&report).await?;
        if !req.dry_run {
            self.emit(&report).await;
        }
        Ok((report, None))
    }

    /// Checks, permissions, the target and the rails.
    async fn prepare(
        &self,
        req: &ActionRequest,
        report: &mut ActionReport,
        deadline: DateTime<Utc>,
    ) -> Result<(), RespondError> {
        let tenant = &req.tenant;
        if let Some(group) = self.group
            && tenant.cloud.group() != group
        {
            return Err(RespondError::WrongGroup {
                tenant: tenant.id.clone(),
                cloud: tenant.cloud,
                group,
            });
        }
        let token = self
            .client
            .tokens()
            .token(tenant.cloud, &tenant.id, Api::Graph, deadline)
            .await
            .map_err(|e| match e {
                AuthError::CloudMismatch { app_group, cloud } => RespondError::CloudMismatch {
                    tenant: tenant.id.clone(),
                    cloud,
                    app_group,
                },
                source => RespondError::Token {
                    tenant: tenant.id.clone(),
                    source,
                },
            })?;
        let missing = permissions::missing(&req.action.requirements(), &token.roles);
        if !missing.is_empty() {
            let remedy = permissions::remedy(&missing, &tenant.id);
            return Err(RespondError::PermissionMissing { missing, remedy });
        }
        let ctx = steps::Ctx {
            client: &self.client,
            tenant,
            deadline,
            dry_run: req.dry_run,
        };
        let user = steps::read_user(&ctx, &req.user, &mut report.lookups).await?;
        report.target = user.clone();
        let names = [
            Some(req.user.as_str()),
            Some(user.id.as_str()),
            user.upn.as_deref(),
        ];
        if req.action.locks_out()
            && self
                .protected
                .is_protected(&req.organization, names.into_iter().flatten())
        {
            return Err(RespondError::Protected {
                user_id: user.id.clone(),
                organization: req.organization.clone(),
                action: req.action.as_str(),
            });
        }
        if req.action.disables() && user.enabled_before == Some(true) {
            let others =
                steps::other_enabled_global_admins(&ctx, &user.id, &mut report.lookups).await?;
            if let Some(0) = others {
                return Err(RespondError::LastGlobalAdmin {
                    tenant: tenant.id.clone(),
                    user_id: user.id.clone(),
                });
            }
        }
        if let Action::DisableRule { rule_id } = &req.action {
            let rules = steps::list_rules(&ctx, &user.id, &mut report.lookups).await?;
            if !rules
                .iter()
                .any(|r| r.get("id").and_then(Value::as_str) == Some(rule_id.as_str()))
            {
                return Err(RespondError::RuleNotFound {
                    user_id: user.id.clone(),
                    rule_id: rule_id.clone(),
                });
            }
        }
        Ok(())
    }

    /// Sends the action's OCSF events; a failure is logged (the audit trail holds the action).
    async fn emit(&self, report: &ActionReport) {
        let Some(sink) = &self.events else {
            return;
        };
        let events = crate::ocsf::response::response_events(report);
        if events.is_empty() {
            return;
        }
        let envelope = crate::store::Envelope {
            envelope_version: crate::batch::ENVELOPE_VERSION,
            ocsf_version: crate::ocsf::OCSF_VERSION.to_string(),
            tenant_id: report.tenant_id.clone(),
            stream: crate::ocsf::response::ENVELOPE_STREAM,
            events,
        };
        if let Err(e) = sink.send(std::slice::from_ref(&envelope)).await {
            tracing::error!(tenant = %report.tenant_id, action = %report.id, error = %e, "response events were not delivered; the audit trail holds the action");
        }
    }
}
