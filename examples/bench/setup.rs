//! The processes a benchmark run measures: `teal serve` with one demo-app instance,
//! nginx in front of that same instance, and helpers to read their memory.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A loopback port nothing listens on right now.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Waits (up to 10 s) until `what` accepts connections on `addr`; the error
/// points at its `log`.
pub fn wait_listening(addr: SocketAddr, what: &str, log: &Path) -> anyhow::Result<()> {
    let start = Instant::now();
    while std::net::TcpStream::connect(addr).is_err() {
        if start.elapsed() > Duration::from_secs(10) {
            bail!("{what} did not come up; see {}", log.display());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// A child process stopped when dropped: SIGTERM first, so `teal serve` stops
/// gracefully and nginx its workers (SIGKILL would orphan them), SIGKILL after 10 s.
pub struct Owned(pub Child);

impl Drop for Owned {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `teal serve` in a temp dir, with service `web` = the demo app. Dropped, it
/// stops the service's instances on purpose (`teal stop web`: they would
/// outlive the daemon), then the daemon.
pub struct Teal {
    pub bin: PathBuf,
    pub dir: PathBuf,
    pub listen: SocketAddr,
    pub process: Owned,
}

impl Drop for Teal {
    fn drop(&mut self) {
        let _ = Command::new(&self.bin)
            .args(["stop", "web"])
            .current_dir(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The TLS side of a benchmark teal: its TLS listener, and the certificate
/// files of service `web`, which then answers for `localhost` only.
pub struct TealTls<'a> {
    pub listen: SocketAddr,
    pub cert: &'a Path,
    pub key: &'a Path,
}

impl Teal {
    pub fn start(bin: &Path, dir: &Path, threads: usize) -> anyhow::Result<Teal> {
        Teal::start_with(bin, dir, threads, None)
    }

    pub fn start_with(
        bin: &Path,
        dir: &Path,
        threads: usize,
        tls: Option<TealTls<'_>>,
    ) -> anyhow::Result<Teal> {
        let listen = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let (tls_listen, tls_service) = match tls {
            Some(tls) => (
                format!("\n[proxy.tls]\nlisten = \"{}\"\n", tls.listen),
                format!(
                    "hosts = [\"localhost\"]\ntls = {{ cert = {:?}, key = {:?} }}\n",
                    tls.cert, tls.key
                ),
            ),
            None => (String::new(), String::new()),
        };
        let config = format!(
            r#"state_dir = "state"

[proxy]
listen = "{listen}"
{tls_listen}
[services.web]
command = ["{bin}", "demo-app", "--port", "{{port}}", "--app-version", "{{version}}"]
version = "1.0.0"
{tls_service}
[services.web.drain]
timeout = "5s"
"#,
            bin = bin.display()
        );
        std::fs::write(dir.join("teal.toml"), config)?;
        let child = Command::new(bin)
            .args(["serve", "--threads", &threads.to_string()])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("serve.log"))?)
            .spawn()
            .context("starting teal serve")?;
        let teal = Teal {
            bin: bin.to_path_buf(),
            dir: dir.to_path_buf(),
            listen,
            process: Owned(child),
        };
        let start = Instant::now();
        while teal.cli(&["status", "--json"]).is_err() {
            if start.elapsed() > Duration::from_secs(20) {
                bail!(
                    "teal serve did not come up; see {}",
                    dir.join("serve.log").display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(teal)
    }

    /// Runs a teal client verb in the daemon's directory; stdout on success.
    pub fn cli(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new(&self.bin)
            .args(args)
            .current_dir(&self.dir)
            .output()?;
        if !out.status.success() {
            bail!(
                "teal {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Addresses of the live slot's instances.
    pub fn live_backend(&self) -> anyhow::Result<SocketAddr> {
        let status: serde_json::Value = serde_json::from_str(&self.cli(&["status", "--json"])?)?;
        let web = &status["services"][0];
        let slot = web["active_slot"].as_str().context("nothing live")?;
        let addr = web["slots"][slot]["instances"][0]["addr"]
            .as_str()
            .context("no instance")?;
        Ok(addr.parse()?)
    }

    pub fn pid(&self) -> u32 {
        self.process.0.id()
    }
}

/// nginx tuned for the comparison: keep-alive upstream, access log off,
/// `worker_processes` equal to teal's threads, one listening socket per worker
/// (`reuseport`) and deferred accept (`deferred`), as teal's listeners have.
pub struct Nginx {
    pub listen: SocketAddr,
    pub conf: PathBuf,
    pub process: Owned,
}

impl Nginx {
    pub fn start(dir: &Path, backend: SocketAddr, workers: usize) -> anyhow::Result<Nginx> {
        let listen = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let conf = dir.join("nginx.conf");
        Nginx::write_conf(&conf, dir, listen, backend, workers)?;
        Nginx::spawn(dir, conf, listen)
    }

    /// The same nginx with `listen … ssl http2` (TLS with `cert` and `key`,
    /// ALPN h2 and http/1.1) instead of plain HTTP, nginx's TLS defaults
    /// otherwise (session tickets on, no shared session cache).
    pub fn start_tls(
        dir: &Path,
        backend: SocketAddr,
        workers: usize,
        cert: &Path,
        key: &Path,
    ) -> anyhow::Result<Nginx> {
        let listen = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let conf = dir.join("nginx.conf");
        Nginx::write_conf(&conf, dir, listen, backend, workers)?;
        let plain = format!("listen {listen} reuseport backlog=65535 deferred;");
        let tls = format!(
            "listen {listen} ssl http2 reuseport backlog=65535 deferred;\n    server_name localhost;\n    ssl_certificate {};\n    ssl_certificate_key {};",
            cert.display(),
            key.display()
        );
        let forwarded = "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;";
        let text = std::fs::read_to_string(&conf)?
            .replace(&plain, &tls)
            .replace(
                forwarded,
                &format!("{forwarded}\n      proxy_set_header X-Forwarded-Proto https;"),
            );
        std::fs::write(&conf, text)?;
        Nginx::spawn(dir, conf, listen)
    }

    fn spawn(dir: &Path, conf: PathBuf, listen: SocketAddr) -> anyhow::Result<Nginx> {
        let child = Command::new(nginx_bin())
            .args(["-c", &conf.display().to_string(), "-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting nginx")?;
        let nginx = Nginx {
            listen,
            conf,
            process: Owned(child),
        };
        wait_listening(listen, "nginx", &dir.join("error.log"))?;
        Ok(nginx)
    }

    /// Writes the config proxying to `backend`.
    pub fn write_conf(
        conf: &Path,
        dir: &Path,
        listen: SocketAddr,
        backend: SocketAddr,
        workers: usize,
    ) -> anyhow::Result<()> {
        let d = dir.display();
        let user = if nix::unistd::Uid::effective().is_root() {
            "user root;"
        } else {
            ""
        };
        let text = format!(
            r#"{user}
worker_processes {workers};
worker_rlimit_nofile 65536;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
worker_shutdown_timeout 5s;
events {{ worker_connections 32768; multi_accept on; }}
http {{
  access_log off;
  keepalive_timeout 75s;
  keepalive_requests 1000000;
  client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp; fastcgi_temp_path {d}/tmp;
  uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;
  upstream backend {{ server {backend}; keepalive 512; keepalive_requests 1000000; }}
  server {{
    listen {listen} reuseport backlog=65535 deferred;
    location / {{
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_buffering on;
    }}
  }}
}}
"#
        );
        std::fs::create_dir_all(dir.join("tmp"))?;
        std::fs::write(conf, text)?;
        Ok(())
    }

    /// Asks the master to reload its config (SIGHUP).
    pub fn reload(&self) -> anyhow::Result<()> {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.process.0.id() as i32),
            nix::sys::signal::Signal::SIGHUP,
        )?;
        Ok(())
    }

    /// The workers (the processes that serve traffic).
    pub fn worker_pids(&self) -> Vec<u32> {
        children(self.process.0.id())
    }

    /// The master and its workers.
    pub fn pids(&self) -> Vec<u32> {
        let master = self.process.0.id();
        let mut pids = vec![master];
        pids.extend(children(master));
        pids
    }
}

pub fn nginx_bin() -> &'static str {
    if Path::new("/usr/sbin/nginx").exists() {
        "/usr/sbin/nginx"
    } else {
        "nginx"
    }
}

/// Direct children of `pid` (from /proc).
pub fn children(pid: u32) -> Vec<u32> {
    let path = format!("/proc/{pid}/task/{pid}/children");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Resident memory of `pid` in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
