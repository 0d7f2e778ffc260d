use super::*;

#[test]
fn sees_its_own_children() {
    let mut child = std::process::Command::new("sleep")
        .arg("5")
        .env("TEAL_PROCS_TEST", "yes")
        .spawn()
        .unwrap();
    let me = std::process::id() as Pid;
    let pid = child.id() as Pid;
    assert!(children(me).contains(&pid));
    assert!(scan(|s| s.ppid == me).contains(&pid));
    assert!(alive(pid));
    // Between fork and exec the child still carries this test's command
    // line: give the exec up to 5 s before reading the title.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !title(pid).starts_with("sleep 5") && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(title(pid).starts_with("sleep 5"), "title: {:?}", title(pid));
    assert!(environ_has(pid, &[("TEAL_PROCS_TEST", "yes")]));
    assert!(!environ_has(pid, &[("TEAL_PROCS_TEST", "no")]));
    let mine = stat(me).unwrap();
    assert_eq!(stat(pid).unwrap().session, mine.session);
    if mine.session > 1 {
        assert!(session_members(mine.session).contains(&pid));
    } else {
        // A session whose leader lives outside this pid namespace (a
        // container's) reads as 0: such a session is never scanned, since
        // every process started there would match.
        assert!(session_members(mine.session).is_empty());
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!alive(pid));
    assert!(!children(me).contains(&pid));
}

#[test]
fn finds_the_listening_socket_of_a_process() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let me = std::process::id() as Pid;
    let found = sockets::listening(&BTreeSet::from([me]));
    assert!(found.contains(&addr), "{found:?} lacks {addr}");
    let wild = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let wild_addr = wild.local_addr().unwrap();
    assert!(sockets::listening(&BTreeSet::from([me])).contains(&wild_addr));
    drop(listener);
    assert!(!sockets::listening(&BTreeSet::from([me])).contains(&addr));
}

#[test]
fn parses_proc_net_tcp_addresses() {
    assert_eq!(
        sockets::parse_addr("0100007F:1F90"),
        Some("127.0.0.1:8080".parse().unwrap())
    );
    assert_eq!(
        sockets::parse_addr("00000000000000000000000000000000:0050"),
        Some("[::]:80".parse().unwrap())
    );
    assert_eq!(
        sockets::parse_addr("00000000000000000000000001000000:0050"),
        Some("[::1]:80".parse().unwrap())
    );
    assert_eq!(sockets::parse_addr("zz:1"), None);
}
