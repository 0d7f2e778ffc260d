//! teal: zero-downtime blue-green deployments.
//!
//! `teal serve` (the [`daemon`]) owns everything that lives: listeners and routes
//! ([`router`], the builtin one being the `teal_proxy` crate), instances ([`runtime`]), health ([`health`]) and state
//! ([`state`]). The `teal` CLI ([`cli`]) is a thin client that reads `teal.toml`
//! ([`config`] → [`spec`]) and talks to the daemon over its control socket ([`api`]),
//! in the types of [`wire`]. The blue-green state machine lives in [`deploy`].

pub mod acme;
pub mod api;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod demo;
pub mod deploy;
pub mod dotenv;
pub mod health;
pub mod hooks;
pub mod load;
pub mod metrics;
pub mod open_files;
pub mod procs;
pub mod remote;
pub mod router;
pub mod runtime;
pub mod secrets;
pub mod slot;
pub mod spec;
pub mod state;
pub mod systemd;
pub mod upgrade;
pub mod wire;

/// What an accept loop does when `accept` fails (pause on EMFILE and the
/// like, never spin): the proxy's own rule, shared by the admin listener
/// ([`metrics`]) and the control socket ([`api`]).
pub use teal_proxy::AcceptPause;
