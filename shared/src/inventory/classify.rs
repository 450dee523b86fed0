//! Classifications the inventory applies: the permission class of an app, the privileged
//! directory roles, weak MFA methods, and the flags of a suspicious inbox rule.

use serde::Serialize;

/// The class of a permission, from least to most dangerous; an app is classified by the
/// highest class it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PermissionClass {
    /// No permission at all.
    None,
    /// Sign-in and basic profile (`openid`, `profile`, `User.Read`, ...).
    Basic,
    /// Read the directory (users, groups, audit logs).
    DirectoryRead,
    /// Read or write files and sites.
    Files,
    /// Read mail or mailbox settings.
    MailRead,
    /// Write or send mail, change mailbox settings, full mailbox access.
    MailWrite,
    /// Write the directory (users, groups, policies, applications).
    DirectoryWrite,
    /// Grant roles or permissions: can make itself or anyone a Global Administrator.
    RoleManagement,
}

impl PermissionClass {
    /// Stable label.
    pub fn as_str(self) -> &'static str {
        match self {
            PermissionClass::None => "none",
            PermissionClass::Basic => "basic",
            PermissionClass::DirectoryRead => "directory_read",
            PermissionClass::Files => "files",
            PermissionClass::MailRead => "mail_read",
            PermissionClass::MailWrite => "mail_write",
            PermissionClass::DirectoryWrite => "directory_write",
            PermissionClass::RoleManagement => "role_management",
        }
    }

    /// Whether holding this class is a risk worth a look (mail and above).
    pub fn is_sensitive(self) -> bool {
        self >= PermissionClass::MailRead
    }
}

/// The class of one permission value (a delegated scope or an app role's `value`).
pub fn permission_class(permission: &str) -> PermissionClass {
    let p = permission.trim().to_ascii_lowercase();
    let starts = |s: &str| p.starts_with(s);
    if p.is_empty() {
        return PermissionClass::None;
    }
    if starts("rolemanagement.readwrite")
        || p == "approleassignment.readwrite.all"
        || p == "application.readwrite.all"
        || p == "delegatedpermissiongrant.readwrite.all"
    {
        return PermissionClass::RoleManagement;
    }
    if p == "directory.readwrite.all"
        || p == "directory.accessasuser.all"
        || starts("user.readwrite")
        || starts("group.readwrite")
        || starts("groupmember.readwrite")
        || starts("policy.readwrite")
        || starts("application.readwrite")
        || starts("user.enabledisableaccount")
        || starts("userauthenticationmethod.readwrite")
        || starts("domain.readwrite")
        || starts("organization.readwrite")
    {
        return PermissionClass::DirectoryWrite;
    }
    if starts("mail.readwrite")
        || starts("mail.send")
        || starts("mailboxsettings.readwrite")
        || p == "full_access_as_app"
        || p == "ews.accessasuser.all"
        || p == "exchange.manageasapp"
        || starts("smtp.send")
    {
        return PermissionClass::MailWrite;
    }
    if starts("mail.read")
        || starts("mailboxsettings.read")
        || p == "imap.accessasuser.all"
        || p == "pop.accessasuser.all"
    {
        return PermissionClass::MailRead;
    }
    if starts("files.") || starts("sites.") {
        return PermissionClass::Files;
    }
    if matches!(
        p.as_str(),
        "openid" | "profile" | "email" | "offline_access" | "user.read" | "user.readbasic.all"
    ) {
        return PermissionClass::Basic;
    }
    if p.contains(".read") || p.ends_with(".all") {
        return PermissionClass::DirectoryRead;
    }
    PermissionClass::Basic
}

/// The highest class among `permissions`.
pub fn highest_class<'a>(permissions: impl IntoIterator<Item = &'a str>) -> PermissionClass {
    permissions
        .into_iter()
        .map(permission_class)
        .max()
        .unwrap_or(PermissionClass::None)
}

/// Microsoft's own tenant: apps published by it (`appOwnerOrganizationId`) are first-party.
pub const MICROSOFT_TENANT_IDS: [&str; 2] = [
    "f8cdef31-a31e-4b4a-93e4-5f571e91255a",
    "72f988bf-86f1-41af-91ab-2d7cd011db47",
];

/// Global Administrator's role template id.
pub const GLOBAL_ADMINISTRATOR: &str = "62e90394-69f5-4237-9190-012177145e10";

/// Built-in directory roles that can take over the tenant or its mail, by template id.
pub const PRIVILEGED_ROLES: [(&str, &str); 12] = [
    (GLOBAL_ADMINISTRATOR, "Global Administrator"),
    (
        "e8611ab8-c189-46e8-94e1-60213ab1f814",
        "Privileged Role Administrator",
    ),
    (
        "7be44c8a-adaf-4e2a-84d6-ab2649e08a13",
        "Privileged Authentication Administrator",
    ),
    (
        "194ae4cb-b126-40b2-bd5b-6091b380977d",
        "Security Administrator",
    ),
    (
        "29232cdf-9323-42fd-ade2-1d097af3e4de",
        "Exchange Administrator",
    ),
    (
        "f28a1f50-f6e7-4571-818b-6a12f2af6b6c",
        "SharePoint Administrator",
    ),
    ("fe930be7-5e62-47db-91af-98c3a49a38b1", "User Administrator"),
    (
        "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
        "Application Administrator",
    ),
    (
        "158c047a-c907-4556-b7ef-446551a6b5f7",
        "Cloud Application Administrator",
    ),
    (
        "c4e39bd9-1100-46d3-8c65-fb160da0071f",
        "Authentication Administrator",
    ),
    (
        "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9",
        "Conditional Access Administrator",
    ),
    (
        "8ac3fc64-6eca-42ea-9e69-59f4c7b60eb2",
        "Hybrid Identity Administrator",
    ),
];

/// Whether a role template id is one of [`PRIVILEGED_ROLES`].
pub fn is_privileged_role(template_id: &str) -> bool {
    PRIVILEGED_ROLES
        .iter()
        .any(|(id, _)| id.eq_ignore_ascii_case(template_id.trim()))
}

/// MFA strength of a user's registered methods (`methodsRegistered`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MfaStrength {
    /// No method that can serve as a second factor.
    None,
    /// Only phone methods (SMS, voice): phishable and SIM-swappable.
    WeakOnly,
    /// At least one app, hardware, FIDO2 or Windows Hello method.
    Strong,
}

impl MfaStrength {
    /// Stable label, also the summary tag.
    pub fn as_str(self) -> &'static str {
        match self {
            MfaStrength::None => "no_mfa",
            MfaStrength::WeakOnly => "weak_mfa_only",
            MfaStrength::Strong => "mfa",
        }
    }
}

/// Phone methods: usable for MFA, but weak.
const WEAK_METHODS: [&str; 6] = [
    "mobilephone",
    "alternatemobilephone",
    "officephone",
    "sms",
    "voice",
    "phone",
];
/// Methods that are not a second factor at all (self-service password reset only).
const NOT_MFA: [&str; 3] = ["email", "securityquestion", "password"];

/// How strong a user's registered methods are.
pub fn mfa_strength<'a>(methods: impl IntoIterator<Item = &'a str>) -> MfaStrength {
    let mut weak = false;
    for m in methods {
        let m = m.trim().to_ascii_lowercase();
        if m.is_empty() || NOT_MFA.contains(&m.as_str()) {
            continue;
        }
        if WEAK_METHODS.contains(&m.as_str()) {
            weak = true;
        } else {
            return MfaStrength::Strong;
        }
    }
    if weak {
        MfaStrength::WeakOnly
    } else {
        MfaStrength::None
    }
}

/// Why an inbox rule is suspicious.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleFlag {
    /// Forwards or redirects mail outside the tenant's domains.
    ForwardsExternal,
    /// Deletes mail (to Deleted Items or permanently).
    Deletes,
    /// Moves mail to Deleted Items, Junk, RSS or Archive, out of the owner's sight.
    MovesToHiddenFolder,
    /// Marks mail as read.
    MarksRead,
    /// A name made only of punctuation (or nothing), as attackers like them.
    PunctuationName,
}

impl RuleFlag {
    /// Stable label.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleFlag::ForwardsExternal => "forwards_external",
            RuleFlag::Deletes => "deletes",
            RuleFlag::MovesToHiddenFolder => "moves_to_hidden_folder",
            RuleFlag::MarksRead => "marks_read",
            RuleFlag::PunctuationName => "punctuation_name",
        }
    }
}

/// Well-known names (as `moveToFolder` may carry them) and English display names of the
/// folders a hiding rule moves mail to.
pub const HIDDEN_FOLDERS: [&str; 9] = [
    "deleteditems",
    "deleted items",
    "junkemail",
    "junk email",
    "junk e-mail",
    "archive",
    "rss feeds",
    "rss subscriptions",
    "conversation history",
];

/// Whether a folder (by well-known or display name) is one where mail goes unseen.
pub fn is_hidden_folder(name: &str) -> bool {
    HIDDEN_FOLDERS.contains(&name.trim().to_ascii_lowercase().as_str())
}

/// Whether a rule name has no letter or digit.
pub fn is_punctuation_name(name: &str) -> bool {
    !name.chars().any(char::is_alphanumeric)
}

/// Whether `address` is outside `domains` (the tenant's domains, lowercase). An address
/// without a domain counts as external: it cannot be shown to stay inside.
pub fn is_external(address: &str, domains: &[String]) -> bool {
    let Some((_, domain)) = address.trim().rsplit_once('@') else {
        return true;
    };
    let domain = domain.to_ascii_lowercase();
    !domains
        .iter()
        .any(|d| domain == *d || domain.ends_with(&format!(".{d}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apps_take_their_highest_class() {
        assert_eq!(
            highest_class(["openid", "User.Read"]),
            PermissionClass::Basic
        );
        assert_eq!(
            highest_class(["User.Read", "Mail.Read"]),
            PermissionClass::MailRead
        );
        assert_eq!(highest_class(["Mail.Send"]), PermissionClass::MailWrite);
        assert_eq!(
            highest_class(["Files.ReadWrite.All", "Directory.Read.All"]),
            PermissionClass::Files
        );
        assert_eq!(
            highest_class(["Directory.ReadWrite.All", "Mail.ReadWrite"]),
            PermissionClass::DirectoryWrite
        );
        assert_eq!(
            highest_class(["RoleManagement.ReadWrite.Directory"]),
            PermissionClass::RoleManagement
        );
        assert_eq!(
            highest_class(["AppRoleAssignment.ReadWrite.All"]),
            PermissionClass::RoleManagement
        );
        assert_eq!(
            highest_class(["AuditLog.Read.All"]),
            PermissionClass::DirectoryRead
        );
        assert_eq!(highest_class([]), PermissionClass::None);
        assert!(PermissionClass::MailRead.is_sensitive());
        assert!(!PermissionClass::Files.is_sensitive());
    }

    #[test]
    fn mfa_strength_separates_weak_phone_methods() {
        assert_eq!(mfa_strength([]), MfaStrength::None);
        assert_eq!(mfa_strength(["email"]), MfaStrength::None, "SSPR only");
        assert_eq!(
            mfa_strength(["mobilePhone", "email"]),
            MfaStrength::WeakOnly
        );
        assert_eq!(
            mfa_strength(["mobilePhone", "microsoftAuthenticatorPush"]),
            MfaStrength::Strong
        );
        assert_eq!(mfa_strength(["fido2"]), MfaStrength::Strong);
    }

    #[test]
    fn rule_helpers() {
        let domains = vec!["contoso.com".to_string(), "contoso.onmicrosoft.com".into()];
        assert!(!is_external("a@contoso.com", &domains));
        assert!(!is_external("a@Sales.Contoso.com", &domains));
        assert!(is_external("a@contoso.com.evil.example", &domains));
        assert!(is_external("a@gmail.com", &domains));
        assert!(is_external("no-domain", &domains));
        assert!(is_punctuation_name("..."));
        assert!(is_punctuation_name(" ,. "));
        assert!(is_punctuation_name(""));
        assert!(!is_punctuation_name("From partner"));
        assert!(is_hidden_folder("RSS Feeds"));
        assert!(is_hidden_folder("deleteditems"));
        assert!(!is_hidden_folder("Projects"));
        assert!(is_privileged_role(GLOBAL_ADMINISTRATOR));
        assert!(!is_privileged_role("f2ef992c-3afb-46b9-b7cf-a126ee74c451"));
    }
}
