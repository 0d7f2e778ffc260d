//! The client's address, with its X-Forwarded-For text formatted once per
//! connection (both HTTP paths add it to every request they send upstream),
//! and whether the connection is TLS (X-Forwarded-Proto).

use std::net::IpAddr;

/// Longest text of an IP address ("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255").
const MAX_IP_TEXT: usize = 45;

/// A client's address as X-Forwarded-For text, formatted once per connection
/// rather than once per request, into the struct itself (a new connection
/// allocates nothing for it).
#[derive(Clone)]
pub(crate) struct ClientAddr {
    ip: IpAddr,
    text: [u8; MAX_IP_TEXT],
    len: usize,
    /// The client came over TLS: `X-Forwarded-Proto: https`.
    tls: bool,
}

impl ClientAddr {
    pub(crate) fn new(ip: IpAddr) -> ClientAddr {
        let ip = ip.to_canonical();
        let mut text = [0u8; MAX_IP_TEXT];
        let len = match ip {
            IpAddr::V4(v4) => {
                let mut at = 0;
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        text[at] = b'.';
                        at += 1;
                    }
                    let mut digits = itoa::Buffer::new();
                    let digits = digits.format(octet).as_bytes();
                    text[at..at + digits.len()].copy_from_slice(digits);
                    at += digits.len();
                }
                at
            }
            IpAddr::V6(v6) => {
                let mut cursor = std::io::Cursor::new(&mut text[..]);
                let _ = std::io::Write::write_fmt(&mut cursor, format_args!("{v6}"));
                usize::try_from(cursor.position()).unwrap_or(0)
            }
        };
        ClientAddr {
            ip,
            text,
            len,
            tls: false,
        }
    }

    /// A client on the TLS listener.
    pub(crate) fn over_tls(ip: IpAddr) -> ClientAddr {
        ClientAddr {
            tls: true,
            ..ClientAddr::new(ip)
        }
    }

    /// The X-Forwarded-Proto value for this client's requests.
    pub(crate) fn proto(&self) -> &'static str {
        if self.tls { "https" } else { "http" }
    }

    pub(crate) fn ip(&self) -> IpAddr {
        self.ip
    }

    /// The address as X-Forwarded-For text.
    pub(crate) fn text(&self) -> &[u8] {
        &self.text[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use super::ClientAddr;

    fn text(ip: IpAddr) -> String {
        String::from_utf8(ClientAddr::new(ip).text().to_vec()).unwrap()
    }

    #[test]
    fn client_addresses_are_written_as_std_writes_them() {
        for ip in [
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)),
            IpAddr::V4(Ipv4Addr::new(0, 0, 0, 0)),
            IpAddr::V4(Ipv4Addr::new(255, 255, 255, 255)),
            IpAddr::V4(Ipv4Addr::new(10, 20, 100, 9)),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
            IpAddr::V6(Ipv6Addr::new(
                0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff,
            )),
        ] {
            assert_eq!(text(ip), ip.to_string());
        }
        // An IPv4 client on a dual-stack socket is written as IPv4.
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 33).to_ipv6_mapped());
        assert_eq!(text(mapped), "192.0.2.33");
        assert_eq!(
            ClientAddr::new(mapped).ip(),
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, 33))
        );
    }
}
