//! The actions Lambda: response actions (disable, revoke sessions, disable rules, contain) on
//! tenants of the commercial clouds (Global, GCC, China), from its queue or invoked directly.
//! Both actions functions run `itdr_shared::aws::lambda::run_actions`; only the cloud group
//! differs.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    itdr_shared::aws::lambda::run_actions(itdr_shared::CloudGroup::Commercial).await
}
