//! The `teal` binary: everything lives in the library; this only maps the outcome
//! of [`teal::cli::run`] to an exit code (`cli::fail` says the error, once, or
//! nothing for a closed stdout).

use std::process::ExitCode;

fn main() -> ExitCode {
    match teal::cli::run() {
        Ok(code) => code,
        Err(err) => teal::cli::fail(&err),
    }
}
