//! The messages of a hand-over, in the order they are sent, and the
//! descriptors each carries (on a [`FdChannel`](super::channel::FdChannel)).

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};
use teal_proxy::ListenerName;

use crate::metrics::SlotCounts;

/// The `Upgrade` header value of `POST /v1/upgrade` and its 101 answer.
pub const PROTOCOL: &str = "teal-handover/1";

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// Successor → predecessor, first, once the connection is a bare socket:
    /// send the sockets. (Sent before anything else, nothing can sit in an
    /// HTTP client's read buffer, where descriptors would be lost.)
    Hello { version: String, pid: u32 },
    /// Predecessor → successor, in answer to `Hello`: what it hands over. Descriptors: each
    /// listener's sockets in order, then the admin listener (when `admin`),
    /// then the state directory's lock file.
    Sockets {
        listeners: Vec<ListenerSockets>,
        admin: Option<SocketAddr>,
        /// The predecessor's teal version and pid, for the successor's log.
        version: String,
        pid: u32,
        /// Its metrics counters so far, which the successor's start from.
        #[serde(default)]
        counters: Vec<SlotCounts>,
    },
    /// Successor → predecessor: it serves everything now; leave.
    Ready { version: String, pid: u32 },
    /// Predecessor → successor: a client connection at a request boundary,
    /// nothing read from it. One descriptor.
    Conn {
        listener: ListenerName,
        client: IpAddr,
    },
    /// Predecessor → successor: nothing more comes, and the instances it did
    /// not hand over (a standby kept for rollback) are stopped; it exits.
    /// Its final metrics counters.
    Done {
        connections: u64,
        #[serde(default)]
        counters: Vec<SlotCounts>,
    },
}

/// One listener's sockets, as counted in [`Message::Sockets`].
#[derive(Debug, Serialize, Deserialize)]
pub struct ListenerSockets {
    pub name: ListenerName,
    pub addr: SocketAddr,
    pub sockets: usize,
}
