//! Making sure `teal serve` runs on a host (what a hand-written deploy script's "ensure the reverse proxy runs" step does):
//! its config file in the state dir, then under systemd when the host runs it
//! (teal installs the unit), otherwise detached with a pid file.

use std::time::{Duration, Instant};

use super::error::RemoteError;
use super::probe::Facts;
use super::report::Reporter;
use super::shell::quote;
use super::ssh::{Ssh, last_line};
use crate::api::client::Client;

/// The daemon's config file, in its state dir.
pub const CONFIG_FILE: &str = "serve.toml";
/// A detached daemon's pid file and output, in its state dir.
pub const PID_FILE: &str = "serve.pid";
pub const LOG_FILE: &str = "serve.log";
/// How long a starting daemon may take to answer: it brings back the live
/// version of every service, health-gated, before it opens its control socket.
const START_WAIT: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(200);
/// How often, while waiting, teal checks the daemon is still alive.
const ALIVE_CHECK: Duration = Duration::from_secs(2);

/// How the daemon on a host is kept running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Supervisor {
    Systemd { unit: String, user: bool },
    Detached,
}

/// Writes the daemon's config; true when it changed.
pub async fn write_config(ssh: &Ssh, facts: &Facts, text: &str) -> Result<bool, RemoteError> {
    let script = format!(
        r#"set -e
umask 077
state={state}
mkdir -p "$state"
cat > "$state/{CONFIG_FILE}.new"
if cmp -s "$state/{CONFIG_FILE}.new" "$state/{CONFIG_FILE}"; then
  rm -f "$state/{CONFIG_FILE}.new"; echo same
else
  mv -f "$state/{CONFIG_FILE}.new" "$state/{CONFIG_FILE}"; echo changed
fi
"#,
        state = quote(&facts.state_dir)
    );
    let out = ssh.feed(&script, text.as_bytes(), |_| {}).await?;
    if !out.status.success() {
        return Err(RemoteError::host(
            ssh.name(),
            format!(
                "writing {}/{CONFIG_FILE} failed: {}",
                facts.state_dir,
                last_line(&out)
            ),
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim() == "changed")
}

/// Hands the running daemon (`pid`, from its ping) over to the teal now
/// installed on the host, in place (`teal upgrade` there: SIGUSR2, the new
/// binary takes the sockets, instances and connections). Done only for a
/// daemon started detached, whose pid file names it; None otherwise (a
/// systemd unit would not follow the new main pid yet): the caller says a
/// restart applies the change. Returns what `teal upgrade` said.
pub async fn upgrade(ssh: &Ssh, facts: &Facts, pid: u32) -> Result<Option<String>, RemoteError> {
    let script = format!(
        r#"cd {state}
[ "$(cat {PID_FILE} 2>/dev/null)" = "{pid}" ] || exit 3
{teal} --config {config} upgrade --json
"#,
        state = quote(&facts.state_dir),
        teal = quote(&facts.teal),
        config = quote(&format!("{}/{CONFIG_FILE}", facts.state_dir)),
    );
    let out = ssh.output(&script).await?;
    if out.status.code() == Some(3) {
        return Ok(None);
    }
    if !out.status.success() {
        return Err(RemoteError::host(
            ssh.name(),
            format!("upgrading teal serve in place failed: {}", last_line(&out)),
        ));
    }
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        RemoteError::host(
            ssh.name(),
            format!("`teal upgrade` said something unexpected: {e}"),
        )
    })?;
    let side = |which: &str| {
        let daemon = &report[which];
        (
            daemon["version"].as_str().unwrap_or("?").to_string(),
            daemon["pid"].as_u64().unwrap_or(0),
        )
    };
    let ((from, _), (to, new_pid)) = (side("from"), side("to"));
    ssh.run(
        "recording the new daemon's pid",
        &format!(
            "cd {} && echo {new_pid} > {PID_FILE}",
            quote(&facts.state_dir)
        ),
    )
    .await?;
    Ok(Some(format!(
        "teal {from} → {to}, handed over (pid {pid} → {new_pid})"
    )))
}

/// Starts `teal serve` and waits until `client` (its forwarded control socket)
/// answers.
pub async fn start(
    ssh: &Ssh,
    facts: &Facts,
    default_state: bool,
    client: &Client,
    reporter: &dyn Reporter,
) -> Result<Supervisor, RemoteError> {
    let host = ssh.name();
    let mut supervisor = Supervisor::Detached;
    if facts.systemd {
        let unit = if default_state {
            "teal".to_string()
        } else {
            format!("teal-{}", &short_hash(&facts.state_dir))
        };
        let user = !facts.root;
        let out = ssh
            .feed(
                &systemd_script(&unit, user),
                unit_file(facts, user).as_bytes(),
                |_| {},
            )
            .await?;
        if out.status.success() {
            reporter.note(
                host,
                &format!("started teal serve as systemd unit {unit}.service"),
            );
            supervisor = Supervisor::Systemd { unit, user };
        } else {
            reporter.note(
                host,
                &format!(
                    "systemd did not take the unit ({}); starting teal serve detached instead",
                    last_line(&out)
                ),
            );
        }
    }
    if supervisor == Supervisor::Detached {
        ssh.run("starting teal serve", &detached_script(facts))
            .await?;
        reporter.note(
            host,
            &format!(
                "started teal serve detached (pid in {}/{PID_FILE}, output in {LOG_FILE})",
                facts.state_dir
            ),
        );
    }
    wait_ready(ssh, facts, &supervisor, client).await?;
    Ok(supervisor)
}

/// Polls the control socket until it answers, checking the daemon is alive.
async fn wait_ready(
    ssh: &Ssh,
    facts: &Facts,
    supervisor: &Supervisor,
    client: &Client,
) -> Result<(), RemoteError> {
    let started = Instant::now();
    let mut last_check = Instant::now();
    loop {
        if client.ping().await.is_ok() {
            return Ok(());
        }
        if started.elapsed() > START_WAIT {
            return Err(RemoteError::host(
                ssh.name(),
                format!(
                    "teal serve did not open its control socket within {}s (see {})",
                    START_WAIT.as_secs(),
                    log_hint(facts, supervisor)
                ),
            ));
        }
        if last_check.elapsed() >= ALIVE_CHECK {
            last_check = Instant::now();
            let out = ssh.output(&alive_script(facts, supervisor)).await?;
            if !out.status.success() {
                return Err(RemoteError::host(
                    ssh.name(),
                    format!(
                        "teal serve exited right after it started: {}",
                        last_line(&out)
                    ),
                ));
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

fn log_hint(facts: &Facts, supervisor: &Supervisor) -> String {
    match supervisor {
        Supervisor::Systemd { unit, user: true } => format!("journalctl --user -u {unit}"),
        Supervisor::Systemd { unit, user: false } => format!("journalctl -u {unit}"),
        Supervisor::Detached => format!("{}/{LOG_FILE}", facts.state_dir),
    }
}

/// Exits 0 while the daemon runs; otherwise prints the end of its output.
fn alive_script(facts: &Facts, supervisor: &Supervisor) -> String {
    match supervisor {
        Supervisor::Systemd { unit, user } => {
            let flag = if *user { " --user" } else { "" };
            format!(
                "systemctl{flag} is-active --quiet {unit} || {{ journalctl{flag} -u {unit} -n 5 --no-pager >&2; exit 1; }}"
            )
        }
        Supervisor::Detached => format!(
            "cd {} && kill -0 \"$(cat {PID_FILE})\" 2>/dev/null || {{ tail -n 5 {LOG_FILE} >&2; exit 1; }}",
            quote(&facts.state_dir)
        ),
    }
}

/// Starts the daemon in its own session, output appended to the log, unless the
/// pid file names a live process (then the flock on the state dir would refuse a
/// second one anyway).
fn detached_script(facts: &Facts) -> String {
    format!(
        r#"set -e
cd {state}
if [ -f {PID_FILE} ] && kill -0 "$(cat {PID_FILE})" 2>/dev/null; then exit 0; fi
if command -v setsid >/dev/null 2>&1; then
  setsid {teal} serve --config {config} </dev/null >>{LOG_FILE} 2>&1 &
else
  nohup {teal} serve --config {config} </dev/null >>{LOG_FILE} 2>&1 &
fi
echo $! > {PID_FILE}
"#,
        state = quote(&facts.state_dir),
        teal = quote(&facts.teal),
        config = quote(&format!("{}/{CONFIG_FILE}", facts.state_dir)),
    )
}

/// Installs the unit (from stdin) and starts it.
fn systemd_script(unit: &str, user: bool) -> String {
    if user {
        format!(
            r#"set -e
dir="$HOME/.config/systemd/user"
mkdir -p "$dir"
cat > "$dir/{unit}.service.new"
mv -f "$dir/{unit}.service.new" "$dir/{unit}.service"
systemctl --user daemon-reload
systemctl --user enable {unit} >/dev/null 2>&1 || true
systemctl --user start {unit}
loginctl enable-linger "$(id -un)" >/dev/null 2>&1 || true
"#
        )
    } else {
        format!(
            r#"set -e
cat > /etc/systemd/system/{unit}.service.new
mv -f /etc/systemd/system/{unit}.service.new /etc/systemd/system/{unit}.service
systemctl daemon-reload
systemctl enable {unit} >/dev/null 2>&1 || true
systemctl start {unit}
"#
        )
    }
}

fn unit_file(facts: &Facts, user: bool) -> String {
    let target = if user {
        "default.target"
    } else {
        "multi-user.target"
    };
    format!(
        r#"# Installed by teal; changes are overwritten on the next deploy.
[Unit]
Description=teal: zero-downtime blue-green deploys (state in {state})
After=network-online.target docker.service
Wants=network-online.target

[Service]
ExecStart="{teal}" serve --config "{state}/{CONFIG_FILE}"
WorkingDirectory={state}
Restart=on-failure
RestartSec=2
# SIGTERM to teal alone: live instances outlive it (the next start adopts them),
# and it stops the others itself.
KillMode=process
TimeoutStopSec=90

[Install]
WantedBy={target}
"#,
        teal = facts.teal,
        state = facts.state_dir,
    )
}

fn short_hash(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes())
        .iter()
        .take(4)
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(dir: &std::path::Path) -> Facts {
        Facts {
            arch: "x86_64".into(),
            root: false,
            teal: "/bin/sleep".into(),
            state_dir: dir.to_str().unwrap().into(),
            systemd: false,
            docker: false,
            teal_sha256: None,
        }
    }

    /// The detached start, run in a local shell: a pid file naming a live
    /// process, and no second start while it lives.
    #[test]
    fn the_detached_script_starts_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = facts(dir.path());
        // `sleep serve --config X` fails at once; a wrapper script stands in.
        let teal = dir.path().join("teal");
        std::fs::write(&teal, "#!/bin/sh\nexec sleep 30\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&teal, std::fs::Permissions::from_mode(0o755)).unwrap();
        f.teal = teal.to_str().unwrap().into();
        let run = |script: String| {
            std::process::Command::new("sh")
                .arg("-c")
                .arg(script)
                .status()
                .unwrap()
        };
        assert!(run(detached_script(&f)).success());
        let pid = std::fs::read_to_string(dir.path().join(PID_FILE)).unwrap();
        assert!(run(alive_script(&f, &Supervisor::Detached)).success());
        assert!(run(detached_script(&f)).success());
        assert_eq!(
            std::fs::read_to_string(dir.path().join(PID_FILE)).unwrap(),
            pid
        );
        let pid: i32 = pid.trim().parse().unwrap();
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }

    #[test]
    fn the_unit_runs_teal_serve_in_the_state_dir() {
        let f = facts(std::path::Path::new("/srv/teal"));
        let unit = unit_file(&f, false);
        assert!(unit.contains("ExecStart=\"/bin/sleep\" serve --config \"/srv/teal/serve.toml\""));
        assert!(unit.contains("WantedBy=multi-user.target"));
        assert_eq!(short_hash("/srv/teal").len(), 8);
    }
}
