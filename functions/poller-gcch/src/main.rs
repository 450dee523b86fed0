//! The poller-gcch Lambda: SQS-triggered, polls Microsoft Graph for tenants of the US Government clouds (GCC High, DoD).
//! Both pollers run `itdr_shared::aws::lambda::run_poller`; only the cloud group differs.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    itdr_shared::aws::lambda::run_poller(itdr_shared::CloudGroup::UsGov).await
}
