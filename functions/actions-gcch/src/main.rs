//! The actions-gcch Lambda: response actions (disable, revoke sessions, disable rules,
//! contain) on tenants of the US Government clouds (GCC High, DoD), from its queue or invoked
//! directly. Its role reads only the usgov secrets: a GCC High action never leaves the US
//! Government cloud. Both actions functions run `itdr_shared::aws::lambda::run_actions`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    itdr_shared::aws::lambda::run_actions(itdr_shared::CloudGroup::UsGov).await
}
