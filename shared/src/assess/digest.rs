//! The daily sign-in digest: what the assessment's legacy-authentication section needs of the
//! last 30 days of sign-ins, kept compact by the pollers as they deliver, so the AWS report
//! function never re-reads 30 days of a busy tenant's sign-in log.
//!
//! For every delivered sign-in-log event (class 3002, `metadata.log_name` `signIns`, read as
//! [`super::InputBuilder::push`] reads them), the digest adds, per tenant and UTC day of the
//! event's `time`: one to the total, one to its `clientAppUsed`, and, for a legacy protocol,
//! one to (protocol, user). A [`DigestStore`] keeps one bounded item per tenant and day; the
//! number of (protocol, user) entries of a day is capped at [`MAX_LEGACY_ENTRIES`] and what
//! the cap turns away is counted (`dropped`), never silently lost.
//!
//! Counts are **at least once**: a batch the queue received twice (a retried poll, a lost
//! cursor compare-and-set) is counted twice. The report says so in its coverage.
//!
//! [`DigestSink`] is the [`EventSink`] decorator the pollers deliver through: events go to the
//! inner sink first; only once it accepted them is the digest written, with a short timeout,
//! and a failed write is logged and counted ([`Event::DigestWriteFailed`]), never returned.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate};
use serde_json::Value;

use super::input::is_legacy_client;
use crate::clock::SharedClock;
use crate::store::{Envelope, EventSink, SinkError, StoreError};
use crate::telemetry::{Event, Telemetry};

/// Days a digest is kept (the window is 30 days; a few more for late reports).
pub const RETENTION_DAYS: i64 = 35;
/// (protocol, user) entries per tenant and day at most: far below DynamoDB's 400 KB item
/// limit (an entry is a user name and a protocol, at most about 160 bytes, kept twice).
pub const MAX_LEGACY_ENTRIES: usize = 500;
/// Distinct `clientAppUsed` values per tenant and day at most (Microsoft documents about
/// twenty); others are counted under [`OTHER_CLIENT_APP`].
pub const MAX_CLIENT_APPS: usize = 64;
/// Where client app values past [`MAX_CLIENT_APPS`] or longer than [`MAX_NAME_BYTES`] go.
pub const OTHER_CLIENT_APP: &str = "Other (not recorded)";
/// The longest client app or user name kept (longer ones are cut at a character boundary).
pub const MAX_NAME_BYTES: usize = 128;
/// Time a digest write may take before the poller goes on without it.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(3);

/// What one batch adds to one tenant's day.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayDelta {
    /// Sign-ins.
    pub total: u64,
    /// Sign-ins per `clientAppUsed` (`Not reported` when absent).
    pub by_client_app: BTreeMap<String, u64>,
    /// Legacy sign-ins per (protocol, user).
    pub legacy: BTreeMap<(String, String), u64>,
}

impl DayDelta {
    /// Whether there is nothing to add.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }
}

/// One tenant's stored day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayDigest {
    /// The UTC day.
    pub day: NaiveDate,
    /// Sign-ins.
    pub total: u64,
    /// Sign-ins per `clientAppUsed`.
    pub by_client_app: BTreeMap<String, u64>,
    /// Legacy sign-ins per (protocol, user).
    pub legacy: BTreeMap<(String, String), u64>,
    /// Legacy sign-ins not kept per (protocol, user) because the day was full.
    pub dropped: u64,
}

fn cut(s: &str) -> String {
    if s.len() <= MAX_NAME_BYTES {
        return s.to_string();
    }
    let mut end = MAX_NAME_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    cur.as_str()
}

/// The day deltas of a delivered batch, per (tenant, UTC day). Events that are not sign-in-log
/// events are ignored, and so are events without a usable `time`.
pub fn aggregate(envelopes: &[Envelope]) -> BTreeMap<(String, NaiveDate), DayDelta> {
    let mut out: BTreeMap<(String, NaiveDate), DayDelta> = BTreeMap::new();
    for env in envelopes {
        for ev in &env.events {
            if ev.get("class_uid").and_then(Value::as_u64) != Some(3002)
                || str_at(ev, &["metadata", "log_name"]) != Some("signIns")
            {
                continue;
            }
            let Some(day) = ev
                .get("time")
                .and_then(Value::as_i64)
                .and_then(DateTime::from_timestamp_millis)
                .map(|t| t.date_naive())
            else {
                continue;
            };
            let tenant = str_at(ev, &["metadata", "tenant_uid"])
                .unwrap_or(&env.tenant_id)
                .to_ascii_lowercase();
            let app = cut(str_at(ev, &["unmapped", "clientAppUsed"]).unwrap_or("Not reported"));
            let d = out.entry((tenant, day)).or_default();
            d.total += 1;
            if is_legacy_client(&app) {
                let user = cut(str_at(ev, &["user", "name"]).unwrap_or("(unknown user)"));
                *d.legacy.entry((app.clone(), user)).or_default() += 1;
            }
            *d.by_client_app.entry(app).or_default() += 1;
        }
    }
    out
}

/// Where the digests are kept.
#[async_trait]
pub trait DigestStore: Send + Sync {
    /// Adds `delta` to the tenant's day (atomic counters: concurrent pollers add up).
    async fn add(&self, tenant: &str, day: NaiveDate, delta: &DayDelta) -> Result<(), StoreError>;

    /// The tenant's stored days in `[from, to]`, in day order.
    async fn days(
        &self,
        tenant: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DayDigest>, StoreError>;
}

/// Adds `delta` to `day` under the caps (the reference semantics every store follows).
pub fn apply(day: &mut DayDigest, delta: &DayDelta) {
    day.total += delta.total;
    for (app, n) in &delta.by_client_app {
        let key =
            if day.by_client_app.contains_key(app) || day.by_client_app.len() < MAX_CLIENT_APPS {
                app.clone()
            } else {
                OTHER_CLIENT_APP.to_string()
            };
        *day.by_client_app.entry(key).or_default() += n;
    }
    for (k, n) in &delta.legacy {
        if day.legacy.contains_key(k) || day.legacy.len() < MAX_LEGACY_ENTRIES {
            *day.legacy.entry(k.clone()).or_default() += n;
        } else {
            day.dropped += n;
        }
    }
}

/// Digests in memory (tests, the embedded mode).
#[derive(Debug, Default)]
pub struct MemoryDigestStore {
    days: Mutex<BTreeMap<(String, NaiveDate), DayDigest>>,
}

#[async_trait]
impl DigestStore for MemoryDigestStore {
    async fn add(&self, tenant: &str, day: NaiveDate, delta: &DayDelta) -> Result<(), StoreError> {
        let mut days = self
            .days
            .lock()
            .map_err(|_| StoreError::Backend("digest store lock poisoned".into()))?;
        let d = days
            .entry((tenant.to_ascii_lowercase(), day))
            .or_insert_with(|| DayDigest {
                day,
                total: 0,
                by_client_app: BTreeMap::new(),
                legacy: BTreeMap::new(),
                dropped: 0,
            });
        apply(d, delta);
        Ok(())
    }

    async fn days(
        &self,
        tenant: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<DayDigest>, StoreError> {
        let days = self
            .days
            .lock()
            .map_err(|_| StoreError::Backend("digest store lock poisoned".into()))?;
        let t = tenant.to_ascii_lowercase();
        Ok(days
            .range((t.clone(), from)..=(t, to))
            .map(|(_, d)| d.clone())
            .collect())
    }
}

/// The [`EventSink`] decorator that keeps the sign-in digest of what it delivered.
pub struct DigestSink {
    inner: Arc<dyn EventSink>,
    store: Arc<dyn DigestStore>,
    telemetry: Arc<dyn Telemetry>,
    clock: SharedClock,
    timeout: Duration,
}

impl std::fmt::Debug for DigestSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestSink")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl DigestSink {
    /// Delivers through `inner`, then adds the sign-ins to `store`.
    pub fn new(
        inner: Arc<dyn EventSink>,
        store: Arc<dyn DigestStore>,
        telemetry: Arc<dyn Telemetry>,
        clock: SharedClock,
    ) -> Self {
        Self {
            inner,
            store,
            telemetry,
            clock,
            timeout: WRITE_TIMEOUT,
        }
    }

    /// The time a digest write may take (default [`WRITE_TIMEOUT`]).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

#[async_trait]
impl EventSink for DigestSink {
    async fn send(&self, envelopes: &[Envelope]) -> Result<(), SinkError> {
        self.inner.send(envelopes).await?;
        let deltas = aggregate(envelopes);
        if deltas.is_empty() {
            return Ok(());
        }
        let write = async {
            for ((tenant, day), delta) in &deltas {
                if let Err(e) = self.store.add(tenant, *day, delta).await {
                    return Err((tenant.clone(), e.to_string()));
                }
            }
            Ok(())
        };
        let failed = match tokio::time::timeout(self.timeout, write).await {
            Ok(Ok(())) => None,
            Ok(Err((tenant, error))) => Some((tenant, error)),
            Err(_) => Some((
                deltas
                    .keys()
                    .next()
                    .map(|k| k.0.clone())
                    .unwrap_or_default(),
                "timed out".to_string(),
            )),
        };
        if let Some((tenant, error)) = failed {
            tracing::warn!(tenant = %tenant, error = %error, "sign-in digest not written; events were delivered");
            self.telemetry.emit(
                &Event::DigestWriteFailed { tenant: &tenant },
                self.clock.now(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::Stream;
    use chrono::Utc;
    use serde_json::json;

    const T: &str = "11111111-1111-1111-1111-111111111111";
    const DAY: i64 = 86_400_000;

    fn si(t: i64, app: Option<&str>, user: &str) -> Value {
        json!({"class_uid": 3002, "time": t, "user": {"name": user},
            "metadata": {"tenant_uid": T, "log_name": "signIns"},
            "unmapped": {"clientAppUsed": app}})
    }

    fn env(events: Vec<Value>) -> Envelope {
        Envelope {
            envelope_version: 1,
            ocsf_version: "1.8.0".into(),
            tenant_id: T.into(),
            stream: Stream::Signins,
            events,
        }
    }

    #[test]
    fn aggregates_sign_ins_per_day_client_app_and_legacy_user() {
        let other_log = json!({"class_uid": 3002, "time": 0,
            "metadata": {"tenant_uid": T, "log_name": "directoryAudits"}});
        let d = aggregate(&[env(vec![
            si(DAY + 5, Some("IMAP4"), "a@x.example"),
            si(DAY + 6, Some("IMAP4"), "a@x.example"),
            si(DAY + 7, Some("Browser"), "b@x.example"),
            si(2 * DAY, None, "b@x.example"),
            other_log,
        ])]);
        assert_eq!(d.len(), 2);
        let day1 = &d[&(T.to_string(), NaiveDate::from_ymd_opt(1970, 1, 2).unwrap())];
        assert_eq!(day1.total, 3);
        assert_eq!(day1.by_client_app["IMAP4"], 2);
        assert_eq!(day1.by_client_app["Browser"], 1);
        assert_eq!(day1.legacy.len(), 1);
        assert_eq!(day1.legacy[&("IMAP4".into(), "a@x.example".into())], 2);
        let day2 = &d[&(T.to_string(), NaiveDate::from_ymd_opt(1970, 1, 3).unwrap())];
        assert_eq!(day2.by_client_app["Not reported"], 1);
        assert!(day2.legacy.is_empty());
    }

    #[test]
    fn a_full_day_counts_what_it_turns_away() {
        let mut day = DayDigest {
            day: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
            total: 0,
            by_client_app: BTreeMap::new(),
            legacy: BTreeMap::new(),
            dropped: 0,
        };
        let mut delta = DayDelta::default();
        for i in 0..MAX_LEGACY_ENTRIES + 10 {
            delta.total += 1;
            delta.legacy.insert(("POP3".into(), format!("u{i}")), 1);
        }
        apply(&mut day, &delta);
        assert_eq!(day.legacy.len(), MAX_LEGACY_ENTRIES);
        assert_eq!(day.dropped, 10);
        // A user already recorded still counts once the day is full.
        let mut again = DayDelta::default();
        let (k, _) = day
            .legacy
            .iter()
            .next()
            .map(|(k, v)| (k.clone(), *v))
            .unwrap();
        again.total = 1;
        again.legacy.insert(k.clone(), 1);
        apply(&mut day, &again);
        assert_eq!(day.legacy[&k], 2);
        assert_eq!(day.dropped, 10);
    }

    #[derive(Debug, Default)]
    struct Recorder(Mutex<Vec<String>>);
    impl Telemetry for Recorder {
        fn emit(&self, event: &Event<'_>, _at: DateTime<Utc>) {
            self.0.lock().unwrap().push(event.name().to_string());
        }
    }

    struct Accept(Mutex<usize>);
    #[async_trait]
    impl EventSink for Accept {
        async fn send(&self, e: &[Envelope]) -> Result<(), SinkError> {
            *self.0.lock().unwrap() += e.len();
            Ok(())
        }
    }

    struct Refuse;
    #[async_trait]
    impl EventSink for Refuse {
        async fn send(&self, _: &[Envelope]) -> Result<(), SinkError> {
            Err(SinkError::Backend("down".into()))
        }
    }

    struct Broken;
    #[async_trait]
    impl DigestStore for Broken {
        async fn add(&self, _: &str, _: NaiveDate, _: &DayDelta) -> Result<(), StoreError> {
            Err(StoreError::Backend("UpdateItem: throttled".into()))
        }
        async fn days(
            &self,
            _: &str,
            _: NaiveDate,
            _: NaiveDate,
        ) -> Result<Vec<DayDigest>, StoreError> {
            Ok(Vec::new())
        }
    }

    struct Hanging;
    #[async_trait]
    impl DigestStore for Hanging {
        async fn add(&self, _: &str, _: NaiveDate, _: &DayDelta) -> Result<(), StoreError> {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Ok(())
        }
        async fn days(
            &self,
            _: &str,
            _: NaiveDate,
            _: NaiveDate,
        ) -> Result<Vec<DayDigest>, StoreError> {
            Ok(Vec::new())
        }
    }

    fn clock() -> SharedClock {
        Arc::new(crate::clock::SystemClock)
    }

    #[tokio::test]
    async fn the_digest_follows_delivery() {
        let store = Arc::new(MemoryDigestStore::default());
        let tel = Arc::new(Recorder::default());
        let sink = DigestSink::new(
            Arc::new(Accept(Mutex::new(0))),
            store.clone(),
            tel.clone(),
            clock(),
        );
        let batch = [env(vec![si(DAY, Some("POP3"), "a@x.example")])];
        sink.send(&batch).await.unwrap();
        sink.send(&batch).await.unwrap();
        let day = NaiveDate::from_ymd_opt(1970, 1, 2).unwrap();
        let days = store.days(T, day, day).await.unwrap();
        assert_eq!(days.len(), 1);
        assert_eq!(days[0].total, 2, "a redelivered batch counts twice");
        assert!(tel.0.lock().unwrap().is_empty());

        // Nothing is counted for what the queue refused, and the refusal is returned.
        let refused = DigestSink::new(Arc::new(Refuse), store.clone(), tel.clone(), clock());
        assert!(refused.send(&batch).await.is_err());
        assert_eq!(store.days(T, day, day).await.unwrap()[0].total, 2);
    }

    #[tokio::test]
    async fn a_failed_or_slow_digest_write_never_fails_delivery() {
        let tel = Arc::new(Recorder::default());
        let inner = Arc::new(Accept(Mutex::new(0)));
        let batch = [env(vec![si(DAY, Some("POP3"), "a@x.example")])];
        let broken = DigestSink::new(inner.clone(), Arc::new(Broken), tel.clone(), clock());
        broken.send(&batch).await.unwrap();
        let slow = DigestSink::new(inner.clone(), Arc::new(Hanging), tel.clone(), clock())
            .with_timeout(Duration::from_millis(20));
        let started = std::time::Instant::now();
        slow.send(&batch).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(60));
        assert_eq!(*inner.0.lock().unwrap(), 2);
        assert_eq!(
            *tel.0.lock().unwrap(),
            vec![
                "DigestWriteFailed".to_string(),
                "DigestWriteFailed".to_string()
            ]
        );
    }
}
