//! Request ids: the client's `x-request-id` when it is sane, or one made
//! here, cheaply: a random prefix per process, the worker's lane and a
//! counter per worker, in hex (24 characters, unique within a process and,
//! by the prefix, across restarts in practice).

use std::cell::Cell;
use std::hash::{BuildHasher, Hasher};
use std::sync::LazyLock;

use crate::workers::current_lane;

/// The header both paths read and set.
pub(crate) const HEADER: &str = "x-request-id";

/// Longest request id taken from a client.
pub(crate) const MAX_LEN: usize = 128;

/// Length of an id made here.
pub(crate) const LEN: usize = 24;

/// A request id taken from a client is 1 to `MAX_LEN` visible ASCII
/// characters; any other is dropped (never forwarded, never logged).
pub(crate) fn is_sane(id: &[u8]) -> bool {
    !id.is_empty() && id.len() <= MAX_LEN && id.iter().all(|b| (0x21..=0x7e).contains(b))
}

/// 32 random bits per process (std's randomly keyed hasher over the time
/// and pid: no dependency for a prefix).
static PREFIX: LazyLock<u32> = LazyLock::new(|| {
    let mut hasher = std::hash::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.finish() as u32
});

thread_local! {
    /// Ids made on this thread so far.
    static COUNTER: Cell<u64> = const { Cell::new(0) };
}

/// A new id: 8 hex digits of prefix, 2 of lane, 14 of counter.
pub(crate) fn generate() -> [u8; LEN] {
    let n = COUNTER.with(|c| {
        let n = c.get().wrapping_add(1);
        c.set(n);
        n
    });
    let lane = current_lane() as u64 & 0xff;
    let mut out = [0u8; LEN];
    hex(u64::from(*PREFIX), &mut out[..8]);
    hex(lane, &mut out[8..10]);
    hex(n, &mut out[10..]);
    out
}

/// Writes the low `out.len()` hex digits of `n`, most significant first.
fn hex(mut n: u64, out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for slot in out.iter_mut().rev() {
        *slot = DIGITS[(n & 0xf) as usize];
        n >>= 4;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_ids_differ_and_are_sane() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        assert!(is_sane(&a) && is_sane(&b));
        assert_eq!(a[..10], b[..10]);
    }

    #[test]
    fn only_visible_ascii_up_to_the_bound_is_taken() {
        assert!(is_sane(b"abc-123_XYZ"));
        assert!(!is_sane(b""));
        assert!(!is_sane(b"a b"));
        assert!(!is_sane("é".as_bytes()));
        assert!(!is_sane(&[b'a'; MAX_LEN + 1]));
        assert!(is_sane(&[b'a'; MAX_LEN]));
    }
}
