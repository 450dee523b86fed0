//! In-memory sinks and store for tests, the simulator demo and simulations.
//!
//! These are real implementations of [`EventSink`], [`DeadLetterSink`], [`CursorStore`] and
//! [`TenantRegistry`] that keep what they receive in memory (nothing survives the process),
//! not mocks of the production adapters: [`MemoryStore`] honours the same contracts as the
//! SQLite and DynamoDB stores (compare-and-set, uniqueness), checked by the same contract
//! suite. Tests can make the next sends fail ([`MemorySink::fail_next`]) to exercise the
//! poller's "no cursor commit without delivery" path.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use crate::store::{
    CursorStore, DeadLetter, DeadLetterSink, Envelope, EventSink, Health, HealthUpdate, SinkError,
    StoreError, StoredCursor, TenantRecord, TenantRegistry, apply_health, domain_key, org_key,
};
use crate::stream::Stream;

/// How an injected failure behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InjectedFailure {
    /// The sink is unavailable: nothing is stored, [`SinkError::Backend`].
    Unavailable,
    /// Every envelope but the last is stored, then [`SinkError::Partial`] reports the last as
    /// failed (a batch with one envelope stores nothing). Retrying duplicates the stored ones,
    /// as a real queue would.
    Partial,
}

#[derive(Debug, Default)]
struct Failures {
    remaining: usize,
    mode: Option<InjectedFailure>,
}

impl Failures {
    /// Consumes one injected failure, if any is pending.
    fn take(&mut self) -> Option<InjectedFailure> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        self.mode
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The data are plain vectors and counters: always consistent, even after a panic.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Debug, Default)]
struct SinkState {
    envelopes: Vec<Envelope>,
    failures: Failures,
    attempts: u64,
}

/// An [`EventSink`] that keeps envelopes in memory, in arrival order.
#[derive(Debug, Default)]
pub struct MemorySink {
    state: Mutex<SinkState>,
}

impl MemorySink {
    /// An empty sink that accepts everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next `n` calls to `send` fail with [`InjectedFailure::Unavailable`].
    pub fn fail_next(&self, n: usize) {
        self.fail_next_with(n, InjectedFailure::Unavailable);
    }

    /// Makes the next `n` calls to `send` fail as `mode` says (replacing pending failures).
    pub fn fail_next_with(&self, n: usize, mode: InjectedFailure) {
        lock(&self.state).failures = Failures {
            remaining: n,
            mode: Some(mode),
        };
    }

    /// Every envelope delivered so far.
    pub fn envelopes(&self) -> Vec<Envelope> {
        lock(&self.state).envelopes.clone()
    }

    /// Every event delivered so far, flattened in order.
    pub fn events(&self) -> Vec<serde_json::Value> {
        lock(&self.state)
            .envelopes
            .iter()
            .flat_map(|e| e.events.iter().cloned())
            .collect()
    }

    /// Number of events delivered so far.
    pub fn events_written(&self) -> u64 {
        let n: usize = lock(&self.state)
            .envelopes
            .iter()
            .map(|e| e.events.len())
            .sum();
        u64::try_from(n).unwrap_or(u64::MAX)
    }

    /// Calls to `send`, failed ones included.
    pub fn send_attempts(&self) -> u64 {
        lock(&self.state).attempts
    }

    /// Removes and returns everything delivered so far.
    pub fn take(&self) -> Vec<Envelope> {
        std::mem::take(&mut lock(&self.state).envelopes)
    }
}

#[async_trait]
impl EventSink for MemorySink {
    async fn send(&self, envelopes: &[Envelope]) -> Result<(), SinkError> {
        let mut state = lock(&self.state);
        state.attempts += 1;
        match state.failures.take() {
            None => {
                state.envelopes.extend_from_slice(envelopes);
                Ok(())
            }
            Some(InjectedFailure::Unavailable) => Err(SinkError::Backend(
                "injected failure: sink unavailable".to_string(),
            )),
            Some(InjectedFailure::Partial) => {
                let total = envelopes.len();
                let stored = total.saturating_sub(1);
                state.envelopes.extend_from_slice(&envelopes[..stored]);
                Err(SinkError::Partial {
                    failed: total - stored,
                    total,
                })
            }
        }
    }
}

#[derive(Debug, Default)]
struct DeadLetterState {
    letters: Vec<DeadLetter>,
    failures: Failures,
}

/// A [`DeadLetterSink`] that keeps dead letters in memory, in arrival order.
#[derive(Debug, Default)]
pub struct MemoryDeadLetters {
    state: Mutex<DeadLetterState>,
}

impl MemoryDeadLetters {
    /// An empty sink that accepts everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next `n` calls to `put` fail with [`SinkError::Backend`], storing nothing.
    pub fn fail_next(&self, n: usize) {
        lock(&self.state).failures = Failures {
            remaining: n,
            mode: Some(InjectedFailure::Unavailable),
        };
    }

    /// Every dead letter stored so far.
    pub fn letters(&self) -> Vec<DeadLetter> {
        lock(&self.state).letters.clone()
    }

    /// Number of dead letters stored so far.
    pub fn letters_written(&self) -> u64 {
        u64::try_from(lock(&self.state).letters.len()).unwrap_or(u64::MAX)
    }
}

#[async_trait]
impl DeadLetterSink for MemoryDeadLetters {
    async fn put(&self, letters: &[DeadLetter]) -> Result<(), SinkError> {
        let mut state = lock(&self.state);
        if state.failures.take().is_some() {
            return Err(SinkError::Backend(
                "injected failure: dead-letter sink unavailable".to_string(),
            ));
        }
        state.letters.extend_from_slice(letters);
        Ok(())
    }
}

#[derive(Debug, Default)]
struct StoreState {
    cursors: BTreeMap<(String, Stream), StoredCursor>,
    tenants: BTreeMap<String, TenantRecord>,
    contacts: BTreeMap<String, String>,
}

impl StoreState {
    /// Refuses `record` if another tenant holds its domain or organization.
    fn check_unique(&self, record: &TenantRecord) -> Result<(), StoreError> {
        let others = || {
            self.tenants
                .values()
                .filter(|t| t.tenant_id != record.tenant_id)
        };
        if let Some(d) = record.domain.as_deref().map(domain_key)
            && let Some(owner) =
                others().find(|t| t.domain.as_deref().map(domain_key).as_ref() == Some(&d))
        {
            return Err(StoreError::Invalid(format!(
                "domain of tenant {} is already registered to tenant {}",
                record.tenant_id, owner.tenant_id
            )));
        }
        if let Some(o) = record.org.as_deref().map(org_key)
            && let Some(owner) =
                others().find(|t| t.org.as_deref().map(org_key).as_ref() == Some(&o))
        {
            return Err(StoreError::Invalid(format!(
                "organization of tenant {} is already mapped to tenant {}",
                record.tenant_id, owner.tenant_id
            )));
        }
        Ok(())
    }
}

/// Cursors ([`CursorStore`]) and tenants ([`TenantRegistry`]) in memory, with the same
/// contracts as the SQLite and DynamoDB stores. Every operation holds one lock for its whole
/// read-check-write, so compare-and-set and uniqueness hold under concurrency.
///
/// Cheap to clone: clones share the data.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    state: Arc<Mutex<StoreState>>,
    pages: crate::cursor::MemoryPages,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl CursorStore for MemoryStore {
    async fn load(&self, tenant: &str, stream: Stream) -> Result<Option<StoredCursor>, StoreError> {
        Ok(lock(&self.state)
            .cursors
            .get(&(tenant.to_string(), stream))
            .cloned())
    }

    async fn commit(
        &self,
        tenant: &str,
        stream: Stream,
        expected: Option<u64>,
        doc: &serde_json::Value,
    ) -> Result<u64, StoreError> {
        let mut state = lock(&self.state);
        let key = (tenant.to_string(), stream);
        let current = state.cursors.get(&key).map(|c| c.version);
        if current != expected {
            return Err(StoreError::Conflict {
                tenant: tenant.to_string(),
                stream,
                expected,
            });
        }
        let version = match expected {
            None => 1,
            Some(v) => v
                .checked_add(1)
                .ok_or_else(|| StoreError::Invalid("cursor version exhausted".to_string()))?,
        };
        state.cursors.insert(
            key,
            StoredCursor {
                doc: doc.clone(),
                version,
            },
        );
        Ok(version)
    }

    async fn purge(&self, tenant: &str) -> Result<(), StoreError> {
        lock(&self.state).cursors.retain(|(t, _), _| t != tenant);
        self.pages.purge(tenant);
        Ok(())
    }

    fn seen_pages(&self) -> Option<&dyn crate::cursor::SeenPages> {
        Some(&self.pages)
    }
}

#[async_trait]
impl TenantRegistry for MemoryStore {
    async fn list(&self) -> Result<Vec<TenantRecord>, StoreError> {
        // A BTreeMap iterates in key order: ordered by tenant id.
        Ok(lock(&self.state).tenants.values().cloned().collect())
    }

    async fn get(&self, tenant_id: &str) -> Result<Option<TenantRecord>, StoreError> {
        Ok(lock(&self.state).tenants.get(tenant_id).cloned())
    }

    async fn insert(&self, record: &TenantRecord) -> Result<(), StoreError> {
        record.validate()?;
        let mut state = lock(&self.state);
        if state.tenants.contains_key(&record.tenant_id) {
            return Err(StoreError::Invalid(format!(
                "tenant id {} is already registered",
                record.tenant_id
            )));
        }
        state.check_unique(record)?;
        state
            .tenants
            .insert(record.tenant_id.clone(), record.clone());
        Ok(())
    }

    async fn update(&self, record: &TenantRecord) -> Result<(), StoreError> {
        record.validate()?;
        let mut state = lock(&self.state);
        if !state.tenants.contains_key(&record.tenant_id) {
            return Err(StoreError::UnknownTenant(record.tenant_id.clone()));
        }
        state.check_unique(record)?;
        state
            .tenants
            .insert(record.tenant_id.clone(), record.clone());
        Ok(())
    }

    async fn update_health(
        &self,
        tenant_id: &str,
        update: &HealthUpdate,
    ) -> Result<Health, StoreError> {
        let mut state = lock(&self.state);
        let Some(record) = state.tenants.get_mut(tenant_id) else {
            return Err(StoreError::UnknownTenant(tenant_id.to_string()));
        };
        record.health = apply_health(&record.health, update);
        Ok(record.health.clone())
    }

    async fn delete(&self, tenant_id: &str) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        match state.tenants.remove(tenant_id) {
            Some(_) => {
                state.contacts.remove(tenant_id);
                Ok(())
            }
            None => Err(StoreError::UnknownTenant(tenant_id.to_string())),
        }
    }

    async fn set_contact(&self, tenant_id: &str, contact: Option<&str>) -> Result<(), StoreError> {
        let contact = contact
            .map(crate::assess::contact::validate_contact_email)
            .transpose()
            .map_err(|e| StoreError::Invalid(format!("tenant {tenant_id}: {e}")))?;
        let mut state = lock(&self.state);
        if !state.tenants.contains_key(tenant_id) {
            return Err(StoreError::UnknownTenant(tenant_id.to_string()));
        }
        match contact {
            Some(c) => state.contacts.insert(tenant_id.to_string(), c),
            None => state.contacts.remove(tenant_id),
        };
        Ok(())
    }
}

impl MemoryStore {
    /// The contact address recorded for `tenant_id`, if any.
    pub fn contact(&self, tenant_id: &str) -> Option<String> {
        lock(&self.state).contacts.get(tenant_id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn envelope(n: i64) -> Envelope {
        Envelope {
            envelope_version: 1,
            ocsf_version: "1.8.0".into(),
            tenant_id: "t1".into(),
            stream: Stream::Signins,
            events: vec![json!({ "n": n })],
        }
    }

    #[tokio::test]
    async fn stores_and_fails_on_demand() {
        let sink = MemorySink::new();
        sink.send(&[envelope(1)]).await.unwrap();
        sink.fail_next(2);
        assert!(matches!(
            sink.send(&[envelope(2)]).await,
            Err(SinkError::Backend(_))
        ));
        assert!(sink.send(&[envelope(2)]).await.is_err());
        sink.send(&[envelope(2)]).await.unwrap();
        assert_eq!(sink.events(), vec![json!({"n": 1}), json!({"n": 2})]);
        assert_eq!(sink.send_attempts(), 4);

        sink.fail_next_with(1, InjectedFailure::Partial);
        assert!(matches!(
            sink.send(&[envelope(3), envelope(4)]).await,
            Err(SinkError::Partial {
                failed: 1,
                total: 2
            })
        ));
        assert_eq!(sink.events_written(), 3);
        assert_eq!(sink.take().len(), 3);
        assert_eq!(sink.events_written(), 0);
    }

    #[tokio::test]
    async fn dead_letters_store_and_fail_on_demand() {
        let d = MemoryDeadLetters::new();
        let letter = DeadLetter {
            tenant_id: "t1".into(),
            stream: Stream::Signins,
            reason: "missing createdDateTime".into(),
            record: json!({}),
            at: chrono::DateTime::UNIX_EPOCH,
        };
        d.fail_next(1);
        assert!(d.put(std::slice::from_ref(&letter)).await.is_err());
        d.put(std::slice::from_ref(&letter)).await.unwrap();
        assert_eq!(d.letters(), vec![letter]);
        assert_eq!(d.letters_written(), 1);
    }
}
