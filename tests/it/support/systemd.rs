//! A real systemd for tests: `systemd --user` (Debian's systemd 252), in a
//! mount namespace of its own where `/run/systemd/system` exists (systemd
//! runs only where the machine booted with it), with its runtime and unit
//! directories in a temp dir. `teal systemd --user --write` puts teal's units
//! in [`UserSystemd::unit_dir`]; `systemctl --user` drives them.
//!
//! Dropped, it stops teal's units and exits.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub struct UserSystemd {
    root: PathBuf,
    manager: Child,
}

/// Whether `unshare` and `systemd` are here (the test skips, or fails in CI, without).
pub fn available() -> bool {
    ["/usr/bin/unshare", "/usr/bin/systemd", "/usr/bin/systemctl"]
        .iter()
        .all(|p| Path::new(p).exists())
}

impl UserSystemd {
    /// Starts the manager with its directories under `root`, and waits
    /// (bounded) until `systemctl --user` reaches it.
    pub fn start(root: &Path) -> UserSystemd {
        for dir in ["run", "config/systemd/user", "data"] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        let run = root.join("run");
        std::fs::set_permissions(&run, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .unwrap();
        let log = std::fs::File::create(root.join("systemd.log")).unwrap();
        let manager = Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                "mkdir -p /run/systemd && mount -t tmpfs tmpfs /run/systemd \
                 && mkdir /run/systemd/system && exec systemd --user",
            ])
            .envs(Self::env_of(root))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start systemd --user");
        let systemd = UserSystemd {
            root: root.to_path_buf(),
            manager,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !systemd
            .systemctl(&["show", "-p", "Version"])
            .status
            .success()
        {
            assert!(
                Instant::now() < deadline,
                "systemd --user did not answer within 20 s: {}",
                std::fs::read_to_string(root.join("systemd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        systemd
    }

    fn env_of(root: &Path) -> [(&'static str, PathBuf); 3] {
        [
            ("XDG_RUNTIME_DIR", root.join("run")),
            ("XDG_CONFIG_HOME", root.join("config")),
            ("XDG_DATA_HOME", root.join("data")),
        ]
    }

    /// Where user units go.
    pub fn unit_dir(&self) -> PathBuf {
        self.root.join("config/systemd/user")
    }

    /// `systemctl --user ARGS`, bounded to 120 s (a start waits for READY=1).
    pub fn systemctl(&self, args: &[&str]) -> Output {
        Command::new("timeout")
            .arg("120")
            .arg("systemctl")
            .arg("--user")
            .args(args)
            .envs(Self::env_of(&self.root))
            .output()
            .expect("run systemctl")
    }

    /// `systemctl --user ARGS`, which must succeed.
    pub fn run(&self, args: &[&str]) {
        let out = self.systemctl(args);
        assert!(
            out.status.success(),
            "systemctl --user {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A property of a unit (`systemctl --user show -p NAME --value`).
    pub fn property(&self, unit: &str, name: &str) -> String {
        let out = self.systemctl(&["show", "-p", name, "--value", unit]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The unit's main pid (0 when none).
    pub fn main_pid(&self, unit: &str) -> u32 {
        self.property(unit, "MainPID").parse().unwrap_or(0)
    }
}

impl Drop for UserSystemd {
    fn drop(&mut self) {
        let _ = self.systemctl(&["stop", "teal.service", "teal.socket"]);
        let _ = self.systemctl(&["exit"]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.manager.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.manager.kill();
        let _ = self.manager.wait();
    }
}
