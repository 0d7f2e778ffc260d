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

#[test]
fn serve_log_file_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("teal.toml"),
        format!(
            r#"state_dir = "state"

[proxy]
listen = "127.0.0.1:0"

[services.web]
command = ["{TEAL}", "demo-app", "--port", "{{port}}", "--app-version", "{{version}}", "--boot-delay", "10ms"]

[services.web.health]
interval = "20ms"
"#,
            TEAL = crate::support::TEAL
        ),
    )
    .unwrap();
    let max = 1024;
    let _daemon = Served::spawn(
        dir.path(),
        &["serve", "--log-file", "daemon.log", "--log-max", "1KiB"],
    );
    let log = dir.path().join("daemon.log");
    let previous = dir.path().join("daemon.log.1");
    // Deploys write log lines; the file is moved aside past the bound, and
    // the file moved aside is replaced the next time.
    let mut first_previous = None;
    for n in 0..200 {
        let out = teal(dir.path())
            .args(["deploy", "web", "--version", &format!("1.0.{n}")])
            .output()
            .unwrap();
        if !out.status.success() {
            // The daemon may not be up yet.
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        std::thread::sleep(Duration::from_millis(100));
        let Ok(text) = std::fs::read_to_string(&previous) else {
            continue;
        };
        match &first_previous {
            None => first_previous = Some(text),
            Some(first) if *first != text => break,
            Some(_) => {}
        }
    }
    let first = first_previous.expect("daemon.log was moved aside");
    let now = std::fs::read_to_string(&previous).unwrap();
    assert_ne!(first, now, "daemon.log.1 was replaced, not grown");
    // Past the bound by at most what a second of deploys writes.
    let slack = 64 * 1024;
    for path in [&log, &previous] {
        let len = std::fs::metadata(path).unwrap().len();
        assert!(len <= max + slack, "{} is {len} bytes", path.display());
    }
    assert!(!dir.path().join("daemon.log.2").exists());
    assert!(!std::fs::read(&log).unwrap().contains(&ESC));
}
