//! `itdr assess`: the Identity Security Assessment of a tenant in the embedded mode, and the
//! reports `itdr run` writes at the end of a run when `[output] reports` is set.
//!
//! The report is built from the OCSF events the pipeline wrote (the NDJSON events file: the
//! inventory's state events and the sign-ins) and the store's inventory summaries (what could
//! not be read). It is written as `<out>/<tenant>.html` and `<out>/<tenant>.json`, where
//! `<tenant>` is the tenant's domain (else its GUID); an existing `<tenant>.json` is the
//! earlier report the new one is compared with. The findings are appended to the events
//! file as OCSF Compliance Finding events, unless `--no-emit`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use chrono::{DateTime, Utc};
use itdr_shared::assess::{self, InputBuilder, Report, TenantInfo};
use itdr_shared::inventory::InventoryStore;
use itdr_shared::store::TenantRecord;
use serde::Serialize;

use crate::preflight::Env;

/// Where `itdr assess` wrote a report.
#[derive(Debug, Clone, Serialize)]
pub struct Written {
    /// Tenant GUID.
    pub tenant_id: String,
    /// The HTML report.
    pub html: PathBuf,
    /// The JSON report.
    pub json: PathBuf,
    /// Size of the HTML file in bytes.
    pub html_bytes: u64,
    /// Findings.
    pub findings: usize,
    /// Overall score.
    pub overall_score: Option<u32>,
    /// Whether an earlier report was compared with.
    pub compared: bool,
}

/// A file name for the tenant's report: its domain (lowercase, `[a-z0-9.-]` only), else its
/// GUID.
pub fn report_name(t: &TenantRecord) -> String {
    let base = t.domain.as_deref().unwrap_or(&t.tenant_id);
    let s: String = base
        .to_ascii_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
        .collect();
    let s = s.trim_matches('.').to_string();
    if s.is_empty() { t.tenant_id.clone() } else { s }
}

/// Reads the events file once and feeds every tenant's builder. Unparsable lines (a partial
/// line fenced by the sink after a crash) are skipped.
fn read_events(path: &Path, tenants: &[String]) -> anyhow::Result<HashMap<String, InputBuilder>> {
    let mut builders: HashMap<String, InputBuilder> = tenants
        .iter()
        .map(|t| (t.to_ascii_lowercase(), InputBuilder::new(t)))
        .collect();
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(builders),
        Err(e) => return Err(anyhow!("cannot read {}: {}", path.display(), e.kind())),
    };
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .map_err(|e| anyhow!("cannot read {}: {}", path.display(), e.kind()))?;
        if n == 0 {
            break;
        }
        // Cheap pre-filter: the tenant id is in every event's metadata.
        let Some(b) = builders
            .iter_mut()
            .find(|(t, _)| line.contains(t.as_str()))
            .map(|(_, b)| b)
        else {
            continue;
        };
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
            b.push(&v);
        }
    }
    Ok(builders)
}

fn read_previous(path: &Path) -> Option<Report> {
    let text = std::fs::read_to_string(path).ok()?;
    match serde_json::from_str(&text) {
        Ok(r) => Some(r),
        Err(_) => {
            eprintln!(
                "warning: {} is not a report this version reads; not comparing with it",
                path.display()
            );
            None
        }
    }
}

/// Appends the findings' OCSF events to the events file in one write.
fn emit(events: &Path, findings: &[serde_json::Value]) -> anyhow::Result<()> {
    if findings.is_empty() {
        return Ok(());
    }
    let mut buf = Vec::new();
    for e in findings {
        serde_json::to_writer(&mut buf, e)?;
        buf.push(b'\n');
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(events)
        .map_err(|e| anyhow!("cannot open {}: {}", events.display(), e.kind()))?;
    f.write_all(&buf)
        .and_then(|()| f.sync_data())
        .map_err(|e| anyhow!("cannot append to {}: {}", events.display(), e.kind()))
}

/// Builds and writes the reports of `tenants`.
pub async fn write_reports(
    inventory: &dyn InventoryStore,
    tenants: &[TenantRecord],
    events: &Path,
    out: &Path,
    now: DateTime<Utc>,
    emit_findings: bool,
) -> anyhow::Result<Vec<Written>> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let ids: Vec<String> = tenants.iter().map(|t| t.tenant_id.clone()).collect();
    let path = events.to_path_buf();
    let mut builders = tokio::task::spawn_blocking(move || read_events(&path, &ids))
        .await
        .map_err(|_| anyhow!("reading the events file failed"))??;
    let mut written = Vec::new();
    for t in tenants {
        let Some(b) = builders.remove(&t.tenant_id.to_ascii_lowercase()) else {
            continue;
        };
        let degraded = assess::input::degradations(inventory, &t.tenant_id).await?;
        let input = b.finish(degraded);
        let name = report_name(t);
        let json_path = out.join(format!("{name}.json"));
        let html_path = out.join(format!("{name}.html"));
        let previous = read_previous(&json_path);
        let info = TenantInfo {
            id: t.tenant_id.clone(),
            domain: t.domain.clone(),
            org: t.org.clone(),
        };
        let report = assess::assess(&input, info, now, previous.as_ref());
        let html = assess::html::render(&report);
        std::fs::write(&html_path, &html)
            .map_err(|e| anyhow!("cannot write {}: {}", html_path.display(), e.kind()))?;
        std::fs::write(&json_path, serde_json::to_vec_pretty(&report)?)
            .map_err(|e| anyhow!("cannot write {}: {}", json_path.display(), e.kind()))?;
        if emit_findings {
            emit(events, &assess::ocsf::finding_events(&report, t.cloud))?;
        }
        written.push(Written {
            tenant_id: t.tenant_id.clone(),
            html: html_path,
            json: json_path,
            html_bytes: html.len() as u64,
            findings: report.findings.len(),
            overall_score: report.overall_score,
            compared: report.changes.is_some(),
        });
    }
    Ok(written)
}

/// Prints where the reports went.
pub fn print_written(w: &[Written]) {
    for x in w {
        println!(
            "{}  score {}  {} findings{}  {} ({} KB)  {}",
            x.tenant_id,
            x.overall_score
                .map_or_else(|| "n/a".to_string(), |s| s.to_string()),
            x.findings,
            if x.compared {
                ", compared with the earlier report"
            } else {
                ""
            },
            x.html.display(),
            x.html_bytes.div_ceil(1024),
            x.json.display(),
        );
    }
}

/// `itdr assess --tenant DOMAIN|GUID [--out DIR] [--events FILE]`.
pub async fn main(
    config: Option<&Path>,
    db: Option<PathBuf>,
    tenant: &str,
    out: Option<PathBuf>,
    events: Option<PathBuf>,
    no_emit: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let cfg = config.map(crate::config::RunConfig::load).transpose()?;
    let env = Env::open(config, db).await?;
    let Some(record) = env.find(tenant).await? else {
        bail!("tenant {tenant} is not registered (itdr tenants list)");
    };
    let Some(inventory) = env.cursors_for(record.cloud.group()).inventory() else {
        bail!("this store keeps no inventory");
    };
    let events = events
        .or_else(|| cfg.as_ref().map(|c| c.output.events.clone()))
        .unwrap_or_else(|| PathBuf::from("out/events.ndjson"));
    let out = out
        .or_else(|| cfg.as_ref().and_then(|c| c.output.reports.clone()))
        .unwrap_or_else(|| PathBuf::from("out/reports"));
    let written = write_reports(inventory, &[record], &events, &out, Utc::now(), !no_emit).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&written)?);
    } else {
        print_written(&written);
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn report_names_are_safe_file_names() {
        let mut t = TenantRecord {
            tenant_id: "0b1c2d3e-0000-4000-8000-000000000001".into(),
            domain: Some("Contoso.onMicrosoft.com".into()),
            org: None,
            cloud: itdr_shared::Cloud::Global,
            app_ref: "app".into(),
            streams: vec![],
            include_noninteractive: false,
            enabled: true,
            health: Default::default(),
            created_at: Utc::now(),
        };
        assert_eq!(report_name(&t), "contoso.onmicrosoft.com");
        t.domain = Some("../../etc/passwd".into());
        assert_eq!(report_name(&t), "etcpasswd");
        t.domain = Some("/..".into());
        assert_eq!(report_name(&t), t.tenant_id);
    }
}
