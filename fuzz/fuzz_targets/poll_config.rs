//! The poll tunables as JSON (`PollConfig`, with `CursorConfig` inside: the Lambda's
//! `ITDR_POLL_CONFIG` and the CLI's `[poll]`), and the endpoint override string.
//!
//! Input: a JSON document (also tried as an endpoint override).
//!
//! Properties: never panics; a config that validates serializes and reads back to the same
//! config, which validates again; `validated` agrees with `validate`; an accepted endpoint
//! override is `http` on a loopback host.
#![no_main]

use itdr_shared::http::EndpointOverride;
use itdr_shared::poll::PollConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cfg) = serde_json::from_str::<PollConfig>(text) {
        let valid = cfg.validate().is_ok();
        assert_eq!(cfg.clone().validated().is_ok(), valid);
        if valid {
            let json = serde_json::to_string(&cfg).unwrap_or_else(|e| panic!("{e}"));
            let back: PollConfig = serde_json::from_str(&json)
                .unwrap_or_else(|e| panic!("a valid config does not read back: {e}\n{json}"));
            assert_eq!(back, cfg, "round trip\n{json}");
            assert!(back.validate().is_ok());
        }
    }
    if let Ok(o) = EndpointOverride::parse(text) {
        assert_eq!(o.base().scheme(), "http");
        let loopback = match o.base().host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            None => false,
        };
        assert!(loopback, "{:?} is not loopback", o.base().host_str());
    }
});
