//! `Retry-After` parsing (`client::pacing::parse_retry_after`) and the deadline built from it.
//!
//! Input: 8 bytes of "now" (seconds since the epoch, folded into chrono's range), then the
//! header value.
//!
//! Properties: never panics; a parsed wait never exceeds `MAX_RETRY_AFTER`; digits-only values
//! are their own number of seconds, clamped; a value is parsed the same however it is padded
//! with spaces; `saturating_after(now, wait)` never panics and never goes before `now`.
#![no_main]

use std::time::Duration;

use chrono::{DateTime, Utc};
use itdr_shared::client::pacing::{MAX_RETRY_AFTER, parse_retry_after, saturating_after};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (head, rest) = data.split_at(8);
    let mut raw = [0u8; 8];
    raw.copy_from_slice(head);
    let min = DateTime::<Utc>::MIN_UTC.timestamp();
    let max = DateTime::<Utc>::MAX_UTC.timestamp();
    let secs = min + i64::from_le_bytes(raw).rem_euclid(max - min + 1);
    let Some(now) = DateTime::<Utc>::from_timestamp(secs, 0) else {
        return;
    };
    let Ok(value) = std::str::from_utf8(rest) else {
        return;
    };
    let wait = parse_retry_after(value, now);
    if let Some(w) = wait {
        assert!(w <= MAX_RETRY_AFTER, "{value:?} gave {w:?}");
        let until = saturating_after(now, w);
        assert!(until >= now);
    }
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        let expected = v
            .parse::<u64>()
            .map(Duration::from_secs)
            .unwrap_or(MAX_RETRY_AFTER)
            .min(MAX_RETRY_AFTER);
        assert_eq!(wait, Some(expected), "{value:?}");
    }
    assert_eq!(parse_retry_after(&format!("  {value} "), now), wait);
    // The far ends of time.
    for t in [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC] {
        if let Some(w) = parse_retry_after(value, t) {
            assert!(w <= MAX_RETRY_AFTER);
            assert!(saturating_after(t, w) >= t);
        }
    }
});
