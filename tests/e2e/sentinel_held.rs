//! REDIS_MODE=sentinel: a connection a client holds (WATCH, MULTI, a
//! blocking command, a subscription) across `SENTINEL FAILOVER` does not
//! stay on the demoted master: at its next use, or at once for a blocked
//! client or a subscriber, the client is closed, as the sentinels close the
//! demoted master's clients (`CLIENT KILL TYPE normal` and `pubsub`).

use crate::common::resp_conn::RespConn;
use crate::common::sentinel::Sentinels;
use crate::common::wire::{show, Wire};
use crate::common::{eventually, read_until_closed, Proxy};

fn start() -> (Sentinels, Proxy) {
    let set = Sentinels::start();
    set.master.set("w", "old");
    let proxy = set.proxy(&[]);
    (set, proxy)
}

#[test]
fn watch_and_multi_held_across_a_failover_close_the_client_instead_of_using_the_demoted_master() {
    let (set, proxy) = start();
    let mut watching = RespConn::open(proxy.resp_addr());
    assert_eq!(watching.call(&["WATCH", "w"]), "+OK\r\n");
    assert_eq!(watching.call(&["GET", "w"]), "$3\r\nold\r\n");
    let mut queued = RespConn::open(proxy.resp_addr());
    assert_eq!(queued.call(&["MULTI"]), "+OK\r\n");
    assert_eq!(queued.call(&["SET", "w", "mine"]), "+QUEUED\r\n");
    set.fail_over(&proxy);
    set.replica.set("w", "new");

    // The watching client's next command closes it, as the sentinels
    // closed its connection at the demoted master: its old value is not
    // read, nor anything else answered.
    watching.send(&["GET", "w"]);
    assert_eq!(show(&watching.until_closed()), "");
    // EXEC after MULTI does not run on the demoted master: closed too.
    queued.send(&["EXEC"]);
    assert_eq!(show(&queued.until_closed()), "");
    assert_eq!(set.replica.cmd::<String>(&["GET", "w"]), "new");
    // A new connection watches, and runs a transaction, at the new master.
    let mut watching = RespConn::open(proxy.resp_addr());
    assert_eq!(watching.call(&["WATCH", "w"]), "+OK\r\n");
    assert_eq!(watching.call(&["GET", "w"]), "$3\r\nnew\r\n");
    watching.send_raw(b"MULTI\r\nSET w2 x\r\nEXEC\r\n");
    assert_eq!(watching.reply(), b"+OK\r\n");
    assert_eq!(watching.reply(), b"+QUEUED\r\n");
    assert_eq!(watching.reply(), b"*1\r\n+OK\r\n");
}

#[test]
fn a_blocked_client_and_a_subscriber_of_the_demoted_master_are_closed_as_at_redis() {
    let (set, proxy) = start();
    let mut waiting = Vec::new();
    for addr in [set.master.addr(), proxy.resp_addr()] {
        let mut blocked = Wire::connect(addr);
        blocked.send_args(&["BLPOP", "queue", "0"]);
        waiting.push((addr, "BLPOP", blocked));
        let mut subscriber = Wire::connect(addr);
        let confirmed = subscriber.call_args(&["SUBSCRIBE", "news"]);
        assert!(
            show(&confirmed).contains("subscribe"),
            "{}",
            show(&confirmed)
        );
        waiting.push((addr, "SUBSCRIBE", subscriber));
    }
    eventually("both BLPOPs to block at the master", || {
        let info: String = set.master.cmd(&["INFO", "clients"]);
        info.contains("blocked_clients:2").then_some(())
    });
    set.fail_over(&proxy);
    for (addr, what, mut wire) in waiting {
        let rest = read_until_closed(&mut wire.stream);
        assert_eq!(show(&rest), "", "{what} at {addr}");
    }
    // A new connection blocks at the new master.
    let mut blocked = RespConn::open(proxy.resp_addr());
    let _: i64 = set.replica.cmd(&["RPUSH", "queue", "item"]);
    assert_eq!(
        blocked.call(&["BLPOP", "queue", "1"]),
        "*2\r\n$5\r\nqueue\r\n$4\r\nitem\r\n"
    );
}
