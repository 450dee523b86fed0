//! App credentials: a client secret or a certificate with its RSA private key.
//!
//! A certificate credential is checked when loaded: the key must be RSA (PKCS#8, or PKCS#1
//! which is accepted too), at least 2048 bits, and must match the certificate's public key
//! (a test signature is verified against the certificate). Error messages are fixed strings:
//! PEM parsers can quote the offending line, which may be key material, so their messages are
//! never passed on.

use std::fmt;
use std::sync::Arc;

use ring::rand::SystemRandom;
use ring::signature::{RSA_PSS_SHA256, RsaKeyPair};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::cloud::CloudGroup;

use super::error::AuthError;
use super::secret::SecretString;

/// An app registration's client ID together with the credential that proves it.
#[derive(Debug, Clone)]
pub struct AppCredential {
    /// The application (client) ID.
    pub client_id: String,
    /// The secret or certificate.
    pub credential: ClientCredential,
    /// The cloud group the app registration lives in, when known: its credential is never
    /// sent to a login host of another group (sovereignty).
    pub group: Option<CloudGroup>,
}

impl AppCredential {
    /// An app that authenticates with a client secret.
    pub fn with_secret(client_id: impl Into<String>, secret: SecretString) -> Self {
        Self {
            client_id: client_id.into(),
            credential: ClientCredential::Secret(secret),
            group: None,
        }
    }

    /// An app that authenticates with a certificate.
    pub fn with_certificate(client_id: impl Into<String>, cert: CertificateCredential) -> Self {
        Self {
            client_id: client_id.into(),
            credential: ClientCredential::Certificate(cert),
            group: None,
        }
    }

    /// The same app, registered in `group`'s cloud.
    pub fn for_group(mut self, group: CloudGroup) -> Self {
        self.group = Some(group);
        self
    }
}

/// How the app proves its identity to the token endpoint.
#[derive(Debug, Clone)]
pub enum ClientCredential {
    /// A client secret (sent as `client_secret`).
    Secret(SecretString),
    /// A certificate: a signed JWT is sent as `client_assertion`.
    Certificate(CertificateCredential),
}

/// A certificate and its RSA private key, ready to sign client assertions.
#[derive(Clone)]
pub struct CertificateCredential {
    key: Arc<RsaKeyPair>,
    cert_der: Arc<Vec<u8>>,
    thumbprint_s256: String,
}

impl CertificateCredential {
    /// Loads a PEM certificate (the first `CERTIFICATE` block; a chain may follow) and its PEM
    /// RSA private key (`PRIVATE KEY`, PKCS#8, or `RSA PRIVATE KEY`, PKCS#1).
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, AuthError> {
        let cert =
            CertificateDer::from_pem_slice(cert_pem).map_err(|_| AuthError::BadCredential {
                reason: "no readable PEM CERTIFICATE block in the certificate input",
            })?;
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|_| AuthError::BadCredential {
            reason: "no readable PEM private key block in the key input",
        })?;
        let pair = match &key {
            PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
            _ => {
                return Err(AuthError::BadCredential {
                    reason: "the private key is not an RSA key (PKCS#8 or PKCS#1 RSA is required)",
                });
            }
        }
        .map_err(|_| AuthError::BadCredential {
            reason: "the private key is not a usable RSA key (RSA, 2048 to 4096 bits, PKCS#8 or PKCS#1)",
        })?;
        let credential = Self::from_parts(pair, cert.as_ref().to_vec());
        credential.check_key_matches_certificate()?;
        Ok(credential)
    }

    fn from_parts(key: RsaKeyPair, cert_der: Vec<u8>) -> Self {
        let digest = ring::digest::digest(&ring::digest::SHA256, &cert_der);
        let thumbprint_s256 = super::b64url(digest.as_ref());
        Self {
            key: Arc::new(key),
            cert_der: Arc::new(cert_der),
            thumbprint_s256,
        }
    }

    /// Signs a test message with the key and verifies it with the certificate's public key.
    fn check_key_matches_certificate(&self) -> Result<(), AuthError> {
        const PROBE: &[u8] = b"itdr certificate and key pairing check";
        let cert = CertificateDer::from(self.cert_der.as_slice());
        let ee = webpki::EndEntityCert::try_from(&cert).map_err(|_| AuthError::BadCredential {
            reason: "the certificate is not a valid X.509 v3 DER certificate",
        })?;
        let sig = self.sign_ps256(PROBE)?;
        ee.verify_signature(
            webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
            PROBE,
            &sig,
        )
        .map_err(|_| AuthError::BadCredential {
            reason: "the private key does not match the certificate's public key",
        })
    }

    /// Signs `msg` with RSASSA-PSS SHA-256 (JWS `PS256`).
    pub(crate) fn sign_ps256(&self, msg: &[u8]) -> Result<Vec<u8>, AuthError> {
        let mut sig = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(&RSA_PSS_SHA256, &SystemRandom::new(), msg, &mut sig)
            .map_err(|_| AuthError::BadCredential {
                reason: "signing with the private key failed",
            })?;
        Ok(sig)
    }

    /// Base64url (no padding) SHA-256 thumbprint of the certificate's DER encoding: the JWT
    /// `x5t#S256` header and what the Entra portal shows for the certificate.
    pub fn thumbprint_sha256(&self) -> &str {
        &self.thumbprint_s256
    }

    /// The certificate's DER encoding.
    pub fn certificate_der(&self) -> &[u8] {
        &self.cert_der
    }
}

impl fmt::Debug for CertificateCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateCredential")
            .field("x5t#S256", &self.thumbprint_s256)
            .field("key", &"***")
            .finish()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const CERT: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/auth/test-only-cert.pem"
    ));
    pub(crate) const KEY: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/auth/test-only-key.pem"
    ));
    const KEY_PKCS1: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/auth/test-only-key-pkcs1.pem"
    ));
    const OTHER_KEY: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/auth/test-only-other-key.pem"
    ));
    const EC_KEY: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/auth/test-only-ec-key.pem"
    ));

    pub(crate) fn test_cert() -> CertificateCredential {
        CertificateCredential::from_pem(CERT, KEY).expect("test-only fixture loads")
    }

    /// The base64 body of a PEM block, to check it never appears in messages.
    fn pem_body_fragment(pem: &[u8]) -> String {
        let text = String::from_utf8_lossy(pem);
        text.lines().nth(3).unwrap_or_default().to_string()
    }

    #[test]
    fn loads_pkcs8_and_pkcs1_keys_and_computes_the_thumbprint() {
        let c = test_cert();
        // Computed independently with: openssl x509 -outform DER | openssl dgst -sha256 -binary | base64url
        assert_eq!(
            c.thumbprint_sha256(),
            "n74xLWrNWnvSpd5hxM83KKjHbNNfPLNUtF1g1Ft57N8"
        );
        let c1 = CertificateCredential::from_pem(CERT, KEY_PKCS1).expect("pkcs1");
        assert_eq!(c1.thumbprint_sha256(), c.thumbprint_sha256());
    }

    #[test]
    fn bad_inputs_give_clear_errors_without_key_material() {
        let cases: Vec<(&[u8], &[u8], &str)> = vec![
            (CERT, OTHER_KEY, "does not match"),
            (CERT, EC_KEY, "not a usable RSA key"),
            (CERT, b"", "no readable PEM private key"),
            (b"", KEY, "no readable PEM CERTIFICATE"),
            (KEY, KEY, "no readable PEM CERTIFICATE"),
            (CERT, CERT, "no readable PEM private key"),
        ];
        let key_fragment = pem_body_fragment(KEY);
        let other_fragment = pem_body_fragment(OTHER_KEY);
        assert!(key_fragment.len() > 20);
        for (cert, key, expected) in cases {
            let e = CertificateCredential::from_pem(cert, key).expect_err("must fail");
            let shown = format!("{e} {e:?}");
            assert!(shown.contains(expected), "{shown}");
            assert!(!shown.contains(&key_fragment), "{shown}");
            assert!(!shown.contains(&other_fragment), "{shown}");
            assert_eq!(e.kind().as_str(), "bad_credential");
        }
        // A corrupted key block: the parser's message would quote the line; ours does not.
        let mut broken = String::from_utf8_lossy(KEY).to_string();
        broken = broken.replacen(
            "-----BEGIN PRIVATE KEY-----",
            "-----BEGIN PRIVATE KEY-----\n!!SECRETLINE!!",
            1,
        );
        let e = CertificateCredential::from_pem(CERT, broken.as_bytes()).expect_err("must fail");
        assert!(!format!("{e} {e:?}").contains("SECRETLINE"));
    }

    #[test]
    fn debug_shows_only_the_thumbprint() {
        let app = AppCredential::with_certificate("client-1", test_cert());
        let shown = format!("{app:?}");
        assert!(
            shown.contains("n74xLWrNWnvSpd5hxM83KKjHbNNfPLNUtF1g1Ft57N8"),
            "{shown}"
        );
        assert!(!shown.contains(&pem_body_fragment(KEY)));
        let app = AppCredential::with_secret("client-1", SecretString::new("s3cr3t-value~x"));
        let shown = format!("{app:?}");
        assert!(!shown.contains("s3cr3t-value"), "{shown}");
        assert!(shown.contains("client-1"));
    }
}
