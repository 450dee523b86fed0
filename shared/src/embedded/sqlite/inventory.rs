//! [`InventoryStore`] on the embedded SQLite database: one row per known object, one per
//! stream summary, one per tenant and day of billable count (schema version 2).

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use chrono::NaiveDate;
use rusqlite::params;

use super::{SqliteStore, backend};
use crate::inventory::{InventoryStore, Known, Summary};
use crate::store::StoreError;
use crate::stream::Stream;

/// Appended to the schema migrations: 1 -> 2.
pub(super) const MIGRATION: &str = "CREATE TABLE inventory_objects (
        tenant_id TEXT NOT NULL,
        stream TEXT NOT NULL,
        object_id TEXT NOT NULL,
        digest INTEGER NOT NULL,
        round INTEGER NOT NULL,
        tags TEXT NOT NULL,
        PRIMARY KEY (tenant_id, stream, object_id)
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE inventory_summaries (
        tenant_id TEXT NOT NULL,
        stream TEXT NOT NULL,
        doc TEXT NOT NULL,
        PRIMARY KEY (tenant_id, stream)
    ) STRICT;
    CREATE TABLE inventory_usage (
        tenant_id TEXT NOT NULL,
        day TEXT NOT NULL,
        billable INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, day)
    ) STRICT;";

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("inventory: {what}"))
}

#[async_trait]
impl InventoryStore for SqliteStore {
    async fn known(
        &self,
        tenant: &str,
        stream: Stream,
    ) -> Result<HashMap<String, Known>, StoreError> {
        let tenant = tenant.to_string();
        self.run(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT object_id, digest, round, tags FROM inventory_objects
                     WHERE tenant_id = ?1 AND stream = ?2",
                )
                .map_err(|e| backend("load inventory", &e))?;
            let rows = stmt
                .query_map(params![tenant, stream.as_str()], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, String>(3)?,
                    ))
                })
                .map_err(|e| backend("load inventory", &e))?;
            let mut out = HashMap::new();
            for row in rows {
                let (id, digest, round, tags) = row.map_err(|e| backend("load inventory", &e))?;
                let tags: Vec<String> = serde_json::from_str(&tags).map_err(|_| corrupt("tags"))?;
                out.insert(
                    id,
                    Known {
                        digest: digest as u64,
                        round: u64::try_from(round).map_err(|_| corrupt("round"))?,
                        tags,
                    },
                );
            }
            Ok(out)
        })
        .await
    }

    async fn apply(
        &self,
        tenant: &str,
        stream: Stream,
        put: &[(String, Known)],
        remove: &[String],
    ) -> Result<(), StoreError> {
        let tenant = tenant.to_string();
        let mut rows = Vec::with_capacity(put.len());
        for (id, k) in put {
            let tags = serde_json::to_string(&k.tags)
                .map_err(|_| StoreError::Invalid("inventory tags could not be encoded".into()))?;
            let round = i64::try_from(k.round)
                .map_err(|_| StoreError::Invalid("inventory round out of range".into()))?;
            rows.push((id.clone(), k.digest as i64, round, tags));
        }
        let remove = remove.to_vec();
        self.run(move |conn| {
            let tx = conn
                .transaction()
                .map_err(|e| backend("write inventory", &e))?;
            {
                let mut ins = tx
                    .prepare_cached(
                        "INSERT INTO inventory_objects (tenant_id, stream, object_id, digest, round, tags)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                         ON CONFLICT (tenant_id, stream, object_id)
                         DO UPDATE SET digest = excluded.digest, round = excluded.round, tags = excluded.tags",
                    )
                    .map_err(|e| backend("write inventory", &e))?;
                for (id, digest, round, tags) in &rows {
                    ins.execute(params![tenant, stream.as_str(), id, digest, round, tags])
                        .map_err(|e| backend("write inventory", &e))?;
                }
                let mut del = tx
                    .prepare_cached(
                        "DELETE FROM inventory_objects WHERE tenant_id = ?1 AND stream = ?2 AND object_id = ?3",
                    )
                    .map_err(|e| backend("write inventory", &e))?;
                for id in &remove {
                    del.execute(params![tenant, stream.as_str(), id])
                        .map_err(|e| backend("write inventory", &e))?;
                }
            }
            tx.commit().map_err(|e| backend("write inventory", &e))
        })
        .await
    }

    async fn put_summary(
        &self,
        tenant: &str,
        stream: Stream,
        summary: &Summary,
    ) -> Result<(), StoreError> {
        let tenant = tenant.to_string();
        let doc = serde_json::to_string(summary)
            .map_err(|_| StoreError::Invalid("inventory summary could not be encoded".into()))?;
        self.run(move |conn| {
            conn.execute(
                "INSERT INTO inventory_summaries (tenant_id, stream, doc) VALUES (?1, ?2, ?3)
                 ON CONFLICT (tenant_id, stream) DO UPDATE SET doc = excluded.doc",
                params![tenant, stream.as_str(), doc],
            )
            .map_err(|e| backend("write inventory summary", &e))?;
            Ok(())
        })
        .await
    }

    async fn summaries(&self, tenant: &str) -> Result<BTreeMap<Stream, Summary>, StoreError> {
        let tenant = tenant.to_string();
        self.run(move |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT stream, doc FROM inventory_summaries WHERE tenant_id = ?1")
                .map_err(|e| backend("load inventory summaries", &e))?;
            let rows = stmt
                .query_map(params![tenant], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
                })
                .map_err(|e| backend("load inventory summaries", &e))?;
            let mut out = BTreeMap::new();
            for row in rows {
                let (stream, doc) = row.map_err(|e| backend("load inventory summaries", &e))?;
                let Ok(stream) = stream.parse::<Stream>() else {
                    continue;
                };
                out.insert(
                    stream,
                    serde_json::from_str(&doc).map_err(|_| corrupt("summary"))?,
                );
            }
            Ok(out)
        })
        .await
    }

    async fn record_usage(
        &self,
        tenant: &str,
        day: NaiveDate,
        billable: u64,
    ) -> Result<(), StoreError> {
        let tenant = tenant.to_string();
        let n = i64::try_from(billable)
            .map_err(|_| StoreError::Invalid("billable count out of range".into()))?;
        self.run(move |conn| {
            conn.execute(
                "INSERT INTO inventory_usage (tenant_id, day, billable) VALUES (?1, ?2, ?3)
                 ON CONFLICT (tenant_id, day) DO UPDATE SET billable = excluded.billable",
                params![tenant, day.format("%Y-%m-%d").to_string(), n],
            )
            .map_err(|e| backend("write usage", &e))?;
            Ok(())
        })
        .await
    }

    async fn usage(&self, tenant: &str) -> Result<Vec<(NaiveDate, u64)>, StoreError> {
        let tenant = tenant.to_string();
        self.run(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT day, billable FROM inventory_usage WHERE tenant_id = ?1 ORDER BY day",
                )
                .map_err(|e| backend("load usage", &e))?;
            let rows = stmt
                .query_map(params![tenant], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                })
                .map_err(|e| backend("load usage", &e))?;
            let mut out = Vec::new();
            for row in rows {
                let (day, n) = row.map_err(|e| backend("load usage", &e))?;
                let day =
                    NaiveDate::parse_from_str(&day, "%Y-%m-%d").map_err(|_| corrupt("day"))?;
                out.push((day, u64::try_from(n).map_err(|_| corrupt("billable"))?));
            }
            Ok(out)
        })
        .await
    }

    async fn purge_inventory(&self, tenant: &str) -> Result<(), StoreError> {
        let tenant = tenant.to_string();
        self.run(move |conn| {
            for table in [
                "inventory_objects",
                "inventory_summaries",
                "inventory_usage",
            ] {
                conn.execute(
                    &format!("DELETE FROM {table} WHERE tenant_id = ?1"),
                    params![tenant],
                )
                .map_err(|e| backend("purge inventory", &e))?;
            }
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Summary;

    #[tokio::test]
    async fn objects_summaries_and_usage_round_trip() {
        let s = SqliteStore::in_memory().unwrap();
        let k = |d: u64, tags: &[&str]| Known {
            digest: d,
            round: 3,
            tags: tags.iter().map(|t| t.to_string()).collect(),
        };
        // Digests use every bit of a u64.
        s.apply(
            "t",
            Stream::Users,
            &[
                ("a".into(), k(u64::MAX, &["billable"])),
                ("b".into(), k(1, &[])),
            ],
            &[],
        )
        .await
        .unwrap();
        s.apply(
            "t",
            Stream::Users,
            &[("b".into(), k(2, &["guest"]))],
            &["a".into()],
        )
        .await
        .unwrap();
        s.apply("u", Stream::Users, &[("a".into(), k(9, &[]))], &[])
            .await
            .unwrap();
        let known = s.known("t", Stream::Users).await.unwrap();
        assert_eq!(known.len(), 1);
        assert_eq!(known["b"], k(2, &["guest"]));
        s.apply("t", Stream::Apps, &[("a".into(), k(u64::MAX, &[]))], &[])
            .await
            .unwrap();
        assert_eq!(
            s.known("t", Stream::Apps).await.unwrap()["a"].digest,
            u64::MAX
        );
        let sum = Summary::of(known.values(), chrono::Utc::now(), Vec::new());
        s.put_summary("t", Stream::Users, &sum).await.unwrap();
        assert_eq!(s.summaries("t").await.unwrap()[&Stream::Users], sum);
        let day = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        s.record_usage("t", day, 5).await.unwrap();
        s.record_usage("t", day, 6).await.unwrap();
        assert_eq!(s.usage("t").await.unwrap(), vec![(day, 6)]);
        // Purging the tenant's cursors purges its inventory too.
        crate::store::CursorStore::purge(&s, "t").await.unwrap();
        assert!(s.known("t", Stream::Users).await.unwrap().is_empty());
        assert!(s.summaries("t").await.unwrap().is_empty());
        assert!(s.usage("t").await.unwrap().is_empty());
        assert_eq!(s.known("u", Stream::Users).await.unwrap().len(), 1);
    }
}
