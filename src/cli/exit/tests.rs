//! What the CLI says for an error: each cause once, and nothing for a closed
//! stdout (regressions: `teal status` with no daemon said "No such file or
//! directory" twice; `teal history --json | head -1` panicked on a broken pipe).

use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::PathBuf;

use nix::libc;

use super::*;
use crate::daemon::DaemonError;
use crate::deploy::DeployError;
use crate::hooks::HookError;
use crate::router::RouterError;
use crate::runtime::RuntimeError;
use crate::spec::HookPoint;
use crate::state::StateError;

fn os_error(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

fn times(text: &str, part: &str) -> usize {
    text.matches(part).count()
}

#[test]
fn no_daemon_says_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let client = crate::api::client::Client::new(&dir.path().join("teal.sock"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let err = anyhow::Error::from(rt.block_on(client.status(None)).unwrap_err());

    let text = message(&err);
    let cause = os_error(libc::ENOENT).to_string();
    assert_eq!(times(&text, &cause), 1, "{text}");
    assert!(
        text.starts_with("error: cannot reach the teal daemon at "),
        "{text}"
    );
    assert!(text.contains("is `teal serve` running"), "{text}");
    assert_eq!(exit_code(&err), ExitCode::from(UNREACHABLE));

    let err = err.context("asking for the status");
    let text = message(&err);
    assert_eq!(times(&text, &cause), 1, "{text}");
    assert!(
        text.starts_with("error: asking for the status: cannot reach"),
        "{text}"
    );
}

#[test]
fn every_cause_is_said_once() {
    let addr: SocketAddr = "127.0.0.1:8080".parse().unwrap();
    let path = PathBuf::from("/srv/teal/state.json");
    let in_use = || RouterError::Bind {
        addr,
        cause: os_error(libc::EADDRINUSE),
        hint: "; nginx (pid 7) listens there".into(),
    };
    let denied = || os_error(libc::EACCES);
    let cases: Vec<(anyhow::Error, io::Error)> = vec![
        (
            DaemonError::Control {
                path: path.clone(),
                error: os_error(libc::EADDRINUSE),
            }
            .into(),
            os_error(libc::EADDRINUSE),
        ),
        (
            DaemonError::from(in_use()).into(),
            os_error(libc::EADDRINUSE),
        ),
        (
            DaemonError::from(StateError::Io {
                path: path.clone(),
                error: denied(),
            })
            .into(),
            denied(),
        ),
        (
            DeployError::Start(RuntimeError::Io {
                what: "finding a free loopback port".into(),
                error: denied(),
            })
            .into(),
            denied(),
        ),
        (
            DeployError::Hook {
                point: HookPoint::PreDeploy,
                error: HookError::Spawn {
                    program: "./migrate".into(),
                    error: denied(),
                },
            }
            .into(),
            denied(),
        ),
        (
            DeployError::SwitchBackFailed {
                reason: "verify failed".into(),
                version: "1.0.0".into(),
                error: Box::new(DeployError::Route(in_use())),
            }
            .into(),
            os_error(libc::EADDRINUSE),
        ),
        (
            DeployError::State(StateError::Io {
                path,
                error: denied(),
            })
            .into(),
            denied(),
        ),
    ];
    for (err, cause) in cases {
        let text = message(&err.context("while testing"));
        assert_eq!(times(&text, &cause.to_string()), 1, "{text}");
    }
}

#[test]
fn a_closed_stdout_is_a_quiet_success() {
    let (reader, mut writer) = io::pipe().unwrap();
    drop(reader);
    let closed = writeln!(writer, "{{}}").unwrap_err();
    let err = anyhow::Error::from(closed).context("printing the history");
    assert!(is_broken_pipe(&err));
    assert_eq!(exit_code(&err), ExitCode::SUCCESS);
}

#[test]
fn only_a_broken_pipe_in_the_chain_is_a_closed_stdout() {
    let pipe = || io::Error::from(io::ErrorKind::BrokenPipe);
    assert!(is_broken_pipe(&anyhow::Error::from(pipe())));
    assert!(!is_broken_pipe(&anyhow::Error::from(io::Error::from(
        io::ErrorKind::NotFound
    ))));
    assert!(!is_broken_pipe(&anyhow::anyhow!("broken pipe")));
    // The daemon's connection breaking is said in a typed message, not a
    // closed stdout: it still fails loudly.
    let lost = ClientError::Unreachable {
        path: PathBuf::from("/run/teal.sock"),
        error: pipe(),
    };
    let lost = anyhow::Error::from(lost);
    assert!(!is_broken_pipe(&lost));
    assert_eq!(exit_code(&lost), ExitCode::from(UNREACHABLE));
}
