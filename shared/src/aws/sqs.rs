//! SQS: the event sink, the dead-letter sink, and the batch sender both use (the scheduler
//! uses it too, for the FIFO jobs queues).
//!
//! Limits ([`SQS_MAX_MESSAGE_BYTES`], [`SQS_MAX_BATCH_BYTES`], [`SQS_MAX_BATCH_ENTRIES`]):
//! SQS counts a message's attributes (name, data type and value bytes) against the message
//! size limit, and caps a `SendMessageBatch` request at 10 entries and at the same number of
//! bytes in total. [`plan_batches`] groups messages in order into batches that respect all
//! three; an envelope whose message would still be too large is split in two (by events) until
//! it fits, so nothing is dropped.
//!
//! Retries: SQS reports per-entry failures. Only the failed entries that are not the sender's
//! fault are sent again, with exponential backoff; the rest of the batch is not re-sent. What
//! still fails after the last attempt is reported, and the poller then does not commit its
//! cursor (delivery is at least once).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};

use super::describe;
use crate::store::{DeadLetter, DeadLetterSink, Envelope, EventSink, SinkError};

/// The SQS message size limit this code assumes (256 KiB), attributes included.
pub const SQS_MAX_MESSAGE_BYTES: usize = 262_144;
/// The total payload limit of one `SendMessageBatch` request.
pub const SQS_MAX_BATCH_BYTES: usize = 262_144;
/// The entry limit of one `SendMessageBatch` request.
pub const SQS_MAX_BATCH_ENTRIES: usize = 10;
/// Bytes of an envelope message left for its attributes: the poller's envelope cap on AWS is
/// `SQS_MAX_MESSAGE_BYTES - ENVELOPE_ATTRIBUTE_RESERVE`.
pub const ENVELOPE_ATTRIBUTE_RESERVE: usize = 2048;

/// A message to send: body, string attributes and, for FIFO queues, group and dedup ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutMessage {
    /// The body.
    pub body: String,
    /// String message attributes (name, value).
    pub attributes: Vec<(String, String)>,
    /// FIFO `MessageGroupId`.
    pub group_id: Option<String>,
    /// FIFO `MessageDeduplicationId`.
    pub dedup_id: Option<String>,
}

impl OutMessage {
    /// A message with a body and no attributes.
    pub fn new(body: String) -> Self {
        Self {
            body,
            attributes: Vec::new(),
            group_id: None,
            dedup_id: None,
        }
    }

    /// Adds a string attribute.
    pub fn attr(mut self, name: &str, value: impl Into<String>) -> Self {
        self.attributes.push((name.to_string(), value.into()));
        self
    }

    /// The size SQS counts: body plus, per attribute, name, data type and value.
    pub fn size(&self) -> usize {
        self.body.len()
            + self
                .attributes
                .iter()
                .map(|(n, v)| n.len() + "String".len() + v.len())
                .sum::<usize>()
    }
}

/// Failures of the SQS sender.
#[derive(Debug, thiserror::Error)]
pub enum SqsError {
    /// One message is larger than SQS accepts; nothing was sent.
    #[error("message {index} is {bytes} bytes, over the SQS limit of {limit}")]
    TooLarge {
        /// Index of the message.
        index: usize,
        /// Its size as SQS counts it.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// Some messages were not accepted after every attempt.
    #[error("{failed} of {total} messages were not accepted by SQS (last error: {last})")]
    Partial {
        /// Messages not accepted.
        failed: usize,
        /// Messages in the call.
        total: usize,
        /// The last error code seen.
        last: String,
    },
}

/// What a send did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendReport {
    /// Messages accepted.
    pub sent: usize,
    /// `SendMessageBatch` calls made (retries included).
    pub calls: usize,
    /// Entries sent again after a per-entry failure.
    pub retried_entries: usize,
}

/// Groups `sizes` (in order) into index ranges of at most `max_entries` messages and at most
/// `max_bytes` bytes in total. A message over `max_message` is an error.
pub fn plan_batches(
    sizes: &[usize],
    max_entries: usize,
    max_bytes: usize,
    max_message: usize,
) -> Result<Vec<std::ops::Range<usize>>, SqsError> {
    let mut out = Vec::new();
    let mut start = 0usize;
    let mut bytes = 0usize;
    for (i, &size) in sizes.iter().enumerate() {
        if size > max_message || size > max_bytes {
            return Err(SqsError::TooLarge {
                index: i,
                bytes: size,
                limit: max_message.min(max_bytes),
            });
        }
        if i > start && (i - start >= max_entries || bytes + size > max_bytes) {
            out.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < sizes.len() {
        out.push(start..sizes.len());
    }
    Ok(out)
}

/// Sends messages with `SendMessageBatch`, retrying only failed entries. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SqsSender {
    client: Client,
    max_attempts: u32,
    retry_base: Duration,
    concurrency: usize,
}

impl SqsSender {
    /// A sender with 5 attempts per entry, backoff from 50 ms, and 4 batches in flight.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            max_attempts: 5,
            retry_base: Duration::from_millis(50),
            concurrency: 4,
        }
    }

    /// Changes the attempts per entry (at least 1) and the first backoff.
    pub fn with_retries(mut self, max_attempts: u32, retry_base: Duration) -> Self {
        self.max_attempts = max_attempts.max(1);
        self.retry_base = retry_base;
        self
    }

    /// Changes how many batches are in flight at once (at least 1).
    pub fn with_concurrency(mut self, batches: usize) -> Self {
        self.concurrency = batches.max(1);
        self
    }

    /// The SQS client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Sends every message to `queue_url`, in batches sent up to `concurrency` at a time.
    pub async fn send_all(
        &self,
        queue_url: &str,
        messages: Vec<OutMessage>,
    ) -> Result<SendReport, SqsError> {
        let total = messages.len();
        let sizes: Vec<usize> = messages.iter().map(OutMessage::size).collect();
        let ranges = plan_batches(
            &sizes,
            SQS_MAX_BATCH_ENTRIES,
            SQS_MAX_BATCH_BYTES,
            SQS_MAX_MESSAGE_BYTES,
        )?;
        let mut report = SendReport::default();
        let mut failed = 0usize;
        let mut last = String::new();
        let mut set = tokio::task::JoinSet::new();
        let mut batches = ranges.into_iter().map(|r| messages[r].to_vec());
        loop {
            while set.len() < self.concurrency.max(1) {
                let Some(batch) = batches.next() else { break };
                let this = self.clone();
                let url = queue_url.to_string();
                set.spawn(async move { this.send_batch(&url, batch).await });
            }
            let Some(joined) = set.join_next().await else {
                break;
            };
            match joined {
                Ok(b) => {
                    report.sent += b.sent;
                    report.calls += b.calls;
                    report.retried_entries += b.retried;
                    failed += b.failed;
                    if let Some(l) = b.last_error {
                        last = l;
                    }
                }
                Err(_) => last = "batch task failed".into(),
            }
        }
        // Messages of a batch task that died are neither sent nor counted yet.
        failed = failed.max(total.saturating_sub(report.sent));
        if failed > 0 {
            return Err(SqsError::Partial {
                failed,
                total,
                last,
            });
        }
        Ok(report)
    }

    async fn send_batch(&self, queue_url: &str, batch: Vec<OutMessage>) -> BatchResult {
        let mut pending: Vec<(usize, OutMessage)> = batch.into_iter().enumerate().collect();
        let mut res = BatchResult::default();
        let mut permanent = 0usize;
        for attempt in 0..self.max_attempts {
            if attempt > 0 {
                let factor = 2u32.saturating_pow(attempt - 1);
                tokio::time::sleep(self.retry_base.saturating_mul(factor)).await;
                res.retried += pending.len();
            }
            let entries: Vec<SendMessageBatchRequestEntry> = match pending
                .iter()
                .map(|(i, m)| entry(*i, m))
                .collect::<Result<_, _>>()
            {
                Ok(e) => e,
                Err(_) => {
                    res.failed += pending.len();
                    res.last_error = Some("entry could not be built".into());
                    return res;
                }
            };
            res.calls += 1;
            let out = self
                .client
                .send_message_batch()
                .queue_url(queue_url)
                .set_entries(Some(entries))
                .send()
                .await;
            match out {
                Ok(out) => {
                    res.sent += out.successful().len();
                    let mut retry = Vec::new();
                    for f in out.failed() {
                        let Some(pos) = pending.iter().position(|(i, _)| f.id() == format!("m{i}"))
                        else {
                            continue;
                        };
                        let item = pending.swap_remove(pos);
                        res.last_error = Some(f.code().to_string());
                        if f.sender_fault() {
                            tracing::warn!(
                                code = f.code(),
                                "sqs rejected a message (sender fault); not retried"
                            );
                            permanent += 1;
                        } else {
                            retry.push(item);
                        }
                    }
                    pending = retry;
                }
                Err(e) => {
                    let d = describe("sqs SendMessageBatch", &e);
                    tracing::warn!(error = %d, attempt, "sqs batch call failed; retrying");
                    res.last_error = Some(d);
                }
            }
            if pending.is_empty() {
                break;
            }
        }
        res.failed += permanent + pending.len();
        res
    }
}

#[derive(Debug, Default)]
struct BatchResult {
    sent: usize,
    failed: usize,
    calls: usize,
    retried: usize,
    last_error: Option<String>,
}

fn entry(
    i: usize,
    m: &OutMessage,
) -> Result<SendMessageBatchRequestEntry, aws_sdk_sqs::error::BuildError> {
    let mut b = SendMessageBatchRequestEntry::builder()
        .id(format!("m{i}"))
        .message_body(m.body.clone())
        .set_message_group_id(m.group_id.clone())
        .set_message_deduplication_id(m.dedup_id.clone());
    for (name, value) in &m.attributes {
        b = b.message_attributes(
            name.clone(),
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value.clone())
                .build()?,
        );
    }
    b.build()
}

/// Message attribute names on events-queue messages.
pub mod attrs {
    /// Tenant GUID.
    pub const TENANT_ID: &str = "tenant_id";
    /// Stream name.
    pub const STREAM: &str = "stream";
    /// Distinct OCSF `class_uid`s of the events, comma-separated, ascending.
    pub const OCSF_CLASS_UIDS: &str = "ocsf_class_uids";
    /// Envelope schema version.
    pub const ENVELOPE_VERSION: &str = "envelope_version";
    /// OCSF schema version.
    pub const OCSF_VERSION: &str = "ocsf_version";
    /// Dead-letter reason.
    pub const REASON: &str = "reason";
}

/// The events-queue message of an envelope.
pub fn envelope_message(env: &Envelope) -> Result<OutMessage, SinkError> {
    let body = serde_json::to_string(env)
        .map_err(|_| SinkError::Backend("envelope could not be serialized".into()))?;
    let mut classes: Vec<i64> = env
        .events
        .iter()
        .filter_map(|e| e.get("class_uid").and_then(serde_json::Value::as_i64))
        .collect();
    classes.sort_unstable();
    classes.dedup();
    let classes = classes
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let mut m = OutMessage::new(body)
        .attr(attrs::TENANT_ID, env.tenant_id.clone())
        .attr(attrs::STREAM, env.stream.as_str())
        .attr(attrs::ENVELOPE_VERSION, env.envelope_version.to_string())
        .attr(attrs::OCSF_VERSION, env.ocsf_version.clone());
    if !classes.is_empty() {
        m = m.attr(attrs::OCSF_CLASS_UIDS, classes);
    }
    Ok(m)
}

/// Messages for `env`, splitting it by events until each message fits in `max_bytes`.
fn envelope_messages(
    env: &Envelope,
    max_bytes: usize,
    out: &mut Vec<OutMessage>,
) -> Result<(), SinkError> {
    let m = envelope_message(env)?;
    if m.size() <= max_bytes {
        out.push(m);
        return Ok(());
    }
    if env.events.len() <= 1 {
        return Err(SinkError::Backend(format!(
            "one event of {}/{} is {} bytes with attributes, over the SQS limit; lower max_message_bytes",
            env.tenant_id,
            env.stream,
            m.size()
        )));
    }
    let mid = env.events.len() / 2;
    let (a, b) = env.events.split_at(mid);
    for half in [a, b] {
        let part = Envelope {
            events: half.to_vec(),
            ..env.clone()
        };
        envelope_messages(&part, max_bytes, out)?;
    }
    Ok(())
}

fn sink_error(e: SqsError) -> SinkError {
    match e {
        SqsError::Partial {
            failed,
            total,
            last,
        } => {
            tracing::warn!(failed, total, last = %last, "sqs delivery incomplete");
            SinkError::Partial { failed, total }
        }
        e @ SqsError::TooLarge { .. } => SinkError::Backend(e.to_string()),
    }
}

/// The [`EventSink`] on the events queue (standard queue).
#[derive(Debug, Clone)]
pub struct SqsEventSink {
    sender: SqsSender,
    queue_url: String,
}

impl SqsEventSink {
    /// A sink sending to `queue_url`.
    pub fn new(sender: SqsSender, queue_url: impl Into<String>) -> Self {
        Self {
            sender,
            queue_url: queue_url.into(),
        }
    }
}

#[async_trait]
impl EventSink for SqsEventSink {
    async fn send(&self, envelopes: &[Envelope]) -> Result<(), SinkError> {
        let mut messages = Vec::with_capacity(envelopes.len());
        for env in envelopes {
            envelope_messages(env, SQS_MAX_MESSAGE_BYTES, &mut messages)?;
        }
        let report = self
            .sender
            .send_all(&self.queue_url, messages)
            .await
            .map_err(sink_error)?;
        tracing::debug!(
            messages = report.sent,
            calls = report.calls,
            "events sent to sqs"
        );
        Ok(())
    }
}

/// The [`DeadLetterSink`] on the dead-letters queue (standard queue). A dead letter too large
/// for one message keeps its metadata and a SHA-256 of the record instead of the record.
#[derive(Debug, Clone)]
pub struct SqsDeadLetterSink {
    sender: SqsSender,
    queue_url: String,
}

impl SqsDeadLetterSink {
    /// A sink sending to `queue_url`.
    pub fn new(sender: SqsSender, queue_url: impl Into<String>) -> Self {
        Self {
            sender,
            queue_url: queue_url.into(),
        }
    }
}

fn dead_letter_message(letter: &DeadLetter) -> Result<OutMessage, SinkError> {
    let encode = |l: &DeadLetter| {
        serde_json::to_string(l)
            .map_err(|_| SinkError::Backend("dead letter could not be serialized".into()))
    };
    let with_attrs = |body: String| {
        OutMessage::new(body)
            .attr(attrs::TENANT_ID, letter.tenant_id.clone())
            .attr(attrs::STREAM, letter.stream.as_str())
            .attr(attrs::REASON, truncate(&letter.reason, 256))
    };
    let m = with_attrs(encode(letter)?);
    if m.size() <= SQS_MAX_MESSAGE_BYTES {
        return Ok(m);
    }
    use sha2::Digest;
    let raw = serde_json::to_vec(&letter.record).unwrap_or_default();
    let slim = DeadLetter {
        record: serde_json::json!({
            "truncated": true,
            "record_bytes": raw.len(),
            "record_sha256": hex::encode(sha2::Sha256::digest(&raw)),
        }),
        ..letter.clone()
    };
    Ok(with_attrs(encode(&slim)?))
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

#[async_trait]
impl DeadLetterSink for SqsDeadLetterSink {
    async fn put(&self, letters: &[DeadLetter]) -> Result<(), SinkError> {
        let messages = letters
            .iter()
            .map(dead_letter_message)
            .collect::<Result<Vec<_>, _>>()?;
        self.sender
            .send_all(&self.queue_url, messages)
            .await
            .map_err(sink_error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stream::Stream;

    #[test]
    fn batches_respect_entries_and_bytes() {
        let r = plan_batches(&[1; 25], 10, 100, 100).unwrap_or_default();
        assert_eq!(r, vec![0..10, 10..20, 20..25]);
        let r = plan_batches(&[60, 60, 30, 10, 100], 10, 100, 100).unwrap_or_default();
        assert_eq!(r, vec![0..1, 1..4, 4..5]);
        assert!(matches!(
            plan_batches(&[10, 101], 10, 100, 100),
            Err(SqsError::TooLarge { index: 1, .. })
        ));
        assert!(
            plan_batches(&[], 10, 100, 100)
                .unwrap_or_default()
                .is_empty()
        );
    }

    #[test]
    fn envelope_attributes_and_splitting() {
        let events: Vec<serde_json::Value> = (0..40)
            .map(|i| serde_json::json!({"class_uid": if i % 2 == 0 { 3002 } else { 6003 }, "pad": "x".repeat(1000)}))
            .collect();
        let env = Envelope {
            envelope_version: 1,
            ocsf_version: "1.8.0".into(),
            tenant_id: "t1".into(),
            stream: Stream::Signins,
            events,
        };
        let m = envelope_message(&env).unwrap_or_else(|_| OutMessage::new(String::new()));
        assert!(
            m.attributes
                .contains(&("ocsf_class_uids".into(), "3002,6003".into()))
        );
        assert_eq!(
            m.size(),
            m.body.len()
                + m.attributes
                    .iter()
                    .map(|(n, v)| n.len() + 6 + v.len())
                    .sum::<usize>()
        );
        let mut out = Vec::new();
        envelope_messages(&env, 10_000, &mut out).unwrap_or(());
        assert!(out.len() >= 5, "{}", out.len());
        assert!(out.iter().all(|m| m.size() <= 10_000));
        let n: usize = out
            .iter()
            .map(|m| {
                serde_json::from_str::<Envelope>(&m.body)
                    .map(|e| e.events.len())
                    .unwrap_or(0)
            })
            .sum();
        assert_eq!(n, 40);
    }
}
