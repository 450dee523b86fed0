//! Passes and slices: what each poll reads, in which order, and how progress is recorded
//! (`cursor.md`, *Passes* and *Slices and commits*).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Cursor;
use super::config::{CursorConfig, secs};
use super::seen::align_down;

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
    /// A slice read part of the way before: the sources still to read, by seen-set key of the
    /// source, each with where it continues (`None`: from its first page). A source not
    /// named has read the slice. `None`: a new slice, every source from its first page.
    pub resume: Option<BTreeMap<String, Option<String>>>,
}

impl Slice {
    /// Where `source` continues in this slice: `Some(None)` from its first page,
    /// `Some(Some(link))` from `link`, `None` when it has read the slice already.
    pub fn resume_of(&self, source: &str) -> Option<Option<&str>> {
        match &self.resume {
            None => Some(None),
            Some(pending) => pending.get(source).map(Option::as_deref),
        }
    }
}

/// The slice of a pass being read page by page (`cursor.md`, *Slices and commits*): its upper
/// bound and the sources still to read (see [`Slice::resume`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenSlice {
    /// Upper bound of the slice (its lower bound is the pass's `done_until`).
    pub upper: DateTime<Utc>,
    /// Sources still to read, with where each continues.
    pub pending: BTreeMap<String, Option<String>>,
}

/// The longest continuation kept in a cursor; a longer one is dropped, and its source reads
/// the slice again from its first page (duplicates, never loss), so a cursor always fits its
/// store.
pub const MAX_CONTINUATION_BYTES: usize = 8 * 1024;

/// A pass in progress: a window of the window axis read slice by slice, oldest first. Which
/// pass it is (regular, or a sweep/backfill) is the cursor slot that holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pass {
    /// Lower bound of the pass (bucket-aligned).
    pub lower: DateTime<Utc>,
    /// Upper bound of the pass (a regular pass extends it to `now` when resumed).
    pub upper: DateTime<Utc>,
    /// When the pass started (its first fetch).
    pub started: DateTime<Utc>,
    /// Everything in `[lower, done_until]` has been read and delivered.
    pub done_until: DateTime<Utc>,
    /// Current slice width, when narrower than `slice_secs`: halved each time a slice could
    /// not be finished within a poll, doubled back after each finished slice, so a slice
    /// always fits in a poll eventually and the pass makes progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width_secs: Option<u64>,
    /// A recent sweep (over `recent_horizon_secs`) rather than a deep one; meaningless for a
    /// regular pass. Absent in sweeps written before sweeps were age-weighted: those were
    /// deep.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub recent: bool,
    /// The slice being read page by page, when a poll delivered part of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open: Option<OpenSlice>,
}

impl Pass {
    fn new(lower: DateTime<Utc>, upper: DateTime<Utc>, started: DateTime<Utc>) -> Self {
        Pass {
            lower,
            upper: upper.max(lower),
            started,
            done_until: lower,
            width_secs: None,
            recent: false,
            open: None,
        }
    }
}

impl Cursor {
    /// Starts this poll's passes, given the stored cursor (if any), `now` and the earliest
    /// time the tenant's retention still holds.
    ///
    /// - The first poll of a stream starts two passes: a regular pass over the lookback, so
    ///   fresh events flow at once, and a backfill sweep from the stream's origin (`now -
    ///   initial_lookback_secs`, clamped to the retention). The origin is recorded: no later
    ///   pass reaches further back.
    /// - Later polls resume an interrupted regular pass (its upper bound extended to `now`)
    ///   or start a new one over `[watermark - lookback, now]`, and start a sweep over
    ///   `[last sweep start - horizon, now]` when `sweep_interval_secs` has passed since the
    ///   last sweep started and none is in progress.
    ///
    /// Every lower bound is clamped to the origin and the retention floor, and aligned down
    /// to a bucket boundary. Deep sweeps are due on a grid of `deep_sweep_interval_secs`
    /// starting at the epoch (see [`Cursor::begin_spread`] to shift it per stream).
    pub fn begin(
        stored: Option<&Cursor>,
        now: DateTime<Utc>,
        retention_floor: DateTime<Utc>,
        cfg: &CursorConfig,
    ) -> Cursor {
        Self::begin_spread(stored, now, retention_floor, cfg, 0)
    }

    /// [`Cursor::begin`], with this stream's deep sweeps due on a grid of
    /// `deep_sweep_interval_secs` shifted by `phase_secs`: a sweep is deep when a grid line
    /// lies between the last deep sweep's start and `now`. Streams with different phases (the
    /// poller derives it from the tenant and stream) spread their deep sweeps over the
    /// interval instead of all running them in the same hour.
    ///
    /// - A sweep that is due is deep when a grid line passed since the last deep sweep
    ///   started: `lower = last deep start - horizon_secs`. Otherwise it is recent:
    ///   `lower = last sweep start - recent_horizon_secs`.
    pub fn begin_spread(
        stored: Option<&Cursor>,
        now: DateTime<Utc>,
        retention_floor: DateTime<Utc>,
        cfg: &CursorConfig,
        phase_secs: u64,
    ) -> Cursor {
        let Some(c) = stored else {
            let origin = align_down(
                (now - secs(cfg.initial_lookback_secs)).max(retention_floor),
                cfg.bucket_secs,
            );
            let regular = align_down(
                (now - secs(cfg.lookback_secs)).max(retention_floor),
                cfg.bucket_secs,
            )
            .max(origin);
            return Cursor {
                format: Self::FORMAT,
                watermark: origin,
                last_sweep_start: None,
                last_deep_sweep_start: None,
                pass: Some(Pass::new(regular, now, now)),
                sweep: Some(Pass::new(origin, now, now)),
                sources: BTreeMap::new(),
                origin: Some(origin),
            };
        };
        let mut c = c.clone();
        let floor_of = |t: DateTime<Utc>| {
            let t = t.max(retention_floor);
            let t = c.origin.map_or(t, |o| t.max(o));
            align_down(t, cfg.bucket_secs)
        };
        let regular_lower = floor_of(c.watermark - secs(cfg.lookback_secs));
        let last_sweep = c.last_sweep_start.unwrap_or(c.watermark);
        let last_deep = c.last_deep_start().unwrap_or(c.watermark);
        let deep_lower = floor_of(last_deep - secs(cfg.horizon_secs));
        // A recent sweep reaches back from the last sweep of either kind (`cursor.md`, the
        // no-loss argument).
        let recent_lower = floor_of(last_sweep - secs(cfg.recent_horizon()));
        match c.pass.as_mut() {
            Some(p) => p.upper = p.upper.max(now),
            None => c.pass = Some(Pass::new(regular_lower, now, now)),
        }
        let sweep_due = c.sweep.is_none()
            && c.last_sweep_start
                .is_none_or(|s| now - s >= secs(cfg.sweep_interval_secs));
        if sweep_due {
            let deep = c.last_sweep_start.is_none()
                || grid_line_between(last_deep, now, cfg.deep_sweep_interval(), phase_secs);
            let mut sweep = Pass::new(if deep { deep_lower } else { recent_lower }, now, now);
            sweep.recent = !deep;
            c.sweep = Some(sweep);
        }
        c
    }

    /// When the last completed deep sweep started (`last_sweep_start` for cursors written
    /// before sweeps were age-weighted, whose sweeps were all deep).
    pub fn last_deep_start(&self) -> Option<DateTime<Utc>> {
        self.last_deep_sweep_start.or(self.last_sweep_start)
    }

    /// The cursor slot that holds the `kind` pass.
    fn slot_mut(&mut self, kind: PassKind) -> &mut Option<Pass> {
        match kind {
            PassKind::Regular => &mut self.pass,
            PassKind::Sweep => &mut self.sweep,
        }
    }

    /// The next slice to read: the regular pass first, then the sweep. `None` when both are
    /// done.
    pub fn next_slice(&self, cfg: &CursorConfig) -> Option<(Slice, PassKind)> {
        let slice = |p: &Pass| {
            if let Some(open) = &p.open {
                return Some(Slice {
                    lower: p.done_until,
                    upper: open.upper,
                    resume: Some(open.pending.clone()),
                });
            }
            (p.done_until < p.upper).then(|| {
                let width_secs = p.width_secs.unwrap_or(cfg.slice_secs).min(cfg.slice_secs);
                let width = secs(width_secs);
                let lower = p.done_until;
                let upper = (align_down(lower, cfg.bucket_secs) + width).min(p.upper);
                Slice {
                    lower,
                    upper,
                    resume: None,
                }
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
        let slot = self.slot_mut(kind);
        let Some(p) = slot.as_mut() else {
            return;
        };
        p.done_until = p.done_until.max(slice.upper);
        p.open = None;
        // Widen again after a success (`next_slice` caps the width at `slice_secs`).
        p.width_secs = p
            .width_secs
            .map(|w| w.saturating_mul(2))
            .filter(|w| *w < 7 * 86_400);
        if p.done_until >= p.upper {
            let done = p.clone();
            *slot = None;
            self.watermark = self.watermark.max(done.upper);
            if kind == PassKind::Sweep {
                let later = |s: Option<DateTime<Utc>>| {
                    Some(s.map_or(done.started, |s| s.max(done.started)))
                };
                self.last_sweep_start = later(self.last_sweep_start);
                if !done.recent {
                    self.last_deep_sweep_start = later(self.last_deep_sweep_start);
                }
            }
        }
    }

    /// Part of `slice` of the `kind` pass was delivered: the next poll (or the next round of
    /// this one) continues it where `pending` says, instead of reading it again. A
    /// continuation longer than [`MAX_CONTINUATION_BYTES`] is dropped (its source starts the
    /// slice again). Empty `pending` is not a held slice: complete it instead.
    pub fn hold_slice(
        &mut self,
        slice: &Slice,
        kind: PassKind,
        mut pending: BTreeMap<String, Option<String>>,
    ) {
        let slot = self.slot_mut(kind);
        let Some(p) = slot.as_mut() else {
            return;
        };
        for link in pending.values_mut() {
            if link
                .as_ref()
                .is_some_and(|l| l.len() > MAX_CONTINUATION_BYTES)
            {
                *link = None;
            }
        }
        p.open = Some(OpenSlice {
            upper: slice.upper,
            pending,
        });
    }

    /// Whether the regular pass could be left to the sweep that starts in this poll: the
    /// sweep (not the backfill) starts at `now`, nothing of either is read yet, and the sweep's
    /// window `[lower, now]` holds the regular pass's. Reading both would read the recent
    /// minutes twice (`cursor.md`, *Passes*).
    pub fn regular_foldable(&self, now: DateTime<Utc>) -> bool {
        let (Some(p), Some(sw)) = (&self.pass, &self.sweep) else {
            return false;
        };
        self.last_sweep_start.is_some()
            && sw.started == now
            && sw.done_until == sw.lower
            && sw.open.is_none()
            && sw.upper >= p.upper
            && p.done_until == p.lower
            && p.open.is_none()
            && sw.lower <= p.lower
    }

    /// How many records the seen sets hold from `from` on, or `None` when some of those
    /// buckets are paged out (a busy stream: their counts are not in the cursor).
    pub fn known_records_since(&self, from: DateTime<Utc>, bucket_secs: u64) -> Option<u64> {
        let first = super::SeenSet::index_of(from, bucket_secs);
        let mut n = 0u64;
        for seen in self.sources.values() {
            for b in seen.buckets.range(first..).map(|(_, b)| b) {
                if b.paged {
                    return None;
                }
                n = n.saturating_add(u64::from(b.count));
            }
        }
        Some(n)
    }

    /// Leaves this poll's regular pass to the sweep (see [`Cursor::regular_foldable`]); the
    /// sweep moves the watermark when it completes, as the regular pass would have.
    pub fn fold_regular(&mut self, now: DateTime<Utc>) -> bool {
        if !self.regular_foldable(now) {
            return false;
        }
        self.pass = None;
        true
    }

    /// Forgets the open slice of the `kind` pass: the next slice is cut anew from
    /// `done_until` (its sources read it from their first page).
    pub fn release_slice(&mut self, kind: PassKind) {
        if let Some(p) = self.slot_mut(kind).as_mut() {
            p.open = None;
        }
    }

    /// A slice of the `kind` pass could not be finished within the poll: halve the width
    /// (down to one bucket) so the next attempt fits.
    pub fn shrink(&mut self, kind: PassKind, cfg: &CursorConfig) {
        if let Some(p) = self.slot_mut(kind).as_mut() {
            let current = p.width_secs.unwrap_or(cfg.slice_secs).min(cfg.slice_secs);
            let half = (current / 2 / cfg.bucket_secs).max(1) * cfg.bucket_secs;
            p.width_secs = Some(half);
        }
    }
}

/// Whether a line of the grid `phase + k * interval` (k integer) lies in `(after, at]`.
fn grid_line_between(after: DateTime<Utc>, at: DateTime<Utc>, interval: u64, phase: u64) -> bool {
    let interval = i64::try_from(interval.max(1)).unwrap_or(i64::MAX);
    let phase = i64::try_from(phase % interval.unsigned_abs()).unwrap_or(0);
    let line = |t: DateTime<Utc>| (t.timestamp().saturating_sub(phase)).div_euclid(interval);
    line(at) > line(after)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cursor::CursorError;
    use chrono::{TimeDelta, TimeZone};

    fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, 1, h, m, s)
            .single()
            .unwrap_or_default()
    }

    /// The defaults with 3-hour slices, so a pass has several (the default is a week).
    fn cfg() -> CursorConfig {
        CursorConfig {
            slice_secs: 3 * 3600,
            ..CursorConfig::default()
        }
    }

    #[test]
    fn first_poll_reads_fresh_events_first_then_backfills_to_the_retention() {
        let now = t(12, 0, 30);
        let c = Cursor::begin(None, now, t(0, 0, 0) - TimeDelta::days(60), &cfg());
        let p = c.pass.clone().unwrap_or_else(|| panic!("pass"));
        assert_eq!(p.lower, t(11, 30, 0));
        assert_eq!(p.upper, now);
        let sw = c.sweep.clone().unwrap_or_else(|| panic!("backfill"));
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
        assert_eq!(p.lower, t(11, 30, 0));
        assert!(c2.sweep.is_none(), "no sweep before the interval");
        let c3 = Cursor::begin(Some(&c), t(13, 0, 0), old, &cfg());
        let p = c3.pass.clone().unwrap_or_else(|| panic!("pass"));
        assert_eq!(p.lower, t(11, 30, 0));
        let sw = c3.sweep.clone().unwrap_or_else(|| panic!("sweep"));
        assert!(sw.recent, "no deep sweep is due an hour after the backfill");
        assert_eq!(sw.lower, t(12, 0, 0) - TimeDelta::hours(6));
        assert_eq!(sw.upper, t(13, 0, 0));
    }

    /// Runs every slice of the passes `begin_spread` starts at `now`.
    fn poll_at(c: &Cursor, now: DateTime<Utc>, phase: u64) -> Cursor {
        let old = t(0, 0, 0) - TimeDelta::days(30);
        let mut c = Cursor::begin_spread(Some(c), now, old, &cfg(), phase);
        while let Some((s, k)) = c.next_slice(&cfg()) {
            c.complete_slice(&s, k);
        }
        c
    }

    #[test]
    fn sweeps_are_recent_hourly_and_deep_once_per_deep_interval() {
        let old = t(0, 0, 0) - TimeDelta::days(30);
        let mut c = Cursor::begin(None, t(1, 0, 0), old, &cfg());
        while let Some((s, k)) = c.next_slice(&cfg()) {
            c.complete_slice(&s, k);
        }
        assert_eq!(
            c.last_deep_sweep_start,
            Some(t(1, 0, 0)),
            "the backfill is deep"
        );
        let mut deep = Vec::new();
        for h in 2..=23 {
            let now = t(h, 0, 0);
            let before = c.clone();
            let started = Cursor::begin(Some(&c), now, old, &cfg());
            let sw = started
                .sweep
                .clone()
                .unwrap_or_else(|| panic!("sweep at {h}"));
            if sw.recent {
                assert_eq!(
                    sw.lower,
                    before.last_sweep_start.unwrap_or_default() - TimeDelta::hours(6)
                );
            } else {
                assert_eq!(
                    sw.lower,
                    before.last_deep_start().unwrap_or_default() - TimeDelta::hours(24)
                );
                deep.push(h);
            }
            c = poll_at(&c, now, 0);
            assert_eq!(c.last_sweep_start, Some(now));
            assert!(Cursor::check_advance(Some(&before), &c).is_ok());
        }
        // Phase 0: the grid lines are 06:00, 12:00 and 18:00.
        assert_eq!(deep, vec![6, 12, 18]);
        assert_eq!(c.last_deep_sweep_start, Some(t(18, 0, 0)));
        // What a future deep sweep reads stays in the seen sets.
        assert!(c.keep_from(&cfg()) <= t(18, 0, 0) - TimeDelta::hours(24));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// The no-loss argument of `cursor.md`, on the cursor alone: over three days of
        /// polls (every 5 minutes, some skipped, each finishing only a few slices, as a
        /// deadline would), an event at `t` visible at `t + d` is read, by a slice fetched
        /// after it became visible, by the time a cursor first promises it: `d` within the
        /// recent horizon and visible before the last sweep started, or `d` within the
        /// horizon and visible before the last deep sweep started.
        #[test]
        fn every_promised_event_is_read_after_it_became_visible(
            events in proptest::collection::vec((0i64..3 * 86_400, 0i64..86_400), 1..40),
            recent in proptest::collection::vec((0i64..3 * 86_400, 0i64..6 * 3600), 1..40),
            budgets in proptest::collection::vec(1usize..8, 900),
            skips in proptest::collection::vec(0u8..10, 900),
            phase in 0u64..21_600,
        ) {
            let cfg = CursorConfig { initial_lookback_secs: 3600, ..cfg() };
            let start = t(0, 0, 0);
            let floor = start - TimeDelta::days(30);
            let mut reads: Vec<(DateTime<Utc>, DateTime<Utc>, DateTime<Utc>)> = Vec::new();
            // After each poll: when, the last sweep's and the last deep sweep's start.
            type Promise = (DateTime<Utc>, Option<DateTime<Utc>>, Option<DateTime<Utc>>);
            let mut promises: Vec<Promise> = Vec::new();
            let mut c: Option<Cursor> = None;
            let mut now = start;
            for (budget, skip) in budgets.iter().zip(&skips) {
                now += TimeDelta::minutes(if *skip == 0 { 35 } else { 5 });
                let mut cur = Cursor::begin_spread(c.as_ref(), now, floor, &cfg, phase);
                for _ in 0..*budget {
                    let Some((slice, kind)) = cur.next_slice(&cfg) else { break };
                    reads.push((slice.lower, slice.upper, now));
                    cur.complete_slice(&slice, kind);
                }
                if let Some(old) = &c {
                    proptest::prop_assert!(Cursor::check_advance(Some(old), &cur).is_ok());
                }
                promises.push((now, cur.last_sweep_start, cur.last_deep_start()));
                c = Some(cur);
            }
            let origin = c.and_then(|c| c.origin).unwrap_or(start);
            for (at, delay) in events.into_iter().chain(recent) {
                let ev = start + TimeDelta::seconds(at);
                let visible = ev + TimeDelta::seconds(delay);
                let within_recent = delay <= cfg.recent_horizon() as i64;
                let promised = promises.iter().find(|(_, sweep, deep)| {
                    (within_recent && sweep.is_some_and(|s| visible <= s))
                        || deep.is_some_and(|s| visible <= s)
                });
                let Some((by, _, _)) = promised.filter(|_| ev >= origin) else { continue };
                proptest::prop_assert!(
                    reads.iter().any(|(lo, hi, when)| {
                        *lo <= ev && ev <= *hi && *when >= visible && when <= by
                    }),
                    "event at {ev} visible {visible} not read by {by}"
                );
            }
        }
    }

    #[test]
    fn deep_sweeps_of_different_streams_spread_over_the_interval() {
        let old = t(0, 0, 0) - TimeDelta::days(30);
        let mut hours = std::collections::BTreeSet::new();
        for phase in (0..6).map(|i| i * 3600 + 1800) {
            let mut c = Cursor::begin(None, t(0, 0, 0), old, &cfg());
            while let Some((s, k)) = c.next_slice(&cfg()) {
                c.complete_slice(&s, k);
            }
            for h in 1..=6 {
                let started = Cursor::begin_spread(Some(&c), t(h, 0, 0), old, &cfg(), phase);
                if started.sweep.as_ref().is_some_and(|s| !s.recent) {
                    hours.insert(h);
                }
                c = poll_at(&c, t(h, 0, 0), phase);
            }
        }
        assert_eq!(
            hours.len(),
            6,
            "one stream's deep sweep in each hour: {hours:?}"
        );
    }

    #[test]
    fn a_cursor_from_before_age_weighted_sweeps_keeps_its_deep_reach() {
        // Written before: no `last_deep_sweep_start`, a sweep in progress without `recent`.
        let doc = serde_json::json!({
            "format": 1,
            "watermark": "2026-05-01T12:00:00Z",
            "last_sweep_start": "2026-05-01T11:00:00Z",
            "pass": null,
            "sweep": {"lower": "2026-04-30T11:00:00Z", "upper": "2026-05-01T12:00:00Z",
                      "started": "2026-05-01T12:00:00Z", "done_until": "2026-05-01T00:00:00Z"},
            "sources": {}
        });
        let c = Cursor::from_doc(&doc).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.last_deep_start(), Some(t(11, 0, 0)));
        assert!(c.keep_from(&cfg()) <= t(0, 0, 0));
        let done = poll_at(&c, t(12, 5, 0), 0);
        assert_eq!(
            done.last_deep_sweep_start,
            Some(t(12, 0, 0)),
            "the old sweep was deep"
        );
        let doc = done.to_doc().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(Cursor::from_doc(&doc).ok(), Some(done));
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
    fn a_slice_read_in_part_is_continued_across_polls_then_completed() {
        let cfg = cfg();
        let old = t(0, 0, 0) - TimeDelta::days(30);
        let mut c = Cursor::begin(None, t(12, 0, 0), old, &cfg);
        let (s, k) = c.next_slice(&cfg).unwrap_or_else(|| panic!("slice"));
        c.complete_slice(&s, k);
        let (s, k) = c
            .next_slice(&cfg)
            .unwrap_or_else(|| panic!("backfill slice"));
        assert_eq!(s.resume, None, "a new slice");
        assert_eq!(
            s.resume_of("signins"),
            Some(None),
            "every source from its start"
        );
        // One source delivered a page and continues at a link; the other finished.
        let pending = BTreeMap::from([("signins".to_string(), Some("https://g/p2".to_string()))]);
        c.hold_slice(&s, k, pending);
        // The next poll continues the same slice, its bounds unchanged, before anything else
        // of the backfill.
        let mut c = Cursor::begin(Some(&c), t(12, 5, 0), old, &cfg);
        let (r, _) = c.next_slice(&cfg).unwrap_or_else(|| panic!("regular"));
        c.complete_slice(&r, PassKind::Regular);
        let (s2, k2) = c.next_slice(&cfg).unwrap_or_else(|| panic!("held slice"));
        assert_eq!(k2, PassKind::Sweep);
        assert_eq!((s2.lower, s2.upper), (s.lower, s.upper));
        assert_eq!(s2.resume_of("signins"), Some(Some("https://g/p2")));
        assert_eq!(s2.resume_of("directory_audits"), None, "finished");
        let doc = c.to_doc().unwrap_or_default();
        let back = Cursor::from_doc(&doc).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back, c, "the open slice survives the store");
        // Completing it moves the pass on and closes it.
        c.complete_slice(&s2, k2);
        let (s3, _) = c.next_slice(&cfg).unwrap_or_else(|| panic!("next slice"));
        assert_eq!(s3.lower, s.upper);
        assert_eq!(s3.resume, None);
        // A continuation too long for a cursor is dropped: that source starts again.
        let long = "x".repeat(MAX_CONTINUATION_BYTES + 1);
        c.hold_slice(
            &s3,
            k2,
            BTreeMap::from([("signins".to_string(), Some(long))]),
        );
        let (s4, _) = c.next_slice(&cfg).unwrap_or_else(|| panic!("held"));
        assert_eq!(s4.resume_of("signins"), Some(None));
        // A held slice that is released is cut anew from where the pass stands.
        c.release_slice(k2);
        let (s5, _) = c.next_slice(&cfg).unwrap_or_else(|| panic!("cut anew"));
        assert_eq!((s5.lower, s5.resume), (s3.lower, None));
    }

    #[test]
    fn a_small_sweep_that_starts_does_the_regular_pass_work() {
        let cfg = cfg();
        let old = t(0, 0, 0) - TimeDelta::days(30);
        let mut c = Cursor::begin(None, t(12, 0, 0), old, &cfg);
        // The first poll's regular pass stays: the backfill is no sweep to fold into.
        assert!(!c.regular_foldable(t(12, 0, 0)));
        while let Some((s, k)) = c.next_slice(&cfg) {
            c.complete_slice(&s, k);
        }
        // Two records delivered at 12:40, in a seen set.
        let keys = [
            crate::cursor::Key {
                id: "a",
                time: t(12, 40, 0),
            },
            crate::cursor::Key {
                id: "b",
                time: t(12, 40, 1),
            },
        ];
        c.sources
            .entry("signins".into())
            .or_default()
            .record_partial(&keys, &[0, 1], &cfg);
        // 12:55: no sweep due, the regular pass runs.
        let mut c1 = Cursor::begin(Some(&c), t(12, 55, 0), old, &cfg);
        assert!(!c1.fold_regular(t(12, 55, 0)));
        assert!(c1.pass.is_some());
        // 13:00: a sweep starts over [06:00, 13:00], which holds the regular pass's window.
        let mut c2 = Cursor::begin(Some(&c), t(13, 0, 0), old, &cfg);
        let sw = c2.sweep.clone().unwrap_or_else(|| panic!("sweep due"));
        assert_eq!(c2.known_records_since(sw.lower, cfg.bucket_secs), Some(2));
        assert!(c2.fold_regular(t(13, 0, 0)));
        assert!(c2.pass.is_none());
        while let Some((s, k)) = c2.next_slice(&cfg) {
            assert_eq!(k, PassKind::Sweep, "the sweep alone");
            assert!(c2.watermark < t(13, 0, 0));
            c2.complete_slice(&s, k);
        }
        assert_eq!(c2.watermark, t(13, 0, 0), "the sweep moved the watermark");
        assert_eq!(c2.last_sweep_start, Some(t(13, 0, 0)));
        // A paged bucket in the window: its count is not known, the regular pass stays.
        let mut c3 = Cursor::begin(Some(&c), t(13, 0, 0), old, &cfg);
        for seen in c3.sources.values_mut() {
            for b in seen.buckets.values_mut() {
                b.paged = true;
            }
        }
        let sw = c3.sweep.clone().unwrap_or_else(|| panic!("sweep due"));
        assert_eq!(c3.known_records_since(sw.lower, cfg.bucket_secs), None);
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
}
