//! Making sure `teal serve` runs on a host (what a hand-written deploy script's "ensure the reverse proxy runs" step does):
//! its config file in the state dir, then under systemd when the host runs it
//! (teal installs its units: a socket unit holding the listening sockets and
//! the service, see `crate::systemd::units`), otherwise detached with a pid
//! file. Either way a new teal on the host takes over in place ([`upgrade`]).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::error::RemoteError;
use super::probe::Facts;
use super::report::Reporter;
use super::shell::quote;
use super::ssh::{Ssh, last_line};
use crate::api::client::Client;
use crate::systemd::units::Units;

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
/// binary takes the sockets, instances and connections). Done for a daemon
/// started detached, whose pid file names it, and for one that is the main
/// process of teal's systemd unit when that unit follows a successor
/// (`NotifyAccess=all`, as teal writes it); None otherwise (a unit written
/// by an older teal): the caller says a restart applies the change.
/// Returns what `teal upgrade` said.
pub async fn upgrade(
    ssh: &Ssh,
    facts: &Facts,
    default_state: bool,
    pid: u32,
) -> Result<Option<String>, RemoteError> {
    let systemctl = if facts.root {
        "systemctl"
    } else {
        "systemctl --user"
    };
    let unit = unit_name(facts, default_state);
    let script = format!(
        r#"cd {state}
if [ "$(cat {PID_FILE} 2>/dev/null)" = "{pid}" ]; then :
elif command -v systemctl >/dev/null 2>&1 \
  && [ "$({systemctl} show -p MainPID --value {unit}.service 2>/dev/null)" = "{pid}" ] \
  && [ "$({systemctl} show -p NotifyAccess --value {unit}.service 2>/dev/null)" = "all" ]; then :
else exit 3; fi
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
    // A detached daemon's pid file names the successor now (systemd
    // learned it from the successor itself).
    ssh.run(
        "recording the new daemon's pid",
        &format!(
            "cd {} && if [ \"$(cat {PID_FILE} 2>/dev/null)\" = \"{pid}\" ]; then echo {new_pid} > {PID_FILE}; fi",
            quote(&facts.state_dir)
        ),
    )
    .await?;
    Ok(Some(format!(
        "teal {from} → {to}, handed over (pid {pid} → {new_pid})"
    )))
}

/// The name of teal's systemd units on a host: `teal` for the default state
/// dir, else one per state dir.
fn unit_name(facts: &Facts, default_state: bool) -> String {
    if default_state {
        "teal".to_string()
    } else {
        format!("teal-{}", &short_hash(&facts.state_dir))
    }
}

/// Starts `teal serve` and waits until `client` (its forwarded control socket)
/// answers. Under systemd, its socket unit holds `listen` (none with the
/// nginx router, which binds its own).
pub async fn start(
    ssh: &Ssh,
    facts: &Facts,
    default_state: bool,
    listen: &[SocketAddr],
    client: &Client,
    reporter: &dyn Reporter,
) -> Result<Supervisor, RemoteError> {
    let host = ssh.name();
    let mut supervisor = Supervisor::Detached;
    if facts.systemd {
        let unit = unit_name(facts, default_state);
        let user = !facts.root;
        let units = units(facts, &unit, listen, user);
        let out = ssh.output(&systemd_script(&units)).await?;
        if out.status.success() {
            let socket = if listen.is_empty() {
                String::new()
            } else {
                format!(" (its sockets held by {unit}.socket)")
            };
            reporter.note(
                host,
                &format!("started teal serve as systemd unit {unit}.service{socket}"),
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

/// Starts the daemon in its own session, output appended to the log (which
/// `--log-file` bounds; the shell's redirection catches what comes before), unless the
/// pid file names a live process (then the flock on the state dir would refuse a
/// second one anyway).
fn detached_script(facts: &Facts) -> String {
    format!(
        r#"set -e
cd {state}
if [ -f {PID_FILE} ] && kill -0 "$(cat {PID_FILE})" 2>/dev/null; then exit 0; fi
if command -v setsid >/dev/null 2>&1; then
  setsid {teal} serve --config {config} --log-file {LOG_FILE} </dev/null >>{LOG_FILE} 2>&1 &
else
  nohup {teal} serve --config {config} --log-file {LOG_FILE} </dev/null >>{LOG_FILE} 2>&1 &
fi
echo $! > {PID_FILE}
"#,
        state = quote(&facts.state_dir),
        teal = quote(&facts.teal),
        config = quote(&format!("{}/{CONFIG_FILE}", facts.state_dir)),
    )
}

/// The units teal runs under on a host: its config is in the state dir.
fn units(facts: &Facts, name: &str, listen: &[SocketAddr], user: bool) -> Units {
    Units {
        name: name.to_string(),
        teal: PathBuf::from(&facts.teal),
        config: PathBuf::from(format!("{}/{CONFIG_FILE}", facts.state_dir)),
        state_dir: PathBuf::from(&facts.state_dir),
        listen: listen.to_vec(),
        user,
    }
}

/// Installs the units and starts them (the socket first: the service needs it).
fn systemd_script(units: &Units) -> String {
    let (dir, systemctl) = if units.user {
        ("$HOME/.config/systemd/user", "systemctl --user")
    } else {
        ("/etc/systemd/system", "systemctl")
    };
    let mut files = vec![(units.service_file(), units.service())];
    if !units.listen.is_empty() {
        files.insert(0, (units.socket_file(), units.socket()));
    }
    let mut script = format!("set -e\ndir=\"{dir}\"\nmkdir -p \"$dir\"\n");
    for (file, text) in &files {
        script.push_str(&format!(
            "cat > \"$dir/{file}.new\" <<'TEAL_UNIT_END'\n{text}TEAL_UNIT_END\nmv -f \"$dir/{file}.new\" \"$dir/{file}\"\n"
        ));
    }
    let names: Vec<&str> = files.iter().map(|(file, _)| file.as_str()).collect();
    let names = names.join(" ");
    script.push_str(&format!(
        "{systemctl} daemon-reload\n{systemctl} enable {names} >/dev/null 2>&1 || true\n{systemctl} start {names}\n"
    ));
    if units.user {
        script.push_str("loginctl enable-linger \"$(id -un)\" >/dev/null 2>&1 || true\n");
    }
    script
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
    fn the_units_run_teal_serve_on_its_sockets_in_the_state_dir() {
        let f = facts(std::path::Path::new("/srv/teal"));
        let listen = ["0.0.0.0:80".parse().unwrap()];
        let script = systemd_script(&units(&f, "teal", &listen, false));
        assert!(
            script.contains("ExecStart=\"/bin/sleep\" serve --config \"/srv/teal/serve.toml\"")
        );
        assert!(script.contains("WorkingDirectory=/srv/teal\n"));
        assert!(script.contains("ListenStream=0.0.0.0:80\n"));
        assert!(script.contains("systemctl start teal.socket teal.service\n"));
        assert_eq!(short_hash("/srv/teal").len(), 8);
        // The nginx router binds its own sockets: no socket unit.
        let script = systemd_script(&units(&f, "teal", &[], true));
        assert!(!script.contains("teal.socket"));
        assert!(script.contains("systemctl --user start teal.service\n"));
    }
}
