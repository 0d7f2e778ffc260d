//! One process instance: how it is launched, and the handle the rest of teal holds
//! (`ProcessInstance`), whose process a supervisor task owns (`supervisor.rs`).
//!
//! A process runs in its own session (it leads its session and its process
//! group), its stdout and stderr open straight on its log file, so it keeps
//! serving, and writing, while no daemon runs. It is recorded in the
//! [`ProcessBook`] when it starts, so the next daemon finds it.

use std::any::Any;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use process_wrap::tokio::{CommandWrap, ProcessSession};
use tokio::process::{Child, Command};
use tokio::sync::watch;

use super::logs;
use super::orphans::Spawned;
use super::pid::{self, ExitWatch};
use super::ports::PortBook;
use super::supervisor::{Ended, Ending, Running, Status, Supervisor};
use crate::runtime::{ExitInfo, Instance};
use crate::slot::Slot;
use crate::state::{ProcessBook, ProcessRecord};

/// What it takes to (re)spawn one instance; the same on every restart.
/// `Debug` shows the environment's names only (it holds secret values).
#[derive(Clone)]
pub(super) struct Launch {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Added to the inherited environment (service `env`, then teal's variables).
    pub env: Vec<(String, String)>,
    pub workdir: Option<PathBuf>,
    pub log: PathBuf,
    pub service: String,
    pub slot: Slot,
    pub index: usize,
    pub version: String,
    pub deploy_id: String,
    pub port: u16,
    /// The daemon's record of the instance processes it spawned, which the
    /// reaper of leftovers must leave to tokio.
    pub spawned: Arc<Spawned>,
}

impl std::fmt::Debug for Launch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Launch")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("env", &crate::secrets::KeysOnly(&self.env))
            .field("workdir", &self.workdir)
            .field("log", &self.log)
            .field("service", &self.service)
            .field("slot", &self.slot)
            .field("index", &self.index)
            .field("version", &self.version)
            .field("deploy_id", &self.deploy_id)
            .field("port", &self.port)
            .finish()
    }
}

impl Launch {
    /// Spawns the process as the leader of a new session, output appended to the
    /// log. Nothing kills it when the `Child` is dropped: it may outlive us.
    pub(super) fn spawn(&self) -> std::io::Result<Child> {
        let log = logs::open(&self.log, false)?;
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        for var in crate::systemd::MANAGER_ENV {
            cmd.env_remove(var);
        }
        if let Some(dir) = &self.workdir {
            cmd.current_dir(dir);
        }
        let child = self.spawned.spawn(|| spawn_in_session(cmd))?;
        let pid = child.id().unwrap_or(0);
        logs::marker(
            &self.log,
            &format!("started pid {pid} version {}", self.version),
        );
        Ok(child)
    }

    /// The record of the process `pid` running this launch.
    pub(super) fn record(&self, pid: u32) -> ProcessRecord {
        ProcessRecord {
            service: self.service.clone(),
            slot: self.slot,
            index: self.index,
            version: self.version.clone(),
            deploy_id: self.deploy_id.clone(),
            pid,
            // Our child is not reaped yet, so /proc still has it even if it exited.
            start_time: pid::start_time(pid).unwrap_or(0),
            port: self.port,
        }
    }
}

/// `setsid` in the child before exec (process-wrap does it; this crate has no
/// `unsafe` for a `pre_exec` of its own), then the plain tokio `Child` back.
fn spawn_in_session(cmd: Command) -> std::io::Result<Child> {
    let wrapped = CommandWrap::from(cmd).wrap(ProcessSession).spawn()?;
    // The session wrapper only adds group signalling, which the supervisor does
    // itself; underneath is the tokio child.
    let inner: Box<dyn Any> = wrapped.into_inner();
    inner
        .downcast::<Child>()
        .map(|child| *child)
        .map_err(|_| std::io::Error::other("process-wrap did not return a tokio child"))
}

/// One running copy of the app: a child of this daemon, or a process an earlier
/// daemon started and this one adopted.
#[derive(Debug)]
pub struct ProcessInstance {
    index: usize,
    addr: SocketAddr,
    log: PathBuf,
    /// Written by the supervisor on every exit and restart; read by the getters.
    status: Arc<Mutex<Status>>,
    /// Tells the supervisor how to end: stop (with the grace) or let go. The
    /// first request wins; the supervisor checks it before every restart, so an
    /// instance that was asked to end never comes back.
    end_tx: watch::Sender<Option<Ending>>,
    /// Turns true once the supervisor is done (stopped, or let go).
    done_rx: watch::Receiver<bool>,
}

impl ProcessInstance {
    /// Spawns the first process, records it, and starts its supervisor. On
    /// success the instance owns `launch.port` and gives it back to `ports` when
    /// it has stopped for good.
    pub(super) fn spawn(
        launch: Launch,
        ports: Arc<Mutex<PortBook>>,
        book: Arc<ProcessBook>,
    ) -> std::io::Result<Arc<ProcessInstance>> {
        let mut child = launch.spawn()?;
        let pid = child.id().unwrap_or(0);
        if let Err(e) = book.started(launch.record(pid), None) {
            // Nothing unrecorded may run: a later daemon could not find it.
            pid::signal_group(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = child.start_kill();
            return Err(std::io::Error::other(format!("recording the process: {e}")));
        }
        Ok(Self::supervise(
            launch,
            pid,
            Running::Child(child),
            ports,
            book,
        ))
    }

    /// Takes over `pid`, a process of `launch` that an earlier daemon started and
    /// that still runs (the caller checked it), without restarting it.
    pub(super) fn adopt(
        launch: Launch,
        pid: u32,
        watch: ExitWatch,
        ports: Arc<Mutex<PortBook>>,
        book: Arc<ProcessBook>,
    ) -> Arc<ProcessInstance> {
        logs::marker(
            &launch.log,
            &format!("adopted pid {pid} version {}", launch.version),
        );
        Self::supervise(launch, pid, Running::Adopted(watch), ports, book)
    }

    fn supervise(
        launch: Launch,
        pid: u32,
        running: Running,
        ports: Arc<Mutex<PortBook>>,
        book: Arc<ProcessBook>,
    ) -> Arc<ProcessInstance> {
        let status = Arc::new(Mutex::new(Status {
            pid,
            ..Status::default()
        }));
        let (end_tx, end_rx) = watch::channel(None);
        let (done_tx, done_rx) = watch::channel(false);
        let (index, port, log) = (launch.index, launch.port, launch.log.clone());
        let supervisor = Supervisor::new(launch, status.clone(), end_rx, book);
        tokio::spawn(async move {
            // A port let go of stays taken: its process still listens on it.
            if supervisor.run(running).await == Ended::Stopped {
                ports.lock().unwrap().release(port);
            }
            done_tx.send_replace(true);
        });
        Arc::new(ProcessInstance {
            index,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            log,
            status,
            end_tx,
            done_rx,
        })
    }

    /// Whether it has ended for good (stopped or let go).
    pub(super) fn is_finished(&self) -> bool {
        *self.done_rx.borrow()
    }

    /// The current process (also its process group).
    pub(super) fn pid(&self) -> u32 {
        self.status.lock().unwrap().pid
    }

    /// Asks the supervisor to end the instance `ending`'s way (the first request
    /// wins) and waits until it has.
    async fn end(&self, ending: Ending) {
        self.end_tx.send_if_modified(|asked| {
            let first = asked.is_none();
            if first {
                *asked = Some(ending);
            }
            first
        });
        let mut done = self.done_rx.clone();
        // Err means the supervisor is gone, which also means it has ended.
        let _ = done.wait_for(|done| *done).await;
    }
}

#[async_trait]
impl Instance for ProcessInstance {
    fn index(&self) -> usize {
        self.index
    }

    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn id(&self) -> String {
        self.pid().to_string()
    }

    fn restarts(&self) -> u32 {
        self.status.lock().unwrap().restarts
    }

    fn exited(&self) -> Option<ExitInfo> {
        self.status.lock().unwrap().exited.clone()
    }

    async fn tail_logs(&self, lines: usize) -> Vec<String> {
        logs::tail(&self.log, lines).await
    }

    async fn stop(&self, grace: Duration) {
        self.end(Ending::Stop(grace)).await;
    }

    /// The sockets its session listens on: the app and any workers it forked.
    fn listening(&self) -> Option<Vec<SocketAddr>> {
        let status = self.status.lock().unwrap();
        if status.exited.is_some() {
            return None;
        }
        let session = crate::procs::session_members(status.pid as crate::procs::Pid);
        drop(status);
        Some(crate::procs::sockets::listening(&session))
    }

    /// Keeps the process running and its record, so the next daemon adopts it.
    async fn release(&self, _grace: Duration) {
        self.end(Ending::Release).await;
    }
}
