//! Batching of normalized OCSF events into queue [`Envelope`]s, capped by serialized size and
//! by event count.
//!
//! Sizes are exact, not estimated: every event is serialized once (into a byte counter, no
//! allocation) and the envelope's fixed overhead is measured by serializing the envelope with
//! no events. An envelope holding events of sizes `s1..sn` then serializes (compact
//! `serde_json`, as [`serde_json::to_vec`] produces it) to exactly
//! `overhead + s1 + .. + sn + (n - 1)` bytes, the `n - 1` being the commas between events.
//!
//! Nothing is ever dropped. An event too large to fit in an envelope on its own is returned in
//! [`Batches::oversize`] with its original index, so the rest of the batch still ships and the
//! caller dead-letters the oversize ones (see [`Oversize::into_dead_letter`]). Every input
//! event therefore ends up in exactly one place: one envelope, in input order, or the
//! oversize list.

use std::io;

use chrono::{DateTime, Utc};

use crate::store::{DeadLetter, Envelope};
use crate::stream::Stream;

/// The envelope schema version produced by [`into_envelopes`].
pub const ENVELOPE_VERSION: u32 = 1;

/// The OCSF schema version of the events the pipeline emits.
pub const OCSF_VERSION: &str = "1.8.0";

/// Default cap on the serialized envelope: 256 KiB, the classic SQS message size limit. The
/// limit covers the whole JSON document; a sink that adds message attributes (which SQS counts
/// against the same limit) must lower it accordingly.
pub const DEFAULT_MAX_BYTES: usize = 262_144;

/// Default cap on events per envelope.
pub const DEFAULT_MAX_EVENTS: usize = 500;

/// Limits for one envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Maximum size in bytes of the serialized envelope JSON, overhead included.
    pub max_bytes: usize,
    /// Maximum number of events in one envelope (at least 1).
    pub max_events: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        Self {
            max_bytes: DEFAULT_MAX_BYTES,
            max_events: DEFAULT_MAX_EVENTS,
        }
    }
}

/// Errors from [`into_envelopes`]. They are about the limits themselves, never about one
/// event: an event that does not fit is reported in [`Batches::oversize`] instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// `max_events` is 0: no envelope could ever hold an event.
    #[error("batch limits allow 0 events per envelope")]
    ZeroEvents,
    /// `max_bytes` leaves no room for even a one-byte event once the envelope's own fields
    /// are counted: a configuration error, reported rather than dead-lettering every event.
    #[error(
        "batch limit of {max_bytes} bytes cannot hold an envelope ({overhead} bytes without events)"
    )]
    LimitTooSmall {
        /// The configured limit.
        max_bytes: usize,
        /// Size of the envelope with no events.
        overhead: usize,
    },
    /// An event could not be serialized (not expected for JSON values).
    #[error("event {index} could not be serialized")]
    Serialize {
        /// Index of the event in the input.
        index: usize,
    },
}

/// An event too large to fit in any envelope on its own.
#[derive(Debug, Clone, PartialEq)]
pub struct Oversize {
    /// Index of the event in the input.
    pub index: usize,
    /// Serialized size of the event alone.
    pub bytes: usize,
    /// The event itself, handed back so it can be dead-lettered.
    pub event: serde_json::Value,
}

impl Oversize {
    /// Reason recorded on dead letters made from oversize events.
    pub const REASON: &'static str = "event_too_large";

    /// Turns the oversize event into a dead letter (the event becomes the record).
    pub fn into_dead_letter(
        self,
        tenant_id: &str,
        stream: Stream,
        at: DateTime<Utc>,
    ) -> DeadLetter {
        DeadLetter {
            tenant_id: tenant_id.to_string(),
            stream,
            reason: format!("{}: {} bytes", Self::REASON, self.bytes),
            record: self.event,
            at,
        }
    }
}

/// The result of batching: envelopes to send and events that fit in none.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Batches {
    /// Envelopes within the limits, events in input order (minus the oversize ones).
    pub envelopes: Vec<Envelope>,
    /// Events larger than an envelope can hold, in input order.
    pub oversize: Vec<Oversize>,
}

impl Batches {
    /// Total number of events in the envelopes.
    pub fn event_count(&self) -> usize {
        self.envelopes.iter().map(|e| e.events.len()).sum()
    }
}

/// Splits `events` into envelopes for `tenant_id` / `stream`, each serializing to at most
/// `limits.max_bytes` bytes and holding at most `limits.max_events` events.
///
/// Events keep their order. Events that cannot fit alone go to [`Batches::oversize`]; no event
/// is dropped or duplicated. No events gives no envelopes. Errors only on unusable limits.
pub fn into_envelopes(
    tenant_id: &str,
    stream: Stream,
    events: Vec<serde_json::Value>,
    limits: &BatchLimits,
) -> Result<Batches, BatchError> {
    if limits.max_events == 0 {
        return Err(BatchError::ZeroEvents);
    }
    let empty = Envelope {
        envelope_version: ENVELOPE_VERSION,
        ocsf_version: OCSF_VERSION.to_string(),
        tenant_id: tenant_id.to_string(),
        stream,
        events: Vec::new(),
    };
    let overhead = serialized_len(&empty).map_err(|_| BatchError::Serialize { index: 0 })?;
    // The smallest JSON value is one byte long (`0`).
    if overhead.saturating_add(1) > limits.max_bytes {
        return Err(BatchError::LimitTooSmall {
            max_bytes: limits.max_bytes,
            overhead,
        });
    }
    let room = limits.max_bytes - overhead;

    let mut out = Batches::default();
    let mut current: Vec<serde_json::Value> = Vec::new();
    // Bytes used inside the `[...]` of the current envelope: events plus commas.
    let mut used = 0usize;
    for (index, event) in events.into_iter().enumerate() {
        let bytes = serialized_len(&event).map_err(|_| BatchError::Serialize { index })?;
        if bytes > room {
            out.oversize.push(Oversize {
                index,
                bytes,
                event,
            });
            continue;
        }
        let needed = if current.is_empty() { bytes } else { bytes + 1 };
        if !current.is_empty() && (current.len() >= limits.max_events || used + needed > room) {
            out.envelopes.push(Envelope {
                events: std::mem::take(&mut current),
                ..empty.clone()
            });
            used = 0;
        }
        used += if current.is_empty() { bytes } else { bytes + 1 };
        current.push(event);
    }
    if !current.is_empty() {
        out.envelopes.push(Envelope {
            events: current,
            ..empty
        });
    }
    Ok(out)
}

/// Exact length of the compact JSON serialization of `value`, without allocating it.
fn serialized_len<T: serde::Serialize>(value: &T) -> Result<usize, serde_json::Error> {
    let mut counter = ByteCounter(0);
    serde_json::to_writer(&mut counter, value)?;
    Ok(counter.0)
}

/// An `io::Write` that only counts.
struct ByteCounter(usize);

impl io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const TENANT: &str = "00000000-0000-0000-0000-000000000001";

    fn event_of_len(i: usize, len: usize) -> serde_json::Value {
        // `{"i":N,"p":"xxx"}`: pad to roughly `len` bytes.
        json!({ "i": i, "p": "x".repeat(len) })
    }

    fn overhead(stream: Stream) -> usize {
        serde_json::to_vec(&Envelope {
            envelope_version: ENVELOPE_VERSION,
            ocsf_version: OCSF_VERSION.to_string(),
            tenant_id: TENANT.to_string(),
            stream,
            events: vec![],
        })
        .unwrap()
        .len()
    }

    /// Checks every invariant of a batching result against its input.
    fn check(stream: Stream, input: &[serde_json::Value], out: &Batches, limits: &BatchLimits) {
        for env in &out.envelopes {
            let bytes = serde_json::to_vec(env).unwrap().len();
            assert!(bytes <= limits.max_bytes, "{bytes} > {}", limits.max_bytes);
            assert!(!env.events.is_empty());
            assert!(env.events.len() <= limits.max_events);
            assert_eq!(env.envelope_version, 1);
            assert_eq!(env.ocsf_version, "1.8.0");
            assert_eq!(env.tenant_id, TENANT);
            assert_eq!(env.stream, stream);
        }
        for o in &out.oversize {
            assert_eq!(o.event, input[o.index]);
            assert_eq!(o.bytes, serde_json::to_vec(&o.event).unwrap().len());
            let alone = Envelope {
                envelope_version: 1,
                ocsf_version: "1.8.0".into(),
                tenant_id: TENANT.into(),
                stream,
                events: vec![o.event.clone()],
            };
            assert!(serde_json::to_vec(&alone).unwrap().len() > limits.max_bytes);
        }
        // Nothing lost, nothing duplicated, order kept.
        let oversize_idx: Vec<usize> = out.oversize.iter().map(|o| o.index).collect();
        assert!(oversize_idx.windows(2).all(|w| w[0] < w[1]));
        let expected: Vec<&serde_json::Value> = input
            .iter()
            .enumerate()
            .filter(|(i, _)| !oversize_idx.contains(i))
            .map(|(_, e)| e)
            .collect();
        let shipped: Vec<&serde_json::Value> =
            out.envelopes.iter().flat_map(|e| e.events.iter()).collect();
        assert_eq!(shipped, expected);
    }

    #[test]
    fn defaults_match_sqs_and_count() {
        let l = BatchLimits::default();
        assert_eq!(l.max_bytes, 262_144);
        assert_eq!(l.max_events, 500);
    }

    #[test]
    fn empty_input_gives_no_envelopes() {
        let out = into_envelopes(TENANT, Stream::Signins, vec![], &BatchLimits::default()).unwrap();
        assert!(out.envelopes.is_empty());
        assert!(out.oversize.is_empty());
    }

    #[test]
    fn count_limit_splits() {
        let events: Vec<_> = (0..1201).map(|i| json!({ "i": i })).collect();
        let limits = BatchLimits::default();
        let out = into_envelopes(TENANT, Stream::Signins, events.clone(), &limits).unwrap();
        let sizes: Vec<usize> = out.envelopes.iter().map(|e| e.events.len()).collect();
        assert_eq!(sizes, vec![500, 500, 201]);
        check(Stream::Signins, &events, &out, &limits);
    }

    #[test]
    fn one_event_per_envelope() {
        let events: Vec<_> = (0..5).map(|i| json!({ "i": i })).collect();
        let limits = BatchLimits {
            max_bytes: DEFAULT_MAX_BYTES,
            max_events: 1,
        };
        let out = into_envelopes(TENANT, Stream::DirectoryAudits, events.clone(), &limits).unwrap();
        assert_eq!(out.envelopes.len(), 5);
        check(Stream::DirectoryAudits, &events, &out, &limits);
    }

    #[test]
    fn exact_fit_is_accepted_and_one_byte_more_is_not() {
        let oh = overhead(Stream::Signins);
        let a = event_of_len(0, 100);
        let b = event_of_len(1, 50);
        let la = serde_json::to_vec(&a).unwrap().len();
        let lb = serde_json::to_vec(&b).unwrap().len();
        let exact = BatchLimits {
            max_bytes: oh + la + 1 + lb,
            max_events: 10,
        };
        let events = vec![a.clone(), b.clone()];
        let out = into_envelopes(TENANT, Stream::Signins, events.clone(), &exact).unwrap();
        assert_eq!(out.envelopes.len(), 1);
        assert_eq!(
            serde_json::to_vec(&out.envelopes[0]).unwrap().len(),
            exact.max_bytes
        );
        let tight = BatchLimits {
            max_bytes: exact.max_bytes - 1,
            ..exact
        };
        let out = into_envelopes(TENANT, Stream::Signins, events.clone(), &tight).unwrap();
        assert_eq!(out.envelopes.len(), 2);
        check(Stream::Signins, &events, &out, &tight);
    }

    #[test]
    fn oversize_events_are_returned_and_the_rest_ships() {
        let limits = BatchLimits {
            max_bytes: 1024,
            max_events: 500,
        };
        let events = vec![
            event_of_len(0, 10),
            event_of_len(1, 5000),
            event_of_len(2, 10),
            event_of_len(3, 2000),
        ];
        let out = into_envelopes(TENANT, Stream::Signins, events.clone(), &limits).unwrap();
        assert_eq!(
            out.oversize.iter().map(|o| o.index).collect::<Vec<_>>(),
            vec![1, 3]
        );
        assert_eq!(out.event_count(), 2);
        check(Stream::Signins, &events, &out, &limits);
        let at = chrono::DateTime::<Utc>::UNIX_EPOCH;
        let dl = out.oversize[0]
            .clone()
            .into_dead_letter(TENANT, Stream::Signins, at);
        assert!(dl.reason.starts_with("event_too_large"));
        assert_eq!(dl.record, events[1]);
    }

    #[test]
    fn tiny_limits_are_errors_not_mass_dead_letters() {
        let events = vec![json!(0)];
        let one_byte = BatchLimits {
            max_bytes: 1,
            max_events: 1,
        };
        assert!(matches!(
            into_envelopes(TENANT, Stream::Signins, events.clone(), &one_byte),
            Err(BatchError::LimitTooSmall { max_bytes: 1, .. })
        ));
        let zero = BatchLimits {
            max_bytes: DEFAULT_MAX_BYTES,
            max_events: 0,
        };
        assert_eq!(
            into_envelopes(TENANT, Stream::Signins, events.clone(), &zero),
            Err(BatchError::ZeroEvents)
        );
        // The smallest workable limit holds exactly one one-byte event per envelope.
        let smallest = BatchLimits {
            max_bytes: overhead(Stream::Signins) + 1,
            max_events: 10,
        };
        let events = vec![json!(1), json!(2), json!("x")];
        let out = into_envelopes(TENANT, Stream::Signins, events.clone(), &smallest).unwrap();
        assert_eq!(out.envelopes.len(), 2);
        assert_eq!(out.oversize.len(), 1);
        check(Stream::Signins, &events, &out, &smallest);
    }

    #[test]
    fn escaping_and_unicode_are_counted_exactly() {
        let events = vec![
            json!({ "s": "quote\" backslash\\ newline\n tab\t ctrl\u{1}" }),
            json!({ "s": "é日本語🙂" }),
            json!({ "n": 1.5e300, "neg": -0.0, "big": u64::MAX }),
        ];
        let oh = overhead(Stream::Signins);
        let total: usize = events
            .iter()
            .map(|e| serde_json::to_vec(e).unwrap().len())
            .sum::<usize>()
            + 2;
        let limits = BatchLimits {
            max_bytes: oh + total,
            max_events: 10,
        };
        let out = into_envelopes(TENANT, Stream::Signins, events.clone(), &limits).unwrap();
        assert_eq!(out.envelopes.len(), 1);
        assert_eq!(
            serde_json::to_vec(&out.envelopes[0]).unwrap().len(),
            limits.max_bytes
        );
    }

    proptest! {
        #[test]
        fn random_sizes_stay_within_limits(
            sizes in proptest::collection::vec(0usize..3000, 0..120),
            extra in 1usize..4000,
            max_events in 1usize..40,
            signins in any::<bool>(),
        ) {
            let stream = if signins { Stream::Signins } else { Stream::DirectoryAudits };
            let events: Vec<_> = sizes.iter().enumerate().map(|(i, &n)| event_of_len(i, n)).collect();
            let limits = BatchLimits { max_bytes: overhead(stream) + extra, max_events };
            let out = into_envelopes(TENANT, stream, events.clone(), &limits).unwrap();
            check(stream, &events, &out, &limits);
            // Greedy packing: the next envelope's first event would not have fit.
            for pair in out.envelopes.windows(2) {
                if pair[0].events.len() < max_events {
                    let mut grown = pair[0].clone();
                    grown.events.push(pair[1].events[0].clone());
                    prop_assert!(serde_json::to_vec(&grown).unwrap().len() > limits.max_bytes);
                }
            }
        }
    }
}
