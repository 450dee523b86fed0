//! The ITDR ingestion library shared by every binary: national clouds, app-only tokens, the
//! Graph client, cursors, OCSF normalization and the storage and sink traits with their
//! embedded implementations.

pub mod clock;
pub mod cloud;
pub mod http;
pub mod ocsf;
pub mod stream;

pub use cloud::{Cloud, CloudGroup};
pub use stream::Stream;
