use std::sync::Arc;

use super::*;

#[tokio::test]
async fn a_pause_holds_at_most_max_held_and_releases_them_all() {
    let pause = Arc::new(Pause::new(Duration::from_secs(60), 7));
    let held: Vec<_> = (0..MAX_HELD)
        .map(|_| {
            let pause = Arc::clone(&pause);
            tokio::spawn(async move { pause.wait().await })
        })
        .collect();
    // Let every waiter register.
    while pause.held.load(Ordering::Acquire) < MAX_HELD {
        tokio::task::yield_now().await;
    }
    assert_eq!(pause.wait().await, Err(7), "one more is refused at once");
    pause.release();
    for waiter in held {
        assert_eq!(waiter.await.unwrap(), Ok(()));
    }
    assert_eq!(pause.held.load(Ordering::Acquire), 0);
}

#[tokio::test]
async fn a_held_request_gets_its_retry_after_when_its_time_is_up() {
    let pause = Pause::new(Duration::from_millis(300), 5);
    assert_eq!(pause.wait().await, Err(5));
    assert_eq!(pause.held.load(Ordering::Acquire), 0);
}
