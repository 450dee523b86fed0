//! The assessment report's two attributes on a tenant's registry item, outside the
//! [`TenantRecord`](crate::store::TenantRecord) (whole-record updates `SET` only the record's
//! own attributes, so they keep these):
//! - `contact_email` S: who receives the report (`itdr tenants add|remap --contact`);
//! - `report_state` S: JSON `{"at": RFC 3339, "key": S3 key of the JSON report}` of the last
//!   report, written by the report function only (its IAM policy allows `UpdateItem` on this
//!   attribute and nothing else).
//!
//! A registry without them (every record written before) reads as "no contact, never
//! reported".

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{DynamoRegistry, backend, get_opt_s, is_condition_failed, s};
use crate::assess::contact::validate_contact_email;
use crate::store::StoreError;

/// The attribute holding the contact address.
pub const CONTACT_ATTRIBUTE: &str = "contact_email";
/// The attribute holding the last report.
pub const REPORT_STATE_ATTRIBUTE: &str = "report_state";

/// The last report of a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastReport {
    /// When it was generated.
    pub at: DateTime<Utc>,
    /// The S3 key of its JSON.
    pub key: String,
}

/// What the report function knows of a tenant beyond its record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportMeta {
    /// The organization's contact address, when registered.
    pub contact_email: Option<String>,
    /// The last report, when there was one.
    pub last_report: Option<LastReport>,
}

impl DynamoRegistry {
    /// The tenant's contact and last report (`None`: no such tenant). An unreadable
    /// `report_state` reads as "never reported" (a report is then written again), an invalid
    /// contact as none.
    pub async fn report_meta(&self, tenant_id: &str) -> Result<Option<ReportMeta>, StoreError> {
        let resp = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("tenant_id", s(tenant_id.to_ascii_lowercase()))
            .projection_expression("#c, #r")
            .expression_attribute_names("#c", CONTACT_ATTRIBUTE)
            .expression_attribute_names("#r", REPORT_STATE_ATTRIBUTE)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend("report GetItem", &e))?;
        let Some(item) = resp.item() else {
            return Ok(None);
        };
        Ok(Some(ReportMeta {
            contact_email: get_opt_s(item, CONTACT_ATTRIBUTE)
                .and_then(|c| validate_contact_email(&c).ok()),
            last_report: get_opt_s(item, REPORT_STATE_ATTRIBUTE)
                .and_then(|j| serde_json::from_str(&j).ok()),
        }))
    }

    /// Sets (validated) or removes the tenant's contact address. Refused for a tenant that is
    /// not registered.
    pub async fn set_contact(
        &self,
        tenant_id: &str,
        contact: Option<&str>,
    ) -> Result<(), StoreError> {
        let u = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("tenant_id", s(tenant_id.to_ascii_lowercase()))
            .condition_expression("attribute_exists(tenant_id)")
            .expression_attribute_names("#c", CONTACT_ATTRIBUTE);
        let u = match contact {
            Some(c) => {
                let c = validate_contact_email(c)
                    .map_err(|e| StoreError::Invalid(format!("tenant {tenant_id}: {e}")))?;
                u.update_expression("SET #c = :c")
                    .expression_attribute_values(":c", s(c))
            }
            None => u.update_expression("REMOVE #c"),
        };
        match u.send().await {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Err(StoreError::Invalid(format!(
                "tenant {tenant_id} is not registered"
            ))),
            Err(e) => Err(backend("contact UpdateItem", &e)),
        }
    }

    /// Records the tenant's last report (only if the tenant is still registered).
    pub async fn record_report(
        &self,
        tenant_id: &str,
        last: &LastReport,
    ) -> Result<(), StoreError> {
        let doc = serde_json::to_string(last)
            .map_err(|_| StoreError::Invalid("report state could not be encoded".into()))?;
        let resp = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("tenant_id", s(tenant_id.to_ascii_lowercase()))
            .condition_expression("attribute_exists(tenant_id)")
            .update_expression("SET #r = :r")
            .expression_attribute_names("#r", REPORT_STATE_ATTRIBUTE)
            .expression_attribute_values(":r", AttributeValue::S(doc))
            .send()
            .await;
        match resp {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Err(StoreError::Invalid(format!(
                "tenant {tenant_id} is not registered"
            ))),
            Err(e) => Err(backend("report state UpdateItem", &e)),
        }
    }
}
