//! What the binary writes, as a user sees it: colour only on a terminal (and
//! never with `NO_COLOR`), and help text in plain words.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::eventually;
use crate::support::served::{Served, teal};

const ESC: u8 = 0x1b;

fn write_config(dir: &Path) {
    std::fs::write(
        dir.join("teal.toml"),
        "state_dir = \"state\"\n\n[proxy]\nlisten = \"127.0.0.1:0\"\n",
    )
    .unwrap();
}

/// `teal serve` on a terminal (a pty made by util-linux `script`), stopped by
/// SIGINT after a while; everything it wrote to the terminal.
fn serve_on_a_terminal(dir: &Path, no_color: Option<&str>) -> String {
    let teal = teal(dir).get_program().to_owned();
    let mut cmd = Command::new("script");
    cmd.current_dir(dir)
        .env_remove("TEAL_CONFIG")
        .env_remove("TEAL_SOCKET")
        .env_remove("NO_COLOR")
        .env("RUST_LOG", "info")
        .args(["-qefc"])
        .arg(format!(
            "timeout -s INT 6 '{}' serve",
            teal.to_string_lossy()
        ))
        .arg("/dev/null");
    if let Some(value) = no_color {
        cmd.env("NO_COLOR", value);
    }
    let out = cmd.output().expect("util-linux script runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_writes_no_colour_codes_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let mut daemon = Served::start(dir.path()).await;
    let log = dir.path().join("serve.log");
    let wrote = eventually(Duration::from_secs(30), async || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("INFO"))
    })
    .await;
    assert!(daemon.terminate().success());
    let bytes = std::fs::read(&log).unwrap();
    assert!(wrote, "serve.log has log lines");
    assert!(
        !bytes.contains(&ESC),
        "no escape codes in a file: {}",
        String::from_utf8_lossy(&bytes)
    );
}

#[test]
fn serve_colours_a_terminal_unless_no_color() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let coloured = serve_on_a_terminal(dir.path(), None);
    assert!(
        coloured.contains("INFO"),
        "log lines on the terminal: {coloured}"
    );
    assert!(
        coloured.contains("\u{1b}["),
        "a terminal gets colour: {coloured}"
    );

    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path());
    let plain = serve_on_a_terminal(dir.path(), Some("1"));
    assert!(plain.contains("INFO"), "log lines on the terminal: {plain}");
    assert!(
        !plain.as_bytes().contains(&ESC),
        "NO_COLOR=1 means no colour: {plain}"
    );
}

#[test]
fn help_says_what_the_demo_is() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["--help"][..],
        &["demo", "--help"][..],
        &["help", "demo"][..],
    ] {
        let out = teal(dir.path()).args(args).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "teal {args:?}");
        assert!(!text.contains("seeds"), "teal {args:?}: {text}");
        assert!(
            text.contains("blue-green walk-through"),
            "teal {args:?}: {text}"
        );
    }
}
