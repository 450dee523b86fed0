//! OCSF 1.8.0 enum values and captions for the classes and attributes this module emits.
//!
//! The captions are the schema's own (`caption` of each enum member). The integration test
//! `ocsf_schema` compares every emitted caption with `tests/fixtures/ocsf/1.8.0/captions.json`,
//! which is generated from the compiled schema, so a typo here fails the tests.

/// The OCSF event classes the normalizer emits (and [`super::check_event`] understands).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// 3001 Account Change.
    AccountChange,
    /// 3002 Authentication.
    Authentication,
    /// 3004 Entity Management.
    EntityManagement,
    /// 3005 User Access Management.
    UserAccess,
    /// 3006 Group Management.
    GroupManagement,
    /// 6003 API Activity.
    ApiActivity,
    /// 5003 User Inventory Info (the identity inventory).
    UserInventory,
    /// 5023 Cloud Resources Inventory Info (apps, role holders, policies, inbox rules).
    CloudResourcesInventory,
    /// 2003 Compliance Finding (the Identity Security Assessment's findings).
    ComplianceFinding,
}

impl Class {
    /// Every class, in `class_uid` order.
    pub const ALL: [Class; 9] = [
        Class::AccountChange,
        Class::Authentication,
        Class::EntityManagement,
        Class::UserAccess,
        Class::GroupManagement,
        Class::ApiActivity,
        Class::UserInventory,
        Class::CloudResourcesInventory,
        Class::ComplianceFinding,
    ];

    /// `class_uid`.
    pub fn uid(self) -> u32 {
        match self {
            Class::AccountChange => 3001,
            Class::Authentication => 3002,
            Class::EntityManagement => 3004,
            Class::UserAccess => 3005,
            Class::GroupManagement => 3006,
            Class::ApiActivity => 6003,
            Class::UserInventory => 5003,
            Class::CloudResourcesInventory => 5023,
            Class::ComplianceFinding => 2003,
        }
    }

    /// The class for a `class_uid`, if it is one of ours.
    pub fn from_uid(uid: u64) -> Option<Class> {
        Class::ALL.into_iter().find(|c| u64::from(c.uid()) == uid)
    }

    /// `class_name`.
    pub fn caption(self) -> &'static str {
        match self {
            Class::AccountChange => "Account Change",
            Class::Authentication => "Authentication",
            Class::EntityManagement => "Entity Management",
            Class::UserAccess => "User Access Management",
            Class::GroupManagement => "Group Management",
            Class::ApiActivity => "API Activity",
            Class::UserInventory => "User Inventory Info",
            Class::CloudResourcesInventory => "Cloud Resources Inventory Info",
            Class::ComplianceFinding => "Compliance Finding",
        }
    }

    /// `category_uid`.
    pub fn category_uid(self) -> u32 {
        match self {
            Class::ApiActivity => 6,
            Class::UserInventory | Class::CloudResourcesInventory => 5,
            Class::ComplianceFinding => 2,
            _ => 3,
        }
    }

    /// `category_name`.
    pub fn category_caption(self) -> &'static str {
        match self.category_uid() {
            6 => "Application Activity",
            5 => "Discovery",
            2 => "Findings",
            _ => "Identity & Access Management",
        }
    }

    /// The caption of `activity_id` in this class (`None` for a value outside the enum).
    pub fn activity_caption(self, activity_id: u32) -> Option<&'static str> {
        let table: &[(u32, &str)] = match self {
            Class::AccountChange => &[
                (1, "Create"),
                (2, "Enable"),
                (3, "Password Change"),
                (4, "Password Reset"),
                (5, "Disable"),
                (6, "Delete"),
                (7, "Attach Policy"),
                (8, "Detach Policy"),
                (9, "Lock"),
                (10, "MFA Factor Enable"),
                (11, "MFA Factor Disable"),
                (12, "Unlock"),
            ],
            Class::Authentication => &[
                (1, "Logon"),
                (2, "Logoff"),
                (3, "Authentication Ticket"),
                (4, "Service Ticket Request"),
                (5, "Service Ticket Renew"),
                (6, "Preauth"),
                (7, "Account Switch"),
            ],
            Class::EntityManagement => &[
                (1, "Create"),
                (2, "Read"),
                (3, "Update"),
                (4, "Delete"),
                (5, "Move"),
                (6, "Enroll"),
                (7, "Unenroll"),
                (8, "Enable"),
                (9, "Disable"),
                (10, "Activate"),
                (11, "Deactivate"),
                (12, "Suspend"),
                (13, "Resume"),
            ],
            Class::UserAccess => &[(1, "Assign Privileges"), (2, "Revoke Privileges")],
            Class::GroupManagement => &[
                (1, "Assign Privileges"),
                (2, "Revoke Privileges"),
                (3, "Add User"),
                (4, "Remove User"),
                (5, "Delete"),
                (6, "Create"),
                (7, "Add Subgroup"),
                (8, "Remove Subgroup"),
            ],
            Class::ApiActivity => &[(1, "Create"), (2, "Read"), (3, "Update"), (4, "Delete")],
            Class::UserInventory | Class::CloudResourcesInventory => &[(1, "Log"), (2, "Collect")],
            Class::ComplianceFinding => &[(1, "Create"), (2, "Update"), (3, "Close")],
        };
        match activity_id {
            0 => Some("Unknown"),
            OTHER => Some("Other"),
            id => lookup(table, id),
        }
    }
}

/// The "Other" member every OCSF enum has; its string sibling carries the source's value.
pub const OTHER: u32 = 99;

fn lookup(table: &[(u32, &'static str)], id: u32) -> Option<&'static str> {
    table.iter().find(|(k, _)| *k == id).map(|(_, v)| *v)
}

/// `severity_id` captions (base event).
pub fn severity_caption(id: u32) -> Option<&'static str> {
    lookup(
        &[
            (0, "Unknown"),
            (1, "Informational"),
            (2, "Low"),
            (3, "Medium"),
            (4, "High"),
            (5, "Critical"),
            (6, "Fatal"),
            (OTHER, "Other"),
        ],
        id,
    )
}

/// `status_id` captions (base event; not findings).
pub fn status_caption(id: u32) -> Option<&'static str> {
    lookup(
        &[
            (0, "Unknown"),
            (1, "Success"),
            (2, "Failure"),
            (OTHER, "Other"),
        ],
        id,
    )
}

/// Authentication `logon_type_id` captions.
pub fn logon_type_caption(id: u32) -> Option<&'static str> {
    lookup(
        &[
            (0, "Unknown"),
            (1, "System"),
            (2, "Interactive"),
            (3, "Network"),
            (4, "Batch"),
            (5, "OS Service"),
            (7, "Unlock"),
            (8, "Network Cleartext"),
            (9, "New Credentials"),
            (10, "Remote Interactive"),
            (11, "Cached Interactive"),
            (12, "Cached Remote Interactive"),
            (13, "Cached Unlock"),
            (OTHER, "Other"),
        ],
        id,
    )
}

/// Authentication `auth_protocol_id` captions.
pub fn auth_protocol_caption(id: u32) -> Option<&'static str> {
    lookup(
        &[
            (0, "Unknown"),
            (1, "NTLM"),
            (2, "Kerberos"),
            (3, "Digest"),
            (4, "OpenID"),
            (5, "SAML"),
            (6, "OAUTH 2.0"),
            (7, "PAP"),
            (8, "CHAP"),
            (9, "EAP"),
            (10, "RADIUS"),
            (11, "Basic Authentication"),
            (12, "LDAP"),
            (OTHER, "Other"),
        ],
        id,
    )
}

/// `risk_level_id` captions (security_control profile, and `user.risk_level_id`).
pub fn risk_level_caption(id: u32) -> Option<&'static str> {
    lookup(
        &[
            (0, "Info"),
            (1, "Low"),
            (2, "Medium"),
            (3, "High"),
            (4, "Critical"),
            (OTHER, "Other"),
        ],
        id,
    )
}

/// `user.type_id` captions.
pub fn user_type_caption(id: u32) -> Option<&'static str> {
    lookup(
        &[
            (0, "Unknown"),
            (1, "User"),
            (2, "Admin"),
            (3, "System"),
            (4, "Service"),
            (OTHER, "Other"),
        ],
        id,
    )
}

/// `auth_factor.factor_type_id` captions.
pub fn factor_type_caption(id: u32) -> Option<&'static str> {
    lookup(
        &[
            (0, "Unknown"),
            (1, "SMS"),
            (2, "Security Question"),
            (3, "Phone Call"),
            (4, "Biometric"),
            (5, "Push Notification"),
            (6, "Hardware Token"),
            (7, "OTP"),
            (8, "Email"),
            (9, "U2F"),
            (10, "WebAuthn"),
            (11, "Password"),
            (OTHER, "Other"),
        ],
        id,
    )
}

/// `os.type_id` captions for the values the normalizer emits.
pub fn os_type_caption(id: u32) -> Option<&'static str> {
    lookup(
        &[
            (0, "Unknown"),
            (100, "Windows"),
            (200, "Linux"),
            (201, "Android"),
            (300, "macOS"),
            (301, "iOS"),
            (302, "iPadOS"),
            (OTHER, "Other"),
        ],
        id,
    )
}

/// `managed_entity.type_id` captions.
pub fn entity_type_caption(id: u32) -> Option<&'static str> {
    lookup(
        &[
            (0, "Unknown"),
            (1, "Device"),
            (2, "User"),
            (3, "Group"),
            (4, "Organization"),
            (5, "Policy"),
            (6, "Email"),
            (7, "Network Zone"),
            (OTHER, "Other"),
        ],
        id,
    )
}

/// `observable.type_id` values the normalizer emits.
pub mod observable {
    /// 2 IP Address.
    pub const IP: (u32, &str) = (2, "IP Address");
    /// 4 User Name.
    pub const USER_NAME: (u32, &str) = (4, "User Name");
    /// 5 Email Address.
    pub const EMAIL: (u32, &str) = (5, "Email Address");
    /// 16 HTTP User-Agent.
    pub const USER_AGENT: (u32, &str) = (16, "HTTP User-Agent");
    /// 32 Group Object: name.
    pub const GROUP_NAME: (u32, &str) = (32, "Group Object: name");
}

/// `account.type_id` 6 Azure AD Account.
pub const ACCOUNT_AZURE_AD: (u32, &str) = (6, "Azure AD Account");
/// `account.type_id` 17 M365 Tenant (`cloud.account`).
pub const ACCOUNT_M365_TENANT: (u32, &str) = (17, "M365 Tenant");
/// `fingerprint.algorithm_id` 3 SHA-256.
pub const HASH_SHA256: (u32, &str) = (3, "SHA-256");
