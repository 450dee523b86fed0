//! The chaos run (`src/chaos.rs`): a short seeded version for `make test`, and the long one
//! for `make chaos` (`CHAOS_SEED`, `CHAOS_HOURS`; `CHAOS_AWS_FAULTS=0` leaves out our side's
//! faults), ignored by default.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use itdr_aws_tests::chaos::{ChaosParams, ChaosReport, run};

fn check(r: &ChaosReport) {
    println!("{r}");
    assert!(r.generated > 0, "the run generated nothing to check");
    assert!(
        r.faults.len() >= 10,
        "too few fault kinds struck: {:?}",
        r.faults
    );
    assert_eq!(r.lost, 0, "events were lost:\n{r}");
    assert!(
        r.stalled.is_empty(),
        "sweeps stalled, their promises prove little:\n{r}"
    );
    assert_eq!(r.regressions, 0, "a cursor moved backwards:\n{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_short_loses_nothing_and_never_regresses_a_cursor() {
    let r = run(&ChaosParams::short(16)).await;
    check(&r);
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// `make chaos`: several tenants over a simulated day.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: run by `make chaos`"]
async fn chaos_long() {
    let seed = env_or("CHAOS_SEED", 16u64);
    let hours = env_or("CHAOS_HOURS", 24.0f64);
    let mut p = ChaosParams::long(seed, hours);
    p.aws_faults = env_or("CHAOS_AWS_FAULTS", 1u8) != 0;
    let r = run(&p).await;
    check(&r);
}
