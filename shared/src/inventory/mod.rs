//! The identity inventory's storage: what the next diff of each snapshot stream needs, the
//! per-stream summary operators see, and the daily billable count.
//!
//! A snapshot stream (users, apps, roles, MFA, conditional access, inbox rules) compares each
//! object it reads with what it knew. For a 10,000-user tenant that knowledge does not fit in
//! one cursor document (a DynamoDB item holds 400 KB), so it lives here, one small entry per
//! object, keyed by (tenant, stream, object id): its digest, the snapshot round that last saw
//! it, and a few tags (the classification the summary counts: `billable`, `guest`,
//! `global_admin`, `flagged`...). The cursor keeps only the source's state and the round.
//!
//! Ordering (see `poll/snapshot.rs`): events are delivered, then these entries are written,
//! then the cursor is committed with its compare-and-set. A crash between any two steps
//! re-reads the same part and re-sends; nothing is lost.
//!
//! Implementations: [`MemoryInventory`] (tests), `SqliteStore` (embedded) and
//! `DynamoInventory` (AWS: items in the cursors table with the sort key
//! `inv#<stream>#<object id>`).

pub mod billable;
pub mod classify;

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::store::StoreError;
use crate::stream::Stream;

/// What the inventory keeps of one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Known {
    /// Digest of the object's relevant state: a different digest is a change.
    pub digest: u64,
    /// The snapshot round that last saw the object.
    pub round: u64,
    /// Short labels the summary counts (e.g. `billable`, `no_mfa`, `flagged`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// A capability of a stream that could not be read, and what that costs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Degradation {
    /// What is missing (a field or a part of the stream), e.g. `signInActivity`.
    pub what: String,
    /// Why: the failure kind's label (`licence_required`, `forbidden`).
    pub reason: String,
    /// What the inventory lacks without it.
    pub lost: String,
}

/// The state of one (tenant, inventory stream) after its last completed snapshot or delta.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Summary {
    /// When the snapshot completed.
    pub at: Option<DateTime<Utc>>,
    /// Objects in the inventory.
    pub total: u64,
    /// Objects per tag.
    #[serde(default)]
    pub counts: BTreeMap<String, u64>,
    /// What could not be read, and what that costs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub degraded: Vec<Degradation>,
}

impl Summary {
    /// The summary of a set of known objects.
    pub fn of<'a>(
        known: impl IntoIterator<Item = &'a Known>,
        at: DateTime<Utc>,
        degraded: Vec<Degradation>,
    ) -> Summary {
        let mut s = Summary {
            at: Some(at),
            degraded,
            ..Summary::default()
        };
        for k in known {
            s.total += 1;
            for t in &k.tags {
                *s.counts.entry(t.clone()).or_default() += 1;
            }
        }
        s
    }

    /// Objects with `tag`.
    pub fn count(&self, tag: &str) -> u64 {
        self.counts.get(tag).copied().unwrap_or(0)
    }
}

/// Per-object digests, summaries and the daily billable count of every tenant.
///
/// Contract: `apply` is idempotent (writing the same entries twice is harmless); `purge`
/// removes everything of a tenant. None of it is versioned: the stream's cursor, committed
/// after `apply`, is what orders concurrent pollers.
#[async_trait]
pub trait InventoryStore: Send + Sync {
    /// Every known object of (tenant, stream).
    async fn known(
        &self,
        tenant: &str,
        stream: Stream,
    ) -> Result<HashMap<String, Known>, StoreError>;
    /// Writes `put` (insert or replace) and deletes `remove`.
    async fn apply(
        &self,
        tenant: &str,
        stream: Stream,
        put: &[(String, Known)],
        remove: &[String],
    ) -> Result<(), StoreError>;
    /// Replaces the stream's summary.
    async fn put_summary(
        &self,
        tenant: &str,
        stream: Stream,
        summary: &Summary,
    ) -> Result<(), StoreError>;
    /// Every inventory stream's summary of a tenant.
    async fn summaries(&self, tenant: &str) -> Result<BTreeMap<Stream, Summary>, StoreError>;
    /// Records the tenant's billable count on `day` (UTC); the last value of a day wins.
    async fn record_usage(
        &self,
        tenant: &str,
        day: NaiveDate,
        billable: u64,
    ) -> Result<(), StoreError>;
    /// The tenant's daily billable counts, oldest first.
    async fn usage(&self, tenant: &str) -> Result<Vec<(NaiveDate, u64)>, StoreError>;
    /// Deletes everything kept for the tenant (offboarding with purge).
    async fn purge_inventory(&self, tenant: &str) -> Result<(), StoreError>;
}

type Key = (String, Stream);

/// An in-memory [`InventoryStore`] (tests, and the reference for the other two).
#[derive(Debug, Default)]
pub struct MemoryInventory {
    state: Mutex<MemoryState>,
}

#[derive(Debug, Default)]
struct MemoryState {
    known: HashMap<Key, HashMap<String, Known>>,
    summaries: HashMap<Key, Summary>,
    usage: HashMap<String, BTreeMap<NaiveDate, u64>>,
    /// Entries written so far (tests check that unchanged objects still cost little).
    writes: u64,
}

impl MemoryInventory {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoryState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Entries written since creation.
    pub fn writes(&self) -> u64 {
        self.lock().writes
    }
}

#[async_trait]
impl InventoryStore for MemoryInventory {
    async fn known(
        &self,
        tenant: &str,
        stream: Stream,
    ) -> Result<HashMap<String, Known>, StoreError> {
        Ok(self
            .lock()
            .known
            .get(&(tenant.to_string(), stream))
            .cloned()
            .unwrap_or_default())
    }

    async fn apply(
        &self,
        tenant: &str,
        stream: Stream,
        put: &[(String, Known)],
        remove: &[String],
    ) -> Result<(), StoreError> {
        let mut st = self.lock();
        st.writes += (put.len() + remove.len()) as u64;
        let m = st.known.entry((tenant.to_string(), stream)).or_default();
        for (id, k) in put {
            m.insert(id.clone(), k.clone());
        }
        for id in remove {
            m.remove(id);
        }
        Ok(())
    }

    async fn put_summary(
        &self,
        tenant: &str,
        stream: Stream,
        summary: &Summary,
    ) -> Result<(), StoreError> {
        self.lock()
            .summaries
            .insert((tenant.to_string(), stream), summary.clone());
        Ok(())
    }

    async fn summaries(&self, tenant: &str) -> Result<BTreeMap<Stream, Summary>, StoreError> {
        Ok(self
            .lock()
            .summaries
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|((_, s), v)| (*s, v.clone()))
            .collect())
    }

    async fn record_usage(
        &self,
        tenant: &str,
        day: NaiveDate,
        billable: u64,
    ) -> Result<(), StoreError> {
        self.lock()
            .usage
            .entry(tenant.to_string())
            .or_default()
            .insert(day, billable);
        Ok(())
    }

    async fn usage(&self, tenant: &str) -> Result<Vec<(NaiveDate, u64)>, StoreError> {
        Ok(self
            .lock()
            .usage
            .get(tenant)
            .map(|m| m.iter().map(|(d, n)| (*d, *n)).collect())
            .unwrap_or_default())
    }

    async fn purge_inventory(&self, tenant: &str) -> Result<(), StoreError> {
        let mut st = self.lock();
        st.known.retain(|(t, _), _| t != tenant);
        st.summaries.retain(|(t, _), _| t != tenant);
        st.usage.remove(tenant);
        Ok(())
    }
}

/// One month's usage of a tenant: the figure billed is the **highest daily billable count**
/// of the month (a seat added mid-month is billed for that month, as Microsoft bills a licence
/// assigned for part of a month), with the average and the days measured beside it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonthlyUsage {
    /// `YYYY-MM`.
    pub month: String,
    /// The billed figure: the highest daily billable count.
    pub billable: u64,
    /// Average daily billable count over the days measured.
    pub average: f64,
    /// Days with a measurement.
    pub days_measured: u32,
}

/// Monthly figures from daily counts (any order), oldest month first.
pub fn monthly_usage(days: &[(NaiveDate, u64)]) -> Vec<MonthlyUsage> {
    let mut by_month: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for (d, n) in days {
        by_month
            .entry(d.format("%Y-%m").to_string())
            .or_default()
            .push(*n);
    }
    by_month
        .into_iter()
        .map(|(month, v)| {
            let days_measured = u32::try_from(v.len()).unwrap_or(u32::MAX);
            let sum: u64 = v.iter().sum();
            MonthlyUsage {
                month,
                billable: v.iter().copied().max().unwrap_or(0),
                average: (sum as f64 / v.len().max(1) as f64 * 10.0).round() / 10.0,
                days_measured,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default()
    }

    #[test]
    fn monthly_figure_is_the_highest_day() {
        let m = monthly_usage(&[
            (d("2026-02-03"), 10),
            (d("2026-01-31"), 7),
            (d("2026-02-01"), 12),
            (d("2026-02-02"), 11),
        ]);
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].month.as_str(), m[0].billable), ("2026-01", 7));
        assert_eq!((m[1].month.as_str(), m[1].billable), ("2026-02", 12));
        assert_eq!(m[1].days_measured, 3);
        assert!((m[1].average - 11.0).abs() < 1e-9);
    }

    #[tokio::test]
    async fn memory_store_keeps_tenants_and_streams_apart() {
        let s = MemoryInventory::new();
        let k = |d| Known {
            digest: d,
            round: 1,
            tags: vec!["billable".into()],
        };
        s.apply(
            "t1",
            Stream::Users,
            &[("a".into(), k(1)), ("b".into(), k(2))],
            &[],
        )
        .await
        .unwrap();
        s.apply("t2", Stream::Users, &[("a".into(), k(3))], &[])
            .await
            .unwrap();
        s.apply("t1", Stream::Apps, &[("a".into(), k(4))], &[])
            .await
            .unwrap();
        s.apply("t1", Stream::Users, &[], &["a".into()])
            .await
            .unwrap();
        let t1 = s.known("t1", Stream::Users).await.unwrap();
        assert_eq!(t1.keys().collect::<Vec<_>>(), vec!["b"]);
        assert_eq!(s.known("t2", Stream::Users).await.unwrap()["a"].digest, 3);
        let sum = Summary::of(t1.values(), Utc::now(), Vec::new());
        assert_eq!((sum.total, sum.count("billable")), (1, 1));
        s.put_summary("t1", Stream::Users, &sum).await.unwrap();
        s.record_usage("t1", d("2026-01-01"), 1).await.unwrap();
        s.purge_inventory("t1").await.unwrap();
        assert!(s.known("t1", Stream::Apps).await.unwrap().is_empty());
        assert!(s.summaries("t1").await.unwrap().is_empty());
        assert!(s.usage("t1").await.unwrap().is_empty());
        assert_eq!(s.known("t2", Stream::Users).await.unwrap().len(), 1);
    }
}
