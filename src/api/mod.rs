//! The control API between the `teal` CLI and `teal serve`: HTTP/JSON over a Unix
//! socket (mode 0600), with long actions streamed as NDJSON events.
//!
//! `server` maps routes to daemon calls; `client` is what the CLI uses. The
//! request and response types both sides serialize are not here but in
//! [`crate::wire`], so that `deploy/` can speak them without depending on the API.

pub mod client;
pub mod server;
