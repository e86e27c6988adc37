//! A forwarded command waits for Redis's reply as long as Redis takes, as
//! Redis's own clients do (FORWARD_TIMEOUT_MS, off by default), however
//! small REDIS_TIMEOUT_MS is: while Redis runs another client's slow
//! script, a transaction through the proxy is answered as Redis answers it
//! (EXEC's array), not failed although it commits (second framework
//! audit, finding 1: arq's worker died of that). Set, FORWARD_TIMEOUT_MS
//! fails the wait in one wording on every path.

use std::time::Duration;

use crate::common::busy::LoggedRedis;
use crate::common::wire::{client_list, show, Wire};
use crate::common::{eventually, InProcess};

const RESP: (&str, &str) = ("RESP_PORT", "auto");
/// Small, so that on the code before FORWARD_TIMEOUT_MS a forwarded
/// command failed well within the script below.
const REDIS_TIMEOUT: (&str, &str) = ("REDIS_TIMEOUT_MS", "250");
/// How long the script keeps Redis busy: twelve times REDIS_TIMEOUT_MS,
/// so that on a loaded machine the GET's timeout and the three clients'
/// commands still reach Redis well before the script ends (at 1 s the
/// margin after the GET's 250 ms was 750 ms of scheduling).
const BUSY: Duration = Duration::from_millis(3000);

/// Three clients of the proxy: one holding a connection for `WATCH txk`,
/// one whose commands travel on the event loop's shared connection, one
/// fresh (its `MULTI` takes a pooled connection).
struct Clients {
    held: Wire,
    looped: Wire,
    fresh: Wire,
}

impl Clients {
    fn open(logged: &LoggedRedis, proxy: &InProcess) -> Clients {
        let mut held = Wire::connect(proxy.resp_addr());
        assert_eq!(show(&held.call("WATCH txk")), "+OK\\r\\n");
        let mut looped = Wire::connect(proxy.resp_addr());
        eventually("a SET to travel on the event loop's connection", || {
            assert_eq!(looped.call("SET warm 1"), b"+OK\r\n");
            let on_loop = client_list(&logged.redis, |line| {
                line.contains("name=redis-proxy-loop ") && line.contains(" cmd=set ")
            });
            (!on_loop.is_empty()).then_some(())
        });
        let fresh = Wire::connect(proxy.resp_addr());
        Clients {
            held,
            looped,
            fresh,
        }
    }

    /// Sends each client's commands (pipelined), while Redis is busy, and
    /// reads their replies.
    fn send_all(&mut self) -> [Vec<String>; 3] {
        self.held.send(b"MULTI\r\nINCR txk\r\nEXEC\r\n");
        self.looped.send(b"INCR n\r\n");
        self.fresh.send(b"MULTI\r\nINCR m\r\nEXEC\r\n");
        let text = |replies: Vec<Vec<u8>>| replies.iter().map(|r| show(r)).collect::<Vec<_>>();
        [
            text(self.held.replies(3)),
            text(self.looped.replies(1)),
            text(self.fresh.replies(3)),
        ]
    }
}

#[test]
fn forwarded_commands_wait_out_another_clients_slow_script_as_at_redis() {
    let logged = LoggedRedis::start();
    let proxy = InProcess::start(&logged.redis, &[RESP, REDIS_TIMEOUT]);
    let mut clients = Clients::open(&logged, &proxy);
    let mut reader = Wire::connect(proxy.resp_addr());
    let busy = logged.busy_for(BUSY);
    // A GET that misses waits too: the cache's own read times out
    // (REDIS_TIMEOUT_MS), and the read goes on as a forwarded one
    // (`forward_timeout_reads.rs`).
    reader.send(b"GET never-set\r\n");
    let [held, looped, fresh] = clients.send_all();
    busy.finish();
    assert_eq!(reader.reply(), b"$-1\r\n");
    // Redis's own replies, as a client straight at Redis gets them.
    let exec = ["+OK\\r\\n", "+QUEUED\\r\\n", "*1\\r\\n:1\\r\\n"];
    assert_eq!(held, exec, "the WATCHed transaction (held connection)");
    assert_eq!(looped, [":1\\r\\n"], "the event loop's INCR");
    assert_eq!(fresh, exec, "the transaction on a pooled connection");
    for key in ["txk", "n", "m"] {
        assert_eq!(logged.redis.cmd::<i64>(&["GET", key]), 1, "{key}");
    }
    // The connections go on, the held one back in the pool.
    assert_eq!(show(&clients.held.call("INCR txk")), ":2\\r\\n");
    assert_eq!(show(&clients.looped.call("INCR n")), ":2\\r\\n");
}

#[test]
fn forward_timeout_ms_set_fails_the_wait_in_one_wording_on_every_path() {
    let logged = LoggedRedis::start();
    let proxy = InProcess::start(
        &logged.redis,
        &[RESP, REDIS_TIMEOUT, ("FORWARD_TIMEOUT_MS", "100")],
    );
    let mut clients = Clients::open(&logged, &proxy);
    let busy = logged.busy_for(BUSY);
    let [held, looped, fresh] = clients.send_all();
    busy.finish();
    // No system error text ("Resource temporarily unavailable"), and the
    // setting that bounds the wait named, on the held, the event loop's
    // and the pooled connections alike.
    let timed_out =
        "-ERR backing Redis timed out: no reply within FORWARD_TIMEOUT_MS (100 ms)\\r\\n";
    assert_eq!(held, [timed_out; 3], "the WATCHed transaction");
    assert_eq!(looped, [timed_out], "the event loop's INCR");
    assert_eq!(
        fresh, [timed_out; 3],
        "the transaction on a pooled connection"
    );
    // Redis ran them all the same (so the timeout stays off by default);
    // their late replies answer nothing: each connection was dropped.
    eventually("Redis to have run the forwarded commands", || {
        let ran = ["txk", "n", "m"]
            .iter()
            .all(|key| logged.redis.try_cmd::<i64>(&["GET", key]) == Some(1));
        ran.then_some(())
    });
    assert_eq!(show(&clients.looped.call("INCR n")), ":2\\r\\n");
    assert_eq!(show(&clients.fresh.call("INCR m")), ":2\\r\\n");
    assert_eq!(
        show(&clients.held.call("EXEC")),
        "-ERR EXEC without MULTI\\r\\n"
    );
}
