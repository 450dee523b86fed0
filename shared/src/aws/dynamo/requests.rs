//! What the actions functions keep beside the action log: one item per request id, so that a
//! redelivered or resent request does not act twice, and the registry's look-up of a tenant
//! by its domain (through the domain's guard item: two `GetItem`s, no scan).
//!
//! A request item sits in the cursors table under the tenant's partition key and the sort key
//! `actreq#<request id>` (cursors, the inventory and the action log never use that prefix),
//! with the attributes `state` (`running`, `done` or `released`), `claimed_at` (N, Unix
//! seconds) and, once done, `doc` (the action's final report, JSON). Claiming is one
//! conditional `PutItem`: it succeeds when the item is absent, released (the previous attempt
//! failed before any write and left it for redelivery), or running for longer than an action
//! may take (that attempt died; the steps read the state before writing, so taking over
//! repeats no change). `CursorStore::purge` leaves these items alone, like the action log.

use chrono::{DateTime, Utc};

use super::{
    DynamoCursorStore, DynamoRegistry, Guard, Item, backend, get_s, is_condition_failed, s,
};
use crate::respond::ActionReport;
use crate::store::{StoreError, TenantRecord};

const PREFIX: &str = "actreq#";
const RUNNING: &str = "running";
const DONE: &str = "done";
const RELEASED: &str = "released";

/// The outcome of claiming a request id.
#[derive(Debug, Clone, PartialEq)]
pub enum RequestClaim {
    /// This attempt runs the action.
    Claimed,
    /// The request already ran: its final report.
    Done(Box<ActionReport>),
    /// Another attempt is running it (or died less than the stale time ago).
    InProgress,
}

fn key(request_id: &str) -> String {
    format!("{PREFIX}{request_id}")
}

impl DynamoCursorStore {
    /// Claims `request_id` of `tenant_id` for this attempt at `now`; a `running` claim older
    /// than `stale_secs` is taken over.
    pub async fn claim_request(
        &self,
        tenant_id: &str,
        request_id: &str,
        now: DateTime<Utc>,
        stale_secs: i64,
    ) -> Result<RequestClaim, StoreError> {
        let tenant = tenant_id.to_ascii_lowercase();
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("tenant_id", s(tenant.clone()))
            .item("stream", s(key(request_id)))
            .item("state", s(RUNNING))
            .item(
                "claimed_at",
                aws_sdk_dynamodb::types::AttributeValue::N(now.timestamp().to_string()),
            )
            .condition_expression(
                "attribute_not_exists(tenant_id) OR #st = :released OR (#st = :running AND claimed_at < :stale)",
            )
            .expression_attribute_names("#st", "state")
            .expression_attribute_values(":released", s(RELEASED))
            .expression_attribute_values(":running", s(RUNNING))
            .expression_attribute_values(
                ":stale",
                aws_sdk_dynamodb::types::AttributeValue::N(
                    (now.timestamp() - stale_secs).to_string(),
                ),
            )
            .send()
            .await;
        match put {
            Ok(_) => return Ok(RequestClaim::Claimed),
            Err(e) if is_condition_failed(&e) => {}
            Err(e) => return Err(backend("request PutItem", &e)),
        }
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("tenant_id", s(tenant))
            .key("stream", s(key(request_id)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend("request GetItem", &e))?;
        let Some(item) = out.item() else {
            // Released and deleted between the two calls cannot happen (nothing deletes
            // them); treat a vanished item as another attempt's.
            return Ok(RequestClaim::InProgress);
        };
        if get_s(item, "state")? != DONE {
            return Ok(RequestClaim::InProgress);
        }
        let report: ActionReport = serde_json::from_str(get_s(item, "doc")?)
            .map_err(|_| StoreError::Corrupt("action request record".into()))?;
        Ok(RequestClaim::Done(Box::new(report)))
    }

    /// Marks `request_id` done with the action's final report.
    pub async fn finish_request(
        &self,
        request_id: &str,
        report: &ActionReport,
    ) -> Result<(), StoreError> {
        let doc = serde_json::to_string(report)
            .map_err(|_| StoreError::Invalid("action record is not encodable".into()))?;
        self.put_state(&report.tenant_id, request_id, DONE, Some(doc))
            .await
    }

    /// Gives `request_id` up: the attempt failed before any write, a redelivery may run it.
    pub async fn release_request(
        &self,
        tenant_id: &str,
        request_id: &str,
    ) -> Result<(), StoreError> {
        self.put_state(tenant_id, request_id, RELEASED, None).await
    }

    async fn put_state(
        &self,
        tenant_id: &str,
        request_id: &str,
        state: &str,
        doc: Option<String>,
    ) -> Result<(), StoreError> {
        let mut item: Item = Item::new();
        item.insert("tenant_id".into(), s(tenant_id.to_ascii_lowercase()));
        item.insert("stream".into(), s(key(request_id)));
        item.insert("state".into(), s(state));
        if let Some(d) = doc {
            item.insert("doc".into(), s(d));
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| backend("request PutItem", &e))?;
        Ok(())
    }
}

impl DynamoRegistry {
    /// The tenant registered with `domain` (compared as the registry's uniqueness does), read
    /// through the domain's guard item; `None` when no tenant holds it.
    pub async fn find_by_domain(&self, domain: &str) -> Result<Option<TenantRecord>, StoreError> {
        let guard = Guard::Domain(crate::store::domain_key(domain.trim()));
        let Some(item) = self.get_raw(&guard.key()).await? else {
            return Ok(None);
        };
        let owner = get_s(&item, "owner")
            .map_err(|_| StoreError::Corrupt("domain guard: owner".into()))?
            .to_string();
        // A guard left behind by an out-of-band delete or change is not an answer.
        Ok(self
            .get_with_rev(&owner)
            .await?
            .map(|(r, _)| r)
            .filter(|r| guard.held_by(r)))
    }
}
