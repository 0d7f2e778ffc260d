//! The control API between the `teal` CLI and `teal serve`: HTTP/JSON over a Unix
//! socket (mode 0600), with long actions streamed as NDJSON events.
//!
//! `wire` is the one place the request and response types live; `server` maps
//! routes to daemon calls; `client` is what the CLI uses.

pub mod client;
pub mod server;
pub mod wire;
