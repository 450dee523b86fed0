//! The Lambda entry points: the scheduler, and the poller shared by both cloud groups (the
//! commercial and the US Government poller are the same code, started with a different cloud
//! group). Each function's `main` is one call to these.

use std::sync::Arc;
use std::time::SystemTime;

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn, tracing};

use crate::CloudGroup;
use crate::aws::config::{PollerConfig, SchedulerConfig};
use crate::aws::handler::{PollerContext, SchedulerContext, handle_jobs, handle_schedule};
use crate::aws::{AwsEndpoint, sdk_config};
use crate::clock::SystemClock;

/// Runs an actions function for `group` (response actions; `aws/actions.rs`).
pub use crate::aws::actions::run_actions;

/// Runs a poller for `group`: tracing for Lambda (JSON when `AWS_LAMBDA_LOG_FORMAT=JSON`),
/// configuration validated and the context built once at cold start, then the SQS handler.
pub async fn run_poller(group: CloudGroup) -> Result<(), lambda_runtime::Error> {
    tracing::init_default_subscriber();
    let started = std::time::Instant::now();
    let cfg = PollerConfig::from_env(group).inspect_err(|e| {
        tracing::error!(error = %e, "invalid configuration; fix the environment and redeploy");
    })?;
    let sdk = sdk_config(&AwsEndpoint::Default).await;
    let ctx = PollerContext::from_config(&cfg, &sdk, Arc::new(SystemClock)).inspect_err(|e| {
        tracing::error!(kind = e.kind(), error = %e, "cold start failed");
    })?;
    tracing::info!(
        group = group.as_str(),
        init_ms = started.elapsed().as_millis() as u64,
        "poller initialised"
    );
    let ctx = Arc::new(ctx);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let ctx = ctx.clone();
        async move {
            let remaining = event
                .context
                .deadline()
                .duration_since(SystemTime::now())
                .unwrap_or_default();
            Ok::<_, Diagnostic>(handle_jobs(event.payload, &ctx, remaining).await)
        }
    }))
    .await
}

/// Runs the scheduler: tracing for Lambda, configuration validated and the context built once at
/// cold start, then the EventBridge handler (errors become the typed Lambda diagnostic).
pub async fn run_scheduler() -> Result<(), lambda_runtime::Error> {
    tracing::init_default_subscriber();
    let started = std::time::Instant::now();
    let cfg = SchedulerConfig::from_env().inspect_err(|e| {
        tracing::error!(error = %e, "invalid configuration; fix the environment and redeploy");
    })?;
    let sdk = sdk_config(&AwsEndpoint::Default).await;
    let ctx = Arc::new(SchedulerContext::from_config(
        &cfg,
        &sdk,
        Arc::new(SystemClock),
    ));
    tracing::info!(
        init_ms = started.elapsed().as_millis() as u64,
        "scheduler initialised"
    );
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| {
        let ctx = ctx.clone();
        async move {
            handle_schedule(event.payload, &ctx)
                .await
                .map_err(|e| Diagnostic {
                    error_type: e.kind().into(),
                    error_message: e.to_string(),
                })
        }
    }))
    .await
}
