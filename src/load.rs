//! A load client that counts every outcome, for the demo, the tests and benchmarks.
//!
//! It never retries: one request is one outcome, a 2xx, another status, or a
//! transport error. It stops by flag and awaits what is still in flight.
