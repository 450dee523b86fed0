//! Graph `signIn` (v1.0 and beta) → OCSF 3002 Authentication.

use serde_json::{Map, Value, json};

use super::common::{
    Envelope, Src, UserOut, clean_ip, finish, is_redacted_ip, observable, parse_time_ms,
};
use super::enums::{self, Class, OTHER, observable as obs};
use super::{NormalizeError, NormalizeOptions};
use crate::Stream;

/// Who signed in, from `signInEventTypes` (beta) or the presence of a service principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Subject {
    User,
    ServicePrincipal,
    ManagedIdentity,
}

fn event_types(src: &Src<'_>) -> Vec<String> {
    src.raw("signInEventTypes")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_ascii_lowercase)
                .collect()
        })
        .unwrap_or_default()
}

fn subject(src: &Src<'_>, types: &[String]) -> Subject {
    if types.iter().any(|t| t == "managedidentity") {
        Subject::ManagedIdentity
    } else if types.iter().any(|t| t == "serviceprincipal") {
        Subject::ServicePrincipal
    } else if types.iter().any(|t| t.contains("user")) {
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
fn logon_type(src: &Src<'_>, types: &[String], subject: Subject) -> Option<(u32, &'static str)> {
    match subject {
        Subject::ServicePrincipal => return Some((OTHER, "Service Principal")),
        Subject::ManagedIdentity => return Some((OTHER, "Managed Identity")),
        Subject::User => {}
    }
    if types.iter().any(|t| t == "interactiveuser") {
        return Some((2, "Interactive"));
    }
    if types.iter().any(|t| t == "noninteractiveuser") {
        return Some((OTHER, "Non-interactive"));
    }
    match src.bool("isInteractive")? {
        true => Some((2, "Interactive")),
        false => Some((OTHER, "Non-interactive")),
    }
}

/// `authenticationProtocol` (beta) → `auth_protocol_id` / `auth_protocol`. The raw value stays
/// in `unmapped`.
fn auth_protocol(src: &Src<'_>) -> (u32, String) {
    let raw = src.peek_str("authenticationProtocol");
    match raw.map(str::to_ascii_lowercase).as_deref() {
        Some("oauth2" | "ropc" | "devicecode") => (6, "OAUTH 2.0".into()),
        Some("saml20") => (5, "SAML".into()),
        Some("wsfederation") => (OTHER, "WS-Federation".into()),
        None | Some("none") => (0, "Unknown".into()),
        Some(_) => (OTHER, raw.unwrap_or("Other").to_string()),
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

fn is_password(method: &str) -> bool {
    matches!(factor_type(method), Some((11, _)))
}

struct Auth {
    factors: Vec<Value>,
    is_mfa: Option<bool>,
}

fn auth_details(src: &Src<'_>, succeeded: bool) -> Auth {
    let steps: Vec<&Map<String, Value>> = src
        .raw("authenticationDetails")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_object).collect())
        .unwrap_or_default();
    fn method(s: &Map<String, Value>) -> Option<&str> {
        s.get("authenticationMethod")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|m| !m.is_empty())
    }

    let mut factors: Vec<Value> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for step in &steps {
        let Some(m) = method(step) else { continue };
        let Some((id, totp)) = factor_type(m) else {
            continue;
        };
        if seen.iter().any(|s| s == m) {
            continue;
        }
        seen.push(m.to_string());
        let caption = if id == OTHER {
            Some(m)
        } else {
            enums::factor_type_caption(id)
        };
        factors.push(json!({
            "factor_type_id": id,
            "factor_type": caption,
            "provider": "Microsoft Entra ID",
            "is_totp": totp,
        }));
    }

    let requirement = src.peek_str("authenticationRequirement");
    let is_mfa = if !succeeded || (requirement.is_none() && steps.is_empty()) {
        None
    } else {
        let strong_step = steps.iter().any(|s| {
            s.get("succeeded").and_then(Value::as_bool) == Some(true)
                && method(s).is_some_and(|m| factor_type(m).is_some() && !is_password(m))
        });
        Some(
            requirement.is_some_and(|r| r.eq_ignore_ascii_case("multiFactorAuthentication"))
                || strong_step,
        )
    };
    Auth { factors, is_mfa }
}

fn os_type(os: &str) -> u32 {
    let o = os.to_ascii_lowercase().replace(' ', "");
    if o.starts_with("windows") {
        100
    } else if o.starts_with("ipados") {
        302
    } else if o.starts_with("ios") || o.starts_with("iphone") {
        301
    } else if o.starts_with("macos") || o.starts_with("osx") || o.starts_with("mac") {
        300
    } else if o.starts_with("android") {
        201
    } else if o.starts_with("linux") || o.starts_with("ubuntu") || o.starts_with("chromeos") {
        200
    } else {
        OTHER
    }
}

/// Device details, when the record identifies the device (OCSF `device` needs a uid, name,
/// hostname or address) and Microsoft did not remove them ("PII Removed"). Otherwise the
/// operating system and management flags stay under `unmapped`.
fn device(src: &Src<'_>) -> Option<Value> {
    let peek = |field: &str| {
        src.peek_str(&format!("deviceDetail.{field}"))
            .filter(|v| !v.to_ascii_lowercase().contains("pii removed"))
    };
    if peek("deviceId").is_none() && peek("displayName").is_none() {
        return None;
    }
    let text = |field: &str| peek(field).inspect(|_| src.mark(&format!("deviceDetail.{field}")));
    let os = text("operatingSystem").map(|n| {
        let id = os_type(n);
        let caption = if id == OTHER {
            n
        } else {
            enums::os_type_caption(id).unwrap_or(n)
        };
        json!({ "name": n, "type_id": id, "type": caption })
    });
    Some(json!({
        "type_id": 0,
        "type": "Unknown",
        "uid": text("deviceId"),
        "name": text("displayName"),
        "os": os,
        "is_managed": src.bool("deviceDetail.isManaged"),
        "is_compliant": src.bool("deviceDetail.isCompliant"),
    }))
}

/// `riskLevel*` → `risk_level_id`; `None` for hidden, unknown or absent levels.
fn risk_level(level: Option<&str>) -> Option<u32> {
    match level?.to_ascii_lowercase().as_str() {
        "none" => Some(0),
        "low" => Some(1),
        "medium" => Some(2),
        "high" => Some(3),
        _ => None,
    }
}

/// Maps one Graph `signIn` record (v1.0 or beta) to an OCSF 3002 Authentication event.
pub fn normalize_signin(record: &Value, opts: &NormalizeOptions) -> Result<Value, NormalizeError> {
    let src = Src::new(record)?;
    let id = src.str("id").ok_or(NormalizeError::MissingField("id"))?;
    let original_time = src
        .str("createdDateTime")
        .ok_or(NormalizeError::MissingField("createdDateTime"))?;
    let time_ms =
        parse_time_ms(original_time)
            .filter(|t| *t >= 0)
            .ok_or(NormalizeError::BadTimestamp {
                field: "createdDateTime",
            })?;

    let mut ev = Map::new();
    let types = event_types(&src);
    let subject = subject(&src, &types);

    // Outcome.
    let error_code = src.i64("status.errorCode");
    let status_id = match error_code {
        Some(0) => 1,
        Some(_) => 2,
        None => 0,
    };
    let detail: Vec<&str> = [
        src.str("status.failureReason"),
        src.str("status.additionalDetails"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let status_detail = (!detail.is_empty()).then(|| detail.join(" "));
    let succeeded = status_id == 1;

    // The subject that authenticated.
    let user = match subject {
        Subject::User => UserOut {
            uid: src.str("userId"),
            name: src.str("userPrincipalName"),
            full_name: src.str("userDisplayName"),
            type_id: 1,
            entra_account: true,
        },
        Subject::ServicePrincipal | Subject::ManagedIdentity => UserOut {
            uid: src.str("servicePrincipalId"),
            name: src
                .str("servicePrincipalName")
                .or_else(|| src.peek_str("appDisplayName")),
            full_name: None,
            type_id: 4,
            entra_account: false,
        },
    };
    let mut user_json = if user.is_empty() && user.full_name.is_none() {
        // The class requires a user; say honestly that it is unknown rather than fail.
        json!({ "name": "unknown", "type_id": 0, "type": "Unknown" })
    } else {
        user.to_json()
    };
    let user_risk = risk_level(src.peek_str("riskLevelAggregated"));
    if let (Some(level), Some(u)) = (user_risk, user_json.as_object_mut()) {
        src.mark("riskLevelAggregated");
        u.insert("risk_level_id".into(), json!(level));
        u.insert("risk_level".into(), json!(enums::risk_level_caption(level)));
    }
    ev.insert("user".into(), user_json);

    // The client application that requested the token.
    ev.insert(
        "actor".into(),
        json!({ "app_uid": src.str("appId"), "app_name": src.str("appDisplayName") }),
    );

    // The resource signed in to; the class needs a service or a dst_endpoint.
    let service_uid = src.str("resourceId");
    let service_name = src.str("resourceDisplayName");
    ev.insert(
        "service".into(),
        if service_uid.is_none() && service_name.is_none() {
            json!({ "name": "Microsoft Entra ID" })
        } else {
            json!({ "uid": service_uid, "name": service_name })
        },
    );

    // Where the sign-in came from.
    let raw_ip = src.peek_str("ipAddress");
    let ip = raw_ip.and_then(clean_ip);
    let redacted = raw_ip.filter(|r| ip.is_none() && is_redacted_ip(r));
    if ip.is_some() || redacted.is_some() {
        src.mark("ipAddress");
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
        let location = has_place.then(|| {
            json!({
                "city": src.str("location.city"),
                "region": src.str("location.state"),
                "country": country.map(str::to_ascii_uppercase),
                "lat": src.f64("location.geoCoordinates.latitude"),
                "long": src.f64("location.geoCoordinates.longitude"),
            })
        });
        ev.insert(
            "src_endpoint".into(),
            json!({
                "ip": ip.as_ref().map(|(ip, _)| ip),
                "port": ip.as_ref().and_then(|(_, port)| *port),
                // A partly redacted address is not an ip_t; keep it visible as the endpoint name.
                "name": redacted,
                "location": location,
                "autonomous_system": { "number": src.i64("autonomousSystemNumber") },
            }),
        );
    }

    // How.
    let auth = auth_details(&src, succeeded);
    ev.insert("auth_factors".into(), Value::Array(auth.factors));
    if let Some(mfa) = auth.is_mfa {
        ev.insert("is_mfa".into(), json!(mfa));
    }
    let (proto_id, proto) = auth_protocol(&src);
    ev.insert("auth_protocol_id".into(), json!(proto_id));
    ev.insert("auth_protocol".into(), json!(proto));
    if let Some((lt_id, lt)) = logon_type(&src, &types, subject) {
        ev.insert("logon_type_id".into(), json!(lt_id));
        ev.insert("logon_type".into(), json!(lt));
    }
    ev.insert("is_remote".into(), json!(true));
    let session_uid = src.str("sessionId");
    let token_uid = src.str("uniqueTokenIdentifier");
    if session_uid.is_some() || token_uid.is_some() {
        ev.insert(
            "session".into(),
            json!({ "uid": session_uid, "uid_alt": token_uid, "is_mfa": auth.is_mfa }),
        );
    }
    let user_agent = src.str("userAgent");
    ev.insert(
        "http_request".into(),
        json!({ "user_agent": user_agent, "uid": src.str("originalRequestId") }),
    );

    // Device (host profile).
    let device = device(&src);
    let host = device.is_some();
    if let Some(d) = device {
        ev.insert("device".into(), d);
    }

    // Risk (security_control profile), only with a visible level.
    let risk = risk_level(src.peek_str("riskLevelDuringSignIn"));
    let mut severity_id = 1;
    if let Some(level) = risk {
        src.mark("riskLevelDuringSignIn");
        ev.insert("risk_level_id".into(), json!(level));
        ev.insert("risk_level".into(), json!(enums::risk_level_caption(level)));
        let detail = src
            .peek_str("riskDetail")
            .filter(|d| !d.eq_ignore_ascii_case("hidden"));
        if let Some(d) = detail {
            src.mark("riskDetail");
            ev.insert("risk_details".into(), json!(d));
        }
        severity_id = match level {
            1 => 2,
            2 => 3,
            3 => 4,
            _ => 1,
        };
    }

    // Observables.
    let user_name = ev
        .get("user")
        .and_then(|u| u.get("name"))
        .and_then(Value::as_str)
        .filter(|n| *n != "unknown");
    let email = ev
        .get("user")
        .and_then(|u| u.get("email_addr"))
        .and_then(Value::as_str);
    let observables: Vec<Value> = [
        observable(
            obs::IP,
            "src_endpoint.ip",
            ip.as_ref().map(|(ip, _)| ip.as_str()),
        ),
        observable(obs::USER_NAME, "user.name", user_name),
        observable(obs::EMAIL, "user.email_addr", email),
        observable(obs::USER_AGENT, "http_request.user_agent", user_agent),
    ]
    .into_iter()
    .flatten()
    .collect();
    ev.insert("observables".into(), Value::Array(observables));

    let message = match (service_name, status_id) {
        (Some(r), 1) => Some(format!("Sign-in to {r} succeeded")),
        (Some(r), 2) => Some(format!("Sign-in to {r} failed")),
        (Some(r), _) => Some(format!("Sign-in to {r}")),
        (None, _) => None,
    };
    let envelope = Envelope {
        class: Class::Authentication,
        activity_id: 1,
        activity_other: None,
        severity_id,
        status_id,
        status_other: None,
        status_code: error_code.map(|c| c.to_string()),
        status_detail,
        message,
        time_ms,
        original_time,
        source_id: id,
        correlation_uid: src.str("correlationId"),
        event_code: error_code.map(|c| c.to_string()),
        stream: Stream::Signins,
        host,
        security_control: risk.is_some(),
    };
    Ok(finish(ev, envelope, &src, record, opts))
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
    }
}
