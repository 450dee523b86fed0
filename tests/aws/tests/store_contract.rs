//! The store contract suite (`itdr_aws_tests::contract`) against every implementation: the
//! in-memory store, the SQLite store in memory and on a file, and the DynamoDB adapters on
//! moto. Each case runs on fresh stores.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use itdr_aws_tests::AwsFixture;
use itdr_aws_tests::contract::{Stores, run};
use itdr_shared::aws::dynamo::{DynamoCursorStore, DynamoRegistry};
use itdr_shared::embedded::{MemoryStore, SqliteStore};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_honours_the_store_contracts() {
    run("memory", || async {
        let s = MemoryStore::new();
        Stores {
            cursors: Arc::new(s.clone()),
            registry: Arc::new(s),
            concurrent: true,
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_in_memory_honours_the_store_contracts() {
    run("sqlite in memory", || async {
        let s = SqliteStore::in_memory().unwrap();
        Stores {
            cursors: Arc::new(s.clone()),
            registry: Arc::new(s),
            concurrent: true,
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_on_a_file_honours_the_store_contracts() {
    let dir = tempfile::tempdir().unwrap();
    let n = AtomicUsize::new(0);
    run("sqlite file", || {
        let path = dir
            .path()
            .join(format!("state-{}.db", n.fetch_add(1, Ordering::Relaxed)));
        async move {
            // Cursors and registry through two connections to one file, as two processes
            // would use it.
            Stores {
                cursors: Arc::new(SqliteStore::open(&path).unwrap()),
                registry: Arc::new(SqliteStore::open(&path).unwrap()),
                concurrent: true,
            }
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_adapters_honour_the_store_contracts() {
    let f = AwsFixture::start().await;
    let n = AtomicUsize::new(0);
    run("dynamodb", || {
        let i = n.fetch_add(1, Ordering::Relaxed);
        let f = &f;
        async move {
            let (registry, cursors) = (
                format!("contract-registry-{i}"),
                format!("contract-cursors-{i}"),
            );
            f.create_store_tables(&registry, &cursors).await;
            Stores {
                cursors: Arc::new(DynamoCursorStore::new(f.ddb.clone(), cursors)),
                registry: Arc::new(DynamoRegistry::new(f.ddb.clone(), registry)),
                // moto does not make concurrent conditional writes atomic: racing writers run
                // one after the other there.
                concurrent: false,
            }
        }
    })
    .await;
}
