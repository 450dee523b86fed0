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
}

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
}

impl Pass {
    fn new(lower: DateTime<Utc>, upper: DateTime<Utc>, started: DateTime<Utc>) -> Self {
        Pass {
            lower,
            upper: upper.max(lower),
            started,
            done_until: lower,
            width_secs: None,
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
    /// to a bucket boundary.
    pub fn begin(
        stored: Option<&Cursor>,
        now: DateTime<Utc>,
        retention_floor: DateTime<Utc>,
        cfg: &CursorConfig,
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
        let sweep_lower =
            floor_of(c.last_sweep_start.unwrap_or(c.watermark) - secs(cfg.horizon_secs));
        match c.pass.as_mut() {
            Some(p) => p.upper = p.upper.max(now),
            None => c.pass = Some(Pass::new(regular_lower, now, now)),
        }
        let sweep_due = c.sweep.is_none()
            && c.last_sweep_start
                .is_none_or(|s| now - s >= secs(cfg.sweep_interval_secs));
        if sweep_due {
            c.sweep = Some(Pass::new(sweep_lower, now, now));
        }
        c
    }

    /// The next slice to read: the regular pass first, then the sweep. `None` when both are
    /// done.
    pub fn next_slice(&self, cfg: &CursorConfig) -> Option<(Slice, PassKind)> {
        let slice = |p: &Pass| {
            (p.done_until < p.upper).then(|| {
                let width_secs = p.width_secs.unwrap_or(cfg.slice_secs).min(cfg.slice_secs);
                let width = secs(width_secs);
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
            if kind == PassKind::Sweep {
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

    fn cfg() -> CursorConfig {
        CursorConfig::default()
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
}
