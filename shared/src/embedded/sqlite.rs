//! [`SqliteStore`]: cursors and the tenant registry in one SQLite file.
//!
//! Durability: the database runs in WAL mode with `synchronous=FULL`, so a transaction that
//! has committed (a cursor, a registry change) survives a process or machine crash. Several
//! processes may open the same file; writers wait up to a busy timeout for each other.
//!
//! Concurrency: `rusqlite` is synchronous, so every operation runs on tokio's blocking pool
//! with the connection behind a mutex; the async runtime never waits on SQLite. The cursor
//! compare-and-set is a single conditional statement inside an immediate (write-locking)
//! transaction, so it holds across connections and processes, not just within this value.
//!
//! Uniqueness (the [`TenantRegistry`] contract): the tenant id is the primary key, the domain
//! a `UNIQUE COLLATE NOCASE` column, and the organization is compared with [`org_key`] by a
//! query inside the same immediate transaction as the write, so two writers cannot both
//! take one.
//!
//! Schema: versioned with SQLite's `user_version`; [`MIGRATIONS`] are applied in order on
//! open. Error messages name the operation and the SQLite error code, never record content.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use crate::clock::{SharedClock, SystemClock};
use crate::cloud::Cloud;
use crate::store::{
    CursorStore, Health, HealthUpdate, StoreError, StoredCursor, TenantRecord, TenantRegistry,
    apply_health, org_key,
};
use crate::stream::Stream;

mod actions;
mod inventory;
mod pages;

/// The schema version this build creates and understands (`PRAGMA user_version`).
pub const SCHEMA_VERSION: u32 = 4;

/// Schema migrations: entry `i` takes the schema from version `i` to `i + 1`. Append only.
pub const MIGRATIONS: &[&str] = &[
    // 0 -> 1: tenants and cursors.
    "CREATE TABLE tenants (
        tenant_id TEXT PRIMARY KEY NOT NULL,
        domain TEXT UNIQUE COLLATE NOCASE,
        org TEXT,
        cloud TEXT NOT NULL,
        app_ref TEXT NOT NULL,
        streams TEXT NOT NULL,
        include_noninteractive INTEGER NOT NULL,
        enabled INTEGER NOT NULL,
        health TEXT NOT NULL,
        created_at TEXT NOT NULL
    ) STRICT;
    CREATE TABLE cursors (
        tenant_id TEXT NOT NULL,
        stream TEXT NOT NULL,
        doc TEXT NOT NULL,
        version INTEGER NOT NULL CHECK (version >= 1),
        updated_at TEXT NOT NULL,
        PRIMARY KEY (tenant_id, stream)
    ) STRICT;",
    // 1 -> 2: the inventory's objects, summaries and daily billable counts.
    inventory::MIGRATION,
    // 2 -> 3: seen-set pages beside the cursors.
    pages::MIGRATION,
    // 3 -> 4: the organization's contact address of a tenant (the emailed reports).
    "CREATE TABLE contacts (
        tenant_id TEXT PRIMARY KEY NOT NULL,
        email TEXT NOT NULL
    ) STRICT;",
];

/// How long a writer waits for another connection's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

const TENANT_COLUMNS: &str = "tenant_id, domain, org, cloud, app_ref, streams, \
     include_noninteractive, enabled, health, created_at";

/// Cursors ([`CursorStore`]) and tenants ([`TenantRegistry`]) in one SQLite database.
///
/// Cheap to clone: clones share the connection.
#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    clock: SharedClock,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed, parent directories included) the database at `path`,
    /// enables WAL with `synchronous=FULL` and brings the schema up to [`SCHEMA_VERSION`].
    ///
    /// Blocking: call it at startup, or from a blocking context.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Backend(format!("creating the database directory: {}", e.kind()))
            })?;
        }
        let mut conn = Connection::open(path).map_err(|e| backend("open", &e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| backend("busy timeout", &e))?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(|e| backend("journal mode", &e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Backend(
                "sqlite journal mode: WAL could not be enabled".to_string(),
            ));
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| backend("synchronous", &e))?;
        migrate(&mut conn)?;
        Ok(Self::from_connection(conn))
    }

    /// A private in-memory database, for tests. Nothing survives the value.
    pub fn in_memory() -> Result<Self, StoreError> {
        let mut conn = Connection::open_in_memory().map_err(|e| backend("open", &e))?;
        migrate(&mut conn)?;
        Ok(Self::from_connection(conn))
    }

    /// Uses `clock` for the `updated_at` bookkeeping column (defaults to the system clock).
    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// The schema version of the open database.
    pub async fn schema_version(&self) -> Result<u32, StoreError> {
        self.run(|conn| {
            let v: i64 = conn
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .map_err(|e| backend("schema version", &e))?;
            u32::try_from(v).map_err(|_| StoreError::Corrupt("schema version".to_string()))
        })
        .await
    }

    fn from_connection(conn: Connection) -> Self {
        Self {
            conn: Arc::new(Mutex::new(conn)),
            clock: Arc::new(SystemClock),
        }
    }

    /// Runs `f` with the connection on the blocking pool.
    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock cannot leave a transaction open: dropping a
            // rusqlite transaction rolls it back. So a poisoned lock is safe to reuse.
            let mut guard = conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut guard)
        })
        .await
        .map_err(|e| {
            StoreError::Backend(if e.is_panic() {
                "sqlite task panicked".to_string()
            } else {
                "sqlite task was cancelled".to_string()
            })
        })?
    }
}

/// Applies pending migrations in one transaction.
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| backend("migrate", &e))?;
    let current: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| backend("migrate", &e))?;
    let current = usize::try_from(current)
        .map_err(|_| StoreError::Corrupt("schema version is negative".to_string()))?;
    if current > MIGRATIONS.len() {
        return Err(StoreError::Corrupt(format!(
            "schema version {current} is newer than this build supports ({SCHEMA_VERSION})"
        )));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        tx.execute_batch(sql).map_err(|e| backend("migrate", &e))?;
        let next = i64::try_from(i + 1).map_err(|_| StoreError::Corrupt("schema".into()))?;
        tx.pragma_update(None, "user_version", next)
            .map_err(|e| backend("migrate", &e))?;
    }
    tx.commit().map_err(|e| backend("migrate", &e))
}

/// Maps a rusqlite error without its message (which may quote data).
fn backend(op: &str, e: &rusqlite::Error) -> StoreError {
    use rusqlite::Error as E;
    match e {
        E::SqliteFailure(f, _) => StoreError::Backend(format!(
            "sqlite {op}: {:?} (code {})",
            f.code, f.extended_code
        )),
        E::InvalidColumnType(..)
        | E::FromSqlConversionFailure(..)
        | E::IntegralValueOutOfRange(..) => {
            StoreError::Corrupt(format!("sqlite {op}: a column has an unexpected type"))
        }
        _ => StoreError::Backend(format!("sqlite {op}: driver error")),
    }
}

fn timestamp(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// A tenant row as stored.
struct TenantRow {
    tenant_id: String,
    domain: Option<String>,
    org: Option<String>,
    cloud: String,
    app_ref: String,
    streams: String,
    include_noninteractive: bool,
    enabled: bool,
    health: String,
    created_at: String,
}

impl TenantRow {
    /// The columns in `TENANT_COLUMNS` order, as `?1`..`?10` parameters.
    fn params(&self) -> [&dyn rusqlite::ToSql; 10] {
        [
            &self.tenant_id,
            &self.domain,
            &self.org,
            &self.cloud,
            &self.app_ref,
            &self.streams,
            &self.include_noninteractive,
            &self.enabled,
            &self.health,
            &self.created_at,
        ]
    }

    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            tenant_id: row.get(0)?,
            domain: row.get(1)?,
            org: row.get(2)?,
            cloud: row.get(3)?,
            app_ref: row.get(4)?,
            streams: row.get(5)?,
            include_noninteractive: row.get(6)?,
            enabled: row.get(7)?,
            health: row.get(8)?,
            created_at: row.get(9)?,
        })
    }

    fn encode(r: &TenantRecord) -> Result<Self, StoreError> {
        r.validate()?;
        let streams = serde_json::to_string(&r.streams)
            .map_err(|_| StoreError::Invalid("streams could not be encoded".to_string()))?;
        let health = serde_json::to_string(&r.health)
            .map_err(|_| StoreError::Invalid("health could not be encoded".to_string()))?;
        Ok(Self {
            tenant_id: r.tenant_id.clone(),
            domain: r.domain.clone(),
            org: r.org.clone(),
            cloud: r.cloud.as_str().to_string(),
            app_ref: r.app_ref.clone(),
            streams,
            include_noninteractive: r.include_noninteractive,
            enabled: r.enabled,
            health,
            created_at: timestamp(&r.created_at),
        })
    }

    fn decode(self) -> Result<TenantRecord, StoreError> {
        let corrupt =
            |field: &str| StoreError::Corrupt(format!("tenant {}: {field}", self.tenant_id));
        let cloud: Cloud = self.cloud.parse().map_err(|_| corrupt("cloud"))?;
        let streams: Vec<Stream> =
            serde_json::from_str(&self.streams).map_err(|_| corrupt("streams"))?;
        let health: Health = serde_json::from_str(&self.health).map_err(|_| corrupt("health"))?;
        let created_at = DateTime::parse_from_rfc3339(&self.created_at)
            .map_err(|_| corrupt("created_at"))?
            .with_timezone(&Utc);
        Ok(TenantRecord {
            tenant_id: self.tenant_id,
            domain: self.domain,
            org: self.org,
            cloud,
            app_ref: self.app_ref,
            streams,
            include_noninteractive: self.include_noninteractive,
            enabled: self.enabled,
            health,
            created_at,
        })
    }
}

/// The tenant (other than `except`) holding `domain`, if any.
fn domain_owner(
    conn: &Connection,
    domain: Option<&str>,
    except: &str,
) -> Result<Option<String>, StoreError> {
    let Some(domain) = domain else {
        return Ok(None);
    };
    conn.query_row(
        "SELECT tenant_id FROM tenants WHERE domain = ?1 AND tenant_id <> ?2",
        params![domain, except],
        |r| r.get(0),
    )
    .optional()
    .map_err(|e| backend("domain lookup", &e))
}

/// The tenant (other than `except`) holding the organization `org` (compared by [`org_key`]),
/// if any. Organizations are compared here rather than by an index so that the comparison is
/// exactly [`org_key`]'s, and so that a database holding duplicates from before this check
/// still opens.
fn org_owner(
    conn: &Connection,
    org: Option<&str>,
    except: &str,
) -> Result<Option<String>, StoreError> {
    let Some(org) = org else {
        return Ok(None);
    };
    let wanted = org_key(org);
    let mut stmt = conn
        .prepare("SELECT tenant_id, org FROM tenants WHERE org IS NOT NULL AND tenant_id <> ?1")
        .map_err(|e| backend("organization lookup", &e))?;
    let mut rows = stmt
        .query(params![except])
        .map_err(|e| backend("organization lookup", &e))?;
    while let Some(row) = rows
        .next()
        .map_err(|e| backend("organization lookup", &e))?
    {
        let other: String = row.get(1).map_err(|e| backend("organization lookup", &e))?;
        if org_key(&other) == wanted {
            return row
                .get(0)
                .map(Some)
                .map_err(|e| backend("organization lookup", &e));
        }
    }
    Ok(None)
}

/// Refuses a row whose domain or organization another tenant holds.
fn check_unique(conn: &Connection, row: &TenantRow) -> Result<(), StoreError> {
    if let Some(owner) = domain_owner(conn, row.domain.as_deref(), &row.tenant_id)? {
        return Err(StoreError::Invalid(format!(
            "domain of tenant {} is already registered to tenant {owner}",
            row.tenant_id
        )));
    }
    if let Some(owner) = org_owner(conn, row.org.as_deref(), &row.tenant_id)? {
        return Err(StoreError::Invalid(format!(
            "organization of tenant {} is already mapped to tenant {owner}",
            row.tenant_id
        )));
    }
    Ok(())
}

fn tenant_exists(conn: &Connection, tenant_id: &str) -> Result<bool, StoreError> {
    conn.query_row(
        "SELECT 1 FROM tenants WHERE tenant_id = ?1",
        params![tenant_id],
        |_| Ok(()),
    )
    .optional()
    .map(|o| o.is_some())
    .map_err(|e| backend("tenant lookup", &e))
}

#[async_trait]
impl CursorStore for SqliteStore {
    async fn load(&self, tenant: &str, stream: Stream) -> Result<Option<StoredCursor>, StoreError> {
        let tenant = tenant.to_string();
        self.run(move |conn| {
            let row: Option<(String, i64)> = conn
                .query_row(
                    "SELECT doc, version FROM cursors WHERE tenant_id = ?1 AND stream = ?2",
                    params![tenant, stream.as_str()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(|e| backend("load cursor", &e))?;
            let Some((doc, version)) = row else {
                return Ok(None);
            };
            let corrupt =
                |field: &str| StoreError::Corrupt(format!("cursor {tenant}/{stream}: {field}"));
            let version = u64::try_from(version)
                .ok()
                .filter(|v| *v >= 1)
                .ok_or_else(|| corrupt("version"))?;
            let doc = serde_json::from_str(&doc).map_err(|_| corrupt("document"))?;
            Ok(Some(StoredCursor { doc, version }))
        })
        .await
    }

    async fn commit(
        &self,
        tenant: &str,
        stream: Stream,
        expected: Option<u64>,
        doc: &serde_json::Value,
    ) -> Result<u64, StoreError> {
        let tenant = tenant.to_string();
        let doc = serde_json::to_string(doc)
            .map_err(|_| StoreError::Invalid("cursor document could not be encoded".into()))?;
        let now = timestamp(&self.clock.now());
        self.run(move |conn| {
            let conflict = |tenant: String| StoreError::Conflict {
                tenant,
                stream,
                expected,
            };
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| backend("commit cursor", &e))?;
            let (changed, new_version) = match expected {
                None => {
                    let n = tx
                        .execute(
                            "INSERT INTO cursors (tenant_id, stream, doc, version, updated_at)
                             VALUES (?1, ?2, ?3, 1, ?4)
                             ON CONFLICT (tenant_id, stream) DO NOTHING",
                            params![tenant, stream.as_str(), doc, now],
                        )
                        .map_err(|e| backend("commit cursor", &e))?;
                    (n, 1)
                }
                Some(v) => {
                    // A stored version always fits in i64; a larger `expected` cannot match.
                    let Ok(current) = i64::try_from(v) else {
                        return Err(conflict(tenant));
                    };
                    let next = current.checked_add(1).ok_or_else(|| {
                        StoreError::Invalid("cursor version exhausted".to_string())
                    })?;
                    let n = tx
                        .execute(
                            "UPDATE cursors SET doc = ?3, version = ?4, updated_at = ?5
                             WHERE tenant_id = ?1 AND stream = ?2 AND version = ?6",
                            params![tenant, stream.as_str(), doc, next, now, current],
                        )
                        .map_err(|e| backend("commit cursor", &e))?;
                    (n, v + 1)
                }
            };
            if changed == 0 {
                // Dropping the transaction rolls it back; nothing was written anyway.
                return Err(conflict(tenant));
            }
            tx.commit().map_err(|e| backend("commit cursor", &e))?;
            Ok(new_version)
        })
        .await
    }

    async fn purge(&self, tenant: &str) -> Result<(), StoreError> {
        let t = tenant.to_string();
        self.run(move |conn| {
            let tx = conn
                .transaction()
                .map_err(|e| backend("purge cursors", &e))?;
            tx.execute("DELETE FROM cursors WHERE tenant_id = ?1", params![t])
                .map_err(|e| backend("purge cursors", &e))?;
            tx.execute("DELETE FROM seen_pages WHERE tenant_id = ?1", params![t])
                .map_err(|e| backend("purge seen pages", &e))?;
            tx.commit().map_err(|e| backend("purge cursors", &e))
        })
        .await?;
        crate::inventory::InventoryStore::purge_inventory(self, tenant).await
    }

    fn inventory(&self) -> Option<&dyn crate::inventory::InventoryStore> {
        Some(self)
    }

    fn seen_pages(&self) -> Option<&dyn crate::cursor::SeenPages> {
        Some(self)
    }
}

#[async_trait]
impl TenantRegistry for SqliteStore {
    async fn list(&self) -> Result<Vec<TenantRecord>, StoreError> {
        self.run(|conn| {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT {TENANT_COLUMNS} FROM tenants ORDER BY tenant_id"
                ))
                .map_err(|e| backend("list tenants", &e))?;
            let rows = stmt
                .query_map([], TenantRow::read)
                .map_err(|e| backend("list tenants", &e))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| backend("list tenants", &e))?;
            rows.into_iter().map(TenantRow::decode).collect()
        })
        .await
    }

    async fn get(&self, tenant_id: &str) -> Result<Option<TenantRecord>, StoreError> {
        let tenant_id = tenant_id.to_string();
        self.run(move |conn| {
            conn.query_row(
                &format!("SELECT {TENANT_COLUMNS} FROM tenants WHERE tenant_id = ?1"),
                params![tenant_id],
                TenantRow::read,
            )
            .optional()
            .map_err(|e| backend("get tenant", &e))?
            .map(TenantRow::decode)
            .transpose()
        })
        .await
    }

    async fn insert(&self, record: &TenantRecord) -> Result<(), StoreError> {
        let row = TenantRow::encode(record)?;
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| backend("insert tenant", &e))?;
            if tenant_exists(&tx, &row.tenant_id)? {
                return Err(StoreError::Invalid(format!(
                    "tenant id {} is already registered",
                    row.tenant_id
                )));
            }
            check_unique(&tx, &row)?;
            tx.execute(
                &format!(
                    "INSERT INTO tenants ({TENANT_COLUMNS})
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                ),
                row.params(),
            )
            .map_err(|e| backend("insert tenant", &e))?;
            tx.commit().map_err(|e| backend("insert tenant", &e))
        })
        .await
    }

    async fn update(&self, record: &TenantRecord) -> Result<(), StoreError> {
        let row = TenantRow::encode(record)?;
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| backend("update tenant", &e))?;
            if !tenant_exists(&tx, &row.tenant_id)? {
                return Err(StoreError::UnknownTenant(row.tenant_id));
            }
            check_unique(&tx, &row)?;
            tx.execute(
                "UPDATE tenants SET domain = ?2, org = ?3, cloud = ?4, app_ref = ?5,
                     streams = ?6, include_noninteractive = ?7, enabled = ?8, health = ?9,
                     created_at = ?10
                 WHERE tenant_id = ?1",
                row.params(),
            )
            .map_err(|e| backend("update tenant", &e))?;
            tx.commit().map_err(|e| backend("update tenant", &e))
        })
        .await
    }

    async fn update_health(
        &self,
        tenant_id: &str,
        update: &HealthUpdate,
    ) -> Result<Health, StoreError> {
        let tenant_id = tenant_id.to_string();
        let update = update.clone();
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| backend("update health", &e))?;
            let stored: Option<String> = tx
                .query_row(
                    "SELECT health FROM tenants WHERE tenant_id = ?1",
                    params![tenant_id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(|e| backend("update health", &e))?;
            let Some(stored) = stored else {
                return Err(StoreError::UnknownTenant(tenant_id));
            };
            let current: Health = serde_json::from_str(&stored)
                .map_err(|_| StoreError::Corrupt(format!("tenant {tenant_id}: health")))?;
            let next = apply_health(&current, &update);
            let encoded = serde_json::to_string(&next)
                .map_err(|_| StoreError::Invalid("health could not be encoded".to_string()))?;
            tx.execute(
                "UPDATE tenants SET health = ?2 WHERE tenant_id = ?1",
                params![tenant_id, encoded],
            )
            .map_err(|e| backend("update health", &e))?;
            tx.commit().map_err(|e| backend("update health", &e))?;
            Ok(next)
        })
        .await
    }

    /// Removes the tenant row; its cursors stay until [`CursorStore::purge`] (offboarding
    /// decides whether to purge). An unknown tenant is [`StoreError::UnknownTenant`].
    async fn delete(&self, tenant_id: &str) -> Result<(), StoreError> {
        let tenant_id = tenant_id.to_string();
        self.run(move |conn| {
            let tx = conn
                .transaction()
                .map_err(|e| backend("delete tenant", &e))?;
            let n = tx
                .execute(
                    "DELETE FROM tenants WHERE tenant_id = ?1",
                    params![tenant_id],
                )
                .map_err(|e| backend("delete tenant", &e))?;
            if n == 0 {
                return Err(StoreError::UnknownTenant(tenant_id));
            }
            tx.execute(
                "DELETE FROM contacts WHERE tenant_id = ?1",
                params![tenant_id],
            )
            .map_err(|e| backend("delete tenant", &e))?;
            tx.commit().map_err(|e| backend("delete tenant", &e))
        })
        .await
    }

    async fn set_contact(&self, tenant_id: &str, contact: Option<&str>) -> Result<(), StoreError> {
        let tenant_id = tenant_id.to_string();
        let contact = contact
            .map(crate::assess::contact::validate_contact_email)
            .transpose()
            .map_err(|e| StoreError::Invalid(format!("tenant {tenant_id}: {e}")))?;
        self.run(move |conn| {
            let tx = conn.transaction().map_err(|e| backend("set contact", &e))?;
            let known: bool = tx
                .query_row(
                    "SELECT EXISTS(SELECT 1 FROM tenants WHERE tenant_id = ?1)",
                    params![tenant_id],
                    |r| r.get(0),
                )
                .map_err(|e| backend("set contact", &e))?;
            if !known {
                return Err(StoreError::UnknownTenant(tenant_id));
            }
            match contact {
                Some(c) => tx.execute(
                    "INSERT INTO contacts (tenant_id, email) VALUES (?1, ?2)
                     ON CONFLICT (tenant_id) DO UPDATE SET email = excluded.email",
                    params![tenant_id, c],
                ),
                None => tx.execute(
                    "DELETE FROM contacts WHERE tenant_id = ?1",
                    params![tenant_id],
                ),
            }
            .map_err(|e| backend("set contact", &e))?;
            tx.commit().map_err(|e| backend("set contact", &e))
        })
        .await
    }
}

impl SqliteStore {
    /// The contact address recorded for `tenant_id`, if any.
    pub async fn contact(&self, tenant_id: &str) -> Result<Option<String>, StoreError> {
        let tenant_id = tenant_id.to_string();
        self.run(move |conn| {
            conn.query_row(
                "SELECT email FROM contacts WHERE tenant_id = ?1",
                params![tenant_id],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| backend("read contact", &e))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::HealthState;
    use chrono::TimeZone;
    use serde_json::json;

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + secs, 123_456_789)
            .unwrap()
    }

    fn tenant(id: &str, domain: Option<&str>) -> TenantRecord {
        TenantRecord {
            tenant_id: id.to_string(),
            domain: domain.map(str::to_string),
            org: Some(format!("org-{id}")),
            cloud: Cloud::GccHigh,
            app_ref: "app-a".to_string(),
            streams: vec![Stream::Signins, Stream::DirectoryAudits],
            include_noninteractive: true,
            enabled: true,
            health: Health::default(),
            created_at: t(0),
        }
    }

    #[tokio::test]
    async fn contacts_are_kept_replaced_removed_and_go_with_their_tenant() {
        let s = SqliteStore::in_memory().unwrap();
        s.insert(&tenant("t1", Some("contoso.us"))).await.unwrap();
        assert_eq!(s.contact("t1").await.unwrap(), None);
        s.set_contact("t1", Some(" Admin@Contoso.US "))
            .await
            .unwrap();
        assert_eq!(
            s.contact("t1").await.unwrap().as_deref(),
            Some("Admin@contoso.us")
        );
        s.set_contact("t1", Some("it@contoso.us")).await.unwrap();
        assert_eq!(
            s.contact("t1").await.unwrap().as_deref(),
            Some("it@contoso.us")
        );
        let bad = s.set_contact("t1", Some("a@b, c@d.com")).await.unwrap_err();
        assert!(matches!(bad, StoreError::Invalid(_)), "{bad}");
        assert!(
            !bad.to_string().contains("c@d.com"),
            "errors never quote the value"
        );
        assert!(matches!(
            s.set_contact("nobody", Some("x@y.com")).await,
            Err(StoreError::UnknownTenant(_))
        ));
        s.set_contact("t1", None).await.unwrap();
        assert_eq!(s.contact("t1").await.unwrap(), None);
        s.set_contact("t1", Some("it@contoso.us")).await.unwrap();
        s.delete("t1").await.unwrap();
        s.insert(&tenant("t1", Some("contoso.us"))).await.unwrap();
        assert_eq!(
            s.contact("t1").await.unwrap(),
            None,
            "purged with its tenant"
        );
    }

    #[tokio::test]
    async fn cas_first_insert_then_versions() {
        let s = SqliteStore::in_memory().unwrap();
        assert_eq!(s.schema_version().await.unwrap(), SCHEMA_VERSION);
        assert_eq!(s.load("t1", Stream::Signins).await.unwrap(), None);
        assert_eq!(
            s.commit("t1", Stream::Signins, None, &json!({"a": 1}))
                .await
                .unwrap(),
            1
        );
        // A second first-insert loses.
        let err = s
            .commit("t1", Stream::Signins, None, &json!({"a": 2}))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict { expected: None, .. }));
        assert_eq!(
            s.commit("t1", Stream::Signins, Some(1), &json!({"a": 3}))
                .await
                .unwrap(),
            2
        );
        // Stale version: conflict, nothing overwritten.
        for stale in [Some(1), Some(3), Some(u64::MAX)] {
            let err = s
                .commit("t1", Stream::Signins, stale, &json!({"a": 4}))
                .await
                .unwrap_err();
            assert!(matches!(err, StoreError::Conflict { expected, .. } if expected == stale));
        }
        let c = s.load("t1", Stream::Signins).await.unwrap().unwrap();
        assert_eq!(
            c,
            StoredCursor {
                doc: json!({"a": 3}),
                version: 2
            }
        );
        // Streams and tenants are independent keys.
        assert_eq!(s.load("t1", Stream::DirectoryAudits).await.unwrap(), None);
        let err = s
            .commit("t2", Stream::Signins, Some(1), &json!({}))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict { .. }));
        s.commit("t2", Stream::Signins, None, &json!({}))
            .await
            .unwrap();
        s.purge("t1").await.unwrap();
        assert_eq!(s.load("t1", Stream::Signins).await.unwrap(), None);
        assert!(s.load("t2", Stream::Signins).await.unwrap().is_some());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_committers_one_winner_per_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        // Two stores (two connections) on one file, several tasks each.
        let stores = [
            SqliteStore::open(&path).unwrap(),
            SqliteStore::open(&path).unwrap(),
        ];
        for expected in [None, Some(1), Some(2), Some(3)] {
            let mut tasks = Vec::new();
            for i in 0..8usize {
                let s = stores[i % 2].clone();
                tasks.push(tokio::spawn(async move {
                    s.commit("t", Stream::Signins, expected, &json!({ "writer": i }))
                        .await
                }));
            }
            let mut wins = Vec::new();
            for (i, task) in tasks.into_iter().enumerate() {
                match task.await.unwrap() {
                    Ok(v) => wins.push((i, v)),
                    Err(StoreError::Conflict { .. }) => {}
                    Err(e) => panic!("unexpected error: {e}"),
                }
            }
            assert_eq!(wins.len(), 1, "exactly one winner for {expected:?}");
            let (winner, version) = wins[0];
            assert_eq!(version, expected.map_or(1, |v| v + 1));
            let c = stores[0].load("t", Stream::Signins).await.unwrap().unwrap();
            assert_eq!(c.version, version);
            assert_eq!(c.doc, json!({ "writer": winner }));
        }
    }

    #[tokio::test]
    async fn survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested").join("state.db");
        {
            let s = SqliteStore::open(&path).unwrap();
            s.insert(&tenant("t1", Some("contoso.com"))).await.unwrap();
            s.commit("t1", Stream::Signins, None, &json!({"since": "x"}))
                .await
                .unwrap();
            s.commit("t1", Stream::Signins, Some(1), &json!({"since": "y"}))
                .await
                .unwrap();
        }
        let s = SqliteStore::open(&path).unwrap();
        assert_eq!(s.schema_version().await.unwrap(), SCHEMA_VERSION);
        let c = s.load("t1", Stream::Signins).await.unwrap().unwrap();
        assert_eq!(
            c,
            StoredCursor {
                doc: json!({"since": "y"}),
                version: 2
            }
        );
        assert_eq!(
            s.get("t1").await.unwrap(),
            Some(tenant("t1", Some("contoso.com")))
        );
    }

    #[tokio::test]
    async fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        drop(SqliteStore::open(&path).unwrap());
        {
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "user_version", 99).unwrap();
        }
        assert!(matches!(
            SqliteStore::open(&path),
            Err(StoreError::Corrupt(_))
        ));
    }

    #[tokio::test]
    async fn registry_crud_and_ordering() {
        let s = SqliteStore::in_memory().unwrap();
        s.insert(&tenant("c", Some("c.example"))).await.unwrap();
        s.insert(&tenant("a", None)).await.unwrap();
        s.insert(&tenant("b", None)).await.unwrap();
        let ids: Vec<String> = s
            .list()
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.tenant_id)
            .collect();
        assert_eq!(ids, vec!["a", "b", "c"]);

        // Duplicates: same id, or same domain (case-insensitive).
        let err = s
            .insert(&tenant("a", Some("other.example")))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Invalid(m) if m.contains("tenant id a")),
            "{err}"
        );
        let err = s.insert(&tenant("d", Some("C.Example"))).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Invalid(m) if m.contains("domain") && m.contains("tenant c")),
            "{err}"
        );
        assert!(s.get("d").await.unwrap().is_none());
        assert!(matches!(
            s.insert(&tenant("", None)).await,
            Err(StoreError::Invalid(_))
        ));

        // Update replaces the record; it must exist; domains stay unique.
        let mut b = tenant("b", Some("b.example"));
        b.enabled = false;
        b.cloud = Cloud::China;
        b.streams = vec![Stream::DirectoryAudits];
        s.update(&b).await.unwrap();
        assert_eq!(s.get("b").await.unwrap(), Some(b.clone()));
        b.domain = Some("c.example".into());
        assert!(matches!(s.update(&b).await, Err(StoreError::Invalid(_))));
        assert!(matches!(
            s.update(&tenant("zz", None)).await,
            Err(StoreError::UnknownTenant(id)) if id == "zz"
        ));

        s.delete("a").await.unwrap();
        assert!(matches!(
            s.delete("a").await,
            Err(StoreError::UnknownTenant(_))
        ));
        assert_eq!(s.list().await.unwrap().len(), 2);
        // A deleted tenant's id and domain can be registered again.
        s.delete("c").await.unwrap();
        s.insert(&tenant("c2", Some("c.example"))).await.unwrap();
    }

    #[tokio::test]
    async fn health_updates_are_applied_and_stored() {
        let s = SqliteStore::in_memory().unwrap();
        s.insert(&tenant("t1", None)).await.unwrap();
        let h = s
            .update_health(
                "t1",
                &HealthUpdate::Failure {
                    at: t(10),
                    stream: Stream::Signins,
                    kind: crate::health::FailureKind::Throttled,
                },
            )
            .await
            .unwrap();
        assert_eq!(h.consecutive_failures, 1);
        assert_eq!(h.state, HealthState::Degraded);
        let h2 = s
            .update_health(
                "t1",
                &HealthUpdate::Success {
                    stream: Stream::Signins,
                    at: t(20),
                    newest_event: Some(t(15)),
                    throttled: false,
                },
            )
            .await
            .unwrap();
        assert_eq!(
            h2,
            apply_health(
                &h,
                &HealthUpdate::Success {
                    stream: Stream::Signins,
                    at: t(20),
                    newest_event: Some(t(15)),
                    throttled: false,
                }
            )
        );
        assert_eq!(h2.state, HealthState::Healthy);
        assert_eq!(
            h2.last_error_kind,
            Some(crate::health::FailureKind::Throttled)
        );
        assert_eq!(s.get("t1").await.unwrap().unwrap().health, h2);
        assert!(matches!(
            s.update_health(
                "nope",
                &HealthUpdate::Success {
                    stream: Stream::Signins,
                    at: t(0),
                    newest_event: None,
                    throttled: false
                }
            )
            .await,
            Err(StoreError::UnknownTenant(_))
        ));
    }

    #[tokio::test]
    async fn corrupt_rows_are_reported_as_corrupt() {
        let s = SqliteStore::in_memory().unwrap();
        s.insert(&tenant("t1", None)).await.unwrap();
        s.commit("t1", Stream::Signins, None, &json!({}))
            .await
            .unwrap();
        s.run(|conn| {
            conn.execute_batch(
                "UPDATE tenants SET health = 'not json';
                 UPDATE cursors SET doc = '{broken';",
            )
            .map_err(|e| backend("test", &e))
        })
        .await
        .unwrap();
        assert!(matches!(s.get("t1").await, Err(StoreError::Corrupt(_))));
        assert!(matches!(s.list().await, Err(StoreError::Corrupt(_))));
        assert!(matches!(
            s.load("t1", Stream::Signins).await,
            Err(StoreError::Corrupt(_))
        ));
        let err = s
            .update_health(
                "t1",
                &HealthUpdate::Success {
                    stream: Stream::Signins,
                    at: t(0),
                    newest_event: None,
                    throttled: false,
                },
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(m) if !m.contains("not json")));
    }
}
