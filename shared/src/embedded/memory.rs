//! In-memory sinks for tests and the simulator demo.
//!
//! These are real implementations of [`EventSink`] and [`DeadLetterSink`] that keep what they
//! receive in memory (nothing survives the process), not mocks of the production sinks. Tests
//! can make the next sends fail ([`MemorySink::fail_next`]) to exercise the poller's
//! "no cursor commit without delivery" path.

use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use crate::store::{DeadLetter, DeadLetterSink, Envelope, EventSink, SinkError};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::Stream;
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
