//! The scheduler Lambda: triggered by EventBridge Scheduler, sends one poll job per (tenant,
//! stream) to the jobs queue of the tenant's cloud group. The logic lives in
//! `itdr_shared::aws`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    itdr_shared::aws::lambda::run_scheduler().await
}
