//! The DynamoDB registry of an AWS deployment, for `itdr tenants` and `itdr preflight` (builds
//! with the `aws` feature; without it, a clear error).

use std::sync::Arc;

use itdr_shared::store::{CursorStore, TenantRegistry};

/// The cursor stores of a deployment: one per cloud group (on AWS each group has its own
/// cursor table; the embedded store serves both).
pub type CursorStores = (Arc<dyn CursorStore>, Arc<dyn CursorStore>);

use crate::config::RegistryConfig;

/// The registry and the (commercial, US Government) cursor stores on the configured DynamoDB
/// tables.
#[cfg(feature = "aws")]
pub async fn dynamodb(
    cfg: &RegistryConfig,
) -> anyhow::Result<(Arc<dyn TenantRegistry>, CursorStores)> {
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
    let usgov = cfg.usgov_cursors_table.as_ref().unwrap_or(cursors);
    let commercial: Arc<dyn CursorStore> =
        Arc::new(DynamoCursorStore::new(client.clone(), cursors.clone()));
    let usgov: Arc<dyn CursorStore> = if usgov == cursors {
        commercial.clone()
    } else {
        Arc::new(DynamoCursorStore::new(client.clone(), usgov.clone()))
    };
    Ok((
        Arc::new(DynamoRegistry::new(client, tenants.clone())),
        (commercial, usgov),
    ))
}

/// Without the `aws` feature the DynamoDB registry is not compiled in.
#[cfg(not(feature = "aws"))]
pub async fn dynamodb(
    _cfg: &RegistryConfig,
) -> anyhow::Result<(Arc<dyn TenantRegistry>, CursorStores)> {
    anyhow::bail!(
        "[registry] kind = \"dynamodb\" needs an itdr built with AWS support: cargo build -p itdr-cli --features aws"
    )
}
