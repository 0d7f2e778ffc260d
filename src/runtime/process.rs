//! The process runtime: instances are local processes on free loopback ports.
//!
//! It picks their ports, spawns them with the service's command and environment
//! (each in its own session, output straight to log files under `state_dir`),
//! records each one in `processes.json` (through [`ProcessBook`]), restarts them
//! when they die unexpectedly (same port, with a backoff) and stops them with
//! SIGTERM then SIGKILL to their process group. They outlive the daemon: at
//! daemon shutdown live ones are let go of ([`Instance::release`]), and the next
//! daemon adopts them (`adopt.rs`) or stops what no live slot accounts for. It
//! does not health-check and does not route.

mod adopt;
mod instance;
mod logs;
mod orphans;
mod pid;
mod ports;
mod runs;
mod supervisor;

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::future::join_all;
use futures_util::stream::BoxStream;

use self::instance::Launch;
pub use self::instance::ProcessInstance;
use self::orphans::Spawned;
use self::ports::PortBook;
use super::{
    Instance, InstanceRef, KnownSlot, LogLine, LogRun, Runtime, RuntimeError, SlotRequest, log_path,
};
use crate::spec::{RuntimeSpec, ServiceSpec};
use crate::state::{ProcessBook, StateError};

/// Grace for instances stopped because a later instance of the same start failed.
const ROLLBACK_GRACE: Duration = Duration::from_secs(2);

/// Runs instances as processes of their own, supervised by this daemon.
#[derive(Debug)]
pub struct ProcessRuntime {
    state_dir: PathBuf,
    /// Shared with the supervisors, which give a port back when their instance has
    /// stopped for good; until then nobody else is handed that port.
    ports: Arc<Mutex<PortBook>>,
    /// Instances started (or adopted) and not ended yet, so that daemon shutdown
    /// and `reconcile` reach every one even when nobody else holds a handle to it.
    tracked: Mutex<Vec<Arc<ProcessInstance>>>,
    /// Every process that may still run, this daemon's and its predecessors';
    /// shared with the supervisors, which record restarts and stops.
    book: Arc<ProcessBook>,
    /// The instance processes spawned and not reaped yet; what an instance
    /// forks into the background becomes this process's child (it is a child
    /// subreaper) and is reaped by the task this starts, never these.
    spawned: Arc<Spawned>,
}

impl ProcessRuntime {
    /// Logs go under `state_dir/logs/`, records to `state_dir/processes.json`.
    /// Makes this process a child subreaper: what its instances fork into the
    /// background stays its child, to be stopped with them and reaped.
    pub fn open(state_dir: &Path) -> Result<Self, StateError> {
        Spawned::become_subreaper();
        Ok(ProcessRuntime {
            state_dir: state_dir.to_path_buf(),
            ports: Arc::default(),
            tracked: Mutex::default(),
            book: Arc::new(ProcessBook::open(state_dir)?),
            spawned: Arc::default(),
        })
    }

    /// The instances of this runtime that have not ended yet.
    pub fn instances(&self) -> Vec<InstanceRef> {
        self.live_tracked()
            .into_iter()
            .map(|i| i as InstanceRef)
            .collect()
    }

    /// Stops every instance still running, all at once.
    pub async fn stop_all(&self, grace: Duration) {
        let all = std::mem::take(&mut *self.tracked.lock().unwrap());
        join_all(all.iter().map(|i| i.stop(grace))).await;
    }

    fn live_tracked(&self) -> Vec<Arc<ProcessInstance>> {
        let mut tracked = self.tracked.lock().unwrap();
        tracked.retain(|i| !i.is_finished());
        tracked.clone()
    }

    fn track(&self, instances: &[Arc<ProcessInstance>]) {
        let mut tracked = self.tracked.lock().unwrap();
        tracked.retain(|i| !i.is_finished());
        tracked.extend(instances.iter().cloned());
    }
}

/// Stops every recorded instance under `state_dir` that still runs, waiting at
/// most `grace` before SIGKILL, and drops the records; returns their pids. For
/// tools and tests, once the daemon of that state dir has exited (`teal stop`
/// is the way while it runs). Blocks the calling thread.
pub fn stop_recorded(state_dir: &Path, grace: Duration) -> Result<Vec<u32>, StateError> {
    let book = ProcessBook::open(state_dir)?;
    let running: Vec<_> = book
        .records()
        .into_iter()
        .filter(|r| pid::start_time(r.pid) == Some(r.start_time))
        .collect();
    for r in &running {
        pid::signal_group(r.pid, nix::sys::signal::Signal::SIGTERM);
    }
    let deadline = std::time::Instant::now() + grace;
    let alive = |r: &crate::state::ProcessRecord| pid::start_time(r.pid) == Some(r.start_time);
    while running.iter().any(alive) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for r in running.iter().filter(|r| alive(r)) {
        pid::signal_group(r.pid, nix::sys::signal::Signal::SIGKILL);
    }
    book.update(Vec::clear)?;
    Ok(running.iter().map(|r| r.pid).collect())
}

#[async_trait]
impl Runtime for ProcessRuntime {
    async fn start(&self, req: SlotRequest<'_>) -> Result<Vec<InstanceRef>, RuntimeError> {
        let (command, workdir) = runnable(req.service)?;
        runs::begin(&self.state_dir, &req.service.name, req.slot, req.version).map_err(
            |error| RuntimeError::Io {
                what: format!("keeping the previous output of {}", req.service.name),
                error,
            },
        )?;
        let mut started: Vec<Arc<ProcessInstance>> = Vec::new();
        for index in 0..req.service.instances {
            match self.start_one(&req, command, workdir.as_deref(), index, true) {
                Ok(instance) => started.push(instance),
                Err(err) => {
                    join_all(started.iter().map(|i| i.stop(ROLLBACK_GRACE))).await;
                    return Err(err);
                }
            }
        }
        self.track(&started);
        Ok(started.into_iter().map(|i| i as InstanceRef).collect())
    }

    fn recorded_services(&self) -> Vec<String> {
        let names: std::collections::BTreeSet<String> =
            self.book.records().into_iter().map(|r| r.service).collect();
        names.into_iter().collect()
    }

    async fn adopt(&self, req: SlotRequest<'_>) -> Result<Vec<InstanceRef>, RuntimeError> {
        self.adopt_slot(req).await
    }

    async fn reconcile(
        &self,
        service: &str,
        known: &[KnownSlot],
    ) -> Result<Vec<String>, RuntimeError> {
        Ok(self.remove_leftovers(service, known).await)
    }

    async fn logs(
        &self,
        service: &str,
        run: &LogRun,
        follow: bool,
    ) -> Result<BoxStream<'static, LogLine>, RuntimeError> {
        let files = runs::files(&self.state_dir, service, run)?;
        Ok(logs::stream(files, follow))
    }
}

impl ProcessRuntime {
    /// Allocates a port and spawns instance `index` with its supervisor; a
    /// `fresh_log` (a new start of the slot) empties its log first.
    fn start_one(
        &self,
        req: &SlotRequest<'_>,
        command: &[String],
        workdir: Option<&Path>,
        index: usize,
        fresh_log: bool,
    ) -> Result<Arc<ProcessInstance>, RuntimeError> {
        let service = req.service;
        self.spawned.start_reaper();
        let port = self
            .ports
            .lock()
            .unwrap()
            .allocate()
            .map_err(|error| RuntimeError::Io {
                what: "finding a free loopback port".into(),
                error,
            })?;
        let launch = self.launch(req, command, workdir, index, port);
        if fresh_log && let Err(error) = logs::open(&launch.log, true) {
            self.ports.lock().unwrap().release(port);
            return Err(RuntimeError::Io {
                what: format!("opening log file {}", launch.log.display()),
                error,
            });
        }
        let program = launch.program.clone();
        ProcessInstance::spawn(launch, self.ports.clone(), self.book.clone()).map_err(|error| {
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

    /// How instance `index` of the slot is (re)spawned on `port`.
    fn launch(
        &self,
        req: &SlotRequest<'_>,
        command: &[String],
        workdir: Option<&Path>,
        index: usize,
        port: u16,
    ) -> Launch {
        let service = req.service;
        let port_text = port.to_string();
        let mut argv = command.iter().map(|arg| {
            arg.replace("{port}", &port_text)
                .replace("{version}", req.version)
        });
        let program = PathBuf::from(argv.next().unwrap_or_default());
        Launch {
            program: crate::spec::program_path(&program, workdir),
            args: argv.collect(),
            env: service
                .app_env()
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
            service: service.name.clone(),
            slot: req.slot,
            index,
            version: req.version.to_string(),
            deploy_id: req.deploy_id.to_string(),
            port,
            spawned: self.spawned.clone(),
        }
    }
}

/// The command and workdir of a service this runtime can run.
fn runnable(service: &ServiceSpec) -> Result<(&[String], Option<PathBuf>), RuntimeError> {
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
    Ok((command, workdir))
}
