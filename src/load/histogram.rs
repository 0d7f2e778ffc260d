//! A bounded latency histogram with hdr-like log-linear buckets.
//!
//! Values are microseconds. Below 64 µs every value has its own bucket; above, each
//! power of two is split into 32 buckets, so a reported percentile is within about
//! 3% of the true one. Memory is fixed (a little over 1,000 counters) however many
//! samples are recorded.

use std::time::Duration;

/// Buckets per power of two above [`LINEAR`], as a power of two.
const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
/// Values below this have a bucket each.
const LINEAR: u64 = 2 * SUB;
/// Larger values (about 25 days) are clamped; they only matter as "huge".
const MAX_MICROS: u64 = (1 << 41) - 1;
const BUCKETS: usize = index(MAX_MICROS) + 1;

#[derive(Debug, Clone)]
pub(super) struct Histogram {
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
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .min(MAX_MICROS);
        self.counts[index(micros)] += 1;
        self.total += 1;
        self.max_micros = self.max_micros.max(micros);
    }

    pub fn max(&self) -> Duration {
        Duration::from_micros(self.max_micros)
    }

    /// The latency below which a fraction `q` (0..=1) of the samples fall: the
    /// highest value of the bucket holding that sample, never above the maximum seen.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.total == 0 {
            return Duration::ZERO;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                let highest = lower_bound(i + 1) - 1;
                return Duration::from_micros(highest.min(self.max_micros));
            }
        }
        self.max()
    }
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
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_ordered() {
        for micros in [0, 1, 63, 64, 65, 127, 128, 1000, 123_456, MAX_MICROS] {
            let i = index(micros);
            assert!(lower_bound(i) <= micros, "{micros}");
            assert!(micros < lower_bound(i + 1), "{micros}");
        }
        for i in 0..BUCKETS - 1 {
            assert_eq!(index(lower_bound(i)), i);
        }
    }

    #[test]
    fn quantiles_are_close_to_the_truth() {
        let mut h = Histogram::default();
        for micros in 1..=10_000 {
            h.record(Duration::from_micros(micros));
        }
        let p50 = h.quantile(0.5).as_micros() as f64;
        let p99 = h.quantile(0.99).as_micros() as f64;
        assert!((p50 / 5_000.0 - 1.0).abs() < 0.04, "{p50}");
        assert!((p99 / 9_900.0 - 1.0).abs() < 0.04, "{p99}");
        assert_eq!(h.max(), Duration::from_micros(10_000));
        assert_eq!(h.quantile(1.0), Duration::from_micros(10_000));
        assert_eq!(Histogram::default().quantile(0.5), Duration::ZERO);
    }
}
