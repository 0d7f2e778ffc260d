use std::net::SocketAddr;
use std::time::{Duration, UNIX_EPOCH};

use super::*;
use crate::slot::Slot;

#[test]
fn times_are_rfc3339_utc_with_milliseconds() {
    let mut out = Vec::new();
    // 2026-12-05T17:50:37.123Z
    write_time(
        UNIX_EPOCH + Duration::from_millis(1_796_493_037_123),
        &mut out,
    );
    assert_eq!(String::from_utf8(out).unwrap(), "2026-12-05T17:50:37.123Z");
    let mut out = Vec::new();
    write_time(UNIX_EPOCH + Duration::from_secs(951_782_400), &mut out);
    assert_eq!(String::from_utf8(out).unwrap(), "2000-02-29T00:00:00.000Z");
}

#[test]
fn a_line_is_one_json_object_with_every_byte_escaped() {
    let label = PoolLabel {
        service: "web".into(),
        slot: Slot::Blue,
        version: "1.0".into(),
    };
    let line = Line {
        pool: Some(&label),
        instance: Some("127.0.0.1:9000".parse().unwrap()),
        client: b"10.0.0.1",
        method: b"GET",
        host: b"example.com",
        path: b"/a?\"q\"=\\\x01\xff",
        protocol: "HTTP/1.1",
        status: 200,
        request_bytes: 3,
        response_bytes: 1234,
        total: Duration::from_micros(1_500),
        upstream: None,
        request_id: b"abc",
    };
    let mut out = Vec::new();
    line.write(UNIX_EPOCH, &mut out);
    assert_eq!(out.last(), Some(&b'\n'));
    let text = std::str::from_utf8(&out).unwrap();
    assert!(
        text.contains(r#""path":"/a?\"q\"=\\\u0001\u00ff""#),
        "{text}"
    );
    assert!(
        text.contains(r#""duration_ms":1.500,"upstream_ms":null"#),
        "{text}"
    );
    assert!(
        text.contains(
            r#""service":"web","slot":"blue","version":"1.0","instance":"127.0.0.1:9000""#
        ),
        "{text}"
    );
    assert!(
        text.starts_with(r#"{"time":"1970-01-01T00:00:00.000Z""#),
        "{text}"
    );
}

#[test]
fn addresses_are_written_as_std_writes_them() {
    for addr in [
        "127.0.0.1:9000",
        "0.0.0.0:0",
        "255.255.255.255:65535",
        "[::1]:8080",
    ] {
        let addr: SocketAddr = addr.parse().unwrap();
        let mut out = Vec::new();
        address(addr, &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), addr.to_string());
    }
}
