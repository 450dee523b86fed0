//! Reports-API throttling: sliding windows in simulated time, per app per tenant and per app
//! across all tenants. Every request is counted, throttled ones included, as Microsoft keeps
//! counting usage while a client is throttled.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use crate::config::ThrottleConfig;
use crate::generator::TICKS_PER_SEC;

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limit {
    /// The per-app limit across all tenants.
    App,
    /// The per-app-per-tenant limit.
    Tenant,
}

/// Sliding-window request counters.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    per_app: HashMap<String, VecDeque<i64>>,
    per_tenant: HashMap<(String, String), VecDeque<i64>>,
}

fn window_ticks(d: Duration) -> i64 {
    i64::try_from(d.as_micros())
        .unwrap_or(i64::MAX / 10)
        .saturating_mul(10)
}

/// Records a request at `now` (ticks) in `q` and returns the seconds until a new request
/// would be admitted, if the window is now over `limit`.
fn hit(q: &mut VecDeque<i64>, now: i64, limit: u32, window: i64) -> Option<u64> {
    while q.front().is_some_and(|t| *t <= now - window) {
        q.pop_front();
    }
    q.push_back(now);
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if q.len() <= limit {
        return None;
    }
    // A request at T is admitted when fewer than `limit` recorded requests are newer than
    // T - window, i.e. once the entry at index len - limit has left the window.
    let pivot = q.get(q.len() - limit).copied().unwrap_or(now);
    let wait = pivot + window - now;
    let secs = (wait + TICKS_PER_SEC - 1) / TICKS_PER_SEC;
    Some(u64::try_from(secs.max(1)).unwrap_or(1))
}

impl Throttle {
    /// Counts one request of `app` on `tenant` and says whether it is throttled, with the
    /// Retry-After seconds.
    pub(crate) fn check(
        &mut self,
        cfg: &ThrottleConfig,
        app: &str,
        tenant: &str,
        now_ticks: i64,
    ) -> Option<(Limit, u64)> {
        if !cfg.enabled {
            return None;
        }
        let app_q = self.per_app.entry(app.to_ascii_lowercase()).or_default();
        let app_hit = hit(app_q, now_ticks, cfg.per_app.0, window_ticks(cfg.per_app.1));
        let t_q = self
            .per_tenant
            .entry((app.to_ascii_lowercase(), tenant.to_ascii_lowercase()))
            .or_default();
        let tenant_hit = hit(
            t_q,
            now_ticks,
            cfg.per_tenant.0,
            window_ticks(cfg.per_tenant.1),
        );
        match (app_hit, tenant_hit) {
            (Some(a), Some(t)) => Some((Limit::App, a.max(t))),
            (Some(a), None) => Some((Limit::App, a)),
            (None, Some(t)) => Some((Limit::Tenant, t)),
            (None, None) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_per_ten_seconds_then_retry_after() {
        let cfg = ThrottleConfig::default();
        let mut t = Throttle::default();
        for _ in 0..5 {
            assert_eq!(t.check(&cfg, "a", "t", 0), None);
        }
        assert_eq!(
            t.check(&cfg, "a", "t", TICKS_PER_SEC),
            Some((Limit::Tenant, 9))
        );
        assert_eq!(t.check(&cfg, "a", "t2", TICKS_PER_SEC), None);
        // At 10 s the five first requests left the window; the throttled one still counts.
        assert_eq!(t.check(&cfg, "a", "t", 10 * TICKS_PER_SEC), None);
    }
}
