//! REDIS_MODE=sentinel with a server that hangs (stopped with SIGSTOP: it
//! accepts connections and never answers): the proxy still follows the
//! sentinels' failover, every wait bounded by REDIS_TIMEOUT_MS; and a
//! sentinel that missed the failover does not send it back.

use crate::common::resp_conn::RespConn;
use crate::common::sentinel::{redis_pid, Paused, Sentinels, MASTER};
use crate::common::{eventually, http, Proxy};

fn start() -> (Sentinels, Proxy) {
    let set = Sentinels::start();
    set.master.set("k", "before");
    let proxy = set.proxy(&[("REDIS_TIMEOUT_MS", "300")]);
    assert_eq!(proxy.get_key("k").text(), "before");
    (set, proxy)
}

/// Polls until a write through the proxy (a new RESP client each time)
/// lands on the new master and `/readyz` answers 200. On the old code the
/// proxy never answered: a read here hangs past its bound and fails.
fn follows(set: &Sentinels, proxy: &Proxy) {
    eventually(
        "a write through the proxy to land on the new master",
        || {
            let mut conn = RespConn::open(proxy.resp_addr());
            let reply = conn.call(&["SET", "k", "after"]);
            let landed: Option<String> = set.replica.try_cmd(&["GET", "k"]);
            (reply == "+OK\r\n" && landed.as_deref() == Some("after")).then_some(())
        },
    );
    eventually("/readyz to answer 200", || {
        let reply = http::try_request(proxy.addr, "GET", "/readyz", &[]).ok()?;
        (reply.status == 200).then_some(())
    });
    assert_eq!(proxy.get_key("k").text(), "after");
}

#[test]
fn a_hung_master_is_left_for_the_one_the_sentinels_fail_over_to() {
    let (set, proxy) = start();
    let _paused = Paused::new(redis_pid(&set.master));
    let new_port = set.replica.port();
    eventually("the sentinels to name the replica", || {
        (set.master_port() == Some(new_port)).then_some(())
    });
    follows(&set, &proxy);
}

#[test]
fn a_hung_sentinel_is_skipped_as_a_dead_one_is() {
    let (set, proxy) = start();
    let _paused = Paused::new(set.sentinel_pid(0));
    let _: String = set
        .cmd_on(1, &["SENTINEL", "FAILOVER", MASTER])
        .expect("SENTINEL FAILOVER");
    let new_port = set.replica.port();
    eventually("the other sentinels to name the replica", || {
        (set.master_port_on(1) == Some(new_port)).then_some(())
    });
    follows(&set, &proxy);
}

#[test]
fn a_sentinel_that_missed_the_failover_does_not_send_the_proxy_back() {
    let (mut set, proxy) = start();
    set.kill_sentinel(0);
    let _: String = set
        .cmd_on(1, &["SENTINEL", "FAILOVER", MASTER])
        .expect("SENTINEL FAILOVER");
    let (old_port, new_port) = (set.master.port(), set.replica.port());
    eventually("the sentinels to name the replica", || {
        (set.master_port_on(1) == Some(new_port)).then_some(())
    });
    eventually("the proxy to follow", || {
        proxy
            .log()
            .contains("the sentinels name a new master")
            .then_some(())
    });
    // The demoted master answers as a master again (split brain), the
    // sentinels that know better stop answering, and the one that missed
    // the failover comes back naming the old master.
    let _: () = set.master.cmd(&["REPLICAOF", "NO", "ONE"]);
    let _stopped = [
        Paused::new(set.sentinel_pid(1)),
        Paused::new(set.sentinel_pid(2)),
    ];
    set.restart_sentinel(0);
    eventually("the restarted sentinel to name the old master", || {
        (set.master_port_on(0) == Some(old_port)).then_some(())
    });
    let refused = eventually("the proxy to refuse the old master, or go back", || {
        let log = proxy.log();
        let back = log.matches("the sentinels name a new master").count() > 1;
        (back || log.contains("not followed")).then_some(!back)
    });
    assert!(refused, "the proxy went back to the demoted master");
    let mut conn = RespConn::open(proxy.resp_addr());
    assert_eq!(conn.call(&["SET", "k", "after"]), "+OK\r\n");
    assert_eq!(set.replica.cmd::<String>(&["GET", "k"]), "after");
    // The refusal is logged once per interval (10 s), not once a round:
    // the proxy asks the restarted sentinel four more times (a connection
    // each, besides each of ours) and is refused each time.
    let connections = || -> u64 {
        let info: String = set.cmd_on(0, &["INFO", "stats"]).expect("INFO stats");
        info.lines()
            .find_map(|line| line.strip_prefix("total_connections_received:"))
            .and_then(|count| count.trim().parse().ok())
            .expect("total_connections_received")
    };
    let (start, mut ours) = (connections(), 0);
    eventually(
        "the proxy to ask the restarted sentinel four more times",
        || {
            ours += 1;
            (connections() >= start + ours + 4).then_some(())
        },
    );
    let lines = proxy.log().matches("not followed").count();
    assert!(lines <= 2, "{lines} lines saying \"not followed\"");
}

/// Forwarded commands wait for their reply as long as Redis takes
/// (FORWARD_TIMEOUT_MS off, the default), so a master that hangs holds
/// them; the failover must end that wait. A command waiting on the event
/// loop's connection, and a transaction on a connection held for WATCH,
/// both sent to the master once it is stopped, end when the proxy sees
/// the sentinels name another master: the first fails saying so (on the
/// code before it, after REDIS_TIMEOUT_MS, a timeout whatever the cause),
/// the client holding the connection is closed, as the sentinels close
/// the demoted master's clients.
#[test]
fn commands_waiting_on_a_hung_master_fail_at_the_failover_saying_so() {
    let set = Sentinels::start();
    // REDIS_TIMEOUT_MS as by default: it bounds the sentinel lookups
    // (a `ROLE` at the hung master among them), not the forwarded commands.
    let proxy = set.proxy(&[]);
    let mut looped = RespConn::open(proxy.resp_addr());
    eventually("a SET to travel on the event loop's connection", || {
        assert_eq!(looped.call(&["SET", "warm", "1"]), "+OK\r\n");
        let list: String = set.master.cmd(&["CLIENT", "LIST"]);
        list.lines()
            .any(|line| line.contains("name=redis-proxy-loop ") && line.contains(" cmd=set "))
            .then_some(())
    });
    let mut held = RespConn::open(proxy.resp_addr());
    assert_eq!(held.call(&["WATCH", "txk"]), "+OK\r\n");
    let _paused = Paused::new(redis_pid(&set.master));
    looped.send(&["INCR", "n"]);
    held.send_raw(b"MULTI\r\nINCR txk\r\nEXEC\r\n");
    let reply = String::from_utf8_lossy(&looped.reply()).into_owned();
    assert!(
        reply.starts_with("-ERR backing Redis unavailable: master changed (sentinel failover)"),
        "{reply}"
    );
    // The client holding the connection is closed, with no reply to
    // what it sent, as the sentinels close the demoted master's clients.
    assert_eq!(String::from_utf8_lossy(&held.until_closed()), "");
    assert_eq!(set.master_port(), Some(set.replica.port()));
    // Both go on, on the new master (the held one on a new connection).
    assert_eq!(looped.call(&["SET", "k", "after"]), "+OK\r\n");
    let mut held = RespConn::open(proxy.resp_addr());
    assert_eq!(held.call(&["INCR", "txk"]), ":1\r\n");
    assert_eq!(set.replica.cmd::<String>(&["GET", "k"]), "after");
}
