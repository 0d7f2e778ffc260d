//! The `date` header the lean path adds to a response that has none (RFC 9110
//! 6.6.1: a proxy with a clock adds one to a response it forwards without it),
//! and to its own answers. Formatted at most once a second per worker thread;
//! apps that send their own `date` cost nothing here.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

/// Length of an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT").
const DATE_LEN: usize = 29;

thread_local! {
    /// The second last formatted, and its text.
    static CACHED: RefCell<(u64, [u8; DATE_LEN])> = const { RefCell::new((u64::MAX, [0; DATE_LEN])) };
}

/// Appends `date: <now>\r\n` to `out`.
pub(crate) fn write_line(out: &mut Vec<u8>) {
    let now = SystemTime::now();
    let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    CACHED.with(|cached| {
        let mut cached = cached.borrow_mut();
        if cached.0 != second {
            // Always DATE_LEN bytes: httpdate writes years up to 9999 only.
            cached
                .1
                .copy_from_slice(httpdate::fmt_http_date(now).as_bytes());
            cached.0 = second;
        }
        out.extend_from_slice(b"date: ");
        out.extend_from_slice(&cached.1);
        out.extend_from_slice(b"\r\n");
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_the_current_time_as_an_http_date() {
        let before = SystemTime::now();
        let mut out = Vec::new();
        write_line(&mut out);
        write_line(&mut out);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.split_terminator("\r\n").collect();
        assert_eq!(lines.len(), 2, "{text}");
        let value = lines[0].strip_prefix("date: ").expect("a date line");
        let parsed = httpdate::parse_http_date(value).expect("an HTTP date");
        let after = SystemTime::now();
        // HTTP dates have whole seconds.
        let floor = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_secs();
        let at = floor(parsed);
        assert!(floor(before) <= at && at <= floor(after), "{value}");
    }
}
