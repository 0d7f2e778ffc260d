//! The `teal.toml` loader (`teal::config::parse_remote`, what `teal` runs on
//! every config): any text. It must answer, never panic; an error names the
//! file, and its line and column lie inside the text; the same text gets the
//! same verdict twice.

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/fuzz/teal.toml");
    let first = teal::config::parse_remote(text, path);
    if let Err(error) = &first {
        assert_eq!(error.path, path);
        assert!(error.to_string().starts_with("/fuzz/teal.toml"));
        if let Some((line, column)) = error.location {
            assert!(line >= 1 && column >= 1, "{line}:{column}");
            assert!(line <= text.split('\n').count(), "line {line} of {text:?}");
        }
    }
    let second = teal::config::parse_remote(text, path);
    assert_eq!(first.is_ok(), second.is_ok());
    if let (Err(a), Err(b)) = (&first, &second) {
        assert_eq!(a.to_string(), b.to_string());
    }
});
