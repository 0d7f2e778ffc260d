//! Where processes listen: the TCP sockets in LISTEN state (`/proc/net/tcp`,
//! `/proc/net/tcp6`) whose inode one of the processes holds open
//! (`/proc/<pid>/fd`). This is how teal sees that an app listens on a port it
//! was not given, or on every interface.
//!
//! `/proc/net/tcp*` lists the sockets of the reader's network namespace, which
//! is the instances' (the process runtime does not give them one of their own).

use std::collections::BTreeSet;
use std::fs;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use super::Pid;

/// `st` of a socket in LISTEN state.
const LISTEN: &str = "0A";

/// The addresses the processes `pids` listen on (TCP), sorted, without repeats.
pub fn listening(pids: &BTreeSet<Pid>) -> Vec<SocketAddr> {
    let inodes = socket_inodes(pids);
    if inodes.is_empty() {
        return Vec::new();
    }
    let mut found = BTreeSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = fs::read_to_string(table) else {
            continue;
        };
        // "sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ..."
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state), Some(inode)) =
                (fields.get(1), fields.get(3), fields.get(9))
            else {
                continue;
            };
            if *state != LISTEN {
                continue;
            }
            if let (Ok(inode), Some(addr)) = (inode.parse::<u64>(), parse_addr(local))
                && inodes.contains(&inode)
            {
                found.insert(addr);
            }
        }
    }
    found.into_iter().collect()
}

/// The inodes of the sockets the processes hold open.
fn socket_inodes(pids: &BTreeSet<Pid>) -> BTreeSet<u64> {
    let mut inodes = BTreeSet::new();
    for pid in pids {
        let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(target) = fs::read_link(fd.path())
                && let Some(inode) = target
                    .to_str()
                    .and_then(|t| t.strip_prefix("socket:["))
                    .and_then(|t| t.strip_suffix(']'))
                    .and_then(|t| t.parse().ok())
            {
                inodes.insert(inode);
            }
        }
    }
    inodes
}

/// "0100007F:1F90" → 127.0.0.1:8080: the address as the kernel's 32-bit words
/// in host byte order, then the port in hex.
pub(super) fn parse_addr(text: &str) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words = |hex: &str| -> Option<Vec<[u8; 4]>> {
        (0..hex.len() / 8)
            .map(|i| {
                let word = u32::from_str_radix(hex.get(i * 8..i * 8 + 8)?, 16).ok()?;
                Some(word.to_ne_bytes())
            })
            .collect()
    };
    let ip = match ip.len() {
        8 => Ipv4Addr::from(*words(ip)?.first()?).into(),
        32 => {
            let bytes: Vec<u8> = words(ip)?.concat();
            Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?).into()
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}
