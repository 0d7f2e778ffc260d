//! The nginx teal drives, in either mode, behind one enum: where its config file
//! lives, how a new file is checked, who the master is and how it reloads.
//!
//! `apply.rs` runs the safe-switch algorithm on a [`Target`] and does not care
//! which mode it is in. The modes themselves live in `managed.rs` and `system.rs`.

use std::path::PathBuf;

use super::managed::Managed;
use super::procs::Pid;
use super::render::{self, Settings};
use super::routes::RouteSet;
use super::system::System;
use crate::router::RouterError;

/// The nginx teal drives.
pub(crate) enum Target {
    Managed(Managed),
    System(System),
}

impl Target {
    /// The config text for `routes` in this mode.
    pub fn render(&self, routes: &RouteSet, settings: &Settings) -> String {
        match self {
            Target::Managed(m) => render::render_main(&m.main_settings(), routes, settings),
            Target::System(_) => render::render_http(routes, settings),
        }
    }

    /// The file nginx reads: `nginx.conf` (managed) or `teal.conf` (system).
    pub fn live_file(&self) -> PathBuf {
        match self {
            Target::Managed(m) => m.conf(),
            Target::System(s) => s.conf(),
        }
    }

    /// Where a new config is written before it is checked, beside the live one.
    pub fn staging_file(&self) -> PathBuf {
        match self {
            Target::Managed(m) => m.staging(),
            Target::System(s) => s.staging(),
        }
    }

    /// `nginx -t` on the staged file, before it replaces anything.
    pub async fn check_staged(&self) -> Result<(), String> {
        match self {
            Target::Managed(m) => m.check(&m.staging()).await,
            Target::System(s) => s.check_staged().await,
        }
    }

    /// `nginx -t` on the whole installed config (system mode: the files around
    /// teal's can clash with it). Managed mode checked the whole file already.
    pub async fn check_installed(&self) -> Result<(), String> {
        match self {
            Target::Managed(_) => Ok(()),
            Target::System(s) => s.check_installed().await,
        }
    }

    /// The running master, if any.
    pub fn master(&mut self) -> Option<Pid> {
        match self {
            Target::Managed(m) => m.running(),
            Target::System(s) => s.master(),
        }
    }

    /// Starts a master on the installed config: only teal's own (managed).
    pub async fn start(&mut self) -> Result<Pid, RouterError> {
        match self {
            Target::Managed(m) => m.start().await,
            Target::System(s) => Err(RouterError::Other(format!(
                "the system nginx is not running (no live master in {}); start it first",
                s.pid_file().display()
            ))),
        }
    }

    /// Asks `master` to load the installed config.
    pub async fn reload(&mut self, master: Pid) -> Result<(), String> {
        match self {
            Target::Managed(m) => m.reload(master),
            Target::System(s) => s.reload().await,
        }
    }

    /// The error log teal can read, to quote a failed reload.
    pub fn error_log(&self) -> Option<PathBuf> {
        match self {
            Target::Managed(m) => Some(m.error_log()),
            Target::System(_) => None,
        }
    }
}
