//! The audit trail of response actions ([`ActionLog`]) in the embedded SQLite database: one row
//! per action, its full record as JSON beside the columns it is searched by.
//!
//! The table is created on first use (`CREATE TABLE IF NOT EXISTS`) rather than by a numbered
//! migration: it is additive, independent of the other tables, and an older build that opens
//! the file simply ignores it.

use async_trait::async_trait;
use rusqlite::params;

use super::{SqliteStore, backend, timestamp};
use crate::respond::{ActionLog, ActionReport};
use crate::store::StoreError;

const CREATE: &str = "CREATE TABLE IF NOT EXISTS response_actions (
        action_id TEXT PRIMARY KEY NOT NULL,
        seq INTEGER NOT NULL,
        tenant_id TEXT NOT NULL COLLATE NOCASE,
        started_at TEXT NOT NULL,
        outcome TEXT NOT NULL,
        doc TEXT NOT NULL
    ) STRICT;
    CREATE INDEX IF NOT EXISTS response_actions_by_tenant ON response_actions (tenant_id, seq);";

#[async_trait]
impl ActionLog for SqliteStore {
    async fn record(&self, report: &ActionReport) -> Result<(), StoreError> {
        let doc = serde_json::to_string(report)
            .map_err(|_| StoreError::Invalid("action record is not encodable".into()))?;
        let (id, tenant, started, outcome) = (
            report.id.clone(),
            report.tenant_id.clone(),
            timestamp(&report.started_at),
            report.outcome.as_str(),
        );
        self.run(move |conn| {
            conn.execute_batch(CREATE)
                .map_err(|e| backend("create response_actions", &e))?;
            conn.execute(
                "INSERT INTO response_actions (action_id, seq, tenant_id, started_at, outcome, doc)
                 VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM response_actions), ?2, ?3, ?4, ?5)
                 ON CONFLICT (action_id) DO UPDATE SET outcome = excluded.outcome, doc = excluded.doc",
                params![id, tenant, started, outcome, doc],
            )
            .map_err(|e| backend("record action", &e))?;
            Ok(())
        })
        .await
    }

    async fn list(&self, tenant_id: &str) -> Result<Vec<ActionReport>, StoreError> {
        let tenant = tenant_id.to_string();
        self.run(move |conn| {
            conn.execute_batch(CREATE)
                .map_err(|e| backend("create response_actions", &e))?;
            let mut stmt = conn
                .prepare_cached(
                    "SELECT doc FROM response_actions WHERE tenant_id = ?1 ORDER BY seq",
                )
                .map_err(|e| backend("list actions", &e))?;
            let rows = stmt
                .query_map(params![tenant], |r| r.get::<_, String>(0))
                .map_err(|e| backend("list actions", &e))?;
            let mut out = Vec::new();
            for row in rows {
                let doc = row.map_err(|e| backend("list actions", &e))?;
                out.push(
                    serde_json::from_str(&doc)
                        .map_err(|_| StoreError::Corrupt("response action record".into()))?,
                );
            }
            Ok(out)
        })
        .await
    }
}
