//! The identity platform: the v2.0 token endpoint (client secret and certificate assertion)
//! and the access tokens it issues.
//!
//! Access tokens are HS256 JWTs signed with a per-simulator key. Errors use the identity
//! platform's shape (`error`, `error_description` starting with `AADSTSnnnn:`, `error_codes`,
//! `timestamp`, `trace_id`, `correlation_id`, `error_uri`). Code choices:
//!
//! | situation | HTTP | `error` | code |
//! |---|---|---|---|
//! | tenant unknown on this login host (wrong cloud, bad id) | 400 | invalid_request | 90002 |
//! | missing `grant_type`, `client_id` or `scope` | 400 | invalid_request | 900144 |
//! | `grant_type` other than `client_credentials` | 400 | unsupported_grant_type | 70003 |
//! | app not in tenant / service principal removed | 400 | unauthorized_client | 700016 |
//! | no secret and no assertion | 401 | invalid_client | 7000218 |
//! | wrong secret | 401 | invalid_client | 7000215 |
//! | expired secret | 401 | invalid_client | 7000222 |
//! | assertion malformed, bad signature, unknown certificate or wrong `aud` | 401 | invalid_client | 700027 |
//! | assertion `iss`/`sub` not the client id | 401 | invalid_client | 700021 |
//! | assertion outside `nbf`..`exp` (simulated clock, no skew) | 401 | invalid_client | 700024 |
//! | scope is a host other than the tenant cloud's Graph or Management Activity host | 400 | invalid_resource | 500011 |
//! | scope not a `.default` scope | 400 | invalid_scope | 70011 |
//!
//! A token for the tenant's Graph host carries its Graph roles; one for its Management Activity
//! host (`https://manage.office.com/.default`, …) its Office 365 Management APIs roles.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use rand::Rng;
use ring::hmac;
use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::server::{Reply, SimState};
use itdr_shared::Cloud;

/// Claims of an issued access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct AccessClaims {
    pub aud: String,
    pub iss: String,
    pub tid: String,
    pub appid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    #[serde(default)]
    pub idtyp: String,
    #[serde(default)]
    pub ver: String,
}

/// Why a bearer token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenProblem {
    Malformed,
    Signature,
    Expired,
}

pub(crate) fn sign_token(key: &hmac::Key, claims: &AccessClaims) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
    let msg = format!("{header}.{body}");
    let sig = hmac::sign(key, msg.as_bytes());
    format!("{msg}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
}

/// Verifies signature and lifetime of a bearer token against the simulated clock.
pub(crate) fn verify_token(
    key: &hmac::Key,
    token: &str,
    now: DateTime<Utc>,
) -> Result<AccessClaims, TokenProblem> {
    let mut parts = token.split('.');
    let (Some(h), Some(b), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenProblem::Malformed);
    };
    let sig = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| TokenProblem::Malformed)?;
    hmac::verify(key, format!("{h}.{b}").as_bytes(), &sig).map_err(|_| TokenProblem::Signature)?;
    let body = URL_SAFE_NO_PAD
        .decode(b)
        .map_err(|_| TokenProblem::Malformed)?;
    let claims: AccessClaims =
        serde_json::from_slice(&body).map_err(|_| TokenProblem::Malformed)?;
    let now = now.timestamp();
    if now >= claims.exp || now < claims.nbf {
        return Err(TokenProblem::Expired);
    }
    Ok(claims)
}

/// Base64url SHA-256 of a certificate's DER.
pub fn cert_thumbprint_sha256(der: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(der))
}

struct AadError {
    status: u16,
    error: &'static str,
    code: u32,
    text: String,
}

fn err(status: u16, error: &'static str, code: u32, text: impl Into<String>) -> AadError {
    AadError {
        status,
        error,
        code,
        text: text.into(),
    }
}

/// An identity-platform error response.
pub(crate) fn aad_error_reply(
    login_host: &str,
    now: DateTime<Utc>,
    status: u16,
    error: &str,
    code: u32,
    text: &str,
) -> Reply {
    let trace = uuid::Uuid::new_v4().to_string();
    let corr = uuid::Uuid::new_v4().to_string();
    let ts = now.format("%Y-%m-%d %H:%M:%SZ").to_string();
    let body = json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {text}\r\nTrace ID: {trace}\r\nCorrelation ID: {corr}\r\nTimestamp: {ts}"),
        "error_codes": [code],
        "timestamp": ts,
        "trace_id": trace,
        "correlation_id": corr,
        "error_uri": format!("https://{login_host}/error?code={code}"),
    });
    Reply::json(status, &body)
}

/// Handles `POST /{tenant}/oauth2/v2.0/token` on a login host. Returns the reply and the
/// tenant id when the tenant was recognised.
pub(crate) fn token_endpoint(
    state: &SimState,
    login_host: &str,
    tenant_segment: &str,
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> (Reply, Option<String>) {
    let now = state.now();
    let idx = state.find_tenant(tenant_segment).filter(|i| {
        state.events.tenants[*i]
            .spec
            .cloud
            .login_host()
            .eq_ignore_ascii_case(login_host)
    });
    let Some(idx) = idx else {
        let e = err(
            400,
            "invalid_request",
            90002,
            format!(
                "Tenant '{tenant_segment}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant."
            ),
        );
        return (
            aad_error_reply(login_host, now, e.status, e.error, e.code, &e.text),
            None,
        );
    };
    let tenant_id = state.events.tenants[idx].spec.tenant_id.clone();
    let reply = match issue(state, idx, login_host, tenant_segment, headers, body, now) {
        Ok(r) => r,
        Err(e) => aad_error_reply(login_host, now, e.status, e.error, e.code, &e.text),
    };
    (reply, Some(tenant_id))
}

fn issue(
    state: &SimState,
    idx: usize,
    login_host: &str,
    tenant_segment: &str,
    headers: &axum::http::HeaderMap,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<Reply, AadError> {
    let form: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
    let get = |k: &str| {
        form.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let missing = |p: &str| {
        err(
            400,
            "invalid_request",
            900144,
            format!("The request body must contain the following parameter: '{p}'."),
        )
    };
    let grant = get("grant_type").ok_or_else(|| missing("grant_type"))?;
    if grant != "client_credentials" {
        return Err(err(
            400,
            "unsupported_grant_type",
            70003,
            format!("The app requested an unsupported grant type '{grant}'."),
        ));
    }
    // HTTP Basic authentication is accepted for the secret, like the real endpoint.
    let basic = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            s.split_once(':')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        });
    let client_id = get("client_id")
        .map(str::to_string)
        .or_else(|| basic.as_ref().map(|b| b.0.clone()))
        .ok_or_else(|| missing("client_id"))?;
    let scope = get("scope").ok_or_else(|| missing("scope"))?;
    let model = &state.events.tenants[idx];
    let spec = &model.spec;
    let ts = state.tenant(idx);
    if !client_id.eq_ignore_ascii_case(&spec.app_id) || ts.sp_removed {
        return Err(err(
            400,
            "unauthorized_client",
            700016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
                spec.domain
            ),
        ));
    }
    let secret = get("client_secret")
        .map(str::to_string)
        .or_else(|| basic.map(|b| b.1));
    if let Some(secret) = secret {
        if secret != spec.client_secret {
            return Err(err(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '".to_string() + &spec.app_id + "'.",
            ));
        }
        if ts.secret_expired {
            return Err(err(
                401,
                "invalid_client",
                7000222,
                format!(
                    "The provided client secret keys for app '{}' are expired. Visit the Azure portal to create new keys for your app, or consider using certificate credentials.",
                    spec.app_id
                ),
            ));
        }
    } else if let Some(assertion) = get("client_assertion") {
        if get("client_assertion_type")
            != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        {
            return Err(err(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'client_assertion_type'.",
            ));
        }
        let aud_ok = [
            spec.cloud.token_url(tenant_segment),
            spec.cloud.token_url(&spec.tenant_id),
        ];
        verify_assertion(
            spec.cert_der.as_deref(),
            spec.cert_sha256_thumbprint_b64url.as_deref(),
            &spec.app_id,
            &aud_ok,
            assertion,
            now,
        )?;
    } else {
        return Err(err(
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        ));
    }
    // Scope: exactly one resource, the tenant's own Graph host.
    let resource = scope.trim().strip_suffix("/.default").unwrap_or("");
    let host = resource
        .strip_prefix("https://")
        .unwrap_or("")
        .trim_end_matches('/');
    if host.is_empty() || scope.trim().contains(' ') {
        return Err(err(
            400,
            "invalid_scope",
            70011,
            format!(
                "The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."
            ),
        ));
    }
    let management = spec
        .cloud
        .management_host()
        .filter(|m| host.eq_ignore_ascii_case(m));
    if !host.eq_ignore_ascii_case(spec.cloud.graph_host()) && management.is_none() {
        return Err(err(
            400,
            "invalid_resource",
            500011,
            format!(
                "The resource principal named https://{host} was not found in the tenant named {}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.",
                spec.domain
            ),
        ));
    }
    let lifetime: i64 = state.token_rng().random_range(3600..=5399);
    let granted = if management.is_some() {
        &ts.management_roles
    } else {
        &ts.roles
    };
    let roles = if ts.consent_revoked || granted.is_empty() {
        None
    } else {
        Some(granted.clone())
    };
    let iat = now.timestamp();
    let claims = AccessClaims {
        aud: format!("https://{}", management.unwrap_or(spec.cloud.graph_host())),
        iss: issuer_v1(spec.cloud, &spec.tenant_id),
        tid: spec.tenant_id.clone(),
        appid: spec.app_id.clone(),
        roles,
        iat,
        nbf: iat,
        exp: iat + lifetime,
        idtyp: "app".into(),
        ver: "1.0".into(),
    };
    let token = sign_token(&state.token_key, &claims);
    state.count_token_issued(&token);
    let _ = login_host;
    Ok(Reply::json(
        200,
        &json!({"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": token}),
    ))
}

/// The v1 `iss` claim of app-only Graph tokens.
fn issuer_v1(cloud: Cloud, tid: &str) -> String {
    match cloud {
        Cloud::Global | Cloud::Gcc => format!("https://sts.windows.net/{tid}/"),
        Cloud::GccHigh | Cloud::Dod => format!("https://login.microsoftonline.us/{tid}/"),
        Cloud::China => format!("https://sts.chinacloudapi.cn/{tid}/"),
    }
}

#[derive(Deserialize)]
struct AssertionHeader {
    alg: String,
    #[serde(rename = "x5t#S256")]
    x5t_s256: Option<String>,
}

#[derive(Deserialize)]
struct AssertionClaims {
    aud: Value,
    iss: String,
    sub: String,
    exp: i64,
    nbf: Option<i64>,
}

fn verify_assertion(
    cert_der: Option<&[u8]>,
    thumbprint: Option<&str>,
    app_id: &str,
    aud_ok: &[String],
    jwt: &str,
    now: DateTime<Utc>,
) -> Result<(), AadError> {
    let bad = |why: &str| {
        err(
            401,
            "invalid_client",
            700027,
            format!("Client assertion failed signature validation. {why}"),
        )
    };
    let mut parts = jwt.split('.');
    let (Some(h), Some(b), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("The assertion is not a well-formed JWT."));
    };
    let header: AssertionHeader = URL_SAFE_NO_PAD
        .decode(h)
        .ok()
        .and_then(|v| serde_json::from_slice(&v).ok())
        .ok_or_else(|| bad("The assertion header is not valid."))?;
    let claims: AssertionClaims = URL_SAFE_NO_PAD
        .decode(b)
        .ok()
        .and_then(|v| serde_json::from_slice(&v).ok())
        .ok_or_else(|| bad("The assertion payload is not valid."))?;
    let sig = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| bad("The signature is not base64url."))?;
    let Some(der) = cert_der else {
        return Err(bad("No certificate is registered for the application."));
    };
    let expected = thumbprint
        .map(str::to_string)
        .unwrap_or_else(|| cert_thumbprint_sha256(der));
    if header.x5t_s256.as_deref() != Some(expected.as_str()) {
        return Err(bad(
            "The key identified by the assertion's x5t#S256 is not registered for the application.",
        ));
    }
    let alg: &dyn rustls_pki_types::SignatureVerificationAlgorithm = match header.alg.as_str() {
        "PS256" => webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
        "RS256" => webpki::ring::RSA_PKCS1_2048_8192_SHA256,
        _ => return Err(bad("Unsupported signing algorithm.")),
    };
    let cert_der = CertificateDer::from(der);
    let cert = webpki::EndEntityCert::try_from(&cert_der)
        .map_err(|_| bad("The registered certificate cannot be parsed."))?;
    cert.verify_signature(alg, format!("{h}.{b}").as_bytes(), &sig)
        .map_err(|_| bad("The signature does not match the registered certificate."))?;
    let aud_matches = match &claims.aud {
        Value::String(a) => aud_ok.iter().any(|x| x.eq_ignore_ascii_case(a)),
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .any(|a| aud_ok.iter().any(|x| x.eq_ignore_ascii_case(a))),
        _ => false,
    };
    if !aud_matches {
        return Err(bad("The audience claim is not this token endpoint."));
    }
    if !claims.iss.eq_ignore_ascii_case(app_id) || !claims.sub.eq_ignore_ascii_case(app_id) {
        return Err(err(
            401,
            "invalid_client",
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter.",
        ));
    }
    let now = now.timestamp();
    if claims.exp <= now || claims.nbf.is_some_and(|n| n > now) {
        return Err(err(
            401,
            "invalid_client",
            700024,
            "Client assertion is not within its valid time range.",
        ));
    }
    Ok(())
}
