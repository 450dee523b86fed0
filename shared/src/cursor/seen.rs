//! The seen set: per source and time bucket, how many records were emitted and their 32-bit
//! fingerprints, so re-reads inside the lookback and the horizon are filtered (`cursor.md`,
//! *Seen set*).

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD as B64;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::config::CursorConfig;

/// One bucket of the seen set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bucket {
    /// Distinct records emitted from this bucket.
    pub count: u32,
    /// Their fingerprints, sorted; `None` once dropped to respect the size bound, or while a
    /// paged bucket's page is not loaded.
    pub fps: Option<Vec<u32>>,
    /// Whether the fingerprints live in the store's seen pages (`pages.rs`) rather than in
    /// the cursor document.
    pub paged: bool,
    /// Whether a paged bucket's fingerprints changed since its page was loaded (not stored).
    pub dirty: bool,
}

impl Bucket {
    /// A bucket whose fingerprints are inline in the cursor.
    pub fn inline(fps: Vec<u32>) -> Bucket {
        Bucket {
            count: u32::try_from(fps.len()).unwrap_or(u32::MAX),
            fps: Some(fps),
            paged: false,
            dirty: false,
        }
    }

    /// Bytes this bucket adds to the cursor document, key and punctuation included (an upper
    /// bound of `serde_json`'s output: base64 without padding, decimal count; a paged bucket
    /// is a varint gap of at most three bytes in the paged list).
    pub fn doc_bytes(&self) -> usize {
        const OVERHEAD: usize = 40;
        match (&self.fps, self.paged) {
            (_, true) => 4,
            (Some(fps), false) => OVERHEAD + (fps.len() * 16).div_ceil(3),
            (None, false) => OVERHEAD,
        }
    }

    /// Notes a change of the fingerprints.
    fn touched(&mut self) {
        if self.paged {
            self.dirty = true;
        }
    }
}

#[derive(Serialize, Deserialize)]
struct BucketRepr {
    n: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    f: Option<String>,
}

/// Packs fingerprints little-endian, four bytes each (cursor documents and seen pages).
pub fn pack(fps: &[u32]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(fps.len() * 4);
    for fp in fps {
        bytes.extend_from_slice(&fp.to_le_bytes());
    }
    bytes
}

/// Unpacks [`pack`]ed fingerprints, sorted; `None` when the length is not a multiple of 4.
pub fn unpack(bytes: &[u8]) -> Option<Vec<u32>> {
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut v: Vec<u32> = bytes
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    v.sort_unstable();
    Some(v)
}

/// What was emitted, per time bucket, for one source.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SeenSet {
    /// Buckets by index (`floor(epoch seconds / bucket_secs)`).
    pub buckets: BTreeMap<i64, Bucket>,
    /// The newest query upper bound ever used for this source.
    pub high: Option<DateTime<Utc>>,
}

#[derive(Serialize, Deserialize, Default)]
struct SeenRepr {
    #[serde(default)]
    high: Option<DateTime<Utc>>,
    #[serde(default)]
    buckets: BTreeMap<String, BucketRepr>,
    /// The paged buckets' indices, ascending, as base64 of LEB128 varints: the first index
    /// zigzag-encoded, then the gaps. A few bytes per bucket, so a day of paged buckets costs
    /// the document little. Their counts live with their fingerprints, in the pages.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    paged: String,
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*at)?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Encodes ascending bucket indices (see `SeenRepr::paged`).
fn encode_indices(idx: &[i64]) -> String {
    let mut out = Vec::with_capacity(idx.len() * 2 + 8);
    let mut prev: Option<i64> = None;
    for &i in idx {
        match prev {
            None => put_varint(&mut out, ((i << 1) ^ (i >> 63)) as u64),
            Some(p) => put_varint(&mut out, i.abs_diff(p)),
        }
        prev = Some(i);
    }
    B64.encode(out)
}

fn decode_indices(s: &str) -> Option<Vec<i64>> {
    let bytes = B64.decode(s.as_bytes()).ok()?;
    let mut at = 0;
    let mut out: Vec<i64> = Vec::new();
    while at < bytes.len() {
        let v = get_varint(&bytes, &mut at)?;
        let next = match out.last() {
            None => ((v >> 1) as i64) ^ -((v & 1) as i64),
            Some(p) if v > 0 => i64::try_from(i128::from(*p) + i128::from(v)).ok()?,
            Some(_) => return None,
        };
        out.push(next);
    }
    Some(out)
}

impl Serialize for SeenSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let buckets = self
            .buckets
            .iter()
            .filter(|(_, b)| !b.paged)
            .map(|(k, b)| {
                let f = b.fps.as_ref().map(|fps| B64.encode(pack(fps)));
                (k.to_string(), BucketRepr { n: b.count, f })
            })
            .collect();
        let paged: Vec<i64> = self
            .buckets
            .iter()
            .filter(|(_, b)| b.paged)
            .map(|(k, _)| *k)
            .collect();
        SeenRepr {
            high: self.high,
            buckets,
            paged: encode_indices(&paged),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for SeenSet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let repr = SeenRepr::deserialize(d)?;
        let mut buckets = BTreeMap::new();
        for (k, b) in repr.buckets {
            let idx: i64 = k
                .parse()
                .map_err(|_| D::Error::custom("bad bucket index"))?;
            let fps = match b.f {
                Some(f) => {
                    let bytes = B64
                        .decode(f.as_bytes())
                        .map_err(|_| D::Error::custom("bad fingerprint encoding"))?;
                    Some(unpack(&bytes).ok_or_else(|| D::Error::custom("bad fingerprint length"))?)
                }
                None => None,
            };
            buckets.insert(
                idx,
                Bucket {
                    count: b.n,
                    fps,
                    paged: false,
                    dirty: false,
                },
            );
        }
        for idx in
            decode_indices(&repr.paged).ok_or_else(|| D::Error::custom("bad paged bucket list"))?
        {
            if buckets.contains_key(&idx) {
                return Err(D::Error::custom("bucket both inline and paged"));
            }
            buckets.insert(
                idx,
                Bucket {
                    count: 0,
                    fps: None,
                    paged: true,
                    dirty: false,
                },
            );
        }
        Ok(SeenSet {
            buckets,
            high: repr.high,
        })
    }
}

/// A record as the seen set sees it: its id and its event time.
#[derive(Debug, Clone, Copy)]
pub struct Key<'a> {
    /// Source id.
    pub id: &'a str,
    /// Event time.
    pub time: DateTime<Utc>,
}

/// The 32-bit fingerprint of a source id.
pub fn fingerprint(id: &str) -> u32 {
    let d = Sha256::digest(id.as_bytes());
    u32::from_le_bytes([d[0], d[1], d[2], d[3]])
}

fn bucket_index(t: DateTime<Utc>, bucket: i64) -> i64 {
    t.timestamp().div_euclid(bucket)
}

fn bucket_start(idx: i64, bucket: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(idx.saturating_mul(bucket), 0).unwrap_or_default()
}

/// Aligns `t` down to a bucket boundary.
pub fn align_down(t: DateTime<Utc>, bucket_secs: u64) -> DateTime<Utc> {
    let b = i64::try_from(bucket_secs).unwrap_or(60).max(1);
    bucket_start(bucket_index(t, b), b)
}

impl SeenSet {
    /// Decides which of `fetched` (one query of this source over `[lower, upper]`) are new.
    /// Returns their indices in `fetched`. Repeated ids within `fetched` count once.
    pub fn filter_new(
        &self,
        fetched: &[Key<'_>],
        lower: DateTime<Utc>,
        upper: DateTime<Utc>,
        cfg: &CursorConfig,
    ) -> Vec<usize> {
        self.filter(fetched, Some((lower, upper)), cfg)
    }

    /// Decides which of `fetched` are new when they are only part of a query's result (some
    /// pages of it): no bucket is treated as completely read, fingerprints act as a set.
    pub fn filter_new_partial(&self, fetched: &[Key<'_>], cfg: &CursorConfig) -> Vec<usize> {
        self.filter(fetched, None, cfg)
    }

    /// [`Self::filter_new`] over the query's `[lower, upper]` when `coverage` is given, else
    /// [`Self::filter_new_partial`].
    fn filter(
        &self,
        fetched: &[Key<'_>],
        coverage: Option<(DateTime<Utc>, DateTime<Utc>)>,
        cfg: &CursorConfig,
    ) -> Vec<usize> {
        let b = cfg.bucket();
        let mut by_bucket: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
        let mut seen_ids = std::collections::HashSet::new();
        for (i, k) in fetched.iter().enumerate() {
            if seen_ids.insert(k.id) {
                by_bucket
                    .entry(bucket_index(k.time, b))
                    .or_default()
                    .push(i);
            }
        }
        let mut new = Vec::new();
        for (idx, items) in by_bucket {
            let Some(stored) = self.buckets.get(&idx) else {
                new.extend(items);
                continue;
            };
            let complete =
                coverage.is_some_and(|(lower, upper)| self.complete(idx, lower, upper, b));
            match (&stored.fps, complete) {
                (Some(fps), true) => {
                    // Compare fingerprints with multiplicity.
                    let mut groups: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
                    for i in items {
                        if let Some(k) = fetched.get(i) {
                            groups.entry(fingerprint(k.id)).or_default().push(i);
                        }
                    }
                    for (fp, group) in groups {
                        let stored_n = count_in(fps, fp);
                        if group.len() > stored_n {
                            new.extend(group);
                        }
                    }
                }
                (Some(fps), false) => {
                    for i in items {
                        if fetched
                            .get(i)
                            .is_some_and(|k| count_in(fps, fingerprint(k.id)) == 0)
                        {
                            new.push(i);
                        }
                    }
                }
                (None, true) => {
                    if items.len() > stored.count as usize {
                        new.extend(items);
                    }
                }
                (None, false) => new.extend(items),
            }
        }
        new.sort_unstable();
        new
    }

    /// Whether a query over `[lower, upper]` re-reads everything emitted from bucket `idx`.
    fn complete(&self, idx: i64, lower: DateTime<Utc>, upper: DateTime<Utc>, b: i64) -> bool {
        let start = bucket_start(idx, b);
        let end = bucket_start(idx.saturating_add(1), b);
        start >= lower && (end <= upper || self.high.is_some_and(|h| h <= upper))
    }

    /// Records a delivered query of this source over `[lower, upper]`: `fetched` is everything
    /// the query returned, and `emitted` the indices of those that were sent.
    pub fn record(
        &mut self,
        fetched: &[Key<'_>],
        emitted: &[usize],
        lower: DateTime<Utc>,
        upper: DateTime<Utc>,
        cfg: &CursorConfig,
    ) {
        let b = cfg.bucket();
        // Complete buckets become exactly what was read; others gain what was emitted.
        let mut read: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
        let mut ids = std::collections::HashSet::new();
        for k in fetched {
            if ids.insert(k.id) {
                read.entry(bucket_index(k.time, b))
                    .or_default()
                    .push(fingerprint(k.id));
            }
        }
        let mut touched: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
        for i in emitted {
            if let Some(k) = fetched.get(*i) {
                touched
                    .entry(bucket_index(k.time, b))
                    .or_default()
                    .push(fingerprint(k.id));
            }
        }
        for (idx, mut fps) in read {
            if self.complete(idx, lower, upper, b) {
                fps.sort_unstable();
                // A complete read is the truth for this bucket. A paged bucket keeps its page,
                // rewritten at the next commit.
                let paged = self.buckets.get(&idx).is_some_and(|b| b.paged);
                let mut bucket = Bucket::inline(fps);
                if paged {
                    bucket.paged = true;
                    bucket.dirty = true;
                }
                self.buckets.insert(idx, bucket);
                touched.remove(&idx);
            }
        }
        for (idx, fps) in touched {
            let bucket = self
                .buckets
                .entry(idx)
                .or_insert_with(|| Bucket::inline(Vec::new()));
            bucket.count = bucket
                .count
                .saturating_add(u32::try_from(fps.len()).unwrap_or(u32::MAX));
            if let Some(existing) = bucket.fps.as_mut() {
                existing.extend(fps);
                existing.sort_unstable();
                bucket.touched();
            }
        }
        self.high = Some(self.high.map_or(upper, |h| h.max(upper)));
    }

    /// Records records emitted from a read that did not finish (a page was missing): only
    /// what was emitted is added; no bucket is treated as completely read.
    pub fn record_partial(&mut self, fetched: &[Key<'_>], emitted: &[usize], cfg: &CursorConfig) {
        let b = cfg.bucket();
        for i in emitted {
            if let Some(k) = fetched.get(*i) {
                // Every emitted record stays at or before `high`, which `complete` relies on.
                self.high = Some(self.high.map_or(k.time, |h| h.max(k.time)));
                let bucket = self
                    .buckets
                    .entry(bucket_index(k.time, b))
                    .or_insert_with(|| Bucket::inline(Vec::new()));
                bucket.count = bucket.count.saturating_add(1);
                if let Some(fps) = bucket.fps.as_mut() {
                    let fp = fingerprint(k.id);
                    let at = fps.partition_point(|x| *x < fp);
                    fps.insert(at, fp);
                    bucket.touched();
                }
            }
        }
    }

    /// Drops buckets older than `keep_from` and returns the indices of the paged ones among
    /// them (their pages can go once the cursor is committed).
    pub fn drop_before(&mut self, keep_from: DateTime<Utc>, bucket_secs: u64) -> Vec<i64> {
        let b = i64::try_from(bucket_secs).unwrap_or(60).max(1);
        let first = bucket_index(keep_from, b);
        let kept = self.buckets.split_off(&first);
        let dropped = std::mem::replace(&mut self.buckets, kept);
        dropped
            .into_iter()
            .filter(|(_, b)| b.paged)
            .map(|(idx, _)| idx)
            .collect()
    }

    /// Drops buckets older than `keep_from`, then fingerprints of the oldest buckets until the
    /// document fits in `max_bytes` (see [`SeenSet::doc_bytes`]).
    pub fn prune(&mut self, keep_from: DateTime<Utc>, max_bytes: usize, bucket_secs: u64) {
        self.drop_before(keep_from, bucket_secs);
        let mut bytes: usize = self.doc_bytes();
        for bucket in self.buckets.values_mut() {
            if bytes <= max_bytes {
                break;
            }
            if !bucket.paged && bucket.fps.is_some() {
                let before = bucket.doc_bytes();
                bucket.fps = None;
                bytes = bytes.saturating_sub(before - bucket.doc_bytes());
            }
        }
    }

    /// Bytes this seen set adds to the cursor document (an upper bound).
    pub fn doc_bytes(&self) -> usize {
        self.buckets.values().map(Bucket::doc_bytes).sum::<usize>() + 96
    }

    /// Bytes of fingerprints held inline (not paged).
    pub fn fingerprint_bytes(&self) -> usize {
        self.buckets
            .values()
            .filter(|b| !b.paged)
            .map(|b| b.fps.as_ref().map_or(0, |f| f.len() * 4))
            .sum()
    }

    /// Indices of paged buckets in `[from, to]` whose page is not loaded.
    pub fn unloaded(&self, from: i64, to: i64) -> Vec<i64> {
        self.buckets
            .range(from..=to)
            .filter(|(_, b)| b.paged && b.fps.is_none())
            .map(|(idx, _)| *idx)
            .collect()
    }

    /// The bucket index of `t`.
    pub fn index_of(t: DateTime<Utc>, bucket_secs: u64) -> i64 {
        bucket_index(t, i64::try_from(bucket_secs).unwrap_or(60).max(1))
    }
}

fn count_in(sorted: &[u32], fp: u32) -> usize {
    let start = sorted.partition_point(|x| *x < fp);
    let end = sorted.partition_point(|x| *x <= fp);
    end - start
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeDelta, TimeZone};
    use proptest::prelude::*;

    fn t(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, 1, h, m, s)
            .single()
            .unwrap_or_default()
    }

    fn cfg() -> CursorConfig {
        CursorConfig::default()
    }

    #[test]
    fn seen_set_filters_re_reads_and_survives_serialization() {
        let cfg = cfg();
        let ids: Vec<String> = (0..50).map(|i| format!("id-{i}")).collect();
        let keys: Vec<Key<'_>> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| Key {
                id,
                time: t(10, 0, 0) + TimeDelta::seconds(i as i64 * 7),
            })
            .collect();
        let mut s = SeenSet::default();
        let (lo, hi) = (t(10, 0, 0), t(10, 10, 0));
        let new = s.filter_new(&keys[..30], lo, hi, &cfg);
        assert_eq!(new.len(), 30);
        s.record(&keys[..30], &new, lo, hi, &cfg);
        let json = serde_json::to_value(&s).unwrap_or_default();
        let s: SeenSet = serde_json::from_value(json).unwrap_or_default();
        let new = s.filter_new(&keys, lo, hi, &cfg);
        assert_eq!(new, (30..50).collect::<Vec<_>>());
    }

    #[test]
    fn fingerprint_collision_in_a_complete_bucket_re_emits_instead_of_losing() {
        // Find two ids with the same 32-bit fingerprint (a birthday search, ~2^16 tries).
        let mut by_fp = std::collections::HashMap::new();
        let mut pair = None;
        for i in 0u64..2_000_000 {
            let id = format!("x{i}");
            if let Some(prev) = by_fp.insert(fingerprint(&id), id.clone()) {
                pair = Some((prev, id));
                break;
            }
        }
        let (x, y) = pair.unwrap_or_else(|| panic!("no collision found"));
        let cfg = cfg();
        let mut s = SeenSet::default();
        let (lo, hi) = (t(10, 0, 0), t(10, 5, 0));
        let kx = Key {
            id: &x,
            time: t(10, 0, 1),
        };
        let ky = Key {
            id: &y,
            time: t(10, 0, 2),
        };
        s.record(&[kx], &[0], lo, hi, &cfg);
        // y is new but shares x's fingerprint: the bucket is re-emitted rather than y lost.
        let new = s.filter_new(&[kx, ky], lo, hi, &cfg);
        assert_eq!(new, vec![0, 1]);
        s.record(&[kx, ky], &new, lo, hi, &cfg);
        assert!(s.filter_new(&[kx, ky], lo, hi, &cfg).is_empty());
    }

    #[test]
    fn part_of_a_result_is_filtered_as_a_set_and_keeps_high_above_what_was_emitted() {
        let cfg = cfg();
        let mut s = SeenSet::default();
        let (lo, hi) = (t(10, 0, 0), t(10, 5, 0));
        let k = |id, sec| Key {
            id,
            time: t(10, 0, sec),
        };
        // Three records of one bucket emitted by a whole read.
        let first = [k("a", 1), k("b", 2), k("c", 3)];
        s.record(&first, &[0, 1, 2], lo, hi, &cfg);
        // A page of a later read holds one of them and a late one: as a whole read of the
        // window, one record against a count of three would look seen; as part of a result,
        // the late one is new.
        let page = [k("a", 1), k("d", 4)];
        assert_eq!(s.filter_new_partial(&page, &cfg), vec![1]);
        // Count-only (fingerprints paged out and not loaded): part of a result is emitted.
        let mut counted = s.clone();
        for b in counted.buckets.values_mut() {
            b.fps = None;
        }
        assert_eq!(counted.filter_new_partial(&page, &cfg), vec![0, 1]);
        // What part of a result emitted stays below `high`.
        let mut p = SeenSet::default();
        let late = [Key {
            id: "e",
            time: t(10, 7, 0),
        }];
        p.record_partial(&late, &[0], &cfg);
        assert_eq!(p.high, Some(t(10, 7, 0)));
    }

    #[test]
    fn count_only_buckets_never_lose_events() {
        let cfg = cfg();
        let mut s = SeenSet::default();
        let (lo, hi) = (t(10, 0, 0), t(10, 5, 0));
        let ks = [
            Key {
                id: "a",
                time: t(10, 0, 1),
            },
            Key {
                id: "b",
                time: t(10, 0, 2),
            },
        ];
        s.record(&ks[..1], &[0], lo, hi, &cfg);
        for b in s.buckets.values_mut() {
            b.fps = None;
        }
        assert!(s.filter_new(&ks[..1], lo, hi, &cfg).is_empty());
        assert_eq!(s.filter_new(&ks, lo, hi, &cfg), vec![0, 1]);
        // Partly covered: everything is new.
        assert_eq!(s.filter_new(&ks[..1], t(10, 0, 30), hi, &cfg), vec![0]);
    }

    #[test]
    fn paged_bucket_lists_round_trip_and_refuse_corruption() {
        for idx in [
            vec![],
            vec![0],
            vec![-7, -1, 0, 3],
            vec![29_000_000, 29_000_001, 29_000_090, 31_000_000],
            vec![i64::MIN, 0, i64::MAX],
        ] {
            assert_eq!(decode_indices(&encode_indices(&idx)), Some(idx.clone()));
        }
        // A day of one-minute buckets costs about two bytes each.
        let day: Vec<i64> = (29_000_000..29_001_440).collect();
        assert!(encode_indices(&day).len() <= 2 * 1440 + 8);
        // Not base64, a truncated varint, a repeated index.
        assert_eq!(decode_indices("%%"), None);
        assert_eq!(decode_indices(&B64.encode([0x80u8])), None);
        assert_eq!(decode_indices(&B64.encode([2u8, 0])), None);
        let mut s = SeenSet::default();
        s.buckets.insert(5, Bucket::inline(vec![1, 2]));
        s.buckets.insert(
            9,
            Bucket {
                count: 3,
                fps: None,
                paged: true,
                dirty: false,
            },
        );
        let back: SeenSet = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back.buckets[&5], s.buckets[&5]);
        assert!(back.buckets[&9].paged && back.buckets[&9].fps.is_none());
    }

    #[test]
    fn prune_respects_the_size_bound_by_dropping_oldest_fingerprints() {
        let cfg = cfg();
        let ids: Vec<String> = (0..2000).map(|i| format!("id-{i}")).collect();
        let keys: Vec<Key<'_>> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| Key {
                id,
                time: t(0, 0, 0) + TimeDelta::seconds(i as i64 * 3),
            })
            .collect();
        let mut s = SeenSet::default();
        let all: Vec<usize> = (0..keys.len()).collect();
        s.record(&keys, &all, t(0, 0, 0), t(23, 0, 0), &cfg);
        assert_eq!(s.fingerprint_bytes(), 8000);
        assert!(s.doc_bytes() > 10_000);
        s.prune(t(0, 0, 0), 10_000, cfg.bucket_secs);
        assert!(s.doc_bytes() <= 10_000);
        // The bound holds for what is actually serialized.
        let doc = serde_json::to_string(&s).unwrap();
        assert!(
            doc.len() <= s.doc_bytes(),
            "{} > {}",
            doc.len(),
            s.doc_bytes()
        );
        let oldest = s.buckets.values().next().map(|b| b.fps.is_none());
        let newest = s.buckets.values().last().map(|b| b.fps.is_some());
        assert_eq!((oldest, newest), (Some(true), Some(true)));
        s.prune(t(12, 0, 0), 1 << 20, cfg.bucket_secs);
        assert!(
            s.buckets
                .keys()
                .all(|k| bucket_start(*k, 60) >= t(12, 0, 0))
        );
    }

    proptest! {
        /// Any sequence of overlapping reads over a growing set of records: every record is
        /// reported new at least once, and records already emitted are (almost always) not.
        #[test]
        fn repeated_overlapping_reads_lose_nothing(
            times in proptest::collection::vec(0i64..7200, 1..300),
            cuts in proptest::collection::vec(0i64..7200, 1..12),
        ) {
            let cfg = CursorConfig { bucket_secs: 60, ..CursorConfig::default() };
            let base = t(0, 0, 0);
            let ids: Vec<String> = (0..times.len()).map(|i| format!("rec-{i}")).collect();
            let mut emitted: std::collections::HashMap<String, u32> = Default::default();
            let mut s = SeenSet::default();
            let mut sorted_cuts = cuts.clone();
            sorted_cuts.sort_unstable();
            let mut last_lo = base;
            for cut in sorted_cuts.iter().chain(std::iter::once(&7200)) {
                // Records visible so far: those with time <= cut. Read [cut - 1800, cut].
                let hi = base + TimeDelta::seconds(*cut);
                let lo = align_down(hi - TimeDelta::seconds(1800), 60).max(base);
                last_lo = lo;
                let keys: Vec<Key<'_>> = times.iter().zip(&ids)
                    .filter(|(tt, _)| **tt <= *cut && base + TimeDelta::seconds(**tt) >= lo)
                    .map(|(tt, id)| Key { id, time: base + TimeDelta::seconds(*tt) })
                    .collect();
                let new = s.filter_new(&keys, lo, hi, &cfg);
                for i in &new { *emitted.entry(keys[*i].id.to_string()).or_default() += 1; }
                s.record(&keys, &new, lo, hi, &cfg);
            }
            // Every record inside the final window was emitted, and nothing twice.
            for (tt, id) in times.iter().zip(&ids) {
                if base + TimeDelta::seconds(*tt) >= last_lo {
                    prop_assert!(emitted.contains_key(id), "lost {id} at {tt}");
                }
            }
            prop_assert!(emitted.values().all(|n| *n == 1), "duplicates: {emitted:?}");
        }
    }
}
