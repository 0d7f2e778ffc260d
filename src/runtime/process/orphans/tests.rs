use super::*;

/// A zombie in group `pgrp` of `session`.
fn zombie(pgrp: procs::Pid, session: procs::Pid) -> procs::Stat {
    procs::Stat {
        state: 'Z',
        ppid: 1,
        pgrp,
        session,
        start_time: 0,
    }
}

#[test]
fn only_children_nobody_else_waits_for_are_reaped() {
    // The daemon: pid 100 in group 90 of session 80.
    let daemon = zombie(90, 80);
    let spawned = HashSet::from([200]);
    let waited = |pid, s: &procs::Stat| waited_for_elsewhere(pid, s, &daemon, &spawned);
    // A command in the daemon's own group (nginx -t, ssh): its spawner waits.
    assert!(waited(150, &zombie(90, 80)));
    // A hook or the SIGUSR2 successor: a group of its own in our session.
    assert!(waited(160, &zombie(160, 80)));
    // An instance: its own session, spawned by us.
    assert!(waited(200, &zombie(200, 200)));
    // The middle of a double fork (setsid, then exited): nobody waits.
    assert!(!waited(210, &zombie(210, 210)));
    // A process an instance forked without setsid: in the instance's session.
    assert!(!waited(220, &zombie(200, 200)));
    // A helper a hook left in the hook's group.
    assert!(!waited(230, &zombie(160, 80)));
}
