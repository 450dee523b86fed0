//! [`SeenPages`] on the embedded SQLite database: one row per (tenant, stream, source,
//! bucket), fingerprints packed in a BLOB (schema version 3).

use async_trait::async_trait;
use rusqlite::params;

use super::{SqliteStore, backend};
use crate::cursor::seen::{pack, unpack};
use crate::cursor::{SeenPage, SeenPages};
use crate::store::StoreError;
use crate::stream::Stream;

/// Appended to the schema migrations: 2 -> 3.
pub(super) const MIGRATION: &str = "CREATE TABLE seen_pages (
        tenant_id TEXT NOT NULL,
        stream TEXT NOT NULL,
        source TEXT NOT NULL,
        bucket INTEGER NOT NULL,
        fps BLOB NOT NULL,
        PRIMARY KEY (tenant_id, stream, source, bucket)
    ) STRICT, WITHOUT ROWID;";

#[async_trait]
impl SeenPages for SqliteStore {
    async fn load_pages(
        &self,
        tenant: &str,
        stream: Stream,
        source: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, Vec<u32>)>, StoreError> {
        let tenant = tenant.to_string();
        let source = source.to_string();
        self.run(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT bucket, fps FROM seen_pages
                     WHERE tenant_id = ?1 AND stream = ?2 AND source = ?3
                       AND bucket BETWEEN ?4 AND ?5
                     ORDER BY bucket",
                )
                .map_err(|e| backend("load seen pages", &e))?;
            let rows = stmt
                .query_map(params![tenant, stream.as_str(), source, from, to], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
                })
                .map_err(|e| backend("load seen pages", &e))?;
            let mut out = Vec::new();
            for row in rows {
                let (bucket, bytes) = row.map_err(|e| backend("load seen pages", &e))?;
                let fps = unpack(&bytes).ok_or_else(|| {
                    StoreError::Corrupt(format!("seen page {tenant}/{stream}: length"))
                })?;
                out.push((bucket, fps));
            }
            Ok(out)
        })
        .await
    }

    async fn put_pages(
        &self,
        tenant: &str,
        stream: Stream,
        pages: &[SeenPage],
    ) -> Result<(), StoreError> {
        let tenant = tenant.to_string();
        let rows: Vec<(String, i64, Vec<u8>)> = pages
            .iter()
            .map(|p| (p.source.clone(), p.bucket, pack(&p.fps)))
            .collect();
        self.run(move |conn| {
            let tx = conn
                .transaction()
                .map_err(|e| backend("write seen pages", &e))?;
            {
                let mut put = tx
                    .prepare_cached(
                        "INSERT INTO seen_pages (tenant_id, stream, source, bucket, fps)
                         VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT (tenant_id, stream, source, bucket)
                         DO UPDATE SET fps = excluded.fps",
                    )
                    .map_err(|e| backend("write seen pages", &e))?;
                for (source, bucket, fps) in &rows {
                    put.execute(params![tenant, stream.as_str(), source, bucket, fps])
                        .map_err(|e| backend("write seen pages", &e))?;
                }
            }
            tx.commit().map_err(|e| backend("write seen pages", &e))
        })
        .await
    }

    async fn delete_pages(
        &self,
        tenant: &str,
        stream: Stream,
        pages: &[(String, i64)],
    ) -> Result<(), StoreError> {
        let tenant = tenant.to_string();
        let pages = pages.to_vec();
        self.run(move |conn| {
            let tx = conn
                .transaction()
                .map_err(|e| backend("delete seen pages", &e))?;
            {
                let mut del = tx
                    .prepare_cached(
                        "DELETE FROM seen_pages
                         WHERE tenant_id = ?1 AND stream = ?2 AND source = ?3 AND bucket = ?4",
                    )
                    .map_err(|e| backend("delete seen pages", &e))?;
                for (source, bucket) in &pages {
                    del.execute(params![tenant, stream.as_str(), source, bucket])
                        .map_err(|e| backend("delete seen pages", &e))?;
                }
            }
            tx.commit().map_err(|e| backend("delete seen pages", &e))
        })
        .await
    }
}
