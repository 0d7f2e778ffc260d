//! The process runtime: instances are local child processes on free loopback ports.
//!
//! It owns those children for their whole life: it picks their ports, spawns them
//! with the service's command and environment, sends their output to log files
//! under `state_dir`, restarts them when they die unexpectedly (same port, with a
//! backoff) and stops them with SIGTERM then SIGKILL to their process group. It
//! does not health-check and does not route.

mod instance;
mod logs;
mod ports;

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::join_all;
use futures_util::stream::BoxStream;

use self::instance::Launch;
pub use self::instance::ProcessInstance;
use self::ports::PortBook;
use super::{InstanceRef, LogLine, Runtime, RuntimeError, SlotRequest, log_path};
use crate::slot::Slot;
use crate::spec::RuntimeSpec;

/// Grace for instances stopped because a later instance of the same start failed.
const ROLLBACK_GRACE: Duration = Duration::from_secs(2);

/// Runs instances as child processes of this process.
#[derive(Debug)]
pub struct ProcessRuntime {
    state_dir: PathBuf,
    /// Shared with the supervisors, which give a port back when their instance has
    /// stopped for good; until then nobody else is handed that port.
    ports: Arc<Mutex<PortBook>>,
    /// Instances started and not stopped yet, so that daemon shutdown can reach
    /// every child even when nobody else holds a handle to it.
    tracked: Mutex<Vec<Arc<ProcessInstance>>>,
}

impl ProcessRuntime {
    /// Logs go under `state_dir/logs/`.
    pub fn new(state_dir: PathBuf) -> Self {
        ProcessRuntime {
            state_dir,
            ports: Arc::default(),
            tracked: Mutex::default(),
        }
    }

    /// The instances started by this runtime that are not stopped yet.
    pub fn instances(&self) -> Vec<InstanceRef> {
        let mut tracked = self.tracked.lock().unwrap();
        tracked.retain(|i| !i.is_finished());
        tracked.iter().map(|i| i.clone() as InstanceRef).collect()
    }

    /// Stops every instance still running (daemon shutdown), all at once.
    pub async fn stop_all(&self, grace: Duration) {
        let all = std::mem::take(&mut *self.tracked.lock().unwrap());
        join_all(
            all.iter()
                .map(|i| crate::runtime::Instance::stop(&**i, grace)),
        )
        .await;
    }
}

#[async_trait]
impl Runtime for ProcessRuntime {
    async fn start(&self, req: SlotRequest<'_>) -> Result<Vec<InstanceRef>, RuntimeError> {
        let service = req.service;
        let RuntimeSpec::Process { command } = &service.runtime else {
            return Err(RuntimeError::InvalidSpec(format!(
                "service {}: the process runtime cannot run a {} service",
                service.name,
                service.runtime.kind()
            )));
        };
        if command.is_empty() {
            return Err(RuntimeError::InvalidSpec(format!(
                "service {}: command is empty",
                service.name
            )));
        }
        let workdir = (!service.workdir.as_os_str().is_empty()).then(|| service.workdir.clone());
        if let Some(dir) = &workdir
            && !dir.is_dir()
        {
            return Err(RuntimeError::InvalidSpec(format!(
                "service {}: workdir {} is not a directory",
                service.name,
                dir.display()
            )));
        }

        let mut started: Vec<Arc<ProcessInstance>> = Vec::new();
        for index in 0..service.instances {
            match self.start_one(&req, command, workdir.as_deref(), index) {
                Ok(instance) => started.push(instance),
                Err(err) => {
                    join_all(
                        started
                            .iter()
                            .map(|i| crate::runtime::Instance::stop(&**i, ROLLBACK_GRACE)),
                    )
                    .await;
                    return Err(err);
                }
            }
        }
        let mut tracked = self.tracked.lock().unwrap();
        tracked.retain(|i| !i.is_finished());
        tracked.extend(started.iter().cloned());
        drop(tracked);
        Ok(started.into_iter().map(|i| i as InstanceRef).collect())
    }

    async fn logs(
        &self,
        service: &str,
        slot: Slot,
        follow: bool,
    ) -> Result<BoxStream<'static, LogLine>, RuntimeError> {
        Ok(logs::stream(
            self.state_dir.clone(),
            service.to_string(),
            slot,
            follow,
        ))
    }
}

impl ProcessRuntime {
    /// Allocates a port and spawns instance `index` with its supervisor.
    fn start_one(
        &self,
        req: &SlotRequest<'_>,
        command: &[String],
        workdir: Option<&Path>,
        index: usize,
    ) -> Result<Arc<ProcessInstance>, RuntimeError> {
        let service = req.service;
        let port = self
            .ports
            .lock()
            .unwrap()
            .allocate()
            .map_err(|error| RuntimeError::Io {
                what: "finding a free loopback port".into(),
                error,
            })?;
        let port_text = port.to_string();
        let mut argv = command.iter().map(|arg| {
            arg.replace("{port}", &port_text)
                .replace("{version}", req.version)
        });
        let program = PathBuf::from(argv.next().unwrap_or_default());
        let launch = Launch {
            program: resolve_program(&program, workdir),
            args: argv.collect(),
            env: service
                .env
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .chain([
                    ("PORT".into(), port_text.clone()),
                    ("TEAL_VERSION".into(), req.version.to_string()),
                    ("TEAL_SLOT".into(), req.slot.to_string()),
                    ("TEAL_INSTANCE".into(), index.to_string()),
                    ("TEAL_SERVICE".into(), service.name.clone()),
                ])
                .collect(),
            workdir: workdir.map(Path::to_path_buf),
            log: log_path(&self.state_dir, &service.name, req.slot, index),
            version: req.version.to_string(),
        };
        // A new start of the slot begins a fresh log; restarts append to it.
        if let Err(error) = logs::open(&launch.log, true) {
            self.ports.lock().unwrap().release(port);
            return Err(RuntimeError::Io {
                what: format!("opening log file {}", launch.log.display()),
                error,
            });
        }
        ProcessInstance::spawn(index, port, launch, self.ports.clone()).map_err(|error| {
            self.ports.lock().unwrap().release(port);
            let what = format!(
                "service {} ({} instance {index}): starting {}",
                service.name,
                req.slot,
                program.display()
            );
            match error.kind() {
                ErrorKind::NotFound => {
                    RuntimeError::InvalidSpec(format!("{what}: command not found"))
                }
                ErrorKind::PermissionDenied => {
                    RuntimeError::InvalidSpec(format!("{what}: not executable"))
                }
                _ => RuntimeError::Io { what, error },
            }
        })
    }
}

/// A relative program path with a directory part (`./app`, `bin/app`) is relative
/// to the workdir; a bare name is looked up in `PATH`.
fn resolve_program(program: &Path, workdir: Option<&Path>) -> PathBuf {
    match workdir {
        Some(dir) if program.is_relative() && program.components().count() > 1 => dir.join(program),
        _ => program.to_path_buf(),
    }
}
