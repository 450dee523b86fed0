//! The snapshot engine: one poll of a snapshot stream (an inventory: users, apps, roles, inbox
//! rules), which has no event time but a current state.
//!
//! Each poll asks the [`SnapshotSource`] for the current state (or the next part of a snapshot
//! in progress, or what changed since its delta token), compares every object's digest with
//! what the cursor knows, and emits the source's OCSF events for each object with how it
//! changed: appeared, changed, unchanged (a full snapshot re-states the inventory), or
//! disappeared (known before, absent from a complete snapshot or removed by a delta). As in the
//! windowed engine, events are delivered before the cursor moves, with a compare-and-set: a
//! crash re-reads and re-sends, never loses.
//!
//! The cursor ([`SnapshotCursor`]) keeps only what the next diff needs: a digest per known
//! object, the source's state (a delta or paging token, or its own progress), and the ids seen
//! so far in a full snapshot that spans several polls.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{PollContext, PollError, PollJob, PollOutcome, Step, hook};
use crate::batch::{BatchLimits, into_envelopes};
use crate::client::Tenant;
use crate::cursor::{CursorError, secs};
use crate::ocsf::NormalizeOptions;
use crate::source::{Change, SnapshotItem, SnapshotRead, SnapshotSource};
use crate::store::DeadLetter;

/// The stored position of one (tenant, snapshot stream).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SnapshotCursor {
    /// Document format ([`SnapshotCursor::FORMAT`]).
    pub format: u32,
    /// Digest of every object the inventory holds, by id.
    pub known: BTreeMap<String, u64>,
    /// The source's state: where to continue a snapshot, or what to ask changes since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<Value>,
    /// Ids seen so far in a full snapshot that is still in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round: Option<BTreeSet<String>>,
    /// When the last snapshot (or delta) completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_complete: Option<DateTime<Utc>>,
}

impl SnapshotCursor {
    /// Current document format.
    pub const FORMAT: u32 = 1;

    /// Decodes a stored document.
    pub fn from_doc(doc: &Value) -> Result<Self, CursorError> {
        let c: SnapshotCursor = serde_json::from_value(doc.clone())
            .map_err(|e| CursorError::Unreadable(e.to_string()))?;
        if c.format != Self::FORMAT {
            return Err(CursorError::Unreadable(format!(
                "unknown snapshot cursor format {}",
                c.format
            )));
        }
        Ok(c)
    }

    /// Encodes for storage.
    pub fn to_doc(&self) -> Result<Value, CursorError> {
        serde_json::to_value(self).map_err(|e| CursorError::Unencodable(e.to_string()))
    }

    /// Whether a new snapshot is due at `now`: none completed yet, one in progress, or the
    /// last one older than `interval_secs`.
    pub fn due(&self, now: DateTime<Utc>, interval_secs: u64) -> bool {
        self.round.is_some()
            || self
                .last_complete
                .is_none_or(|t| now - t >= secs(interval_secs))
    }

    /// Applies one read: returns each object with how it changed, and updates what is known.
    pub fn apply(&mut self, read: SnapshotRead, now: DateTime<Utc>) -> Vec<(SnapshotItem, Change)> {
        let mut out = Vec::new();
        match read {
            SnapshotRead::Full {
                items,
                state,
                complete,
            } => {
                let round = self.round.get_or_insert_with(BTreeSet::new);
                for item in items {
                    round.insert(item.id.clone());
                    let change = match self.known.insert(item.id.clone(), item.digest) {
                        None => Change::Appeared,
                        Some(d) if d != item.digest => Change::Changed,
                        Some(_) => Change::Unchanged,
                    };
                    out.push((item, change));
                }
                self.state = state;
                if complete {
                    let seen = self.round.take().unwrap_or_default();
                    let gone: Vec<String> = self
                        .known
                        .keys()
                        .filter(|id| !seen.contains(*id))
                        .cloned()
                        .collect();
                    for id in gone {
                        self.known.remove(&id);
                        out.push((disappeared(id), Change::Disappeared));
                    }
                    self.last_complete = Some(now);
                }
            }
            SnapshotRead::Delta {
                changed,
                removed,
                state,
            } => {
                for item in changed {
                    let change = match self.known.insert(item.id.clone(), item.digest) {
                        None => Change::Appeared,
                        Some(d) if d != item.digest => Change::Changed,
                        Some(_) => continue,
                    };
                    out.push((item, change));
                }
                for id in removed {
                    if self.known.remove(&id).is_some() {
                        out.push((disappeared(id), Change::Disappeared));
                    }
                }
                self.state = state;
                self.last_complete = Some(now);
            }
        }
        out
    }
}

fn disappeared(id: String) -> SnapshotItem {
    SnapshotItem {
        id,
        digest: 0,
        raw: Value::Null,
    }
}

/// Polls one snapshot stream: reads until the snapshot is complete or `deadline` comes,
/// delivering and committing after each read.
pub(super) async fn poll_snapshot(
    ctx: &PollContext,
    job: &PollJob,
    source: &dyn SnapshotSource,
    deadline: DateTime<Utc>,
    out: &mut PollOutcome,
) -> Result<(), PollError> {
    let clock = ctx.client.clock().clone();
    let stored = ctx.cursors.load(&job.tenant_id, job.stream).await?;
    let (mut version, mut cursor) = match &stored {
        Some(s) => (Some(s.version), SnapshotCursor::from_doc(&s.doc)?),
        None => (
            None,
            SnapshotCursor {
                format: SnapshotCursor::FORMAT,
                ..SnapshotCursor::default()
            },
        ),
    };
    hook(ctx, Step::Loaded)?;
    if !cursor.due(clock.now(), ctx.config.snapshot_interval_secs) {
        out.pass_complete = true;
        return Ok(());
    }
    let tenant = Tenant {
        id: job.tenant_id.clone(),
        cloud: job.cloud,
    };
    let opts = NormalizeOptions {
        include_raw: ctx.config.include_raw,
        raw_max_bytes: ctx.config.raw_max_bytes,
        ..NormalizeOptions::new(&job.tenant_id, job.cloud)
    };
    loop {
        if clock.now() >= deadline {
            out.stopped_at_deadline = true;
            return Ok(());
        }
        let read = source
            .read(&ctx.client, &tenant, cursor.state.as_ref(), deadline)
            .await?;
        hook(ctx, Step::Fetched)?;
        let now = clock.now();
        let mut next = cursor.clone();
        let changes = next.apply(read, now);
        out.fetched += changes.len();
        let mut events = Vec::new();
        let mut letters = Vec::new();
        for (item, change) in &changes {
            match source.normalize(item, *change, &opts) {
                Ok(evs) => events.extend(evs),
                Err(e) => letters.push(DeadLetter {
                    tenant_id: job.tenant_id.clone(),
                    stream: job.stream,
                    reason: e.to_string(),
                    record: item.raw.clone(),
                    at: now,
                }),
            }
        }
        let limits = BatchLimits {
            max_bytes: ctx.config.max_message_bytes,
            max_events: ctx.config.max_message_events,
        };
        let batches = into_envelopes(&job.tenant_id, job.stream, events, &limits)?;
        for o in batches.oversize {
            letters.push(o.into_dead_letter(&job.tenant_id, job.stream, now));
        }
        if !letters.is_empty() {
            ctx.dead_letters.put(&letters).await?;
        }
        if !batches.envelopes.is_empty() {
            ctx.sink.send(&batches.envelopes).await?;
        }
        out.emitted += batches
            .envelopes
            .iter()
            .map(|e| e.events.len())
            .sum::<usize>();
        out.dead_lettered += letters.len();
        hook(ctx, Step::Sent)?;
        let doc = next.to_doc()?;
        version = Some(
            ctx.cursors
                .commit(&job.tenant_id, job.stream, version, &doc)
                .await?,
        );
        cursor = next;
        out.slices += 1;
        hook(ctx, Step::Committed)?;
        if cursor.round.is_none() {
            out.pass_complete = true;
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, digest: u64) -> SnapshotItem {
        SnapshotItem {
            id: id.into(),
            digest,
            raw: serde_json::json!({"id": id}),
        }
    }

    fn changes(v: &[(SnapshotItem, Change)]) -> Vec<(String, Change)> {
        v.iter().map(|(i, c)| (i.id.clone(), *c)).collect()
    }

    fn t(h: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_780_000_000 + h * 3600, 0).unwrap_or_default()
    }

    #[test]
    fn full_snapshots_diff_appear_change_and_disappear() {
        let mut c = SnapshotCursor::default();
        let first = c.apply(
            SnapshotRead::Full {
                items: vec![item("a", 1), item("b", 2)],
                state: None,
                complete: true,
            },
            t(0),
        );
        assert_eq!(
            changes(&first),
            vec![
                ("a".into(), Change::Appeared),
                ("b".into(), Change::Appeared)
            ]
        );
        // A snapshot in two parts: b changes, a disappears, c appears.
        let part = c.apply(
            SnapshotRead::Full {
                items: vec![item("b", 3)],
                state: Some(serde_json::json!("page-2")),
                complete: false,
            },
            t(24),
        );
        assert_eq!(changes(&part), vec![("b".into(), Change::Changed)]);
        assert!(c.round.is_some() && c.due(t(24), 86_400), "in progress");
        let rest = c.apply(
            SnapshotRead::Full {
                items: vec![item("c", 4)],
                state: None,
                complete: true,
            },
            t(25),
        );
        assert_eq!(
            changes(&rest),
            vec![
                ("c".into(), Change::Appeared),
                ("a".into(), Change::Disappeared)
            ]
        );
        assert_eq!(c.known.keys().cloned().collect::<Vec<_>>(), vec!["b", "c"]);
        assert!(!c.due(t(26), 86_400));
        assert!(c.due(t(49), 86_400));
        let again = c.apply(
            SnapshotRead::Full {
                items: vec![item("b", 3), item("c", 4)],
                state: None,
                complete: true,
            },
            t(49),
        );
        assert!(again.iter().all(|(_, ch)| *ch == Change::Unchanged));
    }

    #[test]
    fn deltas_report_only_what_changed() {
        let mut c = SnapshotCursor::default();
        c.apply(
            SnapshotRead::Full {
                items: vec![item("a", 1), item("b", 2)],
                state: Some(serde_json::json!("delta-1")),
                complete: true,
            },
            t(0),
        );
        let d = c.apply(
            SnapshotRead::Delta {
                changed: vec![item("a", 1), item("b", 5), item("x", 9)],
                removed: vec!["a".into(), "never-known".into()],
                state: Some(serde_json::json!("delta-2")),
            },
            t(1),
        );
        assert_eq!(
            changes(&d),
            vec![
                ("b".into(), Change::Changed),
                ("x".into(), Change::Appeared),
                ("a".into(), Change::Disappeared)
            ]
        );
        assert_eq!(c.state, Some(serde_json::json!("delta-2")));
        let doc = c.to_doc().unwrap_or_default();
        assert_eq!(
            SnapshotCursor::from_doc(&doc).ok(),
            None,
            "format 0 is refused"
        );
        c.format = SnapshotCursor::FORMAT;
        let doc = c.to_doc().unwrap_or_default();
        assert_eq!(SnapshotCursor::from_doc(&doc).ok(), Some(c));
    }
}
