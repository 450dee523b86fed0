//! National clouds: the one place where Microsoft host names live.
//!
//! Every Microsoft endpoint the pipeline contacts is derived from a [`Cloud`] value. No other
//! module spells a Microsoft host. Sources: Microsoft Graph "national cloud deployments" and
//! the Office 365 Management Activity API reference (see `docs/clouds.md`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A Microsoft 365 national cloud (or the worldwide service).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Cloud {
    /// Worldwide commercial service.
    Global,
    /// US Government Community Cloud ("GCC moderate"): worldwide endpoints, own Management API host.
    Gcc,
    /// US Government L4 ("GCC High").
    GccHigh,
    /// US Government L5 (DoD).
    Dod,
    /// Microsoft 365 operated by 21Vianet.
    China,
}

/// Which poller serves a cloud. Sovereignty boundary: a US Government tenant's credentials
/// and data never travel through the commercial group, and the reverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloudGroup {
    /// Global, GCC and China: served by the commercial poller.
    Commercial,
    /// GCC High and DoD: served by the US Government poller.
    UsGov,
}

impl CloudGroup {
    /// Stable name used in config, queue names and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            CloudGroup::Commercial => "commercial",
            CloudGroup::UsGov => "usgov",
        }
    }

    /// The clouds this group serves.
    pub fn clouds(self) -> &'static [Cloud] {
        match self {
            CloudGroup::Commercial => &[Cloud::Global, Cloud::Gcc, Cloud::China],
            CloudGroup::UsGov => &[Cloud::GccHigh, Cloud::Dod],
        }
    }
}

impl fmt::Display for CloudGroup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CloudGroup {
    type Err = UnknownCloud;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "commercial" => Ok(CloudGroup::Commercial),
            "usgov" | "us_gov" | "us-gov" => Ok(CloudGroup::UsGov),
            _ => Err(UnknownCloud(s.to_string())),
        }
    }
}

/// A Microsoft API the pipeline calls. Its host, and the scope of the app-only tokens it
/// accepts, come from the tenant's [`Cloud`] (one resource per token request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    /// Microsoft Graph.
    Graph,
    /// The Office 365 Management Activity API.
    ManagementActivity,
}

impl Api {
    /// Stable name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Api::Graph => "graph",
            Api::ManagementActivity => "management_activity",
        }
    }

    /// The API's host in `cloud`, or `None` where the cloud does not offer it.
    pub fn host(self, cloud: Cloud) -> Option<&'static str> {
        match self {
            Api::Graph => Some(cloud.graph_host()),
            Api::ManagementActivity => cloud.management_host(),
        }
    }

    /// The `.default` scope of app-only tokens for this API in `cloud`, where it exists.
    pub fn scope(self, cloud: Cloud) -> Option<String> {
        match self {
            Api::Graph => Some(cloud.graph_scope()),
            Api::ManagementActivity => cloud.management_scope(),
        }
    }
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A cloud name that is not one of ours.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown cloud {0:?}: expected one of global, gcc, gcc_high, dod, china")]
pub struct UnknownCloud(pub String);

impl Cloud {
    /// Every cloud, in a stable order.
    pub const ALL: [Cloud; 5] = [
        Cloud::Global,
        Cloud::Gcc,
        Cloud::GccHigh,
        Cloud::Dod,
        Cloud::China,
    ];

    /// Stable name used in config, the registry and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Cloud::Global => "global",
            Cloud::Gcc => "gcc",
            Cloud::GccHigh => "gcc_high",
            Cloud::Dod => "dod",
            Cloud::China => "china",
        }
    }

    /// Human label for tables.
    pub fn label(self) -> &'static str {
        match self {
            Cloud::Global => "Commercial",
            Cloud::Gcc => "GCC",
            Cloud::GccHigh => "GCC High",
            Cloud::Dod => "DoD",
            Cloud::China => "China (21Vianet)",
        }
    }

    /// The poller group that serves this cloud.
    pub fn group(self) -> CloudGroup {
        match self {
            Cloud::Global | Cloud::Gcc | Cloud::China => CloudGroup::Commercial,
            Cloud::GccHigh | Cloud::Dod => CloudGroup::UsGov,
        }
    }

    /// Host of the Microsoft identity platform (token endpoint, OpenID configuration).
    pub fn login_host(self) -> &'static str {
        match self {
            Cloud::Global | Cloud::Gcc => "login.microsoftonline.com",
            Cloud::GccHigh | Cloud::Dod => "login.microsoftonline.us",
            Cloud::China => "login.chinacloudapi.cn",
        }
    }

    /// Host of Microsoft Graph.
    pub fn graph_host(self) -> &'static str {
        match self {
            Cloud::Global | Cloud::Gcc => "graph.microsoft.com",
            Cloud::GccHigh => "graph.microsoft.us",
            Cloud::Dod => "dod-graph.microsoft.us",
            Cloud::China => "microsoftgraph.chinacloudapi.cn",
        }
    }

    /// Host of the Office 365 Management Activity API. `None` where no host is documented
    /// (China); the GCC, GCC High and DoD hosts follow third-party consensus.
    pub fn management_host(self) -> Option<&'static str> {
        match self {
            Cloud::Global => Some("manage.office.com"),
            Cloud::Gcc => Some("manage-gcc.office.com"),
            Cloud::GccHigh => Some("manage.office365.us"),
            Cloud::Dod => Some("manage.protection.apps.mil"),
            Cloud::China => None,
        }
    }

    /// The admin consent link of the app registration `client_id` for `tenant` (GUID or
    /// verified domain): a Global Administrator of the tenant opens it to grant the app's
    /// application permissions (the identity platform's admin consent endpoint).
    pub fn admin_consent_url(self, tenant: &str, client_id: &str) -> String {
        format!(
            "https://{}/{}/adminconsent?client_id={}",
            self.login_host(),
            tenant.trim().to_ascii_lowercase(),
            client_id.trim()
        )
    }

    /// `https://{login host}`.
    pub fn login_base(self) -> String {
        format!("https://{}", self.login_host())
    }

    /// `https://{graph host}`.
    pub fn graph_base(self) -> String {
        format!("https://{}", self.graph_host())
    }

    /// The v2.0 token endpoint for a tenant (GUID or verified domain).
    pub fn token_url(self, tenant: &str) -> String {
        format!("https://{}/{}/oauth2/v2.0/token", self.login_host(), tenant)
    }

    /// The unauthenticated OpenID configuration document of a tenant on this cloud's login host.
    pub fn openid_configuration_url(self, tenant: &str) -> String {
        format!(
            "https://{}/{}/v2.0/.well-known/openid-configuration",
            self.login_host(),
            tenant
        )
    }

    /// The `.default` scope for app-only Graph tokens (one resource per token request).
    pub fn graph_scope(self) -> String {
        format!("https://{}/.default", self.graph_host())
    }

    /// The `.default` scope for the Management Activity API, where the cloud has one.
    pub fn management_scope(self) -> Option<String> {
        self.management_host()
            .map(|h| format!("https://{h}/.default"))
    }

    /// The Management Activity API resource (v1 `resource=` form), where the cloud has one.
    pub fn management_resource(self) -> Option<String> {
        self.management_host().map(|h| format!("https://{h}"))
    }

    /// Whether v1.0 `/auditLogs/signIns` is documented for this cloud. The US Government
    /// clouds document only beta; China has neither.
    pub fn signins_v1_available(self) -> bool {
        matches!(self, Cloud::Global | Cloud::Gcc)
    }

    /// Whether `/auditLogs` (sign-ins, directory audits) is served in this cloud at all.
    pub fn audit_logs_available(self) -> bool {
        !matches!(self, Cloud::China)
    }

    /// Every Microsoft host of this cloud that the pipeline may contact.
    pub fn hosts(self) -> Vec<&'static str> {
        let mut hosts = vec![self.login_host(), self.graph_host()];
        if let Some(m) = self.management_host() {
            hosts.push(m);
        }
        hosts
    }

    /// Whether `host` (case-insensitive, no port) is one of this cloud's Microsoft hosts.
    pub fn owns_host(self, host: &str) -> bool {
        self.hosts().iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    /// Every Microsoft host of every cloud (for the simulator's virtual hosts and the
    /// endpoint override's allow-list).
    pub fn all_hosts() -> Vec<&'static str> {
        let mut all: Vec<&'static str> = Cloud::ALL.iter().flat_map(|c| c.hosts()).collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// The cloud that serves `graph_host`, if any (GCC shares the Global host; Global wins).
    pub fn from_graph_host(host: &str) -> Option<Cloud> {
        Cloud::ALL
            .into_iter()
            .find(|c| c.graph_host().eq_ignore_ascii_case(host))
    }

    /// The clouds whose login host is `host` (the login host is shared within a group).
    pub fn from_login_host(host: &str) -> Vec<Cloud> {
        Cloud::ALL
            .into_iter()
            .filter(|c| c.login_host().eq_ignore_ascii_case(host))
            .collect()
    }

    /// Classifies a tenant from its OpenID configuration fields `tenant_region_scope` and
    /// `tenant_region_sub_scope` and the login instance it was discovered on. DoD is derived
    /// from the sub-scope `DOD`, GCC High from `DODCON`, GCC from `GCC`.
    pub fn from_openid_scopes(
        region_scope: Option<&str>,
        sub_scope: Option<&str>,
        cloud_instance_name: Option<&str>,
    ) -> Cloud {
        let sub = sub_scope.map(|s| s.trim().to_ascii_uppercase());
        let region = region_scope.map(|s| s.trim().to_ascii_uppercase());
        match sub.as_deref() {
            Some("DOD") => return Cloud::Dod,
            Some("DODCON") => return Cloud::GccHigh,
            Some("GCC") => return Cloud::Gcc,
            _ => {}
        }
        if matches!(region.as_deref(), Some("USGOV") | Some("USG")) {
            // US Government region without a recognised sub-scope: GCC High is the common case.
            return Cloud::GccHigh;
        }
        if let Some(instance) = cloud_instance_name {
            let instance = instance.to_ascii_lowercase();
            if instance.ends_with("microsoftonline.us") {
                return Cloud::GccHigh;
            }
            if instance.ends_with(".cn") {
                return Cloud::China;
            }
        }
        Cloud::Global
    }
}

impl fmt::Display for Cloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Cloud {
    type Err = UnknownCloud;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s
            .trim()
            .to_ascii_lowercase()
            .replace(['-', ' '], "_")
            .as_str()
        {
            "global" | "commercial" | "public" | "worldwide" => Ok(Cloud::Global),
            "gcc" | "gcc_moderate" | "gcc_low" => Ok(Cloud::Gcc),
            "gcc_high" | "gcchigh" | "usgov_l4" | "l4" => Ok(Cloud::GccHigh),
            "dod" | "usgov_l5" | "l5" => Ok(Cloud::Dod),
            "china" | "21vianet" => Ok(Cloud::China),
            _ => Err(UnknownCloud(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_per_cloud_match_the_national_cloud_table() {
        assert_eq!(Cloud::Global.login_host(), "login.microsoftonline.com");
        assert_eq!(Cloud::Gcc.graph_host(), "graph.microsoft.com");
        assert_eq!(Cloud::GccHigh.login_host(), "login.microsoftonline.us");
        assert_eq!(Cloud::GccHigh.graph_host(), "graph.microsoft.us");
        assert_eq!(Cloud::Dod.graph_host(), "dod-graph.microsoft.us");
        assert_eq!(Cloud::China.graph_host(), "microsoftgraph.chinacloudapi.cn");
        assert_eq!(
            Cloud::GccHigh.graph_scope(),
            "https://graph.microsoft.us/.default"
        );
        assert_eq!(
            Cloud::Dod.token_url("contoso.onmicrosoft.us"),
            "https://login.microsoftonline.us/contoso.onmicrosoft.us/oauth2/v2.0/token"
        );
        assert_eq!(Cloud::Gcc.management_host(), Some("manage-gcc.office.com"));
        assert_eq!(Cloud::China.management_scope(), None);
    }

    #[test]
    fn us_government_hosts_never_overlap_commercial_hosts() {
        for gov in CloudGroup::UsGov.clouds() {
            for com in CloudGroup::Commercial.clouds() {
                for h in gov.hosts() {
                    assert!(!com.owns_host(h), "{h} is shared by {gov} and {com}");
                }
            }
        }
    }

    #[test]
    fn groups_and_v1_signins() {
        assert_eq!(Cloud::Gcc.group(), CloudGroup::Commercial);
        assert_eq!(Cloud::Dod.group(), CloudGroup::UsGov);
        assert!(Cloud::Global.signins_v1_available());
        assert!(!Cloud::GccHigh.signins_v1_available());
        assert!(!Cloud::China.audit_logs_available());
    }

    #[test]
    fn openid_scopes_classify_tenants() {
        assert_eq!(
            Cloud::from_openid_scopes(Some("NA"), None, None),
            Cloud::Global
        );
        assert_eq!(
            Cloud::from_openid_scopes(Some("EU"), None, None),
            Cloud::Global
        );
        assert_eq!(
            Cloud::from_openid_scopes(Some("NA"), Some("GCC"), None),
            Cloud::Gcc
        );
        assert_eq!(
            Cloud::from_openid_scopes(Some("USGov"), Some("DODCON"), None),
            Cloud::GccHigh
        );
        assert_eq!(
            Cloud::from_openid_scopes(Some("USGov"), Some("DOD"), None),
            Cloud::Dod
        );
        assert_eq!(
            Cloud::from_openid_scopes(Some("USG"), None, None),
            Cloud::GccHigh
        );
        assert_eq!(
            Cloud::from_openid_scopes(None, None, Some("partner.microsoftonline.cn")),
            Cloud::China
        );
    }

    #[test]
    fn names_round_trip_and_bad_names_are_refused() {
        for c in Cloud::ALL {
            assert_eq!(c.as_str().parse::<Cloud>().ok(), Some(c));
        }
        assert_eq!("GCC-High".parse::<Cloud>().ok(), Some(Cloud::GccHigh));
        let err = "mars"
            .parse::<Cloud>()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("mars"));
        assert_eq!(
            Cloud::from_graph_host("GRAPH.microsoft.us"),
            Some(Cloud::GccHigh)
        );
        assert_eq!(Cloud::from_graph_host("evil.example"), None);
    }
}
