//! Embedded implementations of the storage and sink traits in [`crate::store`], for running
//! the whole pipeline on one machine with no cloud services:
//!
//! - `SqliteStore` (feature `sqlite`): cursors (versioned compare-and-set) and the tenant
//!   registry in one SQLite file.
//! - [`NdjsonSink`] and [`NdjsonDeadLetters`]: events and dead letters appended as JSON lines
//!   to local files, synced to disk before `send` / `put` return.
//! - [`MemorySink`] and [`MemoryDeadLetters`]: in-memory sinks for tests and the simulator
//!   demo, with injectable failures.
//! - [`MemoryStore`]: cursors and the tenant registry in memory, with the same contracts as
//!   `SqliteStore` (for tests and simulations).

pub mod memory;
pub mod ndjson;
#[cfg(feature = "sqlite")]
pub mod sqlite;

pub use memory::{InjectedFailure, MemoryDeadLetters, MemorySink, MemoryStore};
pub use ndjson::{NdjsonDeadLetters, NdjsonSink};
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;
