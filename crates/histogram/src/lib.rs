//! A bounded latency histogram with hdr-like log-linear buckets, in two forms:
//! [`Histogram`] (plain counters, one owner: the load client's report) and
//! [`AtomicHistogram`] (lock-free, written from many threads: a verify window
//! on the proxy's request path), whose snapshot is a [`Histogram`].
//!
//! Values are microseconds. Below 64 µs every value has its own bucket; above,
//! each power of two is split into 32 buckets, so a reported percentile is
//! within about 3% of the true one. Memory is fixed (a little over 1,000
//! counters) however many samples are recorded. This crate does not time
//! anything itself.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Buckets per power of two above [`LINEAR`], as a power of two.
const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
/// Values below this have a bucket each.
const LINEAR: u64 = 2 * SUB;
/// Larger values (about 25 days) are clamped; they only matter as "huge".
const MAX_MICROS: u64 = (1 << 41) - 1;
const BUCKETS: usize = index(MAX_MICROS) + 1;

/// Latency samples counted by bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Histogram {
    counts: Box<[u64]>,
    total: u64,
    max_micros: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            total: 0,
            max_micros: 0,
        }
    }
}

impl Histogram {
    pub fn record(&mut self, latency: Duration) {
        let micros = micros(latency);
        self.counts[index(micros)] += 1;
        self.total += 1;
        self.max_micros = self.max_micros.max(micros);
    }

    /// How many samples were recorded.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The largest sample (zero without samples).
    pub fn max(&self) -> Duration {
        Duration::from_micros(self.max_micros)
    }

    /// The latency below which a fraction `q` (0..=1) of the samples fall: the
    /// highest value of the bucket holding that sample, never above the
    /// maximum seen. None without samples.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                let highest = lower_bound(i + 1) - 1;
                return Some(Duration::from_micros(highest.min(self.max_micros)));
            }
        }
        Some(self.max())
    }
}

/// A [`Histogram`] that many threads record into without locks: one relaxed
/// increment per sample, plus a `fetch_max` for the largest.
#[derive(Debug)]
pub struct AtomicHistogram {
    counts: Box<[AtomicU64]>,
    max_micros: AtomicU64,
}

impl Default for AtomicHistogram {
    fn default() -> Self {
        AtomicHistogram {
            counts: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            max_micros: AtomicU64::new(0),
        }
    }
}

impl AtomicHistogram {
    pub fn record(&self, latency: Duration) {
        let micros = micros(latency);
        self.counts[index(micros)].fetch_add(1, Ordering::Relaxed);
        self.max_micros.fetch_max(micros, Ordering::Relaxed);
    }

    /// A copy of the counts now (samples recorded meanwhile may or may not
    /// be in it).
    pub fn snapshot(&self) -> Histogram {
        let counts: Box<[u64]> = self
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        Histogram {
            total: counts.iter().sum(),
            counts,
            max_micros: self.max_micros.load(Ordering::Relaxed),
        }
    }
}

fn micros(latency: Duration) -> u64 {
    u64::try_from(latency.as_micros())
        .unwrap_or(u64::MAX)
        .min(MAX_MICROS)
}

const fn index(micros: u64) -> usize {
    if micros < LINEAR {
        return micros as usize;
    }
    let msb = 63 - micros.leading_zeros();
    let shift = msb - SUB_BITS; // at least 1
    let sub = (micros >> shift) - SUB; // 0..SUB
    (LINEAR + (shift as u64 - 1) * SUB + sub) as usize
}

/// The smallest value that lands in bucket `i`.
const fn lower_bound(i: usize) -> u64 {
    let i = i as u64;
    if i < LINEAR {
        return i;
    }
    let shift = (i - LINEAR) / SUB + 1;
    let sub = (i - LINEAR) % SUB;
    (SUB + sub) << shift
}

#[cfg(test)]
mod tests;
