//! The signed client assertion (a JWT) that authenticates a certificate credential.
//!
//! Follows Microsoft's current certificate-credential guidance: header `alg` `PS256`, `typ`
//! `JWT` and `x5t#S256` (the base64url SHA-256 thumbprint of the certificate); claims `aud`
//! (the tenant's v2.0 token endpoint on the tenant's cloud), `iss` and `sub` (the client ID),
//! a random `jti`, `nbf` and `iat` (now) and `exp` (now plus ten minutes). The result is a
//! bearer credential for its lifetime and is returned as a [`SecretString`].

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::credential::CertificateCredential;
use super::error::AuthError;
use super::secret::SecretString;

/// The `client_assertion_type` form value for a JWT bearer assertion.
pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long an assertion is valid after `nbf`.
pub const ASSERTION_LIFETIME: TimeDelta = TimeDelta::minutes(10);

#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    typ: &'static str,
    #[serde(rename = "x5t#S256")]
    x5t_s256: &'a str,
}

#[derive(Serialize)]
struct Claims<'a> {
    aud: &'a str,
    iss: &'a str,
    sub: &'a str,
    jti: String,
    nbf: i64,
    iat: i64,
    exp: i64,
}

/// Builds and signs a client assertion for `client_id`, addressed to `audience` (the token
/// endpoint URL the assertion will be posted to), valid from `now`.
pub fn client_assertion(
    cert: &CertificateCredential,
    client_id: &str,
    audience: &str,
    now: DateTime<Utc>,
) -> Result<SecretString, AuthError> {
    let header = Header {
        alg: "PS256",
        typ: "JWT",
        x5t_s256: cert.thumbprint_sha256(),
    };
    let iat = now.timestamp();
    let claims = Claims {
        aud: audience,
        iss: client_id,
        sub: client_id,
        jti: uuid::Uuid::new_v4().to_string(),
        nbf: iat,
        iat,
        exp: (now + ASSERTION_LIFETIME).timestamp(),
    };
    let header = serde_json::to_vec(&header).map_err(|_| AuthError::BadCredential {
        reason: "could not encode the assertion header",
    })?;
    let claims = serde_json::to_vec(&claims).map_err(|_| AuthError::BadCredential {
        reason: "could not encode the assertion claims",
    })?;
    let signing_input = format!("{}.{}", super::b64url(&header), super::b64url(&claims));
    let sig = cert.sign_ps256(signing_input.as_bytes())?;
    Ok(SecretString::new(format!(
        "{signing_input}.{}",
        super::b64url(&sig)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::credential::tests::test_cert;
    use crate::cloud::Cloud;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use chrono::TimeZone;
    use rustls_pki_types::CertificateDer;
    use serde_json::Value;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
            .single()
            .unwrap_or_default()
    }

    fn decode(segment: &str) -> Value {
        let bytes = URL_SAFE_NO_PAD.decode(segment).expect("base64url");
        serde_json::from_slice(&bytes).expect("json")
    }

    #[test]
    fn assertion_has_the_documented_header_and_claims_and_verifies() {
        let cert = test_cert();
        let aud = Cloud::GccHigh.token_url("contoso.onmicrosoft.us");
        let jwt = client_assertion(&cert, "11111111-2222-3333-4444-555555555555", &aud, t0())
            .expect("assertion");
        let parts: Vec<&str> = jwt.expose().split('.').collect();
        assert_eq!(parts.len(), 3);

        let header = decode(parts[0]);
        assert_eq!(header["alg"], "PS256");
        assert_eq!(header["typ"], "JWT");
        assert_eq!(header["x5t#S256"], cert.thumbprint_sha256());
        assert_eq!(header.as_object().map(|o| o.len()), Some(3));

        let claims = decode(parts[1]);
        assert_eq!(
            claims["aud"],
            "https://login.microsoftonline.us/contoso.onmicrosoft.us/oauth2/v2.0/token"
        );
        assert_eq!(claims["iss"], "11111111-2222-3333-4444-555555555555");
        assert_eq!(claims["sub"], "11111111-2222-3333-4444-555555555555");
        assert_eq!(claims["nbf"], t0().timestamp());
        assert_eq!(claims["iat"], t0().timestamp());
        assert_eq!(claims["exp"], t0().timestamp() + 600);
        let jti = claims["jti"].as_str().expect("jti");
        assert_eq!(
            uuid::Uuid::parse_str(jti).map(|u| u.get_version_num()).ok(),
            Some(4)
        );

        // Verify the PS256 signature with the certificate's public key.
        let der = CertificateDer::from(cert.certificate_der());
        let ee = webpki::EndEntityCert::try_from(&der).expect("cert parses");
        let sig = URL_SAFE_NO_PAD.decode(parts[2]).expect("sig");
        let signing_input = format!("{}.{}", parts[0], parts[1]);
        ee.verify_signature(
            webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
            signing_input.as_bytes(),
            &sig,
        )
        .expect("signature verifies with the certificate's key");
        // And a tampered payload does not.
        let tampered = format!("{}.{}x", parts[0], parts[1]);
        assert!(
            ee.verify_signature(
                webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
                tampered.as_bytes(),
                &sig,
            )
            .is_err()
        );
    }

    #[test]
    fn each_assertion_has_a_fresh_jti_and_is_redacted() {
        let cert = test_cert();
        let a = client_assertion(
            &cert,
            "c",
            "https://login.microsoftonline.com/t/oauth2/v2.0/token",
            t0(),
        )
        .expect("a");
        let b = client_assertion(
            &cert,
            "c",
            "https://login.microsoftonline.com/t/oauth2/v2.0/token",
            t0(),
        )
        .expect("b");
        let jti = |s: &SecretString| {
            decode(s.expose().split('.').nth(1).unwrap_or_default())["jti"].clone()
        };
        assert_ne!(jti(&a), jti(&b));
        assert_eq!(format!("{a:?} {a}"), "*** ***");
    }
}
