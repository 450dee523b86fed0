//! Finding a tenant's GUID and national cloud from a GUID or a verified domain, before any
//! credential is used.
//!
//! The tenant's OpenID configuration is public:
//! `GET https://login.microsoftonline.com/{tenant}/v2.0/.well-known/openid-configuration`.
//! The worldwide login host answers for tenants of the commercial and US Government clouds; its
//! `tenant_region_scope` / `tenant_region_sub_scope` fields tell GCC (`GCC`), GCC High (`DODCON`)
//! and DoD (`DOD`) apart ([`Cloud::from_openid_scopes`]), and `token_endpoint` carries the
//! tenant GUID. A tenant the worldwide host does not know (AADSTS90002) is looked up once more on
//! the China login host before it is called unknown.

use std::time::Duration;

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::cloud::Cloud;
use crate::http::{HttpResponse, Transport, TransportError};

/// How a tenant was named by the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantRef {
    /// A tenant GUID (lowercase).
    Guid(String),
    /// A verified domain (lowercase), e.g. `contoso.onmicrosoft.com`.
    Domain(String),
}

impl TenantRef {
    /// Parses a tenant GUID or a domain name; anything else is refused before a request is made.
    pub fn parse(s: &str) -> Result<Self, DiscoveryError> {
        let t = s.trim().to_ascii_lowercase();
        if is_guid(&t) {
            Ok(TenantRef::Guid(t))
        } else if is_domain(&t) {
            Ok(TenantRef::Domain(t))
        } else {
            Err(DiscoveryError::Malformed {
                input: printable(s),
            })
        }
    }

    /// The identifier as sent in URLs.
    pub fn as_str(&self) -> &str {
        match self {
            TenantRef::Guid(s) | TenantRef::Domain(s) => s,
        }
    }
}

/// Whether `s` is a GUID in the 8-4-4-4-12 form.
pub fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    parts.len() == 5
        && parts
            .iter()
            .zip(lens)
            .all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// Whether `s` looks like a DNS domain name (labels of letters, digits and hyphens, and an
/// alphabetic top-level label).
pub fn is_domain(s: &str) -> bool {
    let labels: Vec<&str> = s.split('.').collect();
    s.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.chars().all(|c| c.is_ascii_alphabetic()) && tld.len() >= 2)
}

fn printable(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(64)
        .collect()
}

/// What discovery found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discovery {
    /// The tenant GUID (lowercase).
    pub tenant_id: String,
    /// The domain the operator gave, if a domain was given.
    pub domain: Option<String>,
    /// The tenant's national cloud.
    pub cloud: Cloud,
    /// `tenant_region_scope` as published (e.g. `NA`, `EU`, `USGov`).
    pub region_scope: Option<String>,
    /// `tenant_region_sub_scope` as published (`GCC`, `DODCON`, `DOD`), if any.
    pub region_sub_scope: Option<String>,
    /// `cloud_instance_name` as published (e.g. `microsoftonline.us`).
    pub cloud_instance: Option<String>,
}

/// Why a tenant could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// Not a GUID or a domain name (nothing was sent).
    #[error(
        "{input:?} is not a tenant: give the tenant id (a GUID like 72f988bf-86f1-41af-91ab-2d7cd011db47) or a verified domain (like contoso.onmicrosoft.com)"
    )]
    Malformed {
        /// The refused input, reduced to printable ASCII.
        input: String,
    },
    /// No login host knows the tenant (AADSTS90002).
    #[error(
        "tenant {tenant} does not exist in any Microsoft cloud (AADSTS90002): check the spelling of the domain or GUID"
    )]
    Unknown {
        /// The identifier asked for.
        tenant: String,
    },
    /// The login host answered something that is not an OpenID configuration.
    #[error("the OpenID configuration of {tenant} from {host} is unusable: {reason}")]
    Unusable {
        /// The identifier asked for.
        tenant: String,
        /// The login host.
        host: String,
        /// What was wrong (never quotes the body).
        reason: String,
    },
    /// The login host failed or could not be reached; retrying later may work.
    #[error("could not reach {host} to look up the tenant: {detail}")]
    Unavailable {
        /// The login host.
        host: String,
        /// Status or transport failure.
        detail: String,
    },
}

#[derive(Deserialize)]
struct OpenIdConfiguration {
    token_endpoint: Option<String>,
    issuer: Option<String>,
    tenant_region_scope: Option<String>,
    tenant_region_sub_scope: Option<String>,
    cloud_instance_name: Option<String>,
}

#[derive(Deserialize)]
struct AadErrorBody {
    #[serde(default)]
    error_codes: Vec<u64>,
}

const ATTEMPTS: u32 = 3;

/// Resolves `tenant` (a GUID or verified domain) to its GUID and national cloud.
pub async fn discover(transport: &Transport, tenant: &str) -> Result<Discovery, DiscoveryError> {
    let r = TenantRef::parse(tenant)?;
    for cloud in [Cloud::Global, Cloud::China] {
        match fetch(transport, cloud, &r).await? {
            Some(found) => return Ok(found),
            None => continue,
        }
    }
    Err(DiscoveryError::Unknown {
        tenant: r.as_str().to_string(),
    })
}

/// One login host: `Ok(None)` when it does not know the tenant.
async fn fetch(
    transport: &Transport,
    cloud: Cloud,
    r: &TenantRef,
) -> Result<Option<Discovery>, DiscoveryError> {
    let host = cloud.login_host().to_string();
    let url = Url::parse(&cloud.openid_configuration_url(r.as_str())).map_err(|_| {
        DiscoveryError::Malformed {
            input: r.as_str().to_string(),
        }
    })?;
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
        }
        let resp: HttpResponse = match transport
            .send(Method::GET, &url, HeaderMap::new(), None)
            .await
        {
            Ok(resp) => resp,
            Err(e @ (TransportError::Timeout { .. } | TransportError::Connect { .. })) => {
                last = e.to_string();
                continue;
            }
            Err(e) => {
                return Err(DiscoveryError::Unavailable {
                    host,
                    detail: e.to_string(),
                });
            }
        };
        match resp.status {
            200 => return parse(r, &host, &resp.body).map(Some),
            400 | 404 => {
                let codes = serde_json::from_slice::<AadErrorBody>(&resp.body)
                    .map(|b| b.error_codes)
                    .unwrap_or_default();
                if codes.contains(&90002) || resp.status == 404 {
                    return Ok(None);
                }
                return Err(DiscoveryError::Unusable {
                    tenant: r.as_str().to_string(),
                    host,
                    reason: format!("HTTP {} with AADSTS codes {codes:?}", resp.status),
                });
            }
            429 | 500..=599 => {
                last = format!("HTTP {}", resp.status);
                continue;
            }
            s => {
                return Err(DiscoveryError::Unusable {
                    tenant: r.as_str().to_string(),
                    host,
                    reason: format!("unexpected HTTP {s}"),
                });
            }
        }
    }
    Err(DiscoveryError::Unavailable { host, detail: last })
}

fn parse(r: &TenantRef, host: &str, body: &[u8]) -> Result<Discovery, DiscoveryError> {
    let unusable = |reason: &str| DiscoveryError::Unusable {
        tenant: r.as_str().to_string(),
        host: host.to_string(),
        reason: reason.to_string(),
    };
    let doc: OpenIdConfiguration =
        serde_json::from_slice(body).map_err(|_| unusable("the body is not a JSON document"))?;
    // The tenant GUID is the first path segment of the token endpoint (and of the issuer).
    let tid = [doc.token_endpoint.as_deref(), doc.issuer.as_deref()]
        .into_iter()
        .flatten()
        .find_map(|u| {
            Url::parse(u).ok().and_then(|u| {
                u.path_segments()
                    .and_then(|mut s| s.next().map(str::to_ascii_lowercase))
                    .filter(|s| is_guid(s))
            })
        })
        .ok_or_else(|| unusable("no tenant GUID in token_endpoint or issuer"))?;
    if let TenantRef::Guid(g) = r
        && *g != tid
    {
        return Err(unusable("it names a different tenant GUID"));
    }
    let mut cloud = Cloud::from_openid_scopes(
        doc.tenant_region_scope.as_deref(),
        doc.tenant_region_sub_scope.as_deref(),
        doc.cloud_instance_name.as_deref(),
    );
    if Cloud::from_login_host(host).contains(&Cloud::China) {
        cloud = Cloud::China;
    }
    Ok(Discovery {
        tenant_id: tid,
        domain: match r {
            TenantRef::Domain(d) => Some(d.clone()),
            TenantRef::Guid(_) => None,
        },
        cloud,
        region_scope: doc.tenant_region_scope,
        region_sub_scope: doc.tenant_region_sub_scope,
        cloud_instance: doc.cloud_instance_name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_references_are_validated_before_any_request() {
        assert_eq!(
            TenantRef::parse(" 72F988BF-86F1-41AF-91AB-2D7CD011DB47 ").ok(),
            Some(TenantRef::Guid(
                "72f988bf-86f1-41af-91ab-2d7cd011db47".to_string()
            ))
        );
        assert_eq!(
            TenantRef::parse("Contoso.OnMicrosoft.com").ok(),
            Some(TenantRef::Domain("contoso.onmicrosoft.com".to_string()))
        );
        for bad in [
            "contoso",
            "72f988bf-86f1-41af-91ab-2d7cd011db4",
            "-bad.com",
            "a..b.com",
            "x.com/evil",
            "x.com?y=1",
            "",
            "common",
        ] {
            assert!(
                matches!(TenantRef::parse(bad), Err(DiscoveryError::Malformed { .. })),
                "{bad:?} must be refused"
            );
        }
    }

    fn doc(tid: &str, region: &str, sub: Option<&str>, instance: &str) -> Vec<u8> {
        let mut v = serde_json::json!({
            "token_endpoint": format!("https://login.microsoftonline.com/{tid}/oauth2/v2.0/token"),
            "issuer": format!("https://login.microsoftonline.com/{tid}/v2.0"),
            "tenant_region_scope": region,
            "cloud_instance_name": instance,
        });
        if let (Some(s), Some(o)) = (sub, v.as_object_mut()) {
            o.insert("tenant_region_sub_scope".into(), s.into());
        }
        serde_json::to_vec(&v).unwrap_or_default()
    }

    #[test]
    fn the_cloud_comes_from_the_region_scopes() {
        let tid = "11111111-2222-4333-8444-555555555555";
        let r = TenantRef::Domain("agency.onmicrosoft.us".into());
        let cases = [
            ("NA", None, "microsoftonline.com", Cloud::Global),
            ("EU", None, "microsoftonline.com", Cloud::Global),
            ("NA", Some("GCC"), "microsoftonline.com", Cloud::Gcc),
            (
                "USGov",
                Some("DODCON"),
                "microsoftonline.us",
                Cloud::GccHigh,
            ),
            ("USGov", Some("DOD"), "microsoftonline.us", Cloud::Dod),
        ];
        for (region, sub, instance, want) in cases {
            let d = parse(
                &r,
                "login.microsoftonline.com",
                &doc(tid, region, sub, instance),
            );
            let d = d.ok();
            assert_eq!(d.as_ref().map(|d| d.cloud), Some(want), "{region} {sub:?}");
            assert_eq!(d.map(|d| d.tenant_id), Some(tid.to_string()));
        }
    }

    #[test]
    fn a_document_for_another_tenant_or_without_a_guid_is_refused() {
        let r = TenantRef::Guid("aaaaaaaa-2222-4333-8444-555555555555".into());
        let other = doc(
            "11111111-2222-4333-8444-555555555555",
            "NA",
            None,
            "microsoftonline.com",
        );
        assert!(matches!(
            parse(&r, "login.microsoftonline.com", &other),
            Err(DiscoveryError::Unusable { .. })
        ));
        assert!(matches!(
            parse(&r, "login.microsoftonline.com", b"<html>"),
            Err(DiscoveryError::Unusable { .. })
        ));
        assert!(matches!(
            parse(
                &r,
                "login.microsoftonline.com",
                br#"{"issuer":"https://x/common/v2.0"}"#
            ),
            Err(DiscoveryError::Unusable { .. })
        ));
    }
}
