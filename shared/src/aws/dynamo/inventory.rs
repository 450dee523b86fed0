//! [`InventoryStore`] on DynamoDB: items in the cursors table, beside the tenant's cursors,
//! under the same partition key (`tenant_id`) and sort keys that cursors never use:
//! - `inv#<stream>#<object id>`: one object (`digest` N, `round` N, `tags` L of S);
//! - `invsum#<stream>`: a stream's summary (`doc` S, JSON);
//! - `usage#<YYYY-MM-DD>`: the day's billable count (`billable` N).
//!
//! One item per object keeps every item small however large the tenant (a 10,000-user
//! tenant is 10,000 items of about 100 bytes, never one item past DynamoDB's 400 KB). Reads
//! are `Query`s on the partition with `begins_with` on the sort key, strongly consistent and
//! paged; writes are `BatchWriteItem`s of 25, with unprocessed items retried.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, PutRequest, WriteRequest};
use chrono::NaiveDate;

use super::{DynamoCursorStore, Item, backend, get_s, get_u64, s};
use crate::inventory::{InventoryStore, Known, Summary};
use crate::store::StoreError;
use crate::stream::Stream;

/// Items per `BatchWriteItem` (DynamoDB's limit).
const BATCH: usize = 25;
/// Rounds of retrying unprocessed items before giving up (retryable backend error).
const UNPROCESSED_ATTEMPTS: u32 = 8;

fn object_prefix(stream: Stream) -> String {
    format!("inv#{}#", stream.as_str())
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

impl DynamoCursorStore {
    /// Every item of the tenant whose sort key starts with `prefix`.
    pub(super) async fn query_prefix(
        &self,
        tenant: &str,
        prefix: &str,
    ) -> Result<Vec<Item>, StoreError> {
        self.query_sort_keys(tenant, "begins_with(#s, :p)", &[(":p", prefix)])
            .await
    }

    /// Every item of the tenant whose sort key (`#s`) meets `condition`, whose placeholders
    /// are `values`: strongly consistent, all pages.
    pub(super) async fn query_sort_keys(
        &self,
        tenant: &str,
        condition: &str,
        values: &[(&str, &str)],
    ) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut q = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(format!("tenant_id = :t AND {condition}"))
                .expression_attribute_names("#s", "stream")
                .expression_attribute_values(":t", s(tenant.to_ascii_lowercase()));
            for (k, v) in values {
                q = q.expression_attribute_values(*k, s(*v));
            }
            let resp = q
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| backend("Query", &e))?;
            out.extend(resp.items().iter().cloned());
            match resp.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(out),
            }
        }
    }

    /// Writes `requests` in batches of 25, retrying what DynamoDB leaves unprocessed.
    pub(super) async fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        for chunk in requests.chunks(BATCH) {
            let mut pending = chunk.to_vec();
            let mut attempt = 0;
            while !pending.is_empty() {
                if attempt >= UNPROCESSED_ATTEMPTS {
                    return Err(StoreError::Backend(
                        "inventory BatchWriteItem: items left unprocessed after retries".into(),
                    ));
                }
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_millis(50 << attempt.min(6))).await;
                }
                attempt += 1;
                let resp = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(|e| backend("inventory BatchWriteItem", &e))?;
                pending = resp
                    .unprocessed_items()
                    .and_then(|m| m.get(&self.table))
                    .cloned()
                    .unwrap_or_default();
            }
        }
        Ok(())
    }

    pub(super) fn put_request(item: Item) -> Result<WriteRequest, StoreError> {
        let put = PutRequest::builder()
            .set_item(Some(item))
            .build()
            .map_err(|_| StoreError::Invalid("inventory item could not be built".into()))?;
        Ok(WriteRequest::builder().put_request(put).build())
    }

    pub(super) fn delete_request(
        tenant: &str,
        sort_key: String,
    ) -> Result<WriteRequest, StoreError> {
        let del = DeleteRequest::builder()
            .key("tenant_id", s(tenant.to_ascii_lowercase()))
            .key("stream", s(sort_key))
            .build()
            .map_err(|_| StoreError::Invalid("inventory key could not be built".into()))?;
        Ok(WriteRequest::builder().delete_request(del).build())
    }
}

#[async_trait]
impl InventoryStore for DynamoCursorStore {
    async fn known(
        &self,
        tenant: &str,
        stream: Stream,
    ) -> Result<HashMap<String, Known>, StoreError> {
        let prefix = object_prefix(stream);
        let mut out = HashMap::new();
        for item in self.query_prefix(tenant, &prefix).await? {
            let key = get_s(&item, "stream")?;
            let id = key.strip_prefix(&prefix).unwrap_or(key).to_string();
            let tags = match item.get("tags") {
                Some(AttributeValue::L(l)) => {
                    l.iter().filter_map(|v| v.as_s().ok().cloned()).collect()
                }
                _ => Vec::new(),
            };
            out.insert(
                id,
                Known {
                    digest: get_u64(&item, "digest")?,
                    round: get_u64(&item, "round")?,
                    tags,
                },
            );
        }
        Ok(out)
    }

    async fn apply(
        &self,
        tenant: &str,
        stream: Stream,
        put: &[(String, Known)],
        remove: &[String],
    ) -> Result<(), StoreError> {
        let prefix = object_prefix(stream);
        let mut requests = Vec::with_capacity(put.len() + remove.len());
        for (id, k) in put {
            let mut item = Item::new();
            item.insert("tenant_id".into(), s(tenant.to_ascii_lowercase()));
            item.insert("stream".into(), s(format!("{prefix}{id}")));
            item.insert("digest".into(), n(k.digest));
            item.insert("round".into(), n(k.round));
            if !k.tags.is_empty() {
                item.insert(
                    "tags".into(),
                    AttributeValue::L(k.tags.iter().map(|t| s(t.clone())).collect()),
                );
            }
            requests.push(Self::put_request(item)?);
        }
        for id in remove {
            requests.push(Self::delete_request(tenant, format!("{prefix}{id}"))?);
        }
        self.batch_write(requests).await
    }

    async fn put_summary(
        &self,
        tenant: &str,
        stream: Stream,
        summary: &Summary,
    ) -> Result<(), StoreError> {
        let doc = serde_json::to_string(summary)
            .map_err(|_| StoreError::Invalid("inventory summary could not be encoded".into()))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .item("tenant_id", s(tenant.to_ascii_lowercase()))
            .item("stream", s(format!("invsum#{}", stream.as_str())))
            .item("doc", s(doc))
            .send()
            .await
            .map_err(|e| backend("inventory PutItem", &e))?;
        Ok(())
    }

    async fn summaries(&self, tenant: &str) -> Result<BTreeMap<Stream, Summary>, StoreError> {
        let mut out = BTreeMap::new();
        for item in self.query_prefix(tenant, "invsum#").await? {
            let key = get_s(&item, "stream")?;
            let Ok(stream) = key.trim_start_matches("invsum#").parse::<Stream>() else {
                continue;
            };
            let doc = serde_json::from_str(get_s(&item, "doc")?)
                .map_err(|_| StoreError::Corrupt("inventory summary is not JSON".into()))?;
            out.insert(stream, doc);
        }
        Ok(out)
    }

    async fn record_usage(
        &self,
        tenant: &str,
        day: NaiveDate,
        billable: u64,
    ) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("tenant_id", s(tenant.to_ascii_lowercase()))
            .item("stream", s(format!("usage#{}", day.format("%Y-%m-%d"))))
            .item("billable", n(billable))
            .send()
            .await
            .map_err(|e| backend("usage PutItem", &e))?;
        Ok(())
    }

    async fn usage(&self, tenant: &str) -> Result<Vec<(NaiveDate, u64)>, StoreError> {
        let mut out = Vec::new();
        for item in self.query_prefix(tenant, "usage#").await? {
            let key = get_s(&item, "stream")?;
            let day = NaiveDate::parse_from_str(key.trim_start_matches("usage#"), "%Y-%m-%d")
                .map_err(|_| StoreError::Corrupt("usage day".into()))?;
            out.push((day, get_u64(&item, "billable")?));
        }
        out.sort();
        Ok(out)
    }

    async fn purge_inventory(&self, tenant: &str) -> Result<(), StoreError> {
        let mut requests = Vec::new();
        for prefix in ["inv#", "invsum#", "usage#"] {
            for item in self.query_prefix(tenant, prefix).await? {
                requests.push(Self::delete_request(
                    tenant,
                    get_s(&item, "stream")?.to_string(),
                )?);
            }
        }
        self.batch_write(requests).await
    }
}
