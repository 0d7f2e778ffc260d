//! Free loopback ports for new instances.
//!
//! The kernel picks the port (bind `127.0.0.1:0`), and the book remembers what this
//! process handed out: a port in use by an instance of ours may be unbound for a
//! moment (between a crash and its restart), and a port handed out a moment ago may
//! not be bound yet, so the kernel could offer either again.

use std::collections::{HashSet, VecDeque};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};

/// How many released ports are kept out of circulation for a while.
const RECENT: usize = 256;
/// How many kernel offers to try before giving up.
const ATTEMPTS: usize = 64;

#[derive(Debug, Default)]
pub(super) struct PortBook {
    /// Ports of instances that are not stopped yet (they restart on the same port).
    in_use: HashSet<u16>,
    /// Recently released ports, oldest first: their process may still be exiting.
    recent: VecDeque<u16>,
}

impl PortBook {
    /// A free loopback port no instance of ours holds or held recently.
    pub(super) fn allocate(&mut self) -> std::io::Result<u16> {
        for _ in 0..ATTEMPTS {
            let port = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?
                .local_addr()?
                .port();
            if !self.in_use.contains(&port) && !self.recent.contains(&port) {
                self.in_use.insert(port);
                return Ok(port);
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            "no free loopback port found",
        ))
    }

    /// An adopted instance already listens on `port`: never hand it out.
    pub(super) fn hold(&mut self, port: u16) {
        self.in_use.insert(port);
    }

    /// The instance holding `port` stopped for good.
    pub(super) fn release(&mut self, port: u16) {
        if self.in_use.remove(&port) {
            if self.recent.len() == RECENT {
                self.recent.pop_front();
            }
            self.recent.push_back(port);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_hands_out_a_port_twice_while_held() {
        let mut book = PortBook::default();
        let ports: Vec<u16> = (0..50).map(|_| book.allocate().unwrap()).collect();
        let distinct: HashSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len());
        book.release(ports[0]);
        assert!(book.recent.contains(&ports[0]));
        assert!(!book.in_use.contains(&ports[0]));
    }
}
