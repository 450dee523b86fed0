//! Onboarding a tenant: finding its GUID and national cloud ([`discovery`]) and checking every
//! prerequisite before the first poll ([`preflight`]).

pub mod discovery;
pub mod preflight;

pub use discovery::{Discovery, DiscoveryError, TenantRef, discover, is_domain, is_guid};
