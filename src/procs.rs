//! What `/proc` says about processes: whether a pid still runs, its parent,
//! group and session, its children, its command line and environment, and
//! (`sockets`) where a set of processes listens.
//!
//! Read-only and Linux only, like the rest of teal: nothing here signals or
//! waits for a process. The nginx router reads its master's workers here; the
//! process runtime reads an instance's sessions, orphans and sockets.

pub mod sockets;

use std::collections::BTreeSet;
use std::fs;

/// A process id.
pub type Pid = i32;

/// The fields of `/proc/<pid>/stat` teal reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// `R`, `S`, `Z` (zombie) ...
    pub state: char,
    pub ppid: Pid,
    /// The process group.
    pub pgrp: Pid,
    /// The session.
    pub session: Pid,
    /// When it started: clock ticks after boot (field 22). With the pid, it
    /// names one process: a pid reused later has another start time.
    pub start_time: u64,
}

impl Stat {
    pub fn is_zombie(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// `/proc/<pid>/stat`, zombies included; None when there is no such process.
pub fn stat(pid: Pid) -> Option<Stat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid pgrp session ...": comm may contain spaces and parentheses.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgrp = fields.next()?.parse().ok()?;
    let session = fields.next()?.parse().ok()?;
    // Fields 7..=21 lie between the session and the start time.
    let start_time = fields.nth(15)?.parse().ok()?;
    Some(Stat {
        state,
        ppid,
        pgrp,
        session,
        start_time,
    })
}

/// The living (not zombie) children of `pid`; empty when it does not run.
pub fn children(pid: Pid) -> BTreeSet<Pid> {
    if !alive(pid) {
        return BTreeSet::new();
    }
    all_children(pid)
        .into_iter()
        .filter(|child| stat(*child).is_some_and(|s| s.ppid == pid && !s.is_zombie()))
        .collect()
}

/// Every child of `pid` with its stat, zombies included.
pub fn children_with_stat(pid: Pid) -> Vec<(Pid, Stat)> {
    all_children(pid)
        .into_iter()
        .filter_map(|child| Some((child, stat(child)?)))
        .filter(|(_, s)| s.ppid == pid)
        .collect()
}

fn all_children(pid: Pid) -> BTreeSet<Pid> {
    match listed_children(pid) {
        Some(listed) => listed,
        // Kernels without CONFIG_PROC_CHILDREN: scan every process's parent.
        None => scan(|s| s.ppid == pid),
    }
}

/// True while `pid` exists and is not a zombie.
pub fn alive(pid: Pid) -> bool {
    stat(pid).is_some_and(|s| !s.is_zombie())
}

/// The living members of session `sid` (its leader included while it runs).
pub fn session_members(sid: Pid) -> BTreeSet<Pid> {
    if sid <= 1 {
        return BTreeSet::new();
    }
    scan(|s| s.session == sid && !s.is_zombie())
}

/// Every living process, with its stat.
pub fn every_process() -> Vec<(Pid, Stat)> {
    pids()
        .filter_map(|pid| Some((pid, stat(pid)?)))
        .filter(|(_, s)| !s.is_zombie())
        .collect()
}

/// The command line as the process shows it (nginx rewrites it to its title).
pub fn title(pid: Pid) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| {
            String::from_utf8_lossy(&raw)
                .replace('\0', " ")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

/// "nginx (pid 123)": the program's name as its command line shows it
/// (nginx's title starts "nginx: master process"), else the kernel's name.
pub fn describe(pid: Pid) -> String {
    let title = title(pid);
    let from_title = title
        .split_whitespace()
        .next()
        .map(|first| first.trim_end_matches(':'))
        .and_then(|first| first.rsplit('/').next())
        .filter(|name| !name.is_empty())
        .map(str::to_owned);
    let name = from_title.unwrap_or_else(|| {
        fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|comm| comm.trim().to_owned())
            .unwrap_or_else(|_| "a process".into())
    });
    format!("{name} (pid {pid})")
}

/// Whether the environment `pid` started with holds every `NAME=value` of
/// `wanted`; false when it cannot be read (another user's process, a zombie).
pub fn environ_has(pid: Pid, wanted: &[(&str, &str)]) -> bool {
    let Ok(raw) = fs::read(format!("/proc/{pid}/environ")) else {
        return false;
    };
    let vars: Vec<&[u8]> = raw.split(|b| *b == 0).collect();
    wanted.iter().all(|(name, value)| {
        let entry = format!("{name}={value}");
        vars.contains(&entry.as_bytes())
    })
}

fn pids() -> impl Iterator<Item = Pid> {
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<Pid>().ok())
}

fn scan(keep: impl Fn(&Stat) -> bool) -> BTreeSet<Pid> {
    pids()
        .filter(|pid| stat(*pid).is_some_and(|s| keep(&s)))
        .collect()
}

/// The children every thread of `pid` lists; None when the kernel does not list them.
fn listed_children(pid: Pid) -> Option<BTreeSet<Pid>> {
    let mut found = BTreeSet::new();
    for task in fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let text = fs::read_to_string(task.ok()?.path().join("children")).ok()?;
        found.extend(
            text.split_whitespace()
                .filter_map(|p| p.parse::<Pid>().ok()),
        );
    }
    Some(found)
}

#[cfg(test)]
mod tests;
