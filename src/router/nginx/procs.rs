//! What `/proc` says about nginx processes: a master's worker pids, whether a pid
//! still runs, and whether a worker is in its graceful shutdown.
//!
//! nginx offers no API for "did the reload happen": its processes are the
//! evidence. After a successful reload the master has new worker children, and
//! the old ones retitle themselves "worker process is shutting down" and exit.
//! Linux only, like the rest of teal.

use std::collections::BTreeSet;
use std::fs;

/// A process id.
pub(crate) type Pid = i32;

/// The living (not zombie) children of `pid`; empty when it does not run.
pub(crate) fn children(pid: Pid) -> BTreeSet<Pid> {
    if !alive(pid) {
        return BTreeSet::new();
    }
    let candidates = match listed_children(pid) {
        Some(listed) => listed,
        // Kernels without CONFIG_PROC_CHILDREN: scan every process's parent.
        None => scan_children(pid),
    };
    candidates
        .into_iter()
        .filter(|child| stat(*child).is_some_and(|s| s.ppid == pid && s.state != 'Z'))
        .collect()
}

/// True while `pid` exists and is not a zombie.
pub(crate) fn alive(pid: Pid) -> bool {
    stat(pid).is_some_and(|s| s.state != 'Z')
}

/// The command line as the process shows it (nginx rewrites it to its title).
pub(crate) fn title(pid: Pid) -> String {
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| {
            String::from_utf8_lossy(&raw)
                .replace('\0', " ")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

/// True when an nginx worker has started its graceful shutdown: it has closed its
/// listening sockets and idle connections and takes no new request.
pub(crate) fn is_shutting_down(pid: Pid) -> bool {
    title(pid).contains("shutting down")
}

struct Stat {
    state: char,
    ppid: Pid,
}

fn stat(pid: Pid) -> Option<Stat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ...": comm may contain spaces and parentheses.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some(Stat { state, ppid })
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

fn scan_children(parent: Pid) -> BTreeSet<Pid> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return BTreeSet::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<Pid>().ok())
        .filter(|pid| stat(*pid).is_some_and(|s| s.ppid == parent))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sees_its_own_children() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let me = std::process::id() as Pid;
        let pid = child.id() as Pid;
        assert!(children(me).contains(&pid));
        assert!(scan_children(me).contains(&pid));
        assert!(alive(pid));
        // Between fork and exec the child still carries this test's command
        // line: give the exec up to 5 s before reading the title.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !title(pid).starts_with("sleep 5") && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(title(pid).starts_with("sleep 5"), "title: {:?}", title(pid));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!alive(pid));
        assert!(!children(me).contains(&pid));
    }
}
