//! The report as one self-contained HTML file: no scripts, fonts, images or styles from
//! anywhere else; charts are inline SVG. It prints to PDF cleanly (A4, each section on a new
//! page, no backgrounds needed to read it). Every value from the tenant is HTML-escaped.

use std::fmt::Write;

use super::{Finding, FindingKind, Report, Section, SectionReport};

/// Escapes text for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const CSS: &str = r#"
*{box-sizing:border-box}
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;color:#1b1f24;margin:0;background:#fff;font-size:14px;line-height:1.45}
main{max-width:980px;margin:0 auto;padding:24px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:20px;border-bottom:2px solid #1f4e79;padding-bottom:4px;margin-top:32px}
h3{font-size:16px;margin:18px 0 6px}
.muted{color:#57606a}.small{font-size:12px}
.scores{display:flex;flex-wrap:wrap;gap:10px;margin:12px 0}
.score{flex:1 1 160px;border:1px solid #d0d7de;border-radius:6px;padding:10px;min-width:0}
.score b{display:block;font-size:24px}
.s-good{color:#1a7f37}.s-fair{color:#9a6700}.s-poor{color:#cf222e}
.sev{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;color:#fff}
.sev-critical{background:#8b0000}.sev-high{background:#cf222e}.sev-medium{background:#bc4c00}.sev-low{background:#57606a}
.finding{border:1px solid #d0d7de;border-left:5px solid #57606a;border-radius:4px;padding:10px 14px;margin:12px 0;break-inside:avoid}
.finding.critical{border-left-color:#8b0000}.finding.high{border-left-color:#cf222e}.finding.medium{border-left-color:#bc4c00}
.finding h3{margin:0 0 4px}
table{border-collapse:collapse;width:100%;table-layout:fixed;margin:6px 0}
th,td{border-bottom:1px solid #d8dee4;padding:4px 6px;text-align:left;vertical-align:top;overflow-wrap:anywhere;word-break:break-word}
th{background:#f6f8fa;font-weight:600}
.charts{display:flex;flex-wrap:wrap;gap:12px}
figure.chart{flex:1 1 440px;min-width:0;margin:8px 0;border:1px solid #d0d7de;border-radius:6px;padding:8px}
figure.chart svg{width:100%;max-width:600px;height:auto;display:block}
figcaption{font-weight:600;margin-bottom:4px}
.note{background:#fff8c5;border:1px solid #d4a72c;border-radius:4px;padding:8px 12px;margin:8px 0}
.ok{background:#dafbe1;border:1px solid #4ac26b;border-radius:4px;padding:8px 12px;margin:8px 0}
ol.top li{margin:4px 0}
.changes{display:flex;flex-wrap:wrap;gap:10px}.changes div{flex:1 1 200px;min-width:0}
section.page{break-before:page}
@page{size:A4;margin:14mm}
@media print{main{max-width:none;padding:0}body{font-size:11pt}h2{margin-top:0}a{color:inherit;text-decoration:none}}
"#;

fn score_class(score: Option<u32>) -> &'static str {
    match score {
        Some(s) if s >= 80 => "s-good",
        Some(s) if s >= 50 => "s-fair",
        Some(_) => "s-poor",
        None => "muted",
    }
}

fn score_text(score: Option<u32>) -> String {
    score.map_or_else(|| "n/a".to_string(), |s| format!("{s}/100"))
}

fn kind_title(report: &Report, k: FindingKind) -> String {
    report
        .finding(k)
        .map_or_else(|| k.as_str().replace('_', " "), |f| f.title.clone())
}

/// A horizontal bar chart as inline SVG. An empty chart says why instead of drawing bars.
fn bar_chart(id: &str, caption: &str, data: &[(String, u64)], empty: &str) -> String {
    let mut s = String::new();
    let rows = data.len().max(1);
    let h = 28 * rows + 16;
    let total: u64 = data.iter().map(|(_, n)| n).sum();
    let _ = write!(
        s,
        r#"<figure class="chart" id="{id}" data-points="{}"><figcaption>{}</figcaption><svg viewBox="0 0 460 {h}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">"#,
        data.len(),
        escape(caption),
        escape(caption)
    );
    if data.is_empty() || total == 0 {
        let _ = write!(
            s,
            r##"<rect x="0" y="0" width="460" height="{h}" fill="#f6f8fa"/><text x="230" y="{}" text-anchor="middle" font-size="12" fill="#57606a">{}</text>"##,
            h / 2 + 4,
            escape(empty)
        );
    } else {
        let max = data.iter().map(|(_, n)| *n).max().unwrap_or(1).max(1);
        const COLORS: [&str; 6] = [
            "#1f4e79", "#2f81f7", "#bc4c00", "#cf222e", "#57606a", "#1a7f37",
        ];
        for (i, (label, n)) in data.iter().enumerate() {
            let y = 8 + 28 * i;
            let w = (*n as f64 / max as f64 * 220.0).round().max(1.0);
            let pct = *n as f64 * 100.0 / total as f64;
            let mut l = label.clone();
            if l.chars().count() > 26 {
                l = l.chars().take(25).collect::<String>() + "…";
            }
            let _ = write!(
                s,
                r##"<text x="150" y="{}" text-anchor="end" font-size="12" fill="#1b1f24">{}</text><rect x="156" y="{y}" width="{w}" height="20" rx="2" fill="{}"/><text x="{}" y="{}" font-size="12" fill="#1b1f24">{n} ({pct:.0}%)</text>"##,
                y + 14,
                escape(&l),
                COLORS[i % COLORS.len()],
                156.0 + w + 6.0,
                y + 14,
            );
        }
    }
    s.push_str("</svg></figure>");
    s
}

fn finding_html(f: &Finding) -> String {
    let sev = f.severity.caption().to_ascii_lowercase();
    let mut s = format!(
        r#"<div class="finding {sev}" id="finding-{}" data-kind="{}"><h3><span class="sev sev-{sev}">{}</span> {}</h3><p>{}</p><p><b>Why it matters.</b> {}</p><p><b>Fix.</b> {}</p>"#,
        f.kind.as_str(),
        f.kind.as_str(),
        f.severity.caption(),
        escape(&f.title),
        escape(&f.summary),
        escape(&f.why),
        escape(&f.fix),
    );
    if !f.evidence.is_empty() {
        s.push_str(r#"<table><thead><tr><th style="width:40%">Object</th><th>Detail</th></tr></thead><tbody>"#);
        for e in &f.evidence {
            let _ = write!(
                s,
                r#"<tr><td>{}<br><span class="muted small">{}</span></td><td>{}</td></tr>"#,
                escape(&e.name),
                escape(&e.id),
                escape(&e.detail)
            );
        }
        s.push_str("</tbody></table>");
        if f.count > f.evidence.len() as u64 {
            let _ = write!(
                s,
                r#"<p class="muted small">Showing {} of {}; the JSON report has the same list.</p>"#,
                f.evidence.len(),
                f.count
            );
        }
    }
    s.push_str("</div>");
    s
}

fn section_html(report: &Report, sec: &SectionReport) -> String {
    let mut s = format!(
        r#"<section class="page" id="section-{}"><h2>{} <span class="{} small">score {}</span></h2>"#,
        sec.section.as_str(),
        escape(&sec.title),
        score_class(sec.score),
        score_text(sec.score)
    );
    match sec.section {
        Section::Inventory => {
            let i = &report.inventory;
            let _ = write!(
                s,
                r#"<table class="counts"><tbody><tr><th>Users</th><td>{}</td><th>Active members</th><td>{}</td></tr><tr><th>Guests</th><td>{}</td><th>Shared and resource mailboxes</th><td>{}</td></tr><tr><th>Disabled</th><td>{}</td><th>Enabled members without licence (service accounts)</th><td>{}</td></tr></tbody></table>"#,
                i.users,
                i.active_members,
                i.guests,
                i.resource_mailboxes,
                i.disabled,
                i.unlicensed_members
            );
            s.push_str(&bar_chart(
                "chart-users-by-state",
                "Users by state",
                &report.charts.users_by_state,
                "No users read",
            ));
        }
        Section::Mfa => {
            let sd = match report.inventory.security_defaults {
                Some(true) => "on",
                Some(false) => "off",
                None => "unknown",
            };
            let _ = write!(
                s,
                r#"<p>Security defaults: <b>{sd}</b>. Conditional access policies: <b>{}</b>.</p>"#,
                report.inventory.ca_policies
            );
            s.push_str(&bar_chart(
                "chart-mfa-coverage",
                "MFA coverage (registered methods)",
                &report.charts.mfa_coverage,
                "MFA registration not available (needs Entra ID P1)",
            ));
        }
        Section::LegacyAuth => {
            match report.coverage.sign_ins {
                Some(n) => {
                    let _ = write!(
                        s,
                        r#"<p>{n} sign-ins in the last {} days were examined.</p>"#,
                        report.coverage.window_days
                    );
                }
                None => s.push_str(r#"<p class="note" id="no-sign-in-logs">No sign-in logs: this tenant has no Entra ID P1, so Microsoft does not provide sign-in logs and the protocols in use cannot be measured. Whether legacy authentication is blocked is still checked below.</p>"#),
            }
            s.push_str(&bar_chart(
                "chart-sign-ins-by-protocol",
                "Sign-ins by protocol (last 30 days)",
                &report.charts.sign_ins_by_protocol,
                "Sign-in logs not available (needs Entra ID P1)",
            ));
        }
        Section::Permissions => {
            let _ = write!(
                s,
                r#"<p>Principals holding directory roles: <b>{}</b>; Global Administrators: <b>{}</b>.</p>"#,
                report.inventory.role_holders, report.inventory.global_admins
            );
        }
        Section::Apps => {
            let _ = write!(
                s,
                r#"<p>Service principals: <b>{}</b>, of which third-party: <b>{}</b>.</p>"#,
                report.inventory.apps, report.inventory.third_party_apps
            );
            s.push_str(&bar_chart(
                "chart-apps-by-permission-class",
                "Apps by permission class",
                &report.charts.apps_by_permission_class,
                "No apps read",
            ));
        }
    }
    for n in &sec.not_assessed {
        let _ = write!(
            s,
            r#"<p class="note not-assessed" data-kind="{}"><b>Not assessed: {}.</b> {}</p>"#,
            n.kind.as_str(),
            escape(&n.kind.as_str().replace('_', " ")),
            escape(&n.reason)
        );
    }
    if sec.findings.is_empty() && sec.not_assessed.is_empty() {
        s.push_str(r#"<p class="ok">No findings in this section.</p>"#);
    }
    for k in &sec.findings {
        if let Some(f) = report.finding(*k) {
            s.push_str(&finding_html(f));
        }
    }
    if sec.section == Section::Apps && !report.apps.is_empty() {
        s.push_str(r#"<h3>App inventory by permission class</h3><table id="app-inventory"><thead><tr><th style="width:30%">App</th><th>Publisher</th><th>Permission class</th><th>Consent</th><th>App permissions</th></tr></thead><tbody>"#);
        for a in &report.apps {
            let _ = write!(
                s,
                r#"<tr><td>{}</td><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td></tr>"#,
                escape(&a.name),
                escape(a.publisher.as_deref().unwrap_or("unknown")),
                if a.first_party {
                    " (Microsoft)"
                } else if a.verified {
                    " (verified)"
                } else {
                    " (unverified)"
                },
                escape(&a.permission_class.replace('_', " ")),
                if a.admin_consent {
                    "admin"
                } else if a.delegated_grants > 0 {
                    "user"
                } else {
                    "none"
                },
                a.app_permissions
            );
        }
        s.push_str("</tbody></table>");
    }
    s.push_str("</section>");
    s
}

/// Renders the report.
pub fn render(report: &Report) -> String {
    let t = &report.tenant;
    let name = t.org.as_deref().or(t.domain.as_deref()).unwrap_or(&t.id);
    let mut s = String::with_capacity(64 * 1024);
    let _ = write!(
        s,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>Identity Security Assessment: {}</title><style>{CSS}</style></head><body><main>"#,
        escape(name)
    );
    let _ = write!(
        s,
        r#"<section id="summary"><h1>Identity Security Assessment</h1><p><b>{}</b>{} <span class="muted">tenant {}</span></p><p class="muted small">Generated {} · data as of {} · sign-ins over {} days</p>"#,
        escape(name),
        match (&t.org, &t.domain) {
            (Some(_), Some(d)) => format!(" ({})", escape(d)),
            _ => String::new(),
        },
        escape(&t.id),
        report.generated_at.format("%Y-%m-%d %H:%M UTC"),
        report.coverage.as_of.map_or_else(
            || "unknown".to_string(),
            |a| a.format("%Y-%m-%d %H:%M UTC").to_string()
        ),
        report.coverage.window_days
    );
    let _ = write!(
        s,
        r#"<div class="scores"><div class="score" id="score-overall">Overall<b class="{}">{}</b></div>"#,
        score_class(report.overall_score),
        score_text(report.overall_score)
    );
    for sec in &report.sections {
        let _ = write!(
            s,
            r#"<div class="score" id="score-{}">{}<b class="{}">{}</b><span class="small muted">{} finding(s)</span></div>"#,
            sec.section.as_str(),
            escape(&sec.title),
            score_class(sec.score),
            score_text(sec.score),
            sec.findings.len()
        );
    }
    s.push_str("</div>");
    if report.coverage.sign_ins.is_none() {
        s.push_str(r#"<p class="note">This tenant has no sign-in logs (no Entra ID P1): sign-in based checks are marked "not assessed" and their sections are scored on what could be checked.</p>"#);
    }
    for d in &report.coverage.degraded {
        let _ = write!(
            s,
            r#"<p class="note small">Not read: {} ({}). Missing: {}.</p>"#,
            escape(&d.what),
            escape(&d.reason),
            escape(&d.lost)
        );
    }
    s.push_str(r#"<h2>The five most urgent fixes</h2>"#);
    if report.top_fixes.is_empty() {
        s.push_str(r#"<p class="ok" id="top-fixes">Nothing urgent was found.</p>"#);
    } else {
        s.push_str(r#"<ol class="top" id="top-fixes">"#);
        for k in &report.top_fixes {
            if let Some(f) = report.finding(*k) {
                let _ = write!(
                    s,
                    r##"<li><span class="sev sev-{}">{}</span> <a href="#finding-{}">{}</a>: {}</li>"##,
                    f.severity.caption().to_ascii_lowercase(),
                    f.severity.caption(),
                    f.kind.as_str(),
                    escape(&f.title),
                    escape(&f.fix)
                );
            }
        }
        s.push_str("</ol>");
    }
    if let Some(c) = &report.changes {
        let _ = write!(
            s,
            r#"<h2>Changes since {}</h2><div class="changes" id="changes">"#,
            c.since.format("%Y-%m-%d")
        );
        for (id, label, list) in [
            ("fixed", "Fixed", &c.fixed),
            ("new", "New", &c.new),
            ("still-open", "Still open", &c.still_open),
        ] {
            let _ = write!(
                s,
                r#"<div id="changes-{id}"><h3>{label} ({})</h3><ul>"#,
                list.len()
            );
            for k in list {
                let _ = write!(s, "<li>{}</li>", escape(&kind_title(report, *k)));
            }
            s.push_str("</ul></div>");
        }
        s.push_str("</div>");
    }
    s.push_str("</section>");
    for sec in &report.sections {
        s.push_str(&section_html(report, sec));
    }
    s.push_str(r#"<p class="muted small">Findings are also delivered as OCSF 1.8.0 Compliance Finding events. This report contains no passwords, secrets or message content.</p></main></body></html>"#);
    s
}
