//! The poller Lambda: SQS-triggered, polls Microsoft Graph for tenants of the commercial clouds (Global, GCC, China).
//! Both pollers run `itdr_shared::aws::lambda::run_poller`; only the cloud group differs.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    itdr_shared::aws::lambda::run_poller(itdr_shared::CloudGroup::Commercial).await
}
