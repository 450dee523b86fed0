//! The boundaries to storage and delivery, each a narrow trait with an embedded
//! implementation (`crate::embedded`) and an AWS one (functions crates).
//!
//! Contracts:
//! - [`CursorStore::commit`] is a compare-and-set on a version: it succeeds only if the stored
//!   version equals `expected` (`None` = no cursor yet) and then stores version `expected + 1`.
//!   A lost race is [`StoreError::Conflict`], never an overwrite.
//! - [`EventSink::send`] returns only once every event in the batch is durable downstream (or
//!   reports which were not). The poller commits a cursor only after that.
//! - [`TenantRegistry`] holds tenants, their cloud, credential reference, streams and health.
//!   A tenant id, a verified domain ([`domain_key`]) and an organization ([`org_key`]) each
//!   belong to at most one tenant; a change that would share one is refused with
//!   [`StoreError::Invalid`] and writes nothing.
//!
//! Every implementation (`crate::embedded`'s SQLite and memory stores, the DynamoDB adapters)
//! is held to these contracts by one test suite (`tests/aws/src/contract.rs`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::cloud::Cloud;
use crate::stream::Stream;

pub use crate::health::{
    FailureKind, Health, HealthState, HealthUpdate, StreamHealth, apply_health,
};

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Compare-and-set lost: someone else committed first.
    #[error("cursor for {tenant}/{stream} changed concurrently (expected version {expected:?})")]
    Conflict {
        /// Tenant id.
        tenant: String,
        /// Stream.
        stream: Stream,
        /// The version this writer expected.
        expected: Option<u64>,
    },
    /// No such tenant.
    #[error("tenant {0} is not registered")]
    UnknownTenant(String),
    /// A tenant id or domain already registered, or an invalid record.
    #[error("invalid registry change: {0}")]
    Invalid(String),
    /// The backend failed (I/O, database, network). Retryable.
    #[error("storage backend failed: {0}")]
    Backend(String),
    /// Stored data could not be decoded.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether retrying the same operation may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Backend(_))
    }
}

/// A stored cursor: an opaque JSON document and its version.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCursor {
    /// The cursor document (see `crate::cursor::Cursor`).
    pub doc: serde_json::Value,
    /// Version for compare-and-set; the first committed version is 1.
    pub version: u64,
}

/// Per (tenant, stream) cursors with versioned compare-and-set.
#[async_trait]
pub trait CursorStore: Send + Sync {
    /// Loads the cursor, or `None` if the stream was never committed.
    async fn load(&self, tenant: &str, stream: Stream) -> Result<Option<StoredCursor>, StoreError>;
    /// Stores `doc` if the current version is `expected`; returns the new version.
    async fn commit(
        &self,
        tenant: &str,
        stream: Stream,
        expected: Option<u64>,
        doc: &serde_json::Value,
    ) -> Result<u64, StoreError>;
    /// Deletes every cursor of a tenant, and no other tenant's (offboarding with purge). A
    /// tenant without cursors is not an error.
    async fn purge(&self, tenant: &str) -> Result<(), StoreError>;

    /// The per-object store of the inventory streams kept beside these cursors, if this
    /// store has one (`crate::inventory`).
    fn inventory(&self) -> Option<&dyn crate::inventory::InventoryStore> {
        None
    }

    /// Where this store keeps seen-set pages beside the cursors (`cursor/pages.rs`), if it
    /// does. Without them a busy stream's oldest buckets keep only their counts (more
    /// duplicates, never a loss).
    fn seen_pages(&self) -> Option<&dyn crate::cursor::SeenPages> {
        None
    }
}

/// A registered tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantRecord {
    /// Tenant GUID (lowercase).
    pub tenant_id: String,
    /// A verified domain, if known.
    pub domain: Option<String>,
    /// The customer organization this tenant maps to (one tenant, one organization).
    pub org: Option<String>,
    /// The tenant's national cloud.
    pub cloud: Cloud,
    /// Reference to the app credential (a name in the credentials file, or a secret ARN).
    pub app_ref: String,
    /// Streams polled for this tenant.
    pub streams: Vec<Stream>,
    /// Whether to read non-interactive / service-principal / managed-identity sign-ins (beta).
    pub include_noninteractive: bool,
    /// Whether polling is enabled (false after offboarding).
    pub enabled: bool,
    /// Health.
    pub health: Health,
    /// When the tenant was registered.
    pub created_at: DateTime<Utc>,
}

impl TenantRecord {
    /// Checks what every registry refuses to store: an empty tenant id, and a domain or an
    /// organization that is empty or blank (a tenant without one has `None`).
    pub fn validate(&self) -> Result<(), StoreError> {
        if self.tenant_id.trim().is_empty() {
            return Err(StoreError::Invalid("tenant id is empty".to_string()));
        }
        if self.domain.as_deref().is_some_and(|d| d.trim().is_empty()) {
            return Err(StoreError::Invalid(format!(
                "tenant {}: domain is empty (use none)",
                self.tenant_id
            )));
        }
        if self.org.as_deref().is_some_and(|o| o.trim().is_empty()) {
            return Err(StoreError::Invalid(format!(
                "tenant {}: organization is empty (use none)",
                self.tenant_id
            )));
        }
        Ok(())
    }
}

/// What makes two verified domains the same for uniqueness: ASCII case is ignored (DNS names).
pub fn domain_key(domain: &str) -> String {
    domain.to_ascii_lowercase()
}

/// What makes two organizations the same for uniqueness: surrounding white space and ASCII
/// case are ignored (as the onboarding commands compare them).
pub fn org_key(org: &str) -> String {
    org.trim().to_ascii_lowercase()
}

/// The tenant registry.
///
/// Uniqueness: a tenant id, a domain (compared by [`domain_key`]) and an organization
/// (compared by [`org_key`]) belong to at most one tenant. [`TenantRegistry::insert`] and
/// [`TenantRegistry::update`] refuse a record that would share one with another tenant, or
/// that fails [`TenantRecord::validate`], with [`StoreError::Invalid`] (its message names the
/// field and the tenant holding it, never the value), and then write nothing. Deleting a
/// tenant, or changing its domain or organization, frees the old ones.
#[async_trait]
pub trait TenantRegistry: Send + Sync {
    /// All tenants (enabled or not), ordered by tenant id.
    async fn list(&self) -> Result<Vec<TenantRecord>, StoreError>;
    /// One tenant.
    async fn get(&self, tenant_id: &str) -> Result<Option<TenantRecord>, StoreError>;
    /// Registers a new tenant; refuses an id, domain or organization already registered.
    async fn insert(&self, record: &TenantRecord) -> Result<(), StoreError>;
    /// Replaces a tenant's record; an unknown tenant is [`StoreError::UnknownTenant`], a
    /// domain or organization another tenant holds is refused.
    async fn update(&self, record: &TenantRecord) -> Result<(), StoreError>;
    /// Applies a health update atomically (concurrent updates are all applied, none lost)
    /// and returns the new health; an unknown tenant is [`StoreError::UnknownTenant`].
    async fn update_health(
        &self,
        tenant_id: &str,
        update: &HealthUpdate,
    ) -> Result<Health, StoreError>;
    /// Removes a tenant from the registry entirely (an unknown tenant is
    /// [`StoreError::UnknownTenant`]); its cursors stay until [`CursorStore::purge`].
    async fn delete(&self, tenant_id: &str) -> Result<(), StoreError>;
    /// Sets (validated) or removes the organization's contact address, who receives the
    /// tenant's assessment report by email (the AWS report function). Every registry keeps
    /// it; deleting the tenant deletes it.
    async fn set_contact(&self, tenant_id: &str, contact: Option<&str>) -> Result<(), StoreError>;
}

/// Failures delivering events.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Some events could not be delivered after retries; nothing may be committed.
    #[error("{failed} of {total} messages could not be delivered")]
    Partial {
        /// Messages that failed.
        failed: usize,
        /// Messages in the batch.
        total: usize,
    },
    /// The sink is unavailable.
    #[error("event sink failed: {0}")]
    Backend(String),
}

/// A message for the events queue: an envelope with schema version, tenant, stream, events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Envelope schema version.
    pub envelope_version: u32,
    /// OCSF version of the events.
    pub ocsf_version: String,
    /// Tenant GUID.
    pub tenant_id: String,
    /// Stream the events came from.
    pub stream: Stream,
    /// The OCSF events.
    pub events: Vec<serde_json::Value>,
}

/// Where normalized events go (SQS, NDJSON files).
#[async_trait]
pub trait EventSink: Send + Sync {
    /// Delivers every envelope durably, or fails saying how many did not make it.
    async fn send(&self, envelopes: &[Envelope]) -> Result<(), SinkError>;
}

/// A raw record that could not be normalized, kept for inspection. Its content stays here and
/// never reaches logs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Tenant GUID.
    pub tenant_id: String,
    /// Stream.
    pub stream: Stream,
    /// Why normalization failed (names a field, never a value).
    pub reason: String,
    /// The raw Microsoft record.
    pub record: serde_json::Value,
    /// When it was set aside.
    pub at: DateTime<Utc>,
}

/// Where records that cannot be normalized go.
#[async_trait]
pub trait DeadLetterSink: Send + Sync {
    /// Stores the dead letters durably.
    async fn put(&self, letters: &[DeadLetter]) -> Result<(), SinkError>;
}
