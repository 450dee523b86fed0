//! The audit trail of response actions ([`ActionLog`]) on DynamoDB: one item per action in the
//! cursors table, under the tenant's partition key and a sort key cursors and the inventory
//! never use, `act#<started at, RFC 3339 UTC>#<action id>`, so that a `Query` returns a
//! tenant's actions oldest first. The `started` record and the final one share the key: the
//! final `PutItem` replaces it. `CursorStore::purge` leaves these items alone: offboarding a
//! tenant does not erase what was done to it.

use async_trait::async_trait;
use chrono::SecondsFormat;

use super::{DynamoCursorStore, Item, backend, get_s, s};
use crate::respond::{ActionLog, ActionReport};
use crate::store::StoreError;

const PREFIX: &str = "act#";

fn sort_key(r: &ActionReport) -> String {
    format!(
        "{PREFIX}{}#{}",
        r.started_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        r.id
    )
}

#[async_trait]
impl ActionLog for DynamoCursorStore {
    async fn record(&self, report: &ActionReport) -> Result<(), StoreError> {
        let doc = serde_json::to_string(report)
            .map_err(|_| StoreError::Invalid("action record is not encodable".into()))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .item("tenant_id", s(report.tenant_id.to_ascii_lowercase()))
            .item("stream", s(sort_key(report)))
            .item("outcome", s(report.outcome.as_str()))
            .item("doc", s(doc))
            .send()
            .await
            .map_err(|e| backend("action PutItem", &e))?;
        Ok(())
    }

    async fn list(&self, tenant_id: &str) -> Result<Vec<ActionReport>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let resp = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("tenant_id = :t AND begins_with(#s, :p)")
                .expression_attribute_names("#s", "stream")
                .expression_attribute_values(":t", s(tenant_id.to_ascii_lowercase()))
                .expression_attribute_values(":p", s(PREFIX))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| backend("action Query", &e))?;
            for item in resp.items() {
                let doc = get_s(item, "doc")?;
                out.push(
                    serde_json::from_str(doc)
                        .map_err(|_| StoreError::Corrupt("response action record".into()))?,
                );
            }
            match resp.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(out),
            }
        }
    }
}
