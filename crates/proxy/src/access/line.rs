//! One access log line: what a request's two paths fill in ([`Line`]), and
//! its JSON text, written into a worker's buffer without a serializer and
//! without an allocation of its own.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::pool::PoolLabel;

/// What one request's access log line says. Unknown parts (a request the
/// proxy answered before routing it) are empty.
pub(crate) struct Line<'a> {
    /// The service, slot and version of the pool that took the request.
    pub(crate) pool: Option<&'a PoolLabel>,
    /// The instance that answered (or failed).
    pub(crate) instance: Option<SocketAddr>,
    pub(crate) client: &'a [u8],
    pub(crate) method: &'a [u8],
    pub(crate) host: &'a [u8],
    /// The request target, with its query.
    pub(crate) path: &'a [u8],
    pub(crate) protocol: &'static str,
    pub(crate) status: u16,
    /// Body bytes received from the client.
    pub(crate) request_bytes: u64,
    /// Body bytes sent to the client.
    pub(crate) response_bytes: u64,
    /// From the complete request head to the end of the response.
    pub(crate) total: Duration,
    /// From the request's start to the upstream's response head.
    pub(crate) upstream: Option<Duration>,
    pub(crate) request_id: &'a [u8],
}

impl Line<'_> {
    /// Appends the line (a JSON object and a newline) to `out`.
    pub(crate) fn write(&self, now: SystemTime, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"time\":\"");
        write_time(now, out);
        out.extend_from_slice(b"\",\"service\":\"");
        if let Some(pool) = self.pool {
            escaped(pool.service.as_bytes(), out);
        }
        out.extend_from_slice(b"\",\"slot\":\"");
        if let Some(pool) = self.pool {
            out.extend_from_slice(pool.slot.as_str().as_bytes());
        }
        out.extend_from_slice(b"\",\"version\":\"");
        if let Some(pool) = self.pool {
            escaped(pool.version.as_bytes(), out);
        }
        out.extend_from_slice(b"\",\"instance\":\"");
        if let Some(addr) = self.instance {
            address(addr, out);
        }
        out.extend_from_slice(b"\",\"client\":\"");
        escaped(self.client, out);
        out.extend_from_slice(b"\",\"method\":\"");
        escaped(self.method, out);
        out.extend_from_slice(b"\",\"host\":\"");
        escaped(self.host, out);
        out.extend_from_slice(b"\",\"path\":\"");
        escaped(self.path, out);
        out.extend_from_slice(b"\",\"protocol\":\"");
        out.extend_from_slice(self.protocol.as_bytes());
        out.extend_from_slice(b"\",\"status\":");
        number(u64::from(self.status), out);
        out.extend_from_slice(b",\"request_bytes\":");
        number(self.request_bytes, out);
        out.extend_from_slice(b",\"response_bytes\":");
        number(self.response_bytes, out);
        out.extend_from_slice(b",\"duration_ms\":");
        millis(self.total, out);
        out.extend_from_slice(b",\"upstream_ms\":");
        match self.upstream {
            Some(upstream) => millis(upstream, out),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"request_id\":\"");
        escaped(self.request_id, out);
        out.extend_from_slice(b"\"}\n");
    }
}

/// `addr` as std writes it; IPv4 without the formatting machinery (the
/// common case, and a quarter of a line's cost through `write!`).
fn address(addr: SocketAddr, out: &mut Vec<u8>) {
    match addr {
        SocketAddr::V4(v4) => {
            for (i, octet) in v4.ip().octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                number(u64::from(octet), out);
            }
            out.push(b':');
            number(u64::from(v4.port()), out);
        }
        SocketAddr::V6(_) => {
            use std::io::Write;
            let _ = write!(out, "{addr}");
        }
    }
}

fn number(n: u64, out: &mut Vec<u8>) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Milliseconds with three decimals (microseconds).
fn millis(d: Duration, out: &mut Vec<u8>) {
    let micros = d.as_micros();
    let whole = u64::try_from(micros / 1000).unwrap_or(u64::MAX);
    number(whole, out);
    let frac = (micros % 1000) as u16;
    out.extend_from_slice(&[
        b'.',
        b'0' + (frac / 100) as u8,
        b'0' + (frac / 10 % 10) as u8,
        b'0' + (frac % 10) as u8,
    ]);
}

/// `bytes` inside a JSON string: quotes, backslashes and control characters
/// escaped, and any byte outside ASCII as `\u00XX` (the line stays valid
/// UTF-8 whatever a client sent).
fn escaped(bytes: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let plain = |b: &u8| (0x20..=0x7e).contains(b) && *b != b'"' && *b != b'\\';
    if bytes.iter().all(plain) {
        out.extend_from_slice(bytes);
        return;
    }
    for &b in bytes {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x20..=0x7e => out.push(b),
            _ => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]),
        }
    }
}

/// RFC 3339 in UTC with milliseconds: `2026-12-05T17:50:37.123Z`.
fn write_time(now: SystemTime, out: &mut Vec<u8>) {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (year, month, day) = civil_from_days(secs / 86_400);
    let rem = secs % 86_400;
    let two = |n: u64, out: &mut Vec<u8>| {
        out.extend_from_slice(&[b'0' + (n / 10) as u8, b'0' + (n % 10) as u8])
    };
    number(year, out);
    out.push(b'-');
    two(month, out);
    out.push(b'-');
    two(day, out);
    out.push(b'T');
    two(rem / 3600, out);
    out.push(b':');
    two(rem / 60 % 60, out);
    out.push(b':');
    two(rem % 60, out);
    let ms = u64::from(since.subsec_millis());
    out.extend_from_slice(&[
        b'.',
        b'0' + (ms / 100) as u8,
        b'0' + (ms / 10 % 10) as u8,
        b'0' + (ms % 10) as u8,
        b'Z',
    ]);
}

/// Year, month and day of `days` since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for dates after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests;
