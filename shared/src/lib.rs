//! The ITDR ingestion library shared by every binary: national clouds, app-only tokens, the
//! client of Microsoft's APIs and the sources behind it, cursors, the poll engines and the one
//! job runner, OCSF normalization, named telemetry, and the storage and sink traits with their
//! embedded implementations.

pub mod assess;
pub mod auth;
#[cfg(feature = "aws")]
pub mod aws;
pub mod batch;
pub mod client;
pub mod clock;
pub mod cloud;
pub mod cursor;
pub mod embedded;
pub mod health;
pub mod http;
pub mod inventory;
pub mod ocsf;
pub mod onboard;
pub mod poll;
pub mod respond;
pub mod runner;
pub mod schedule;
pub mod source;
pub mod stack;
pub mod store;
pub mod stream;
pub mod telemetry;

pub use cloud::{Api, Cloud, CloudGroup};
pub use stream::Stream;
