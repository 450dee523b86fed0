//! The CLI's TOML configuration (`cli/src/config.rs`, compiled into this target as it is):
//! `RunConfig::load` (parse + validate).
//!
//! Input: a TOML file.
//!
//! Properties:
//! - never panics, whatever the file;
//! - errors never quote the file's values: when the input parses as TOML, every string
//!   value in it is marked with a canary and the marked file is loaded again; no error
//!   (with its whole chain) shows the mark. Errors may name keys (e.g. `[apps.NAME]`).
#![no_main]
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

#[path = "../../cli/src/config.rs"]
mod config;

const CANARY: &str = "CANARYzq7";

fn scratch() -> &'static PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        std::env::temp_dir().join(format!("itdr-fuzz-config-{}.toml", std::process::id()))
    })
}

fn load(text: &str) -> anyhow::Result<config::RunConfig> {
    std::fs::write(scratch(), text)?;
    config::RunConfig::load(scratch())
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = load(text) {
        // Errors never carry the TOML source line that toml's `Display` quotes.
        let shown = format!("{e:#}");
        assert!(!shown.contains("\n  |"), "a source excerpt in {shown:?}");
    }
    let Ok(mut table) = text.parse::<toml::Table>() else {
        return;
    };
    table.iter_mut().for_each(|(_, v)| mark(v));
    let Ok(marked) = toml::to_string(&table) else {
        return;
    };
    if let Err(e) = load(&marked) {
        let shown = format!("{e:#} {e:?}");
        assert!(
            !shown.contains(CANARY),
            "a config value in the error: {shown:?}\n--- config ---\n{marked}"
        );
    }
});

/// Puts the canary into every string value (keys stay).
fn mark(v: &mut toml::Value) {
    match v {
        toml::Value::String(s) => s.push_str(CANARY),
        toml::Value::Array(a) => a.iter_mut().for_each(mark),
        toml::Value::Table(t) => t.iter_mut().for_each(|(_, v)| mark(v)),
        _ => {}
    }
}
