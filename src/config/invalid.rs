//! The one error type of validation: a message and where in the file it points.
//!
//! Every resolving file (`resolve.rs` and the files it calls) returns it; the
//! module's `parse` turns it into a located [`ConfigError`](super::ConfigError).
//! It does not know the file or its text.

use std::ops::Range;

use toml::Spanned;

/// A validation failure: a message and the byte span of the value it is about.
#[derive(Debug)]
pub(super) struct Invalid {
    pub span: Option<Range<usize>>,
    pub message: String,
}

impl Invalid {
    pub fn at<T>(value: &Spanned<T>, message: impl Into<String>) -> Invalid {
        Invalid {
            span: Some(value.span()),
            message: message.into(),
        }
    }

    pub fn nowhere(message: impl Into<String>) -> Invalid {
        Invalid {
            span: None,
            message: message.into(),
        }
    }
}
