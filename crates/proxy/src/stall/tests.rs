use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::*;

/// A peer that reads nothing: the write fails once the buffer is full and the
/// timeout passed, and the error says so to `is_send_timeout`.
#[tokio::test]
async fn a_write_nobody_takes_times_out() {
    let (ours, _theirs) = tokio::io::duplex(16);
    let mut timed = Timed::new(ours, Duration::from_millis(50));
    let error = timed.write_all(&[0u8; 64]).await.unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    assert!(is_send_timeout(&error));
}

#[test]
fn other_errors_are_not_send_timeouts() {
    let error = io::Error::new(io::ErrorKind::TimedOut, "connect timed out");
    assert!(!is_send_timeout(&error));
}
