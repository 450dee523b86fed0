//! Adaptive polling: which (tenant, stream) gets a job in a schedule slot.
//!
//! Most tenants of an MSP fleet are quiet most of the time (nights, weekends, small offices),
//! and an idle poll still costs requests against the app registration's budget. A stream that
//! delivered an event within `quiet_after` is polled in every slot; a quiet one is polled every
//! `k`-th slot, `k = max_staleness / slot length`, so it is never staler than `max_staleness`.
//! Which of the `k` slots is fixed per (tenant, stream) by a hash, so quiet streams are spread
//! evenly over the slots instead of all being polled in the same one. The first delivery after
//! a quiet spell puts the stream back on every slot.
//!
//! Nothing is lost by polling less often: a poll reads from the cursor to now, whatever the
//! gap (`cursor/cursor.md`). Inventory streams gate themselves (a snapshot is due once a day)
//! and are always scheduled; so is every stream that is new, unhealthy or has never delivered
//! since the tenant was onboarded, so that problems are noticed and reported at once.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::health::HealthState;
use crate::store::TenantRecord;
use crate::stream::Stream;

/// How often quiet streams are polled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Cadence {
    /// A stream without a delivered event for this long is quiet (seconds). 0: adaptive
    /// polling off, every stream in every slot.
    pub quiet_after_secs: u64,
    /// The longest a quiet stream waits between two polls (seconds); rounded down to whole
    /// slots, at least one (a value below the slot length polls every slot).
    pub max_staleness_secs: u64,
}

impl Default for Cadence {
    /// Quiet after 2 hours without an event; a quiet stream is polled at least every 30
    /// minutes (every 6th slot of the default 5-minute schedule).
    fn default() -> Self {
        Cadence {
            quiet_after_secs: 7_200,
            max_staleness_secs: 1_800,
        }
    }
}

/// The upper bound of both settings: a day.
pub const MAX_CADENCE_SECS: u64 = 86_400;

impl Cadence {
    /// Checks the settings (upper bounds; a staleness below the slot length is allowed and
    /// means every slot).
    pub fn validate(&self, _slot_secs: u64) -> Result<(), String> {
        if self.quiet_after_secs > MAX_CADENCE_SECS {
            return Err(format!(
                "quiet_after_secs must be at most {MAX_CADENCE_SECS} (a day)"
            ));
        }
        if self.max_staleness_secs > MAX_CADENCE_SECS {
            return Err(format!(
                "max_staleness_secs must be at most {MAX_CADENCE_SECS} (a day)"
            ));
        }
        Ok(())
    }

    /// Slots between two polls of a quiet stream.
    pub fn quiet_every(&self, slot_secs: u64) -> u64 {
        (self.max_staleness_secs / slot_secs.max(1)).max(1)
    }

    /// Whether `stream` of tenant `t` gets a job in `slot` (slots of `slot_secs`, the slot
    /// starting at `at`).
    pub fn due(
        &self,
        t: &TenantRecord,
        stream: Stream,
        slot: u64,
        slot_secs: u64,
        at: DateTime<Utc>,
    ) -> bool {
        if self.quiet_after_secs == 0 || stream.is_inventory() {
            return true;
        }
        let Some(h) = t.health.streams.get(&stream) else {
            return true;
        };
        if h.state != HealthState::Healthy || h.last_success.is_none() {
            return true;
        }
        // Quiet since the last delivery, or since onboarding when nothing was ever delivered.
        let since = h.last_delivery_at.unwrap_or(t.created_at);
        let quiet_after = TimeDelta::seconds(i64::try_from(self.quiet_after_secs).unwrap_or(0));
        if at - since < quiet_after {
            return true;
        }
        let k = self.quiet_every(slot_secs);
        slot.wrapping_add(phase(&t.tenant_id, stream, k))
            .is_multiple_of(k)
    }
}

/// A stable slot offset in `0..k` for (tenant, stream) (FNV-1a of the pair).
fn phase(tenant: &str, stream: Stream, k: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in tenant
        .to_ascii_lowercase()
        .bytes()
        .chain([b'#'])
        .chain(stream.as_str().bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h % k.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::Cloud;
    use crate::health::{Health, HealthUpdate, apply_health};

    fn t0() -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000, 0).unwrap_or_default()
    }

    fn tenant(i: usize) -> TenantRecord {
        TenantRecord {
            tenant_id: format!("00000000-0000-0000-0000-{i:012}"),
            domain: None,
            org: None,
            cloud: Cloud::Global,
            app_ref: "commercial".into(),
            streams: Stream::EVERY.to_vec(),
            include_noninteractive: true,
            enabled: true,
            health: Health::default(),
            created_at: t0() - TimeDelta::days(10),
        }
    }

    fn polled(t: &mut TenantRecord, stream: Stream, at: DateTime<Utc>, delivered: bool) {
        t.health = apply_health(
            &t.health,
            &HealthUpdate::Success {
                stream,
                at,
                newest_event: delivered.then_some(at),
                throttled: false,
            },
        );
    }

    #[test]
    fn active_new_and_unhealthy_streams_are_polled_every_slot_quiet_ones_every_kth() {
        let c = Cadence::default();
        let slot_secs = 300;
        assert_eq!(c.quiet_every(slot_secs), 6);
        let now = t0();
        let slot = (now.timestamp() as u64) / slot_secs;
        let mut t = tenant(1);
        // Never polled: every slot.
        assert!((0..12).all(|i| c.due(&t, Stream::Signins, slot + i, slot_secs, now)));
        // Delivered an hour ago: active.
        polled(&mut t, Stream::Signins, now - TimeDelta::hours(1), true);
        assert!((0..12).all(|i| c.due(&t, Stream::Signins, slot + i, slot_secs, now)));
        // Last delivery three hours ago, polled since without events: quiet, 2 of 12 slots.
        let mut q = tenant(1);
        polled(&mut q, Stream::Signins, now - TimeDelta::hours(3), true);
        polled(&mut q, Stream::Signins, now - TimeDelta::minutes(5), false);
        let due: Vec<u64> = (0..12)
            .filter(|i| c.due(&q, Stream::Signins, slot + i, slot_secs, now))
            .collect();
        assert_eq!(due.len(), 2, "{due:?}");
        assert_eq!(due[1] - due[0], 6, "evenly: never staler than 30 minutes");
        // Inventory streams gate themselves.
        assert!((0..12).all(|i| c.due(&q, Stream::Users, slot + i, slot_secs, now)));
        // An unhealthy stream is polled every slot, to notice when it recovers.
        let mut u = q.clone();
        u.health = apply_health(
            &u.health,
            &HealthUpdate::Failure {
                stream: Stream::Signins,
                at: now,
                kind: crate::health::FailureKind::ConsentRevoked,
            },
        );
        assert!((0..12).all(|i| c.due(&u, Stream::Signins, slot + i, slot_secs, now)));
        // Off: everything every slot.
        let off = Cadence {
            quiet_after_secs: 0,
            ..c
        };
        assert!((0..12).all(|i| off.due(&q, Stream::Signins, slot + i, slot_secs, now)));
    }

    #[test]
    fn quiet_streams_are_spread_over_the_slots() {
        let c = Cadence::default();
        let now = t0();
        let slot = (now.timestamp() as u64) / 300;
        let mut per_slot = [0usize; 6];
        for i in 0..600 {
            let mut t = tenant(i);
            polled(
                &mut t,
                Stream::DirectoryAudits,
                now - TimeDelta::hours(5),
                true,
            );
            for (j, n) in per_slot.iter_mut().enumerate() {
                if c.due(&t, Stream::DirectoryAudits, slot + j as u64, 300, now) {
                    *n += 1;
                }
            }
        }
        assert_eq!(per_slot.iter().sum::<usize>(), 600, "each once in 6 slots");
        assert!(
            per_slot.iter().all(|n| (60..=140).contains(n)),
            "spread evenly: {per_slot:?}"
        );
    }

    #[test]
    fn settings_are_checked() {
        let c = Cadence::default();
        assert!(c.validate(300).is_ok());
        // Below the slot length: every slot.
        let tight = Cadence {
            max_staleness_secs: 60,
            ..c
        };
        assert!(tight.validate(300).is_ok());
        assert_eq!(tight.quiet_every(300), 1);
        assert!(
            Cadence {
                max_staleness_secs: MAX_CADENCE_SECS + 1,
                ..c
            }
            .validate(300)
            .is_err()
        );
        assert!(
            Cadence {
                quiet_after_secs: MAX_CADENCE_SECS + 1,
                ..c
            }
            .validate(300)
            .is_err()
        );
    }
}
