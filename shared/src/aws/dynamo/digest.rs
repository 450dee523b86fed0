//! [`DigestStore`] on DynamoDB: one item per tenant and UTC day in the cursors table, beside
//! the tenant's cursors, sort key `digest#signins#<yyyy-mm-dd>`, removed by the table's TTL
//! (`ttl`, [`RETENTION_DAYS`] after the day).
//!
//! Attributes, all counters written with `UpdateItem ADD` (concurrent pollers add up, no read):
//! - `total` N: sign-ins;
//! - `c#<clientAppUsed>` N: sign-ins per client app;
//! - `l#<protocol>#<user>` N: legacy sign-ins per protocol and user;
//! - `lkeys` SS: the `l#` attributes present, so a condition can cap them at
//!   [`MAX_LEGACY_ENTRIES`] (`size(lkeys)`); an update that would pass the cap adds its legacy
//!   sign-ins to `dropped` N instead;
//! - `capps` SS: the `c#` attributes present, capped at [`MAX_CLIENT_APPS`] the same way
//!   (client apps past the cap are counted under [`OTHER_CLIENT_APP`]).
//!
//! Worst case: ([`MAX_LEGACY_ENTRIES`] + [`LEGACY_PER_UPDATE`]) legacy entries and
//! ([`MAX_CLIENT_APPS`] + 50) client apps, each name cut at `MAX_NAME_BYTES` (128) and kept
//! twice (attribute and set member): under 210 KB, about half of DynamoDB's 400 KB item limit.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{Duration, NaiveDate};

use super::{DynamoCursorStore, Item, backend, get_s, is_condition_failed};
use crate::assess::digest::{
    DayDelta, DayDigest, DigestStore, MAX_CLIENT_APPS, MAX_LEGACY_ENTRIES, OTHER_CLIENT_APP,
    RETENTION_DAYS,
};
use crate::store::StoreError;

/// Legacy entries per `UpdateItem` (keeps the expression far below DynamoDB's 4 KB).
pub const LEGACY_PER_UPDATE: usize = 50;
/// Client apps per `UpdateItem`.
const APPS_PER_UPDATE: usize = 50;
/// The sort key prefix of the digest items.
pub const PREFIX: &str = "digest#signins#";

/// The sort key of a tenant's day.
pub fn sort_key(day: NaiveDate) -> String {
    format!("{PREFIX}{}", day.format("%Y-%m-%d"))
}

fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn num(v: &AttributeValue) -> u64 {
    match v {
        AttributeValue::N(x) => x.parse().unwrap_or(0),
        _ => 0,
    }
}

/// One conditional `ADD` update: counters, and new members of a capped set.
struct Add {
    counters: Vec<(String, u64)>,
    set: Option<(&'static str, Vec<String>, usize)>,
}

impl DynamoCursorStore {
    /// Deletes every digest item of the tenant (offboarding with purge).
    pub(super) async fn purge_digests(&self, tenant: &str) -> Result<(), StoreError> {
        let items = self.query_prefix(tenant, PREFIX).await?;
        let mut requests = Vec::with_capacity(items.len());
        for item in &items {
            requests.push(Self::delete_request(
                tenant,
                get_s(item, "stream")?.to_string(),
            )?);
        }
        self.batch_write(requests).await
    }

    async fn digest_update(
        &self,
        tenant: &str,
        day: NaiveDate,
        add: &Add,
    ) -> Result<bool, StoreError> {
        let ttl = day
            .and_hms_opt(0, 0, 0)
            .map(|t| (t.and_utc() + Duration::days(RETENTION_DAYS)).timestamp())
            .unwrap_or_default();
        let mut u = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("tenant_id", AttributeValue::S(tenant.to_ascii_lowercase()))
            .key("stream", AttributeValue::S(sort_key(day)))
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":ttl", AttributeValue::N(ttl.to_string()));
        let mut parts = Vec::new();
        for (i, (name, v)) in add.counters.iter().enumerate() {
            u = u
                .expression_attribute_names(format!("#a{i}"), name)
                .expression_attribute_values(format!(":a{i}"), n(*v));
            parts.push(format!("#a{i} :a{i}"));
        }
        if let Some((set, members, cap)) = &add.set
            && !members.is_empty()
        {
            u = u
                .expression_attribute_names("#set", *set)
                .expression_attribute_values(":members", AttributeValue::Ss(members.clone()))
                .expression_attribute_values(":cap", n(*cap as u64))
                .condition_expression("attribute_not_exists(#set) OR size(#set) < :cap");
            parts.push("#set :members".into());
        }
        if parts.is_empty() {
            return Ok(true);
        }
        let expr = format!("ADD {} SET #ttl = :ttl", parts.join(", "));
        match u.update_expression(expr).send().await {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(backend("digest UpdateItem", &e)),
        }
    }
}

#[async_trait]
impl DigestStore for DynamoCursorStore {
    async fn add(&self, tenant: &str, day: NaiveDate, delta: &DayDelta) -> Result<(), StoreError> {
        if delta.is_empty() {
            return Ok(());
        }
        // The total, then the client apps in capped chunks (past the cap: "other").
        self.digest_update(
            tenant,
            day,
            &Add {
                counters: vec![("total".into(), delta.total)],
                set: None,
            },
        )
        .await?;
        let apps: Vec<(&String, &u64)> = delta.by_client_app.iter().collect();
        for chunk in apps.chunks(APPS_PER_UPDATE) {
            let counters: Vec<(String, u64)> =
                chunk.iter().map(|(a, v)| (format!("c#{a}"), **v)).collect();
            let members = counters.iter().map(|(k, _)| k.clone()).collect();
            let done = self
                .digest_update(
                    tenant,
                    day,
                    &Add {
                        counters: counters.clone(),
                        set: Some(("capps", members, MAX_CLIENT_APPS)),
                    },
                )
                .await?;
            if !done {
                let other: u64 = counters.iter().map(|(_, v)| v).sum();
                self.digest_update(
                    tenant,
                    day,
                    &Add {
                        counters: vec![(format!("c#{OTHER_CLIENT_APP}"), other)],
                        set: None,
                    },
                )
                .await?;
            }
        }
        let legacy: Vec<(&(String, String), &u64)> = delta.legacy.iter().collect();
        for chunk in legacy.chunks(LEGACY_PER_UPDATE) {
            let counters: Vec<(String, u64)> = chunk
                .iter()
                .map(|((p, user), v)| (format!("l#{p}#{user}"), **v))
                .collect();
            let members = counters.iter().map(|(k, _)| k.clone()).collect();
            let done = self
                .digest_update(
                    tenant,
                    day,
                    &Add {
                        counters: counters.clone(),
                        set: Some(("lkeys", members, MAX_LEGACY_ENTRIES)),
                    },
                )
                .await?;
            if !done {
                let dropped: u64 = counters.iter().map(|(_, v)| v).sum();
                self.digest_update(
                    tenant,
                    day,
                    &Add {
                        counters: vec![("dropped".into(), dropped)],
                        set: None,
                    },
                )
                .await?;
            }
        }
        Ok(())
    }

    async fn days(
        &self,
        tenant: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DayDigest>, StoreError> {
        let (a, b) = (sort_key(from), sort_key(to));
        let items = self
            .query_sort_keys(tenant, "#s BETWEEN :a AND :b", &[(":a", &a), (":b", &b)])
            .await?;
        items.iter().map(decode).collect()
    }
}

fn decode(item: &Item) -> Result<DayDigest, StoreError> {
    let key = get_s(item, "stream")?;
    let day = key
        .strip_prefix(PREFIX)
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .ok_or_else(|| StoreError::Corrupt("digest item: unreadable day in its key".into()))?;
    let mut out = DayDigest {
        day,
        total: item.get("total").map_or(0, num),
        by_client_app: BTreeMap::new(),
        legacy: BTreeMap::new(),
        dropped: item.get("dropped").map_or(0, num),
    };
    for (k, v) in item {
        if let Some(app) = k.strip_prefix("c#") {
            out.by_client_app.insert(app.to_string(), num(v));
        } else if let Some(rest) = k.strip_prefix("l#")
            && let Some((protocol, user)) = rest.split_once('#')
        {
            out.legacy
                .insert((protocol.to_string(), user.to_string()), num(v));
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn items_decode_to_days() {
        let day = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        let mut item = Item::new();
        item.insert("stream".into(), AttributeValue::S(sort_key(day)));
        item.insert("total".into(), n(7));
        item.insert("c#IMAP4".into(), n(2));
        item.insert("l#IMAP4#a@x.example".into(), n(2));
        item.insert("dropped".into(), n(1));
        item.insert("ttl".into(), n(1));
        let d = decode(&item).unwrap();
        assert_eq!(d.day, day);
        assert_eq!(d.total, 7);
        assert_eq!(d.by_client_app["IMAP4"], 2);
        assert_eq!(d.legacy[&("IMAP4".into(), "a@x.example".into())], 2);
        assert_eq!(d.dropped, 1);
        assert_eq!(sort_key(day), "digest#signins#2026-03-01");
    }
}
