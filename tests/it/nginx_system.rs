//! System mode (`[proxy.nginx] conf_dir`): teal drives an nginx it does not own.
//!
//! The "system" nginx here is started by the test itself, from a temp dir, with a
//! Debian-style `nginx.conf` that has its own server and includes `conf.d/*.conf`
//! inside `http` (tests never touch the machine's real nginx). teal writes
//! `conf.d/teal.conf`, checks and reloads through `main_conf` and `pid_file`, and
//! never starts or stops that nginx.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;
use teal::spec::NginxSpec;

/// An nginx master the test owns; stopped when dropped, even on panic.
struct SystemNginx {
    main: PathBuf,
    conf_d: PathBuf,
    pid_file: PathBuf,
    own: std::net::SocketAddr,
}

impl SystemNginx {
    fn start(dir: &Path) -> SystemNginx {
        let conf_d = dir.join("conf.d");
        std::fs::create_dir_all(&conf_d).unwrap();
        let own = nginx::free_addr();
        let main = dir.join("nginx.conf");
        std::fs::write(
            &main,
            format!(
                "pid {d}/nginx.pid;\nerror_log {d}/error.log notice;\nevents {{}}\nhttp {{\n    \
                 access_log off;\n    server {{\n        listen {own};\n        location / {{ return 200 \"system\\n\"; }}\n    }}\n    \
                 include {d}/conf.d/*.conf;\n}}\n",
                d = dir.display()
            ),
        )
        .unwrap();
        let binary = teal::router::nginx::locate(&NginxSpec::default()).unwrap();
        let status = Command::new(binary)
            .arg("-c")
            .arg(&main)
            .arg("-p")
            .arg(format!("{}/", dir.display()))
            .arg("-e")
            .arg(dir.join("error.log"))
            .status()
            .unwrap();
        assert!(status.success(), "the system nginx starts");
        SystemNginx {
            main,
            conf_d,
            pid_file: dir.join("nginx.pid"),
            own,
        }
    }

    /// A teal config (`nginx::config`) in system mode on this nginx.
    fn config(&self, dir: &Path) -> teal::spec::Config {
        let mut config = nginx::config(dir, vec![]);
        config.proxy.nginx = NginxSpec {
            conf_dir: Some(self.conf_d.clone()),
            main_conf: Some(self.main.clone()),
            pid_file: self.pid_file.clone(),
            ..NginxSpec::default()
        };
        config
    }

    fn pid(&self) -> i32 {
        std::fs::read_to_string(&self.pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }
}

impl Drop for SystemNginx {
    fn drop(&mut self) {
        if let Ok(text) = std::fs::read_to_string(&self.pid_file)
            && let Ok(pid) = text.trim().parse::<i32>()
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_mode_writes_teal_conf_and_reloads_an_nginx_it_does_not_own() {
    if !nginx::required() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let system = SystemNginx::start(dir.path());
    let master = system.pid();
    let config = system.config(dir.path());
    let spec = nginx::service("web", dir.path(), 1);
    let d = TestDaemon::start(&config).await;
    assert_eq!(
        get(d.addr, "/").await.0,
        503,
        "teal's listener, nothing deployed"
    );

    d.deploy(&spec, "1.0.0").await.assert_live();
    d.deploy(&spec, "1.1.0").await.assert_live();
    assert_eq!(serving(d.addr).await.as_deref(), Some("1.1.0"));
    assert_eq!(
        serving(spec.preview.unwrap()).await.as_deref(),
        Some("1.0.0")
    );
    d.rollback("web").await.assert_live();
    assert_eq!(serving(d.addr).await.as_deref(), Some("1.0.0"));

    let teal_conf = std::fs::read_to_string(system.conf_d.join("teal.conf")).unwrap();
    assert!(teal_conf.contains("upstream teal_web_blue"), "{teal_conf}");
    assert_eq!(
        get(system.own, "/").await,
        (200, "system\n".into()),
        "its own server"
    );
    assert_eq!(
        system.pid(),
        master,
        "teal reloads the system nginx, never restarts it"
    );

    d.stop().await;
    // teal's routes left the system nginx (confirmed reload); the nginx itself runs on.
    assert!(
        tokio::net::TcpStream::connect(config.proxy.listen)
            .await
            .is_err()
    );
    assert_eq!(get(system.own, "/").await, (200, "system\n".into()));
    assert_eq!(system.pid(), master);
    let stopped = std::fs::read_to_string(system.conf_d.join("teal.conf")).unwrap();
    assert!(!stopped.contains("server"), "{stopped}");
}

/// An upgrade of teal in system mode: the daemon that leaves does not touch
/// the system nginx (its `teal.conf` stays, no reload), and the one that takes
/// over (`inherited`) restores the same routes without a reload either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_leaves_the_system_nginx_and_teal_conf_as_they_are() {
    use crate::support::proxy::{TestBackend, backend};
    use teal::router::Router;
    use teal::router::nginx::NginxRouter;
    use teal::slot::Slot;
    use tokio_util::sync::CancellationToken;

    if !nginx::required() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let system = SystemNginx::start(dir.path());
    let master = system.pid();
    let config = system.config(dir.path());
    let state_dir = dir.path().join("state");
    let blue = TestBackend::start("blue").await;
    let web = crate::support::proxy::spec("web", &[], None);
    let start = async |inherited: bool| {
        NginxRouter::start(
            &config.proxy,
            &state_dir,
            CancellationToken::new(),
            inherited,
        )
        .await
        .expect("the router starts")
    };

    let leaving = start(false).await;
    leaving
        .set_routes(&web, backend(Slot::Blue, &[blue.addr]), None)
        .await
        .unwrap();
    let teal_conf = system.conf_d.join("teal.conf");
    let routed = std::fs::read_to_string(&teal_conf).unwrap();
    let workers = nginx::serving_workers(master);
    leaving.leave(std::time::Duration::from_secs(5)).await;
    assert_eq!(std::fs::read_to_string(&teal_conf).unwrap(), routed);
    assert_eq!(nginx::serving_workers(master), workers, "no reload");

    let next = start(true).await;
    next.restore_routes(&[(&web, backend(Slot::Blue, &[blue.addr]))])
        .await
        .unwrap();
    assert_eq!(nginx::serving_workers(master), workers, "still no reload");
    assert_eq!(get(config.proxy.listen, "/").await, (200, "blue".into()));
    assert_eq!(system.pid(), master);

    next.close(std::time::Duration::from_secs(5)).await;
    let stopped = std::fs::read_to_string(&teal_conf).unwrap();
    assert!(!stopped.contains("server"), "{stopped}");
}
