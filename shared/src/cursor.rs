//! Cursors: where each (tenant, stream) stands, what to read next, and what was already sent.
//!
//! The rules are in `cursor.md` beside this file. In short: a regular pass re-reads a short
//! lookback on every poll, a sweep re-reads the horizon once per sweep interval, passes are
//! cut into bucket-aligned slices committed one by one after delivery, and a compact seen set
//! (count + 32-bit fingerprints per time bucket) filters what was already emitted.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Tunables of the cursor rules. All durations in seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CursorConfig {
    /// How far each regular pass reaches back before the watermark.
    pub lookback_secs: u64,
    /// How often a sweep over the horizon starts.
    pub sweep_interval_secs: u64,
    /// How far a sweep reaches back: events visible within this delay are never lost.
    pub horizon_secs: u64,
    /// Width of a seen-set bucket; window bounds are aligned to it.
    pub bucket_secs: u64,
    /// Widest slice fetched and committed as one unit.
    pub slice_secs: u64,
    /// How far the first poll of a stream reaches back (its backfill); the tenant's retention
    /// (7 or 30 days) clamps it. Default 30 days.
    pub initial_lookback_secs: u64,
    /// Upper bound for the packed fingerprints kept in one cursor.
    pub max_seen_bytes: usize,
}

impl Default for CursorConfig {
    fn default() -> Self {
        Self {
            lookback_secs: 30 * 60,
            sweep_interval_secs: 3600,
            horizon_secs: 24 * 3600,
            bucket_secs: 60,
            slice_secs: 3 * 3600,
            initial_lookback_secs: 30 * 86_400,
            max_seen_bytes: 256 * 1024,
        }
    }
}

impl CursorConfig {
    /// Checks the values make sense together.
    pub fn validate(&self) -> Result<(), String> {
        if self.bucket_secs == 0 || self.bucket_secs > 3600 {
            return Err("bucket_secs must be between 1 and 3600".into());
        }
        if self.slice_secs < self.bucket_secs || !self.slice_secs.is_multiple_of(self.bucket_secs) {
            return Err("slice_secs must be a positive multiple of bucket_secs".into());
        }
        if self.horizon_secs < self.lookback_secs {
            return Err("horizon_secs must be at least lookback_secs".into());
        }
        if self.sweep_interval_secs == 0 || self.sweep_interval_secs > self.horizon_secs {
            return Err("sweep_interval_secs must be between 1 and horizon_secs".into());
        }
        if self.max_seen_bytes < 1024 {
            return Err("max_seen_bytes must be at least 1024".into());
        }
        Ok(())
    }

    fn bucket(&self) -> i64 {
        i64::try_from(self.bucket_secs).unwrap_or(60)
    }
}

/// A pass in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pass {
    /// Lower bound of the pass (bucket-aligned).
    pub lower: DateTime<Utc>,
    /// Upper bound of the pass (extended to `now` when resumed).
    pub upper: DateTime<Utc>,
    /// When the pass started (its first fetch).
    pub started: DateTime<Utc>,
    /// Everything in `[lower, done_until]` has been read and delivered.
    pub done_until: DateTime<Utc>,
    /// Whether this pass is a sweep over the horizon.
    pub sweep: bool,
    /// Current slice width, when narrower than `slice_secs`: halved each time a slice could
    /// not be finished within a poll, doubled back after each finished slice, so a slice
    /// always fits in a poll eventually and the pass makes progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width_secs: Option<u64>,
}

/// One bucket of the seen set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bucket {
    /// Distinct records emitted from this bucket.
    pub count: u32,
    /// Their fingerprints, sorted, or `None` once dropped to respect the size bound.
    pub fps: Option<Vec<u32>>,
}

#[derive(Serialize, Deserialize)]
struct BucketRepr {
    n: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    f: Option<String>,
}

/// What was emitted, per time bucket, for one source.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SeenSet {
    /// Buckets by index (`floor(epoch seconds / bucket_secs)`).
    pub buckets: BTreeMap<i64, Bucket>,
    /// The newest query upper bound ever used for this source.
    pub high: Option<DateTime<Utc>>,
}

#[derive(Serialize, Deserialize, Default)]
struct SeenRepr {
    #[serde(default)]
    high: Option<DateTime<Utc>>,
    #[serde(default)]
    buckets: BTreeMap<String, BucketRepr>,
}

impl Serialize for SeenSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let buckets = self
            .buckets
            .iter()
            .map(|(k, b)| {
                let f = b.fps.as_ref().map(|fps| {
                    let mut bytes = Vec::with_capacity(fps.len() * 4);
                    for fp in fps {
                        bytes.extend_from_slice(&fp.to_le_bytes());
                    }
                    B64.encode(bytes)
                });
                (k.to_string(), BucketRepr { n: b.count, f })
            })
            .collect();
        SeenRepr {
            high: self.high,
            buckets,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for SeenSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let repr = SeenRepr::deserialize(d)?;
        let mut buckets = BTreeMap::new();
        for (k, b) in repr.buckets {
            let idx: i64 = k
                .parse()
                .map_err(|_| D::Error::custom("bad bucket index"))?;
            let fps = match b.f {
                Some(f) => {
                    let bytes = B64
                        .decode(f.as_bytes())
                        .map_err(|_| D::Error::custom("bad fingerprint encoding"))?;
                    if bytes.len() % 4 != 0 {
                        return Err(D::Error::custom("bad fingerprint length"));
                    }
                    let mut v: Vec<u32> = bytes
                        .chunks_exact(4)
                        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                        .collect();
                    v.sort_unstable();
                    Some(v)
                }
                None => None,
            };
            buckets.insert(idx, Bucket { count: b.n, fps });
        }
        Ok(SeenSet {
            buckets,
            high: repr.high,
        })
    }
}

/// A record as the seen set sees it: its id and its event time.
#[derive(Debug, Clone, Copy)]
pub struct Key<'a> {
    /// Source id.
    pub id: &'a str,
    /// Event time.
    pub time: DateTime<Utc>,
}

/// The 32-bit fingerprint of a source id.
pub fn fingerprint(id: &str) -> u32 {
    let d = Sha256::digest(id.as_bytes());
    u32::from_le_bytes([d[0], d[1], d[2], d[3]])
}

fn bucket_index(t: DateTime<Utc>, bucket: i64) -> i64 {
    t.timestamp().div_euclid(bucket)
}

fn bucket_start(idx: i64, bucket: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(idx.saturating_mul(bucket), 0).unwrap_or_default()
}

/// Aligns `t` down to a bucket boundary.
pub fn align_down(t: DateTime<Utc>, bucket_secs: u64) -> DateTime<Utc> {
    let b = i64::try_from(bucket_secs).unwrap_or(60).max(1);
    bucket_start(bucket_index(t, b), b)
}

impl SeenSet {
    /// Decides which of `fetched` (one query of this source over `[lower, upper]`) are new.
    /// Returns their indices in `fetched`. Repeated ids within `fetched` count once.
    pub fn filter_new(
        &self,
        fetched: &[Key<'_>],
        lower: DateTime<Utc>,
        upper: DateTime<Utc>,
        cfg: &CursorConfig,
    ) -> Vec<usize> {
        let b = cfg.bucket();
        let mut by_bucket: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
        let mut seen_ids = std::collections::HashSet::new();
        for (i, k) in fetched.iter().enumerate() {
            if seen_ids.insert(k.id) {
                by_bucket
                    .entry(bucket_index(k.time, b))
                    .or_default()
                    .push(i);
            }
        }
        let mut new = Vec::new();
        for (idx, items) in by_bucket {
            let Some(stored) = self.buckets.get(&idx) else {
                new.extend(items);
                continue;
            };
            let complete = self.complete(idx, lower, upper, b);
            match (&stored.fps, complete) {
                (Some(fps), true) => {
                    // Compare fingerprints with multiplicity.
                    let mut groups: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
                    for i in items {
                        if let Some(k) = fetched.get(i) {
                            groups.entry(fingerprint(k.id)).or_default().push(i);
                        }
                    }
                    for (fp, group) in groups {
                        let stored_n = count_in(fps, fp);
                        if group.len() > stored_n {
                            new.extend(group);
                        }
                    }
                }
                (Some(fps), false) => {
                    for i in items {
                        if fetched
                            .get(i)
                            .is_some_and(|k| count_in(fps, fingerprint(k.id)) == 0)
                        {
                            new.push(i);
                        }
                    }
                }
                (None, true) => {
                    if items.len() > stored.count as usize {
                        new.extend(items);
                    }
                }
                (None, false) => new.extend(items),
            }
        }
        new.sort_unstable();
        new
    }

    /// Whether a query over `[lower, upper]` re-reads everything emitted from bucket `idx`.
    fn complete(&self, idx: i64, lower: DateTime<Utc>, upper: DateTime<Utc>, b: i64) -> bool {
        let start = bucket_start(idx, b);
        let end = bucket_start(idx.saturating_add(1), b);
        start >= lower && (end <= upper || self.high.is_some_and(|h| h <= upper))
    }

    /// Records a delivered query of this source over `[lower, upper]`: `fetched` is everything
    /// the query returned, and `emitted` the indices of those that were sent.
    pub fn record(
        &mut self,
        fetched: &[Key<'_>],
        emitted: &[usize],
        lower: DateTime<Utc>,
        upper: DateTime<Utc>,
        cfg: &CursorConfig,
    ) {
        let b = cfg.bucket();
        // Complete buckets become exactly what was read; others gain what was emitted.
        let mut read: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
        let mut ids = std::collections::HashSet::new();
        for k in fetched {
            if ids.insert(k.id) {
                read.entry(bucket_index(k.time, b))
                    .or_default()
                    .push(fingerprint(k.id));
            }
        }
        let mut touched: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
        for i in emitted {
            if let Some(k) = fetched.get(*i) {
                touched
                    .entry(bucket_index(k.time, b))
                    .or_default()
                    .push(fingerprint(k.id));
            }
        }
        for (idx, mut fps) in read {
            if self.complete(idx, lower, upper, b) {
                fps.sort_unstable();
                // A complete read is the truth for this bucket.
                let count = u32::try_from(fps.len()).unwrap_or(u32::MAX);
                self.buckets.insert(
                    idx,
                    Bucket {
                        count,
                        fps: Some(fps),
                    },
                );
                touched.remove(&idx);
            }
        }
        for (idx, fps) in touched {
            let bucket = self.buckets.entry(idx).or_insert_with(|| Bucket {
                count: 0,
                fps: Some(Vec::new()),
            });
            bucket.count = bucket
                .count
                .saturating_add(u32::try_from(fps.len()).unwrap_or(u32::MAX));
            if let Some(existing) = bucket.fps.as_mut() {
                existing.extend(fps);
                existing.sort_unstable();
            }
        }
        self.high = Some(self.high.map_or(upper, |h| h.max(upper)));
    }

    /// Records records emitted from a read that did not finish (a page was missing): only
    /// what was emitted is added; no bucket is treated as completely read.
    pub fn record_partial(&mut self, fetched: &[Key<'_>], emitted: &[usize], cfg: &CursorConfig) {
        let b = cfg.bucket();
        for i in emitted {
            if let Some(k) = fetched.get(*i) {
                let bucket = self
                    .buckets
                    .entry(bucket_index(k.time, b))
                    .or_insert_with(|| Bucket {
                        count: 0,
                        fps: Some(Vec::new()),
                    });
                bucket.count = bucket.count.saturating_add(1);
                if let Some(fps) = bucket.fps.as_mut() {
                    let fp = fingerprint(k.id);
                    let at = fps.partition_point(|x| *x < fp);
                    fps.insert(at, fp);
                }
            }
        }
    }

    /// Drops buckets older than `keep_from`, then fingerprints of the oldest buckets until the
    /// packed fingerprints fit in `max_bytes`.
    pub fn prune(&mut self, keep_from: DateTime<Utc>, max_bytes: usize, bucket_secs: u64) {
        let b = i64::try_from(bucket_secs).unwrap_or(60).max(1);
        let first = bucket_index(keep_from, b);
        self.buckets = self.buckets.split_off(&first);
        let mut bytes: usize = self.fingerprint_bytes();
        for bucket in self.buckets.values_mut() {
            if bytes <= max_bytes {
                break;
            }
            if let Some(fps) = bucket.fps.take() {
                bytes = bytes.saturating_sub(fps.len() * 4);
            }
        }
    }

    /// Bytes of packed fingerprints held.
    pub fn fingerprint_bytes(&self) -> usize {
        self.buckets
            .values()
            .map(|b| b.fps.as_ref().map_or(0, |f| f.len() * 4))
            .sum()
    }
}

fn count_in(sorted: &[u32], fp: u32) -> usize {
    let start = sorted.partition_point(|x| *x < fp);
    let end = sorted.partition_point(|x| *x <= fp);
    end - start
}

/// The stored position of one (tenant, stream).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Cursor document format.
    pub format: u32,
    /// Upper bound of the last completed pass.
    pub watermark: DateTime<Utc>,
    /// When the last completed sweep started.
    pub last_sweep_start: Option<DateTime<Utc>>,
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
}

/// Which pass a slice belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassKind {
    /// The regular pass (or the first pass of a stream).
    Regular,
    /// The sweep over the horizon.
    Sweep,
}

/// The window a poll will read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slice {
    /// Lower bound (inclusive, bucket-aligned).
    pub lower: DateTime<Utc>,
    /// Upper bound (inclusive).
    pub upper: DateTime<Utc>,
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

    /// Encodes for storage.
    pub fn to_doc(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// Starts this poll's passes, given the stored cursor (if any), `now` and the earliest
    /// time the tenant's retention still holds: the regular pass (resumed, or a new one over
    /// `[watermark - lookback, now]`), and a sweep when one is due or still in progress.
    /// The first poll of a stream is a single pass over the initial lookback that counts as
    /// a sweep.
    pub fn begin(
        stored: Option<&Cursor>,
        now: DateTime<Utc>,
        retention_floor: DateTime<Utc>,
        cfg: &CursorConfig,
    ) -> Cursor {
        let secs = |s: u64| TimeDelta::seconds(i64::try_from(s).unwrap_or(i64::MAX / 2));
        let floor = |t: DateTime<Utc>| align_down(t.max(retention_floor), cfg.bucket_secs);
        let Some(c) = stored else {
            // First poll: a regular pass over the lookback keeps fresh events flowing at once,
            // and a backfill sweep reaches back to the origin (as far as the initial lookback
            // and the tenant's retention allow). The backfill runs after the regular pass with
            // what each poll has left, over as many polls as it needs.
            let origin = floor(now - secs(cfg.initial_lookback_secs));
            let regular = floor(now - secs(cfg.lookback_secs)).max(origin);
            return Cursor {
                format: Self::FORMAT,
                watermark: origin,
                last_sweep_start: None,
                pass: Some(Pass {
                    lower: regular,
                    upper: now,
                    started: now,
                    done_until: regular,
                    sweep: false,
                    width_secs: None,
                }),
                sweep: Some(Pass {
                    lower: origin,
                    upper: now,
                    started: now,
                    done_until: origin,
                    sweep: true,
                    width_secs: None,
                }),
                sources: BTreeMap::new(),
                origin: Some(origin),
            };
        };
        let mut c = c.clone();
        let origin = c.origin;
        let floor = |t: DateTime<Utc>| {
            let t = origin.map_or(t, |o| t.max(o));
            floor(t)
        };
        let first_pass_running = c.pass.as_ref().is_some_and(|p| p.sweep);
        match c.pass.as_mut() {
            Some(p) => {
                p.upper = p.upper.max(now);
            }
            None => {
                let lower = floor(c.watermark - secs(cfg.lookback_secs));
                c.pass = Some(Pass {
                    lower,
                    upper: now.max(lower),
                    started: now,
                    done_until: lower,
                    sweep: false,
                    width_secs: None,
                });
            }
        }
        let sweep_due = c.sweep.is_none()
            && !first_pass_running
            && c.last_sweep_start
                .is_none_or(|s| now - s >= secs(cfg.sweep_interval_secs));
        if sweep_due {
            let from = c.last_sweep_start.unwrap_or(c.watermark);
            let lower = floor(from - secs(cfg.horizon_secs));
            c.sweep = Some(Pass {
                lower,
                upper: now.max(lower),
                started: now,
                done_until: lower,
                sweep: true,
                width_secs: None,
            });
        }
        c
    }

    /// The next slice to read: the regular pass first, then the sweep. `None` when both are
    /// done.
    pub fn next_slice(&self, cfg: &CursorConfig) -> Option<(Slice, PassKind)> {
        let slice = |p: &Pass| {
            (p.done_until < p.upper).then(|| {
                let width_secs = p.width_secs.unwrap_or(cfg.slice_secs).min(cfg.slice_secs);
                let width = TimeDelta::seconds(i64::try_from(width_secs).unwrap_or(3600));
                let lower = p.done_until;
                let upper = (align_down(lower, cfg.bucket_secs) + width).min(p.upper);
                Slice { lower, upper }
            })
        };
        if let Some(s) = self.pass.as_ref().and_then(slice) {
            return Some((s, PassKind::Regular));
        }
        self.sweep
            .as_ref()
            .and_then(slice)
            .map(|s| (s, PassKind::Sweep))
    }

    /// Marks `slice` of the `kind` pass delivered; finishes that pass when it reaches its
    /// upper bound.
    pub fn complete_slice(&mut self, slice: &Slice, kind: PassKind) {
        let slot = match kind {
            PassKind::Regular => &mut self.pass,
            PassKind::Sweep => &mut self.sweep,
        };
        let Some(p) = slot.as_mut() else {
            return;
        };
        p.done_until = p.done_until.max(slice.upper);
        // Widen again after a success (`next_slice` caps the width at `slice_secs`).
        p.width_secs = p
            .width_secs
            .map(|w| w.saturating_mul(2))
            .filter(|w| *w < 7 * 86_400);
        if p.done_until >= p.upper {
            let done = p.clone();
            *slot = None;
            self.watermark = self.watermark.max(done.upper);
            if done.sweep {
                self.last_sweep_start = Some(
                    self.last_sweep_start
                        .map_or(done.started, |s| s.max(done.started)),
                );
            }
        }
    }

    /// A slice of the `kind` pass could not be finished within the poll: halve the width
    /// (down to one bucket) so the next attempt fits.
    pub fn shrink(&mut self, kind: PassKind, cfg: &CursorConfig) {
        let slot = match kind {
            PassKind::Regular => &mut self.pass,
            PassKind::Sweep => &mut self.sweep,
        };
        if let Some(p) = slot.as_mut() {
            let current = p.width_secs.unwrap_or(cfg.slice_secs).min(cfg.slice_secs);
            let half = (current / 2 / cfg.bucket_secs).max(1) * cfg.bucket_secs;
            p.width_secs = Some(half);
        }
    }

    /// The earliest time any future pass may read: seen-set buckets before it can go.
    pub fn keep_from(&self, cfg: &CursorConfig) -> DateTime<Utc> {
        let secs = |s: u64| TimeDelta::seconds(i64::try_from(s).unwrap_or(i64::MAX / 2));
        let mut t = self.watermark - secs(cfg.lookback_secs);
        let sweep_from = self.last_sweep_start.unwrap_or(self.watermark) - secs(cfg.horizon_secs);
        t = t.min(sweep_from);
        // A pass in progress resumes from `done_until`: what it has read before is needed
        // again only by the lookback and the next sweep (covered above).
        for p in self.pass.iter().chain(self.sweep.iter()) {
            t = t.min(p.done_until);
        }
        align_down(t, cfg.bucket_secs)
    }

    /// Prunes every seen set to what future passes can still need, then drops fingerprints
    /// of the oldest buckets, across all sources, until they fit in `max_seen_bytes`.
    pub fn prune(&mut self, cfg: &CursorConfig) {
        let keep = self.keep_from(cfg);
        for s in self.sources.values_mut() {
            s.prune(keep, usize::MAX, cfg.bucket_secs);
        }
        let mut total: usize = self.sources.values().map(SeenSet::fingerprint_bytes).sum();
        if total <= cfg.max_seen_bytes {
            return;
        }
        let mut oldest: Vec<(i64, String)> = self
            .sources
            .iter()
            .flat_map(|(name, s)| {
                s.buckets
                    .iter()
                    .filter(|(_, b)| b.fps.is_some())
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
                && let Some(fps) = b.fps.take()
            {
                total = total.saturating_sub(fps.len() * 4);
            }
        }
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
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, 1, h, m, s)
            .single()
            .unwrap_or_default()
    }

    fn cfg() -> CursorConfig {
        CursorConfig::default()
    }

    #[test]
    fn first_poll_reads_fresh_events_first_then_backfills_to_the_retention() {
        let now = t(12, 0, 30);
        let c = Cursor::begin(None, now, t(0, 0, 0) - TimeDelta::days(60), &cfg());
        let p = c.pass.clone().unwrap_or_else(|| panic!("pass"));
        assert!(!p.sweep);
        assert_eq!(p.lower, t(11, 30, 0));
        assert_eq!(p.upper, now);
        let sw = c.sweep.clone().unwrap_or_else(|| panic!("backfill"));
        assert!(sw.sweep);
        assert_eq!(
            sw.lower,
            t(12, 0, 0) - TimeDelta::days(30),
            "30-day backfill"
        );
        assert_eq!(sw.upper, now);
        assert_eq!(c.origin, Some(sw.lower));
        let (s, kind) = c.next_slice(&cfg()).unwrap_or_else(|| panic!("slice"));
        assert_eq!(kind, PassKind::Regular, "fresh events come first");
        assert_eq!((s.lower, s.upper), (p.lower, now));
        // A tenant without P1 keeps 7 days: the backfill stops there.
        let seven = t(12, 10, 0) - TimeDelta::days(7);
        let c = Cursor::begin(None, now, seven, &cfg());
        assert_eq!(
            c.sweep.map(|p| p.lower),
            Some(t(12, 10, 0) - TimeDelta::days(7))
        );
        assert_eq!(c.origin, Some(seven));
    }

    #[test]
    fn a_backfill_spreads_over_polls_and_fresh_events_keep_coming_first() {
        let old = t(0, 0, 0) - TimeDelta::days(30);
        let mut c = Cursor::begin(None, t(12, 0, 0), old, &cfg());
        // First poll: the regular pass and two backfill slices.
        let mut backfill_slices = 0;
        while let Some((s, k)) = c.next_slice(&cfg()) {
            c.complete_slice(&s, k);
            if k == PassKind::Sweep {
                backfill_slices += 1;
                if backfill_slices == 2 {
                    break;
                }
            }
        }
        let progress = c.sweep.as_ref().map(|p| p.done_until);
        assert_eq!(
            progress,
            Some(t(12, 0, 0) - TimeDelta::days(30) + TimeDelta::hours(6))
        );
        assert_eq!(c.watermark, t(12, 0, 0));
        // Next poll: a new regular pass over the lookback first, then the backfill resumes.
        let c2 = Cursor::begin(Some(&c), t(12, 5, 0), old, &cfg());
        let (s, k) = c2.next_slice(&cfg()).unwrap_or_else(|| panic!("slice"));
        assert_eq!(k, PassKind::Regular);
        assert_eq!(s.lower, t(11, 30, 0));
        assert_eq!(c2.sweep.as_ref().map(|p| p.done_until), progress);
        assert_eq!(c2.sweep.as_ref().map(|p| p.upper), Some(t(12, 0, 0)));
        // The seen set only keeps what a future pass can read again.
        assert!(c2.keep_from(&cfg()) > t(12, 0, 0) - TimeDelta::days(30));
    }

    #[test]
    fn regular_pass_reaches_back_by_the_lookback_and_sweeps_come_hourly() {
        let old = t(0, 0, 0) - TimeDelta::days(30);
        let mut c = Cursor::begin(None, t(12, 0, 0), old, &cfg());
        while let Some((s, k)) = c.next_slice(&cfg()) {
            c.complete_slice(&s, k);
        }
        assert_eq!(c.watermark, t(12, 0, 0));
        assert_eq!(c.last_sweep_start, Some(t(12, 0, 0)));
        let c2 = Cursor::begin(Some(&c), t(12, 5, 0), old, &cfg());
        let p = c2.pass.clone().unwrap_or_else(|| panic!("pass"));
        assert!(!p.sweep);
        assert_eq!(p.lower, t(11, 30, 0));
        assert!(c2.sweep.is_none(), "no sweep before the interval");
        let c3 = Cursor::begin(Some(&c), t(13, 0, 0), old, &cfg());
        let p = c3.pass.clone().unwrap_or_else(|| panic!("pass"));
        assert_eq!(p.lower, t(11, 30, 0));
        let sw = c3.sweep.clone().unwrap_or_else(|| panic!("sweep"));
        assert_eq!(sw.lower, t(12, 0, 0) - TimeDelta::hours(24));
        assert_eq!(sw.upper, t(13, 0, 0));
    }

    #[test]
    fn no_pass_reaches_before_the_streams_origin() {
        let cfg = CursorConfig {
            initial_lookback_secs: 3600,
            ..cfg()
        };
        let old = t(0, 0, 0) - TimeDelta::days(30);
        let mut c = Cursor::begin(None, t(12, 0, 0), old, &cfg);
        assert_eq!(c.origin, Some(t(11, 0, 0)));
        while let Some((s, k)) = c.next_slice(&cfg) {
            c.complete_slice(&s, k);
        }
        let c = Cursor::begin(Some(&c), t(13, 0, 0), old, &cfg);
        assert_eq!(c.sweep.map(|p| p.lower), Some(t(11, 0, 0)));
    }

    #[test]
    fn slices_shrink_when_they_do_not_fit_and_grow_back() {
        let cfg = cfg();
        let mut c = Cursor::begin(None, t(12, 0, 0), t(0, 0, 0) - TimeDelta::days(30), &cfg);
        let (s, k) = c.next_slice(&cfg).unwrap_or_else(|| panic!("slice"));
        assert_eq!(k, PassKind::Regular);
        c.complete_slice(&s, k);
        let (s, k) = c.next_slice(&cfg).unwrap_or_else(|| panic!("slice"));
        assert_eq!(k, PassKind::Sweep);
        assert_eq!(s.upper - s.lower, TimeDelta::hours(3));
        c.shrink(k, &cfg);
        c.shrink(k, &cfg);
        let (s, k) = c.next_slice(&cfg).unwrap_or_else(|| panic!("slice"));
        assert_eq!(s.upper - s.lower, TimeDelta::minutes(45));
        for _ in 0..20 {
            c.shrink(k, &cfg);
        }
        let (s, k) = c.next_slice(&cfg).unwrap_or_else(|| panic!("slice"));
        assert_eq!(
            s.upper - s.lower,
            TimeDelta::seconds(60),
            "never below one bucket"
        );
        c.complete_slice(&s, k);
        let (s, _) = c.next_slice(&cfg).unwrap_or_else(|| panic!("slice"));
        assert_eq!(s.upper - s.lower, TimeDelta::seconds(120), "grows back");
    }

    #[test]
    fn the_regular_pass_runs_before_an_unfinished_sweep_resumes() {
        let old = t(0, 0, 0) - TimeDelta::days(30);
        let mut c = Cursor::begin(None, t(12, 0, 0), old, &cfg());
        while let Some((s, k)) = c.next_slice(&cfg()) {
            c.complete_slice(&s, k);
        }
        // A sweep starts at 13:00; only its first slice is done in that poll.
        let mut c = Cursor::begin(Some(&c), t(13, 0, 0), old, &cfg());
        while let Some((s, k)) = c.next_slice(&cfg()) {
            c.complete_slice(&s, k);
            if k == PassKind::Sweep {
                break;
            }
        }
        let sweep_progress = c.sweep.as_ref().map(|p| p.done_until);
        assert!(sweep_progress.is_some());
        // Next poll: fresh events first, then the sweep where it stopped, its upper unchanged.
        let c2 = Cursor::begin(Some(&c), t(13, 5, 0), old, &cfg());
        let (s, k) = c2.next_slice(&cfg()).unwrap_or_else(|| panic!("slice"));
        assert_eq!(k, PassKind::Regular);
        assert_eq!(s.lower, t(12, 30, 0));
        assert_eq!(s.upper, t(13, 5, 0));
        let sw = c2.sweep.clone().unwrap_or_else(|| panic!("sweep"));
        assert_eq!(Some(sw.done_until), sweep_progress);
        assert_eq!(sw.upper, t(13, 0, 0));
        assert_eq!(sw.started, t(13, 0, 0));
    }

    #[test]
    fn retention_floor_clamps_the_window() {
        let floor = t(11, 0, 0);
        let c = Cursor::begin(None, t(12, 0, 0), floor, &cfg());
        assert_eq!(c.sweep.map(|p| p.lower), Some(floor));
        assert_eq!(c.pass.map(|p| p.lower), Some(t(11, 30, 0)));
        let c = Cursor::begin(None, t(12, 0, 0), t(11, 45, 0), &cfg());
        assert_eq!(c.pass.map(|p| p.lower), Some(t(11, 45, 0)));
    }

    #[test]
    fn interrupted_pass_resumes_where_it_stopped() {
        let mut c = Cursor::begin(None, t(12, 0, 0), t(0, 0, 0) - TimeDelta::days(30), &cfg());
        // The first regular slice ends at 11:45 (a quarter-hour slice), the pass at 12:00.
        let (s, k) = c.next_slice(&cfg()).unwrap_or_else(|| panic!("slice"));
        c.shrink(k, &cfg());
        c.shrink(k, &cfg());
        c.shrink(k, &cfg());
        c.shrink(k, &cfg());
        let (s2, k2) = c.next_slice(&cfg()).unwrap_or_else(|| panic!("slice"));
        assert_eq!((s2.lower, k2), (s.lower, k));
        c.complete_slice(&s2, k2);
        let s = s2;
        let resumed = Cursor::begin(
            Some(&c),
            t(12, 10, 0),
            t(0, 0, 0) - TimeDelta::days(30),
            &cfg(),
        );
        let p = resumed.pass.clone().unwrap_or_else(|| panic!("pass"));
        assert_eq!(p.done_until, s.upper);
        assert_eq!(p.upper, t(12, 10, 0));
        assert!(Cursor::check_advance(Some(&c), &resumed).is_ok());
    }

    #[test]
    fn backwards_moves_are_refused() {
        let mut a = Cursor::begin(None, t(12, 0, 0), t(0, 0, 0), &cfg());
        a.pass = None;
        let mut b = a.clone();
        b.watermark = a.watermark - TimeDelta::seconds(1);
        assert_eq!(
            Cursor::check_advance(Some(&a), &b),
            Err(CursorError::Backwards("watermark"))
        );
    }

    #[test]
    fn seen_set_filters_re_reads_and_survives_serialization() {
        let cfg = cfg();
        let ids: Vec<String> = (0..50).map(|i| format!("id-{i}")).collect();
        let keys: Vec<Key<'_>> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| Key {
                id,
                time: t(10, 0, 0) + TimeDelta::seconds(i as i64 * 7),
            })
            .collect();
        let mut s = SeenSet::default();
        let (lo, hi) = (t(10, 0, 0), t(10, 10, 0));
        let new = s.filter_new(&keys[..30], lo, hi, &cfg);
        assert_eq!(new.len(), 30);
        s.record(&keys[..30], &new, lo, hi, &cfg);
        let json = serde_json::to_value(&s).unwrap_or_default();
        let s: SeenSet = serde_json::from_value(json).unwrap_or_default();
        let new = s.filter_new(&keys, lo, hi, &cfg);
        assert_eq!(new, (30..50).collect::<Vec<_>>());
    }

    #[test]
    fn fingerprint_collision_in_a_complete_bucket_re_emits_instead_of_losing() {
        // Find two ids with the same 32-bit fingerprint (a birthday search, ~2^16 tries).
        let mut by_fp = std::collections::HashMap::new();
        let mut pair = None;
        for i in 0u64..2_000_000 {
            let id = format!("x{i}");
            if let Some(prev) = by_fp.insert(fingerprint(&id), id.clone()) {
                pair = Some((prev, id));
                break;
            }
        }
        let (x, y) = pair.unwrap_or_else(|| panic!("no collision found"));
        let cfg = cfg();
        let mut s = SeenSet::default();
        let (lo, hi) = (t(10, 0, 0), t(10, 5, 0));
        let kx = Key {
            id: &x,
            time: t(10, 0, 1),
        };
        let ky = Key {
            id: &y,
            time: t(10, 0, 2),
        };
        s.record(&[kx], &[0], lo, hi, &cfg);
        // y is new but shares x's fingerprint: the bucket is re-emitted rather than y lost.
        let new = s.filter_new(&[kx, ky], lo, hi, &cfg);
        assert_eq!(new, vec![0, 1]);
        s.record(&[kx, ky], &new, lo, hi, &cfg);
        assert!(s.filter_new(&[kx, ky], lo, hi, &cfg).is_empty());
    }

    #[test]
    fn count_only_buckets_never_lose_events() {
        let cfg = cfg();
        let mut s = SeenSet::default();
        let (lo, hi) = (t(10, 0, 0), t(10, 5, 0));
        let ks = [
            Key {
                id: "a",
                time: t(10, 0, 1),
            },
            Key {
                id: "b",
                time: t(10, 0, 2),
            },
        ];
        s.record(&ks[..1], &[0], lo, hi, &cfg);
        for b in s.buckets.values_mut() {
            b.fps = None;
        }
        assert!(s.filter_new(&ks[..1], lo, hi, &cfg).is_empty());
        assert_eq!(s.filter_new(&ks, lo, hi, &cfg), vec![0, 1]);
        // Partly covered: everything is new.
        assert_eq!(s.filter_new(&ks[..1], t(10, 0, 30), hi, &cfg), vec![0]);
    }

    #[test]
    fn prune_respects_the_size_bound_by_dropping_oldest_fingerprints() {
        let cfg = cfg();
        let ids: Vec<String> = (0..2000).map(|i| format!("id-{i}")).collect();
        let keys: Vec<Key<'_>> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| Key {
                id,
                time: t(0, 0, 0) + TimeDelta::seconds(i as i64 * 30),
            })
            .collect();
        let mut s = SeenSet::default();
        let all: Vec<usize> = (0..keys.len()).collect();
        s.record(&keys, &all, t(0, 0, 0), t(23, 0, 0), &cfg);
        assert_eq!(s.fingerprint_bytes(), 8000);
        s.prune(t(0, 0, 0), 4000, cfg.bucket_secs);
        assert!(s.fingerprint_bytes() <= 4000);
        let oldest = s.buckets.values().next().map(|b| b.fps.is_none());
        let newest = s.buckets.values().last().map(|b| b.fps.is_some());
        assert_eq!((oldest, newest), (Some(true), Some(true)));
        s.prune(t(12, 0, 0), 1 << 20, cfg.bucket_secs);
        assert!(
            s.buckets
                .keys()
                .all(|k| bucket_start(*k, 60) >= t(12, 0, 0))
        );
    }

    #[test]
    fn the_size_bound_is_shared_across_sources_oldest_first() {
        let cfg = CursorConfig {
            max_seen_bytes: 4000,
            ..cfg()
        };
        let mut c = Cursor::begin(None, t(23, 0, 0), t(0, 0, 0) - TimeDelta::days(30), &cfg);
        let ids: Vec<String> = (0..1500).map(|i| format!("busy-{i}")).collect();
        let busy: Vec<Key<'_>> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| Key {
                id,
                time: t(0, 0, 0) + TimeDelta::seconds(i as i64 * 40),
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
        let total: usize = c.sources.values().map(SeenSet::fingerprint_bytes).sum();
        assert!(total <= 4000, "{total}");
        // The busy source gave up its oldest buckets; the quiet one kept its recent bucket,
        // and the busy source still uses most of the budget rather than half.
        assert_eq!(c.sources["quiet"].fingerprint_bytes(), 4);
        assert!(c.sources["busy"].fingerprint_bytes() > 3000);
    }

    proptest! {
        /// Any sequence of overlapping reads over a growing set of records: every record is
        /// reported new at least once, and records already emitted are (almost always) not.
        #[test]
        fn repeated_overlapping_reads_lose_nothing(
            times in proptest::collection::vec(0i64..7200, 1..300),
            cuts in proptest::collection::vec(0i64..7200, 1..12),
        ) {
            let cfg = CursorConfig { bucket_secs: 60, ..CursorConfig::default() };
            let base = t(0, 0, 0);
            let ids: Vec<String> = (0..times.len()).map(|i| format!("rec-{i}")).collect();
            let mut emitted: std::collections::HashMap<String, u32> = Default::default();
            let mut s = SeenSet::default();
            let mut sorted_cuts = cuts.clone();
            sorted_cuts.sort_unstable();
            let mut last_lo = base;
            for cut in sorted_cuts.iter().chain(std::iter::once(&7200)) {
                // Records visible so far: those with time <= cut. Read [cut - 1800, cut].
                let hi = base + TimeDelta::seconds(*cut);
                let lo = align_down(hi - TimeDelta::seconds(1800), 60).max(base);
                last_lo = lo;
                let keys: Vec<Key<'_>> = times.iter().zip(&ids)
                    .filter(|(tt, _)| **tt <= *cut && base + TimeDelta::seconds(**tt) >= lo)
                    .map(|(tt, id)| Key { id, time: base + TimeDelta::seconds(*tt) })
                    .collect();
                let new = s.filter_new(&keys, lo, hi, &cfg);
                for i in &new { *emitted.entry(keys[*i].id.to_string()).or_default() += 1; }
                s.record(&keys, &new, lo, hi, &cfg);
            }
            // Every record inside the final window was emitted, and nothing twice.
            for (tt, id) in times.iter().zip(&ids) {
                if base + TimeDelta::seconds(*tt) >= last_lo {
                    prop_assert!(emitted.contains_key(id), "lost {id} at {tt}");
                }
            }
            prop_assert!(emitted.values().all(|n| *n == 1), "duplicates: {emitted:?}");
        }
    }
}
