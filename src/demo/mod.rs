//! `teal demo`: the blue-green walk-through end to end under load, and the demo app it deploys.

pub mod app;
pub mod scenario;
