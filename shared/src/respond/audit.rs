//! The audit trail of response actions: one record per action ([`ActionReport`]: requester,
//! reason, target, each Microsoft call and its outcome), written when the action starts and
//! replaced when it ends, kept beside the tenant registry.
//!
//! Implementations: [`MemoryActionLog`] (tests), the embedded SQLite store
//! (`crate::embedded::SqliteStore`, table `response_actions`).

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::ActionReport;
use crate::store::StoreError;

/// Where action records are kept.
#[async_trait]
pub trait ActionLog: Send + Sync {
    /// Stores `report`, replacing the record with the same id (the `started` record).
    async fn record(&self, report: &ActionReport) -> Result<(), StoreError>;
    /// The records of a tenant, oldest first.
    async fn list(&self, tenant_id: &str) -> Result<Vec<ActionReport>, StoreError>;
}

/// Records in memory.
#[derive(Debug, Default)]
pub struct MemoryActionLog {
    records: Mutex<BTreeMap<String, (u64, ActionReport)>>,
    seq: Mutex<u64>,
}

impl MemoryActionLog {
    /// Empty.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl ActionLog for MemoryActionLog {
    async fn record(&self, report: &ActionReport) -> Result<(), StoreError> {
        let seq = {
            let mut s = self.seq.lock().unwrap_or_else(|p| p.into_inner());
            *s += 1;
            *s
        };
        let mut m = self.records.lock().unwrap_or_else(|p| p.into_inner());
        let first = m.get(&report.id).map_or(seq, |(n, _)| *n);
        m.insert(report.id.clone(), (first, report.clone()));
        Ok(())
    }

    async fn list(&self, tenant_id: &str) -> Result<Vec<ActionReport>, StoreError> {
        let m = self.records.lock().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<&(u64, ActionReport)> = m
            .values()
            .filter(|(_, r)| r.tenant_id.eq_ignore_ascii_case(tenant_id))
            .collect();
        v.sort_by_key(|(n, _)| *n);
        Ok(v.into_iter().map(|(_, r)| r.clone()).collect())
    }
}
