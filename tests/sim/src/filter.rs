//! The subset of OData `$filter` Graph supports on the audit logs: the time property with
//! `ge`, `le` and `eq` joined by `and`, and on beta sign-ins
//! `signInEventTypes/any(t: t eq 'x' [or t eq 'y'])` with `eq` or `ne`. Anything else is a
//! 400, as on Graph.

use chrono::{DateTime, Utc};

use crate::generator::{SIGNIN_EVENT_TYPES, to_ticks};

/// A parsed filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Filter {
    /// Inclusive lower bound in ticks.
    pub ge: Option<i64>,
    /// Inclusive upper bound in ticks.
    pub le: Option<i64>,
    /// Event-type clauses: each must hold (`and`); within one clause, `or` alternatives.
    pub event_types: Vec<TypeClause>,
}

/// One `signInEventTypes/any(...)` clause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TypeClause {
    /// `ne` instead of `eq`.
    pub negate: bool,
    /// Indices into [`SIGNIN_EVENT_TYPES`] (or 4 for `unknownFutureValue`).
    pub types: Vec<u8>,
}

impl Filter {
    /// Whether a sign-in of the given type passes the event-type clauses. Without any, only
    /// interactive sign-ins are returned (the documented default).
    pub(crate) fn type_matches(&self, kind: u8) -> bool {
        if self.event_types.is_empty() {
            return kind == 0;
        }
        self.event_types.iter().all(|c| {
            let any = c.types.contains(&kind);
            if c.negate {
                !c.types.is_empty() && c.types.iter().all(|t| *t != kind)
            } else {
                any
            }
        })
    }
}

/// A filter Graph would refuse, with its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FilterError(pub String);

/// Parses `$filter` for a stream whose time property is `time_prop`; `allow_types` is true on
/// beta sign-ins.
pub(crate) fn parse(
    input: &str,
    time_prop: &str,
    entity: &str,
    allow_types: bool,
) -> Result<Filter, FilterError> {
    let mut f = Filter::default();
    let text = input.trim();
    if text.is_empty() {
        return Ok(f);
    }
    for clause in split_and(text) {
        let c = strip_parens(clause.trim());
        if c.is_empty() {
            return Err(FilterError(format!(
                "Invalid filter clause: syntax error in '{input}'."
            )));
        }
        let lower = c.to_ascii_lowercase();
        if lower.starts_with("signineventtypes") {
            if !allow_types {
                return Err(FilterError(format!(
                    "Could not find a property named 'signInEventTypes' on type '{entity}'."
                )));
            }
            f.event_types.push(parse_any(c)?);
            continue;
        }
        let toks: Vec<&str> = c.split_whitespace().collect();
        if toks.len() < 3 {
            return Err(FilterError(format!(
                "Invalid filter clause: syntax error at '{c}'."
            )));
        }
        // A `+00:00` offset sent unencoded arrives as a space: glue it back.
        let value = toks[2..].join("+");
        let prop = toks[0];
        if !prop.eq_ignore_ascii_case(time_prop) {
            if prop
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '/' || ch == '_')
            {
                return Err(FilterError(format!(
                    "Could not find a property named '{prop}' on type '{entity}'."
                )));
            }
            return Err(FilterError(format!(
                "Invalid filter clause: syntax error at '{c}'."
            )));
        }
        let t = parse_time(value.trim_matches('\'')).ok_or_else(|| {
            FilterError(format!(
                "Invalid filter clause: the value '{value}' is not a valid DateTimeOffset."
            ))
        })?;
        match toks[1].to_ascii_lowercase().as_str() {
            "ge" => f.ge = Some(f.ge.map_or(t, |g| g.max(t))),
            "le" => f.le = Some(f.le.map_or(t, |l| l.min(t))),
            "eq" => {
                f.ge = Some(f.ge.map_or(t, |g| g.max(t)));
                f.le = Some(f.le.map_or(t, |l| l.min(t)));
            }
            op @ ("gt" | "lt" | "ne") => {
                return Err(FilterError(format!(
                    "Invalid filter clause: the operator '{op}' is not supported for '{time_prop}'. Supported operators: eq, ge, le."
                )));
            }
            op => {
                return Err(FilterError(format!(
                    "Invalid filter clause: unknown operator '{op}'."
                )));
            }
        }
    }
    Ok(f)
}

fn parse_time(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| to_ticks(t.with_timezone(&Utc)))
}

/// Splits on the keyword `and` outside parentheses and quotes.
fn split_and(s: &str) -> Vec<&str> {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let (mut depth, mut quote, mut start) = (0i32, false, 0usize);
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' => quote = !quote,
            b'(' if !quote => depth += 1,
            b')' if !quote => depth -= 1,
            b' ' if !quote && depth == 0 => {
                let rest = &s[i..];
                if rest.len() >= 5 && rest[..5].eq_ignore_ascii_case(" and ") {
                    out.push(&s[start..i]);
                    start = i + 5;
                    i += 5;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    out.push(&s[start..]);
    out
}

fn strip_parens(mut s: &str) -> &str {
    while s.starts_with('(') && s.ends_with(')') && balanced(&s[1..s.len() - 1]) {
        s = s[1..s.len() - 1].trim();
    }
    s
}

fn balanced(s: &str) -> bool {
    let mut d = 0i32;
    for c in s.chars() {
        match c {
            '(' => d += 1,
            ')' => {
                d -= 1;
                if d < 0 {
                    return false;
                }
            }
            _ => {}
        }
    }
    d == 0
}

/// Parses `signInEventTypes/any(t: t eq 'a' or t eq 'b')` (or `ne`).
fn parse_any(c: &str) -> Result<TypeClause, FilterError> {
    let bad = || FilterError(format!("Invalid filter clause: syntax error at '{c}'."));
    let rest = c
        .get("signInEventTypes".len()..)
        .ok_or_else(bad)?
        .trim_start();
    let rest = rest.strip_prefix("/").ok_or_else(bad)?.trim_start();
    if !rest.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("any")) {
        return Err(bad());
    }
    let inner = rest[3..]
        .trim()
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(bad)?;
    let (var, body) = inner.split_once(':').ok_or_else(bad)?;
    let var = var.trim();
    if var.is_empty() || !var.chars().all(|ch| ch.is_ascii_alphanumeric()) {
        return Err(bad());
    }
    let mut negate = None;
    let mut types = Vec::new();
    for alt in body.split(" or ") {
        let toks: Vec<&str> = alt.split_whitespace().collect();
        if toks.len() != 3 || toks[0] != var {
            return Err(bad());
        }
        let neg = match toks[1].to_ascii_lowercase().as_str() {
            "eq" => false,
            "ne" => true,
            _ => return Err(bad()),
        };
        if negate.is_some_and(|n| n != neg) {
            return Err(bad());
        }
        negate = Some(neg);
        let v = toks[2]
            .strip_prefix('\'')
            .and_then(|v| v.strip_suffix('\''))
            .ok_or_else(bad)?;
        let idx = SIGNIN_EVENT_TYPES
            .iter()
            .position(|t| t.eq_ignore_ascii_case(v))
            .map(|i| u8::try_from(i).unwrap_or(4))
            .or_else(|| v.eq_ignore_ascii_case("unknownFutureValue").then_some(4))
            .ok_or_else(|| FilterError(format!("Requested value '{v}' was not found.")))?;
        types.push(idx);
    }
    Ok(TypeClause {
        negate: negate.unwrap_or(false),
        types,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const E: &str = "microsoft.graph.signIn";

    #[test]
    fn time_window_and_types() {
        let f = parse(
            "createdDateTime ge 2024-01-13T14:13:32Z and createdDateTime le 2024-01-14T17:43:26.1234567Z and signInEventTypes/any(t: t eq 'nonInteractiveUser')",
            "createdDateTime",
            E,
            true,
        )
        .unwrap();
        assert!(f.ge.is_some() && f.le.is_some());
        assert!(f.type_matches(1) && !f.type_matches(0));
        let f = parse(
            "(signInEventTypes/any(t: t ne 'interactiveUser'))",
            "createdDateTime",
            E,
            true,
        )
        .unwrap();
        assert!(!f.type_matches(0) && f.type_matches(2));
        let f = parse(
            "signInEventTypes/any(x: x eq 'servicePrincipal' or x eq 'managedIdentity')",
            "createdDateTime",
            E,
            true,
        )
        .unwrap();
        assert!(f.type_matches(3) && !f.type_matches(1));
        assert!(
            parse("", "createdDateTime", E, false)
                .unwrap()
                .type_matches(0)
        );
    }

    #[test]
    fn refusals() {
        for bad in [
            "createdDateTime gt 2024-01-13T14:13:32Z",
            "createdDateTime lt 2024-01-13T14:13:32Z",
            "createdDateTime ge yesterday",
            "foo eq 'x'",
            "createdDateTime ge",
            "signInEventTypes/any(t: t eq 'bogus')",
            "createdDateTime ge 2024-01-13T14:13:32Z or createdDateTime le 2024-01-13T14:13:32Z",
        ] {
            assert!(parse(bad, "createdDateTime", E, true).is_err(), "{bad}");
        }
        assert!(
            parse(
                "signInEventTypes/any(t: t eq 'interactiveUser')",
                "createdDateTime",
                E,
                false
            )
            .is_err()
        );
        // An unencoded '+00:00' offset arrives as a space.
        assert!(
            parse(
                "createdDateTime ge 2024-01-13T14:13:32 00:00",
                "createdDateTime",
                E,
                false
            )
            .is_ok()
        );
    }
}
