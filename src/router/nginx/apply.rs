//! The safe switch: write the new config beside the old one, check it with
//! `nginx -t`, rename it into place, reload, and confirm the reload happened.
//!
//! Confirmed means: the master has worker processes it did not have before, and
//! every worker of the old generation has exited or begun its graceful shutdown
//! (which closes its listening sockets first). From then on every new request is
//! served by the new config. nginx keeps its previous config when a reload fails,
//! so on any failure the previous file is put back and the error carries nginx's
//! own words: disk and nginx agree again, and production is untouched.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use super::log_tail::{file_len, lines_since};
use super::procs::{self, Pid};
use super::target::Target;
use crate::router::RouterError;

/// How long a reload may take before teal calls it failed. nginx re-reads the
/// config, starts workers and, 100 ms later, retires the old ones.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(20);
/// After logging an error a reload may still succeed: nginx retries a busy port
/// for about 2.5 s before it gives up. Longer than that without new workers: failed.
const GIVE_UP_AFTER_ERROR: Duration = Duration::from_secs(4);
const POLL: Duration = Duration::from_millis(5);

/// What a confirmed reload retired.
#[derive(Debug, Default)]
pub(crate) struct Reloaded {
    /// The previous generation's workers: in-flight requests finish on them.
    pub retired: BTreeSet<Pid>,
    /// The new generation's workers.
    pub workers: BTreeSet<Pid>,
}

/// Installs `text` as the config nginx runs with. `previous` is the text in force
/// (None when nothing was installed yet); it is restored on any failure.
pub(crate) async fn apply(
    target: &mut Target,
    text: &str,
    previous: Option<&str>,
) -> Result<Reloaded, RouterError> {
    let live = target.live_file();
    let staging = target.staging_file();
    write_synced(&staging, text).map_err(|e| io_error(&staging, e))?;
    if let Err(message) = target.check_staged().await {
        let _ = fs::remove_file(&staging);
        return Err(rejected("nginx -t", message));
    }
    install(&staging, &live).map_err(|e| io_error(&live, e))?;
    if let Err(message) = target.check_installed().await {
        restore(target, previous);
        return Err(rejected("nginx -t", message));
    }

    let Some(master) = target.master() else {
        // Not running (first start, or it died): start it on the new file.
        return match target.start().await {
            Ok(master) => Ok(Reloaded {
                retired: BTreeSet::new(),
                workers: procs::children(master),
            }),
            Err(e) => {
                restore(target, previous);
                Err(e)
            }
        };
    };
    let old = procs::children(master);
    let log = target.error_log();
    let offset = log.as_deref().map(file_len).unwrap_or(0);
    if let Err(message) = target.reload(master).await {
        restore(target, previous);
        return Err(rejected("reload", message));
    }

    let started = Instant::now();
    let mut first_error: Option<Instant> = None;
    loop {
        if !procs::alive(master) {
            restore(target, previous);
            let detail = log
                .as_deref()
                .map(|log| lines_since(log, offset, true))
                .unwrap_or_default();
            return Err(rejected(
                "reload",
                format!("the nginx master {master} exited during the reload. {detail}"),
            ));
        }
        let now = procs::children(master);
        let new: BTreeSet<Pid> = now.difference(&old).copied().collect();
        if !new.is_empty() {
            let retiring = old
                .iter()
                .all(|pid| !now.contains(pid) || procs::is_shutting_down(*pid));
            if retiring {
                return Ok(Reloaded {
                    retired: old,
                    workers: new,
                });
            }
        } else if let Some(log) = &log {
            // nginx logs why it keeps the old config, e.g. a port that is taken.
            let logged = lines_since(log, offset, true);
            if !logged.is_empty() {
                let since = *first_error.get_or_insert_with(Instant::now);
                if since.elapsed() > GIVE_UP_AFTER_ERROR {
                    restore(target, previous);
                    return Err(rejected("reload", logged));
                }
            }
        }
        if started.elapsed() > RELOAD_TIMEOUT {
            restore(target, previous);
            return Err(rejected(
                "reload",
                format!(
                    "no new worker processes within {RELOAD_TIMEOUT:?} of the reload; see nginx's error log"
                ),
            ));
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Puts the previous text back (or removes the file when there was none). nginx
/// itself still runs the previous config: a failed check or reload changes nothing.
pub(crate) fn restore(target: &Target, previous: Option<&str>) {
    let live = target.live_file();
    let result = match previous {
        Some(text) => {
            let staging = target.staging_file();
            write_synced(&staging, text).and_then(|()| install(&staging, &live))
        }
        None => match fs::remove_file(&live) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        },
    };
    if let Err(e) = result {
        tracing::error!(file = %live.display(), "could not restore the previous nginx config: {e}");
    }
}

fn rejected(stage: &str, message: String) -> RouterError {
    RouterError::Nginx {
        stage: stage.into(),
        message: message.trim().to_string(),
    }
}

fn io_error(path: &Path, e: std::io::Error) -> RouterError {
    RouterError::Other(format!("cannot write {}: {e}", path.display()))
}

fn write_synced(path: &Path, text: &str) -> std::io::Result<()> {
    let mut file = fs::File::create(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// Renames `staging` over `live` and syncs the directory, so the swap is atomic
/// and durable.
fn install(staging: &Path, live: &Path) -> std::io::Result<()> {
    fs::rename(staging, live)?;
    if let Some(dir) = live.parent() {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
