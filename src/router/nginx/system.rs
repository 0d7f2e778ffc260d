//! System mode: an nginx teal does not own. teal writes `conf_dir/teal.conf`
//! (which the system `nginx.conf` includes inside its `http` block) and reloads
//! it with `[proxy.nginx] reload`; it reads `pid_file` to see the reload happen.
//!
//! A new file is checked twice: alone, inside a minimal wrapper config (before it
//! replaces anything), and then as part of the whole system config (the files
//! around it can clash with it). The staging file is a dot file, which nginx's
//! `include conf.d/*.conf` and `include sites-enabled/*` never pick up.

use std::fs;
use std::path::{Path, PathBuf};

use super::binary::{self, Binary};
use super::procs::{self, Pid};
use super::quote;
use crate::router::RouterError;
use crate::spec::NginxSpec;

/// The file teal owns in `conf_dir`.
pub const FILE: &str = "teal.conf";

pub(crate) struct System {
    binary: Binary,
    conf_dir: PathBuf,
    main_conf: Option<PathBuf>,
    reload: Vec<String>,
    pid_file: PathBuf,
    /// `state_dir/nginx`: the wrapper config of the first check lives here.
    dir: PathBuf,
}

impl System {
    pub fn new(binary: Binary, spec: &NginxSpec, dir: &Path) -> Result<System, RouterError> {
        let conf_dir = spec
            .conf_dir
            .clone()
            .ok_or_else(|| RouterError::Invalid("system mode needs conf_dir".into()))?;
        if !conf_dir.is_dir() {
            return Err(RouterError::Other(format!(
                "[proxy.nginx] conf_dir {} is not a directory",
                conf_dir.display()
            )));
        }
        fs::create_dir_all(dir)
            .map_err(|e| RouterError::Other(format!("cannot create {}: {e}", dir.display())))?;
        let reload = spec.reload.clone().unwrap_or_else(|| {
            let mut command = vec![binary.path.to_string_lossy().into_owned()];
            if let Some(main) = &spec.main_conf {
                command.extend(["-c".into(), main.to_string_lossy().into_owned()]);
            }
            command.extend(["-s".into(), "reload".into()]);
            command
        });
        Ok(System {
            binary,
            conf_dir,
            main_conf: spec.main_conf.clone(),
            reload,
            pid_file: spec.pid_file.clone(),
            dir: dir.to_owned(),
        })
    }

    pub fn conf(&self) -> PathBuf {
        self.conf_dir.join(FILE)
    }

    pub fn staging(&self) -> PathBuf {
        self.conf_dir.join(format!(".{FILE}.new"))
    }

    pub fn pid_file(&self) -> &Path {
        &self.pid_file
    }

    /// `nginx -t` on the staged file inside a minimal main config.
    pub async fn check_staged(&self) -> Result<(), String> {
        let wrapper = self.dir.join("check.conf");
        let log = self.dir.join("check.log");
        let text = format!(
            "# teal: checks a new {FILE} on its own before it replaces the installed one.\npid {};\nerror_log {};\nevents {{}}\nhttp {{\n    include {};\n}}\n",
            quote(&self.dir.join("check.pid")),
            quote(&log),
            quote(&self.staging()),
        );
        fs::write(&wrapper, text)
            .map_err(|e| format!("cannot write {}: {e}", wrapper.display()))?;
        let mut command = self.binary.command(&self.dir, Some(&log));
        command.arg("-t").arg("-c").arg(&wrapper);
        binary::run(&mut command).await
    }

    /// `nginx -t` on the system's whole config, with the new file in place.
    pub async fn check_installed(&self) -> Result<(), String> {
        let mut command = tokio::process::Command::new(&self.binary.path);
        command.arg("-t");
        if let Some(main) = &self.main_conf {
            command.arg("-c").arg(main);
        }
        binary::run(&mut command).await
    }

    /// The master named by the pid file, while it runs.
    pub fn master(&self) -> Option<Pid> {
        let pid: Pid = fs::read_to_string(&self.pid_file)
            .ok()?
            .trim()
            .parse()
            .ok()?;
        procs::alive(pid).then_some(pid)
    }

    /// Runs the reload command.
    pub async fn reload(&self) -> Result<(), String> {
        let (program, args) = self
            .reload
            .split_first()
            .ok_or_else(|| "the reload command is empty".to_string())?;
        let mut command = tokio::process::Command::new(program);
        command.args(args);
        binary::run(&mut command).await
    }
}
