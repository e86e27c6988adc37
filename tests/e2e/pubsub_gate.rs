//! A client with a subscription at Redis (RESP3 while subscribed, RESP2
//! after unsubscribing from everything, as node-redis and ioredis reuse a
//! client) gets, for anything but Pub/Sub commands, exactly what a client
//! with no subscription gets: the proxy's refusals, RESP_FORWARD, its own
//! answers (`CLIENT ID`, `HELLO`), the cache kept fresh around its writes;
//! and its replies in the order Redis gives them.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use crate::common::wire::{show, Wire};
use crate::common::{connect, read_until_closed, InProcess, RedisServer};

/// The proxy's `CLIENT ID` for `wire`.
fn client_id(wire: &mut Wire) -> Vec<u8> {
    wire.call_args(&["CLIENT", "ID"])
}

/// `wire`, subscribed at Redis in `protocol`: RESP3 subscribed to
/// `channel`; RESP2 subscribed to it and then to nothing (Redis has left
/// Pub/Sub mode).
fn subscribed(wire: &mut Wire, protocol: u8, channel: &str) {
    let confirmed = wire.call_args(&["SUBSCRIBE", channel]);
    assert!(confirmed.ends_with(b":1\r\n"), "{}", show(&confirmed));
    if protocol == 2 {
        let left = wire.call_args(&["UNSUBSCRIBE"]);
        assert!(left.ends_with(b":0\r\n"), "{}", show(&left));
    }
}

#[test]
fn refusals_and_the_proxys_own_answers_hold_over_a_subscription() {
    let redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[("RESP_PORT", "auto")]);
    let mut publisher = Wire::connect(proxy.resp_addr());
    for protocol in [3, 2] {
        let mut client = Wire::open_with(proxy.resp_addr(), protocol);
        let id = client_id(&mut client);
        subscribed(&mut client, protocol, "gate");
        assert_eq!(show(&client_id(&mut client)), show(&id), "RESP{protocol}");
        let config = client.call_args(&["CONFIG", "SET", "maxmemory", "12345"]);
        assert!(
            config.starts_with(b"-ERR 'config|set' is not allowed through the proxy"),
            "RESP{protocol}: {}",
            show(&config)
        );
        let maxmemory: (String, String) = redis.cmd(&["CONFIG", "GET", "maxmemory"]);
        assert_eq!(maxmemory.1, "0");
        let shutdown = client.call_args(&["SHUTDOWN", "NOSAVE"]);
        assert!(
            shutdown.starts_with(b"-ERR 'shutdown' is not allowed through the proxy"),
            "RESP{protocol}: {}",
            show(&shutdown)
        );
        assert!(redis.is_running(), "RESP{protocol}: Redis still up");
        assert_eq!(redis.cmd::<String>(&["PING"]), "PONG");
        // Still subscribed in RESP3: the messages still come.
        if protocol == 3 {
            publisher.call_args(&["PUBLISH", "gate", "still"]);
            let message = client.reply();
            assert_eq!(
                show(&message),
                show(b">3\r\n$7\r\nmessage\r\n$4\r\ngate\r\n$5\r\nstill\r\n")
            );
        }
    }
}

#[test]
fn resp_forward_reads_refuses_a_write_over_a_subscription() {
    let redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[("RESP_PORT", "auto"), ("RESP_FORWARD", "reads")]);
    let mut plain = Wire::connect(proxy.resp_addr());
    let refused = plain.call_args(&["SET", "written", "1"]);
    assert!(refused.starts_with(b"-"), "{}", show(&refused));
    for protocol in [3, 2] {
        let mut client = Wire::open_with(proxy.resp_addr(), protocol);
        subscribed(&mut client, protocol, "gate");
        let reply = client.call_args(&["SET", "written", "1"]);
        assert_eq!(show(&reply), show(&refused), "RESP{protocol}");
        assert_eq!(redis.cmd::<Option<String>>(&["GET", "written"]), None);
    }
}

/// `HELLO 2` while subscribed in RESP3 is the proxy's (it names itself),
/// and from then on the client is RESP2 for both the proxy and Redis: a
/// tracked key's change sends it nothing (RESP2 without REDIRECT, as at
/// Redis), a message comes as a RESP2 array, a GET is Redis's RESP2
/// subscribed-mode error.
#[test]
fn hello_2_over_a_subscription_switches_the_proxy_and_redis() {
    let redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[("RESP_PORT", "auto")]);
    redis.set("tracked", "old");
    let mut client = Wire::open_with(proxy.resp_addr(), 3);
    assert_eq!(client.call_args(&["CLIENT", "TRACKING", "ON"]), b"+OK\r\n");
    assert_eq!(client.call_args(&["GET", "tracked"]), b"$3\r\nold\r\n");
    subscribed(&mut client, 3, "gate");
    let hello = client.call_args(&["HELLO", "2"]);
    assert!(hello.starts_with(b"*"), "{}", show(&hello));
    assert!(
        show(&hello).contains("$5\\r\\nproxy\\r\\n"),
        "the proxy's own HELLO: {}",
        show(&hello)
    );
    let mut other = Wire::connect(proxy.resp_addr());
    assert_eq!(other.call_args(&["SET", "tracked", "new"]), b"+OK\r\n");
    assert_eq!(other.call_args(&["PUBLISH", "gate", "after"]), b":1\r\n");
    let message = client.reply();
    assert_eq!(
        show(&message),
        show(b"*3\r\n$7\r\nmessage\r\n$4\r\ngate\r\n$5\r\nafter\r\n")
    );
    let get = client.call_args(&["GET", "tracked"]);
    assert!(
        get.starts_with(b"-ERR Can't execute 'get'"),
        "{}",
        show(&get)
    );
    let ping = client.call_args(&["PING"]);
    assert_eq!(show(&ping), show(b"*2\r\n$4\r\npong\r\n$0\r\n\r\n"));
}

/// A write over a subscription goes the usual way: its keys are dropped
/// before it is sent and after it ran, so readers racing it never leave
/// the old value in the cache. INVALIDATION=off: only those drops can.
#[test]
fn a_write_over_a_subscription_never_leaves_a_stale_value() {
    let redis = RedisServer::start();
    let proxy = InProcess::start(
        &redis,
        &[
            ("RESP_PORT", "auto"),
            ("INVALIDATION", "off"),
            ("WORKERS", "8"),
        ],
    );
    let addr = proxy.resp_addr();
    for protocol in [3, 2] {
        let mut client = Wire::open_with(addr, protocol);
        subscribed(&mut client, protocol, "gate");
        let mut plain = Wire::connect(addr);
        for round in 0..60 {
            let (old, new) = (format!("old{round}"), format!("new{round}"));
            assert_eq!(plain.call_args(&["SET", "raced", &old]), b"+OK\r\n");
            let stop = Arc::new(AtomicBool::new(false));
            let readers: Vec<_> = (0..2)
                .map(|_| {
                    let stop = Arc::clone(&stop);
                    thread::spawn(move || {
                        let mut reader = Wire::connect(addr);
                        while !stop.load(Ordering::Relaxed) {
                            reader.call_args(&["GET", "raced"]);
                        }
                    })
                })
                .collect();
            assert_eq!(client.call_args(&["SET", "raced", &new]), b"+OK\r\n");
            stop.store(true, Ordering::Relaxed);
            for reader in readers {
                reader.join().expect("reader");
            }
            let read = plain.call_args(&["GET", "raced"]);
            let want = format!("${}\r\n{new}\r\n", new.len());
            assert_eq!(
                show(&read),
                show(want.as_bytes()),
                "RESP{protocol} round {round}"
            );
        }
    }
}

/// Pipelined Pub/Sub commands and others answer in Redis's order, with
/// Redis's bytes.
#[test]
fn pipelined_subscribes_and_reads_answer_in_redis_order() {
    let redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[("RESP_PORT", "auto")]);
    redis.set("k", "v");
    let pipeline = [
        vec!["SUBSCRIBE", "a"],
        vec!["GET", "k"],
        vec!["SUBSCRIBE", "b"],
        vec!["PING"],
        vec!["ECHO", "e"],
        vec!["UNSUBSCRIBE"],
        vec!["GET", "k"],
        vec!["PING"],
        vec!["SUBSCRIBE", "c"],
        vec!["EXISTS", "k"],
    ];
    // Replies: one per command, two for the UNSUBSCRIBE of a and b.
    let replies = pipeline.len() + 1;
    for protocol in [3, 2] {
        let mut bytes = Vec::new();
        for addr in [redis.addr(), proxy.resp_addr()] {
            let mut wire = Wire::open_with(addr, protocol);
            for args in &pipeline {
                wire.send_args(args);
            }
            bytes.push(wire.replies(replies).concat());
        }
        assert_eq!(show(&bytes[1]), show(&bytes[0]), "RESP{protocol}");
    }
}

/// Subscribed to nothing at Redis any more, a client's next other command
/// releases the subscription: its DEDICATED_CONNECTIONS place is free.
#[test]
fn leaving_every_channel_frees_the_dedicated_place() {
    let redis = RedisServer::start();
    let proxy = InProcess::start(
        &redis,
        &[("RESP_PORT", "auto"), ("DEDICATED_CONNECTIONS", "1")],
    );
    for protocol in [2, 3] {
        let mut first = Wire::open_with(proxy.resp_addr(), protocol);
        subscribed(&mut first, 2, "one");
        assert_eq!(first.call_args(&["ECHO", "x"]), b"$1\r\nx\r\n");
        // The second takes the one place, and leaves it the same way.
        let mut second = Wire::open_with(proxy.resp_addr(), protocol);
        subscribed(&mut second, 2, "two");
        assert_eq!(second.call_args(&["ECHO", "y"]), b"$1\r\ny\r\n");
    }
}

/// CLIENT_IDLE_TIMEOUT_SECS spares subscribers (at Redis, or on the
/// proxy's own invalidation channel), as Redis's `timeout` spares its own:
/// they only listen.
#[test]
fn subscribers_are_not_closed_as_idle() {
    let redis = RedisServer::start();
    let proxy = InProcess::start(
        &redis,
        &[("RESP_PORT", "auto"), ("CLIENT_IDLE_TIMEOUT_SECS", "1")],
    );
    let mut at_redis = Wire::connect(proxy.resp_addr());
    at_redis.call_args(&["SUBSCRIBE", "news"]);
    let mut here = Wire::connect(proxy.resp_addr());
    here.call_args(&["SUBSCRIBE", "__redis__:invalidate"]);
    // Connected after both, and idle since: once the proxy has closed it,
    // both subscribers have been idle past the timeout too.
    let mut canary = connect(proxy.resp_addr());
    canary.write_all(b"PING\r\n").expect("ping");
    assert_eq!(read_until_closed(&mut canary), b"+PONG\r\n");
    let mut publisher = Wire::connect(proxy.resp_addr());
    assert_eq!(publisher.call_args(&["PUBLISH", "news", "late"]), b":1\r\n");
    assert_eq!(
        show(&at_redis.reply()),
        show(b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$4\r\nlate\r\n")
    );
    assert_eq!(
        show(&here.call_args(&["PING"])),
        show(b"*2\r\n$4\r\npong\r\n$0\r\n\r\n")
    );
}

/// RESET pipelined behind a `HELLO 2` over a RESP3 subscription: the reply
/// to the proxy's own `HELLO` on the subscription never reaches the client.
#[test]
fn reset_behind_hello_over_a_subscription_answers_as_redis() {
    let redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[("RESP_PORT", "auto")]);
    let mut client = Wire::open_with(proxy.resp_addr(), 3);
    subscribed(&mut client, 3, "gate");
    for args in [&["HELLO", "2"][..], &["RESET"], &["PING"]] {
        client.send_args(args);
    }
    let hello = client.reply();
    assert!(hello.starts_with(b"*"), "{}", show(&hello));
    assert_eq!(show(&client.reply()), show(b"+RESET\r\n"));
    assert_eq!(show(&client.reply()), show(b"+PONG\r\n"));
}

/// RESP3 allows a blocking command while subscribed: messages published
/// while it blocks come at once, before its reply, as from Redis.
#[test]
fn messages_come_while_a_subscribed_client_blocks() {
    let redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[("RESP_PORT", "auto")]);
    let mut publisher = Wire::connect(proxy.resp_addr());
    for (addr, list) in [(redis.addr(), "direct"), (proxy.resp_addr(), "through")] {
        let mut client = Wire::open_with(addr, 3);
        subscribed(&mut client, 3, list);
        client.send_args(&["BLPOP", list, "0"]);
        crate::common::eventually("the BLPOP to block", || {
            (crate::common::wire::info_clients(&redis, "blocked_clients") == 1).then_some(())
        });
        assert_eq!(publisher.call_args(&["PUBLISH", list, "m"]), b":1\r\n");
        let message = client.reply();
        let want = format!(
            ">3\r\n$7\r\nmessage\r\n${}\r\n{list}\r\n$1\r\nm\r\n",
            list.len()
        );
        assert_eq!(show(&message), show(want.as_bytes()), "{list}");
        // Its reply once something is pushed.
        assert_eq!(publisher.call_args(&["LPUSH", list, "x"]), b":1\r\n");
        let popped = client.reply();
        let want = format!("*2\r\n${}\r\n{list}\r\n$1\r\nx\r\n", list.len());
        assert_eq!(show(&popped), show(want.as_bytes()), "{list}");
    }
}

/// MULTI / SWAPDB / EXEC over a subscription is a transaction as any: a
/// read between SWAPDB's queueing and EXEC fills the cache with the value
/// about to be swapped out, and EXEC drops it again.
#[test]
fn a_transaction_over_a_subscription_leaves_nothing_stale() {
    let redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[("RESP_PORT", "auto")]);
    let mut other = Wire::connect(proxy.resp_addr());
    for protocol in [3, 2] {
        let (zero, one) = (format!("zero{protocol}"), format!("one{protocol}"));
        assert_eq!(other.call_args(&["SET", "swapped", &zero]), b"+OK\r\n");
        other.call_args(&["SELECT", "1"]);
        assert_eq!(other.call_args(&["SET", "swapped", &one]), b"+OK\r\n");
        other.call_args(&["SELECT", "0"]);
        let mut client = Wire::open_with(proxy.resp_addr(), protocol);
        subscribed(&mut client, protocol, "gate");
        assert_eq!(client.call_args(&["MULTI"]), b"+OK\r\n");
        assert_eq!(client.call_args(&["SWAPDB", "0", "1"]), b"+QUEUED\r\n");
        let before = format!("${}\r\n{zero}\r\n", zero.len());
        assert_eq!(
            show(&other.call_args(&["GET", "swapped"])),
            show(before.as_bytes())
        );
        assert_eq!(client.call_args(&["EXEC"]), b"*1\r\n+OK\r\n");
        let after = format!("${}\r\n{one}\r\n", one.len());
        assert_eq!(
            show(&other.call_args(&["GET", "swapped"])),
            show(after.as_bytes()),
            "RESP{protocol}"
        );
    }
}
