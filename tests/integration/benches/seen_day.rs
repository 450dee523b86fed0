//! Duplicates of a very busy stream over a simulated day, without HTTP: the real cursor code
//! (passes, slices, seen sets, seen pages, pruning) against an in-memory source of 100,000
//! sign-ins an hour whose records become visible late (most within minutes, a tail of hours).
//! Each 5-minute poll runs every slice it is due (regular pass, hourly sweep over the 24 h
//! horizon) and commits after each slice, as the poller does. Run with
//! `cargo bench -p itdr-integration-tests --bench seen_day` (or `make bench`).
//!
//! Prints, with and without seen pages: records generated, emitted, duplicates, lost (must be
//! 0), the largest cursor document, pages held, and the time taken.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::time::Instant;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use itdr_shared::cursor::{Cursor, CursorConfig, Key, PageWork, SeenPage, SeenSet};
use rand::{Rng, SeedableRng};

const PER_HOUR: i64 = 100_000;
const HOURS: i64 = 26;
const SOURCE: &str = "signins.interactive";

struct Rec {
    id: String,
    at: DateTime<Utc>,
    visible: DateTime<Utc>,
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 0, 0, 0).single().unwrap()
}

/// Records in event-time order, with a visibility delay: 90 % within 5 minutes, 9 % within
/// the hour, 1 % up to 6 hours.
fn generate(from: DateTime<Utc>, hours: i64) -> Vec<Rec> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(100_000);
    let n = PER_HOUR * hours;
    let step_us = 3_600_000_000 / PER_HOUR;
    (0..n)
        .map(|i| {
            let at = from + TimeDelta::microseconds(i * step_us);
            let p: f64 = rng.random();
            let delay_s = if p < 0.90 {
                rng.random_range(20..300)
            } else if p < 0.99 {
                rng.random_range(300..3600)
            } else {
                rng.random_range(3600..6 * 3600)
            };
            Rec {
                id: format!("{i:016x}-5b1c-4a7e-9e2f"),
                at,
                visible: at + TimeDelta::seconds(delay_s),
            }
        })
        .collect()
}

struct Outcome {
    generated: usize,
    emitted: usize,
    duplicates: usize,
    lost: usize,
    largest_doc: usize,
    pages: usize,
    secs: f64,
}

fn run(records: &[Rec], paged: bool) -> Outcome {
    let started = Instant::now();
    let cfg = CursorConfig {
        initial_lookback_secs: 3600,
        ..CursorConfig::default()
    };
    let start = t0() + TimeDelta::hours(1);
    let end = t0() + TimeDelta::hours(HOURS);
    let mut pages: HashMap<i64, Vec<u32>> = HashMap::new();
    let mut emitted: HashMap<&str, u32> = HashMap::new();
    let mut stored: Option<Cursor> = None;
    let mut largest_doc = 0;
    let mut now = start;
    while now < end {
        let mut c = Cursor::begin(stored.as_ref(), now, now - TimeDelta::days(30), &cfg);
        while let Some((slice, kind)) = c.next_slice(&cfg) {
            // The query: event time in the window, visible by now.
            let lo = records.partition_point(|r| r.at < slice.lower);
            let hi = records.partition_point(|r| r.at <= slice.upper);
            let read: Vec<&Rec> = records[lo..hi]
                .iter()
                .filter(|r| r.visible <= now)
                .collect();
            let keys: Vec<Key<'_>> = read
                .iter()
                .map(|r| Key {
                    id: &r.id,
                    time: r.at,
                })
                .collect();
            let seen = c.sources.entry(SOURCE.to_string()).or_default();
            // Hydrate the paged buckets the records fall into.
            if let (Some(a), Some(b)) = (keys.first(), keys.last()) {
                let (a, b) = (
                    SeenSet::index_of(a.time, cfg.bucket_secs),
                    SeenSet::index_of(b.time, cfg.bucket_secs),
                );
                for idx in seen.unloaded(a, b) {
                    if let Some(fps) = pages.get(&idx) {
                        let bucket = seen.buckets.get_mut(&idx).unwrap();
                        bucket.count = u32::try_from(fps.len()).unwrap();
                        bucket.fps = Some(fps.clone());
                    }
                }
            }
            let new = seen.filter_new(&keys, slice.lower, slice.upper, &cfg);
            for i in &new {
                *emitted.entry(keys[*i].id).or_default() += 1;
            }
            seen.record(&keys, &new, slice.lower, slice.upper, &cfg);
            c.complete_slice(&slice, kind);
            // Commit: pages first, the cursor, then deletions.
            let work = if paged {
                c.prune_paged(&cfg)
            } else {
                c.prune(&cfg);
                PageWork::default()
            };
            for SeenPage { bucket, fps, .. } in work.put {
                pages.insert(bucket, fps);
            }
            let doc = c.to_doc().unwrap();
            largest_doc = largest_doc.max(serde_json::to_string(&doc).unwrap().len());
            Cursor::check_advance(stored.as_ref(), &c).unwrap();
            stored = Some(c.clone());
            for (_, bucket) in work.delete {
                pages.remove(&bucket);
            }
        }
        now += TimeDelta::minutes(5);
    }
    let origin = stored.as_ref().and_then(|c| c.origin).unwrap();
    let due: Vec<&Rec> = records
        .iter()
        .filter(|r| r.at >= origin && r.visible <= end - TimeDelta::hours(1))
        .collect();
    let lost = due
        .iter()
        .filter(|r| !emitted.contains_key(r.id.as_str()))
        .count();
    Outcome {
        generated: due.len(),
        emitted: emitted.values().map(|n| *n as usize).sum(),
        duplicates: emitted
            .values()
            .map(|n| (*n as usize).saturating_sub(1))
            .sum(),
        lost,
        largest_doc,
        pages: pages.len(),
        secs: started.elapsed().as_secs_f64(),
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would run this in a debug build
    // for many minutes.
    if !std::env::args().any(|a| a == "--bench") {
        println!("seen_day: run it with `cargo bench` (an optimised build)");
        return;
    }
    let records = generate(t0(), HOURS);
    println!(
        "seen_day: {PER_HOUR} sign-ins/h for {} h after a 1 h backfill, 5-minute polls, default cursor settings",
        HOURS - 1
    );
    println!(
        "{:<14} {:>10} {:>10} {:>11} {:>8} {:>6} {:>12} {:>7} {:>7}",
        "store",
        "generated",
        "emitted",
        "duplicates",
        "dup %",
        "lost",
        "largest doc",
        "pages",
        "secs"
    );
    for (name, paged) in [("seen pages", true), ("cursor only", false)] {
        let o = run(&records, paged);
        println!(
            "{:<14} {:>10} {:>10} {:>11} {:>8.3} {:>6} {:>10} B {:>7} {:>7.1}",
            name,
            o.generated,
            o.emitted,
            o.duplicates,
            100.0 * o.duplicates as f64 / o.emitted.max(1) as f64,
            o.lost,
            o.largest_doc,
            o.pages,
            o.secs
        );
        assert_eq!(o.lost, 0, "{name}: events lost");
    }
}
