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

pub mod config;
pub mod passes;
pub mod seen;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use config::{ConfigError, CursorConfig, check_range, secs};
pub use passes::{Pass, PassKind, Slice};
pub use seen::{Bucket, Key, SeenSet, align_down, fingerprint};

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

    /// The earliest time any future pass may read: seen-set buckets before it can go.
    pub fn keep_from(&self, cfg: &CursorConfig) -> DateTime<Utc> {
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
}
