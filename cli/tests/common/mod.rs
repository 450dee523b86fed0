//! Running the `itdr` binary from the CLI tests.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use std::path::Path;
use std::process::Output;

/// Output bytes as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

/// Runs `itdr --config <config> <args>` in `dir`, off the async runtime, without the caller's
/// `ITDR_CONFIG` and `ITDR_DB`.
pub async fn itdr(dir: &Path, config: &str, args: &[&str]) -> Output {
    let dir = dir.to_path_buf();
    let mut all = vec!["--config".to_string(), config.to_string()];
    all.extend(args.iter().map(|s| (*s).to_string()));
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_itdr"))
            .args(all)
            .current_dir(dir)
            .env_remove("ITDR_CONFIG")
            .env_remove("ITDR_DB")
            .output()
            .expect("itdr runs")
    })
    .await
    .unwrap()
}
