use std::io;
use std::time::Duration;

use nix::errno::Errno;

use super::{ACCEPT_PAUSE, AcceptPause};

fn os(errno: Errno) -> io::Error {
    io::Error::from_raw_os_error(errno as i32)
}

#[test]
fn running_out_of_descriptors_or_memory_pauses() {
    let mut pause = AcceptPause::new("test");
    for errno in [Errno::EMFILE, Errno::ENFILE, Errno::ENOBUFS, Errno::ENOMEM] {
        assert_eq!(pause.after(&os(errno)), ACCEPT_PAUSE, "{errno}");
    }
}

#[test]
fn one_connection_failing_does_not_pause() {
    let mut pause = AcceptPause::new("test");
    for errno in [
        Errno::ECONNABORTED,
        Errno::ECONNRESET,
        Errno::EPROTO,
        Errno::EINTR,
    ] {
        assert_eq!(pause.after(&os(errno)), Duration::ZERO, "{errno}");
    }
}

#[test]
fn failures_between_warnings_are_counted_for_the_next_one() {
    let mut pause = AcceptPause::new("test");
    pause.after(&os(Errno::EMFILE));
    assert_eq!(pause.unsaid, 0, "the first failure is said at once");
    for _ in 0..5 {
        pause.after(&os(Errno::EMFILE));
    }
    assert_eq!(
        pause.unsaid, 5,
        "within WARN_EVERY the warning is not repeated"
    );
}
