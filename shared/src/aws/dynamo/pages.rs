//! [`SeenPages`] on DynamoDB: items in the cursors table under the tenant's partition key,
//! sort key `seen#<stream>#<source>#<bucket>#<part>`, fingerprints packed in a binary `fps`
//! attribute and the page's number of parts in `parts`.
//!
//! A page is split into parts of at most [`FPS_PER_PART`] fingerprints (256 KiB), so no item
//! approaches DynamoDB's 400 KB limit whatever the bucket width and the tenant's volume. A
//! page is read only when every part its first part announces is there; otherwise the bucket
//! stays count-only (duplicates, never a loss). The bucket index is written offset and
//! zero-padded so sort-key order is numeric order and a range of buckets is one `Query`.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;

use super::{DynamoCursorStore, Item, get_s, get_u64, s};
use crate::cursor::seen::{pack, unpack};
use crate::cursor::{SeenPage, SeenPages};
use crate::store::StoreError;
use crate::stream::Stream;

/// Fingerprints per item: 256 KiB of packed fingerprints.
pub const FPS_PER_PART: usize = 64 * 1024;

fn prefix(stream: Stream, source: &str) -> String {
    format!("seen#{}#{source}#", stream.as_str())
}

/// The bucket index as a fixed-width, order-preserving decimal.
fn bucket_key(bucket: i64) -> String {
    format!("{:020}", i128::from(bucket) - i128::from(i64::MIN))
}

fn parse_bucket(key: &str) -> Option<i64> {
    let n: i128 = key.parse().ok()?;
    i64::try_from(n + i128::from(i64::MIN)).ok()
}

fn sort_key(stream: Stream, source: &str, bucket: i64, part: usize) -> String {
    format!("{}{}#{part:03}", prefix(stream, source), bucket_key(bucket))
}

/// `(bucket, part)` of a page item's sort key under `prefix`.
fn parse_key(prefix: &str, sk: &str) -> Option<(i64, usize)> {
    let rest = sk.strip_prefix(prefix)?;
    let (bucket, part) = rest.split_once('#')?;
    Some((parse_bucket(bucket)?, part.parse().ok()?))
}

impl DynamoCursorStore {
    /// Page items of `source` with buckets in `[from, to]`.
    async fn query_pages(
        &self,
        tenant: &str,
        stream: Stream,
        source: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<Item>, StoreError> {
        let p = prefix(stream, source);
        let lo = format!("{p}{}#", bucket_key(from));
        let hi = format!("{p}{}#~", bucket_key(to));
        self.query_sort_keys(
            tenant,
            "#s BETWEEN :lo AND :hi",
            &[(":lo", &lo), (":hi", &hi)],
        )
        .await
    }

    /// Deletes every seen page of `tenant` (offboarding with purge).
    pub(super) async fn purge_pages(&self, tenant: &str) -> Result<(), StoreError> {
        let items = self.query_prefix(tenant, "seen#").await?;
        let mut requests = Vec::with_capacity(items.len());
        for item in &items {
            requests.push(Self::delete_request(
                tenant,
                get_s(item, "stream")?.to_string(),
            )?);
        }
        self.batch_write(requests).await
    }
}

#[async_trait]
impl SeenPages for DynamoCursorStore {
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
        let p = prefix(stream, source);
        let corrupt = || StoreError::Corrupt(format!("seen page {tenant}/{stream}"));
        // bucket -> (parts announced by part 0, parts by index)
        let mut found: BTreeMap<i64, (Option<u64>, BTreeMap<usize, Vec<u8>>)> = BTreeMap::new();
        for item in self.query_pages(tenant, stream, source, from, to).await? {
            let Some((bucket, part)) = parse_key(&p, get_s(&item, "stream")?) else {
                continue;
            };
            let Some(AttributeValue::B(blob)) = item.get("fps") else {
                return Err(corrupt());
            };
            let entry = found.entry(bucket).or_default();
            if part == 0 {
                entry.0 = Some(get_u64(&item, "parts")?);
            }
            entry.1.insert(part, blob.as_ref().to_vec());
        }
        let mut out = Vec::new();
        for (bucket, (parts, mut by_part)) in found {
            let Some(parts) = parts.and_then(|n| usize::try_from(n).ok()) else {
                continue;
            };
            if !(0..parts).all(|i| by_part.contains_key(&i)) {
                continue;
            }
            let mut bytes = Vec::new();
            for i in 0..parts {
                bytes.extend(by_part.remove(&i).unwrap_or_default());
            }
            let fps = unpack(&bytes).ok_or_else(corrupt)?;
            out.push((bucket, fps));
        }
        Ok(out)
    }

    async fn put_pages(
        &self,
        tenant: &str,
        stream: Stream,
        pages: &[SeenPage],
    ) -> Result<(), StoreError> {
        let mut requests = Vec::new();
        for page in pages {
            let chunks: Vec<&[u32]> = if page.fps.is_empty() {
                vec![&[]]
            } else {
                page.fps.chunks(FPS_PER_PART).collect()
            };
            for (part, chunk) in chunks.iter().enumerate() {
                let mut item = Item::new();
                item.insert("tenant_id".into(), s(tenant.to_ascii_lowercase()));
                item.insert(
                    "stream".into(),
                    s(sort_key(stream, &page.source, page.bucket, part)),
                );
                item.insert("fps".into(), AttributeValue::B(Blob::new(pack(chunk))));
                item.insert("parts".into(), AttributeValue::N(chunks.len().to_string()));
                requests.push(Self::put_request(item)?);
            }
        }
        self.batch_write(requests).await
    }

    async fn delete_pages(
        &self,
        tenant: &str,
        stream: Stream,
        pages: &[(String, i64)],
    ) -> Result<(), StoreError> {
        let mut by_source: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
        for (source, bucket) in pages {
            by_source.entry(source).or_default().push(*bucket);
        }
        let mut requests = Vec::new();
        for (source, buckets) in by_source {
            let (Some(from), Some(to)) = (buckets.iter().min(), buckets.iter().max()) else {
                continue;
            };
            let p = prefix(stream, source);
            for item in self.query_pages(tenant, stream, source, *from, *to).await? {
                let sk = get_s(&item, "stream")?;
                if parse_key(&p, sk).is_some_and(|(b, _)| buckets.contains(&b)) {
                    requests.push(Self::delete_request(tenant, sk.to_string())?);
                }
            }
        }
        self.batch_write(requests).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_keys_sort_numerically_and_round_trip() {
        let buckets = [i64::MIN, -5, -1, 0, 1, 29_000_000, i64::MAX];
        let keys: Vec<String> = buckets.iter().map(|b| bucket_key(*b)).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        for b in buckets {
            assert_eq!(parse_bucket(&bucket_key(b)), Some(b));
        }
        let p = prefix(Stream::Signins, "signins.interactive");
        let sk = sort_key(Stream::Signins, "signins.interactive", 42, 3);
        assert_eq!(parse_key(&p, &sk), Some((42, 3)));
        // A source whose name extends another's is not mistaken for it.
        assert_eq!(
            parse_key(&p, &sort_key(Stream::Signins, "signins.interactive2", 1, 0)),
            None
        );
    }
}
