//! Request pacing per Microsoft throttling bucket, and backoff.
//!
//! Microsoft counts requests in separate budgets ([`Bucket`]): the Entra reporting APIs
//! (sign-ins, directory audits: 5 requests per 10 s per app per tenant, and 122 per 10 s per
//! app across all tenants), the directory APIs (users, service principals, roles), the Outlook
//! APIs (inbox rules) and the Management Activity API. Every source names its bucket. [`Pacer`]
//! keeps a sliding window per (bucket, tenant), and one per app registration for the whole
//! process on the reporting bucket (a configured share of that app's limit: each app
//! registration has its own 122 per 10 s), and makes callers wait through the
//! injected [`Clock`](crate::clock::Clock) until both have room. A 429 blocks the bucket it
//! names until `Retry-After` has passed, so nobody in this process retries blindly into it.
//!
//! Waiting is bounded by a deadline: a caller that cannot get a slot in time gets
//! [`PaceError::Deadline`] instead of being killed mid-call.
//!
//! `Retry-After` is untrusted input: [`parse_retry_after`] never panics and never returns more
//! than [`MAX_RETRY_AFTER`], blocks are capped at that much past now, and every "now + wait"
//! goes through [`saturating_after`], so no header value can crash or freeze the poller.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use rand::Rng;

use crate::clock::{SharedClock, to_delta};

/// A rate: `requests` per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests allowed per window.
    pub requests: u32,
    /// Window length.
    pub window: Duration,
}

impl Rate {
    /// Microsoft's per-app-per-tenant limit for the reporting APIs.
    pub const REPORTS_PER_TENANT: Rate = Rate {
        requests: 5,
        window: Duration::from_secs(10),
    };
    /// What this pipeline keeps to per tenant on the reporting APIs: Microsoft's limit with a
    /// 10 % margin on the window (5 per 11 s), so that clock differences and requests that
    /// reach Microsoft later than they left never add up to a sixth request in its window.
    pub const REPORTS_PER_TENANT_PACED: Rate = Rate {
        requests: 5,
        window: Duration::from_secs(11),
    };
    /// Microsoft's per-app limit across all tenants for the reporting APIs.
    pub const REPORTS_PER_APP: Rate = Rate {
        requests: 122,
        window: Duration::from_secs(10),
    };
}

/// A throttling budget Microsoft counts on its own. Each source declares the bucket its
/// requests are counted in, so a busy stream of one API never slows a stream of another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Bucket {
    /// The Entra reporting APIs: `auditLogs/signIns`, `auditLogs/directoryAudits`,
    /// authentication-method registration reports.
    Reports,
    /// The directory (identity and access) APIs: users, groups, service principals, grants,
    /// role assignments, policies. A token bucket in resource units per app and tenant.
    Directory,
    /// The Outlook APIs (mailbox settings and inbox rules), limited per mailbox.
    Outlook,
    /// The Office 365 Management Activity API, limited per tenant and publisher.
    ManagementActivity,
}

impl Bucket {
    /// Every bucket.
    pub const ALL: [Bucket; 4] = [
        Bucket::Reports,
        Bucket::Directory,
        Bucket::Outlook,
        Bucket::ManagementActivity,
    ];

    /// Stable name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Reports => "reports",
            Bucket::Directory => "directory",
            Bucket::Outlook => "outlook",
            Bucket::ManagementActivity => "management_activity",
        }
    }

    /// The per-tenant rate this process keeps to by default. Reports: Microsoft's 5 per 10 s.
    /// Directory: the smallest tenants get 3,500 resource units per 10 s and a read costs 1 to
    /// 5 units, so 100 requests per 10 s stays well inside. Outlook: 10,000 requests per 10
    /// minutes per mailbox; 100 per 10 s per tenant keeps one mailbox below it. Management
    /// Activity: 2,000 requests per minute per tenant; 200 per 10 s keeps a margin.
    pub fn per_tenant(self) -> Rate {
        let requests = match self {
            Bucket::Reports => return Rate::REPORTS_PER_TENANT,
            Bucket::Directory | Bucket::Outlook => 100,
            Bucket::ManagementActivity => 200,
        };
        Rate {
            requests,
            window: Duration::from_secs(10),
        }
    }
}

/// Who is asking for a request slot. Regular passes keep events fresh and come first;
/// sweeps and onboarding backfills only use the part of the process-wide window that is left
/// after a reserve, so however many tenants backfill at once, the regular polls of the others
/// still find room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Priority {
    /// Regular passes (fresh events).
    #[default]
    Regular,
    /// Sweeps and backfills.
    Background,
}

/// Share of the process-wide window that background requests leave free.
pub const BACKGROUND_RESERVE: f64 = 0.25;

/// How long a background request that left the tenant's last slot to regular ones waits
/// before it looks again.
const BACKGROUND_RETRY_MS: i64 = 250;

impl Rate {
    /// The rate background requests may use: this rate less [`BACKGROUND_RESERVE`], at least 1.
    pub fn background(self) -> Rate {
        let keep = (f64::from(self.requests) * (1.0 - BACKGROUND_RESERVE)).floor() as u32;
        Rate {
            requests: keep.max(1),
            window: self.window,
        }
    }
}

/// Why a slot could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaceError {
    /// The wait would pass the deadline. `blocked` says Microsoft's throttling (a bucket held
    /// after a 429) is what pushed the slot past it, rather than our own pacing.
    #[error("no request slot before the deadline")]
    Deadline {
        /// Whether a throttling block decided it.
        blocked: bool,
    },
}

/// A budget of requests shared beyond one tenant (the fleet-wide limit). The in-process
/// implementation is [`Pacer`]'s app window; a deployment with many concurrent pollers plugs in
/// a shared one.
#[async_trait]
pub trait RequestBudget: Send + Sync + std::fmt::Debug {
    /// Waits until one request of the app registration `app` (its client id; empty when
    /// unknown) may be sent, or fails if that would pass `deadline`.
    async fn acquire(&self, app: &str, deadline: DateTime<Utc>) -> Result<(), PaceError>;
    /// Microsoft answered 429 for the app `app` as a whole: none of its requests may be sent
    /// before `until`.
    fn block_until(&self, app: &str, until: DateTime<Utc>);
}

#[derive(Debug, Default)]
struct Window {
    sent: VecDeque<DateTime<Utc>>,
    blocked_until: Option<DateTime<Utc>>,
}

impl Window {
    /// Records a request at `at`, keeping the times in order.
    fn record(&mut self, at: DateTime<Utc>) {
        let i = self.sent.partition_point(|t| *t <= at);
        self.sent.insert(i, at);
    }

    /// Moves one request's time from `from` to the later `to` (when its response came).
    fn settle(&mut self, from: DateTime<Utc>, to: DateTime<Utc>) {
        if let Some(i) = self.sent.iter().position(|t| *t == from) {
            self.sent.remove(i);
            self.record(to.max(from));
        }
    }

    /// Requests counted in the window ending at `now`.
    fn in_window(&mut self, rate: Rate, now: DateTime<Utc>) -> usize {
        let _ = self.next_slot(rate, now);
        self.sent.len()
    }

    /// When the next request may go, given `rate`, as of `now`.
    fn next_slot(&mut self, rate: Rate, now: DateTime<Utc>) -> DateTime<Utc> {
        while let Some(first) = self.sent.front() {
            if saturating_after(*first, rate.window) <= now {
                self.sent.pop_front();
            } else {
                break;
            }
        }
        let mut at = now;
        if self.sent.len() >= rate.requests as usize {
            let idx = self.sent.len() - rate.requests as usize;
            if let Some(t) = self.sent.get(idx) {
                at = at.max(saturating_after(*t, rate.window));
            }
        }
        if let Some(b) = self.blocked_until {
            at = at.max(b);
        }
        at
    }
}

/// Sliding-window pacer per (bucket, tenant), plus one process-wide window per app
/// registration on the reporting bucket.
#[derive(Debug)]
pub struct Pacer {
    clock: SharedClock,
    reports_per_tenant: Rate,
    app: Option<Rate>,
    state: Mutex<PacerState>,
}

#[derive(Debug, Default)]
struct PacerState {
    tenants: HashMap<(Bucket, String), Window>,
    /// Regular requests waiting for a slot, per (bucket, tenant): background requests of that
    /// tenant let them go first.
    waiting: HashMap<(Bucket, String), u32>,
    /// The app-wide windows, by app registration (client id, lower case; empty: unknown).
    apps: HashMap<String, Window>,
    /// The app registration that serves each tenant, as [`Pacer::assign`] said.
    app_of: HashMap<String, String>,
}

/// A slot taken: hand it back to [`Pacer::settle`] when the response came, so the window
/// counts the request at its latest possible arrival at Microsoft.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    key: (Bucket, String),
    at: DateTime<Utc>,
    /// The app window the request was counted in, if any.
    app: Option<String>,
}

impl Pacer {
    /// A pacer with the given per-tenant rate of the reporting bucket and an optional
    /// process-wide rate on it; the other buckets use [`Bucket::per_tenant`].
    pub fn new(clock: SharedClock, reports_per_tenant: Rate, app: Option<Rate>) -> Arc<Self> {
        Arc::new(Self {
            clock,
            reports_per_tenant,
            app,
            state: Mutex::new(PacerState::default()),
        })
    }

    fn rate(&self, bucket: Bucket) -> Rate {
        match bucket {
            Bucket::Reports => self.reports_per_tenant,
            other => other.per_tenant(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PacerState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for a slot for `tenant` in the reporting bucket (and the app window), or fails
    /// at `deadline`.
    pub async fn acquire(&self, tenant: &str, deadline: DateTime<Utc>) -> Result<Slot, PaceError> {
        self.acquire_as(Bucket::Reports, tenant, deadline, Priority::Regular)
            .await
    }

    /// Waits for a slot for `tenant` in `bucket`, at the given priority. Background requests
    /// (sweeps, backfills) never take the last slot of the tenant's window, and wait while a
    /// regular request of the same tenant and bucket is waiting: a tenant's fresh events come
    /// before its own history. On the reporting bucket they also leave a reserve of the app
    /// window to other tenants' regular polls.
    pub async fn acquire_as(
        &self,
        bucket: Bucket,
        tenant: &str,
        deadline: DateTime<Utc>,
        priority: Priority,
    ) -> Result<Slot, PaceError> {
        let key = (bucket, tenant.to_string());
        let rate = self.rate(bucket);
        let app = self
            .app
            .filter(|_| bucket == Bucket::Reports)
            .map(|r| (r, self.app_of(tenant)));
        let regular = priority == Priority::Regular;
        if regular {
            *self.lock().waiting.entry(key.clone()).or_default() += 1;
        }
        let result = self
            .wait_for_slot(&key, rate, app, priority, deadline)
            .await;
        if regular {
            let mut st = self.lock();
            if let Some(n) = st.waiting.get_mut(&key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    st.waiting.remove(&key);
                }
            }
        }
        result
    }

    async fn wait_for_slot(
        &self,
        key: &(Bucket, String),
        rate: Rate,
        app: Option<(Rate, String)>,
        priority: Priority,
        deadline: DateTime<Utc>,
    ) -> Result<Slot, PaceError> {
        loop {
            let now = self.clock.now();
            let (at, blocked) = {
                let mut st = self.lock();
                let regular_waiting = st.waiting.get(key).copied().unwrap_or(0) > 0;
                let w = st.tenants.entry(key.clone()).or_default();
                let mut t_at = w.next_slot(rate, now);
                let blocked = w.blocked_until.is_some_and(|b| b > now && b >= t_at);
                if priority == Priority::Background && t_at <= now {
                    // Keep the last slot of the window for the tenant's regular requests.
                    let room = rate.requests.saturating_sub(1).max(1) as usize;
                    if regular_waiting || w.in_window(rate, now) >= room {
                        t_at = now + TimeDelta::milliseconds(BACKGROUND_RETRY_MS);
                    }
                }
                let a_at = match (&app, priority) {
                    (Some((rate, id)), Priority::Regular) => {
                        st.apps.entry(id.clone()).or_default().next_slot(*rate, now)
                    }
                    (Some((rate, id)), Priority::Background) => st
                        .apps
                        .entry(id.clone())
                        .or_default()
                        .next_slot(rate.background(), now),
                    (None, _) => now,
                };
                let at = t_at.max(a_at);
                if at <= now {
                    if let Some(w) = st.tenants.get_mut(key) {
                        w.record(now);
                    }
                    if let Some((_, id)) = &app {
                        st.apps.entry(id.clone()).or_default().record(now);
                    }
                    return Ok(Slot {
                        key: key.clone(),
                        at: now,
                        app: app.map(|(_, id)| id),
                    });
                }
                (at, blocked)
            };
            if at > deadline {
                return Err(PaceError::Deadline { blocked });
            }
            let wait = (at - now).to_std().unwrap_or(Duration::from_millis(1));
            self.clock.sleep(wait.max(Duration::from_millis(1))).await;
        }
    }

    /// The response to the request of `slot` came at the clock's now: the windows count the
    /// request from then, the latest it can have reached Microsoft. Pacing by the time a slot
    /// was taken would let a slow request and the next window's first one land within one
    /// window at Microsoft.
    pub fn settle(&self, slot: &Slot) {
        let now = self.clock.now();
        let mut st = self.lock();
        if let Some(w) = st.tenants.get_mut(&slot.key) {
            w.settle(slot.at, now);
        }
        if let Some(id) = &slot.app
            && let Some(w) = st.apps.get_mut(id)
        {
            w.settle(slot.at, now);
        }
    }

    /// Microsoft throttled `tenant` in `bucket`: hold that bucket until `until`, but never
    /// longer than [`MAX_RETRY_AFTER`] from now (a later `until` would only freeze the tenant).
    pub fn block_tenant(&self, bucket: Bucket, tenant: &str, until: DateTime<Utc>) {
        let until = self.cap_block(until);
        let mut st = self.lock();
        let w = st.tenants.entry((bucket, tenant.to_string())).or_default();
        w.blocked_until = Some(w.blocked_until.map_or(until, |b| b.max(until)));
    }

    /// Microsoft throttled the app registration `app` (client id) as a whole: hold every
    /// request of its tenants until `until`, at most [`MAX_RETRY_AFTER`] from now. Other apps'
    /// tenants are not held: each registration has its own limit.
    pub fn block_app(&self, app: &str, until: DateTime<Utc>) {
        let until = self.cap_block(until);
        let mut st = self.lock();
        let w = st.apps.entry(app.to_ascii_lowercase()).or_default();
        w.blocked_until = Some(w.blocked_until.map_or(until, |b| b.max(until)));
    }

    /// Records that `tenant` is served by the app registration `app` (its client id): the
    /// tenant's reporting requests count in that app's window. A tenant never assigned counts
    /// in the window of the unknown app (the empty id).
    pub fn assign(&self, tenant: &str, app: &str) {
        self.lock()
            .app_of
            .insert(tenant.to_ascii_lowercase(), app.to_ascii_lowercase());
    }

    /// The app registration serving `tenant` (empty when not assigned).
    fn app_of(&self, tenant: &str) -> String {
        self.lock()
            .app_of
            .get(&tenant.to_ascii_lowercase())
            .cloned()
            .unwrap_or_default()
    }

    fn cap_block(&self, until: DateTime<Utc>) -> DateTime<Utc> {
        until.min(saturating_after(self.clock.now(), MAX_RETRY_AFTER))
    }
}

#[async_trait]
impl RequestBudget for Pacer {
    async fn acquire(&self, app: &str, deadline: DateTime<Utc>) -> Result<(), PaceError> {
        // The app's window only: key the request by a tenant name that stands for the app (a
        // client id is never a tenant's), assigned to that app; its per-tenant window is the
        // pacer's (unlimited in a fleet budget, see `aws::handler::app_budget`).
        let key = format!("app:{}", app.to_ascii_lowercase());
        self.assign(&key, app);
        Pacer::acquire(self, &key, deadline).await.map(|_| ())
    }
    fn block_until(&self, app: &str, until: DateTime<Utc>) {
        self.block_app(app, until);
    }
}

/// Exponential backoff with full jitter and a floor: the n-th retry (0-based) waits
/// `floor + uniform(0, min(cap, base * 2^n))`. With the defaults the first retry waits 5–10 s,
/// as Microsoft's resilience guidance asks (first retry at least 5 s later, never a tight loop).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Minimum wait before any retry.
    pub floor: Duration,
    /// Base of the exponential part.
    pub base: Duration,
    /// Upper bound of the exponential part.
    pub cap: Duration,
    /// Attempts in total (first try included).
    pub max_attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            floor: Duration::from_secs(5),
            base: Duration::from_secs(5),
            cap: Duration::from_secs(300),
            max_attempts: 6,
        }
    }
}

impl Backoff {
    /// The upper bound of the jittered part for retry `n` (0-based).
    pub fn ceiling(&self, n: u32) -> Duration {
        let factor = 2u64.saturating_pow(n.min(30));
        let exp = self
            .base
            .saturating_mul(u32::try_from(factor).unwrap_or(u32::MAX));
        exp.min(self.cap)
    }

    /// The wait before retry `n` (0-based), drawing the jitter from `rng`.
    pub fn delay<R: Rng + ?Sized>(&self, n: u32, rng: &mut R) -> Duration {
        let ceiling = self.ceiling(n);
        let jitter_ms = rng.random_range(0..=ceiling.as_millis().min(u128::from(u64::MAX)) as u64);
        self.floor + Duration::from_millis(jitter_ms)
    }
}

/// The longest wait a `Retry-After` may impose, and the longest a throttled bucket stays
/// blocked (5 minutes, the default poller timeout).
///
/// A poll's deadline is at most the Lambda timeout (300 s by default, 900 s at most), and a
/// retry that would pass the deadline ends the call with
/// [`GraphError::DeadlineExceeded`](super::GraphError::DeadlineExceeded) at once: a longer
/// wait cannot help the call that got the 429. In a warm process (or the embedded runner) it
/// would only freeze the tenant's bucket for every later poll, possibly for hours or
/// forever. Microsoft's throttling waits are seconds to a minute or so, well below the cap.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// `now + wait`, saturating at the latest representable time instead of panicking.
pub fn saturating_after(now: DateTime<Utc>, wait: Duration) -> DateTime<Utc> {
    now.checked_add_signed(to_delta(wait))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Parses `Retry-After` (delta-seconds, or an HTTP date relative to `now`), clamped to
/// [`MAX_RETRY_AFTER`].
///
/// Never panics. Delta-seconds too large for any integer, a huge fractional value (not
/// standard, but seen) and a date far in the future all mean "a long wait" and give
/// [`MAX_RETRY_AFTER`]; a date in the past gives zero. Empty, negative, NaN, infinite and
/// unparsable values give `None` (the caller backs off instead).
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let v = value.trim();
    if v.is_empty() {
        return None;
    }
    let wait = if v.bytes().all(|b| b.is_ascii_digit()) {
        // Only digits: a delta-seconds, however long.
        v.parse::<u64>()
            .map(Duration::from_secs)
            .unwrap_or(MAX_RETRY_AFTER)
    } else if let Ok(secs) = v.parse::<f64>() {
        // Accepts `2.5`, `1e20`, `-3`, `inf`, `NaN`: keep only finite non-negative values, and
        // clamp before converting (`Duration::from_secs_f64` panics past u64::MAX seconds).
        if !secs.is_finite() || secs < 0.0 {
            return None;
        }
        Duration::try_from_secs_f64(secs.min(MAX_RETRY_AFTER.as_secs_f64())).ok()?
    } else {
        let at = DateTime::parse_from_rfc2822(v).ok()?.with_timezone(&Utc);
        // Both ends lie within chrono's range, so the difference cannot overflow.
        let delta = at.signed_duration_since(now);
        if delta <= TimeDelta::zero() {
            Duration::ZERO
        } else {
            delta.to_std().unwrap_or(MAX_RETRY_AFTER)
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use chrono::TimeZone;
    use rand::SeedableRng;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
            .single()
            .unwrap_or_default()
    }

    #[test]
    fn backoff_first_retry_is_at_least_five_seconds_and_grows_to_the_cap() {
        let b = Backoff::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..200 {
            let d0 = b.delay(0, &mut rng);
            assert!(
                d0 >= Duration::from_secs(5) && d0 <= Duration::from_secs(10),
                "{d0:?}"
            );
            let d9 = b.delay(9, &mut rng);
            assert!(d9 <= Duration::from_secs(305), "{d9:?}");
        }
        assert_eq!(b.ceiling(0), Duration::from_secs(5));
        assert_eq!(b.ceiling(3), Duration::from_secs(40));
        assert_eq!(b.ceiling(40), Duration::from_secs(300));
        // Full jitter: draws spread across the range rather than sitting at one value.
        let draws: Vec<Duration> = (0..50).map(|_| b.delay(4, &mut rng)).collect();
        let min = draws.iter().min().copied().unwrap_or_default();
        let max = draws.iter().max().copied().unwrap_or_default();
        assert!(max - min > Duration::from_secs(20), "{min:?}..{max:?}");
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("7", t0()), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after(" 2.5 ", t0()),
            Some(Duration::from_millis(2500))
        );
        assert_eq!(
            parse_retry_after("Sun, 01 Mar 2026 12:00:30 GMT", t0()),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_retry_after("soon", t0()), None);
    }

    #[test]
    fn hostile_retry_after_values_are_clamped_or_ignored() {
        let max = Some(MAX_RETRY_AFTER);
        // Long waits of every form are clamped (a valid 100000 used to block for 28 h, 1e20
        // panicked in `Duration::from_secs_f64`).
        for v in [
            "100000",
            "18446744073709551615",
            "99999999999999999999999999999999",
            "1e20",
            "1.7976931348623157e308",
            "+400",
            "Fri, 31 Dec 9999 23:59:59 GMT",
        ] {
            assert_eq!(parse_retry_after(v, t0()), max, "{v:?}");
        }
        // Dates in the past mean "now".
        for v in [
            "Thu, 01 Jan 1970 00:00:00 GMT",
            "Mon, 01 Jan 0001 00:00:00 GMT",
            "Sun, 01 Mar 2026 11:59:59 GMT",
        ] {
            assert_eq!(parse_retry_after(v, t0()), Some(Duration::ZERO), "{v:?}");
        }
        // Nonsense is no value at all: the caller backs off instead.
        for v in [
            "",
            "   ",
            "-5",
            "-0.5",
            "NaN",
            "nan",
            "inf",
            "-inf",
            "infinity",
            "1e",
            "0x10",
            "5s",
            "soon",
            "Sun, 99 Mar 2026 12:00:00 GMT",
        ] {
            assert_eq!(parse_retry_after(v, t0()), None, "{v:?}");
        }
        assert_eq!(
            parse_retry_after("300", t0()),
            Some(Duration::from_secs(300))
        );
        assert_eq!(parse_retry_after("0", t0()), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("01 Mar 2026 12:00:30 GMT", t0()),
            Some(Duration::from_secs(30)),
            "the weekday is optional"
        );
        // Even at the end of time a parsed wait turns into a deadline without panicking.
        let end = DateTime::<Utc>::MAX_UTC;
        let wait = parse_retry_after("100000", end).unwrap_or_default();
        assert_eq!(saturating_after(end, wait), end);
        assert_eq!(
            saturating_after(end - TimeDelta::seconds(1), Duration::MAX),
            end
        );
        assert_eq!(
            saturating_after(t0(), Duration::from_secs(7)),
            t0() + TimeDelta::seconds(7)
        );
    }

    proptest::proptest! {
        #[test]
        fn retry_after_never_panics_and_never_exceeds_the_cap(s in ".*") {
            let r = parse_retry_after(&s, t0());
            proptest::prop_assert!(r.is_none_or(|d| d <= MAX_RETRY_AFTER), "{s:?} gave {r:?}");
        }

        #[test]
        fn numeric_retry_after_never_panics_and_never_exceeds_the_cap(
            s in "[ +-]?[0-9]{0,40}(\\.[0-9]{0,20})?([eE][+-]?[0-9]{1,5})? ?"
        ) {
            let r = parse_retry_after(&s, t0());
            proptest::prop_assert!(r.is_none_or(|d| d <= MAX_RETRY_AFTER), "{s:?} gave {r:?}");
        }

        #[test]
        fn dated_retry_after_never_panics_and_never_exceeds_the_cap(
            day in 0u32..40, month in 0usize..12, year in 0u32..100_000,
            h in 0u32..30, m in 0u32..70, sec in 0u32..70, secs_from_epoch in proptest::num::i64::ANY
        ) {
            const MONTHS: [&str; 12] =
                ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
            let v = format!("{day:02} {} {year:04} {h:02}:{m:02}:{sec:02} GMT", MONTHS[month]);
            let now = DateTime::<Utc>::from_timestamp(secs_from_epoch % 8_000_000_000_000, 0)
                .unwrap_or_else(t0);
            let r = parse_retry_after(&v, now);
            proptest::prop_assert!(r.is_none_or(|d| d <= MAX_RETRY_AFTER), "{v:?} gave {r:?}");
            let _ = saturating_after(now, r.unwrap_or(Duration::MAX));
        }
    }

    #[tokio::test]
    async fn a_block_far_in_the_future_is_capped() {
        let clock = ManualClock::new(t0());
        let p = Pacer::new(Arc::new(clock.clone()), Rate::REPORTS_PER_TENANT, None);
        p.block_tenant(Bucket::Reports, "t1", DateTime::<Utc>::MAX_UTC);
        p.block_app("app-a", t0() + TimeDelta::days(365));
        let deadline = t0() + TimeDelta::hours(1);
        assert!(p.acquire("t1", deadline).await.is_ok());
        let cap = t0() + to_delta(MAX_RETRY_AFTER);
        assert_eq!(clock.now(), cap, "waited for the capped block only");
        // The app window is not configured here, but its block is capped just the same.
        let st = p.lock();
        assert_eq!(st.apps["app-a"].blocked_until, Some(cap));
    }

    #[tokio::test]
    async fn an_enormous_window_does_not_panic() {
        let clock = ManualClock::new(t0());
        let rate = Rate {
            requests: 1,
            window: Duration::MAX,
        };
        let p = Pacer::new(Arc::new(clock.clone()), rate, Some(rate));
        let deadline = t0() + TimeDelta::hours(1);
        assert!(p.acquire("t1", deadline).await.is_ok());
        assert_eq!(
            p.acquire("t1", deadline).await,
            Err(PaceError::Deadline { blocked: false }),
            "the window never frees up"
        );
    }

    #[tokio::test]
    async fn per_tenant_window_allows_five_per_ten_seconds() {
        let clock = ManualClock::new(t0());
        let p = Pacer::new(Arc::new(clock.clone()), Rate::REPORTS_PER_TENANT, None);
        let deadline = t0() + TimeDelta::hours(1);
        let mut times = Vec::new();
        for _ in 0..12 {
            p.acquire("t1", deadline).await.ok();
            times.push(clock.now());
        }
        // Any 10 s window holds at most 5 sends.
        for (i, t) in times.iter().enumerate() {
            let n = times[i..]
                .iter()
                .filter(|u| **u < *t + TimeDelta::seconds(10))
                .count();
            assert!(n <= 5, "window starting {t} has {n}");
        }
        assert_eq!(times[4], t0());
        assert_eq!(times[5], t0() + TimeDelta::seconds(10));
        // Another tenant is not slowed by t1.
        let before = clock.now();
        p.acquire("t2", deadline).await.ok();
        assert_eq!(clock.now(), before);
    }

    #[tokio::test]
    async fn blocked_bucket_waits_and_deadline_is_respected() {
        let clock = ManualClock::new(t0());
        let p = Pacer::new(Arc::new(clock.clone()), Rate::REPORTS_PER_TENANT, None);
        p.block_tenant(Bucket::Reports, "t1", t0() + TimeDelta::seconds(30));
        let r = p.acquire("t1", t0() + TimeDelta::seconds(10)).await;
        assert_eq!(r, Err(PaceError::Deadline { blocked: true }));
        assert_eq!(clock.now(), t0(), "gave up without waiting");
        p.acquire("t1", t0() + TimeDelta::minutes(5)).await.ok();
        assert_eq!(clock.now(), t0() + TimeDelta::seconds(30));
    }

    #[tokio::test]
    async fn each_app_registration_has_its_own_window_and_its_own_blocks() {
        let clock = ManualClock::new(t0());
        let app = Rate {
            requests: 10,
            window: Duration::from_secs(10),
        };
        let p = Pacer::new(Arc::new(clock.clone()), Rate::REPORTS_PER_TENANT, Some(app));
        let deadline = t0() + TimeDelta::hours(1);
        for i in 0..20 {
            p.assign(&format!("t{i}"), if i % 2 == 0 { "App-A" } else { "app-b" });
        }
        // Ten tenants of each app: both windows fill at once, nobody waits.
        for i in 0..20 {
            p.acquire(&format!("t{i}"), deadline).await.ok();
        }
        assert_eq!(clock.now(), t0());
        // The eleventh request of app A waits for A's window; B's do not move it.
        p.acquire("t0", deadline).await.ok();
        assert_eq!(clock.now(), t0() + TimeDelta::seconds(10));
        // An app-scoped block holds only that app's tenants.
        let now = clock.now();
        p.block_app("app-b", now + TimeDelta::seconds(60));
        p.acquire("t2", deadline).await.ok();
        assert_eq!(clock.now(), now, "app A is not held by app B's 429");
        p.acquire("t3", deadline).await.ok();
        assert_eq!(clock.now(), now + TimeDelta::seconds(60));
        // Through the fleet budget interface too.
        let budget: &dyn RequestBudget = p.as_ref();
        let before = clock.now();
        budget.acquire("app-c", deadline).await.ok();
        assert_eq!(
            clock.now(),
            before,
            "a third app starts with an empty window"
        );
    }

    #[tokio::test]
    async fn app_window_caps_all_tenants_together() {
        let clock = ManualClock::new(t0());
        let app = Rate {
            requests: 10,
            window: Duration::from_secs(10),
        };
        let p = Pacer::new(Arc::new(clock.clone()), Rate::REPORTS_PER_TENANT, Some(app));
        let deadline = t0() + TimeDelta::hours(1);
        for i in 0..10 {
            p.acquire(&format!("t{i}"), deadline).await.ok();
        }
        assert_eq!(clock.now(), t0());
        p.acquire("t99", deadline).await.ok();
        assert_eq!(clock.now(), t0() + TimeDelta::seconds(10));
    }

    #[tokio::test]
    async fn backfills_leave_a_reserve_of_the_app_window_to_regular_polls() {
        let clock = ManualClock::new(t0());
        let app = Rate {
            requests: 20,
            window: Duration::from_secs(10),
        };
        assert_eq!(app.background().requests, 15);
        let p = Pacer::new(Arc::new(clock.clone()), Rate::REPORTS_PER_TENANT, Some(app));
        let deadline = t0() + TimeDelta::hours(1);
        // Many tenants backfilling at once take only 15 of the 20 slots.
        for i in 0..15 {
            p.acquire_as(
                Bucket::Reports,
                &format!("new{i}"),
                deadline,
                Priority::Background,
            )
            .await
            .ok();
        }
        assert_eq!(clock.now(), t0());
        // A 16th background request would have to wait ...
        let short = t0() + TimeDelta::seconds(5);
        assert_eq!(
            p.acquire_as(Bucket::Reports, "new15", short, Priority::Background)
                .await,
            Err(PaceError::Deadline { blocked: false })
        );
        // ... while regular polls of other tenants still go at once.
        for i in 0..5 {
            p.acquire_as(
                Bucket::Reports,
                &format!("old{i}"),
                short,
                Priority::Regular,
            )
            .await
            .ok();
        }
        assert_eq!(clock.now(), t0(), "regular polls were not delayed");
        assert_eq!(
            p.acquire_as(Bucket::Reports, "old9", short, Priority::Regular)
                .await,
            Err(PaceError::Deadline { blocked: false }),
            "the whole window is still bounded"
        );
    }

    #[tokio::test]
    async fn a_tenants_backfill_leaves_its_last_slot_to_its_regular_pass() {
        let clock = ManualClock::new(t0());
        let p = Pacer::new(Arc::new(clock.clone()), Rate::REPORTS_PER_TENANT, None);
        let deadline = t0() + TimeDelta::hours(1);
        // The backfill takes four of the tenant's five slots at once, not the fifth.
        for _ in 0..4 {
            p.acquire_as(Bucket::Reports, "t1", deadline, Priority::Background)
                .await
                .ok();
        }
        assert_eq!(clock.now(), t0());
        let soon = t0() + TimeDelta::seconds(5);
        assert!(
            p.acquire_as(Bucket::Reports, "t1", soon, Priority::Background)
                .await
                .is_err(),
            "a fifth background request waits"
        );
        // The same tenant's regular pass gets the last slot at once.
        let before = clock.now();
        let later = before + TimeDelta::seconds(5);
        assert!(
            p.acquire_as(Bucket::Reports, "t1", later, Priority::Regular)
                .await
                .is_ok()
        );
        assert_eq!(clock.now(), before);
        // Another bucket of the same tenant is its own budget.
        assert!(
            p.acquire_as(Bucket::Directory, "t1", later, Priority::Background)
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_waiting_regular_request_goes_before_a_background_one() {
        let clock = ManualClock::new(t0());
        let p = Pacer::new(Arc::new(clock.clone()), Rate::REPORTS_PER_TENANT, None);
        let deadline = t0() + TimeDelta::hours(1);
        for _ in 0..5 {
            p.acquire("t1", deadline).await.ok();
        }
        // A regular request now waits for the window; while it waits, a background request
        // of the same tenant may not take the slot that frees up first.
        let (regular, background) = tokio::join!(
            p.acquire_as(Bucket::Reports, "t1", deadline, Priority::Regular),
            async {
                tokio::task::yield_now().await;
                p.acquire_as(Bucket::Reports, "t1", deadline, Priority::Background)
                    .await
            }
        );
        let (Ok(r), Ok(b)) = (regular, background) else {
            panic!("both get a slot eventually")
        };
        assert!(r.at <= b.at, "regular at {}, background at {}", r.at, b.at);
    }

    #[tokio::test]
    async fn a_settled_slot_counts_from_the_response() {
        let clock = ManualClock::new(t0());
        let p = Pacer::new(Arc::new(clock.clone()), Rate::REPORTS_PER_TENANT, None);
        let deadline = t0() + TimeDelta::hours(1);
        let mut slots = Vec::new();
        for _ in 0..5 {
            slots.extend(p.acquire("t1", deadline).await.ok());
        }
        // The responses came 3 s later: the window counts the requests from then, so the next
        // slot is at 13 s, not 10 s.
        clock.advance(Duration::from_secs(3));
        for slot in &slots {
            p.settle(slot);
        }
        p.acquire("t1", deadline).await.ok();
        assert_eq!(clock.now(), t0() + TimeDelta::seconds(13));
    }
}
