use std::os::fd::AsFd;

use serde::{Deserialize, Serialize};
use tokio::net::UnixStream;

use super::*;

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Note {
    text: String,
}

fn note(text: &str) -> Note {
    Note { text: text.into() }
}

#[tokio::test]
async fn messages_arrive_in_order_with_their_descriptors() {
    let (a, b) = UnixStream::pair().unwrap();
    let (mut a, mut b) = (FdChannel::new(a), FdChannel::new(b));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();

    a.send(&note("plain"), &[]).await.unwrap();
    a.send(&note("socket"), &[listener.as_fd()]).await.unwrap();
    a.send(&note("big"), &[]).await.unwrap();
    drop(a);

    let (first, fds) = b.recv::<Note>().await.unwrap().unwrap();
    assert_eq!((first, fds.len()), (note("plain"), 0));
    let (second, mut fds) = b.recv::<Note>().await.unwrap().unwrap();
    assert_eq!((second, fds.len()), (note("socket"), 1));
    // The same socket: a connection to its address is accepted from the copy.
    let received = std::net::TcpListener::from(fds.pop().unwrap());
    assert_eq!(received.local_addr().unwrap(), addr);
    let client = std::net::TcpStream::connect(addr).unwrap();
    let (accepted, _) = received.accept().unwrap();
    assert_eq!(accepted.peer_addr().unwrap(), client.local_addr().unwrap());
    let (third, _) = b.recv::<Note>().await.unwrap().unwrap();
    assert_eq!(third, note("big"));
    assert!(
        b.recv::<Note>().await.unwrap().is_none(),
        "closed between messages"
    );
}

#[tokio::test]
async fn many_descriptors_and_large_messages_survive_partial_reads() {
    let (a, b) = UnixStream::pair().unwrap();
    let (mut a, mut b) = (FdChannel::new(a), FdChannel::new(b));
    let listeners: Vec<_> = (0..40)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let fds: Vec<_> = listeners.iter().map(|l| l.as_fd()).collect();
    let long = "x".repeat(200 * 1024);
    let sender = async {
        for _ in 0..3 {
            a.send(&note(&long), &fds).await.unwrap();
        }
    };
    let receiver = async {
        let mut got = Vec::new();
        for _ in 0..3 {
            let (message, fds) = b.recv::<Note>().await.unwrap().unwrap();
            assert_eq!(message.text.len(), long.len());
            got.push(fds);
        }
        got
    };
    let ((), got) = tokio::join!(sender, receiver);
    for fds in got {
        let addrs: Vec<_> = fds
            .into_iter()
            .map(|fd| std::net::TcpListener::from(fd).local_addr().unwrap())
            .collect();
        let expected: Vec<_> = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
        assert_eq!(addrs, expected);
    }
}

#[tokio::test]
async fn too_many_descriptors_are_refused_before_sending() {
    let (a, _b) = UnixStream::pair().unwrap();
    let mut a = FdChannel::new(a);
    let file = std::fs::File::open("/dev/null").unwrap();
    let fds = vec![file.as_fd(); MAX_FDS + 1];
    assert!(a.send(&note("many"), &fds).await.is_err());
}
