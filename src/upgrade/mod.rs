//! `teal serve --upgrade`: one daemon hands everything that lives over to the
//! next on the same state directory, so that no connection is refused and no
//! request is lost (issue 14). `channel` carries messages with file
//! descriptors between the two.

pub mod channel;
pub mod predecessor;
pub mod protocol;
pub mod successor;

pub use predecessor::Predecessor;
pub use successor::{Inheritance, UpgradeError};
