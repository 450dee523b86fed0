//! Time, injected. Every wait in the pipeline (backoff, pacing, schedules) goes through a
//! [`Clock`], so tests can run simulated hours in seconds and the simulator and the pipeline
//! can share one notion of "now".

use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};

/// A source of the current time and a way to wait.
#[async_trait]
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current UTC time.
    fn now(&self) -> DateTime<Utc>;
    /// Waits for `d` of this clock's time.
    async fn sleep(&self, d: Duration);
}

/// Shared handle to a clock.
pub type SharedClock = Arc<dyn Clock>;

/// Wall-clock time and real sleeps.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
    async fn sleep(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }
}

/// Virtual time for tests: `now` only moves when someone sleeps or calls [`ManualClock::advance`].
/// A sleep returns at once after moving the clock to at least `now_at_call + d`.
#[derive(Debug, Clone)]
pub struct ManualClock {
    inner: Arc<Mutex<DateTime<Utc>>>,
}

impl ManualClock {
    /// A clock starting at `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            inner: Arc::new(Mutex::new(start)),
        }
    }

    /// Moves time forward by `d` (never backwards).
    pub fn advance(&self, d: Duration) {
        let mut now = lock(&self.inner);
        *now += to_delta(d);
    }

    /// Sets the time to `t` if it is later than now; an earlier `t` is ignored.
    pub fn advance_to(&self, t: DateTime<Utc>) {
        let mut now = lock(&self.inner);
        if t > *now {
            *now = t;
        }
    }
}

#[async_trait]
impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *lock(&self.inner)
    }
    async fn sleep(&self, d: Duration) {
        let target = self.now() + to_delta(d);
        self.advance_to(target);
        // Let other tasks observe the new time.
        tokio::task::yield_now().await;
    }
}

/// Accelerated real time: `factor` simulated seconds pass per real second, and a sleep of `d`
/// takes `d / factor` of real time. Used by `make run` to play a simulated day in minutes.
#[derive(Debug, Clone)]
pub struct ScaledClock {
    start_sim: DateTime<Utc>,
    start_real: Instant,
    factor: f64,
}

impl ScaledClock {
    /// A clock that reads `start` now and runs `factor` times faster than real time.
    /// A factor below 1 is treated as 1.
    pub fn new(start: DateTime<Utc>, factor: f64) -> Self {
        Self {
            start_sim: start,
            start_real: Instant::now(),
            factor: if factor.is_finite() && factor >= 1.0 {
                factor
            } else {
                1.0
            },
        }
    }

    /// Simulated seconds per real second.
    pub fn factor(&self) -> f64 {
        self.factor
    }
}

#[async_trait]
impl Clock for ScaledClock {
    fn now(&self) -> DateTime<Utc> {
        let real = self.start_real.elapsed().as_secs_f64();
        let sim_ms = (real * self.factor * 1000.0) as i64;
        self.start_sim + TimeDelta::milliseconds(sim_ms)
    }
    async fn sleep(&self, d: Duration) {
        let real = d.as_secs_f64() / self.factor;
        tokio::time::sleep(Duration::from_secs_f64(real)).await;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A poisoned clock still holds a valid time: keep going.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Converts a std duration to a chrono delta, saturating at the maximum.
pub fn to_delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
            .single()
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn manual_clock_moves_only_when_asked() {
        let c = ManualClock::new(t0());
        assert_eq!(c.now(), t0());
        c.sleep(Duration::from_secs(3600)).await;
        assert_eq!(c.now(), t0() + TimeDelta::hours(1));
        c.advance_to(t0());
        assert_eq!(c.now(), t0() + TimeDelta::hours(1), "never backwards");
        c.advance(Duration::from_secs(60));
        assert_eq!(c.now(), t0() + TimeDelta::minutes(61));
    }

    #[tokio::test]
    async fn scaled_clock_runs_faster_than_real_time() {
        let c = ScaledClock::new(t0(), 3600.0);
        c.sleep(Duration::from_secs(36)).await; // 10 ms real
        let elapsed = c.now() - t0();
        assert!(elapsed >= TimeDelta::seconds(36), "{elapsed}");
    }
}
