//! The HTTP transport every Microsoft call goes through, and the loopback-only endpoint
//! override that lets tests and `make run` reach the simulator.
//!
//! Callers always build real Microsoft URLs (`https://graph.microsoft.us/...`). When an
//! override is configured, the transport sends the request to the override address instead,
//! over plain HTTP, with the original host in the `Host` header, so the simulator can play
//! every Microsoft host on one port. The override is accepted only for loopback addresses
//! (127.0.0.0/8, ::1, `localhost`), so production configuration can never be redirected to
//! another machine. Only Microsoft hosts known to [`Cloud`] are redirected; any other host is
//! refused by the transport.

use std::net::IpAddr;
use std::time::Duration;

use reqwest::header::{HOST, HeaderMap, HeaderValue};
use url::Url;

use crate::cloud::Cloud;

/// A refused or malformed endpoint override.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum OverrideError {
    /// Not a URL at all.
    #[error("endpoint override {0:?} is not a valid URL")]
    Invalid(String),
    /// Not `http://` to a loopback address.
    #[error(
        "endpoint override {0:?} refused: only http:// to a loopback address (127.0.0.0/8, ::1, localhost) is allowed"
    )]
    NotLoopback(String),
}

/// Where requests for Microsoft hosts are really sent (tests and local runs only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointOverride {
    base: Url,
}

impl EndpointOverride {
    /// Parses and validates an override such as `http://127.0.0.1:8400`.
    pub fn parse(s: &str) -> Result<Self, OverrideError> {
        let base = Url::parse(s.trim()).map_err(|_| OverrideError::Invalid(s.to_string()))?;
        if base.scheme() != "http" || !is_loopback_host(&base) {
            return Err(OverrideError::NotLoopback(s.to_string()));
        }
        Ok(Self { base })
    }

    /// The override base URL.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// The URL to actually send a request for `url` to.
    pub fn redirect(&self, url: &Url) -> Url {
        let mut out = self.base.clone();
        out.set_path(url.path());
        out.set_query(url.query());
        out
    }
}

fn is_loopback_host(u: &Url) -> bool {
    match u.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// A transport-level failure (no HTTP response, or an unusable target).
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The URL's host is not a Microsoft host of any cloud; nothing was sent.
    #[error("refused to contact {host:?}: not a Microsoft host of any national cloud")]
    ForeignHost {
        /// The refused host.
        host: String,
    },
    /// The URL is not https or has no host; nothing was sent.
    #[error("refused to send to a non-https or host-less URL")]
    BadUrl,
    /// The request timed out.
    #[error("request to {host} timed out")]
    Timeout {
        /// Host of the request.
        host: String,
    },
    /// Connection or protocol failure.
    #[error("request to {host} failed: {kind}")]
    Connect {
        /// Host of the request.
        host: String,
        /// Short description, never containing the URL's query or any header.
        kind: String,
    },
}

/// A response with its body fully read.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// Raw body bytes.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The HTTP client shared by the token client and the Graph client.
#[derive(Debug, Clone)]
pub struct Transport {
    client: reqwest::Client,
    endpoint_override: Option<EndpointOverride>,
}

/// Installs the process-wide rustls crypto provider (ring). Idempotent.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Transport {
    /// A transport with the given per-request timeout and optional loopback override.
    pub fn new(
        request_timeout: Duration,
        endpoint_override: Option<EndpointOverride>,
    ) -> Result<Self, TransportError> {
        install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(request_timeout)
            .connect_timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("itdr-ingest/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| TransportError::Connect {
                host: String::new(),
                kind: short_kind(&e),
            })?;
        Ok(Self {
            client,
            endpoint_override,
        })
    }

    /// Whether requests are redirected to a local simulator.
    pub fn endpoint_override(&self) -> Option<&EndpointOverride> {
        self.endpoint_override.as_ref()
    }

    /// Sends a request. `url` must be an `https` URL on a Microsoft host of some cloud; the
    /// caller is responsible for checking that it is the *tenant's* cloud.
    pub async fn send(
        &self,
        method: reqwest::Method,
        url: &Url,
        headers: HeaderMap,
        form: Option<&[(&str, &str)]>,
    ) -> Result<HttpResponse, TransportError> {
        if url.scheme() != "https" {
            return Err(TransportError::BadUrl);
        }
        let host = url
            .host_str()
            .ok_or(TransportError::BadUrl)?
            .to_ascii_lowercase();
        if !Cloud::all_hosts().iter().any(|h| *h == host) {
            return Err(TransportError::ForeignHost { host });
        }
        let (target, host_header) = match &self.endpoint_override {
            Some(o) => (o.redirect(url), Some(host.clone())),
            None => (url.clone(), None),
        };
        let mut req = self.client.request(method, target).headers(headers);
        if let Some(h) = host_header {
            let v = HeaderValue::from_str(&h).map_err(|_| TransportError::BadUrl)?;
            req = req.header(HOST, v);
        }
        if let Some(form) = form {
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form.iter())
                .finish();
            req = req
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(body);
        }
        let resp = req.send().await.map_err(|e| classify(&host, &e))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp
            .bytes()
            .await
            .map_err(|e| classify(&host, &e))?
            .to_vec();
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }
}

fn classify(host: &str, e: &reqwest::Error) -> TransportError {
    if e.is_timeout() {
        TransportError::Timeout {
            host: host.to_string(),
        }
    } else {
        TransportError::Connect {
            host: host.to_string(),
            kind: short_kind(e),
        }
    }
}

/// A description of a reqwest error without its URL (which may carry tokens in a query).
fn short_kind(e: &reqwest::Error) -> String {
    let what = if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "reading the body failed"
    } else if e.is_request() {
        "sending the request failed"
    } else if e.is_builder() {
        "building the client failed"
    } else {
        "transport error"
    };
    what.to_string()
}

/// Converts serde_json's 1-based line and column into a byte offset into `body`, so decode
/// errors can say where a body broke without quoting it.
pub fn json_error_offset(body: &[u8], line: usize, column: usize) -> usize {
    let mut line_start = 0usize;
    if line > 1 {
        let mut current = 1usize;
        for (i, b) in body.iter().enumerate() {
            if *b == b'\n' {
                current += 1;
                if current == line {
                    line_start = i + 1;
                    break;
                }
            }
        }
    }
    line_start
        .saturating_add(column.saturating_sub(1))
        .min(body.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_offsets() {
        assert_eq!(json_error_offset(b"ab\ncd\nef", 3, 2), 7);
        assert_eq!(json_error_offset(b"abc", 1, 1), 0);
        assert_eq!(json_error_offset(b"abc", 9, 9), 3);
    }

    #[test]
    fn override_only_for_loopback_http() {
        assert!(EndpointOverride::parse("http://127.0.0.1:8400").is_ok());
        assert!(EndpointOverride::parse("http://127.9.9.9:1").is_ok());
        assert!(EndpointOverride::parse("http://[::1]:8400").is_ok());
        assert!(EndpointOverride::parse("http://localhost:8400").is_ok());
        for bad in [
            "http://10.0.0.1:80",
            "http://192.168.1.10",
            "https://127.0.0.1:8400",
            "http://example.com",
            "http://127.0.0.1.nip.io",
            "not a url",
        ] {
            assert!(EndpointOverride::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn redirect_keeps_path_and_query() {
        let o = EndpointOverride::parse("http://127.0.0.1:9000").ok();
        let u =
            Url::parse("https://graph.microsoft.us/beta/auditLogs/signIns?$top=5&$skiptoken=abc")
                .ok();
        let r = o.zip(u).map(|(o, u)| o.redirect(&u).to_string());
        assert_eq!(
            r.as_deref(),
            Some("http://127.0.0.1:9000/beta/auditLogs/signIns?$top=5&$skiptoken=abc")
        );
    }

    #[tokio::test]
    async fn foreign_and_plain_http_hosts_are_never_contacted() {
        let t = Transport::new(Duration::from_secs(1), None);
        let Ok(t) = t else { panic!("transport") };
        for u in [
            "https://evil.example.com/v1.0/x",
            "http://graph.microsoft.com/v1.0/x",
        ] {
            let url = Url::parse(u).ok();
            let Some(url) = url else { panic!("url") };
            let r = t
                .send(reqwest::Method::GET, &url, HeaderMap::new(), None)
                .await;
            assert!(
                matches!(
                    r,
                    Err(TransportError::ForeignHost { .. }) | Err(TransportError::BadUrl)
                ),
                "{u}: {r:?}"
            );
        }
    }
}
