//! Where processes listen: the TCP sockets in LISTEN state (`/proc/net/tcp`,
//! `/proc/net/tcp6`) whose inode one of the processes holds open
//! (`/proc/<pid>/fd`). This is how teal sees that an app listens on a port it
//! was not given, or on every interface; and who holds an address teal
//! cannot listen on.
//!
//! `/proc/net/tcp*` lists the sockets of the reader's network namespace, which
//! is the instances' (the process runtime does not give them one of their own).

use std::collections::BTreeSet;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::Pid;

/// `st` of a socket in LISTEN state.
const LISTEN: &str = "0A";

/// The addresses the processes `pids` listen on (TCP), sorted, without repeats.
pub fn listening(pids: &BTreeSet<Pid>) -> Vec<SocketAddr> {
    let inodes = socket_inodes(pids);
    if inodes.is_empty() {
        return Vec::new();
    }
    let found: BTreeSet<SocketAddr> = listen_table()
        .into_iter()
        .filter(|(_, inode)| inodes.contains(inode))
        .map(|(addr, _)| addr)
        .collect();
    found.into_iter().collect()
}

/// The processes listening (TCP) where a socket bound to `addr` clashes:
/// its port on its address, or on a wildcard address that covers it (or, for
/// a wildcard `addr`, on any address of its family). Only processes whose
/// descriptors this user may read are found.
pub fn holders(addr: SocketAddr) -> BTreeSet<Pid> {
    let wanted: BTreeSet<u64> = listen_table()
        .into_iter()
        .filter(|(local, _)| clashes(*local, addr))
        .map(|(_, inode)| inode)
        .collect();
    if wanted.is_empty() {
        return BTreeSet::new();
    }
    super::pids()
        .filter(|pid| !socket_inodes(&BTreeSet::from([*pid])).is_disjoint(&wanted))
        .collect()
}

/// Who listens where `addr` would clash, as the start of a sentence:
/// "python3 (pid 4) listens", "nginx (pid 7), nginx (pid 8) listen"; this
/// process is "this teal daemon". Processes `skip` says are left out; None
/// when no other process this user can see listens there.
pub fn who_listens(addr: SocketAddr, skip: impl Fn(Pid) -> bool) -> Option<String> {
    let me = std::process::id() as Pid;
    let holders: Vec<String> = holders(addr)
        .into_iter()
        .filter(|pid| !skip(*pid))
        .map(|pid| {
            if pid == me {
                "this teal daemon".to_owned()
            } else {
                super::describe(pid)
            }
        })
        .collect();
    let verb = if holders.len() == 1 {
        "listens"
    } else {
        "listen"
    };
    (!holders.is_empty()).then(|| format!("{} {verb}", holders.join(", ")))
}

/// Whether sockets bound to `a` and `b` clash: the same port, and the same
/// address or a wildcard one that covers the other (IPv6's covers IPv4 too).
fn clashes(a: SocketAddr, b: SocketAddr) -> bool {
    let covers =
        |wild: IpAddr, other: IpAddr| wild.is_unspecified() && (wild.is_ipv6() || other.is_ipv4());
    a.port() == b.port() && (a.ip() == b.ip() || covers(a.ip(), b.ip()) || covers(b.ip(), a.ip()))
}

/// Every TCP socket in LISTEN state in this network namespace: its address
/// and its inode.
fn listen_table() -> Vec<(SocketAddr, u64)> {
    let mut table = Vec::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = fs::read_to_string(file) else {
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
            if let (Ok(inode), Some(addr)) = (inode.parse::<u64>(), parse_addr(local)) {
                table.push((addr, inode));
            }
        }
    }
    table
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
