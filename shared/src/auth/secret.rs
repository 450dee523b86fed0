//! A string that must never be printed: client secrets, signed client assertions and access
//! tokens.
//!
//! [`SecretString`] prints `***` through both `Debug` and `Display`, and does not implement
//! `Serialize`, so a secret cannot reach a log line, an error message or a JSON document by
//! accident. Reading the value takes an explicit [`SecretString::expose`] call.

use std::fmt;

/// A redacting wrapper around a secret string.
#[derive(Clone, Default)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself. Call only where the value is sent to Microsoft.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is empty (for configuration checks).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for SecretString {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for SecretString {
    fn from(s: &str) -> Self {
        Self(s.to_string())
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_redact() {
        let s = SecretString::new("hunter2-very-secret");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some(***)");
        assert_eq!(s.expose(), "hunter2-very-secret");
        assert!(!s.is_empty());
        assert!(SecretString::default().is_empty());
    }
}
