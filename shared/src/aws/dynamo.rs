//! The tenant registry and the cursor store on DynamoDB.
//!
//! Tables (names from the configuration, keys fixed by the infrastructure contract):
//! - registry: partition key `tenant_id` (S). One item per tenant with the attributes
//!   `cloud`, `cloud_group`, `app_ref`, `streams` (L of S), `include_noninteractive`,
//!   `enabled`, `domain`, `org`, `created_at`, `health` (S, JSON of [`Health`]),
//!   `health_state` (S, for operators' queries) and `rev` (N, bumped by every write).
//! - cursors: partition key `tenant_id` (S), sort key `stream` (S), attributes `doc` (S, the
//!   cursor JSON) and `version` (N). The identity inventory keeps its per-object items in the
//!   same table under sort keys cursors never use (`inv#...`, `invsum#...`, `usage#...`; see
//!   `dynamo/inventory.rs`).
//!
//! Compare-and-set: a cursor commit is one `PutItem` whose `ConditionExpression` requires the
//! stored version to equal the expected one (`attribute_not_exists` for the first commit). A
//! failed condition is [`StoreError::Conflict`]; nothing is overwritten. Health updates are a
//! read, [`apply_health`], and a write conditioned on `rev`, retried a few times on a lost
//! race, so concurrent updates are never lost either.
//!
//! Reads are strongly consistent. Verified domains are not checked for uniqueness here (the
//! embedded store does): DynamoDB would need a second item per domain in a transaction, and
//! registration goes through the operator tooling, which checks it.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, SecondsFormat, Utc};

use super::describe;
use crate::cloud::Cloud;
use crate::store::{
    CursorStore, Health, HealthUpdate, StoreError, StoredCursor, TenantRecord, TenantRegistry,
    apply_health,
};
use crate::stream::Stream;

mod inventory;

type Item = HashMap<String, AttributeValue>;

/// How often a health update retries after losing a race on `rev`.
const HEALTH_UPDATE_ATTEMPTS: u32 = 8;

fn backend<E, R>(op: &str, e: &aws_sdk_dynamodb::error::SdkError<E, R>) -> StoreError
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    StoreError::Backend(describe(op, e))
}

fn is_condition_failed<E, R>(e: &aws_sdk_dynamodb::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    super::error_code(e) == Some("ConditionalCheckFailedException")
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn get_s<'a>(item: &'a Item, key: &str) -> Result<&'a str, StoreError> {
    match item.get(key) {
        Some(AttributeValue::S(v)) => Ok(v),
        _ => Err(StoreError::Corrupt(format!(
            "attribute {key} is missing or not a string"
        ))),
    }
}

fn get_opt_s(item: &Item, key: &str) -> Option<String> {
    match item.get(key) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

fn get_bool(item: &Item, key: &str) -> Result<bool, StoreError> {
    match item.get(key) {
        Some(AttributeValue::Bool(b)) => Ok(*b),
        _ => Err(StoreError::Corrupt(format!(
            "attribute {key} is missing or not a boolean"
        ))),
    }
}

fn get_u64(item: &Item, key: &str) -> Result<u64, StoreError> {
    match item.get(key) {
        Some(AttributeValue::N(n)) => n
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("attribute {key} is not a whole number"))),
        _ => Err(StoreError::Corrupt(format!(
            "attribute {key} is missing or not a number"
        ))),
    }
}

/// The tenant registry on DynamoDB. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DynamoRegistry {
    client: Client,
    table: String,
}

/// One page of a registry scan.
#[derive(Debug, Default)]
pub struct RegistryPage {
    /// The tenants decoded from the page.
    pub tenants: Vec<TenantRecord>,
    /// Items that could not be decoded (logged, skipped).
    pub corrupt: usize,
    /// Where the next page starts; `None` after the last page.
    pub next: Option<Item>,
}

impl DynamoRegistry {
    /// A registry in `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Encodes a record as an item (without `rev`).
    fn encode(record: &TenantRecord) -> Result<Item, StoreError> {
        let health = serde_json::to_string(&record.health)
            .map_err(|_| StoreError::Invalid("health could not be encoded".into()))?;
        let mut item = Item::new();
        item.insert("tenant_id".into(), s(record.tenant_id.to_ascii_lowercase()));
        item.insert("cloud".into(), s(record.cloud.as_str()));
        item.insert("cloud_group".into(), s(record.cloud.group().as_str()));
        item.insert("app_ref".into(), s(record.app_ref.clone()));
        item.insert(
            "streams".into(),
            AttributeValue::L(record.streams.iter().map(|st| s(st.as_str())).collect()),
        );
        item.insert(
            "include_noninteractive".into(),
            AttributeValue::Bool(record.include_noninteractive),
        );
        item.insert("enabled".into(), AttributeValue::Bool(record.enabled));
        if let Some(d) = &record.domain {
            item.insert("domain".into(), s(d.to_ascii_lowercase()));
        }
        if let Some(o) = &record.org {
            item.insert("org".into(), s(o.clone()));
        }
        item.insert(
            "created_at".into(),
            s(record
                .created_at
                .to_rfc3339_opts(SecondsFormat::Millis, true)),
        );
        item.insert("health".into(), s(health));
        item.insert("health_state".into(), s(record.health.state.as_str()));
        Ok(item)
    }

    /// Decodes an item; the error names the attribute, never its value.
    fn decode(item: &Item) -> Result<(TenantRecord, u64), StoreError> {
        let tenant_id = get_s(item, "tenant_id")?.to_string();
        let cloud: Cloud = get_s(item, "cloud")?
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("tenant {tenant_id}: unknown cloud")))?;
        let streams = match item.get("streams") {
            Some(AttributeValue::L(l)) => l
                .iter()
                .map(|v| match v {
                    AttributeValue::S(x) => x.parse::<Stream>().map_err(|_| {
                        StoreError::Corrupt(format!("tenant {tenant_id}: unknown stream"))
                    }),
                    _ => Err(StoreError::Corrupt(format!(
                        "tenant {tenant_id}: streams holds a non-string"
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()?,
            _ => {
                return Err(StoreError::Corrupt(format!(
                    "tenant {tenant_id}: streams is missing or not a list"
                )));
            }
        };
        let health: Health = serde_json::from_str(get_s(item, "health")?)
            .map_err(|_| StoreError::Corrupt(format!("tenant {tenant_id}: unreadable health")))?;
        let created_at = DateTime::parse_from_rfc3339(get_s(item, "created_at")?)
            .map_err(|_| StoreError::Corrupt(format!("tenant {tenant_id}: unreadable created_at")))?
            .with_timezone(&Utc);
        let rev = match item.get("rev") {
            Some(_) => get_u64(item, "rev")?,
            None => 0,
        };
        Ok((
            TenantRecord {
                tenant_id,
                domain: get_opt_s(item, "domain"),
                org: get_opt_s(item, "org"),
                cloud,
                app_ref: get_s(item, "app_ref")?.to_string(),
                streams,
                include_noninteractive: get_bool(item, "include_noninteractive")?,
                enabled: get_bool(item, "enabled")?,
                health,
                created_at,
            },
            rev,
        ))
    }

    /// Reads one page of the registry (at most `limit` items), starting after `start`.
    /// Undecodable items are logged by tenant id and counted, not returned.
    pub async fn scan_page(
        &self,
        start: Option<Item>,
        limit: i32,
    ) -> Result<RegistryPage, StoreError> {
        let out = self
            .client
            .scan()
            .table_name(&self.table)
            .consistent_read(true)
            .limit(limit.max(1))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| backend("registry Scan", &e))?;
        let mut page = RegistryPage {
            next: out.last_evaluated_key().cloned().filter(|k| !k.is_empty()),
            ..RegistryPage::default()
        };
        for item in out.items() {
            match Self::decode(item) {
                Ok((r, _)) => page.tenants.push(r),
                Err(e) => {
                    page.corrupt += 1;
                    tracing::error!(error = %e, "registry item could not be decoded; skipped");
                }
            }
        }
        Ok(page)
    }

    async fn get_with_rev(
        &self,
        tenant_id: &str,
    ) -> Result<Option<(TenantRecord, u64)>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("tenant_id", s(tenant_id.to_ascii_lowercase()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend("registry GetItem", &e))?;
        out.item().map(Self::decode).transpose()
    }
}

#[async_trait]
impl TenantRegistry for DynamoRegistry {
    async fn list(&self) -> Result<Vec<TenantRecord>, StoreError> {
        let mut all = Vec::new();
        let mut start = None;
        loop {
            let page = self.scan_page(start, 100).await?;
            all.extend(page.tenants);
            match page.next {
                Some(k) => start = Some(k),
                None => break,
            }
        }
        all.sort_by(|a, b| a.tenant_id.cmp(&b.tenant_id));
        Ok(all)
    }

    async fn get(&self, tenant_id: &str) -> Result<Option<TenantRecord>, StoreError> {
        Ok(self.get_with_rev(tenant_id).await?.map(|(r, _)| r))
    }

    async fn insert(&self, record: &TenantRecord) -> Result<(), StoreError> {
        let mut item = Self::encode(record)?;
        item.insert("rev".into(), AttributeValue::N("1".into()));
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(tenant_id)")
            .send()
            .await
            .map_err(|e| {
                if is_condition_failed(&e) {
                    StoreError::Invalid(format!(
                        "tenant {} is already registered",
                        record.tenant_id
                    ))
                } else {
                    backend("registry PutItem", &e)
                }
            })?;
        Ok(())
    }

    async fn update(&self, record: &TenantRecord) -> Result<(), StoreError> {
        let item = Self::encode(record)?;
        let mut names = HashMap::new();
        let mut values = HashMap::new();
        let mut sets = Vec::new();
        for (i, (k, v)) in item
            .into_iter()
            .filter(|(k, _)| k != "tenant_id")
            .enumerate()
        {
            names.insert(format!("#a{i}"), k);
            values.insert(format!(":v{i}"), v);
            sets.push(format!("#a{i} = :v{i}"));
        }
        let mut remove = Vec::new();
        for (i, (attr, present)) in [
            ("domain", record.domain.is_some()),
            ("org", record.org.is_some()),
        ]
        .into_iter()
        .enumerate()
        {
            if !present {
                names.insert(format!("#r{i}"), attr.to_string());
                remove.push(format!("#r{i}"));
            }
        }
        values.insert(":one".into(), AttributeValue::N("1".into()));
        let mut expr = format!("SET {} ADD rev :one", sets.join(", "));
        if !remove.is_empty() {
            expr.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        self.client
            .update_item()
            .table_name(&self.table)
            .key("tenant_id", s(record.tenant_id.to_ascii_lowercase()))
            .update_expression(expr)
            .condition_expression("attribute_exists(tenant_id)")
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .send()
            .await
            .map_err(|e| {
                if is_condition_failed(&e) {
                    StoreError::UnknownTenant(record.tenant_id.clone())
                } else {
                    backend("registry UpdateItem", &e)
                }
            })?;
        Ok(())
    }

    async fn update_health(
        &self,
        tenant_id: &str,
        update: &HealthUpdate,
    ) -> Result<Health, StoreError> {
        for _ in 0..HEALTH_UPDATE_ATTEMPTS {
            let Some((record, rev)) = self.get_with_rev(tenant_id).await? else {
                return Err(StoreError::UnknownTenant(tenant_id.to_string()));
            };
            let health = apply_health(&record.health, update);
            let doc = serde_json::to_string(&health)
                .map_err(|_| StoreError::Invalid("health could not be encoded".into()))?;
            let cond = if rev == 0 {
                "attribute_not_exists(rev)"
            } else {
                "rev = :rev"
            };
            let mut req = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("tenant_id", s(tenant_id.to_ascii_lowercase()))
                .update_expression("SET health = :h, health_state = :st, rev = :next")
                .condition_expression(format!("attribute_exists(tenant_id) AND {cond}"))
                .expression_attribute_values(":h", s(doc))
                .expression_attribute_values(":st", s(health.state.as_str()))
                .expression_attribute_values(":next", AttributeValue::N((rev + 1).to_string()));
            if rev != 0 {
                req = req.expression_attribute_values(":rev", AttributeValue::N(rev.to_string()));
            }
            match req.send().await {
                Ok(_) => return Ok(health),
                Err(e) if is_condition_failed(&e) => {
                    tracing::debug!(tenant = %tenant_id, "health update lost a race; re-reading");
                    continue;
                }
                Err(e) => return Err(backend("registry UpdateItem", &e)),
            }
        }
        Err(StoreError::Backend(format!(
            "health of tenant {tenant_id} kept changing concurrently; gave up after {HEALTH_UPDATE_ATTEMPTS} attempts"
        )))
    }

    async fn delete(&self, tenant_id: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("tenant_id", s(tenant_id.to_ascii_lowercase()))
            .condition_expression("attribute_exists(tenant_id)")
            .send()
            .await
            .map_err(|e| {
                if is_condition_failed(&e) {
                    StoreError::UnknownTenant(tenant_id.to_string())
                } else {
                    backend("registry DeleteItem", &e)
                }
            })?;
        Ok(())
    }
}

/// The cursor store on DynamoDB. Cheap to clone.
#[derive(Debug, Clone)]
pub struct DynamoCursorStore {
    client: Client,
    table: String,
}

impl DynamoCursorStore {
    /// A cursor store in `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

#[async_trait]
impl CursorStore for DynamoCursorStore {
    async fn load(&self, tenant: &str, stream: Stream) -> Result<Option<StoredCursor>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("tenant_id", s(tenant.to_ascii_lowercase()))
            .key("stream", s(stream.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend("cursor GetItem", &e))?;
        let Some(item) = out.item() else {
            return Ok(None);
        };
        let doc = serde_json::from_str(get_s(item, "doc")?).map_err(|_| {
            StoreError::Corrupt(format!("cursor {tenant}/{stream}: doc is not JSON"))
        })?;
        let version = get_u64(item, "version")?;
        Ok(Some(StoredCursor { doc, version }))
    }

    async fn commit(
        &self,
        tenant: &str,
        stream: Stream,
        expected: Option<u64>,
        doc: &serde_json::Value,
    ) -> Result<u64, StoreError> {
        let next = expected.unwrap_or(0).checked_add(1).ok_or_else(|| {
            StoreError::Corrupt(format!("cursor {tenant}/{stream}: version overflow"))
        })?;
        let body = serde_json::to_string(doc)
            .map_err(|_| StoreError::Invalid("cursor could not be encoded".into()))?;
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("tenant_id", s(tenant.to_ascii_lowercase()))
            .item("stream", s(stream.as_str()))
            .item("doc", s(body))
            .item("version", AttributeValue::N(next.to_string()))
            .item(
                "updated_at",
                s(Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)),
            );
        req = match expected {
            None => req.condition_expression("attribute_not_exists(tenant_id)"),
            Some(v) => req
                .condition_expression("version = :expected")
                .expression_attribute_values(":expected", AttributeValue::N(v.to_string())),
        };
        match req.send().await {
            Ok(_) => Ok(next),
            Err(e) if is_condition_failed(&e) => Err(StoreError::Conflict {
                tenant: tenant.to_string(),
                stream,
                expected,
            }),
            Err(e) => Err(backend("cursor PutItem", &e)),
        }
    }

    async fn purge(&self, tenant: &str) -> Result<(), StoreError> {
        crate::inventory::InventoryStore::purge_inventory(self, tenant).await?;
        for stream in Stream::EVERY {
            self.client
                .delete_item()
                .table_name(&self.table)
                .key("tenant_id", s(tenant.to_ascii_lowercase()))
                .key("stream", s(stream.as_str()))
                .send()
                .await
                .map_err(|e| backend("cursor DeleteItem", &e))?;
        }
        Ok(())
    }

    fn inventory(&self) -> Option<&dyn crate::inventory::InventoryStore> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::HealthState;

    #[test]
    fn records_round_trip_through_items() {
        let r = TenantRecord {
            tenant_id: "abc".into(),
            domain: Some("Contoso.onmicrosoft.com".into()),
            org: None,
            cloud: Cloud::GccHigh,
            app_ref: "default".into(),
            streams: Stream::ALL.to_vec(),
            include_noninteractive: true,
            enabled: true,
            health: Health {
                state: HealthState::Degraded,
                consecutive_failures: 2,
                ..Health::default()
            },
            created_at: DateTime::from_timestamp_millis(1_700_000_000_123).unwrap_or_default(),
        };
        let item = DynamoRegistry::encode(&r).unwrap_or_default();
        assert!(matches!(item.get("cloud_group"), Some(AttributeValue::S(g)) if g == "usgov"));
        let (back, rev) = DynamoRegistry::decode(&item)
            .map_err(|e| e.to_string())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rev, 0);
        assert_eq!(back.domain.as_deref(), Some("contoso.onmicrosoft.com"));
        assert_eq!(back.health, r.health);
        assert_eq!(back.streams, r.streams);
        assert_eq!(back.created_at, r.created_at);
    }
}
