//! Microsoft Graph's write calls used by response actions, for every cloud's Graph host:
//!
//! - `GET /users/{id|upn}` and `PATCH /users/{id|upn}` (`accountEnabled`; 204);
//! - `POST /users/{id}/revokeSignInSessions` (200 `{"value": true}`);
//! - `GET`, `PATCH` (`isEnabled`; 200 with the rule) and `DELETE` (204) of
//!   `/users/{id}/mailFolders/inbox/messageRules/{rule}`;
//! - `GET /users/{id}/authentication/methods` and
//!   `DELETE /users/{id}/authentication/{kind}Methods/{method}` (204; the password method
//!   cannot be deleted: 400).
//!
//! Permissions are those of Microsoft's tables (403 `Authorization_RequestDenied`, or
//! `ErrorAccessDenied` for mailboxes, without them). The changes are reflected: a disabled
//! user's sign-ins after the change fail with 50057, the users inventory shows
//! `accountEnabled: false`, and a disabled rule shows `isEnabled: false` in the inbox rules
//! inventory (a deleted one is gone).

use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::{HeaderMap, Method};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::auth::verify_token;
use crate::config::stable_guid;
use crate::server::{Reply, SimState, lock};

/// The password method's fixed id (the same for every user, as in Graph).
pub(crate) const PASSWORD_METHOD_ID: &str = "28c10230-6103-485e-b985-444c60001490";

/// A user of a tenant: (tenant index, lowercase user id).
type UserKey = (usize, String);

/// Periods during which a user was disabled: (from, until).
type Periods = Vec<(DateTime<Utc>, Option<DateTime<Utc>>)>;

/// What response actions changed, per tenant index and lowercase user id.
#[derive(Debug, Default)]
pub(crate) struct RespondState {
    /// Periods during which a user was disabled through the API: (from, until).
    disabled: Mutex<HashMap<UserKey, Periods>>,
    /// `signInSessionsValidFromDateTime` after a revocation.
    revoked: Mutex<HashMap<UserKey, DateTime<Utc>>>,
    /// Registered authentication methods (built on first use).
    methods: Mutex<HashMap<UserKey, Vec<Value>>>,
}

impl RespondState {
    /// Whether `user` was disabled through the API at `at`.
    fn disabled_at(&self, idx: usize, user: &str, at: DateTime<Utc>) -> bool {
        lock(&self.disabled)
            .get(&(idx, user.to_ascii_lowercase()))
            .is_some_and(|p| p.iter().any(|(a, b)| *a <= at && b.is_none_or(|b| at < b)))
    }

    /// When sessions were last revoked.
    pub(crate) fn revoked_at(&self, idx: usize, user: &str) -> Option<DateTime<Utc>> {
        lock(&self.revoked)
            .get(&(idx, user.to_ascii_lowercase()))
            .copied()
    }

    /// The user's methods (types), for tests.
    pub(crate) fn method_types(&self, idx: usize, user: &str) -> Vec<String> {
        self.methods_of(idx, user)
            .iter()
            .filter_map(|m| m["@odata.type"].as_str())
            .map(|t| t.trim_start_matches("#microsoft.graph.").to_string())
            .collect()
    }

    fn methods_of(&self, idx: usize, user: &str) -> Vec<Value> {
        let key = (idx, user.to_ascii_lowercase());
        lock(&self.methods)
            .entry(key)
            .or_insert_with(|| default_methods(user))
            .clone()
    }
}

fn default_methods(user: &str) -> Vec<Value> {
    let n: u32 = user.bytes().map(u32::from).sum::<u32>() % 100;
    vec![
        json!({"@odata.type": "#microsoft.graph.passwordAuthenticationMethod", "id": PASSWORD_METHOD_ID, "password": null}),
        json!({"@odata.type": "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod",
            "id": stable_guid(&format!("authenticator/{user}")), "displayName": "iPhone 15", "deviceTag": "SoftwareTokenActivated", "phoneAppVersion": "6.8.7"}),
        json!({"@odata.type": "#microsoft.graph.phoneAuthenticationMethod",
            "id": "3179e48a-750b-4051-897c-87b9720928f7", "phoneNumber": format!("+1 5550100{n:02}"), "phoneType": "mobile", "smsSignInState": "notAllowedByPolicy"}),
    ]
}

/// A signed-in user's sign-in after the account was disabled through the API fails with
/// 50057, as Entra ID answers for a disabled account.
pub(crate) fn reflect_signin(st: &SimState, idx: usize, v: &mut Value) {
    let Some(user) = v
        .get("userId")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
    else {
        return;
    };
    let Some(at) = v
        .get("createdDateTime")
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
    else {
        return;
    };
    if st.respond.disabled_at(idx, user, at) {
        v["status"] = json!({
            "errorCode": 50057,
            "failureReason": "User account is disabled. The account has been disabled by an administrator.",
            "additionalDetails": "The account is disabled.",
        });
        if v.get("conditionalAccessStatus").is_some() {
            v["conditionalAccessStatus"] = json!("notApplied");
        }
    }
}

/// Whether a Graph request is one of the response calls (served here, not by `graph.rs`).
pub(crate) fn is_route(method: &Method, path: &str) -> bool {
    let segs = lower_segments(path);
    let rest: Vec<&str> = segs.iter().skip(1).map(String::as_str).collect();
    matches!(
        (method.as_str(), rest.as_slice()),
        ("GET" | "PATCH", ["users", _])
            | ("POST", ["users", _, "revokesigninsessions"])
            | (
                "GET" | "PATCH" | "DELETE",
                ["users", _, "mailfolders", "inbox", "messagerules", _]
            )
            | ("GET", ["users", _, "authentication", "methods"])
            | ("DELETE", ["users", _, "authentication", _, _])
    )
}

fn lower_segments(path: &str) -> Vec<String> {
    path.trim_start_matches('/')
        .split('/')
        .map(str::to_ascii_lowercase)
        .collect()
}

fn raw_segment(path: &str, i: usize) -> String {
    let s = path.trim_start_matches('/').split('/').nth(i).unwrap_or("");
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

fn error(status: u16, code: &str, message: &str) -> Reply {
    Reply::json(
        status,
        &json!({"error": {"code": code, "message": message}}),
    )
}

fn denied() -> Reply {
    error(
        403,
        "Authorization_RequestDenied",
        "Insufficient privileges to complete the operation.",
    )
}

fn no_content() -> Reply {
    Reply {
        status: 204,
        headers: Vec::new(),
        body: Vec::new(),
    }
}

/// Serves one response call.
pub(crate) fn handle(
    st: &SimState,
    host: &str,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> (Reply, Option<String>) {
    let segs = lower_segments(path);
    if !matches!(segs.first().map(String::as_str), Some("v1.0" | "beta")) {
        return (
            error(
                400,
                "BadRequest",
                "Invalid version: the API version must be v1.0 or beta.",
            ),
            None,
        );
    }
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let unauth = |m: &str| error(401, "InvalidAuthenticationToken", m);
    let Some(Ok(claims)) = token.map(|t| verify_token(&st.token_key, t, st.now())) else {
        return (unauth("Access token validation failure."), None);
    };
    if !claims.aud.eq_ignore_ascii_case(&format!("https://{host}")) {
        return (
            unauth("Access token validation failure. Invalid audience."),
            Some(claims.tid),
        );
    }
    let Some(idx) = st.find_tenant(&claims.tid) else {
        return (
            unauth("Access token validation failure. Unknown tenant."),
            None,
        );
    };
    let tid = Some(st.events.tenants[idx].spec.tenant_id.clone());
    let Some(roles) = claims.roles else {
        return (
            unauth("Either scp or roles claim need to be present in the token."),
            tid,
        );
    };
    let has = |names: &[&str]| {
        roles
            .iter()
            .any(|r| names.iter().any(|n| r.eq_ignore_ascii_case(n)))
    };
    let model = &st.events.tenants[idx];
    let inv = st.inventory.model(idx, || {
        crate::inventory::Inventory::build(&model.spec, &model.users, st.now())
    });
    let mut inv = lock(&inv);
    let who = raw_segment(path, 2);
    let Some(user_pos) = inv
        .users
        .iter()
        .position(|u| u.id.eq_ignore_ascii_case(&who) || u.upn.eq_ignore_ascii_case(&who))
    else {
        return (
            error(
                404,
                "Request_ResourceNotFound",
                &format!(
                    "Resource '{who}' does not exist or one of its queried reference-property objects are not present."
                ),
            ),
            tid,
        );
    };
    let user_id = inv.users[user_pos].id.clone();
    let rest: Vec<&str> = segs.iter().skip(1).map(String::as_str).collect();
    let user_read = has(&[
        "User.Read.All",
        "User.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    ]);
    let reply = match (method.as_str(), rest.as_slice()) {
        ("GET", ["users", _]) => {
            if !user_read {
                return (denied(), tid);
            }
            let u = &inv.users[user_pos];
            Reply::json(
                200,
                &json!({
                    "@odata.context": format!("https://{host}/v1.0/$metadata#users(id,userPrincipalName,accountEnabled)/$entity"),
                    "id": u.id, "userPrincipalName": u.upn, "displayName": u.display, "accountEnabled": u.enabled,
                }),
            )
        }
        ("PATCH", ["users", _]) => {
            let Ok(Value::Object(changes)) = serde_json::from_slice::<Value>(body) else {
                return (
                    error(400, "BadRequest", "Unable to read JSON request payload."),
                    tid,
                );
            };
            let only_enabled = changes.keys().all(|k| k == "accountEnabled");
            let allowed = has(&["User.ReadWrite.All", "Directory.ReadWrite.All"])
                || (only_enabled && has(&["User.EnableDisableAccount.All"]) && user_read);
            if !allowed {
                return (denied(), tid);
            }
            if let Some(v) = changes.get("accountEnabled") {
                let Some(enable) = v.as_bool() else {
                    return (
                        error(
                            400,
                            "BadRequest",
                            "Invalid value for property 'accountEnabled'.",
                        ),
                        tid,
                    );
                };
                let now = st.now();
                let was = inv.users[user_pos].enabled;
                inv.users[user_pos].enabled = enable;
                let mut d = lock(&st.respond.disabled);
                let periods = d.entry((idx, user_id.to_ascii_lowercase())).or_default();
                if was && !enable {
                    periods.push((now, None));
                } else if !was
                    && enable
                    && let Some(last) = periods.last_mut()
                    && last.1.is_none()
                {
                    last.1 = Some(now);
                }
            }
            no_content()
        }
        ("POST", ["users", _, "revokesigninsessions"]) => {
            if !has(&[
                "User.RevokeSessions.All",
                "User.ReadWrite.All",
                "Directory.ReadWrite.All",
            ]) {
                return (denied(), tid);
            }
            lock(&st.respond.revoked).insert((idx, user_id.to_ascii_lowercase()), st.now());
            Reply::json(
                200,
                &json!({"@odata.context": format!("https://{host}/v1.0/$metadata#Edm.Boolean"), "value": true}),
            )
        }
        (m, ["users", _, "mailfolders", "inbox", "messagerules", _]) => {
            let write = m != "GET";
            let ok = if write {
                has(&["MailboxSettings.ReadWrite"])
            } else {
                has(&["MailboxSettings.Read", "MailboxSettings.ReadWrite"])
            };
            if !ok {
                return (
                    error(
                        403,
                        "ErrorAccessDenied",
                        "Access is denied. Check credentials and try again.",
                    ),
                    tid,
                );
            }
            if inv.users[user_pos].purpose.is_none() {
                return (
                    error(
                        404,
                        "MailboxNotEnabledForRESTAPI",
                        "The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
                    ),
                    tid,
                );
            }
            let rule_id = raw_segment(path, 6);
            let rules = inv.rules.entry(user_id.clone()).or_default();
            let Some(pos) = rules
                .iter()
                .position(|r| r["id"].as_str() == Some(rule_id.as_str()))
            else {
                return (
                    error(
                        404,
                        "ErrorItemNotFound",
                        "The specified object was not found in the store.",
                    ),
                    tid,
                );
            };
            match m {
                "GET" => Reply::json(200, &rules[pos]),
                "DELETE" => {
                    rules.remove(pos);
                    no_content()
                }
                _ => {
                    let Ok(Value::Object(changes)) = serde_json::from_slice::<Value>(body) else {
                        return (
                            error(400, "ErrorInvalidRequest", "Cannot read the request body."),
                            tid,
                        );
                    };
                    if rules[pos]["isReadOnly"] == json!(true) {
                        return (
                            error(
                                400,
                                "ErrorInvalidRequest",
                                "The rule is read-only and cannot be changed through REST.",
                            ),
                            tid,
                        );
                    }
                    for (k, v) in changes {
                        if k == "isEnabled" || k == "displayName" || k == "sequence" {
                            rules[pos][k] = v;
                        }
                    }
                    Reply::json(200, &rules[pos])
                }
            }
        }
        ("GET", ["users", _, "authentication", "methods"]) => {
            if !has(&[
                "UserAuthenticationMethod.Read.All",
                "UserAuthenticationMethod.ReadWrite.All",
            ]) {
                return (denied(), tid);
            }
            let value = st.respond.methods_of(idx, &user_id);
            Reply::json(
                200,
                &json!({"@odata.context": format!("https://{host}/v1.0/$metadata#users('{user_id}')/authentication/methods"), "value": value}),
            )
        }
        ("DELETE", ["users", _, "authentication", kind, _]) => {
            if !has(&["UserAuthenticationMethod.ReadWrite.All"]) {
                return (denied(), tid);
            }
            let method_id = raw_segment(path, 5);
            let key = (idx, user_id.to_ascii_lowercase());
            let _ = st.respond.methods_of(idx, &user_id);
            let mut all = lock(&st.respond.methods);
            let list = all.entry(key).or_default();
            let Some(pos) = list.iter().position(|m| {
                m["id"].as_str() == Some(method_id.as_str())
                    && m["@odata.type"].as_str().is_some_and(|t| {
                        let t = t
                            .trim_start_matches("#microsoft.graph.")
                            .to_ascii_lowercase();
                        t.replace("authenticationmethod", "methods") == *kind
                    })
            }) else {
                return (
                    error(
                        404,
                        "itemNotFound",
                        "The requested authentication method was not found.",
                    ),
                    tid,
                );
            };
            if *kind == "passwordmethods" {
                return (
                    error(400, "badRequest", "The password method cannot be deleted."),
                    tid,
                );
            }
            list.remove(pos);
            no_content()
        }
        _ => error(
            405,
            "Request_BadRequest",
            "The requested HTTP method is not supported on this resource.",
        ),
    };
    (reply, tid)
}
