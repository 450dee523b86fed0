//! Static catalogues the generator draws from: first-party applications, places, devices,
//! sign-in failure codes, risk detections and directory-audit activities.
//!
//! Application ids are the public ids of Microsoft first-party apps; IP ranges are mostly the
//! documentation ranges (RFC 5737, RFC 3849) plus a few plausible public-looking prefixes.

/// A first-party client application users sign in to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct App {
    pub name: &'static str,
    pub app_id: &'static str,
    pub resource: usize,
    /// Whether the app is used mostly by administrators.
    pub admin: bool,
    pub browser: bool,
    pub weight: u32,
}

/// A resource (API) a token is issued for.
pub(crate) const RESOURCES: [(&str, &str); 6] = [
    ("Microsoft Graph", "00000003-0000-0000-c000-000000000000"),
    (
        "Office 365 Exchange Online",
        "00000002-0000-0ff1-ce00-000000000000",
    ),
    (
        "Office 365 SharePoint Online",
        "00000003-0000-0ff1-ce00-000000000000",
    ),
    (
        "Microsoft Teams Services",
        "cc15fd57-2c6c-4117-a88c-83b1d56b4bbe",
    ),
    (
        "Windows Azure Service Management API",
        "797f4846-ba00-4fd7-ba43-dac1f8f63013",
    ),
    ("Azure Key Vault", "cfa8b339-82a2-471a-a3c9-0fc0be7a4093"),
];

/// Index of Exchange Online in [`RESOURCES`].
pub(crate) const RES_EXCHANGE: usize = 1;

pub(crate) const APPS: [App; 10] = [
    App {
        name: "Microsoft Teams",
        app_id: "1fec8e78-bce4-4aaf-ab1b-5451cc387264",
        resource: 3,
        admin: false,
        browser: false,
        weight: 22,
    },
    App {
        name: "Office 365 Exchange Online",
        app_id: "00000002-0000-0ff1-ce00-000000000000",
        resource: 1,
        admin: false,
        browser: true,
        weight: 14,
    },
    App {
        name: "Outlook Mobile",
        app_id: "27922004-5251-4030-b22d-91ecd9a37ea4",
        resource: 1,
        admin: false,
        browser: false,
        weight: 12,
    },
    App {
        name: "Microsoft Office",
        app_id: "d3590ed6-52b3-4102-aeff-aad2292ab01c",
        resource: 0,
        admin: false,
        browser: false,
        weight: 14,
    },
    App {
        name: "OfficeHome",
        app_id: "4765445b-32c6-49b0-83e6-1d93765276ca",
        resource: 0,
        admin: false,
        browser: true,
        weight: 10,
    },
    App {
        name: "Office 365 SharePoint Online",
        app_id: "00000003-0000-0ff1-ce00-000000000000",
        resource: 2,
        admin: false,
        browser: true,
        weight: 8,
    },
    App {
        name: "Azure Portal",
        app_id: "c44b4083-3bb0-49c1-b47d-974e53cbdf3c",
        resource: 4,
        admin: true,
        browser: true,
        weight: 4,
    },
    App {
        name: "Microsoft Graph PowerShell",
        app_id: "14d82eec-204b-4c2f-b7e8-296a70dab67e",
        resource: 0,
        admin: true,
        browser: false,
        weight: 2,
    },
    App {
        name: "Graph Explorer",
        app_id: "de8bc8b5-d9f9-48b1-a8ad-b748da725064",
        resource: 0,
        admin: true,
        browser: true,
        weight: 1,
    },
    App {
        name: "Microsoft Authentication Broker",
        app_id: "29d9ed98-a469-4536-ade2-f981bc1d605e",
        resource: 0,
        admin: false,
        browser: false,
        weight: 6,
    },
];

/// Legacy-authentication client names as they appear in `clientAppUsed`.
pub(crate) const LEGACY_CLIENTS: [&str; 5] = [
    "IMAP4",
    "POP3",
    "Authenticated SMTP",
    "Exchange ActiveSync",
    "Other clients",
];

/// A place a sign-in comes from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Place {
    pub country: &'static str,
    pub city: &'static str,
    pub state: &'static str,
    pub lat: f64,
    pub lon: f64,
}

const fn place(
    country: &'static str,
    city: &'static str,
    state: &'static str,
    lat: f64,
    lon: f64,
) -> Place {
    Place {
        country,
        city,
        state,
        lat,
        lon,
    }
}

pub(crate) const HOME_COMMERCIAL: [Place; 6] = [
    place("US", "Redmond", "Washington", 47.6740, -122.1215),
    place("US", "Chicago", "Illinois", 41.8781, -87.6298),
    place("GB", "London", "London", 51.5072, -0.1276),
    place("DE", "Berlin", "Berlin", 52.5200, 13.4050),
    place("NL", "Amsterdam", "Noord-Holland", 52.3676, 4.9041),
    place("AU", "Sydney", "New South Wales", -33.8688, 151.2093),
];

pub(crate) const HOME_USGOV: [Place; 4] = [
    place("US", "Arlington", "Virginia", 38.8816, -77.0910),
    place(
        "US",
        "Washington",
        "District of Columbia",
        38.9072,
        -77.0369,
    ),
    place("US", "Colorado Springs", "Colorado", 38.8339, -104.8214),
    place("US", "San Diego", "California", 32.7157, -117.1611),
];

pub(crate) const HOME_CHINA: [Place; 2] = [
    place("CN", "Beijing", "Beijing", 39.9042, 116.4074),
    place("CN", "Shanghai", "Shanghai", 31.2304, 121.4737),
];

/// Places of ordinary business travel.
pub(crate) const TRAVEL: [Place; 5] = [
    place("US", "New York", "New York", 40.7128, -74.0060),
    place("FR", "Paris", "Ile-de-France", 48.8566, 2.3522),
    place("JP", "Tokyo", "Tokyo", 35.6762, 139.6503),
    place("CA", "Toronto", "Ontario", 43.6532, -79.3832),
    place("SG", "Singapore", "Singapore", 1.3521, 103.8198),
];

/// Places attacks typically come from in the simulated data.
pub(crate) const FOREIGN: [Place; 6] = [
    place("RU", "Moscow", "Moscow", 55.7558, 37.6173),
    place("NG", "Lagos", "Lagos", 6.5244, 3.3792),
    place("BR", "Sao Paulo", "Sao Paulo", -23.5505, -46.6333),
    place("VN", "Hanoi", "Hanoi", 21.0278, 105.8342),
    place("RO", "Bucharest", "Bucharest", 44.4268, 26.1025),
    place("IN", "Mumbai", "Maharashtra", 19.0760, 72.8777),
];

/// First octets of plausible public office egress prefixes.
pub(crate) const OFFICE_FIRST_OCTETS: [u8; 8] = [20, 40, 52, 104, 131, 137, 145, 157];

/// (operatingSystem, browser, user agent) of interactive sign-ins.
pub(crate) const DEVICES: [(&str, &str, &str); 6] = [
    (
        "Windows10",
        "Edge 124.0.2478",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0",
    ),
    (
        "Windows10",
        "Chrome 124.0.6367",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    ),
    (
        "MacOs",
        "Safari 17.4",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    ),
    (
        "Ios",
        "Mobile Safari 17.4",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    ),
    (
        "Android",
        "Chrome Mobile 124.0.6367",
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
    ),
    (
        "Windows10",
        "Rich Client 16.0.17531",
        "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17531; Pro)",
    ),
];

/// Sign-in failures: (error code, failure reason, weight).
pub(crate) const FAILURES: [(u32, &str, u32); 8] = [
    (
        50126,
        "Error validating credentials due to invalid username or password.",
        40,
    ),
    (50074, "Strong Authentication is required.", 14),
    (
        50076,
        "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access the resource.",
        14,
    ),
    (
        53003,
        "Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.",
        8,
    ),
    (
        500121,
        "Authentication failed during strong authentication request.",
        8,
    ),
    (
        50053,
        "The account is locked because the user tried to sign in too many times with an incorrect user id or password.",
        6,
    ),
    (50055, "The password is expired.", 5),
    (50057, "The user account is disabled.", 5),
];

/// Risk detections (`riskEventTypes_v2` values).
pub(crate) const RISK_EVENTS: [&str; 6] = [
    "unfamiliarFeatures",
    "anonymizedIPAddress",
    "unlikelyTravel",
    "maliciousIPAddress",
    "suspiciousIPAddress",
    "leakedCredentials",
];

/// Second factors: (authenticationMethod, authenticationMethodDetail, userRegistrationDetails method).
pub(crate) const MFA_METHODS: [(&str, &str, &str); 4] = [
    ("Mobile app notification", "", "microsoftAuthenticatorPush"),
    ("Text message", "", "mobilePhone"),
    ("OATH verification code", "", "softwareOneTimePasscode"),
    ("FIDO2 security key", "", "fido2"),
];

/// What a directory-audit activity targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    User,
    Group,
    Role,
    ServicePrincipal,
    Application,
    Policy,
    Device,
    Directory,
}

/// A directory-audit activity.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Activity {
    pub category: &'static str,
    pub name: &'static str,
    pub operation: &'static str,
    pub service: &'static str,
    pub target: Target,
    pub weight: u32,
}

const fn act(
    category: &'static str,
    name: &'static str,
    operation: &'static str,
    service: &'static str,
    target: Target,
    weight: u32,
) -> Activity {
    Activity {
        category,
        name,
        operation,
        service,
        target,
        weight,
    }
}

pub(crate) const ACTIVITIES: [Activity; 21] = [
    act(
        "UserManagement",
        "Add user",
        "Add",
        "Core Directory",
        Target::User,
        5,
    ),
    act(
        "UserManagement",
        "Update user",
        "Update",
        "Core Directory",
        Target::User,
        20,
    ),
    act(
        "UserManagement",
        "Delete user",
        "Delete",
        "Core Directory",
        Target::User,
        2,
    ),
    act(
        "UserManagement",
        "Reset user password",
        "Reset",
        "Core Directory",
        Target::User,
        5,
    ),
    act(
        "UserManagement",
        "Change user password",
        "Update",
        "Core Directory",
        Target::User,
        5,
    ),
    act(
        "UserManagement",
        "Disable account",
        "Update",
        "Core Directory",
        Target::User,
        2,
    ),
    act(
        "UserManagement",
        "User registered security info",
        "Add",
        "Authentication Methods",
        Target::User,
        9,
    ),
    act(
        "GroupManagement",
        "Add member to group",
        "Assign",
        "Core Directory",
        Target::Group,
        14,
    ),
    act(
        "GroupManagement",
        "Remove member from group",
        "Unassign",
        "Core Directory",
        Target::Group,
        6,
    ),
    act(
        "GroupManagement",
        "Add group",
        "Add",
        "Core Directory",
        Target::Group,
        3,
    ),
    act(
        "GroupManagement",
        "Add owner to group",
        "Assign",
        "Core Directory",
        Target::Group,
        2,
    ),
    act(
        "RoleManagement",
        "Add member to role",
        "Assign",
        "Core Directory",
        Target::Role,
        2,
    ),
    act(
        "RoleManagement",
        "Remove member from role",
        "Unassign",
        "Core Directory",
        Target::Role,
        1,
    ),
    act(
        "ApplicationManagement",
        "Consent to application",
        "Assign",
        "Core Directory",
        Target::ServicePrincipal,
        2,
    ),
    act(
        "ApplicationManagement",
        "Add app role assignment to service principal",
        "Assign",
        "Core Directory",
        Target::ServicePrincipal,
        1,
    ),
    act(
        "ApplicationManagement",
        "Add service principal credentials",
        "Update",
        "Core Directory",
        Target::ServicePrincipal,
        1,
    ),
    act(
        "ApplicationManagement",
        "Update application \u{2013} Certificates and secrets management ",
        "Update",
        "Core Directory",
        Target::Application,
        2,
    ),
    act(
        "Policy",
        "Update conditional access policy",
        "Update",
        "Conditional Access",
        Target::Policy,
        1,
    ),
    act(
        "Policy",
        "Add policy",
        "Add",
        "Core Directory",
        Target::Policy,
        1,
    ),
    act(
        "Device",
        "Register device",
        "Add",
        "Device Registration Service",
        Target::Device,
        8,
    ),
    act(
        "DirectoryManagement",
        "Set domain authentication",
        "Set",
        "Core Directory",
        Target::Directory,
        1,
    ),
];

/// Directory roles: (display name, role template id).
pub(crate) const ROLES: [(&str, &str); 5] = [
    (
        "Global Administrator",
        "62e90394-69f5-4237-9190-012177145e10",
    ),
    (
        "Security Administrator",
        "194ae4cb-b126-40b2-bd5b-6091b380977d",
    ),
    ("User Administrator", "fe930be7-5e62-47db-91af-98c3a49a38b1"),
    (
        "Exchange Administrator",
        "29232cdf-9323-42fd-ade2-1d097af3e4de",
    ),
    (
        "Application Administrator",
        "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3",
    ),
];

pub(crate) const GROUPS: [&str; 6] = [
    "Finance",
    "All Staff",
    "Sales EMEA",
    "VPN Users",
    "Helpdesk",
    "Executives",
];

pub(crate) const FIRST_NAMES: [&str; 16] = [
    "Adele",
    "Alex",
    "Diego",
    "Grady",
    "Henrietta",
    "Isaiah",
    "Johanna",
    "Joni",
    "Lee",
    "Lidia",
    "Lynne",
    "Megan",
    "Miriam",
    "Nestor",
    "Patti",
    "Pradeep",
];

pub(crate) const LAST_NAMES: [&str; 16] = [
    "Vance",
    "Wilber",
    "Siciliani",
    "Archie",
    "Mueller",
    "Langer",
    "Lauer",
    "Sherman",
    "Gu",
    "Holloway",
    "Robbins",
    "Bowen",
    "Chen",
    "Wilke",
    "Fernandez",
    "Gupta",
];

pub(crate) const GUEST_DOMAINS: [&str; 4] = [
    "partner.example",
    "supplier.example.net",
    "outlook.com",
    "consulting.example.org",
];

/// Third-party service principals and managed identities seen in app-only sign-ins:
/// (display name, is managed identity, resource index).
pub(crate) const WORKLOADS: [(&str, bool, usize); 6] = [
    ("HR Sync Connector", false, 0),
    ("Backup Service", false, 1),
    ("Terraform CI", false, 4),
    ("func-ingest-prod", true, 5),
    ("vm-build-agent-01", true, 4),
    ("logic-onboarding", true, 0),
];
