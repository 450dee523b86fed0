//! Seen pages: the fingerprints of seen-set buckets kept outside the cursor document, one page
//! per (source, bucket), so a very busy stream's duplicate filtering is not limited by the size
//! of one store item (`cursor.md`, *Seen pages*).
//!
//! A cursor marks such a bucket `paged` and keeps only its count. Pages are written before the
//! cursor that refers to them is committed, and deleted only after a commit that no longer
//! refers to them. A page holds fingerprints of delivered records only, so a page that is
//! stale, lost, or written by a poller that then lost its compare-and-set can cause duplicates
//! but never hide an event; a missing page makes its bucket count-only.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;

use crate::store::StoreError;
use crate::stream::Stream;

/// One page: a bucket's sorted fingerprints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenPage {
    /// The source (e.g. `signins.interactive`).
    pub source: String,
    /// The bucket index (`floor(epoch seconds / bucket_secs)`).
    pub bucket: i64,
    /// Sorted fingerprints.
    pub fps: Vec<u32>,
}

/// Where a store keeps seen pages. Implemented beside the cursors of every store (memory,
/// SQLite, DynamoDB), under the same tenant, and removed by the store's `purge`.
#[async_trait]
pub trait SeenPages: Send + Sync {
    /// The pages of `source` with bucket indices in `[from, to]`.
    async fn load_pages(
        &self,
        tenant: &str,
        stream: Stream,
        source: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, Vec<u32>)>, StoreError>;

    /// Writes (or replaces) `pages`, durably, before returning.
    async fn put_pages(
        &self,
        tenant: &str,
        stream: Stream,
        pages: &[SeenPage],
    ) -> Result<(), StoreError>;

    /// Deletes the pages `(source, bucket)`; absent ones are not an error.
    async fn delete_pages(
        &self,
        tenant: &str,
        stream: Stream,
        pages: &[(String, i64)],
    ) -> Result<(), StoreError>;
}

type PageKey = (String, Stream, String, i64);

/// Seen pages in memory (tests, and the memory store).
#[derive(Debug, Default, Clone)]
pub struct MemoryPages {
    pages: Arc<Mutex<BTreeMap<PageKey, Vec<u32>>>>,
}

impl MemoryPages {
    /// No pages.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many pages are held (all tenants).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no page is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every page of `tenant`.
    pub fn purge(&self, tenant: &str) {
        self.lock().retain(|(t, ..), _| t != tenant);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<PageKey, Vec<u32>>> {
        self.pages.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl SeenPages for MemoryPages {
    async fn load_pages(
        &self,
        tenant: &str,
        stream: Stream,
        source: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, Vec<u32>)>, StoreError> {
        if from > to {
            return Ok(Vec::new());
        }
        let lo = (tenant.to_string(), stream, source.to_string(), from);
        let hi = (tenant.to_string(), stream, source.to_string(), to);
        Ok(self
            .lock()
            .range(lo..=hi)
            .map(|((.., b), fps)| (*b, fps.clone()))
            .collect())
    }

    async fn put_pages(
        &self,
        tenant: &str,
        stream: Stream,
        pages: &[SeenPage],
    ) -> Result<(), StoreError> {
        let mut held = self.lock();
        for p in pages {
            held.insert(
                (tenant.to_string(), stream, p.source.clone(), p.bucket),
                p.fps.clone(),
            );
        }
        Ok(())
    }

    async fn delete_pages(
        &self,
        tenant: &str,
        stream: Stream,
        pages: &[(String, i64)],
    ) -> Result<(), StoreError> {
        let mut held = self.lock();
        for (source, bucket) in pages {
            held.remove(&(tenant.to_string(), stream, source.clone(), *bucket));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pages_are_kept_per_tenant_stream_source_and_range() {
        let p = MemoryPages::new();
        let page = |source: &str, bucket, fps: Vec<u32>| SeenPage {
            source: source.into(),
            bucket,
            fps,
        };
        p.put_pages(
            "t1",
            Stream::Signins,
            &[
                page("a", 10, vec![1, 2]),
                page("a", 11, vec![3]),
                page("b", 10, vec![4]),
            ],
        )
        .await
        .unwrap();
        p.put_pages("t2", Stream::Signins, &[page("a", 10, vec![9])])
            .await
            .unwrap();
        let a = p
            .load_pages("t1", Stream::Signins, "a", 10, 11)
            .await
            .unwrap();
        assert_eq!(a, vec![(10, vec![1, 2]), (11, vec![3])]);
        let a = p
            .load_pages("t1", Stream::Signins, "a", 11, 20)
            .await
            .unwrap();
        assert_eq!(a, vec![(11, vec![3])]);
        assert!(
            p.load_pages("t1", Stream::DirectoryAudits, "a", 0, 99)
                .await
                .unwrap()
                .is_empty()
        );
        p.delete_pages("t1", Stream::Signins, &[("a".into(), 10), ("a".into(), 99)])
            .await
            .unwrap();
        let a = p
            .load_pages("t1", Stream::Signins, "a", 0, 99)
            .await
            .unwrap();
        assert_eq!(a, vec![(11, vec![3])]);
        p.purge("t1");
        assert_eq!(p.len(), 1);
    }
}
