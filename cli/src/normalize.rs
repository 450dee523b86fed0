//! `itdr normalize`: raw Microsoft records on stdin, OCSF NDJSON on stdout.
//!
//! Input is either one Graph page (`{"value": [...]}`), a JSON array of records, or NDJSON
//! (one record per line); a UTF-8 byte-order mark at the start is ignored. A line or record
//! that is not UTF-8, not JSON, or cannot be normalized gets an error on stderr naming its line
//! or index (never its content); every valid record is still written.
//!
//! The input is streamed: records are read, normalized and written one at a time, so memory
//! stays bounded by the largest record whatever the input size. A document that starts with
//! `[` is an array of records. One that starts with `{` is a Graph page when its top-level
//! object has a `value` array (found while scanning, before the array is read); otherwise the
//! input is NDJSON, unless that first object spans several lines: then the input is records
//! printed over several lines one after the other (numbered from 1). Inside an array, a broken
//! record is reported and skipped; input that ends inside the array, or anything after the
//! document, is reported too.

use std::io::{self, Read, Write};
use std::process::ExitCode;

use itdr_shared::Cloud;
use itdr_shared::Stream;
use itdr_shared::ocsf::{NormalizeOptions, Record, normalize_record};

/// Bytes read from stdin at a time.
const READ_CHUNK: usize = 256 * 1024;
const BOM: &[u8] = b"\xEF\xBB\xBF";

#[derive(Debug, Default, serde::Serialize)]
struct NormalizeSummary {
    records: usize,
    events: usize,
    errors: usize,
}

pub fn main(stream: Stream, tenant: &str, raw: bool, json: bool) -> anyhow::Result<ExitCode> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(256 * 1024, stdout.lock());
    let summary = normalize_input(
        io::stdin().lock(),
        stream,
        tenant,
        raw,
        &mut out,
        &mut io::stderr(),
    )?;
    out.flush()?;
    if json {
        eprintln!("{}", serde_json::to_string(&summary)?);
    }
    Ok(if summary.errors > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// A read buffer that can look ahead and hands out what it holds.
struct Input<R> {
    r: R,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
    eof: bool,
}

impl<R: Read> Input<R> {
    fn new(r: R) -> Self {
        Input {
            r,
            buf: vec![0; READ_CHUNK],
            pos: 0,
            end: 0,
            eof: false,
        }
    }

    fn held(&self) -> &[u8] {
        &self.buf[self.pos..self.end]
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.end);
    }

    /// Reads more (keeping what is held); false at the end of the input.
    fn fill(&mut self) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
        if self.end == self.buf.len() {
            // Only the look-ahead of the first bytes holds data across reads.
            self.buf.resize(self.buf.len() + READ_CHUNK, 0);
        }
        loop {
            match self.r.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Holds at least `n` bytes unless the input ends first.
    fn want(&mut self, n: usize) -> io::Result<()> {
        while self.held().len() < n && self.fill()? {}
        Ok(())
    }

    /// Appends the next line, with its `\n`, to `line`; false when the input is exhausted.
    fn read_line(&mut self, line: &mut Vec<u8>) -> io::Result<bool> {
        let start = line.len();
        loop {
            let held = self.held();
            if let Some(i) = held.iter().position(|&b| b == b'\n') {
                line.extend_from_slice(&held[..=i]);
                self.consume(i + 1);
                return Ok(true);
            }
            line.extend_from_slice(held);
            let n = held.len();
            self.consume(n);
            if !self.fill()? {
                return Ok(line.len() > start);
            }
        }
    }
}

/// The lexical state of a JSON scan that only tracks strings and nesting.
#[derive(Debug, Default)]
struct Lexer {
    in_str: bool,
    escaped: bool,
}

impl Lexer {
    /// Feeds one byte; returns it when it is structural (outside a string).
    fn structural(&mut self, b: u8) -> Option<u8> {
        if self.in_str {
            if self.escaped {
                self.escaped = false;
            } else if b == b'\\' {
                self.escaped = true;
            } else if b == b'"' {
                self.in_str = false;
            }
            return None;
        }
        if b == b'"' {
            self.in_str = true;
            return None;
        }
        Some(b)
    }
}

/// Normalizes records and writes events and errors, counting them.
struct Sink<'o> {
    stream: Stream,
    opts: NormalizeOptions,
    out: &'o mut dyn Write,
    err: &'o mut dyn Write,
    event: Vec<u8>,
    summary: NormalizeSummary,
}

impl Sink<'_> {
    fn error(&mut self, label: Label, what: &dyn std::fmt::Display) -> io::Result<()> {
        self.summary.records += 1;
        self.summary.errors += 1;
        writeln!(self.err, "{label}: {what}")
    }

    /// One record's JSON text, not yet checked to be UTF-8.
    fn record(&mut self, label: Label, bytes: &[u8]) -> io::Result<()> {
        match std::str::from_utf8(bytes) {
            Ok(text) => self.record_text(label, text),
            Err(_) => self.error(label, &"not valid UTF-8"),
        }
    }

    /// One record's JSON text.
    fn record_text(&mut self, label: Label, text: &str) -> io::Result<()> {
        let record = match Record::parse(text) {
            Ok(r) => r,
            Err(e) => {
                return self.error(
                    label,
                    &format_args!("not valid JSON (column {})", e.column()),
                );
            }
        };
        self.event.clear();
        match normalize_record(self.stream, &record, &self.opts, &mut self.event) {
            Ok(()) => {
                self.event.push(b'\n');
                self.out.write_all(&self.event)?;
                self.summary.records += 1;
                self.summary.events += 1;
                Ok(())
            }
            Err(e) => self.error(label, &e),
        }
    }

    /// One NDJSON line (without its line break); blank lines are skipped.
    fn line(&mut self, n: usize, line: &[u8]) -> io::Result<()> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match std::str::from_utf8(line) {
            Ok(text) if text.trim().is_empty() => Ok(()),
            Ok(text) => self.record_text(Label::Line(n), text),
            Err(_) => self.error(Label::Line(n), &"not valid UTF-8"),
        }
    }
}

/// Where a bad record is: its NDJSON line, its index in an array, or the input as a whole.
#[derive(Debug, Clone, Copy)]
enum Label {
    Line(usize),
    Record(usize),
    Input,
}

impl std::fmt::Display for Label {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Label::Line(n) => write!(f, "line {n}"),
            Label::Record(n) => write!(f, "record {n}"),
            Label::Input => f.write_str("input"),
        }
    }
}

/// How a scan of an array ended.
enum ArrayEnd {
    Closed,
    Truncated,
}

/// Streams the records of an array whose `[` was just consumed, up to and including its `]`.
fn stream_array<R: Read>(input: &mut Input<R>, sink: &mut Sink<'_>) -> io::Result<ArrayEnd> {
    let mut lexer = Lexer::default();
    let mut depth = 0usize;
    let mut element: Vec<u8> = Vec::new();
    let mut index = 0usize;
    loop {
        let held = input.held();
        let mut taken = 0;
        let mut closed = false;
        let mut run_start = 0;
        for (i, &b) in held.iter().enumerate() {
            match lexer.structural(b) {
                Some(b'[' | b'{') => depth += 1,
                Some(b']' | b'}') if depth > 0 => depth -= 1,
                Some(c @ (b',' | b']')) if depth == 0 => {
                    element.extend_from_slice(&held[run_start..i]);
                    run_start = i + 1;
                    let text = element.trim_ascii();
                    if c == b',' || !text.is_empty() || index > 0 {
                        index += 1;
                        if text.is_empty() {
                            sink.error(Label::Record(index), &"not valid JSON (empty)")?;
                        } else {
                            sink.record(Label::Record(index), text)?;
                        }
                    }
                    element.clear();
                    if c == b']' {
                        taken = i + 1;
                        closed = true;
                        break;
                    }
                }
                _ => {}
            }
        }
        if closed {
            input.consume(taken);
            return Ok(ArrayEnd::Closed);
        }
        element.extend_from_slice(&held[run_start..]);
        let n = held.len();
        input.consume(n);
        if !input.fill()? {
            let label = if element.trim_ascii().is_empty() {
                Label::Input
            } else {
                Label::Record(index + 1)
            };
            sink.error(label, &"the input ends inside the array")?;
            return Ok(ArrayEnd::Truncated);
        }
    }
}

/// Skips JSON whitespace, counting line breaks; false at the end of the input.
fn skip_whitespace<R: Read>(input: &mut Input<R>, lines: &mut usize) -> io::Result<bool> {
    loop {
        let held = input.held();
        match held.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(i) => {
                *lines += held[..i].iter().filter(|&&b| b == b'\n').count();
                input.consume(i);
                return Ok(true);
            }
            None => {
                *lines += held.iter().filter(|&&b| b == b'\n').count();
                let n = held.len();
                input.consume(n);
                if !input.fill()? {
                    return Ok(false);
                }
            }
        }
    }
}

/// After a document: anything but whitespace is an error.
fn expect_end<R: Read>(input: &mut Input<R>, sink: &mut Sink<'_>, what: &str) -> io::Result<()> {
    let mut lines = 0;
    if skip_whitespace(input, &mut lines)? {
        sink.error(
            Label::Input,
            &format_args!("unexpected data after the {what}"),
        )?;
    }
    Ok(())
}

/// What the scan of a first top-level object found.
enum Head {
    /// A Graph page: its `value` array was streamed and the object read to its end.
    Page,
    /// Not a page: the whole first object, closed.
    Object(Vec<u8>),
    /// The input ended inside the first object: all there was.
    Lines(Vec<u8>),
}

/// Scans the top-level object whose `{` starts the input, keeping its bytes, until its
/// `value` member turns out to be an array (then streams it) or the object ends.
fn scan_first_object<R: Read>(input: &mut Input<R>, sink: &mut Sink<'_>) -> io::Result<Head> {
    let mut kept: Vec<u8> = Vec::new();
    let mut lexer = Lexer::default();
    let mut depth = 0usize;
    // At depth 1: whether a key comes next, where the key being read starts in `kept`, and
    // whether the member being read is `value`.
    let mut expect_key = false;
    let mut key_start: Option<usize> = None;
    let mut value_key = false;
    loop {
        let held = input.held();
        // (bytes used, whether the page's array starts there)
        let mut stop: Option<(usize, bool)> = None;
        for (i, &b) in held.iter().enumerate() {
            kept.push(b);
            let was_in_str = lexer.in_str;
            let s = lexer.structural(b);
            if depth == 1 && expect_key {
                if !was_in_str && lexer.in_str {
                    key_start = Some(kept.len());
                } else if was_in_str
                    && !lexer.in_str
                    && let Some(start) = key_start.take()
                {
                    value_key = is_value_key(&kept[start..kept.len() - 1]);
                }
            }
            match s {
                Some(b'[') if depth == 1 && !expect_key && value_key => {
                    stop = Some((i + 1, true));
                    break;
                }
                Some(b'{' | b'[') => {
                    depth += 1;
                    expect_key = depth == 1;
                    value_key = false;
                }
                Some(b'}' | b']') => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        stop = Some((i + 1, false));
                        break;
                    }
                }
                Some(b',') if depth == 1 => {
                    expect_key = true;
                    value_key = false;
                }
                Some(b':') if depth == 1 => expect_key = false,
                Some(c) if depth == 1 && !expect_key && !c.is_ascii_whitespace() => {
                    value_key = false;
                }
                _ => {}
            }
        }
        match stop {
            Some((used, true)) => {
                input.consume(used);
                return match stream_array(input, sink)? {
                    ArrayEnd::Truncated => Ok(Head::Page),
                    ArrayEnd::Closed => {
                        if skip_rest_of_object(input)? {
                            expect_end(input, sink, "page")?;
                        } else {
                            sink.error(Label::Input, &"the input ends inside the page")?;
                        }
                        Ok(Head::Page)
                    }
                };
            }
            Some((used, false)) => {
                input.consume(used);
                return Ok(Head::Object(kept));
            }
            None => {
                let n = held.len();
                input.consume(n);
                if !input.fill()? {
                    return Ok(Head::Lines(kept));
                }
            }
        }
    }
}

/// After a first record printed over several lines: further top-level JSON objects, each a
/// record (numbered from 2), separated by whitespace only.
fn stream_records<R: Read>(input: &mut Input<R>, sink: &mut Sink<'_>) -> io::Result<()> {
    let mut index = 1;
    let mut lines = 0;
    while skip_whitespace(input, &mut lines)? {
        index += 1;
        if input.held().first() != Some(&b'{') {
            return sink.error(
                Label::Input,
                &format_args!("unexpected data where record {index} should start"),
            );
        }
        let mut record: Vec<u8> = Vec::new();
        let mut lexer = Lexer::default();
        let mut depth = 0usize;
        let closed = 'scan: loop {
            let held = input.held();
            for (i, &b) in held.iter().enumerate() {
                match lexer.structural(b) {
                    Some(b'{' | b'[') => depth += 1,
                    Some(b'}' | b']') => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            record.extend_from_slice(&held[..=i]);
                            input.consume(i + 1);
                            break 'scan true;
                        }
                    }
                    _ => {}
                }
            }
            record.extend_from_slice(held);
            let n = held.len();
            input.consume(n);
            if !input.fill()? {
                break false;
            }
        };
        if !closed {
            return sink.error(Label::Record(index), &"the input ends inside this record");
        }
        sink.record(Label::Record(index), &record)?;
    }
    Ok(())
}

/// Whether the raw text of a key (between its quotes) is `value`.
fn is_value_key(raw: &[u8]) -> bool {
    if raw == b"value" {
        return true;
    }
    raw.contains(&b'\\')
        && std::str::from_utf8(raw)
            .ok()
            .and_then(|s| serde_json::from_str::<String>(&format!("\"{s}\"")).ok())
            .is_some_and(|k| k == "value")
}

/// Reads the rest of the page object after its `value` array; false when the input ends first.
fn skip_rest_of_object<R: Read>(input: &mut Input<R>) -> io::Result<bool> {
    let mut lexer = Lexer::default();
    let mut depth = 1usize;
    loop {
        let held = input.held();
        for (i, &b) in held.iter().enumerate() {
            match lexer.structural(b) {
                Some(b'{' | b'[') => depth += 1,
                Some(b'}' | b']') => {
                    depth -= 1;
                    if depth == 0 {
                        input.consume(i + 1);
                        return Ok(true);
                    }
                }
                _ => {}
            }
        }
        let n = held.len();
        input.consume(n);
        if !input.fill()? {
            return Ok(false);
        }
    }
}

fn normalize_input(
    input: impl Read,
    stream: Stream,
    tenant: &str,
    raw: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<NormalizeSummary> {
    let mut opts = NormalizeOptions::new(tenant, Cloud::Global);
    opts.include_raw = raw;
    let mut sink = Sink {
        stream,
        opts,
        out,
        err,
        event: Vec::new(),
        summary: NormalizeSummary::default(),
    };
    let mut input = Input::new(input);
    input.want(BOM.len())?;
    if input.held().starts_with(BOM) {
        input.consume(BOM.len());
    }
    // Line breaks before the first record, for NDJSON line numbers.
    let mut skipped = 0;
    if !skip_whitespace(&mut input, &mut skipped)? {
        return Ok(sink.summary);
    }
    let mut line = match input.held().first() {
        Some(b'[') => {
            input.consume(1);
            if let ArrayEnd::Closed = stream_array(&mut input, &mut sink)? {
                expect_end(&mut input, &mut sink, "array")?;
            }
            return Ok(sink.summary);
        }
        Some(b'{') => match scan_first_object(&mut input, &mut sink)? {
            Head::Page => return Ok(sink.summary),
            // A record printed over several lines (as exported, or pasted from a portal): the
            // input is JSON records one after the other, not NDJSON.
            Head::Object(record) if record.contains(&b'\n') => {
                sink.record(Label::Record(1), &record)?;
                stream_records(&mut input, &mut sink)?;
                return Ok(sink.summary);
            }
            Head::Object(kept) | Head::Lines(kept) => kept,
        },
        _ => Vec::new(),
    };
    // NDJSON. `line` may already hold the start of the input (several lines, if the first
    // object spanned them).
    let mut n = skipped;
    if !line.is_empty() {
        input.read_line(&mut line)?;
        let mut parts = line.split(|&b| b == b'\n').peekable();
        while let Some(part) = parts.next() {
            if parts.peek().is_none() && part.is_empty() {
                break;
            }
            n += 1;
            sink.line(n, part)?;
        }
        line.clear();
    }
    while input.read_line(&mut line)? {
        n += 1;
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        sink.line(n, text)?;
        line.clear();
    }
    Ok(sink.summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIGNIN: &str = r#"{"id":"66ea54eb-6301-4ee5-be62-ff5a759b0100","createdDateTime":"2024-05-01T19:15:41.6195833Z","userPrincipalName":"a@contoso.com","userId":"26be570a-ae82-4189-b4e2-a37c6808512d","appDisplayName":"Graph Explorer","resourceDisplayName":"Microsoft Graph","resourceId":"00000003-0000-0000-c000-000000000000","status":{"errorCode":0}}"#;

    struct Run {
        summary: (usize, usize, usize),
        events: Vec<serde_json::Value>,
        err: String,
    }

    fn run(input: &[u8], raw: bool) -> Run {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let s =
            normalize_input(input, Stream::Signins, "t", raw, &mut out, &mut err).expect("runs");
        Run {
            summary: (s.records, s.events, s.errors),
            events: String::from_utf8(out)
                .expect("utf-8")
                .lines()
                .map(|l| serde_json::from_str(l).expect("json"))
                .collect(),
            err: String::from_utf8(err).expect("utf-8"),
        }
    }

    /// Feeds the input a few bytes at a time, as a slow pipe would.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(self.1).min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn ndjson_with_a_bad_line_still_writes_the_good_ones() {
        let input = format!("{SIGNIN}\nnot json\n{{\"no\":\"id\"}}\n{SIGNIN}\n");
        let r = run(input.as_bytes(), false);
        assert_eq!(r.summary, (4, 2, 2));
        assert!(r.err.contains("line 2: not valid JSON"), "{}", r.err);
        assert!(r.err.contains("line 3:"), "{}", r.err);
        assert!(!r.err.contains("contoso"), "errors never quote records");
        assert_eq!(r.events.len(), 2);
        assert_eq!(r.events[0]["class_uid"], 3002);
    }

    #[test]
    fn a_graph_page_is_accepted() {
        let input = format!("{{\"@odata.context\":\"x\",\"value\":[{SIGNIN},{SIGNIN}]}}");
        let r = run(input.as_bytes(), true);
        assert_eq!(r.summary, (2, 2, 0));
        assert!(r.events[0]["raw_data"].is_string());
    }

    #[test]
    fn a_non_utf8_line_is_reported_by_number_and_the_rest_is_kept() {
        let mut input = Vec::new();
        input.extend_from_slice(SIGNIN.as_bytes());
        input.extend_from_slice(b"\n{\"id\":\"caf\xE9\"}\n");
        input.extend_from_slice(SIGNIN.as_bytes());
        input.push(b'\n');
        let r = run(&input, false);
        assert_eq!(r.summary, (3, 2, 1));
        assert!(r.err.contains("line 2: not valid UTF-8"), "{}", r.err);
        assert_eq!(r.events.len(), 2);
    }

    #[test]
    fn a_byte_order_mark_does_not_lose_the_first_record() {
        for input in [
            format!("\u{feff}{SIGNIN}\n{SIGNIN}\n"),
            format!("\u{feff}[{SIGNIN},{SIGNIN}]"),
            format!("\u{feff}{{\"value\":[{SIGNIN},{SIGNIN}]}}"),
        ] {
            let r = run(input.as_bytes(), false);
            assert_eq!(r.summary, (2, 2, 0), "{}", r.err);
        }
    }

    #[test]
    fn every_shape_streams_through_a_trickle() {
        let pretty_page = format!(
            "{{\n  \"@odata.context\": \"x\",\n  \"value\": [\n    {SIGNIN},\n    {SIGNIN}\n  ],\n  \"@odata.nextLink\": \"https://graph.microsoft.com/v1.0/x?$skiptoken=[a]{{b}}\"\n}}\n"
        );
        let cases = [
            (format!("{SIGNIN}\n\n{SIGNIN}\r\n{SIGNIN}"), 3),
            (format!("[{SIGNIN},\n{SIGNIN}]\n"), 2),
            (pretty_page, 2),
            ("[]".to_string(), 0),
            ("{\"value\":[]}".to_string(), 0),
            (String::new(), 0),
        ];
        for (input, n) in cases {
            for chunk in [1, 7, 4096] {
                let (mut out, mut err) = (Vec::new(), Vec::new());
                let s = normalize_input(
                    Trickle(input.as_bytes(), chunk),
                    Stream::Signins,
                    "t",
                    false,
                    &mut out,
                    &mut err,
                )
                .expect("runs");
                assert_eq!(
                    (s.records, s.events, s.errors),
                    (n, n, 0),
                    "{input:?} by {chunk}: {}",
                    String::from_utf8_lossy(&err)
                );
            }
        }
    }

    #[test]
    fn broken_arrays_report_the_record_and_keep_the_rest() {
        let input = format!("[{SIGNIN},{{\"id\":,}},\"x\",{SIGNIN}]");
        let r = run(input.as_bytes(), false);
        assert_eq!(r.summary, (4, 2, 2), "{}", r.err);
        assert!(r.err.contains("record 2: not valid JSON"), "{}", r.err);
        assert!(
            r.err.contains("record 3: record is not a JSON object"),
            "{}",
            r.err
        );

        let r = run(format!("[{SIGNIN},{SIGNIN}").as_bytes(), false);
        assert_eq!(r.summary, (2, 1, 1), "{}", r.err);
        assert!(r.err.contains("record 2"), "{}", r.err);

        let r = run(format!("[{SIGNIN},").as_bytes(), false);
        assert_eq!(r.summary, (2, 1, 1), "{}", r.err);
        assert!(
            r.err.contains("input: the input ends inside the array"),
            "{}",
            r.err
        );

        let r = run(format!("{{\"value\":[{SIGNIN}]").as_bytes(), false);
        assert_eq!(r.summary, (2, 1, 1), "{}", r.err);
        assert!(r.err.contains("ends inside the page"), "{}", r.err);

        let r = run(format!("[{SIGNIN}] trailing").as_bytes(), false);
        assert_eq!(r.summary, (2, 1, 1), "{}", r.err);
        assert!(r.err.contains("after the array"), "{}", r.err);
    }

    #[test]
    fn an_object_whose_value_is_not_an_array_is_a_record() {
        let rec = SIGNIN.replacen('{', "{\"value\":5,", 1);
        let r = run(format!("{rec}\n{SIGNIN}\n").as_bytes(), false);
        assert_eq!(r.summary, (2, 2, 0), "{}", r.err);
        assert_eq!(r.events[0]["unmapped"]["value"], 5);
    }

    #[test]
    fn records_printed_over_several_lines_are_records() {
        let pretty = serde_json::to_string_pretty(
            &serde_json::from_str::<serde_json::Value>(SIGNIN).expect("json"),
        )
        .expect("json");
        for chunk in [1, 5, 4096] {
            let input = format!("{pretty}\n{pretty}\r\n\n{SIGNIN}\n");
            let (mut out, mut err) = (Vec::new(), Vec::new());
            let s = normalize_input(
                Trickle(input.as_bytes(), chunk),
                Stream::Signins,
                "t",
                false,
                &mut out,
                &mut err,
            )
            .expect("runs");
            let err = String::from_utf8_lossy(&err);
            assert_eq!((s.records, s.events, s.errors), (3, 3, 0), "{err}");
        }
        // A broken one is reported by its number; the input ending inside one too.
        let r = run(
            format!("{pretty}\n{{\n\"id\": \"x\"\n}}\n{pretty}\n{{\n\"id\":").as_bytes(),
            false,
        );
        assert_eq!(r.summary, (4, 2, 2), "{}", r.err);
        assert!(r.err.contains("record 2:"), "{}", r.err);
        assert!(
            r.err
                .contains("record 4: the input ends inside this record"),
            "{}",
            r.err
        );
        // Anything else between them is reported, and the records before it kept.
        let r = run(format!("{pretty}\nnot json\n").as_bytes(), false);
        assert_eq!(r.summary, (2, 1, 1), "{}", r.err);
        assert!(r.err.contains("where record 2 should start"), "{}", r.err);
    }
}
