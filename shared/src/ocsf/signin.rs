//! Graph `signIn` (v1.0 and beta) → OCSF 3002 Authentication.

use serde_json::Value;

use super::common::{
    Envelope, Src, UserOut, clean_ip, contains_ignore_case, finish, is_redacted_ip, observable,
};
use super::enums::{self, Class, OTHER, observable as obs};
use super::node::Node;
use super::out::Out;
use super::{Head, NormalizeError, NormalizeOptions};
use crate::Stream;

/// Who signed in, from `signInEventTypes` (beta) or the presence of a service principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Subject {
    User,
    ServicePrincipal,
    ManagedIdentity,
}

/// What `signInEventTypes` says (case-insensitive).
#[derive(Debug, Default, Clone, Copy)]
struct Types {
    managed_identity: bool,
    service_principal: bool,
    /// Some type mentions "user".
    user: bool,
    interactive_user: bool,
    noninteractive_user: bool,
}

fn event_types(src: &Src<'_>) -> Types {
    let mut t = Types::default();
    for s in src
        .raw("signInEventTypes")
        .and_then(Node::as_array)
        .unwrap_or_default()
        .iter()
        .filter_map(Node::as_str)
    {
        t.managed_identity |= s.eq_ignore_ascii_case("managedidentity");
        t.service_principal |= s.eq_ignore_ascii_case("serviceprincipal");
        t.user |= contains_ignore_case(s, "user");
        t.interactive_user |= s.eq_ignore_ascii_case("interactiveuser");
        t.noninteractive_user |= s.eq_ignore_ascii_case("noninteractiveuser");
    }
    t
}

fn subject(src: &Src<'_>, types: Types) -> Subject {
    if types.managed_identity {
        Subject::ManagedIdentity
    } else if types.service_principal {
        Subject::ServicePrincipal
    } else if types.user {
        Subject::User
    } else if src.peek_str("servicePrincipalId").is_some()
        && src.peek_str("userId").is_none()
        && src.peek_str("userPrincipalName").is_none()
    {
        if src.raw("managedServiceIdentity").is_some() {
            Subject::ManagedIdentity
        } else {
            Subject::ServicePrincipal
        }
    } else {
        Subject::User
    }
}

/// `logon_type_id` and, for 99, the `logon_type` label.
fn logon_type(src: &Src<'_>, types: Types, subject: Subject) -> Option<(u32, &'static str)> {
    match subject {
        Subject::ServicePrincipal => return Some((OTHER, "Service Principal")),
        Subject::ManagedIdentity => return Some((OTHER, "Managed Identity")),
        Subject::User => {}
    }
    if types.interactive_user {
        return Some((2, "Interactive"));
    }
    if types.noninteractive_user {
        return Some((OTHER, "Non-interactive"));
    }
    match src.bool("isInteractive")? {
        true => Some((2, "Interactive")),
        false => Some((OTHER, "Non-interactive")),
    }
}

/// `authenticationProtocol` (beta) → `auth_protocol_id` / `auth_protocol`. The raw value stays
/// in `unmapped`.
fn auth_protocol<'a>(src: &Src<'a>) -> (u32, &'a str) {
    let Some(raw) = src.peek_str("authenticationProtocol") else {
        return (0, "Unknown");
    };
    let is = |s: &str| raw.eq_ignore_ascii_case(s);
    if is("oauth2") || is("ropc") || is("devicecode") {
        (6, "OAUTH 2.0")
    } else if is("saml20") {
        (5, "SAML")
    } else if is("wsfederation") {
        (OTHER, "WS-Federation")
    } else if is("none") {
        (0, "Unknown")
    } else {
        (OTHER, raw)
    }
}

/// An `authenticationDetails[].authenticationMethod` → `factor_type_id` (and the label for 99).
/// `None` for steps that are not a factor ("Previously satisfied").
fn factor_type(method: &str) -> Option<(u32, Option<bool>)> {
    let m = method.to_ascii_lowercase();
    let id = if m.contains("previously satisfied") {
        return None;
    } else if m == "password" || m.contains("password hash") || m.contains("pass-through") {
        11
    } else if m.contains("oath") || m.contains("verification code") {
        return Some((7, Some(true)));
    } else if m.contains("fido2") || m.contains("passkey") || m.contains("security key") {
        10
    } else if m.contains("notification") || m.contains("passwordless phone") {
        5
    } else if m.contains("text message") || m.contains("sms") {
        1
    } else if m.contains("phone call") || m.contains("voice") {
        3
    } else if m.contains("email") {
        8
    } else if m.contains("windows hello") || m.contains("biometric") {
        4
    } else {
        OTHER
    };
    Some((id, None))
}

/// One `auth_factors[]` entry.
struct Factor<'a> {
    id: u32,
    caption: Option<&'a str>,
    totp: Option<bool>,
}

struct Auth<'a> {
    factors: Vec<Factor<'a>>,
    is_mfa: Option<bool>,
}

fn auth_details<'a>(src: &Src<'a>, succeeded: bool) -> Auth<'a> {
    let steps = src
        .raw("authenticationDetails")
        .and_then(Node::as_array)
        .unwrap_or_default()
        .iter()
        .filter_map(Node::as_object);
    fn method<'a>(s: &'a [super::node::Entry<'a>]) -> Option<&'a str> {
        s.iter()
            .find(|e| e.key == "authenticationMethod")
            .and_then(|e| e.val.as_str())
            .map(str::trim)
            .filter(|m| !m.is_empty())
    }

    let mut factors: Vec<Factor<'a>> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    let mut any_step = false;
    let mut strong_step = false;
    for step in steps {
        any_step = true;
        let Some(m) = method(step) else { continue };
        let Some((id, totp)) = factor_type(m) else {
            continue;
        };
        strong_step |= id != 11
            && step
                .iter()
                .find(|e| e.key == "succeeded")
                .and_then(|e| e.val.as_bool())
                == Some(true);
        if seen.contains(&m) {
            continue;
        }
        seen.push(m);
        let caption = if id == OTHER {
            Some(m)
        } else {
            enums::factor_type_caption(id)
        };
        factors.push(Factor { id, caption, totp });
    }

    let requirement = src.peek_str("authenticationRequirement");
    let is_mfa = if !succeeded || (requirement.is_none() && !any_step) {
        None
    } else {
        Some(
            requirement.is_some_and(|r| r.eq_ignore_ascii_case("multiFactorAuthentication"))
                || strong_step,
        )
    };
    Auth { factors, is_mfa }
}

fn os_type(os: &str) -> u32 {
    // The first letters, lowercase, without spaces.
    let mut folded = [0u8; 16];
    let mut n = 0;
    for b in os.bytes().filter(|b| *b != b' ').take(folded.len()) {
        folded[n] = b.to_ascii_lowercase();
        n += 1;
    }
    let o = &folded[..n];
    let any = |prefixes: &[&str]| prefixes.iter().any(|p| o.starts_with(p.as_bytes()));
    if any(&["windows"]) {
        100
    } else if any(&["ipados"]) {
        302
    } else if any(&["ios", "iphone"]) {
        301
    } else if any(&["macos", "osx", "mac"]) {
        300
    } else if any(&["android"]) {
        201
    } else if any(&["linux", "ubuntu", "chromeos"]) {
        200
    } else {
        OTHER
    }
}

/// Device details, when the record identifies the device (OCSF `device` needs a uid, name,
/// hostname or address) and Microsoft did not remove them ("PII Removed"). Otherwise the
/// operating system and management flags stay under `unmapped`. Returns whether it wrote one.
fn device<O: Out>(src: &Src<'_>, o: &mut O) -> bool {
    const ID: &str = "deviceDetail.deviceId";
    const NAME: &str = "deviceDetail.displayName";
    const OS: &str = "deviceDetail.operatingSystem";
    let peek = |path: &str| {
        src.peek_str(path)
            .filter(|v| !contains_ignore_case(v, "pii removed"))
    };
    if peek(ID).is_none() && peek(NAME).is_none() {
        return false;
    }
    let text = |path: &str| peek(path).inspect(|_| src.mark(path));
    o.begin_obj("device");
    o.u64("type_id", 0);
    o.str("type", "Unknown");
    o.opt_str("uid", text(ID));
    o.opt_str("name", text(NAME));
    if let Some(n) = text(OS) {
        let id = os_type(n);
        let caption = if id == OTHER {
            n
        } else {
            enums::os_type_caption(id).unwrap_or(n)
        };
        o.begin_obj("os");
        o.str("name", n);
        o.u64("type_id", u64::from(id));
        o.str("type", caption);
        o.end();
    }
    if let Some(b) = src.bool("deviceDetail.isManaged") {
        o.bool("is_managed", b);
    }
    if let Some(b) = src.bool("deviceDetail.isCompliant") {
        o.bool("is_compliant", b);
    }
    o.end();
    true
}

/// `riskLevel*` → `risk_level_id`; `None` for hidden, unknown or absent levels.
fn risk_level(level: Option<&str>) -> Option<u32> {
    let level = level?;
    ["none", "low", "medium", "high"]
        .iter()
        .position(|l| level.eq_ignore_ascii_case(l))
        .and_then(|i| u32::try_from(i).ok())
}

/// Maps one Graph `signIn` record (v1.0 or beta) to an OCSF 3002 Authentication event.
pub fn normalize_signin(record: &Value, opts: &NormalizeOptions) -> Result<Value, NormalizeError> {
    super::normalize(Stream::Signins, record, opts)
}

/// Writes the OCSF 3002 Authentication event of a Graph `signIn` record.
pub(crate) fn write_signin<O: Out>(
    src: &Src<'_>,
    head: Head<'_>,
    opts: &NormalizeOptions,
    o: &mut O,
) {
    let types = event_types(src);
    let subject = subject(src, types);

    // Outcome.
    let error_code = src.i64("status.errorCode");
    let status_id = match error_code {
        Some(0) => 1,
        Some(_) => 2,
        None => 0,
    };
    let failure = src.str("status.failureReason");
    let details = src.str("status.additionalDetails");
    let succeeded = status_id == 1;

    // The subject that authenticated.
    let user = match subject {
        Subject::User => UserOut::new(
            src.str("userId"),
            src.str("userPrincipalName"),
            src.str("userDisplayName"),
            1,
            true,
        ),
        Subject::ServicePrincipal | Subject::ManagedIdentity => UserOut::new(
            src.str("servicePrincipalId"),
            src.str("servicePrincipalName")
                .or_else(|| src.peek_str("appDisplayName")),
            None,
            4,
            false,
        ),
    };
    let mut user = if user.is_empty() && user.full_name.is_none() {
        // The class requires a user; say honestly that it is unknown rather than fail.
        UserOut::new(None, Some("unknown"), None, 0, false)
    } else {
        user
    };
    user.risk_level = risk_level(src.peek_str("riskLevelAggregated"));
    if user.risk_level.is_some() {
        src.mark("riskLevelAggregated");
    }
    user.write(o, "user");

    // The client application that requested the token.
    o.begin_obj("actor");
    o.opt_str("app_uid", src.str("appId"));
    o.opt_str("app_name", src.str("appDisplayName"));
    o.end();

    // The resource signed in to; the class needs a service or a dst_endpoint.
    let service_uid = src.str("resourceId");
    let service_name = src.str("resourceDisplayName");
    o.begin_obj("service");
    if service_uid.is_none() && service_name.is_none() {
        o.str("name", "Microsoft Entra ID");
    } else {
        o.opt_str("uid", service_uid);
        o.opt_str("name", service_name);
    }
    o.end();

    // Where the sign-in came from.
    let raw_ip = src.peek_str("ipAddress");
    let ip = raw_ip.and_then(clean_ip);
    let redacted = raw_ip.filter(|r| ip.is_none() && is_redacted_ip(r));
    if ip.is_some() || redacted.is_some() {
        src.mark("ipAddress");
        o.begin_obj("src_endpoint");
        if let Some((ip, port)) = &ip {
            o.str("ip", ip);
            if let Some(p) = port {
                o.u64("port", u64::from(*p));
            }
        }
        // A partly redacted address is not an ip_t; keep it visible as the endpoint name.
        o.opt_str("name", redacted);
        // network_endpoint needs an address or a name to hang the location on; without one, the
        // location and AS number stay under `unmapped`.
        let country = src
            .peek_str("location.countryOrRegion")
            .filter(|c| c.len() == 2 && c.chars().all(|ch| ch.is_ascii_alphabetic()));
        if country.is_some() {
            src.mark("location.countryOrRegion");
        }
        // location needs one of city, country, postal_code, region; without one, the
        // coordinates stay under `unmapped` too.
        let has_place = country.is_some()
            || src.peek_str("location.city").is_some()
            || src.peek_str("location.state").is_some();
        if has_place {
            o.begin_obj("location");
            o.opt_str("city", src.str("location.city"));
            o.opt_str("region", src.str("location.state"));
            if let Some(c) = country {
                o.str("country", &c.to_ascii_uppercase());
            }
            if let Some(lat) = src.f64("location.geoCoordinates.latitude") {
                o.f64("lat", lat);
            }
            if let Some(long) = src.f64("location.geoCoordinates.longitude") {
                o.f64("long", long);
            }
            o.end();
        }
        o.begin_obj("autonomous_system");
        if let Some(n) = src.i64("autonomousSystemNumber") {
            o.i64("number", n);
        }
        o.end();
        o.end();
    }

    // How.
    let auth = auth_details(src, succeeded);
    o.begin_arr("auth_factors");
    for f in &auth.factors {
        o.begin_obj("");
        o.u64("factor_type_id", u64::from(f.id));
        o.opt_str("factor_type", f.caption);
        o.str("provider", "Microsoft Entra ID");
        if let Some(t) = f.totp {
            o.bool("is_totp", t);
        }
        o.end();
    }
    o.end();
    if let Some(mfa) = auth.is_mfa {
        o.bool("is_mfa", mfa);
    }
    let (proto_id, proto) = auth_protocol(src);
    o.u64("auth_protocol_id", u64::from(proto_id));
    o.str("auth_protocol", proto);
    if let Some((lt_id, lt)) = logon_type(src, types, subject) {
        o.u64("logon_type_id", u64::from(lt_id));
        o.str("logon_type", lt);
    }
    o.bool("is_remote", true);
    let session_uid = src.str("sessionId");
    let token_uid = src.str("uniqueTokenIdentifier");
    if session_uid.is_some() || token_uid.is_some() {
        o.begin_obj("session");
        o.opt_str("uid", session_uid);
        o.opt_str("uid_alt", token_uid);
        if let Some(mfa) = auth.is_mfa {
            o.bool("is_mfa", mfa);
        }
        o.end();
    }
    let user_agent = src.str("userAgent");
    o.begin_obj("http_request");
    o.opt_str("user_agent", user_agent);
    o.opt_str("uid", src.str("originalRequestId"));
    o.end();

    // Device (host profile).
    let host = device(src, o);

    // Risk (security_control profile), only with a visible level.
    let risk = risk_level(src.peek_str("riskLevelDuringSignIn"));
    let mut severity_id = 1;
    if let Some(level) = risk {
        src.mark("riskLevelDuringSignIn");
        o.u64("risk_level_id", u64::from(level));
        o.opt_str("risk_level", enums::risk_level_caption(level));
        let detail = src
            .peek_str("riskDetail")
            .filter(|d| !d.eq_ignore_ascii_case("hidden"));
        if let Some(d) = detail {
            src.mark("riskDetail");
            o.str("risk_details", d);
        }
        severity_id = match level {
            1 => 2,
            2 => 3,
            3 => 4,
            _ => 1,
        };
    }

    // Observables.
    o.begin_arr("observables");
    observable(
        o,
        obs::IP,
        "src_endpoint.ip",
        ip.as_ref().map(|(ip, _)| ip.as_str()),
    );
    observable(
        o,
        obs::USER_NAME,
        "user.name",
        user.out_name().filter(|n| *n != "unknown"),
    );
    observable(o, obs::EMAIL, "user.email_addr", user.email_addr());
    observable(o, obs::USER_AGENT, "http_request.user_agent", user_agent);
    o.end();

    match (failure, details) {
        (Some(a), Some(b)) => o.str_parts("status_detail", &[a, " ", b]),
        (Some(a), None) | (None, Some(a)) => o.str("status_detail", a),
        (None, None) => {}
    }
    if let Some(r) = service_name {
        let outcome = match status_id {
            1 => " succeeded",
            2 => " failed",
            _ => "",
        };
        o.str_parts("message", &["Sign-in to ", r, outcome]);
    }
    let code = error_code.map(|c| c.to_string());
    let envelope = Envelope {
        class: Class::Authentication,
        activity_id: 1,
        activity_other: None,
        severity_id,
        status_id,
        status_other: None,
        status_code: code.as_deref(),
        status_detail: None,
        message: None,
        time_ms: head.time_ms,
        original_time: head.original_time,
        source_id: head.id,
        correlation_uid: src.str("correlationId"),
        event_code: code.as_deref(),
        stream: Stream::Signins,
        host,
        security_control: risk.is_some(),
    };
    finish(o, envelope, src, opts, None);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factor_types() {
        assert_eq!(factor_type("Password"), Some((11, None)));
        assert_eq!(factor_type("Mobile app notification"), Some((5, None)));
        assert_eq!(factor_type("Text message"), Some((1, None)));
        assert_eq!(factor_type("OATH verification code"), Some((7, Some(true))));
        assert_eq!(
            factor_type("Phone call approval (Authentication phone)"),
            Some((3, None))
        );
        assert_eq!(factor_type("FIDO2 security key"), Some((10, None)));
        assert_eq!(
            factor_type("Passkey (Microsoft Authenticator)"),
            Some((10, None))
        );
        assert_eq!(factor_type("Email OTP"), Some((8, None)));
        assert_eq!(factor_type("Windows Hello for Business"), Some((4, None)));
        assert_eq!(factor_type("Temporary Access Pass"), Some((OTHER, None)));
        assert_eq!(factor_type("Previously satisfied"), None);
    }

    #[test]
    fn os_types() {
        assert_eq!(os_type("Windows 10"), 100);
        assert_eq!(os_type("Windows10"), 100);
        assert_eq!(os_type("MacOs"), 300);
        assert_eq!(os_type("Ios"), 301);
        assert_eq!(os_type("Android"), 201);
        assert_eq!(os_type("Linux"), 200);
        assert_eq!(os_type("PlayStation"), OTHER);
        assert_eq!(os_type("  i Pad OS 17"), 302);
        assert_eq!(os_type("Mac OS X"), 300);
        assert_eq!(os_type("Chrome OS"), 200);
        assert_eq!(os_type(""), OTHER);
    }
}
