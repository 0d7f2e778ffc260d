//! The integration tests, as one crate (one binary to build and link): real
//! daemons, processes, containers, nginx and sshd, as `TESTING.md` asks. Each
//! module below is one subject, and its tests are named `<module>::<test>`
//! (run one subject with `cargo nextest run --test it -E 'test(/^verify::/)'`).
//! What the subjects share lives in `support/`, once.
//!
//! A new test goes into the module of its subject; a new subject is a new file
//! here plus its `mod` line in the group it belongs to.

mod support;

// The binary, the demo app and the load client on their own.
mod access_log;
mod cli;
mod cli_output;
mod demo;
mod demo_app;
mod first_deploy;
mod init_check;
mod listeners;
mod load_client;
mod logs_history;
mod secrets;
mod under_systemd;
mod upgrade;

// The real binary and a real ACME server (Pebble).
mod acme;

// The real binary: maintenance and pause, builtin and nginx routers.
mod maintenance;

// The daemon in-process with the process runtime and the builtin proxy.
mod deploy_flow;
mod drain_websocket;
mod grpc;
mod hooks;
mod metrics;
mod migrations;
mod process_adopt;
mod process_runtime;
mod tls_daemon;
mod tls_zero_downtime;
mod verify;
mod zero_downtime;

// The builtin proxy on its own, with real backends.
mod limits;
mod proxy;
mod proxy_client_errors;
mod proxy_h2c;
mod proxy_handover;
mod proxy_lean;
mod proxy_parking;
mod proxy_stalls;
mod proxy_tls;
mod proxy_upgraded;
mod smuggling;
mod verify_proxy;

// The docker runtime against the real engine.
mod docker_crash;
mod docker_hooks;
mod docker_interrupted;
mod docker_runtime;
mod docker_secrets;
mod docker_zero_downtime;
mod upgrade_docker;

// The nginx router against the real nginx.
mod nginx_config;
mod nginx_grpc;
mod nginx_proxy;
mod nginx_router;
mod nginx_system;
mod nginx_tls;
mod nginx_zero_downtime;
mod upgrade_nginx;

// Remote hosts: the deploy lock, real sshd hosts, image shipping.
mod remote;
mod remote_image;
mod remote_image_load;
mod remote_lease;
mod remote_lock;
