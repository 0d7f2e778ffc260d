//! Real sshd "hosts" for the remote tests, all on this machine.
//!
//! A [`Lab`] generates, in a temp dir, a client key pair, one sshd per host (its
//! own host key, config, loopback port, `StrictModes no`, `UsePAM no`), a
//! known_hosts file with their keys and an ssh config with an alias per host,
//! which teal is pointed at with `[ssh] config`; the user's own ssh files are
//! never read or changed. Each host gets its own teal state dir and teal path
//! under the lab. Dropping the lab stops the teal daemons that were started on
//! the hosts (by their pid files), the instances they left running, and the sshds.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::{TEAL, alive, require};

const SSHD: &str = "/usr/sbin/sshd";

/// One sshd playing a host.
pub struct SshHost {
    /// Its alias in the lab's ssh config.
    pub name: String,
    pub port: u16,
    /// Where teal keeps this host's state.
    pub state_dir: PathBuf,
    /// Where teal is installed on this host.
    pub teal_path: PathBuf,
    sshd: Child,
}

impl SshHost {
    /// The teal daemon's pid, while it runs detached.
    pub fn daemon_pid(&self) -> Option<i32> {
        let text = std::fs::read_to_string(self.state_dir.join("serve.pid")).ok()?;
        let pid: i32 = text.trim().parse().ok()?;
        alive(pid).then_some(pid)
    }

    /// The daemon's control socket (the tests reach it directly: same machine).
    pub fn control(&self) -> PathBuf {
        self.state_dir.join("teal.sock")
    }

    /// Stops the teal daemon started on this host, waiting (bounded) for it to
    /// end, and the process instances it left running (live ones outlive it).
    pub fn stop_daemon(&self) {
        self.stop_daemon_only();
        let _ = teal::runtime::process::stop_recorded(&self.state_dir, Duration::from_secs(5));
    }

    fn stop_daemon_only(&self) {
        let Some(pid) = self.daemon_pid() else {
            return;
        };
        let pid_ = nix::unistd::Pid::from_raw(pid);
        let _ = nix::sys::signal::kill(pid_, nix::sys::signal::Signal::SIGTERM);
        let start = Instant::now();
        while alive(pid) && start.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(50));
        }
        if alive(pid) {
            let _ = nix::sys::signal::kill(pid_, nix::sys::signal::Signal::SIGKILL);
        }
    }
}

/// Client keys, known_hosts, ssh config and the hosts.
pub struct Lab {
    pub dir: tempfile::TempDir,
    pub hosts: Vec<SshHost>,
    pub ssh_config: PathBuf,
}

impl Lab {
    /// Starts one sshd per name; None (after a loud skip) when sshd cannot run
    /// here outside CI. In CI a missing sshd fails the test.
    pub fn start(names: &[&str]) -> Option<Lab> {
        Lab::start_with(names, &[])
    }

    /// Like [`Lab::start`], with extra sshd_config lines for some hosts, as
    /// (name, lines): e.g. `SetEnv DOCKER_HOST=...` gives every command and the
    /// daemon teal starts on that host another Docker engine.
    pub fn start_with(names: &[&str], sshd_extra: &[(&str, &str)]) -> Option<Lab> {
        if !require("sshd (openssh-server)", Path::new(SSHD).exists()) {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("teal-lab-")
            .tempdir()
            .unwrap();
        let root = dir.path().to_path_buf();
        if nix::unistd::getuid().is_root() {
            // sshd's privilege separation directory (the Debian package makes it at boot).
            std::fs::create_dir_all("/run/sshd").unwrap();
        }
        keygen(&root.join("client_key"));
        std::fs::copy(root.join("client_key.pub"), root.join("authorized_keys")).unwrap();
        let mut hosts = Vec::new();
        let mut known_hosts = String::new();
        for name in names {
            let extra = sshd_extra
                .iter()
                .filter(|(host, _)| host == name)
                .map(|(_, lines)| format!("{lines}\n"))
                .collect::<String>();
            let host = start_sshd(&root, name, &extra);
            let key = std::fs::read_to_string(root.join(name).join("host_key.pub")).unwrap();
            let key: Vec<&str> = key.split_whitespace().take(2).collect();
            known_hosts.push_str(&format!("[127.0.0.1]:{} {}\n", host.port, key.join(" ")));
            hosts.push(host);
        }
        std::fs::write(root.join("known_hosts"), known_hosts).unwrap();
        let ssh_config = root.join("ssh_config");
        let lab = Lab {
            dir,
            hosts,
            ssh_config,
        };
        lab.write_ssh_config(&[]);
        Some(lab)
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn host(&self, name: &str) -> &SshHost {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .expect("a lab host")
    }

    /// Writes the ssh config: an alias per host (plus `extra` aliases as (name,
    /// port, user), e.g. one to a closed port), all with the lab's key and
    /// known_hosts.
    pub fn write_ssh_config(&self, extra: &[(&str, u16, &str)]) {
        let me = current_user();
        let root = self.root().display();
        let mut text = String::new();
        let aliases = self
            .hosts
            .iter()
            .map(|h| (h.name.as_str(), h.port, me.as_str()))
            .chain(extra.iter().copied());
        for (name, port, user) in aliases {
            text.push_str(&format!(
                "Host {name}\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n\n"
            ));
        }
        text.push_str(&format!(
            "Host *\n  IdentityFile {root}/client_key\n  IdentitiesOnly yes\n  UserKnownHostsFile {root}/known_hosts\n  GlobalKnownHostsFile /dev/null\n  LogLevel ERROR\n"
        ));
        std::fs::write(&self.ssh_config, text).unwrap();
    }

    /// Drops `name`'s key from known_hosts: teal must refuse to connect.
    pub fn forget_host_key(&self, name: &str) {
        let port = self.host(name).port;
        let path = self.root().join("known_hosts");
        let kept: String = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with(&format!("[127.0.0.1]:{port} ")))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(path, kept).unwrap();
    }

    /// Puts teal on every host without an upload: a symlink to the teal under
    /// test, which is identical to it (the bootstrap test skips this).
    pub fn preinstall_teal(&self) {
        for host in &self.hosts {
            std::fs::create_dir_all(host.teal_path.parent().unwrap()).unwrap();
            let _ = std::fs::remove_file(&host.teal_path);
            std::os::unix::fs::symlink(TEAL, &host.teal_path).unwrap();
        }
    }

    /// The top of every lab teal.toml: the deploying machine's state dir, a
    /// local listener on port 0 and the lab's ssh config; `extra` goes between
    /// the state dir and `[proxy]` (top-level keys).
    pub fn config_head(&self, extra: &str) -> String {
        format!(
            "state_dir = \"local\"\n{extra}\n[proxy]\nlisten = \"127.0.0.1:0\"\n\n[ssh]\nconfig = \"ssh_config\"\n"
        )
    }

    /// `[hosts."NAME"]` sections giving each host its state dir, teal path and
    /// a production listener on port 0.
    pub fn hosts_toml(&self) -> String {
        let mut text = String::new();
        for host in &self.hosts {
            text.push_str(&format!(
                "[hosts.{name}]\nstate_dir = \"{state}\"\nteal_path = \"{teal}\"\nproxy = {{ listen = \"127.0.0.1:0\" }}\n\n",
                name = host.name,
                state = host.state_dir.display(),
                teal = host.teal_path.display(),
            ));
        }
        text
    }

    /// `teal` in the lab dir, with no config or socket from the environment.
    pub fn teal(&self) -> Command {
        let mut cmd = Command::new(TEAL);
        cmd.current_dir(self.root())
            .env_remove("TEAL_CONFIG")
            .env_remove("TEAL_SOCKET")
            .env_remove("TEAL_SSH_CONFIG")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs `teal ARGS`, bounded in time by teal's own timeouts.
    pub fn run(&self, args: &[&str]) -> Output {
        self.teal().args(args).output().expect("teal runs")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for host in &self.hosts {
            host.stop_daemon();
        }
        for host in &mut self.hosts {
            let _ = host.sshd.kill();
            let _ = host.sshd.wait();
        }
    }
}

/// A teal run's exit status, stdout and stderr, for assertion messages.
pub fn output_text(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[track_caller]
pub fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "expected success: {}",
        output_text(out)
    );
}

/// The NDJSON events of a `--json` run, one per line of stdout.
pub fn json_events(out: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "teal-test", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen runs");
    assert!(status.success(), "ssh-keygen failed");
}

fn current_user() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .expect("the current user has a name")
}

/// Starts an sshd for `name` on a free loopback port (a few tries: the port is
/// picked before sshd binds it).
fn start_sshd(root: &Path, name: &str, extra: &str) -> SshHost {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    keygen(&dir.join("host_key"));
    for _ in 0..5 {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {dir}/host_key\nPidFile {dir}/sshd.pid\n\
                 AuthorizedKeysFile {root}/authorized_keys\nStrictModes no\nUsePAM no\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
                 PermitRootLogin prohibit-password\nAllowStreamLocalForwarding yes\nAllowTcpForwarding yes\n\
                 LogLevel ERROR\n{extra}",
                dir = dir.display(),
                root = root.display(),
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("sshd.log")).unwrap();
        let mut sshd = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("sshd starts");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = sshd.try_wait() {
                break;
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return SshHost {
                    name: name.to_string(),
                    port,
                    state_dir: dir.join("state"),
                    teal_path: dir.join("bin").join("teal"),
                    sshd,
                };
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = sshd.kill();
        let _ = sshd.wait();
    }
    let log = std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default();
    panic!("sshd for {name} did not start: {log}");
}
