//! The unauthenticated OpenID configuration document of a tenant, which clients use to find
//! a tenant's national cloud before authenticating.
//!
//! The worldwide login host answers for tenants of every cloud except China (with the
//! tenant's own cloud in `issuer`, `token_endpoint` and the region fields); the US Government
//! and China login hosts answer only for their own tenants. Unknown tenants get a 400 with
//! AADSTS90002.

use serde_json::json;

use crate::auth::aad_error_reply;
use crate::server::{Reply, SimState};
use itdr_shared::Cloud;

pub(crate) fn configuration(st: &SimState, host: &str, segment: &str) -> (Reply, Option<String>) {
    let found = st.find_tenant(segment).filter(|i| {
        let cloud = st.events.tenants[*i].spec.cloud;
        if host == Cloud::Global.login_host() {
            cloud != Cloud::China
        } else {
            cloud.login_host() == host
        }
    });
    let Some(i) = found else {
        let r = aad_error_reply(
            host,
            st.now(),
            400,
            "invalid_tenant",
            90002,
            &format!(
                "Tenant '{segment}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
            ),
        );
        return (r, None);
    };
    let m = &st.events.tenants[i];
    let cloud = m.spec.cloud;
    let tid = &m.spec.tenant_id;
    let login = cloud.login_host();
    let region = match cloud {
        Cloud::Global => match m.home.country {
            "GB" | "DE" | "NL" | "FR" => "EU",
            "AU" => "OC",
            _ => "NA",
        },
        Cloud::Gcc => "NA",
        Cloud::GccHigh | Cloud::Dod => "USGov",
        Cloud::China => "AS",
    };
    let instance = match cloud {
        Cloud::Global | Cloud::Gcc => "microsoftonline.com",
        Cloud::GccHigh | Cloud::Dod => "microsoftonline.us",
        Cloud::China => "partner.microsoftonline.cn",
    };
    let mut doc = json!({
        "token_endpoint": format!("https://{login}/{tid}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("https://{login}/{tid}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": format!("https://{login}/{tid}/v2.0"),
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": format!("https://{}/oidc/userinfo", cloud.graph_host()),
        "authorization_endpoint": format!("https://{login}/{tid}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("https://{login}/{tid}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("https://{login}/{tid}/oauth2/v2.0/logout"),
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "tid", "ver", "oid"],
        "kerberos_endpoint": format!("https://{login}/{tid}/kerberos"),
        "tenant_region_scope": region,
        "cloud_instance_name": instance,
        "cloud_graph_host_name": if cloud == Cloud::China { "graph.chinacloudapi.cn" } else { "graph.windows.net" },
        "msgraph_host": cloud.graph_host(),
        "rbac_url": "https://pas.windows.net",
    });
    let sub = match cloud {
        Cloud::Gcc => Some("GCC"),
        Cloud::GccHigh => Some("DODCON"),
        Cloud::Dod => Some("DOD"),
        Cloud::Global | Cloud::China => None,
    };
    if let (Some(sub), Some(o)) = (sub, doc.as_object_mut()) {
        o.insert("tenant_region_sub_scope".into(), sub.into());
    }
    (Reply::json(200, &doc), Some(tid.clone()))
}
