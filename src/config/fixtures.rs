//! What the config unit tests share: the file every test text pretends to be,
//! a minimal process service, and parsing that must succeed, or fail at a given
//! line:column with a message naming every given piece. Test code only.

use std::path::Path;

use super::{ConfigError, parse};
use crate::spec::Config;

/// The path every test text is parsed as: relative paths resolve against `/srv/app`.
pub(super) const FILE: &str = "/srv/app/teal.toml";

/// A process service, for tests about other keys.
pub(super) const WEB: &str = "[services.web]\ncommand = [\"./app\"]\n";

/// `text` as a valid config; panics with the error otherwise.
#[track_caller]
pub(super) fn ok(text: &str) -> Config {
    parse(text, Path::new(FILE)).unwrap_or_else(|e| panic!("expected a valid config, got: {e}"))
}

/// The error `text` must be refused with; panics with the config otherwise.
#[track_caller]
pub(super) fn err(text: &str) -> ConfigError {
    match parse(text, Path::new(FILE)) {
        Ok(config) => panic!("expected an error, got {config:#?}"),
        Err(e) => e,
    }
}

/// Asserts the error's location and that its message contains every piece.
#[track_caller]
pub(super) fn assert_err(text: &str, line: usize, col: usize, pieces: &[&str]) {
    let e = err(text);
    assert_eq!(e.location, Some((line, col)), "location of: {e}");
    for piece in pieces {
        assert!(e.message.contains(piece), "{piece:?} not in: {e}");
    }
}
