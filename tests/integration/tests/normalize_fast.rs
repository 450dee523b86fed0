//! The fast path (`Record::parse` + `normalize_record`, JSON text in, JSON text out) and the
//! `Value` path (`normalize`) produce the same event for every Graph fixture, for variants of
//! them with nulls, wrong types, blanks, escapes and repeated keys, and for thousands of
//! simulator records of both streams, with and without `raw_data`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/records.rs"]
mod records;

use itdr_shared::ocsf::{
    NormalizeOptions, Record, check_event, normalize, normalize_record, normalize_to_value,
};
use itdr_shared::{Cloud, Stream};
use serde_json::{Value, json};

fn option_sets() -> Vec<NormalizeOptions> {
    let plain = NormalizeOptions::new("72F988BF-86f1-41af-91ab-2d7cd011db47 ", Cloud::GccHigh);
    let mut raw = NormalizeOptions::new("72f988bf-86f1-41af-91ab-2d7cd011db47", Cloud::Global);
    raw.include_raw = true;
    raw.product_version = "beta".into();
    let mut truncated = raw.clone();
    truncated.raw_max_bytes = 300;
    let mut blank_tenant = NormalizeOptions::new(" ", Cloud::China);
    blank_tenant.product_version = "  ".into();
    vec![plain, raw, truncated, blank_tenant]
}

/// Asserts both paths agree on one record given as JSON text; returns whether it normalized.
fn agree(stream: Stream, text: &str, opts: &NormalizeOptions, label: &str) -> bool {
    let value: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{label}: {e}"));
    let slow = normalize(stream, &value, opts);
    let record = Record::parse(text).unwrap_or_else(|e| panic!("{label}: {e}"));
    let mut buf = b"previous event\n".to_vec();
    let fast = normalize_record(stream, &record, opts, &mut buf);
    match (&slow, fast) {
        (Ok(slow), Ok(())) => {
            let rest = buf
                .strip_prefix(b"previous event\n".as_slice())
                .unwrap_or_else(|| panic!("{label}: the buffer's start was changed"));
            let fast: Value = serde_json::from_slice(rest)
                .unwrap_or_else(|e| panic!("{label}: fast output is not JSON: {e}"));
            assert_eq!(&fast, slow, "{label}: fast and Value paths differ");
            // The same record normalizes the same way again, also to a Value.
            let again = normalize_to_value(stream, &record, opts).unwrap();
            assert_eq!(&again, slow, "{label}: a second run differs");
            assert_eq!(check_event(slow), Ok(()), "{label}");
            true
        }
        (Err(a), Err(b)) => {
            assert_eq!(*a, b, "{label}: different errors");
            assert_eq!(buf, b"previous event\n", "{label}: an error wrote output");
            false
        }
        (slow, fast) => panic!("{label}: Value path {slow:?}, fast path {fast:?}"),
    }
}

/// Variants of a record that stress the reading rules: each top-level member replaced by a
/// null, a blank, a number, an object; nested members nulled; a repeated key; escaped keys and
/// pretty-printing.
fn variants(text: &str) -> Vec<(String, String)> {
    let value: Value = serde_json::from_str(text).unwrap();
    let Some(obj) = value.as_object() else {
        return Vec::new();
    };
    let mut out = vec![
        (
            "pretty".to_string(),
            serde_json::to_string_pretty(&value).unwrap(),
        ),
        (
            "escaped keys".to_string(),
            text.replace("\"id\"", "\"\\u0069d\"")
                .replace("\"ipAddress\"", "\"ip\\u0041ddress\""),
        ),
        (
            "repeated key".to_string(),
            format!(
                "{{\"id\":\"first\",\"status\":null,{}",
                &text.trim_start()[1..]
            ),
        ),
    ];
    for (k, v) in obj {
        if k == "id" {
            continue;
        }
        for (what, replacement) in [
            ("null", Value::Null),
            ("blank", json!("  ")),
            ("number", json!(5)),
            ("object", json!({"x": {"y": null}, "z": "w"})),
            ("array", json!([null, "", {"a": 1}])),
        ] {
            let mut m = value.clone();
            m[k] = replacement;
            out.push((format!("{k} = {what}"), m.to_string()));
        }
        if let Some(inner) = v.as_object() {
            for ik in inner.keys() {
                let mut m = value.clone();
                m[k][ik] = Value::Null;
                out.push((format!("{k}.{ik} = null"), m.to_string()));
                let mut m = value.clone();
                m[k][ik] = json!("12");
                out.push((format!("{k}.{ik} = \"12\""), m.to_string()));
            }
        }
    }
    out
}

fn fixture_cases(dir: &str, stream: Stream) -> usize {
    let mut normalized = 0;
    for (name, text) in records::fixtures(dir) {
        for opts in option_sets() {
            normalized += usize::from(agree(stream, &text, &opts, &name));
        }
        let opts = &option_sets()[1];
        for (what, variant) in variants(&text) {
            agree(stream, &variant, opts, &format!("{name}: {what}"));
        }
    }
    normalized
}

#[test]
fn fast_and_value_paths_agree_on_every_fixture_and_its_variants() {
    let n = fixture_cases("signins", Stream::Signins);
    assert!(n >= 16 * 4, "{n}");
    let n = fixture_cases("directory_audits", Stream::DirectoryAudits);
    assert!(n >= 26 * 4, "{n}");
}

#[test]
fn fast_and_value_paths_agree_on_edge_records() {
    let opts = &option_sets()[1];
    for (stream, text) in [
        (Stream::Signins, r#"[1]"#),
        (Stream::Signins, r#""x""#),
        (Stream::Signins, r#"{"id":"a"}"#),
        (
            Stream::Signins,
            r#"{"id":" ","createdDateTime":"2024-05-01T19:15:41Z"}"#,
        ),
        (
            Stream::Signins,
            r#"{"id":"a","createdDateTime":"1969-12-31T23:59:59Z"}"#,
        ),
        (
            Stream::Signins,
            r#"{"id":"a\u0000\"\\","createdDateTime":"2024-05-01T19:15:41Z","x":[1.5,-0.0,1e3,18446744073709551615,-9223372036854775808],"y":{"":{"":""}},"é":"\ud83d\ude00"}"#,
        ),
        (
            Stream::DirectoryAudits,
            r#"{"id":"a","activityDateTime":"2024-05-01T19:15:41Z","additionalDetails":[{"key":"k","value":[1]},{"key":"k","value":2},{"key":" k ","value":{"a":null}},{"key":"User-Agent","value":"ua"},{"key":"User-Agent","value":7},{"key":"e","value":" "}]}"#,
        ),
        (
            Stream::DirectoryAudits,
            r#"{"id":"a","activityDateTime":"2024-05-01T19:15:41Z","additionalDetails":[{"key":"e","value":" "}]}"#,
        ),
    ] {
        agree(stream, text, opts, text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_and_value_paths_agree_on_simulated_records() {
    let recs = records::fetch(2500).await;
    assert!(recs.signins.len() >= 2000, "{}", recs.signins.len());
    assert!(recs.audits.len() >= 2000, "{}", recs.audits.len());
    let kinds: std::collections::BTreeSet<String> = recs
        .signins
        .iter()
        .filter_map(|r| r["signInEventTypes"][0].as_str().map(str::to_string))
        .collect();
    assert!(kinds.len() >= 3, "{kinds:?}");
    let opts = option_sets();
    for (stream, list) in [
        (Stream::Signins, &recs.signins),
        (Stream::DirectoryAudits, &recs.audits),
    ] {
        for (i, r) in list.iter().enumerate() {
            let text = r.to_string();
            let o = &opts[i % opts.len()];
            assert!(
                agree(stream, &text, o, &format!("{stream} record {i}")),
                "{stream} record {i} did not normalize"
            );
        }
    }
}
