//! REDIS_MODE=sentinel: a connection a client holds (WATCH, MULTI, a
//! blocking command) across `SENTINEL FAILOVER` does not stay on the
//! demoted master: its next use, or the blocked command, ends with a clear
//! error, and the client's connection to the proxy stays usable.

use crate::common::resp_conn::RespConn;
use crate::common::sentinel::Sentinels;
use crate::common::{eventually, Proxy};

fn start() -> (Sentinels, Proxy) {
    let set = Sentinels::start();
    set.master.set("w", "old");
    let proxy = set.proxy(&[]);
    (set, proxy)
}

#[test]
fn watch_and_multi_held_across_a_failover_fail_instead_of_using_the_demoted_master() {
    let (set, proxy) = start();
    let mut watching = RespConn::open(proxy.resp_addr());
    assert_eq!(watching.call(&["WATCH", "w"]), "+OK\r\n");
    assert_eq!(watching.call(&["GET", "w"]), "$3\r\nold\r\n");
    let mut queued = RespConn::open(proxy.resp_addr());
    assert_eq!(queued.call(&["MULTI"]), "+OK\r\n");
    assert_eq!(queued.call(&["SET", "w", "mine"]), "+QUEUED\r\n");
    set.fail_over(&proxy);
    set.replica.set("w", "new");

    // The watching client's next command fails: the demoted master's old
    // value is not read, and the WATCH is gone (as after a lost connection).
    let reply = watching.call(&["GET", "w"]);
    assert!(reply.contains("master changed"), "{reply}");
    assert_eq!(watching.call(&["GET", "w"]), "$3\r\nnew\r\n");
    // A pipelined transaction on it runs on the new master, afresh.
    watching.send_raw(b"MULTI\r\nSET w2 x\r\nEXEC\r\n");
    assert_eq!(watching.reply(), b"+OK\r\n");
    assert_eq!(watching.reply(), b"+QUEUED\r\n");
    assert_eq!(watching.reply(), b"*1\r\n+OK\r\n");

    // EXEC after MULTI does not run on the demoted master.
    let reply = queued.call(&["EXEC"]);
    assert!(reply.contains("master changed"), "{reply}");
    assert_eq!(set.replica.cmd::<String>(&["GET", "w"]), "new");
    assert_eq!(queued.call(&["PING"]), "+PONG\r\n");
}

#[test]
fn a_blocking_command_on_the_demoted_master_ends_with_an_error() {
    let (set, proxy) = start();
    let mut blocked = RespConn::open(proxy.resp_addr());
    blocked.send(&["BLPOP", "queue", "0"]);
    eventually("BLPOP to block at the master", || {
        let info: String = set.master.cmd(&["INFO", "clients"]);
        info.contains("blocked_clients:1").then_some(())
    });
    set.fail_over(&proxy);
    let reply = String::from_utf8_lossy(&blocked.reply()).into_owned();
    assert!(reply.contains("master changed"), "{reply}");
    // The client's connection to the proxy is still usable.
    assert_eq!(blocked.call(&["PING"]), "+PONG\r\n");
    let _: i64 = set.replica.cmd(&["RPUSH", "queue", "item"]);
    assert_eq!(
        blocked.call(&["BLPOP", "queue", "1"]),
        "*2\r\n$5\r\nqueue\r\n$4\r\nitem\r\n"
    );
}
