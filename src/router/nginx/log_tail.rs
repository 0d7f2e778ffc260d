//! What nginx appended to a log file since a known offset: how a refused start or
//! reload is quoted in nginx's own words.
//!
//! It only reads; where the logs are is the caller's business (`managed.rs`,
//! `apply.rs`).

use std::fs;
use std::path::Path;

/// The length of `path` now (0 when it does not exist): the offset to read from
/// later.
pub(crate) fn file_len(path: &Path) -> u64 {
    fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// The text appended to `path` after `offset`; with `errors_only`, only nginx's
/// `[emerg]`, `[alert]` and `[crit]` lines (the ones that explain a refusal).
pub(crate) fn lines_since(path: &Path, offset: u64, errors_only: bool) -> String {
    let Ok(bytes) = fs::read(path) else {
        return String::new();
    };
    let start = (offset as usize).min(bytes.len());
    let text = String::from_utf8_lossy(&bytes[start..]);
    text.lines()
        .filter(|line| {
            !errors_only
                || ["[emerg]", "[alert]", "[crit]"]
                    .iter()
                    .any(|level| line.contains(level))
        })
        .collect::<Vec<_>>()
        .join("\n")
}
