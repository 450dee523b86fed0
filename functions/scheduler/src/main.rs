//! The scheduler Lambda: triggered by EventBridge Scheduler, sends one poll job per (tenant,
//! stream) to the jobs queue of the tenant's cloud group. The logic lives in
//! `itdr_shared::aws`.

use std::sync::Arc;

use itdr_shared::aws::config::SchedulerConfig;
use itdr_shared::aws::handler::{SchedulerContext, handle_schedule};
use itdr_shared::aws::{AwsEndpoint, sdk_config};
use itdr_shared::clock::SystemClock;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn, tracing};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
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
