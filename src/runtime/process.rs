//! The process runtime: instances are local child processes on free loopback ports.
