use super::*;

#[test]
fn budget_takes_the_rate_over_at_least_min_requests() {
    let budget = ErrorBudget {
        max_error_rate: 0.1,
        min_requests: 20,
    };
    assert!(!budget.crossed(0, 0));
    assert!(!budget.crossed(2, 2), "2 of 20 is 10%: not above");
    assert!(
        budget.crossed(3, 3),
        "3 of at least 20 is above 10% whatever follows"
    );
    assert!(!budget.crossed(10, 100));
    assert!(budget.crossed(11, 100));
    let zero = ErrorBudget {
        max_error_rate: 0.0,
        min_requests: 0,
    };
    assert!(zero.crossed(1, 1000));
}

#[test]
fn the_crossing_answer_trips_once() {
    let w = WindowCounters::new(ErrorBudget {
        max_error_rate: 0.5,
        min_requests: 2,
    });
    for _ in 0..4 {
        w.request();
    }
    assert!(!w.answered(Duration::from_millis(1), true), "1 of 4");
    assert!(!w.answered(Duration::from_millis(1), true), "2 of 4");
    assert!(w.answered(Duration::from_millis(1), true), "3 of 4 crosses");
    assert!(!w.failed(Duration::from_millis(1)), "already tripped");
    let s = w.snapshot();
    assert_eq!(
        (s.requests, s.errors, s.upstream_failures, s.completed),
        (4, 4, 1, 4)
    );
    assert!(s.tripped);
}
