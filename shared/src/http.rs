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
//!
//! Bodies are read chunk by chunk up to a cap ([`DEFAULT_MAX_BODY_BYTES`] unless configured),
//! and a `Content-Length` above the cap is refused before anything is read, so one oversized
//! response cannot exhaust a small Lambda's memory. Each call may also be given the time left
//! until its deadline ([`Transport::send_within`]): the request then times out at
//! `min(configured timeout, time left)`.

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
    /// The response body is larger than the transport's cap (announced by `Content-Length` or
    /// found while reading). Permanent for this request: the same request would get the same
    /// body, so retrying only repeats the cost.
    #[error("response from {host} exceeds the {limit_bytes}-byte body limit")]
    BodyTooLarge {
        /// Host of the request.
        host: String,
        /// The configured cap, in bytes.
        limit_bytes: u64,
    },
}

impl TransportError {
    /// Whether the same request may succeed later: timeouts and connection failures are;
    /// refused targets and oversized bodies are not.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            TransportError::Timeout { .. } | TransportError::Connect { .. }
        )
    }
}

/// The default cap on a response body: 64 MiB. A Graph page of 1,000 sign-ins is a few MB,
/// a token response a few KB; the poller Lambda has 256 MB.
pub const DEFAULT_MAX_BODY_BYTES: u64 = 64 * 1024 * 1024;

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
    request_timeout: Duration,
    max_body_bytes: u64,
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
            request_timeout,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        })
    }

    /// Replaces the cap on response bodies ([`DEFAULT_MAX_BODY_BYTES`] by default).
    pub fn with_max_body_bytes(mut self, max_body_bytes: u64) -> Self {
        self.max_body_bytes = max_body_bytes;
        self
    }

    /// The cap on response bodies, in bytes.
    pub fn max_body_bytes(&self) -> u64 {
        self.max_body_bytes
    }

    /// The configured per-request timeout.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// Whether requests are redirected to a local simulator.
    pub fn endpoint_override(&self) -> Option<&EndpointOverride> {
        self.endpoint_override.as_ref()
    }

    /// Sends a request. `url` must be an `https` URL on a Microsoft host of some cloud; the
    /// caller is responsible for checking that it is the *tenant's* cloud. The request times
    /// out after the configured timeout; see [`Transport::send_within`] for a deadline.
    pub async fn send(
        &self,
        method: reqwest::Method,
        url: &Url,
        headers: HeaderMap,
        form: Option<&[(&str, &str)]>,
    ) -> Result<HttpResponse, TransportError> {
        self.send_within(method, url, headers, form, None).await
    }

    /// Like [`Transport::send`], with `time_left` until the caller's deadline: the whole
    /// request (connecting, sending, reading the body) times out after
    /// `min(configured timeout, time_left)`. With no time left nothing is sent and the result
    /// is [`TransportError::Timeout`].
    pub async fn send_within(
        &self,
        method: reqwest::Method,
        url: &Url,
        headers: HeaderMap,
        form: Option<&[(&str, &str)]>,
        time_left: Option<Duration>,
    ) -> Result<HttpResponse, TransportError> {
        let body = form.map(|form| {
            let text = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(form.iter())
                .finish();
            ("application/x-www-form-urlencoded", text.into_bytes())
        });
        self.send_body_within(method, url, headers, body, time_left)
            .await
    }

    /// Like [`Transport::send_within`], with a request body of the given content type (a JSON
    /// document for Graph's PATCH and POST calls).
    pub async fn send_body_within(
        &self,
        method: reqwest::Method,
        url: &Url,
        headers: HeaderMap,
        body: Option<(&'static str, Vec<u8>)>,
        time_left: Option<Duration>,
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
        let timeout = self.effective_timeout(time_left);
        if timeout.is_zero() {
            return Err(TransportError::Timeout { host });
        }
        let (target, host_header) = match &self.endpoint_override {
            Some(o) => (o.redirect(url), Some(host.clone())),
            None => (url.clone(), None),
        };
        let mut req = self
            .client
            .request(method, target)
            .headers(headers)
            .timeout(timeout);
        if let Some(h) = host_header {
            let v = HeaderValue::from_str(&h).map_err(|_| TransportError::BadUrl)?;
            req = req.header(HOST, v);
        }
        if let Some((content_type, body)) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(body);
        }
        let resp = req.send().await.map_err(|e| classify(&host, &e))?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = read_capped(resp, &host, self.max_body_bytes).await?;
        Ok(HttpResponse {
            status,
            headers,
            body,
        })
    }

    /// `min(configured timeout, time_left)`.
    pub fn effective_timeout(&self, time_left: Option<Duration>) -> Duration {
        time_left.map_or(self.request_timeout, |left| left.min(self.request_timeout))
    }
}

/// Reads `resp`'s body chunk by chunk, failing as soon as it would exceed `limit` bytes. A
/// `Content-Length` above the limit fails before anything is read. The buffer never grows past
/// the limit.
async fn read_capped(
    mut resp: reqwest::Response,
    host: &str,
    limit: u64,
) -> Result<Vec<u8>, TransportError> {
    let too_large = || TransportError::BodyTooLarge {
        host: host.to_string(),
        limit_bytes: limit,
    };
    let limit_usize = usize::try_from(limit).unwrap_or(usize::MAX);
    let announced = resp.content_length();
    if announced.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    // Trust the announced length for the first allocation only as far as the cap allows; a
    // body without one starts small and grows.
    let initial = announced
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0)
        .min(limit_usize)
        .min(INITIAL_BODY_CAPACITY_MAX);
    let mut body: Vec<u8> = Vec::with_capacity(initial);
    while let Some(chunk) = resp.chunk().await.map_err(|e| classify(host, &e))? {
        let needed = body
            .len()
            .checked_add(chunk.len())
            .filter(|n| *n <= limit_usize)
            .ok_or_else(too_large)?;
        if needed > body.capacity() {
            // Grow geometrically, but never beyond the cap.
            let target = needed
                .max(body.capacity().saturating_mul(2))
                .min(limit_usize);
            body.reserve_exact(target - body.len());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Largest buffer allocated up front from a `Content-Length` (8 MiB): a lying header cannot
/// make the transport reserve the whole cap before a byte arrives.
const INITIAL_BODY_CAPACITY_MAX: usize = 8 * 1024 * 1024;

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
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// How a test server frames its body.
    #[derive(Debug, Clone, Copy)]
    pub(crate) enum Framing {
        /// `Content-Length` with the true length, or with the given (lying) value.
        Length(Option<u64>),
        /// `Transfer-Encoding: chunked`, no length announced.
        Chunked,
    }

    /// One canned answer of [`serve`].
    #[derive(Debug, Clone)]
    pub(crate) struct Reply {
        pub status: u16,
        pub headers: Vec<(&'static str, String)>,
        /// The start of the body.
        pub body: Vec<u8>,
        /// Bytes of `x` streamed after `body`, in 64 KiB writes.
        pub filler: u64,
        pub framing: Framing,
        /// Wait before answering.
        pub delay: Duration,
    }

    impl Reply {
        pub(crate) fn json(status: u16, body: &str) -> Self {
            Self {
                status,
                headers: vec![("content-type", "application/json".into())],
                body: body.as_bytes().to_vec(),
                filler: 0,
                framing: Framing::Length(None),
                delay: Duration::ZERO,
            }
        }
    }

    /// What a test server saw and did.
    #[derive(Debug, Clone)]
    pub(crate) struct Served {
        /// `http://127.0.0.1:PORT`.
        pub base: String,
        /// Connections accepted.
        pub connections: Arc<AtomicUsize>,
        /// Body bytes written successfully, over all connections.
        pub written: Arc<AtomicU64>,
        /// Set when the last connection's handler has finished.
        pub done: Arc<AtomicBool>,
    }

    impl Served {
        pub(crate) fn endpoint(&self) -> EndpointOverride {
            EndpointOverride::parse(&self.base).unwrap()
        }

        /// Waits (up to 20 s) until the server has finished its last connection.
        pub(crate) async fn finished(&self) {
            for _ in 0..2000 {
                if self.done.load(Ordering::SeqCst) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            panic!("test server did not finish");
        }
    }

    /// A raw HTTP/1.1 server on 127.0.0.1 answering connection `n` with `reply(n)`, then
    /// closing it.
    pub(crate) async fn serve(reply: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Served {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let served = Served {
            base: format!("http://{}", listener.local_addr().unwrap()),
            connections: Arc::default(),
            written: Arc::default(),
            done: Arc::default(),
        };
        let out = served.clone();
        let reply = Arc::new(reply);
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let n = served.connections.fetch_add(1, Ordering::SeqCst);
                served.done.store(false, Ordering::SeqCst);
                let r = reply(n);
                let served = served.clone();
                tokio::spawn(async move {
                    // Read the request head (the tests send no bodies to this server).
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => break,
                            Ok(k) => buf.extend_from_slice(&chunk[..k]),
                        }
                    }
                    tokio::time::sleep(r.delay).await;
                    let total = r.body.len() as u64 + r.filler;
                    let mut head = format!("HTTP/1.1 {} X\r\nconnection: close\r\n", r.status);
                    for (k, v) in &r.headers {
                        head.push_str(&format!("{k}: {v}\r\n"));
                    }
                    match r.framing {
                        Framing::Length(announced) => head.push_str(&format!(
                            "content-length: {}\r\n",
                            announced.unwrap_or(total)
                        )),
                        Framing::Chunked => head.push_str("transfer-encoding: chunked\r\n"),
                    }
                    head.push_str("\r\n");
                    let chunked = matches!(r.framing, Framing::Chunked);
                    let frame = |data: &[u8]| -> Vec<u8> {
                        if chunked {
                            let mut f = format!("{:x}\r\n", data.len()).into_bytes();
                            f.extend_from_slice(data);
                            f.extend_from_slice(b"\r\n");
                            f
                        } else {
                            data.to_vec()
                        }
                    };
                    let ok = async {
                        sock.write_all(head.as_bytes()).await?;
                        if !r.body.is_empty() {
                            sock.write_all(&frame(&r.body)).await?;
                            served
                                .written
                                .fetch_add(r.body.len() as u64, Ordering::SeqCst);
                        }
                        let block = vec![b'x'; 64 * 1024];
                        let mut left = r.filler;
                        while left > 0 {
                            let k = left.min(block.len() as u64) as usize;
                            sock.write_all(&frame(&block[..k])).await?;
                            served.written.fetch_add(k as u64, Ordering::SeqCst);
                            left -= k as u64;
                        }
                        if chunked {
                            sock.write_all(b"0\r\n\r\n").await?;
                        }
                        sock.shutdown().await
                    }
                    .await;
                    let _ = ok;
                    served.done.store(true, Ordering::SeqCst);
                });
            }
        });
        out
    }

    const MIB: u64 = 1024 * 1024;

    fn graph_url() -> Url {
        Url::parse("https://graph.microsoft.com/v1.0/auditLogs/signIns").unwrap()
    }

    async fn get(t: &Transport) -> Result<HttpResponse, TransportError> {
        t.send(reqwest::Method::GET, &graph_url(), HeaderMap::new(), None)
            .await
    }

    fn filler(len: u64, framing: Framing) -> Reply {
        Reply {
            filler: len,
            framing,
            ..Reply::json(200, "")
        }
    }

    #[tokio::test]
    async fn bodies_up_to_the_cap_are_read_whole() {
        for framing in [Framing::Length(None), Framing::Chunked] {
            let server = serve(move |_| filler(MIB, framing)).await;
            let t = Transport::new(Duration::from_secs(20), Some(server.endpoint()))
                .unwrap()
                .with_max_body_bytes(MIB);
            let r = get(&t).await.unwrap();
            assert_eq!(r.status, 200);
            assert_eq!(r.body.len() as u64, MIB, "{framing:?}");
            assert!(r.body.iter().all(|b| *b == b'x'));
            assert!(
                r.body.capacity() as u64 <= MIB,
                "{framing:?}: buffer grew past the cap"
            );
        }
    }

    #[tokio::test]
    async fn a_streamed_body_over_the_cap_fails_typed_and_names_only_the_cap() {
        let server = serve(|_| Reply {
            body: b"{\"value\":[{\"userPrincipalName\":\"secret-user@contoso.com\"".to_vec(),
            ..filler(3 * MIB, Framing::Chunked)
        })
        .await;
        let t = Transport::new(Duration::from_secs(20), Some(server.endpoint()))
            .unwrap()
            .with_max_body_bytes(MIB);
        let err = get(&t).await.unwrap_err();
        assert!(
            matches!(&err, TransportError::BodyTooLarge { host, limit_bytes }
                if host == "graph.microsoft.com" && *limit_bytes == MIB),
            "{err:?}"
        );
        assert!(!err.is_retryable());
        let msg = err.to_string();
        assert!(msg.contains("1048576"), "{msg}");
        assert!(!msg.contains("contoso") && !msg.contains("xxxx"), "{msg}");
    }

    #[tokio::test]
    async fn an_announced_length_over_the_cap_is_refused_before_reading() {
        // 300 MB announced and offered; the client must not read it.
        let total = 300 * MIB;
        let server = serve(move |_| filler(total, Framing::Length(None))).await;
        let t = Transport::new(Duration::from_secs(60), Some(server.endpoint()))
            .unwrap()
            .with_max_body_bytes(MIB);
        let err = get(&t).await.unwrap_err();
        assert!(
            matches!(err, TransportError::BodyTooLarge { limit_bytes, .. } if limit_bytes == MIB),
            "{err:?}"
        );
        server.finished().await;
        let written = server.written.load(Ordering::SeqCst);
        // Only what the socket buffers took before the client hung up.
        assert!(written < 64 * MIB, "the server wrote {written} bytes");
        assert_eq!(DEFAULT_MAX_BODY_BYTES, 64 * MIB);
        let t = Transport::new(Duration::from_secs(1), None).unwrap();
        assert_eq!(t.max_body_bytes(), DEFAULT_MAX_BODY_BYTES);
    }

    #[tokio::test]
    async fn a_lying_content_length_does_not_let_the_body_past_the_cap() {
        // Announces 1 KiB, sends 3 MiB: hyper stops at the announced length.
        let server = serve(|_| filler(3 * MIB, Framing::Length(Some(1024)))).await;
        let t = Transport::new(Duration::from_secs(20), Some(server.endpoint()))
            .unwrap()
            .with_max_body_bytes(MIB);
        let r = get(&t).await.unwrap();
        assert_eq!(r.body.len(), 1024);
    }

    #[tokio::test]
    async fn a_call_times_out_at_the_time_left_when_that_is_shorter() {
        let server = serve(|_| Reply {
            delay: Duration::from_secs(3),
            ..Reply::json(200, "{}")
        })
        .await;
        let t = Transport::new(Duration::from_secs(30), Some(server.endpoint())).unwrap();
        assert_eq!(t.request_timeout(), Duration::from_secs(30));
        assert_eq!(
            t.effective_timeout(Some(Duration::from_millis(200))),
            Duration::from_millis(200)
        );
        assert_eq!(
            t.effective_timeout(Some(Duration::from_secs(600))),
            Duration::from_secs(30)
        );
        assert_eq!(t.effective_timeout(None), Duration::from_secs(30));
        let r = t
            .send_within(
                reqwest::Method::GET,
                &graph_url(),
                HeaderMap::new(),
                None,
                Some(Duration::from_millis(200)),
            )
            .await;
        assert!(
            matches!(r, Err(TransportError::Timeout { ref host }) if host == "graph.microsoft.com"),
            "{r:?}"
        );
        // The configured timeout alone would have waited for the answer.
        let r = t
            .send_within(
                reqwest::Method::GET,
                &graph_url(),
                HeaderMap::new(),
                None,
                Some(Duration::from_secs(20)),
            )
            .await
            .unwrap();
        assert_eq!(r.body, b"{}");
        assert_eq!(server.connections.load(Ordering::SeqCst), 2);
        // No time left: nothing is sent at all.
        let r = t
            .send_within(
                reqwest::Method::GET,
                &graph_url(),
                HeaderMap::new(),
                None,
                Some(Duration::ZERO),
            )
            .await;
        assert!(matches!(r, Err(TransportError::Timeout { .. })), "{r:?}");
        assert_eq!(server.connections.load(Ordering::SeqCst), 2);
    }

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
