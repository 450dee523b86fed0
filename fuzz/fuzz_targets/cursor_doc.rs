//! The cursor documents: `Cursor::from_doc` (with the seen sets' base64 fingerprints and the
//! base64 varint list of paged buckets) and `SnapshotCursor::from_doc`.
//!
//! Input: a JSON document.
//!
//! Properties: never panics; whatever decodes encodes (`to_doc` never fails on a decoded
//! cursor), and decode → encode → decode gives the same cursor and the same document again.
#![no_main]

use itdr_shared::cursor::Cursor;
use itdr_shared::poll::snapshot::SnapshotCursor;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    if let Ok(c) = Cursor::from_doc(&doc) {
        let d1 = c
            .to_doc()
            .unwrap_or_else(|e| panic!("a decoded cursor does not encode: {e}"));
        let c2 = Cursor::from_doc(&d1)
            .unwrap_or_else(|e| panic!("an encoded cursor does not decode: {e}\n{d1}"));
        assert_eq!(c, c2, "decode(encode(c)) != c\n{d1}");
        let d2 = c2.to_doc().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d1, d2, "encoding is not stable");
        // Through text too, as the stores write it.
        let text = d1.to_string();
        let d3: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            Cursor::from_doc(&d3).ok().as_ref(),
            Some(&c),
            "text round trip\n{text}"
        );
    }
    if let Ok(s) = SnapshotCursor::from_doc(&doc) {
        let d1 = s
            .to_doc()
            .unwrap_or_else(|e| panic!("a decoded snapshot cursor does not encode: {e}"));
        let s2 = SnapshotCursor::from_doc(&d1)
            .unwrap_or_else(|e| panic!("an encoded snapshot cursor does not decode: {e}\n{d1}"));
        assert_eq!(s, s2, "decode(encode(s)) != s\n{d1}");
        assert_eq!(s2.to_doc().ok(), Some(d1), "encoding is not stable");
    }
});
