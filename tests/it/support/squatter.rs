//! Another program on an address teal wants: Python's http.server, started
//! and waited for until it accepts, killed when dropped.

use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `python3 -m http.server` listening on `addr`, until dropped.
pub struct Squatter(Child);

impl Squatter {
    pub fn start(addr: SocketAddr) -> Squatter {
        let child = Command::new("python3")
            .args(["-m", "http.server", &addr.port().to_string(), "--bind"])
            .arg(addr.ip().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3");
        let up = (0..200).any(|_| {
            std::thread::sleep(Duration::from_millis(25));
            TcpStream::connect(addr).is_ok()
        });
        assert!(up, "http.server listens on {addr}");
        Squatter(child)
    }

    /// How teal names it: "python3 (pid N)".
    pub fn named(&self) -> String {
        format!("python3 (pid {})", self.0.id())
    }
}

impl Drop for Squatter {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
