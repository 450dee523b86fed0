//! The poller-gcch Lambda: SQS-triggered, polls Microsoft Graph for tenants of the US Government clouds (GCC High, DoD).
//! Everything but the wiring lives in `itdr_shared::aws`; the other poller runs the same code
//! for the other cloud group.

use std::sync::Arc;
use std::time::SystemTime;

use aws_lambda_events::event::sqs::SqsEvent;
use itdr_shared::CloudGroup;
use itdr_shared::aws::config::PollerConfig;
use itdr_shared::aws::handler::{PollerContext, handle_jobs};
use itdr_shared::aws::{AwsEndpoint, sdk_config};
use itdr_shared::clock::SystemClock;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn, tracing};

/// The cloud group this binary serves.
const GROUP: CloudGroup = CloudGroup::UsGov;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing::init_default_subscriber();
    let started = std::time::Instant::now();
    let cfg = PollerConfig::from_env(GROUP).inspect_err(|e| {
        tracing::error!(error = %e, "invalid configuration; fix the environment and redeploy");
    })?;
    let sdk = sdk_config(&AwsEndpoint::Default).await;
    let ctx = PollerContext::from_config(&cfg, &sdk, Arc::new(SystemClock)).inspect_err(|e| {
        tracing::error!(kind = e.kind(), error = %e, "cold start failed");
    })?;
    tracing::info!(
        group = GROUP.as_str(),
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
