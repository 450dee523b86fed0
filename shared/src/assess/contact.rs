//! The organization's contact address: who receives the tenant's assessment report by email
//! (`itdr tenants add --contact`, the AWS report function).

/// Why a contact address was refused. Names the rule, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContactError {
    /// Not of the form `local@domain.tld` with printable ASCII, no spaces, at most 254 bytes.
    #[error("contact email is not a valid address (local@domain, ASCII, at most 254 bytes)")]
    Invalid,
}

/// Validates a contact address and returns it trimmed, with its domain lowercased: one `@`,
/// a local part of 1 to 64 printable ASCII characters without spaces, quotes, angle
/// brackets, commas or semicolons (nothing that could add a recipient or a header), and a
/// domain of dot-separated labels of letters, digits and hyphens with at least one dot.
pub fn validate_contact_email(s: &str) -> Result<String, ContactError> {
    let s = s.trim();
    if s.is_empty() || s.len() > 254 {
        return Err(ContactError::Invalid);
    }
    let (local, domain) = s.split_once('@').ok_or(ContactError::Invalid)?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.chars().all(|c| {
            c.is_ascii_graphic()
                && !matches!(
                    c,
                    '@' | '"' | '<' | '>' | ',' | ';' | '(' | ')' | '[' | ']' | '\\' | ':'
                )
        });
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if !local_ok || !domain_ok {
        return Err(ContactError::Invalid);
    }
    Ok(format!("{local}@{}", domain.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_addresses() {
        assert_eq!(
            validate_contact_email(" Security.Team+itdr@Contoso.Example ").as_deref(),
            Ok("Security.Team+itdr@contoso.example")
        );
        for bad in [
            "",
            "no-at.example",
            "a@b",
            "a@@b.example",
            "a b@c.example",
            "a@c.example\r\nBcc: x@y.example",
            "a,b@c.example",
            "<a@c.example>",
            "a@-c.example",
            "a@c..example",
            ".a@c.example",
            "é@c.example",
        ] {
            assert_eq!(
                validate_contact_email(bad),
                Err(ContactError::Invalid),
                "{bad:?}"
            );
        }
        let long = format!("{}@c.example", "a".repeat(65));
        assert!(validate_contact_email(&long).is_err());
    }
}
