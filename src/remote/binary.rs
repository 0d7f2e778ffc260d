//! The local teal binary that gets installed on hosts: its identity (sha256),
//! the machine it is built for and whether it needs a dynamic loader, read from
//! its ELF header, so teal can refuse early with a clear message instead of
//! installing something that cannot run.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// A binary to install, and what it is.
#[derive(Debug, Clone)]
pub struct LocalBinary {
    pub path: PathBuf,
    pub sha256: String,
    pub size: u64,
    /// `uname -m` spelling of the ELF machine, when recognised.
    pub arch: Option<&'static str>,
    /// Has a PT_INTERP header: needs this machine's kind of libc and loader.
    pub dynamic: bool,
}

impl LocalBinary {
    pub fn inspect(path: &Path) -> std::io::Result<LocalBinary> {
        let mut file = std::fs::File::open(path)?;
        let size = file.metadata()?.len();
        let mut hasher = Sha256::new();
        let mut head = Vec::with_capacity(64 * 1024);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            if head.len() < head.capacity() {
                let take = n.min(head.capacity() - head.len());
                head.extend_from_slice(&buf[..take]);
            }
            hasher.update(&buf[..n]);
        }
        let elf = Elf::read(&head);
        Ok(LocalBinary {
            path: path.to_path_buf(),
            sha256: hex(&hasher.finalize()),
            size,
            arch: elf.as_ref().and_then(|e| e.arch),
            dynamic: elf.is_some_and(|e| e.dynamic),
        })
    }
}

/// The two facts read from an ELF64 little-endian header.
#[derive(Debug, PartialEq)]
struct Elf {
    arch: Option<&'static str>,
    dynamic: bool,
}

impl Elf {
    fn read(head: &[u8]) -> Option<Elf> {
        // ELF magic, 64-bit, little-endian.
        if head.len() < 64 || &head[..4] != b"\x7fELF" || head[4] != 2 || head[5] != 1 {
            return None;
        }
        let u16_at = |at: usize| u16::from_le_bytes([head[at], head[at + 1]]);
        let arch = match u16_at(18) {
            0x3e => Some("x86_64"),
            0xb7 => Some("aarch64"),
            0xf3 => Some("riscv64"),
            _ => None,
        };
        let phoff = u64::from_le_bytes(head[32..40].try_into().ok()?) as usize;
        let phentsize = u16_at(54) as usize;
        let phnum = u16_at(56) as usize;
        const PT_INTERP: u32 = 3;
        let dynamic = (0..phnum).any(|i| {
            let at = phoff + i * phentsize;
            head.get(at..at + 4)
                .and_then(|b| b.try_into().ok())
                .is_some_and(|b| u32::from_le_bytes(b) == PT_INTERP)
        });
        Some(Elf { arch, dynamic })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `uname -m` of a host names the same machine as `arch`.
pub fn same_arch(arch: &str, uname: &str) -> bool {
    arch == uname || (arch == "aarch64" && uname == "arm64")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_running_test_binary_is_inspected() {
        let exe = std::env::current_exe().unwrap();
        let bin = LocalBinary::inspect(&exe).unwrap();
        assert_eq!(bin.sha256.len(), 64);
        assert_eq!(bin.size, std::fs::metadata(&exe).unwrap().len());
        assert_eq!(bin.arch, Some(std::env::consts::ARCH));
    }

    #[test]
    fn shell_scripts_are_not_elf() {
        assert_eq!(Elf::read(b"#!/bin/sh\nexit 0\n"), None);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("teal");
        std::fs::write(&path, "#!/bin/sh\n").unwrap();
        let bin = LocalBinary::inspect(&path).unwrap();
        assert_eq!((bin.arch, bin.dynamic), (None, false));
        // sha256("#!/bin/sh\n"), as sha256sum says
        assert_eq!(
            bin.sha256,
            "a8076d3d28d21e02012b20eaf7dbf75409a6277134439025f282e368e3305abf"
        );
    }

    #[test]
    fn arch_names_match_uname() {
        assert!(same_arch("x86_64", "x86_64"));
        assert!(same_arch("aarch64", "arm64"));
        assert!(!same_arch("x86_64", "aarch64"));
    }
}
