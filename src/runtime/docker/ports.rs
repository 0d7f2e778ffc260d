//! Host ports for published container ports: picked from the kernel's ephemeral
//! range on 127.0.0.1, and remembered while a container holds them so that two
//! containers of this daemon are never handed the same one.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::{Arc, Mutex};

/// How many times a pick is retried when the kernel hands out a port we hold.
const ATTEMPTS: usize = 32;

/// The host ports containers of this daemon hold. Cloning shares the book.
#[derive(Debug, Clone, Default)]
pub(super) struct Ports {
    held: Arc<Mutex<BTreeSet<u16>>>,
}

impl Ports {
    /// A port that is free on 127.0.0.1 right now, held until `release`.
    pub(super) fn pick(&self) -> std::io::Result<u16> {
        for _ in 0..ATTEMPTS {
            let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
                .local_addr()?
                .port();
            if self.held.lock().unwrap().insert(port) {
                return Ok(port);
            }
        }
        Err(std::io::Error::other("no free loopback port found"))
    }

    /// Records a port an adopted container already holds.
    pub(super) fn hold(&self, port: u16) {
        self.held.lock().unwrap().insert(port);
    }

    pub(super) fn release(&self, port: u16) {
        self.held.lock().unwrap().remove(&port);
    }
}
