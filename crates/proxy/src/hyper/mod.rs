//! hyper's path: what the lean path (`crate::lean`) hands over, served by
//! hyper for the rest of the connection's life. That is h2c, HTTP/1.0,
//! absolute-form targets, upgrades (websockets), `Expect`, chunked or large
//! request bodies, and heads the lean parser refuses (hyper answers 400/431).
//! Map:
//!
//! - `serve`: one connection (HTTP/1.1 with parking, or h2c for as long as it
//!   has streams), the per-request entry point.
//! - `h2`: h2c's limits (the HTTP/2 settings, the rapid-reset count).
//! - `forward`: one request upstream through hyper, the proxy's own answers.
//! - `tunnel`: an upgraded connection (websocket) relayed both ways, and
//!   closed with a 1001 close frame at a drain's deadline (`tunnel/frames`:
//!   WebSocket frame boundaries).
//! - `screen`: what is refused (400) or dropped before routing: Host, header
//!   names with an underscore.
//! - `headers`: the head rewriting (hop-by-hop, X-Forwarded-*, origin-form);
//!   `grpc`: an h2c service's HTTP/2 head and the verdict on a gRPC call.
//! - `body`: the response body, with the in-flight claim riding on it;
//!   `watched`: an HTTP/2 one cut when the client's window stays shut.
//!
//! Endpoint picking and the retry rules are shared with the lean path
//! (`crate::retry`); the upstream connections are `crate::upstream::sender`.

mod body;
mod forward;
mod grpc;
mod h2;
mod headers;
mod logged;
mod screen;
mod serve;
mod tunnel;
mod watched;

pub(crate) use serve::{Protocols, serve_h2, serve_http1};
