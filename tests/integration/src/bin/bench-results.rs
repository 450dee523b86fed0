//! `cargo run -p itdr-integration-tests --bin bench-results [DIR]`: the last step of
//! `make bench`. Merges every `DIR/bench-*.json` (default: the workspace's `target/`) into
//! `DIR/bench-results.json`, adds the cost model's figure, and prints one table: figure,
//! value, unit, target, met. Missing figures are shown as missing; a bench file that is not
//! valid JSON is named and the others still merge.

use std::path::PathBuf;
use std::process::ExitCode;

use itdr_integration_tests::bench_results::{
    Figure, RESULTS_FILE, apply_targets, expected, merge, results_json, rows, table,
};
use itdr_integration_tests::cost::{Breakdown, COST_FIGURE, Inputs, Source, US_EAST_1};

fn main() -> ExitCode {
    let dir = std::env::args_os().nth(1).map_or_else(
        || {
            std::env::var_os("CARGO_TARGET_DIR").map_or_else(
                || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
                PathBuf::from,
            )
        },
        PathBuf::from,
    );
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    let mut merged = merge(&dir);
    if merged.get(COST_FIGURE).is_none() {
        let (inputs, source) = Inputs::from_figures(&merged);
        let b = Breakdown::of(&inputs, &US_EAST_1);
        print!("{}", b.describe(&inputs, &source));
        let command = match source {
            Source::Fleet(n) => format!(
                "cargo run -p itdr-integration-tests --bin bench-results (docs/COST.md over fleet.{n}.* of {RESULTS_FILE})"
            ),
            Source::Assumed => format!(
                "cargo run -p itdr-integration-tests --bin bench-results (docs/COST.md; no fleet figures in {RESULTS_FILE}: assumed counts)"
            ),
        };
        merged.figures.push(Figure {
            name: COST_FIGURE.to_string(),
            value: (b.total() * 100.0).round() / 100.0,
            unit: "USD/month".to_string(),
            command,
            target: None,
            meets: None,
            file: "cost model".to_string(),
        });
    }
    let exp = expected();
    apply_targets(&mut merged, &exp);
    print!("{}", table(&rows(&merged, &exp), &merged.problems));
    let out = dir.join(RESULTS_FILE);
    let text = match serde_json::to_string_pretty(&results_json(&merged)) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("cannot encode the results: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = std::fs::write(&out, text) {
        eprintln!("cannot write {}: {}", out.display(), e.kind());
        return ExitCode::FAILURE;
    }
    println!(
        "{} figures from {} files written to {}",
        merged.figures.len(),
        merged.files.len(),
        out.display()
    );
    ExitCode::SUCCESS
}
