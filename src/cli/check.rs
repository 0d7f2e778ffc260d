//! `teal check`: reads teal.toml as `teal serve` and `teal deploy` would and
//! says whether they could use it, with no daemon running: the file itself
//! (every error located, as everywhere), each local service's program, nginx
//! for the nginx router, each service's secrets (found, and where; never a
//! value), whether the Docker engine answers and has the image (docker
//! services), and, while no daemon runs, whether another program listens on
//! the builtin proxy's addresses. It starts and writes nothing. Problems are listed with the
//! report, then the verb fails with exit code 2, like `nginx -t`.

mod engine;
mod program;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Serialize;

use super::context::Global;
use super::exit::UsageError;
use crate::spec::{Config, RemoteSpec, RouterKind, RuntimeSpec, ServiceSpec};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The secrets file to look in for the services' `secrets` that this
    /// machine's environment does not set [default: .teal/secrets beside
    /// teal.toml]
    #[arg(long, value_name = "PATH")]
    secrets_file: Option<PathBuf>,
    /// Print the report as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// What teal found, as printed.
#[derive(Debug, Serialize)]
struct Report {
    config: PathBuf,
    listen: String,
    router: &'static str,
    control: PathBuf,
    /// Whether a daemon answers on the control socket.
    daemon_running: bool,
    services: Vec<ServiceReport>,
    /// Problems of the file as a whole: the nginx router's binary, an
    /// address another program listens on.
    problems: Vec<String>,
}

impl Report {
    fn problem_count(&self) -> usize {
        self.problems.len()
            + self
                .services
                .iter()
                .map(|s| s.problems.len())
                .sum::<usize>()
    }
}

#[derive(Debug, Serialize)]
struct ServiceReport {
    name: String,
    runtime: &'static str,
    /// The command line, or the image reference.
    runs: String,
    /// Where the program was found (local process services only).
    #[serde(skip_serializing_if = "Option::is_none")]
    program: Option<PathBuf>,
    instances: usize,
    version: Option<String>,
    /// What this machine's Docker engine has of the version's image (docker
    /// services on this machine with a `version`).
    #[serde(skip_serializing_if = "Option::is_none")]
    image: Option<String>,
    health: String,
    hostnames: Vec<String>,
    /// The remote servers it is deployed to; empty: this machine.
    servers: Vec<String>,
    secrets: Vec<SecretReport>,
    problems: Vec<String>,
}

#[derive(Debug, Serialize)]
struct SecretReport {
    name: String,
    /// "environment", or the secrets file's path.
    found_in: String,
}

pub fn exec(global: &Global, args: Args) -> anyhow::Result<ExitCode> {
    super::init_tracing("warn");
    let (config, remote) = crate::config::load_remote(&global.config_path())?;
    let secrets_file = super::context::secrets_file(&config, args.secrets_file.as_deref())?;
    let mut report = inspect(&config, &remote, &secrets_file);
    super::context::block_on(ask_the_engine(&config, &mut report))?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        write!(out, "{}", render(&report))?;
    }
    out.flush()?;
    let problems = report.problem_count();
    if problems > 0 {
        let noun = if problems == 1 { "problem" } else { "problems" };
        return Err(UsageError(format!(
            "{}: {problems} {noun} (listed above)",
            config.path.display()
        ))
        .into());
    }
    Ok(ExitCode::SUCCESS)
}

/// For the docker services run on this machine: the engine answers (else a
/// problem for each), and what it has of the version's image.
async fn ask_the_engine(config: &Config, report: &mut Report) {
    let mut engine = None;
    for service in &mut report.services {
        let Some(spec) = config.services.get(&service.name) else {
            continue;
        };
        let RuntimeSpec::Docker(docker) = &spec.runtime else {
            continue;
        };
        if !service.servers.is_empty() {
            continue;
        }
        if engine.is_none() {
            engine = Some(engine::connect().await);
        }
        match engine.as_ref().expect("set above") {
            Err(why) => service.problems.push(why.clone()),
            Ok(client) => {
                if let Some(version) = &spec.version {
                    service.image = Some(engine::image(client, &docker.image, version).await);
                }
            }
        }
    }
}

fn inspect(config: &Config, remote: &RemoteSpec, secrets_file: &Path) -> Report {
    let services: Vec<ServiceReport> = config
        .services
        .values()
        .map(|spec| service(spec, remote, secrets_file))
        .collect();
    let mut problems = Vec::new();
    let runs_here = services.iter().any(|s| s.servers.is_empty());
    if config.proxy.router == RouterKind::Nginx && runs_here {
        let nginx = &config.proxy.nginx.binary;
        if let Err(why) = program::find(nginx, None, None) {
            problems.push(format!("the nginx router needs nginx: {why}"));
        }
    }
    // The daemon holds its own addresses: only a stopped one's are checked.
    let daemon_running = std::os::unix::net::UnixStream::connect(&config.proxy.control).is_ok();
    if !daemon_running && config.proxy.router == RouterKind::Builtin {
        problems.extend(taken_addresses(config, remote));
    }
    Report {
        config: config.path.clone(),
        daemon_running,
        listen: config.proxy.listen.to_string(),
        router: match config.proxy.router {
            RouterKind::Builtin => "builtin",
            RouterKind::Nginx => "nginx",
        },
        control: config.proxy.control.clone(),
        services,
        problems,
    }
}

/// The builtin proxy's addresses (listen, TLS, admin, each local service's
/// preview) that another program listens on, so `teal serve` could not.
/// systemd (pid 1) holding one is socket activation, teal's own units.
fn taken_addresses(config: &Config, remote: &RemoteSpec) -> Vec<String> {
    let proxy = &config.proxy;
    let mut addresses = vec![("listen", proxy.listen)];
    addresses.extend(proxy.tls.as_ref().map(|tls| ("TLS listen", tls.listen)));
    addresses.extend(proxy.admin.map(|admin| ("admin", admin)));
    for spec in config.services.values() {
        if !remote.servers.contains_key(&spec.name) {
            addresses.extend(spec.preview.map(|addr| ("preview", addr)));
        }
    }
    addresses
        .into_iter()
        .filter(|(_, addr)| addr.port() != 0)
        .filter_map(|(what, addr)| {
            let who = crate::procs::sockets::who_listens(addr, |pid| pid == 1)?;
            Some(format!(
                "{what} address {addr}: {who} there, so teal serve could not: stop it, or choose another address"
            ))
        })
        .collect()
}

fn service(spec: &ServiceSpec, remote: &RemoteSpec, secrets_file: &Path) -> ServiceReport {
    let servers: Vec<String> = remote
        .servers
        .get(&spec.name)
        .map(|list| list.iter().map(ToString::to_string).collect())
        .unwrap_or_default();
    let mut problems = Vec::new();
    let mut program = None;
    let runs = match &spec.runtime {
        RuntimeSpec::Process { command } => {
            // On remote servers the program is theirs: the deploy finds out there.
            if servers.is_empty()
                && let Some(first) = command.first()
            {
                match find_program(spec, first) {
                    Ok(found) => program = Some(found),
                    Err(why) => problems.push(why),
                }
            }
            command.join(" ")
        }
        RuntimeSpec::Docker(docker) => docker.image.clone(),
    };
    if servers.is_empty() {
        problems.extend(hook_problems(spec));
    }
    let secrets = match crate::secrets::gather(&spec.secrets.names, secrets_file, |name| {
        std::env::var(name).ok()
    }) {
        Ok(_) => spec
            .secrets
            .names
            .iter()
            .map(|name| SecretReport {
                name: name.clone(),
                found_in: if std::env::var_os(name).is_some() {
                    "environment".into()
                } else {
                    secrets_file.display().to_string()
                },
            })
            .collect(),
        Err(error) => {
            problems.push(error.to_string());
            Vec::new()
        }
    };
    ServiceReport {
        name: spec.name.clone(),
        runtime: spec.runtime.kind(),
        runs,
        program,
        image: None,
        instances: spec.instances,
        version: spec.version.clone(),
        health: match &spec.health.grpc {
            Some(name) if name.is_empty() => "gRPC health check".into(),
            Some(name) => format!("gRPC health check of {name:?}"),
            None => format!("GET {}", spec.health.path),
        },
        hostnames: spec.hosts.clone(),
        servers,
        secrets,
        problems,
    }
}

/// The hooks that run on this machine whose program cannot be found.
fn hook_problems(spec: &ServiceSpec) -> Vec<String> {
    crate::spec::HookPoint::ALL
        .iter()
        .filter_map(|point| Some((point, spec.hooks.get(*point)?)))
        .filter(|(_, hook)| hook.run_in == crate::spec::HookPlace::Host)
        .filter_map(|(point, hook)| {
            let why = find_program(spec, hook.command.first()?).err()?;
            Some(format!("the {} hook: {why}", point.as_str()))
        })
        .collect()
}

/// `program` (a command's first word) of `spec`, found from its workdir and
/// its own `PATH` when its `env` sets one.
fn find_program(spec: &ServiceSpec, program: &str) -> Result<PathBuf, String> {
    let path_var = spec.env.get("PATH").map(std::ffi::OsStr::new);
    program::find(Path::new(program), Some(&spec.workdir), path_var)
}

/// The human view: the proxy, then a block per service, problems last in it.
fn render(report: &Report) -> String {
    let mut out = format!(
        "config    {}\nproxy     {} ({} router), control socket {}\ndaemon    {}\n",
        report.config.display(),
        report.listen,
        report.router,
        report.control.display(),
        if report.daemon_running {
            "running (its control socket answers)"
        } else {
            "not running (`teal serve` starts it)"
        }
    );
    for problem in &report.problems {
        out.push_str(&format!("          problem: {problem}\n"));
    }
    for s in &report.services {
        out.push_str(&format!("{:<9} {}: {}", s.name, s.runtime, s.runs));
        // Where a bare name or a relative path was found.
        if let Some(program) = &s.program
            && !s.runs.starts_with(&*program.to_string_lossy())
        {
            out.push_str(&format!(" ({})", program.display()));
        }
        out.push('\n');
        let version = match &s.version {
            Some(v) => format!("version {v}"),
            None => "no version (pass --version to teal deploy)".into(),
        };
        let plural = if s.instances == 1 { "" } else { "s" };
        out.push_str(&format!(
            "          {} instance{plural}, {version}, health: {}\n",
            s.instances, s.health
        ));
        if let Some(image) = &s.image {
            out.push_str(&format!("          image: {image}\n"));
        }
        if !s.hostnames.is_empty() {
            out.push_str(&format!(
                "          hostnames: {}\n",
                s.hostnames.join(", ")
            ));
        }
        if !s.servers.is_empty() {
            out.push_str(&format!(
                "          servers: {} (its program is looked for there, at deploy)\n",
                s.servers.join(", ")
            ));
        }
        if !s.secrets.is_empty() {
            let found: Vec<String> = s
                .secrets
                .iter()
                .map(|x| format!("{} ({})", x.name, x.found_in))
                .collect();
            out.push_str(&format!("          secrets: {}\n", found.join(", ")));
        }
        for problem in &s.problems {
            out.push_str(&format!("          problem: {problem}\n"));
        }
    }
    let problems = report.problem_count();
    if problems == 0 {
        out.push_str("ok: teal serve and teal deploy can use this file\n");
    }
    out
}
