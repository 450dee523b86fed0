//! The ITDR ingestion library shared by every binary: national clouds, app-only tokens, the
//! Graph client, cursors, OCSF normalization and the storage and sink traits with their
//! embedded implementations.

pub mod auth;
#[cfg(feature = "aws")]
pub mod aws;
pub mod batch;
pub mod clock;
pub mod cloud;
pub mod cursor;
pub mod embedded;
pub mod graph;
pub mod http;
pub mod ocsf;
pub mod onboard;
pub mod poll;
pub mod store;
pub mod stream;

pub use cloud::{Cloud, CloudGroup};
pub use stream::Stream;
