//! Onboarding a tenant: finding its GUID and national cloud ([`discovery`]) and checking every
//! prerequisite before the first poll ([`preflight`]), and the tenant lifecycle on any registry
//! ([`lifecycle`]).

pub mod check;
pub mod discovery;
pub mod lifecycle;
pub mod preflight;

pub use check::CheckId;
pub use discovery::{Discovery, DiscoveryError, TenantRef, discover, is_domain, is_guid};
