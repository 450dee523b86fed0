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
//! What the next diff needs is kept in two places, so that a 10,000-user tenant never puts
//! unbounded data in one stored item:
//! - the cursor ([`SnapshotCursor`], small): the source's state (a delta or paging token, or
//!   its own progress), the number of the round in progress, and what could not be read;
//! - the inventory store ([`InventoryStore`], one entry per object): its digest, the round
//!   that last saw it, and its summary tags. A full snapshot marks every object it reads with
//!   the round; when the round completes, the objects the round did not mark are gone.
//!
//! Order of one part: read → diff → deliver events → write the objects' entries → (at the end
//! of a round) write the summary and the daily billable count → commit the cursor with its
//! compare-and-set. A crash anywhere re-reads the part: events are sent again (at least once),
//! entries already written make the objects `Unchanged`, never lost.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{PollContext, PollError, PollJob, PollOutcome, Step, hook};
use crate::batch::{BatchLimits, into_envelopes};
use crate::client::Tenant;
use crate::cursor::{CursorError, secs};
use crate::inventory::{Degradation, InventoryStore, Known, Summary};
use crate::ocsf::NormalizeOptions;
use crate::source::{Change, SnapshotItem, SnapshotRead, SnapshotSource};
use crate::store::{DeadLetter, StoreError};

/// The stored position of one (tenant, snapshot stream). Small: the objects themselves are in
/// the [`InventoryStore`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SnapshotCursor {
    /// Document format ([`SnapshotCursor::FORMAT`]).
    pub format: u32,
    /// The source's state: where to continue a snapshot, or what to ask changes since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<Value>,
    /// The full snapshot round in progress, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round: Option<u64>,
    /// Rounds started so far (the next round is `rounds + 1`).
    #[serde(default)]
    pub rounds: u64,
    /// When the last snapshot (or delta) completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_complete: Option<DateTime<Utc>>,
    /// What the round in progress could not read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub degraded: Vec<Degradation>,
    /// Whether a full snapshot completed once: until then, objects are the baseline
    /// ([`Change::Baseline`]), not changes.
    #[serde(default)]
    pub baselined: bool,
}

/// What applying one read changed.
#[derive(Debug, Default)]
pub struct Applied {
    /// Each object with how it changed.
    pub changes: Vec<(SnapshotItem, Change)>,
    /// Entries to write.
    pub put: Vec<(String, Known)>,
    /// Entries to delete.
    pub remove: Vec<String>,
    /// Whether a snapshot (or delta) completed with this read.
    pub completed: bool,
}

impl SnapshotCursor {
    /// Current document format.
    pub const FORMAT: u32 = 2;

    /// A new cursor.
    pub fn new() -> Self {
        SnapshotCursor {
            format: Self::FORMAT,
            ..SnapshotCursor::default()
        }
    }

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

    /// Applies one read to the cursor and to `known` (the objects of the inventory, updated
    /// in place): returns each object with how it changed and the entries to write.
    pub fn apply(
        &mut self,
        known: &mut HashMap<String, Known>,
        read: SnapshotRead,
        degraded: Vec<Degradation>,
        now: DateTime<Utc>,
    ) -> Applied {
        let mut out = Applied::default();
        for d in degraded {
            if !self.degraded.iter().any(|x| x.what == d.what) {
                self.degraded.push(d);
            }
        }
        match read {
            SnapshotRead::Full {
                items,
                state,
                complete,
            } => {
                let round = match self.round {
                    Some(r) => r,
                    None => {
                        self.rounds += 1;
                        self.round = Some(self.rounds);
                        self.rounds
                    }
                };
                for item in items {
                    let entry = Known {
                        digest: item.digest,
                        round,
                        tags: item.tags.clone(),
                    };
                    let change = match known.get(&item.id) {
                        None if !self.baselined => Change::Baseline,
                        None => Change::Appeared,
                        Some(k) if k.digest != item.digest => Change::Changed,
                        Some(_) => Change::Unchanged,
                    };
                    if known.get(&item.id) != Some(&entry) {
                        known.insert(item.id.clone(), entry.clone());
                        out.put.push((item.id.clone(), entry));
                    }
                    out.changes.push((item, change));
                }
                self.state = state;
                if complete {
                    let mut gone: Vec<String> = known
                        .iter()
                        .filter(|(_, k)| k.round != round)
                        .map(|(id, _)| id.clone())
                        .collect();
                    gone.sort_unstable();
                    for id in gone {
                        known.remove(&id);
                        out.remove.push(id.clone());
                        out.changes.push((disappeared(id), Change::Disappeared));
                    }
                    self.round = None;
                    self.last_complete = Some(now);
                    self.baselined = true;
                    out.completed = true;
                }
            }
            SnapshotRead::Unavailable => {
                self.round = None;
                self.last_complete = Some(now);
                out.completed = true;
            }
            SnapshotRead::Delta {
                changed,
                removed,
                state,
            } => {
                let round = self.rounds;
                for item in changed {
                    let entry = Known {
                        digest: item.digest,
                        round,
                        tags: item.tags.clone(),
                    };
                    let change = match known.get(&item.id) {
                        None if !self.baselined => Change::Baseline,
                        None => Change::Appeared,
                        Some(k) if k.digest != item.digest => Change::Changed,
                        Some(k) => {
                            if k.tags != entry.tags {
                                known.insert(item.id.clone(), entry.clone());
                                out.put.push((item.id.clone(), entry));
                            }
                            continue;
                        }
                    };
                    known.insert(item.id.clone(), entry.clone());
                    out.put.push((item.id.clone(), entry));
                    out.changes.push((item, change));
                }
                for id in removed {
                    if known.remove(&id).is_some() {
                        out.remove.push(id.clone());
                        out.changes.push((disappeared(id), Change::Disappeared));
                    }
                }
                self.state = state;
                self.last_complete = Some(now);
                out.completed = true;
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
        tags: Vec::new(),
    }
}

/// Polls one snapshot stream: reads until the snapshot is complete, the source's share of
/// this poll is read, or `deadline` comes, delivering and committing after each read.
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
        None => (None, SnapshotCursor::new()),
    };
    hook(ctx, Step::Loaded)?;
    if !cursor.due(clock.now(), ctx.config.snapshot_interval_secs) {
        out.pass_complete = true;
        return Ok(());
    }
    let inventory: &dyn InventoryStore = ctx.cursors.inventory().ok_or_else(|| {
        StoreError::Invalid("the cursor store keeps no inventory (snapshot streams)".into())
    })?;
    let mut known = inventory.known(&job.tenant_id, job.stream).await?;
    let tenant = Tenant {
        id: job.tenant_id.clone(),
        cloud: job.cloud,
    };
    let mut opts = NormalizeOptions {
        include_raw: ctx.config.include_raw,
        raw_max_bytes: ctx.config.raw_max_bytes,
        ..NormalizeOptions::new(&job.tenant_id, job.cloud)
    };
    let mut parts = 0usize;
    loop {
        if clock.now() >= deadline {
            out.stopped_at_deadline = true;
            return Ok(());
        }
        let page = match source
            .read(&ctx.client, &tenant, cursor.state.as_ref(), deadline)
            .await
        {
            Ok(p) => p,
            Err(crate::client::SourceError::DeadlineExceeded { cause }) => {
                out.stopped_at_deadline = true;
                // A poll that read nothing because throttling, timeouts or 5xx used up its
                // time did not work: its cause goes to the tenant's health.
                if parts == 0 && cause.is_some() {
                    return Err(crate::client::SourceError::DeadlineExceeded { cause }.into());
                }
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        out.requests = out.requests.saturating_add(page.cost.requests);
        out.throttled = out.throttled.saturating_add(page.cost.throttled);
        hook(ctx, Step::Fetched)?;
        let now = clock.now();
        opts.observed_at = Some(now);
        let mut next = cursor.clone();
        let applied = next.apply(&mut known, page.read, page.degraded, now);
        out.fetched += applied.changes.len();
        let mut events = Vec::new();
        let mut letters = Vec::new();
        for (item, change) in &applied.changes {
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
        if !applied.put.is_empty() || !applied.remove.is_empty() {
            inventory
                .apply(&job.tenant_id, job.stream, &applied.put, &applied.remove)
                .await?;
        }
        if applied.completed {
            let degraded = std::mem::take(&mut next.degraded);
            let summary = Summary::of(known.values(), now, degraded);
            inventory
                .put_summary(&job.tenant_id, job.stream, &summary)
                .await?;
            if let Some(tag) = source.usage_tag() {
                inventory
                    .record_usage(&job.tenant_id, now.date_naive(), summary.count(tag))
                    .await?;
            }
        }
        let doc = next.to_doc()?;
        version = Some(
            ctx.cursors
                .commit(&job.tenant_id, job.stream, version, &doc)
                .await?,
        );
        cursor = next;
        out.slices += 1;
        parts += 1;
        hook(ctx, Step::Committed)?;
        if cursor.round.is_none() {
            out.pass_complete = true;
            return Ok(());
        }
        if source.max_parts_per_poll().is_some_and(|m| parts >= m) {
            // The rest of the round is spread over the next polls.
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
            tags: vec![format!("d{digest}")],
        }
    }

    fn changes(a: &Applied) -> Vec<(String, Change)> {
        a.changes.iter().map(|(i, c)| (i.id.clone(), *c)).collect()
    }

    fn t(h: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_780_000_000 + h * 3600, 0).unwrap_or_default()
    }

    fn full(items: Vec<SnapshotItem>, state: Option<Value>, complete: bool) -> SnapshotRead {
        SnapshotRead::Full {
            items,
            state,
            complete,
        }
    }

    #[test]
    fn full_snapshots_diff_appear_change_and_disappear() {
        let mut c = SnapshotCursor::new();
        let mut known = HashMap::new();
        let first = c.apply(
            &mut known,
            full(vec![item("a", 1), item("b", 2)], None, true),
            vec![],
            t(0),
        );
        assert_eq!(
            changes(&first),
            vec![
                ("a".into(), Change::Baseline),
                ("b".into(), Change::Baseline)
            ],
            "the first snapshot is the baseline"
        );
        assert_eq!(first.put.len(), 2);
        assert!(first.completed);
        // A snapshot in two parts: b changes, a disappears, c appears.
        let part = c.apply(
            &mut known,
            full(vec![item("b", 3)], Some(serde_json::json!("page-2")), false),
            vec![],
            t(24),
        );
        assert_eq!(changes(&part), vec![("b".into(), Change::Changed)]);
        assert!(!part.completed);
        assert!(c.round.is_some() && c.due(t(24), 86_400), "in progress");
        let rest = c.apply(
            &mut known,
            full(vec![item("c", 4)], None, true),
            vec![],
            t(25),
        );
        assert_eq!(
            changes(&rest),
            vec![
                ("c".into(), Change::Appeared),
                ("a".into(), Change::Disappeared)
            ]
        );
        assert_eq!(rest.remove, vec!["a".to_string()]);
        let mut ids: Vec<_> = known.keys().cloned().collect();
        ids.sort();
        assert_eq!(ids, vec!["b", "c"]);
        assert!(!c.due(t(26), 86_400));
        assert!(c.due(t(49), 86_400));
        let again = c.apply(
            &mut known,
            full(vec![item("b", 3), item("c", 4)], None, true),
            vec![],
            t(49),
        );
        assert!(again.changes.iter().all(|(_, ch)| *ch == Change::Unchanged));
        assert_eq!(again.put.len(), 2, "the round mark moves");
    }

    #[test]
    fn a_part_read_again_after_a_crash_is_unchanged_and_costs_no_write() {
        let mut c = SnapshotCursor::new();
        let mut known = HashMap::new();
        c.apply(
            &mut known,
            full(vec![item("a", 1)], None, true),
            vec![],
            t(0),
        );
        // Round 2, first part read and its entries written; the cursor commit is lost.
        let before = c.clone();
        let p = c.apply(
            &mut known,
            full(vec![item("a", 2)], Some(serde_json::json!(1)), false),
            vec![],
            t(24),
        );
        assert_eq!(changes(&p), vec![("a".into(), Change::Changed)]);
        let mut c = before;
        let again = c.apply(
            &mut known,
            full(vec![item("a", 2)], Some(serde_json::json!(1)), false),
            vec![],
            t(24),
        );
        assert_eq!(changes(&again), vec![("a".into(), Change::Unchanged)]);
        assert!(again.put.is_empty());
    }

    #[test]
    fn deltas_report_only_what_changed() {
        let mut c = SnapshotCursor::new();
        let mut known = HashMap::new();
        c.apply(
            &mut known,
            full(
                vec![item("a", 1), item("b", 2)],
                Some(serde_json::json!("delta-1")),
                true,
            ),
            vec![],
            t(0),
        );
        let d = c.apply(
            &mut known,
            SnapshotRead::Delta {
                changed: vec![item("a", 1), item("b", 5), item("x", 9)],
                removed: vec!["a".into(), "never-known".into()],
                state: Some(serde_json::json!("delta-2")),
            },
            vec![],
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
        assert_eq!(d.remove, vec!["a".to_string()]);
        let doc = c.to_doc().unwrap_or_default();
        assert_eq!(SnapshotCursor::from_doc(&doc).ok(), Some(c.clone()));
        let mut old = c.clone();
        old.format = 1;
        let doc = old.to_doc().unwrap_or_default();
        assert!(
            SnapshotCursor::from_doc(&doc).is_err(),
            "format 1 is refused"
        );
    }

    #[test]
    fn an_unavailable_read_keeps_what_is_known_until_the_next_interval() {
        let mut c = SnapshotCursor::new();
        let mut known = HashMap::new();
        c.apply(
            &mut known,
            full(vec![item("a", 1)], None, true),
            vec![],
            t(0),
        );
        let u = c.apply(&mut known, SnapshotRead::Unavailable, vec![], t(24));
        assert!(u.changes.is_empty() && u.remove.is_empty() && u.completed);
        assert_eq!(known.len(), 1);
        assert!(!c.due(t(25), 86_400));
        // Never baselined (unavailable from the start): the first real round is the baseline.
        let mut c = SnapshotCursor::new();
        let mut known = HashMap::new();
        c.apply(&mut known, SnapshotRead::Unavailable, vec![], t(0));
        let first = c.apply(
            &mut known,
            full(vec![item("a", 1)], None, true),
            vec![],
            t(24),
        );
        assert_eq!(changes(&first), vec![("a".into(), Change::Baseline)]);
    }

    #[test]
    fn degradations_are_kept_once_per_capability() {
        let mut c = SnapshotCursor::new();
        let mut known = HashMap::new();
        let d = || Degradation {
            what: "signInActivity".into(),
            reason: "licence_required".into(),
            lost: "last sign-in".into(),
        };
        c.apply(
            &mut known,
            full(vec![], Some(serde_json::json!(1)), false),
            vec![d()],
            t(0),
        );
        c.apply(&mut known, full(vec![], None, false), vec![d()], t(0));
        assert_eq!(c.degraded.len(), 1);
    }
}
