//! What a user whose listener cannot be bound is told besides the kernel's
//! (or nginx's) words: who listens there already (from `/proc`), or what a
//! port below 1024 needs.

use std::io;
use std::net::SocketAddr;

use crate::procs;

/// The end of "cannot listen on ADDR: CAUSE": empty when there is nothing to add.
pub(crate) fn hint(addr: SocketAddr, cause: &io::Error) -> String {
    match cause.kind() {
        io::ErrorKind::AddrInUse => in_use(addr, "there"),
        io::ErrorKind::PermissionDenied => match unprivileged_start() {
            start if u32::from(addr.port()) < start => format!(
                "; ports below {start} need root or the CAP_NET_BIND_SERVICE capability (`sudo setcap cap_net_bind_service=+ep $(command -v teal)`), or let systemd hold the socket (`teal systemd`)"
            ),
            _ => String::new(),
        },
        io::ErrorKind::AddrNotAvailable => {
            "; no network interface of this machine has that address".into()
        }
        _ => String::new(),
    }
}

/// nginx's words for a listener it could not bind ("bind() to
/// 127.0.0.1:8080 failed (98: Address already in use)") get who listens there
/// added; empty for any other message.
pub(crate) fn nginx_hint(message: &str) -> String {
    let Some((_, rest)) = message.split_once("bind() to ") else {
        return String::new();
    };
    let Some((addr, after)) = rest.split_once(" failed (") else {
        return String::new();
    };
    match addr.parse::<SocketAddr>() {
        Ok(addr) if after.starts_with("98:") => in_use(addr, &format!("on {addr}")),
        _ => String::new(),
    }
}

/// "; WHO listens WHERE: stop it, ...".
fn in_use(addr: SocketAddr, place: &str) -> String {
    let who = procs::sockets::who_listens(addr, |_| false)
        .map(|who| format!("{who} {place}"))
        .unwrap_or_else(|| format!("another program listens {place} (one this user cannot see)"));
    format!("; {who}: stop it, or choose another address in teal.toml")
}

/// The first port an unprivileged process may bind (the kernel's setting,
/// 1024 when it cannot be read).
fn unprivileged_start() -> u32 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_in_use_names_who_holds_it() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let err = std::net::TcpListener::bind(addr).unwrap_err();
        let said = hint(addr, &err);
        assert!(said.contains("this teal daemon listens there"), "{said}");
        // A wildcard listener on the same port clashes too.
        let wild: SocketAddr = format!("0.0.0.0:{}", addr.port()).parse().unwrap();
        assert!(
            hint(wild, &err).contains("this teal daemon"),
            "{}",
            hint(wild, &err)
        );
        drop(taken);
        assert!(hint(addr, &err).contains("another program listens there"));
    }

    #[test]
    fn nginx_bind_failures_name_who_holds_the_address() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let said = format!(
            "nginx: [emerg] bind() to {addr} failed (98: Address already in use)\nnginx: [emerg] still could not bind()"
        );
        assert!(
            nginx_hint(&said).contains(&format!("this teal daemon listens on {addr}")),
            "{}",
            nginx_hint(&said)
        );
        let denied = format!("nginx: [emerg] bind() to {addr} failed (13: Permission denied)");
        assert_eq!(nginx_hint(&denied), "");
        assert_eq!(nginx_hint("nginx: [emerg] unknown directive \"bogus\""), "");
    }

    #[test]
    fn other_causes() {
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        let low: SocketAddr = "127.0.0.1:80".parse().unwrap();
        // Port 80 needs the capability unless this kernel lets anyone bind it.
        assert_eq!(
            hint(low, &denied).contains("CAP_NET_BIND_SERVICE"),
            unprivileged_start() > 80
        );
        let high: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert_eq!(hint(high, &denied), "");
        let absent = io::Error::from(io::ErrorKind::AddrNotAvailable);
        assert!(hint(high, &absent).contains("no network interface"));
    }
}
