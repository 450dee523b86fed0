//! OCSF normalization of each log stream: sign-ins, directory audits, unified audit.
//!
//! Input: one selector byte (stream, `raw_data` on or off, canary on or off, cloud), then one
//! record as JSON text.
//!
//! Properties:
//! - never panics;
//! - the `Value` path (`normalize`) and the text path (`Record::parse` + `normalize_record`,
//!   and `Record::parse` + `normalize_to_value`) give the same event, or the same error;
//! - normalizing the same `Record` twice gives the same result;
//! - every event passes `check_event` (OCSF's rules beyond the JSON Schema);
//! - errors never carry record content: with the canary on, every string in the record is
//!   marked, and no error's `Display` or `Debug` shows the mark.
#![no_main]

use itdr_shared::Cloud;
use itdr_shared::Stream;
use itdr_shared::ocsf::{
    NormalizeOptions, Record, check_event, normalize, normalize_record, normalize_to_value,
};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const CANARY: &str = "CANARYzq7";

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let stream = [
        Stream::Signins,
        Stream::DirectoryAudits,
        Stream::UnifiedAudit,
    ][usize::from(sel & 0x03) % 3];
    let mut opts = NormalizeOptions::new(
        "0b3e6c1a-1111-2222-3333-444455556666",
        Cloud::ALL[usize::from(sel >> 5) % Cloud::ALL.len()],
    );
    opts.include_raw = sel & 0x04 != 0;
    opts.product_version = "v1.0".into();
    if opts.include_raw && sel & 0x10 != 0 {
        opts.raw_max_bytes = 64;
    }
    let canary = sel & 0x08 != 0;

    let text = if canary {
        let Ok(mut v) = serde_json::from_str::<Value>(text) else {
            return;
        };
        mark(&mut v);
        v.to_string()
    } else {
        text.to_string()
    };

    let by_value = serde_json::from_str::<Value>(&text)
        .ok()
        .map(|v| normalize(stream, &v, &opts));
    let record = Record::parse(&text);
    let by_text = record.as_ref().ok().map(|r| {
        let mut out = Vec::new();
        let res = normalize_record(stream, r, &opts, &mut out);
        match res {
            Ok(()) => {
                let event: Value = serde_json::from_slice(&out)
                    .unwrap_or_else(|e| panic!("normalize_record wrote invalid JSON: {e}"));
                Ok(event)
            }
            Err(e) => {
                assert!(out.is_empty(), "an error appended {} bytes", out.len());
                Err(e)
            }
        }
    });
    let by_text_value = record
        .as_ref()
        .ok()
        .map(|r| normalize_to_value(stream, r, &opts));
    let again = record
        .as_ref()
        .ok()
        .map(|r| normalize_to_value(stream, r, &opts));

    for res in [&by_value, &by_text, &by_text_value].into_iter().flatten() {
        match res {
            Ok(event) => {
                if let Err(problems) = check_event(event) {
                    panic!("{stream:?} event fails check_event: {problems:?}");
                }
            }
            Err(e) => {
                let shown = format!("{e} {e:?}");
                assert!(!shown.contains(CANARY), "record content in error {shown:?}");
            }
        }
    }
    if let (Some(a), Some(b)) = (&by_value, &by_text) {
        assert_eq!(a, b, "{stream:?}: Value path and text path differ");
    }
    if let (Some(a), Some(b)) = (&by_value, &by_text_value) {
        assert_eq!(a, b, "{stream:?}: normalize and normalize_to_value differ");
    }
    assert_eq!(
        by_text_value, again,
        "{stream:?}: a second normalization differs"
    );
});

/// Puts the canary into every string of `v` (keys stay: errors name fields).
fn mark(v: &mut Value) {
    match v {
        Value::String(s) => {
            s.push_str(CANARY);
        }
        Value::Array(a) => a.iter_mut().for_each(mark),
        Value::Object(o) => o.values_mut().for_each(mark),
        _ => {}
    }
}
