//! The application permissions each response action needs, checked against the token's
//! `roles` before any call is made.
//!
//! Each requirement is a set of alternatives: any one of them is enough. The least privileged
//! alternative comes first and is the one named in the remedy. Sources: the Microsoft Graph
//! permission tables of `user: update` (`accountEnabled`), `user: revokeSignInSessions`,
//! `messageRule: update` / `delete`, `authentication: list methods` and the per-method delete
//! calls, and `unifiedRoleAssignment: list`.

use serde::{Deserialize, Serialize};

/// One permission requirement: any of `any_of` satisfies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requirement {
    /// The alternatives, least privileged first.
    pub any_of: &'static [&'static str],
    /// What the action uses it for.
    pub purpose: &'static str,
}

/// Read a user's account state (`accountEnabled`, UPN).
pub const READ_USER: Requirement = Requirement {
    any_of: &[
        "User.Read.All",
        "Directory.Read.All",
        "User.ReadWrite.All",
        "Directory.ReadWrite.All",
    ],
    purpose: "read the target user's account state",
};

/// Set `accountEnabled`.
pub const ENABLE_DISABLE: Requirement = Requirement {
    any_of: &[
        "User.EnableDisableAccount.All",
        "User.ReadWrite.All",
        "Directory.ReadWrite.All",
    ],
    purpose: "disable and re-enable accounts",
};

/// Read who holds Global Administrator (the last-Global-Administrator rail).
pub const READ_ROLES: Requirement = Requirement {
    any_of: &[
        "RoleManagement.Read.Directory",
        "Directory.Read.All",
        "RoleManagement.Read.All",
        "RoleManagement.ReadWrite.Directory",
        "Directory.ReadWrite.All",
    ],
    purpose: "check that another enabled Global Administrator remains",
};

/// `revokeSignInSessions`.
pub const REVOKE: Requirement = Requirement {
    any_of: &[
        "User.RevokeSessions.All",
        "User.ReadWrite.All",
        "Directory.ReadWrite.All",
    ],
    purpose: "revoke sign-in sessions and refresh tokens",
};

/// Read and change inbox rules.
pub const RULES_WRITE: Requirement = Requirement {
    any_of: &["MailboxSettings.ReadWrite"],
    purpose: "disable or delete inbox rules",
};

/// Read the tenant's domains (what "outside the tenant" means).
pub const READ_DOMAINS: Requirement = Requirement {
    any_of: &[
        "Domain.Read.All",
        "Directory.Read.All",
        "Domain.ReadWrite.All",
        "Directory.ReadWrite.All",
    ],
    purpose: "tell the tenant's own domains from outside addresses",
};

/// List and remove authentication methods.
pub const AUTH_METHODS: Requirement = Requirement {
    any_of: &["UserAuthenticationMethod.ReadWrite.All"],
    purpose: "list and remove registered authentication methods",
};

/// A requirement the token does not meet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingPermission {
    /// The least privileged permission that would meet it.
    pub permission: String,
    /// Any of these also would.
    pub alternatives: Vec<String>,
    /// What it is for.
    pub purpose: String,
}

/// The requirements of `required` that `roles` does not meet, in order, without repeats.
pub fn missing(required: &[Requirement], roles: &[String]) -> Vec<MissingPermission> {
    let has = |r: &str| roles.iter().any(|g| g.eq_ignore_ascii_case(r));
    let mut out: Vec<MissingPermission> = Vec::new();
    for req in required {
        if req.any_of.iter().any(|r| has(r)) {
            continue;
        }
        let first = req.any_of.first().copied().unwrap_or_default();
        if out.iter().any(|m| m.permission == first) {
            continue;
        }
        out.push(MissingPermission {
            permission: first.to_string(),
            alternatives: req.any_of.iter().skip(1).map(|s| s.to_string()).collect(),
            purpose: req.purpose.to_string(),
        });
    }
    out
}

/// The operator's fix for missing permissions, in the words of preflight.
pub fn remedy(missing: &[MissingPermission], tenant: &str) -> String {
    let names = missing
        .iter()
        .map(|m| m.permission.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "add the application permission(s) {names} to the write app registration (Microsoft Graph, Application permissions), have the customer's Global Administrator grant admin consent again, then run `itdr preflight --tenant {tenant}` and retry"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_alternative_meets_a_requirement_and_the_least_privileged_is_named() {
        let roles = vec!["Directory.ReadWrite.All".to_string()];
        assert!(missing(&[READ_USER, ENABLE_DISABLE, REVOKE], &roles).is_empty());
        let roles = vec!["User.Read.All".to_string()];
        let m = missing(&[READ_USER, ENABLE_DISABLE, READ_ROLES], &roles);
        let names: Vec<&str> = m.iter().map(|m| m.permission.as_str()).collect();
        assert_eq!(
            names,
            [
                "User.EnableDisableAccount.All",
                "RoleManagement.Read.Directory"
            ]
        );
        let r = remedy(&m, "contoso.onmicrosoft.com");
        assert!(r.contains("User.EnableDisableAccount.All, RoleManagement.Read.Directory"));
        assert!(r.contains("itdr preflight --tenant contoso.onmicrosoft.com"));
    }

    #[test]
    fn role_names_compare_case_insensitively() {
        let roles = vec!["mailboxsettings.readwrite".to_string()];
        assert!(missing(&[RULES_WRITE], &roles).is_empty());
    }
}
