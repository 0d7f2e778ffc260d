//! Runs of a service's instance output: one run is one start of a slot (the
//! instances of one version). The slot's current run is its
//! `<slot>-<instance>.log` files next to `<slot>.run` (version, start time); a
//! new start of the slot first moves them, whatever instance indexes they
//! have, to `runs/<number>/` (`<instance>.log` and `run`), so an old
//! version's output, including why it stopped, outlives later deploys and no
//! stale file of an instance index that no longer exists stays current.
//!
//! Kept runs are bounded per service: the newest [`KEEP_RUNS`], at most
//! [`KEEP_BYTES`] together (oldest removed first; a lone run over the bound
//! keeps the end of each file). The current runs of the two slots are not
//! counted: they are the live output. Reading a run is `logs.rs`.

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::runtime::{LogRun, RuntimeError, log_path};
use crate::slot::Slot;

/// Archived runs kept per service.
pub const KEEP_RUNS: usize = 10;
/// Bytes of archived runs kept per service.
pub const KEEP_BYTES: u64 = 64 * 1024 * 1024;

/// What a run was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct RunInfo {
    slot: Slot,
    version: String,
    /// RFC 3339 UTC (milliseconds) it started; empty for files an older teal wrote.
    started: String,
}

/// Where a run's files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Files {
    /// A slot's current files, `<slot>-<instance>.log`: found as they appear.
    Slot {
        state_dir: PathBuf,
        service: String,
        slot: Slot,
    },
    /// An archived run's files, by instance.
    Fixed(Vec<(usize, PathBuf)>),
}

/// Starts a new run of `slot`: archives its current one, records this one
/// and bounds what is kept.
pub(super) fn begin(
    state_dir: &Path,
    service: &str,
    slot: Slot,
    version: &str,
) -> std::io::Result<()> {
    let dir = service_dir(state_dir, service);
    std::fs::create_dir_all(&dir)?;
    archive(&dir, slot)?;
    let info = RunInfo {
        slot,
        version: version.to_string(),
        started: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
    };
    write_private(
        &dir.join(format!("{slot}.run")),
        &serde_json::to_vec(&info)?,
    )?;
    prune(&dir.join("runs"), KEEP_RUNS, KEEP_BYTES)
}

/// The files of `run`, or why there are none.
pub(super) fn files(state_dir: &Path, service: &str, run: &LogRun) -> Result<Files, RuntimeError> {
    let current = |slot: Slot| Files::Slot {
        state_dir: state_dir.to_path_buf(),
        service: service.to_string(),
        slot,
    };
    let dir = service_dir(state_dir, service);
    let all = runs(&dir);
    let found = match run {
        LogRun::Slot(slot) => return Ok(current(*slot)),
        LogRun::Version(version) => all.iter().find(|r| &r.info.version == version),
        LogRun::Before(live) => all
            .iter()
            .find(|r| r.archived.is_some() || r.info.slot != *live),
    };
    match found {
        Some(Run {
            archived: Some(dir),
            ..
        }) => Ok(Files::Fixed(instance_files(dir))),
        Some(run) => Ok(current(run.info.slot)),
        None => {
            let kept: Vec<&str> = all.iter().map(|r| r.info.version.as_str()).collect();
            let what = match run {
                LogRun::Version(version) => format!("version {version}"),
                _ => "from before the live run".to_string(),
            };
            Err(RuntimeError::InvalidSpec(format!(
                "no output of {service} {what} is kept (kept, newest first: {}); teal keeps \
                 the two slots' latest runs and {KEEP_RUNS} earlier ones, at most {} MiB",
                if kept.is_empty() {
                    "none".to_string()
                } else {
                    kept.join(", ")
                },
                KEEP_BYTES / (1024 * 1024)
            )))
        }
    }
}

/// One run found on disk.
struct Run {
    info: RunInfo,
    /// Its directory, for an archived run; None for a slot's current run.
    archived: Option<PathBuf>,
}

/// Every run of the service in `dir`, newest first.
fn runs(dir: &Path) -> Vec<Run> {
    let mut all = Vec::new();
    for slot in [Slot::Blue, Slot::Green] {
        if let Some(info) = read_info(&dir.join(format!("{slot}.run")), slot) {
            all.push(Run {
                info,
                archived: None,
            });
        }
    }
    let mut archived: Vec<(u64, PathBuf)> = numbered(&dir.join("runs"));
    archived.reverse();
    for (_, path) in archived {
        if let Some(info) = read_info(&path.join("run"), Slot::Blue) {
            all.push(Run {
                info,
                archived: Some(path),
            });
        }
    }
    // Stable: a tie keeps current runs first, then archived ones newest first.
    all.sort_by(|a, b| b.info.started.cmp(&a.info.started));
    all
}

fn read_info(path: &Path, slot: Slot) -> Option<RunInfo> {
    let bytes = std::fs::read(path).ok()?;
    Some(serde_json::from_slice(&bytes).unwrap_or(RunInfo {
        slot,
        version: "unknown".into(),
        started: String::new(),
    }))
}

/// Moves the current run of `slot` (every `<slot>-<n>.log` and `<slot>.run`)
/// to a new numbered directory under `runs/`.
fn archive(dir: &Path, slot: Slot) -> std::io::Result<()> {
    let run_file = dir.join(format!("{slot}.run"));
    let files = slot_files(dir, slot);
    if files.is_empty() {
        let _ = std::fs::remove_file(&run_file);
        return Ok(());
    }
    let info = read_info(&run_file, slot).unwrap_or(RunInfo {
        slot,
        version: "unknown".into(),
        started: String::new(),
    });
    let runs = dir.join("runs");
    std::fs::create_dir_all(&runs)?;
    let next = numbered(&runs).last().map_or(1, |(n, _)| n + 1);
    let target = runs.join(format!("{next:06}"));
    std::fs::create_dir(&target)?;
    for (instance, path) in files {
        std::fs::rename(&path, target.join(format!("{instance}.log")))?;
    }
    write_private(&target.join("run"), &serde_json::to_vec(&info)?)?;
    let _ = std::fs::remove_file(&run_file);
    Ok(())
}

/// Removes the oldest archived runs until at most `keep` remain and they hold
/// at most `bytes`; a lone run over `bytes` keeps the end of each file.
pub(super) fn prune(runs: &Path, keep: usize, bytes: u64) -> std::io::Result<()> {
    let mut all = numbered(runs);
    let size = |dir: &Path| -> u64 {
        instance_files(dir)
            .iter()
            .filter_map(|(_, p)| std::fs::metadata(p).ok())
            .map(|m| m.len())
            .sum()
    };
    let mut total: u64 = all.iter().map(|(_, d)| size(d)).sum();
    while all.len() > keep || (all.len() > 1 && total > bytes) {
        let (_, oldest) = all.remove(0);
        total = total.saturating_sub(size(&oldest));
        std::fs::remove_dir_all(&oldest)?;
    }
    if let Some((_, last)) = all.first()
        && total > bytes
    {
        let files = instance_files(last);
        let each = bytes / files.len().max(1) as u64;
        for (_, path) in files {
            keep_end(&path, each)?;
        }
    }
    Ok(())
}

/// Cuts `path` to its last `bytes` bytes.
fn keep_end(path: &Path, bytes: u64) -> std::io::Result<()> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    if len <= bytes {
        return Ok(());
    }
    file.seek(SeekFrom::Start(len - bytes))?;
    let mut end = Vec::new();
    file.read_to_end(&mut end)?;
    let cut = path.with_extension("cut");
    write_private(&cut, &end)?;
    std::fs::rename(cut, path)
}

/// The numbered subdirectories of `runs`, in ascending order.
fn numbered(runs: &Path) -> Vec<(u64, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(runs) else {
        return Vec::new();
    };
    let mut all: Vec<(u64, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path())))
        .collect();
    all.sort();
    all
}

/// `<n>.log` in an archived run's directory, by instance.
fn instance_files(dir: &Path) -> Vec<(usize, PathBuf)> {
    matching(dir, |name| name.strip_suffix(".log")?.parse().ok())
}

/// `<slot>-<n>.log` in the service's directory, by instance.
fn slot_files(dir: &Path, slot: Slot) -> Vec<(usize, PathBuf)> {
    let prefix = format!("{slot}-");
    matching(dir, |name| {
        name.strip_prefix(&prefix)?
            .strip_suffix(".log")?
            .parse()
            .ok()
    })
}

fn matching(dir: &Path, index: impl Fn(&str) -> Option<usize>) -> Vec<(usize, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut all: Vec<(usize, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| Some((index(e.file_name().to_str()?)?, e.path())))
        .collect();
    all.sort();
    all
}

fn service_dir(state_dir: &Path, service: &str) -> PathBuf {
    log_path(state_dir, service, Slot::Blue, 0)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Writes a file only teal's user may read (as the logs themselves).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_dir(runs: &Path, n: u64, bytes: usize) {
        let dir = runs.join(format!("{n:06}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("0.log"), vec![b'x'; bytes]).unwrap();
        std::fs::write(dir.join("run"), b"{}").unwrap();
    }

    #[test]
    fn kept_runs_are_bounded_in_count_and_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let runs = dir.path();
        for n in 1..=5 {
            run_dir(runs, n, 100);
        }
        prune(runs, 3, 10_000).unwrap();
        let left: Vec<u64> = numbered(runs).into_iter().map(|(n, _)| n).collect();
        assert_eq!(left, [3, 4, 5], "the newest three");
        prune(runs, 3, 250).unwrap();
        let left: Vec<u64> = numbered(runs).into_iter().map(|(n, _)| n).collect();
        assert_eq!(left, [4, 5], "at most 250 bytes");
        run_dir(runs, 6, 1000);
        prune(runs, 3, 250).unwrap();
        let left: Vec<u64> = numbered(runs).into_iter().map(|(n, _)| n).collect();
        assert_eq!(left, [6], "a lone big run stays");
        let len = std::fs::metadata(runs.join("000006/0.log")).unwrap().len();
        assert_eq!(len, 250, "cut to its end");
    }

    #[test]
    fn a_new_start_archives_every_file_of_the_slot() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path();
        begin(state, "web", Slot::Blue, "1.0.0").unwrap();
        for i in 0..3 {
            std::fs::write(log_path(state, "web", Slot::Blue, i), format!("v1 {i}\n")).unwrap();
        }
        begin(state, "web", Slot::Blue, "2.0.0").unwrap();
        for i in 0..3 {
            assert!(
                !log_path(state, "web", Slot::Blue, i).exists(),
                "instance {i} archived"
            );
        }
        let found = files(state, "web", &LogRun::Version("1.0.0".into())).unwrap();
        let Files::Fixed(paths) = found else {
            panic!("archived: {found:?}")
        };
        assert_eq!(paths.len(), 3);
        assert_eq!(std::fs::read_to_string(&paths[2].1).unwrap(), "v1 2\n");
        assert_eq!(
            files_before(state, Slot::Green),
            Some(Files::Slot {
                state_dir: state.to_path_buf(),
                service: "web".into(),
                slot: Slot::Blue
            }),
            "before the live green: blue's current run"
        );
        let err = files(state, "web", &LogRun::Version("9".into())).unwrap_err();
        assert!(
            err.to_string().contains("kept, newest first: 2.0.0, 1.0.0"),
            "{err}"
        );
    }

    fn files_before(state: &Path, live: Slot) -> Option<Files> {
        files(state, "web", &LogRun::Before(live)).ok()
    }
}
