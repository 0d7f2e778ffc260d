//! A second, real Docker engine playing the deploying workstation, for the
//! image shipping tests.
//!
//! The lab's hosts all use this machine's engine, so an image the CLI finds on
//! that engine is always "already on the host". To ship for real, the CLI gets
//! its own engine: a `dockerd` started by the test in a temp dir and network
//! and mount namespaces of its own (its own data root, exec root and socket; vfs storage,
//! no bridge, no iptables), so it touches nothing of the main engine's. Images
//! are built there; no container ever runs there. The CLI is pointed at it with `DOCKER_HOST`, and the hosts'
//! teal (started by sshd with a clean environment) use the main engine.
//!
//! Starting a dockerd needs root; without it the tests skip loudly (and fail in
//! CI, like every other missing component).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bollard::Docker;
use bollard::query_parameters::{RemoveImageOptionsBuilder, TagImageOptionsBuilder};

use super::{docker, require};

const DOCKERD: &str = "/usr/sbin/dockerd";
/// dockerd runs in network and mount namespaces of its own: with
/// `--bridge=none` a dockerd deletes the `docker0` interface it finds, which in
/// the machine's namespace would be the main engine's (and break every
/// container there), and the mounts it makes (its data root) go with it even
/// when it is killed.
const UNSHARE: &str = "/usr/bin/unshare";

pub struct Workstation {
    pub docker: Docker,
    /// Stopped when dropped, before `dir` goes (never read: held for its Drop).
    #[allow(dead_code)]
    dockerd: Dockerd,
    /// Holds the engine's data and sockets.
    dir: tempfile::TempDir,
}

/// The dockerd process, stopped (SIGTERM, then SIGKILL) when dropped.
struct Dockerd(Child);

impl Workstation {
    /// Starts the engine and waits (bounded) until it answers.
    pub async fn start() -> Option<Workstation> {
        let root = nix::unistd::getuid().is_root();
        if !require(
            "root and dockerd (a second Docker engine plays the workstation)",
            root && Path::new(DOCKERD).exists() && Path::new(UNSHARE).exists(),
        ) {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("teal-ws-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        std::fs::write(d.join("daemon.json"), "{}").unwrap();
        let log = std::fs::File::create(d.join("dockerd.log")).unwrap();
        let dockerd = Command::new(UNSHARE)
            .args(["--net", "--mount"])
            .arg(DOCKERD)
            .arg("--config-file")
            .arg(d.join("daemon.json"))
            .arg("--data-root")
            .arg(d.join("data"))
            .arg("--exec-root")
            .arg(d.join("x"))
            .arg("--pidfile")
            .arg(d.join("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", d.join("docker.sock").display()))
            .args([
                "--storage-driver=vfs",
                "--bridge=none",
                "--iptables=false",
                "--ip-masq=false",
                "--log-level=error",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("dockerd starts");
        let mut dockerd = Dockerd(dockerd);
        let socket = d.join("docker.sock").display().to_string();
        let log = || std::fs::read_to_string(d.join("dockerd.log")).unwrap_or_default();
        let start = Instant::now();
        let docker = loop {
            let answer = match Docker::connect_with_unix(&socket, 120, bollard::API_DEFAULT_VERSION)
            {
                Ok(docker) => docker.negotiate_version().await.ok(),
                Err(_) => None,
            };
            if let Some(docker) = answer {
                break docker;
            }
            if let Ok(Some(status)) = dockerd.0.try_wait() {
                panic!("the workstation dockerd exited ({status}): {}", log());
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the workstation dockerd did not answer: {}",
                log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let ws = Workstation {
            dir,
            dockerd,
            docker,
        };
        Some(ws)
    }

    /// `DOCKER_HOST` for the CLI.
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.dir.path().join("docker.sock").display())
    }

    /// Builds the demo app as `reference` (FROM scratch, the static teal) with a
    /// label no other image has, so its ID is new to every engine. Returns the ID.
    pub async fn build_app(&self, reference: &str, greeting: &str) -> String {
        let teal = std::fs::read(docker::static_teal()).unwrap();
        let dockerfile = format!(
            "FROM scratch\nCOPY teal /teal\nENV GREETING={greeting}\nLABEL teal.test.unique={}\nENTRYPOINT [\"/teal\", \"demo-app\", \"--bind\", \"0.0.0.0\"]\n",
            unique()
        );
        docker::build(&self.docker, reference, &dockerfile, &[("teal", &teal)]).await;
        docker::image_id(&self.docker, reference).await
    }

    /// Points `reference` at the image `id`.
    pub async fn tag(&self, id: &str, reference: &str) {
        let (repo, tag) = reference.rsplit_once(':').unwrap();
        let options = TagImageOptionsBuilder::default()
            .repo(repo)
            .tag(tag)
            .build();
        self.docker.tag_image(id, Some(options)).await.unwrap();
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A name part no other test run uses.
pub fn unique() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{:x}{:x}", std::process::id(), nanos % 0xffff_ffff)
}

/// Removes an image from an engine (tests end with it), whatever tags it has.
pub async fn remove_image(docker: &Docker, id: &str) {
    let options = RemoveImageOptionsBuilder::default().force(true).build();
    let _ = docker.remove_image(id, Some(options), None).await;
}
