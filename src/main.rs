//! The `teal` binary: everything lives in the library; this only maps the outcome
//! of [`teal::cli::run`] to an exit code.

use std::process::ExitCode;

fn main() -> ExitCode {
    match teal::cli::run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            teal::cli::exit_code(&err)
        }
    }
}
