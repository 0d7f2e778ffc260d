//! `teal demo`: the seeds' story end to end under load, and the demo app it deploys.

pub mod app;
pub mod scenario;
