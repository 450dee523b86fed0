//! The report Lambda of the US Government clouds (GCC High, DoD): its own bucket, secrets and
//! tenants only. Both report functions run `itdr_shared::aws::report::run_report`; only the
//! cloud group differs.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    itdr_shared::aws::report::run_report(itdr_shared::CloudGroup::UsGov).await
}
