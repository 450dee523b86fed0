//! The report Lambda: daily, the Identity Security Assessment of the commercial clouds'
//! tenants (Global, GCC, China) into their own bucket, emailed to each organization's contact.
//! Both report functions run `itdr_shared::aws::report::run_report`; only the cloud group differs.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    itdr_shared::aws::report::run_report(itdr_shared::CloudGroup::Commercial).await
}
