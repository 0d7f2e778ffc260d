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
        assert!(lower_bound(i) < lower_bound(i + 1));
    }
}

#[test]
fn quantiles_are_close_to_the_truth() {
    let mut h = Histogram::default();
    for micros in 1..=10_000 {
        h.record(Duration::from_micros(micros));
    }
    let p50 = h.quantile(0.5).unwrap().as_micros() as f64;
    let p99 = h.quantile(0.99).unwrap().as_micros() as f64;
    assert!((p50 / 5_000.0 - 1.0).abs() < 0.04, "{p50}");
    assert!((p99 / 9_900.0 - 1.0).abs() < 0.04, "{p99}");
    assert_eq!(h.max(), Duration::from_micros(10_000));
    assert_eq!(h.quantile(1.0), Some(Duration::from_micros(10_000)));
    assert_eq!(h.total(), 10_000);
    assert_eq!(Histogram::default().quantile(0.5), None);
}

#[test]
fn the_atomic_form_snapshots_to_the_same_counts() {
    let atomic = AtomicHistogram::default();
    let mut plain = Histogram::default();
    for ms in 1..=1000u64 {
        atomic.record(Duration::from_millis(ms));
        plain.record(Duration::from_millis(ms));
    }
    assert_eq!(atomic.snapshot(), plain);
    let p99 = plain.quantile(0.99).unwrap().as_secs_f64();
    assert!((p99 / 0.990 - 1.0).abs() < 0.04, "{p99}");
    assert_eq!(AtomicHistogram::default().snapshot().quantile(0.99), None);
}
