//! The DynamoDB registry of an AWS deployment, for `itdr tenants` and `itdr preflight` (builds
//! with the `aws` feature; without it, a clear error).

use std::sync::Arc;

use itdr_shared::store::{CursorStore, TenantRegistry};

use crate::config::RegistryConfig;

/// The registry and cursor store on the configured DynamoDB tables.
#[cfg(feature = "aws")]
pub async fn dynamodb(
    cfg: &RegistryConfig,
) -> anyhow::Result<(Arc<dyn TenantRegistry>, Arc<dyn CursorStore>)> {
    use anyhow::anyhow;
    use itdr_shared::aws::dynamo::{DynamoCursorStore, DynamoRegistry};
    use itdr_shared::aws::{AwsEndpoint, sdk_config};

    let endpoint = match &cfg.aws_endpoint {
        Some(url) => {
            AwsEndpoint::local(url).map_err(|e| anyhow!("[registry] aws_endpoint: {e}"))?
        }
        None => AwsEndpoint::Default,
    };
    let (Some(tenants), Some(cursors)) = (&cfg.tenants_table, &cfg.cursors_table) else {
        anyhow::bail!("[registry] kind = \"dynamodb\" needs tenants_table and cursors_table");
    };
    let sdk = sdk_config(&endpoint).await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    Ok((
        Arc::new(DynamoRegistry::new(client.clone(), tenants.clone())),
        Arc::new(DynamoCursorStore::new(client, cursors.clone())),
    ))
}

/// Without the `aws` feature the DynamoDB registry is not compiled in.
#[cfg(not(feature = "aws"))]
pub async fn dynamodb(
    _cfg: &RegistryConfig,
) -> anyhow::Result<(Arc<dyn TenantRegistry>, Arc<dyn CursorStore>)> {
    anyhow::bail!(
        "[registry] kind = \"dynamodb\" needs an itdr built with AWS support: cargo build -p itdr-cli --features aws"
    )
}
