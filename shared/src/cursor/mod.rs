//! Cursors: where each (tenant, stream) of a time-windowed source stands, what to read next,
//! and what was already sent.
//!
//! The rules are in `cursor.md` beside this file. In short: a regular pass re-reads a short
//! lookback on every poll, a sweep re-reads the horizon once per sweep interval, passes are
//! cut into bucket-aligned slices committed one by one after delivery, and a compact seen set
//! (count + 32-bit fingerprints per time bucket) filters what was already emitted.
//!
//! - [`config`]: the tunables, validated once at startup.
//! - [`passes`]: the regular pass, sweeps, backfills and their slices.
//! - [`seen`]: the seen set.
//! - [`pages`]: seen-set buckets kept outside the cursor document.

pub mod config;
pub mod pages;
pub mod passes;
pub mod seen;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use config::{ConfigError, CursorConfig, check_range, secs};
pub use pages::{MemoryPages, SeenPage, SeenPages};
pub use passes::{Pass, PassKind, Slice};
pub use seen::{Bucket, Key, SeenSet, align_down, fingerprint};

/// What a commit does with the store's seen pages ([`Cursor::prune_paged`]).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PageWork {
    /// Pages to write before the cursor that refers to them is committed.
    pub put: Vec<SeenPage>,
    /// Pages `(source, bucket)` the cursor no longer refers to: deleted after the commit.
    pub delete: Vec<(String, i64)>,
}

/// The stored position of one (tenant, stream).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Cursor document format.
    pub format: u32,
    /// Upper bound of the last completed pass.
    pub watermark: DateTime<Utc>,
    /// When the last completed sweep (recent or deep) started.
    pub last_sweep_start: Option<DateTime<Utc>>,
    /// When the last completed deep sweep started. `None` in cursors written before sweeps
    /// were age-weighted (all their sweeps were deep: `last_sweep_start` stands in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_deep_sweep_start: Option<DateTime<Utc>>,
    /// The regular pass in progress, if one was interrupted (or the first pass of a stream).
    pub pass: Option<Pass>,
    /// The sweep in progress. It runs after the regular pass, with whatever time a poll has
    /// left, so a long sweep never holds back fresh events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sweep: Option<Pass>,
    /// Seen sets per source (e.g. `signins.interactive`).
    pub sources: BTreeMap<String, SeenSet>,
    /// Lower bound of the stream's first pass: no pass reaches further back (the first poll's
    /// `initial_lookback_secs` decides how much history a stream starts with).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<DateTime<Utc>>,
}

/// Why a cursor change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    /// A field would move backwards.
    #[error("cursor would move backwards: {0}")]
    Backwards(&'static str),
    /// The stored document is not a cursor.
    #[error("stored cursor is unreadable: {0}")]
    Unreadable(String),
    /// The cursor could not be encoded (never committed).
    #[error("cursor could not be encoded: {0}")]
    Unencodable(String),
}

impl Cursor {
    /// Current document format.
    pub const FORMAT: u32 = 1;

    /// Decodes a stored document.
    pub fn from_doc(doc: &serde_json::Value) -> Result<Self, CursorError> {
        let c: Cursor = serde_json::from_value(doc.clone())
            .map_err(|e| CursorError::Unreadable(e.to_string()))?;
        if c.format != Self::FORMAT {
            return Err(CursorError::Unreadable(format!(
                "unknown cursor format {}",
                c.format
            )));
        }
        Ok(c)
    }

    /// Encodes for storage. Fails rather than produce a document [`Cursor::from_doc`] could
    /// not read back: an unreadable cursor must never be committed.
    pub fn to_doc(&self) -> Result<serde_json::Value, CursorError> {
        serde_json::to_value(self).map_err(|e| CursorError::Unencodable(e.to_string()))
    }

    /// Whether this cursor promises an event at `at` (on the window axis) that became visible
    /// at `visible`: a sweep that started after it became visible has completed and reached
    /// back far enough (`cursor.md`, the no-loss argument). Such an event was delivered, or
    /// it is lost.
    pub fn promises(&self, at: DateTime<Utc>, visible: DateTime<Utc>, cfg: &CursorConfig) -> bool {
        let delay = visible - at;
        let after = |start: Option<DateTime<Utc>>| start.is_some_and(|s| visible <= s);
        (delay <= secs(cfg.recent_horizon()) && after(self.last_sweep_start))
            || (delay <= secs(cfg.horizon_secs) && after(self.last_deep_start()))
    }

    /// The earliest time any future pass may read: seen-set buckets before it can go.
    pub fn keep_from(&self, cfg: &CursorConfig) -> DateTime<Utc> {
        let mut t = self.watermark - secs(cfg.lookback_secs);
        // The next deep sweep reaches furthest: the last deep start minus the horizon (a
        // recent sweep's lower bound is never earlier).
        let deep_from = self.last_deep_start().unwrap_or(self.watermark) - secs(cfg.horizon_secs);
        let recent_from =
            self.last_sweep_start.unwrap_or(self.watermark) - secs(cfg.recent_horizon());
        t = t.min(deep_from).min(recent_from);
        // A pass in progress resumes from `done_until`: what it has read before is needed
        // again only by the lookback and the next sweep (covered above).
        for p in self.pass.iter().chain(self.sweep.iter()) {
            t = t.min(p.done_until);
        }
        align_down(t, cfg.bucket_secs)
    }

    /// Prunes every seen set to what future passes can still need, then drops fingerprints
    /// of the oldest buckets, across all sources, until the seen sets fit in `max_seen_bytes`
    /// of the cursor document. For a store without seen pages.
    pub fn prune(&mut self, cfg: &CursorConfig) {
        self.prune_with(cfg, false);
    }

    /// Like [`Cursor::prune`], but the oldest buckets move to seen pages instead of losing
    /// their fingerprints. Returns the pages to write before committing this cursor (new and
    /// changed ones) and those to delete after; every paged bucket is left unloaded.
    pub fn prune_paged(&mut self, cfg: &CursorConfig) -> PageWork {
        self.prune_with(cfg, true)
    }

    fn prune_with(&mut self, cfg: &CursorConfig, paging: bool) -> PageWork {
        let mut work = PageWork::default();
        let keep = self.keep_from(cfg);
        for (name, s) in &mut self.sources {
            for idx in s.drop_before(keep, cfg.bucket_secs) {
                work.delete.push((name.clone(), idx));
            }
        }
        let mut total: usize = self.sources.values().map(SeenSet::doc_bytes).sum();
        if total > cfg.max_seen_bytes {
            let mut oldest: Vec<(i64, String)> = self
                .sources
                .iter()
                .flat_map(|(name, s)| {
                    s.buckets
                        .iter()
                        .filter(|(_, b)| !b.paged && b.fps.is_some())
                        .map(move |(idx, _)| (*idx, name.clone()))
                })
                .collect();
            oldest.sort_unstable();
            for (idx, name) in oldest {
                if total <= cfg.max_seen_bytes {
                    break;
                }
                if let Some(b) = self
                    .sources
                    .get_mut(&name)
                    .and_then(|s| s.buckets.get_mut(&idx))
                {
                    let before = b.doc_bytes();
                    if paging {
                        b.paged = true;
                        b.dirty = true;
                    } else {
                        b.fps = None;
                    }
                    total = total.saturating_sub(before.saturating_sub(b.doc_bytes()));
                }
            }
        }
        if paging {
            for (name, s) in &mut self.sources {
                for (idx, b) in s.buckets.iter_mut().filter(|(_, b)| b.paged) {
                    let fps = b.fps.take();
                    // The count lives in the page too: unloaded, the bucket is what a freshly
                    // decoded cursor holds (count-less), so a page that cannot be read back
                    // re-emits its bucket rather than hiding new records behind an old count.
                    b.count = 0;
                    if let Some(fps) = fps.filter(|_| b.dirty) {
                        work.put.push(SeenPage {
                            source: name.clone(),
                            bucket: *idx,
                            fps,
                        });
                    }
                    b.dirty = false;
                }
            }
        }
        work
    }

    /// Refuses a change that would move any position backwards relative to `old`.
    pub fn check_advance(old: Option<&Cursor>, new: &Cursor) -> Result<(), CursorError> {
        let Some(old) = old else { return Ok(()) };
        if new.watermark < old.watermark {
            return Err(CursorError::Backwards("watermark"));
        }
        if new.last_sweep_start < old.last_sweep_start {
            return Err(CursorError::Backwards("last_sweep_start"));
        }
        if new.last_deep_sweep_start < old.last_deep_sweep_start {
            return Err(CursorError::Backwards("last_deep_sweep_start"));
        }
        for (o, n, what) in [
            (&old.pass, &new.pass, "pass.done_until"),
            (&old.sweep, &new.sweep, "sweep.done_until"),
        ] {
            if let (Some(o), Some(n)) = (o, n)
                && n.started == o.started
                && n.done_until < o.done_until
            {
                return Err(CursorError::Backwards(what));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeDelta, TimeZone};

    fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, 1, h, m, s)
            .single()
            .unwrap_or_default()
    }

    fn cfg() -> CursorConfig {
        CursorConfig::default()
    }

    #[test]
    fn a_cursor_round_trips_through_its_document() {
        let c = Cursor::begin(None, t(12, 0, 0), t(0, 0, 0), &cfg());
        let doc = c.to_doc().unwrap_or_default();
        assert_eq!(Cursor::from_doc(&doc).ok(), Some(c));
        assert!(matches!(
            Cursor::from_doc(&serde_json::json!({"format": 2})),
            Err(CursorError::Unreadable(_))
        ));
    }

    #[test]
    fn the_size_bound_is_shared_across_sources_oldest_first() {
        let cfg = CursorConfig {
            max_seen_bytes: 10_000,
            ..cfg()
        };
        let mut c = Cursor::begin(None, t(23, 0, 0), t(0, 0, 0) - TimeDelta::days(30), &cfg);
        let ids: Vec<String> = (0..1500).map(|i| format!("busy-{i}")).collect();
        let busy: Vec<Key<'_>> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| Key {
                id,
                time: t(0, 0, 0) + TimeDelta::seconds(i as i64 * 6),
            })
            .collect();
        let quiet = [Key {
            id: "quiet-1",
            time: t(22, 0, 0),
        }];
        let all: Vec<usize> = (0..busy.len()).collect();
        let (lo, hi) = (t(0, 0, 0), t(23, 0, 0));
        c.sources
            .entry("busy".into())
            .or_default()
            .record(&busy, &all, lo, hi, &cfg);
        c.sources
            .entry("quiet".into())
            .or_default()
            .record(&quiet, &[0], lo, hi, &cfg);
        c.prune(&cfg);
        let total: usize = c.sources.values().map(SeenSet::doc_bytes).sum();
        assert!(total <= 10_000, "{total}");
        // The bound is on the document: what is serialized is no larger.
        let doc = serde_json::to_string(&c.sources).unwrap();
        assert!(doc.len() <= total, "{} > {total}", doc.len());
        // The busy source gave up its oldest buckets; the quiet one kept its recent bucket,
        // and the busy source still uses most of the budget rather than half.
        assert_eq!(c.sources["quiet"].fingerprint_bytes(), 4);
        assert!(c.sources["busy"].fingerprint_bytes() > 2000);
    }

    fn busy_cursor(cfg: &CursorConfig, n: usize) -> (Cursor, Vec<String>) {
        let c = Cursor::begin(None, t(23, 0, 0), t(0, 0, 0) - TimeDelta::days(30), cfg);
        (c, (0..n).map(|i| format!("busy-{i}")).collect())
    }

    fn keys_of(ids: &[String]) -> Vec<Key<'_>> {
        ids.iter()
            .enumerate()
            .map(|(i, id)| Key {
                id,
                time: t(0, 0, 0) + TimeDelta::seconds(i as i64 * 6),
            })
            .collect()
    }

    #[test]
    fn paging_moves_the_oldest_fingerprints_out_of_the_document_and_back() {
        let cfg = CursorConfig {
            max_seen_bytes: 10_000,
            ..cfg()
        };
        let (mut c, ids) = busy_cursor(&cfg, 1500);
        let keys = keys_of(&ids);
        let all: Vec<usize> = (0..keys.len()).collect();
        let (lo, hi) = (t(0, 0, 0), t(3, 0, 0));
        let seen = c.sources.entry("busy".into()).or_default();
        seen.record(&keys, &all, lo, hi, &cfg);
        let before = seen.clone();
        let work = c.prune_paged(&cfg);
        // The document fits; nothing lost its fingerprints: every bucket is inline or paged.
        let total: usize = c.sources.values().map(SeenSet::doc_bytes).sum();
        assert!(total <= 10_000, "{total}");
        assert!(!work.put.is_empty() && work.delete.is_empty());
        let s = &c.sources["busy"];
        for (idx, b) in &s.buckets {
            if b.paged {
                assert!(b.fps.is_none(), "paged buckets are left unloaded");
                let page = work.put.iter().find(|p| p.bucket == *idx).unwrap();
                assert_eq!(Some(&page.fps), before.buckets[idx].fps.as_ref());
            } else {
                assert_eq!(b.fps, before.buckets[idx].fps);
            }
        }
        // The oldest went first.
        let first_inline = s.buckets.iter().find(|(_, b)| !b.paged).map(|(i, _)| *i);
        let last_paged = s
            .buckets
            .iter()
            .rev()
            .find(|(_, b)| b.paged)
            .map(|(i, _)| *i);
        assert!(last_paged < first_inline);
        // The document round-trips with its paged buckets (whose counts live in the pages).
        let doc = c.to_doc().unwrap();
        let back = Cursor::from_doc(&doc).unwrap();
        assert_eq!(
            back.sources["busy"].buckets.len(),
            c.sources["busy"].buckets.len()
        );
        // Paged buckets are left exactly as a decoded cursor holds them (count-less and
        // unloaded), so the rest of a poll filters as the next poll would.
        assert_eq!(back, c);
        assert!(serde_json::to_string(&doc).unwrap().len() <= total + 512);

        // Unchanged pages are not written again; a re-read of a loaded page rewrites it.
        assert!(c.prune_paged(&cfg).put.is_empty());
        let page = &work.put[0];
        let b = c
            .sources
            .get_mut("busy")
            .unwrap()
            .buckets
            .get_mut(&page.bucket)
            .unwrap();
        b.fps = Some(page.fps.clone());
        let idx = page.bucket;
        let start = DateTime::from_timestamp(idx * 60, 0).unwrap();
        let end = start + TimeDelta::seconds(60);
        let in_bucket: Vec<Key<'_>> = keys
            .iter()
            .copied()
            .filter(|k| k.time >= start && k.time < end)
            .collect();
        let mut more = in_bucket.clone();
        more.push(Key {
            id: "late",
            time: start,
        });
        let s = c.sources.get_mut("busy").unwrap();
        let new = s.filter_new(&more, start, end, &cfg);
        assert_eq!(new, vec![more.len() - 1], "only the late record is new");
        s.record(&more, &new, start, end, &cfg);
        let again = c.prune_paged(&cfg);
        assert_eq!(again.put.len(), 1);
        assert_eq!(again.put[0].bucket, idx);
        assert_eq!(again.put[0].fps.len(), in_bucket.len() + 1);

        // Buckets no future pass needs are dropped, and their pages listed for deletion.
        c.pass = None;
        c.sweep = None;
        c.watermark = t(23, 0, 0) + TimeDelta::days(2);
        c.last_sweep_start = Some(c.watermark);
        let gone = c.prune_paged(&cfg);
        assert!(c.sources["busy"].buckets.is_empty());
        assert_eq!(gone.delete.len(), work.put.len());
    }
}
