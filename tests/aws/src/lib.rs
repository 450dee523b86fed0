//! The local AWS harness for the adapter and end-to-end tests: a real `moto_server` on a free
//! loopback port, the tables, queues and secrets the functions expect, and helpers to read
//! queues back and to turn received messages into the `SqsEvent` Lambda would deliver.
//!
//! `moto_server` is found through `ITDR_MOTO_SERVER` (set by `make test`), else at
//! `.tools/venv/bin/moto_server` under the workspace root. When it is missing the harness
//! fails with a message saying to run `make tools`; it never skips a test.
//!
//! [`contract`] is the store contract suite every `CursorStore` and `TenantRegistry` runs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod chaos;
pub mod contract;
pub mod queue_contract;

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage, SqsMessageAttribute};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, QueueAttributeName};
use itdr_shared::CloudGroup;
use itdr_shared::aws::config::{PollerConfig, SchedulerConfig};
use itdr_shared::aws::{AwsEndpoint, sdk_config};

/// Table and queue names the fixture creates.
pub const REGISTRY_TABLE: &str = "itdr-registry";
/// Cursor table.
pub const CURSOR_TABLE: &str = "itdr-cursors";
/// Secret prefix.
pub const SECRET_PREFIX: &str = "itdr";
/// Our own tenant id, the pollers' `ITDR_PUBLISHER_ID`.
pub const PUBLISHER_ID: &str = "3f2a9c61-0b7e-4d25-9a18-c6e5d4f3b2a1";

/// A running `moto_server`, killed on drop.
pub struct Moto {
    child: Child,
    /// Its base URL, `http://127.0.0.1:PORT`.
    pub url: String,
}

fn moto_path() -> PathBuf {
    if let Ok(p) = std::env::var("ITDR_MOTO_SERVER")
        && !p.trim().is_empty()
    {
        return PathBuf::from(p);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.tools/venv/bin/moto_server")
}

impl Moto {
    /// Starts moto on a free loopback port and waits until it answers.
    pub async fn start() -> Self {
        let path = moto_path();
        assert!(
            path.exists(),
            "moto_server not found at {} (ITDR_MOTO_SERVER or .tools/venv/bin/moto_server): run `make tools` first",
            path.display()
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port");
        // ITDR_MOTO_LOG: a file for moto's own log (requests and tracebacks), to debug it.
        let log = std::env::var_os("ITDR_MOTO_LOG")
            .and_then(|p| std::fs::File::create(p).ok())
            .map_or_else(Stdio::null, Stdio::from);
        let child = Command::new(&path)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", path.display()));
        let moto = Moto {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let client = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if client
                .get(format!("{}/moto-api/", moto.url))
                .send()
                .await
                .is_ok()
            {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "moto_server did not answer on {} within 30 s",
                moto.url
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        moto
    }

    /// The server's process id (for its CPU time in benches).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Wipes every resource (`POST /moto-api/reset`).
    pub async fn reset(&self) {
        itdr_shared::http::install_crypto_provider();
        let resp = reqwest::Client::new()
            .post(format!("{}/moto-api/reset", self.url))
            .send()
            .await
            .expect("moto reset");
        assert!(resp.status().is_success(), "moto reset: {}", resp.status());
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// moto with the functions' tables, queues and clients.
pub struct AwsFixture {
    /// The server.
    pub moto: Moto,
    /// SDK configuration pointing at it.
    pub sdk: SdkConfig,
    /// DynamoDB client.
    pub ddb: aws_sdk_dynamodb::Client,
    /// SQS client.
    pub sqs: aws_sdk_sqs::Client,
    /// Secrets Manager client.
    pub secrets: aws_sdk_secretsmanager::Client,
    /// Queue URLs by role.
    pub queues: Queues,
}

/// The queue URLs.
#[derive(Debug, Clone, Default)]
pub struct Queues {
    /// Commercial jobs (FIFO).
    pub jobs_commercial: String,
    /// US Government jobs (FIFO).
    pub jobs_usgov: String,
    /// Events (standard).
    pub events: String,
    /// Dead letters (standard).
    pub dead_letters: String,
}

impl AwsFixture {
    /// Starts moto and creates everything.
    pub async fn start() -> Self {
        itdr_shared::http::install_crypto_provider();
        let moto = Moto::start().await;
        let sdk = sdk_config(&AwsEndpoint::local(&moto.url).expect("loopback")).await;
        let mut f = Self {
            ddb: aws_sdk_dynamodb::Client::new(&sdk),
            sqs: aws_sdk_sqs::Client::new(&sdk),
            secrets: aws_sdk_secretsmanager::Client::new(&sdk),
            sdk,
            moto,
            queues: Queues::default(),
        };
        f.reset().await;
        f
    }

    /// Resets moto and creates the tables and queues again.
    pub async fn reset(&mut self) {
        self.moto.reset().await;
        self.create_table(REGISTRY_TABLE, &["tenant_id"]).await;
        self.create_table(CURSOR_TABLE, &["tenant_id", "stream"])
            .await;
        self.queues = Queues {
            jobs_commercial: self.create_queue("itdr-jobs-commercial.fifo").await,
            jobs_usgov: self.create_queue("itdr-jobs-usgov.fifo").await,
            events: self.create_queue("itdr-events").await,
            dead_letters: self.create_queue("itdr-dead-letters").await,
        };
    }

    /// Creates another pair of registry and cursor tables, keyed as the stack's are.
    pub async fn create_store_tables(&self, registry: &str, cursors: &str) {
        self.create_table(registry, &["tenant_id"]).await;
        self.create_table(cursors, &["tenant_id", "stream"]).await;
    }

    /// Creates a table with the given key attributes (hash, then range).
    pub async fn create_table(&self, name: &str, keys: &[&str]) {
        let mut req = self
            .ddb
            .create_table()
            .table_name(name)
            .billing_mode(BillingMode::PayPerRequest);
        for (i, k) in keys.iter().enumerate() {
            req = req
                .attribute_definitions(
                    AttributeDefinition::builder()
                        .attribute_name(*k)
                        .attribute_type(ScalarAttributeType::S)
                        .build()
                        .unwrap(),
                )
                .key_schema(
                    KeySchemaElement::builder()
                        .attribute_name(*k)
                        .key_type(if i == 0 {
                            KeyType::Hash
                        } else {
                            KeyType::Range
                        })
                        .build()
                        .unwrap(),
                );
        }
        req.send().await.expect("create table");
    }

    async fn create_queue(&self, name: &str) -> String {
        let mut req = self.sqs.create_queue().queue_name(name);
        if name.ends_with(".fifo") {
            req = req
                .attributes(QueueAttributeName::FifoQueue, "true")
                .attributes(QueueAttributeName::ContentBasedDeduplication, "false");
        }
        req = req.attributes(QueueAttributeName::VisibilityTimeout, "60");
        req.send()
            .await
            .expect("create queue")
            .queue_url()
            .expect("queue url")
            .to_string()
    }

    /// Creates (or replaces the value of) a secret.
    pub async fn put_secret(&self, name: &str, value: &str) {
        let exists = self
            .secrets
            .describe_secret()
            .secret_id(name)
            .send()
            .await
            .is_ok();
        if exists {
            self.secrets
                .put_secret_value()
                .secret_id(name)
                .secret_string(value)
                .send()
                .await
                .expect("put secret value");
        } else {
            self.secrets
                .create_secret()
                .name(name)
                .secret_string(value)
                .send()
                .await
                .expect("create secret");
        }
    }

    /// The environment the scheduler would get.
    pub fn scheduler_env(&self) -> HashMap<String, String> {
        [
            ("ITDR_REGISTRY_TABLE", REGISTRY_TABLE.to_string()),
            (
                "ITDR_JOBS_QUEUE_COMMERCIAL_URL",
                self.queues.jobs_commercial.clone(),
            ),
            ("ITDR_JOBS_QUEUE_USGOV_URL", self.queues.jobs_usgov.clone()),
            ("ITDR_SCHEDULE_SLOT_SECS", "300".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// The scheduler configuration, read through the same validation as in Lambda.
    pub fn scheduler_config(&self) -> SchedulerConfig {
        let env = self.scheduler_env();
        SchedulerConfig::from_lookup(&|k| env.get(k).cloned()).expect("scheduler config")
    }

    /// The environment a poller would get (with our publisher id for the Management
    /// Activity API).
    pub fn poller_env(
        &self,
        group: CloudGroup,
        app_requests_per_10s: u32,
        poll_config: &serde_json::Value,
        endpoint_override: &str,
    ) -> HashMap<String, String> {
        [
            ("ITDR_CLOUD_GROUP", group.as_str().to_string()),
            ("ITDR_REGISTRY_TABLE", REGISTRY_TABLE.to_string()),
            ("ITDR_CURSOR_TABLE", CURSOR_TABLE.to_string()),
            ("ITDR_EVENTS_QUEUE_URL", self.queues.events.clone()),
            (
                "ITDR_DEAD_LETTERS_QUEUE_URL",
                self.queues.dead_letters.clone(),
            ),
            ("ITDR_SECRET_PREFIX", SECRET_PREFIX.to_string()),
            ("ITDR_SECRET_TTL_SECS", "300".to_string()),
            (
                "ITDR_APP_REQUESTS_PER_10S",
                app_requests_per_10s.to_string(),
            ),
            ("ITDR_POLL_CONFIG", poll_config.to_string()),
            ("ITDR_ENDPOINT_OVERRIDE", endpoint_override.to_string()),
            ("ITDR_PUBLISHER_ID", PUBLISHER_ID.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// A poller configuration, read through the same validation as in Lambda.
    pub fn poller_config(
        &self,
        group: CloudGroup,
        app_requests_per_10s: u32,
        poll_config: &serde_json::Value,
        endpoint_override: &str,
    ) -> PollerConfig {
        let env = self.poller_env(group, app_requests_per_10s, poll_config, endpoint_override);
        PollerConfig::from_lookup(group, &|k| env.get(k).cloned()).expect("poller config")
    }

    /// Receives (and deletes) every message of a queue.
    pub async fn drain(&self, queue_url: &str) -> Vec<Message> {
        let mut out = Vec::new();
        let mut empty = 0;
        while empty < 2 {
            let r = self
                .sqs
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .message_attribute_names("All")
                .message_system_attribute_names(MessageSystemAttributeName::All)
                .send()
                .await
                .expect("receive");
            let msgs = r.messages().to_vec();
            if msgs.is_empty() {
                empty += 1;
                continue;
            }
            for m in &msgs {
                if let Some(h) = m.receipt_handle() {
                    self.sqs
                        .delete_message()
                        .queue_url(queue_url)
                        .receipt_handle(h)
                        .send()
                        .await
                        .expect("delete");
                }
            }
            out.extend(msgs);
        }
        out
    }
}

/// The `SqsEvent` Lambda's event source mapping would deliver for `messages` of `queue_url`.
pub fn sqs_event(queue_url: &str, messages: &[Message]) -> SqsEvent {
    let queue_name = queue_url.rsplit('/').next().unwrap_or_default();
    let mut event = SqsEvent::default();
    event.records = messages
        .iter()
        .map(|m| {
            let mut r = SqsMessage::default();
            r.message_id = m.message_id().map(str::to_string);
            r.receipt_handle = m.receipt_handle().map(str::to_string);
            r.body = m.body().map(str::to_string);
            r.md5_of_body = m.md5_of_body().map(str::to_string);
            r.attributes = m
                .attributes()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.as_str().to_string(), v.clone()))
                        .collect()
                })
                .unwrap_or_default();
            r.message_attributes = m
                .message_attributes()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| {
                            let mut attr = SqsMessageAttribute::default();
                            attr.string_value = v.string_value().map(str::to_string);
                            attr.data_type = Some(v.data_type().to_string());
                            (k.clone(), attr)
                        })
                        .collect()
                })
                .unwrap_or_default();
            r.event_source = Some("aws:sqs".into());
            r.event_source_arn = Some(format!("arn:aws:sqs:us-east-1:123456789012:{queue_name}"));
            r.aws_region = Some("us-east-1".into());
            r
        })
        .collect();
    event
}

/// A string message attribute of a received message.
pub fn attr(m: &Message, name: &str) -> Option<String> {
    m.message_attributes()
        .and_then(|a| a.get(name))
        .and_then(|v| v.string_value())
        .map(str::to_string)
}

/// A log capture for `tracing`: a writer that appends to a shared buffer.
#[derive(Clone, Default)]
pub struct LogCapture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl LogCapture {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).to_string()
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
