//! What teal needs to know about a host before it touches it, found with one
//! command: machine, user, where teal and its state live, whether systemd runs,
//! whether docker is there, and the sha256 of the installed teal.

use super::error::RemoteError;
use super::shell;
use super::ssh::Ssh;

/// The facts of one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// `uname -m`.
    pub arch: String,
    pub root: bool,
    /// Absolute path of the teal binary (installed or to install).
    pub teal: String,
    /// Absolute state dir of the host's daemon.
    pub state_dir: String,
    /// systemd is the init system and `systemctl` exists.
    pub systemd: bool,
    /// The docker engine's socket or CLI is there.
    pub docker: bool,
    /// sha256 of the installed teal: None when there is none, Some("") when it
    /// exists but `sha256sum` is missing (so it cannot be compared).
    pub teal_sha256: Option<String>,
}

/// The probe script. `state_dir` is the override from `[hosts."NAME"]`, if any.
pub fn script(teal_path: &str, state_dir: Option<&str>) -> String {
    let state = match state_dir {
        Some(dir) => format!("state={}", shell::path(dir)),
        None => "if [ \"$(id -u)\" = 0 ]; then state=/var/lib/teal; else state=\"$HOME/.local/state/teal\"; fi".to_string(),
    };
    format!(
        r#"teal={teal}
{state}
echo "arch=$(uname -m)"
echo "uid=$(id -u)"
echo "teal=$teal"
echo "state=$state"
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then echo systemd=1; else echo systemd=0; fi
if [ -S /var/run/docker.sock ] || [ -n "$DOCKER_HOST" ] || command -v docker >/dev/null 2>&1; then echo docker=1; else echo docker=0; fi
if [ -f "$teal" ]; then
  if command -v sha256sum >/dev/null 2>&1; then echo "sha256=$(sha256sum "$teal" | cut -d' ' -f1)"; else echo sha256=; fi
fi
"#,
        teal = shell::path(teal_path),
    )
}

pub async fn run(
    ssh: &Ssh,
    teal_path: &str,
    state_dir: Option<&str>,
) -> Result<Facts, RemoteError> {
    let out = ssh
        .run(
            "looking around (uname, id, sha256sum)",
            &script(teal_path, state_dir),
        )
        .await?;
    parse(&out).ok_or_else(|| {
        RemoteError::host(
            ssh.name(),
            format!("unexpected answer from the host's shell (is it a POSIX sh?): {out:?}"),
        )
    })
}

fn parse(out: &str) -> Option<Facts> {
    let get = |key: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(str::to_string)
    };
    let teal = get("teal")?;
    let state_dir = get("state")?;
    if !teal.starts_with('/') || !state_dir.starts_with('/') {
        return None;
    }
    Some(Facts {
        arch: get("arch")?,
        root: get("uid")? == "0",
        teal,
        state_dir,
        systemd: get("systemd")? == "1",
        docker: get("docker")? == "1",
        teal_sha256: get("sha256"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_runs_in_a_local_shell() {
        let dir = tempfile::tempdir().unwrap();
        let teal = dir.path().join("teal");
        std::fs::write(&teal, "#!/bin/sh\n").unwrap();
        let state = dir.path().join("state");
        let text = script(teal.to_str().unwrap(), Some(state.to_str().unwrap()));
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&text)
            .output()
            .unwrap();
        let facts = parse(&String::from_utf8_lossy(&out.stdout)).expect("parses");
        assert_eq!(facts.arch, std::env::consts::ARCH);
        assert_eq!(facts.teal, teal.to_str().unwrap());
        assert_eq!(facts.state_dir, state.to_str().unwrap());
        assert_eq!(
            facts.teal_sha256.as_deref(),
            Some("a8076d3d28d21e02012b20eaf7dbf75409a6277134439025f282e368e3305abf")
        );

        let text = script("~/nowhere/teal", None);
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&text)
            .output()
            .unwrap();
        let facts = parse(&String::from_utf8_lossy(&out.stdout)).expect("parses");
        let home = std::env::var("HOME").unwrap();
        assert_eq!(facts.teal, format!("{home}/nowhere/teal"));
        assert_eq!(facts.teal_sha256, None);
        let expected = if facts.root {
            "/var/lib/teal".to_string()
        } else {
            format!("{home}/.local/state/teal")
        };
        assert_eq!(facts.state_dir, expected);
    }
}
