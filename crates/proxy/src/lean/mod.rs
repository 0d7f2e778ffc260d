//! The lean HTTP/1.1 path: the common request (HTTP/1.1, origin-form, no
//! upgrade, no `Expect`, no chunked request body) served without hyper. The
//! request head is parsed in place and copied upstream with only the
//! forwarding lines changed, the exchange with the upstream runs inside the
//! client connection's task, and the response head is copied back the same
//! way: no header maps, no second task, no channels. nginx works like this.
//!
//! Anything else falls back to hyper (`crate::hyper`), which gets the socket with
//! the bytes already read put back in front and serves the connection from
//! then on. Map:
//!
//! - `serve`: the connection loop (read a head, park while idle, fall back).
//! - `buffers`: a connection's buffers, and the worker's spare ones.
//! - `request`, `response`: the heads, parsed and rewritten.
//! - `names`: the header names acted on; `framing`: where a response body ends;
//!   `date`: the `date` header added to a response that has none.
//! - `exchange`: one request upstream (the retry loop is `crate::retry`'s,
//!   the connection `crate::upstream::raw`), relaying the body.
//! - `fuzzing`: the parsers wrapped for the fuzz targets (`fuzz/`), hidden.

mod buffers;
mod date;
mod exchange;
mod framing;
#[doc(hidden)]
pub mod fuzzing;
mod names;
mod request;
mod response;
mod serve;

pub(crate) use serve::serve;
