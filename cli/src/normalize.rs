//! `itdr normalize`: raw Microsoft records on stdin, OCSF NDJSON on stdout.
//!
//! Input is either one Graph page (`{"value": [...]}`), a JSON array of records, or NDJSON
//! (one record per line). A line that is not JSON, or a record that cannot be normalized, gets
//! an error on stderr naming its line or index; every valid record is still written.

use std::io::{BufRead, Read, Write};
use std::process::ExitCode;

use itdr_shared::Cloud;
use itdr_shared::Stream;
use itdr_shared::ocsf::{NormalizeOptions, normalize};

#[derive(Debug, Default, serde::Serialize)]
struct NormalizeSummary {
    records: usize,
    events: usize,
    errors: usize,
}

pub fn main(stream: Stream, tenant: &str, raw: bool, json: bool) -> anyhow::Result<ExitCode> {
    let mut input = Vec::new();
    std::io::stdin().lock().read_to_end(&mut input)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let summary = normalize_input(
        &input,
        stream,
        tenant,
        raw,
        &mut out,
        &mut std::io::stderr(),
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

fn normalize_input(
    input: &[u8],
    stream: Stream,
    tenant: &str,
    raw: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<NormalizeSummary> {
    let mut opts = NormalizeOptions::new(tenant, Cloud::Global);
    opts.include_raw = raw;
    let mut summary = NormalizeSummary::default();
    let emit = |label: String,
                record: &serde_json::Value,
                s: &mut NormalizeSummary,
                out: &mut dyn Write,
                err: &mut dyn Write|
     -> anyhow::Result<()> {
        s.records += 1;
        match normalize(stream, record, &opts) {
            Ok(ev) => {
                serde_json::to_writer(&mut *out, &ev)?;
                out.write_all(b"\n")?;
                s.events += 1;
            }
            Err(e) => {
                s.errors += 1;
                writeln!(err, "{label}: {e}")?;
            }
        }
        Ok(())
    };
    let trimmed = input.iter().position(|b| !b.is_ascii_whitespace());
    // A whole document: a Graph page or an array.
    if let Some(first) = trimmed
        && let Ok(doc) = serde_json::from_slice::<serde_json::Value>(input)
    {
        {
            let records = match &doc {
                serde_json::Value::Array(a) => Some(a.clone()),
                serde_json::Value::Object(o) if o.contains_key("value") => {
                    o.get("value").and_then(|v| v.as_array()).cloned()
                }
                _ => None,
            };
            if let Some(records) = records {
                for (i, r) in records.iter().enumerate() {
                    emit(format!("record {}", i + 1), r, &mut summary, out, err)?;
                }
                return Ok(summary);
            }
            if input[first] == b'{' && !input[first..].contains(&b'\n') {
                emit("line 1".into(), &doc, &mut summary, out, err)?;
                return Ok(summary);
            }
        }
    }
    // NDJSON.
    for (n, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<serde_json::Value>(&line) {
            Ok(r) => emit(format!("line {}", n + 1), &r, &mut summary, out, err)?,
            Err(e) => {
                summary.records += 1;
                summary.errors += 1;
                writeln!(
                    err,
                    "line {}: not valid JSON (column {})",
                    n + 1,
                    e.column()
                )?;
            }
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIGNIN: &str = r#"{"id":"66ea54eb-6301-4ee5-be62-ff5a759b0100","createdDateTime":"2024-05-01T19:15:41.6195833Z","userPrincipalName":"a@contoso.com","userId":"26be570a-ae82-4189-b4e2-a37c6808512d","appDisplayName":"Graph Explorer","resourceDisplayName":"Microsoft Graph","resourceId":"00000003-0000-0000-c000-000000000000","status":{"errorCode":0}}"#;

    #[test]
    fn ndjson_with_a_bad_line_still_writes_the_good_ones() {
        let input = format!("{SIGNIN}\nnot json\n{{\"no\":\"id\"}}\n{SIGNIN}\n");
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let s = normalize_input(
            input.as_bytes(),
            Stream::Signins,
            "t",
            false,
            &mut out,
            &mut err,
        )
        .expect("runs");
        assert_eq!((s.records, s.events, s.errors), (4, 2, 2));
        let err = String::from_utf8(err).unwrap_or_default();
        assert!(err.contains("line 2: not valid JSON"), "{err}");
        assert!(err.contains("line 3:"), "{err}");
        assert!(!err.contains("contoso"), "errors never quote records");
        let lines: Vec<serde_json::Value> = String::from_utf8(out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["class_uid"], 3002);
    }

    #[test]
    fn a_graph_page_is_accepted() {
        let input = format!("{{\"@odata.context\":\"x\",\"value\":[{SIGNIN},{SIGNIN}]}}");
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let s = normalize_input(
            input.as_bytes(),
            Stream::Signins,
            "t",
            true,
            &mut out,
            &mut err,
        )
        .expect("runs");
        assert_eq!((s.records, s.events, s.errors), (2, 2, 0));
        assert!(
            String::from_utf8(out)
                .unwrap_or_default()
                .contains("raw_data")
        );
    }
}
