//! The Management Activity subscriptions of a tenant at onboarding (`itdr tenants add`) and
//! offboarding (`itdr tenants remove`): best effort, reported line by line. Preflight starts
//! them too (and says what blocks them), and a poll that finds one missing starts it.

use chrono::{TimeDelta, Utc};
use itdr_shared::Stream;
use itdr_shared::client::Tenant;
use itdr_shared::source::management_activity::{
    StartOutcome, start_subscription, stop_subscription,
};
use itdr_shared::store::TenantRecord;

use crate::preflight::Env;

/// Why nothing was tried, if so: the tenant does not poll the unified audit stream, its cloud
/// has no Management Activity API, or no app credential is configured for it.
fn skip_reason(env: &Env, record: &TenantRecord) -> Option<String> {
    if !record.streams.contains(&Stream::UnifiedAudit) {
        return Some("the unified_audit stream is not polled".into());
    }
    if itdr_shared::Api::ManagementActivity
        .host(record.cloud)
        .is_none()
    {
        return Some(format!(
            "{} has no Management Activity API",
            record.cloud.label()
        ));
    }
    if !env.apps.contains_key(&record.app_ref) {
        return Some(format!(
            "no app credential named {:?} is configured",
            record.app_ref
        ));
    }
    None
}

fn prime(env: &Env, record: &TenantRecord) -> anyhow::Result<Tenant> {
    let app = env
        .apps
        .get(&record.app_ref)
        .map(|a| a.credential(&record.app_ref))
        .transpose()?
        .ok_or_else(|| anyhow::anyhow!("no app credential"))?;
    env.stack.tokens.set(&record.tenant_id, app);
    Ok(Tenant {
        id: record.tenant_id.clone(),
        cloud: record.cloud,
    })
}

/// Starts the subscription of every content type the unified audit stream reads.
pub async fn start(env: &Env, record: &TenantRecord) -> Vec<String> {
    if let Some(why) = skip_reason(env, record) {
        return vec![format!("unified audit subscriptions not started: {why}")];
    }
    let tenant = match prime(env, record) {
        Ok(t) => t,
        Err(e) => return vec![format!("unified audit subscriptions not started: {e:#}")],
    };
    let deadline = Utc::now() + TimeDelta::seconds(60);
    let mut out = Vec::new();
    for ct in env.unified_audit.content_types() {
        let line = match start_subscription(&env.stack.client, &tenant, ct, deadline).await {
            Ok(StartOutcome::Started) => format!("subscription {ct}: started"),
            Ok(StartOutcome::AlreadyEnabled) => format!("subscription {ct}: already enabled"),
            Err(e) => format!("subscription {ct}: not started ({e}); `itdr preflight` explains"),
        };
        out.push(line);
    }
    out
}

/// Stops the subscription of every content type (offboarding): nothing more is recorded for
/// us, and content produced while stopped can never be retrieved.
pub async fn stop(env: &Env, record: &TenantRecord) -> Vec<String> {
    if let Some(why) = skip_reason(env, record) {
        return vec![format!("unified audit subscriptions not stopped: {why}")];
    }
    let tenant = match prime(env, record) {
        Ok(t) => t,
        Err(e) => return vec![format!("unified audit subscriptions not stopped: {e:#}")],
    };
    let deadline = Utc::now() + TimeDelta::seconds(60);
    let mut out = Vec::new();
    for ct in env.unified_audit.content_types() {
        let line = match stop_subscription(&env.stack.client, &tenant, ct, deadline).await {
            Ok(()) => format!("subscription {ct}: stopped"),
            Err(e) => format!("subscription {ct}: not stopped ({e})"),
        };
        out.push(line);
    }
    out
}
