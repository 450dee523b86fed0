//! The tunables of the cursor rules, validated once when a poller starts.

use chrono::TimeDelta;
use serde::{Deserialize, Serialize};

/// Longest duration any setting may hold: no pass, horizon or retention reaches further.
pub const MAX_DURATION_SECS: u64 = 400 * 86_400;

/// A duration in seconds as a chrono delta, capped at [`MAX_DURATION_SECS`] so no
/// configured or stored value can overflow date arithmetic.
pub fn secs(n: u64) -> TimeDelta {
    TimeDelta::seconds(i64::try_from(n.min(MAX_DURATION_SECS)).unwrap_or(0))
}

/// A configuration value out of its range. Names the setting and the rule, never more.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {rule}")]
pub struct ConfigError {
    /// The setting, e.g. `cursor.lookback_secs`.
    pub field: &'static str,
    /// The rule it breaks.
    pub rule: String,
}

impl ConfigError {
    /// A rule broken by `field`.
    pub fn new(field: &'static str, rule: impl Into<String>) -> Self {
        Self {
            field,
            rule: rule.into(),
        }
    }
}

/// Checks `lo <= value <= hi` for a setting.
pub fn check_range(field: &'static str, value: u64, lo: u64, hi: u64) -> Result<(), ConfigError> {
    if value < lo || value > hi {
        return Err(ConfigError::new(
            field,
            format!("must be between {lo} and {hi}"),
        ));
    }
    Ok(())
}

/// The largest `max_seen_bytes`: a cursor document stays well under DynamoDB's 400 KB item.
pub const MAX_SEEN_BYTES: usize = 320 * 1024;

/// Tunables of the cursor rules. All durations in seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CursorConfig {
    /// How far each regular pass reaches back before the watermark.
    pub lookback_secs: u64,
    /// How often a sweep starts (a recent one, or a deep one when that is due).
    pub sweep_interval_secs: u64,
    /// How far a deep sweep reaches back: events visible within this delay are never lost.
    pub horizon_secs: u64,
    /// How far a recent sweep reaches back: events visible within this delay are read by the
    /// next sweep; those later than this (up to `horizon_secs`) by the next deep sweep. Equal
    /// to `horizon_secs`, every sweep is deep.
    pub recent_horizon_secs: u64,
    /// How often a sweep is a deep one, over the whole horizon. Deep sweeps of different
    /// tenants are spread over this interval (`Cursor::begin_spread`).
    pub deep_sweep_interval_secs: u64,
    /// Width of a seen-set bucket; window bounds are aligned to it.
    pub bucket_secs: u64,
    /// Widest slice a pass is cut into (each slice is read and delivered page by page).
    /// Default 7 days: a regular pass or a sweep is one slice, a 30-day backfill five.
    pub slice_secs: u64,
    /// How far the first poll of a stream reaches back (its backfill); the tenant's retention
    /// (7 or 30 days) clamps it. Default 30 days.
    pub initial_lookback_secs: u64,
    /// Upper bound for the seen sets in one cursor document, in serialized bytes. Older
    /// buckets go to the store's seen pages (or, without them, keep only their counts). At
    /// most 320 KiB, so a cursor always fits in one DynamoDB item (400 KB).
    pub max_seen_bytes: usize,
}

impl Default for CursorConfig {
    fn default() -> Self {
        Self {
            lookback_secs: 30 * 60,
            sweep_interval_secs: 3600,
            horizon_secs: 24 * 3600,
            recent_horizon_secs: 6 * 3600,
            deep_sweep_interval_secs: 6 * 3600,
            bucket_secs: 60,
            slice_secs: 7 * 86_400,
            initial_lookback_secs: 30 * 86_400,
            max_seen_bytes: 256 * 1024,
        }
    }
}

impl CursorConfig {
    /// Checks every value against its range and the rules that tie them together. Pollers call
    /// it once, when their configuration is loaded (`PollConfig::validated`), never per poll.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_range("cursor.bucket_secs", self.bucket_secs, 1, 3600)?;
        check_range(
            "cursor.slice_secs",
            self.slice_secs,
            self.bucket_secs,
            7 * 86_400,
        )?;
        if !self.slice_secs.is_multiple_of(self.bucket_secs) {
            return Err(ConfigError::new(
                "cursor.slice_secs",
                "must be a multiple of bucket_secs",
            ));
        }
        check_range("cursor.lookback_secs", self.lookback_secs, 60, 7 * 86_400)?;
        check_range(
            "cursor.horizon_secs",
            self.horizon_secs,
            self.lookback_secs,
            90 * 86_400,
        )
        .map_err(|_| {
            ConfigError::new(
                "cursor.horizon_secs",
                "must be at least lookback_secs and at most 90 days",
            )
        })?;
        check_range(
            "cursor.sweep_interval_secs",
            self.sweep_interval_secs,
            1,
            self.horizon_secs,
        )
        .map_err(|_| {
            ConfigError::new(
                "cursor.sweep_interval_secs",
                "must be between 1 and horizon_secs",
            )
        })?;
        // Both are bounded here and read through `recent_horizon()` and
        // `deep_sweep_interval()`, which keep them consistent with the horizon and the sweep
        // interval (a configuration that narrows the horizon need not repeat it here).
        check_range(
            "cursor.recent_horizon_secs",
            self.recent_horizon_secs,
            self.bucket_secs,
            90 * 86_400,
        )?;
        check_range(
            "cursor.deep_sweep_interval_secs",
            self.deep_sweep_interval_secs,
            1,
            30 * 86_400,
        )?;
        check_range(
            "cursor.initial_lookback_secs",
            self.initial_lookback_secs,
            0,
            90 * 86_400,
        )?;
        check_range(
            "cursor.max_seen_bytes",
            self.max_seen_bytes as u64,
            1024,
            MAX_SEEN_BYTES as u64,
        )?;
        Ok(())
    }

    /// How far a recent sweep reaches back: `recent_horizon_secs`, at most the horizon.
    pub fn recent_horizon(&self) -> u64 {
        self.recent_horizon_secs.min(self.horizon_secs)
    }

    /// How often a sweep is deep: `deep_sweep_interval_secs`, at least the sweep interval.
    pub fn deep_sweep_interval(&self) -> u64 {
        self.deep_sweep_interval_secs.max(self.sweep_interval_secs)
    }

    /// The bucket width in seconds (validated to 1..=3600).
    pub(crate) fn bucket(&self) -> i64 {
        i64::try_from(self.bucket_secs.clamp(1, 3600)).unwrap_or(60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_every_duration_has_an_upper_bound() {
        assert_eq!(CursorConfig::default().validate(), Ok(()));
        let too_long = |f: fn(&mut CursorConfig)| {
            let mut c = CursorConfig::default();
            f(&mut c);
            c.validate().err().map(|e| e.field)
        };
        assert_eq!(
            too_long(|c| c.lookback_secs = 30 * 86_400),
            Some("cursor.lookback_secs")
        );
        assert_eq!(
            too_long(|c| c.horizon_secs = u64::MAX),
            Some("cursor.horizon_secs")
        );
        assert_eq!(
            too_long(|c| c.initial_lookback_secs = u64::MAX),
            Some("cursor.initial_lookback_secs")
        );
        assert_eq!(
            too_long(|c| c.slice_secs = 30 * 86_400),
            Some("cursor.slice_secs")
        );
        assert_eq!(too_long(|c| c.bucket_secs = 0), Some("cursor.bucket_secs"));
        assert_eq!(
            too_long(|c| c.sweep_interval_secs = 2 * 86_400),
            Some("cursor.sweep_interval_secs")
        );
        assert_eq!(
            too_long(|c| c.recent_horizon_secs = u64::MAX),
            Some("cursor.recent_horizon_secs")
        );
        // A recent sweep never reaches further than a deep one, and deep sweeps are never more
        // frequent than sweeps, whatever is configured.
        let narrow = CursorConfig {
            horizon_secs: 2 * 3600,
            ..CursorConfig::default()
        };
        assert_eq!(narrow.validate(), Ok(()));
        assert_eq!(narrow.recent_horizon(), 2 * 3600);
        let rare = CursorConfig {
            sweep_interval_secs: 8 * 3600,
            ..CursorConfig::default()
        };
        assert_eq!(rare.validate(), Ok(()));
        assert_eq!(rare.deep_sweep_interval(), 8 * 3600);
        assert_eq!(
            too_long(|c| c.deep_sweep_interval_secs = u64::MAX),
            Some("cursor.deep_sweep_interval_secs")
        );
        assert_eq!(
            too_long(|c| c.slice_secs = 90),
            Some("cursor.slice_secs"),
            "not a multiple of the bucket"
        );
    }

    #[test]
    fn secs_never_overflows() {
        assert_eq!(secs(60), TimeDelta::minutes(1));
        assert_eq!(secs(u64::MAX), TimeDelta::days(400));
    }
}
