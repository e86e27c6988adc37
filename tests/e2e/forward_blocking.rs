//! Blocking commands through the proxy (#21): BLPOP and its kin, XREAD
//! BLOCK and WAIT reach Redis on connections of their own, answer as Redis
//! answers (a timeout's nil, a wake-up's value), hold nothing the other
//! clients need, are bounded by DEDICATED_CONNECTIONS, and a client that
//! leaves while blocked releases its Redis connection at once.

use std::io::Read;

use crate::common::wire::{client_list, info_clients, show, Wire};
use crate::common::{eventually, read_until_closed, InProcess, Proxy, RedisServer};

/// Redis, and the proxy in front of it with RESP on and `env`.
pub(crate) fn start(env: &[(&str, &str)]) -> (RedisServer, InProcess) {
    let redis = RedisServer::start();
    let mut vars = vec![("RESP_PORT", "auto")];
    vars.extend_from_slice(env);
    let proxy = InProcess::start(&redis, &vars);
    (redis, proxy)
}

/// Waits until Redis counts `n` blocked clients.
pub(crate) fn wait_blocked(redis: &RedisServer, n: u64) {
    eventually(&format!("{n} blocked clients at Redis"), || {
        (info_clients(redis, "blocked_clients") == n).then_some(())
    });
}

#[test]
fn a_blpop_that_times_out_answers_redis_own_nil_in_resp2_and_resp3() {
    let (redis, proxy) = start(&[]);
    for (protocol, nil) in [(2, &b"*-1\r\n"[..]), (3, &b"_\r\n"[..])] {
        let mut direct = Wire::open_with(redis.addr(), protocol);
        let mut through = Wire::open_with(proxy.resp_addr(), protocol);
        let ask = ["BLPOP", "nothing-here", "0.01"];
        assert_eq!(show(&direct.call_args(&ask)), show(nil));
        assert_eq!(show(&through.call_args(&ask)), show(nil), "RESP{protocol}");
        // The connection goes on as before.
        assert_eq!(through.call_args(&["PING"]), direct.call_args(&["PING"]));
    }
}

#[test]
fn a_blocked_blpop_is_woken_by_a_push_through_the_proxy_and_by_one_at_redis() {
    let (redis, proxy) = start(&[]);
    let mut pusher = Wire::connect(proxy.resp_addr());
    for pushed_at in ["proxy", "redis"] {
        let mut blocked = Wire::connect(proxy.resp_addr());
        blocked.send_args(&["BLPOP", "jobs", "0"]);
        wait_blocked(&redis, 1);
        match pushed_at {
            "proxy" => assert_eq!(pusher.call_args(&["RPUSH", "jobs", "j1"]), b":1\r\n"),
            _ => assert_eq!(redis.cmd::<i64>(&["RPUSH", "jobs", "j1"]), 1),
        }
        assert_eq!(
            show(&blocked.reply()),
            show(b"*2\r\n$4\r\njobs\r\n$2\r\nj1\r\n")
        );
        assert_eq!(blocked.call_args(&["PING"]), b"+PONG\r\n");
        assert_eq!(redis.cmd::<i64>(&["LLEN", "jobs"]), 0, "{pushed_at}");
    }
}

#[test]
fn blmove_bzpopmin_and_xread_block_are_woken_as_at_redis_and_wait_answers() {
    let (redis, proxy) = start(&[]);
    let mut writer = Wire::connect(proxy.resp_addr());
    for protocol in [2, 3] {
        let mut through = Wire::open_with(proxy.resp_addr(), protocol);
        // BLMOVE: the element moved, as a bulk string.
        through.send_args(&["BLMOVE", "from", "to", "LEFT", "RIGHT", "0"]);
        wait_blocked(&redis, 1);
        writer.call_args(&["RPUSH", "from", "moved"]);
        assert_eq!(through.reply(), b"$5\r\nmoved\r\n");
        assert_eq!(
            redis.cmd::<Vec<String>>(&["LRANGE", "to", "0", "-1"]),
            ["moved"]
        );
        redis.cmd::<i64>(&["DEL", "to"]);
        // BZPOPMIN: key, member, score (a double in RESP3).
        through.send_args(&["BZPOPMIN", "ranks", "0"]);
        wait_blocked(&redis, 1);
        writer.call_args(&["ZADD", "ranks", "1.5", "m"]);
        let score: &[u8] = if protocol == 2 {
            b"$3\r\n1.5\r\n"
        } else {
            b",1.5\r\n"
        };
        let want = [&b"*3\r\n$5\r\nranks\r\n$1\r\nm\r\n"[..], score].concat();
        assert_eq!(show(&through.reply()), show(&want), "RESP{protocol}");
        // XREAD BLOCK: the same bytes as a client of Redis's own blocked
        // beside it (the entry's id is Redis's to choose).
        let mut direct = Wire::open_with(redis.addr(), protocol);
        let read = ["XREAD", "BLOCK", "0", "STREAMS", "events", "$"];
        direct.send_args(&read);
        through.send_args(&read);
        wait_blocked(&redis, 2);
        writer.call_args(&["XADD", "events", "*", "field", "value"]);
        let (theirs, ours) = (direct.reply(), through.reply());
        assert_eq!(show(&ours), show(&theirs), "RESP{protocol}");
        assert!(show(&ours).contains("$5\\r\\nfield\\r\\n$5\\r\\nvalue"));
        // WAIT with no replica: at once, as at Redis.
        assert_eq!(
            through.call_args(&["WAIT", "0", "0"]),
            direct.call_args(&["WAIT", "0", "0"])
        );
        assert_eq!(through.call_args(&["WAIT", "0", "0"]), b":0\r\n");
    }
}

#[test]
fn twenty_blocked_clients_hold_no_worker_and_no_pooled_connection() {
    let (redis, proxy) = start(&[("WORKERS", "2")]);
    let blocked: Vec<Wire> = (0..20)
        .map(|i| {
            let mut wire = Wire::connect(proxy.resp_addr());
            wire.send_args(&["BLPOP", &format!("queue:{i}"), "0"]);
            wire
        })
        .collect();
    wait_blocked(&redis, 20);
    let at_redis = client_list(&redis, |line| {
        line.contains(" cmd=blpop ") && line.split(' ').any(|f| f == "flags=b")
    });
    assert_eq!(at_redis.len(), 20, "{at_redis:#?}");
    // Meanwhile every other path still answers, misses included (those
    // need a worker and a pooled connection).
    let mut other = Wire::connect(proxy.resp_addr());
    for i in 0..10 {
        let (key, value) = (format!("plain:{i}"), format!("v{i}"));
        assert_eq!(other.call_args(&["SET", &key, &value]), b"+OK\r\n");
        let bulk = format!("${}\r\n{value}\r\n", value.len());
        assert_eq!(
            show(&other.call_args(&["GET", &key])),
            show(bulk.as_bytes())
        );
        redis.set(format!("http:{i}"), &value);
        let reply = proxy.get_key(format!("http:{i}"));
        assert_eq!((reply.status, reply.text()), (200, value));
    }
    // And each blocked client still gets its own element.
    for (i, mut wire) in blocked.into_iter().enumerate() {
        let key = format!("queue:{i}");
        assert_eq!(other.call_args(&["RPUSH", &key, "x"]), b":1\r\n");
        let want = format!("*2\r\n${}\r\n{key}\r\n$1\r\nx\r\n", key.len());
        assert_eq!(show(&wire.reply()), show(want.as_bytes()));
    }
    wait_blocked(&redis, 0);
}

/// A client blocks on `key`, then leaves as `leave` makes it; Redis must
/// unblock its connection, and a later push must stay in the list.
fn leaving_while_blocked_releases_the_connection(leave: fn(Wire)) {
    let (redis, proxy) = start(&[]);
    let mut wire = Wire::connect(proxy.resp_addr());
    // A PING first, whose reply this client never reads: its socket then
    // has unread bytes, which a `leave` may use to close with a reset.
    wire.send_args(&["PING"]);
    wire.send_args(&["BLPOP", "orphan", "0"]);
    let mut byte = [0u8; 1];
    assert_eq!(wire.stream.peek(&mut byte).expect("the PONG arrives"), 1);
    wait_blocked(&redis, 1);
    leave(wire);
    wait_blocked(&redis, 0);
    assert_eq!(redis.cmd::<i64>(&["RPUSH", "orphan", "left"]), 1);
    assert_eq!(redis.cmd::<i64>(&["LLEN", "orphan"]), 1);
    // The proxy goes on: a new client blocks and is woken.
    let mut next = Wire::connect(proxy.resp_addr());
    let popped = next.call_args(&["BLPOP", "orphan", "0"]);
    assert_eq!(show(&popped), show(b"*2\r\n$6\r\norphan\r\n$4\r\nleft\r\n"));
}

#[test]
fn a_client_that_closes_while_blocked_has_nothing_popped_for_it() {
    leaving_while_blocked_releases_the_connection(|mut wire| {
        // Read the PONG: the close is a plain FIN.
        let mut pong = [0u8; 7];
        wire.stream.read_exact(&mut pong).expect("PONG");
        drop(wire);
    });
}

#[test]
fn a_client_that_resets_while_blocked_has_nothing_popped_for_it() {
    // Closed with the PONG unread: the kernel sends a reset, not a FIN.
    leaving_while_blocked_releases_the_connection(drop);
}

/// A client that half-closes while blocked (ioredis's `disconnect()`, so
/// every BullMQ `close()`) reads the end with no bytes before it, as from
/// Redis, which frees such a client without a word: not the error the
/// cut connection gave ("Redis closed the connection").
#[test]
fn a_client_that_half_closes_while_blocked_reads_the_close_without_a_word() {
    let (redis, proxy) = start(&[]);
    let blocking: [&[&str]; 2] = [
        &["BLPOP", "nothing-here", "0"],
        &["XREAD", "BLOCK", "0", "STREAMS", "no-stream", "$"],
    ];
    for ask in blocking {
        for addr in [redis.addr(), proxy.resp_addr()] {
            let mut wire = Wire::connect(addr);
            wire.send_args(ask);
            wait_blocked(&redis, 1);
            wire.stream
                .shutdown(std::net::Shutdown::Write)
                .expect("half-close");
            let rest = read_until_closed(&mut wire.stream);
            assert_eq!(show(&rest), "", "{ask:?} at {addr}");
            wait_blocked(&redis, 0);
        }
    }
}

#[test]
fn past_dedicated_connections_a_blocking_command_is_refused_until_one_ends() {
    let (redis, proxy) = start(&[("DEDICATED_CONNECTIONS", "2")]);
    let mut first = Wire::connect(proxy.resp_addr());
    let mut second = Wire::connect(proxy.resp_addr());
    first.send_args(&["BLPOP", "a", "0"]);
    second.send_args(&["BLPOP", "b", "0"]);
    wait_blocked(&redis, 2);
    let refused = b"-ERR too many blocking commands and subscriptions through the proxy \
                    (DEDICATED_CONNECTIONS=2)\r\n";
    let mut third = Wire::connect(proxy.resp_addr());
    assert_eq!(show(&third.call_args(&["BLPOP", "c", "0"])), show(refused));
    assert_eq!(
        show(&third.call_args(&["SUBSCRIBE", "news"])),
        show(refused)
    );
    // Refused, not closed: other commands go on.
    assert_eq!(third.call_args(&["RPUSH", "a", "1"]), b":1\r\n");
    assert_eq!(show(&first.reply()), show(b"*2\r\n$1\r\na\r\n$1\r\n1\r\n"));
    // The first's place is free again once its reply is in.
    third.send_args(&["BLPOP", "c", "0"]);
    wait_blocked(&redis, 2);
    assert_eq!(first.call_args(&["RPUSH", "c", "2"]), b":1\r\n");
    assert_eq!(show(&third.reply()), show(b"*2\r\n$1\r\nc\r\n$1\r\n2\r\n"));
    assert_eq!(first.call_args(&["RPUSH", "b", "3"]), b":1\r\n");
    assert_eq!(show(&second.reply()), show(b"*2\r\n$1\r\nb\r\n$1\r\n3\r\n"));
}

#[test]
fn one_client_blocking_again_and_again_always_finds_its_place_free() {
    // With one place, a client's next blocking command must not race the
    // end of its last one: each BLPOP here finds its element at once.
    let (redis, proxy) = start(&[("DEDICATED_CONNECTIONS", "1")]);
    let mut wire = Wire::connect(proxy.resp_addr());
    let rounds = 300;
    let mut pushes = vec!["RPUSH", "ready"];
    pushes.extend(std::iter::repeat_n("x", rounds));
    assert_eq!(redis.cmd::<usize>(&pushes), rounds);
    for _ in 0..rounds {
        wire.send_args(&["BLPOP", "ready", "0"]);
    }
    for round in 0..rounds {
        let reply = wire.reply();
        assert_eq!(
            show(&reply),
            show(b"*2\r\n$5\r\nready\r\n$1\r\nx\r\n"),
            "round {round}"
        );
    }
}

/// A client blocked when the proxy is told to stop is told why, in one
/// error line, then closed (Redis, shut down, would close without a word;
/// "Redis closed the connection" would blame Redis); the proxy exits 0.
#[test]
fn a_client_blocked_at_sigterm_is_told_the_proxy_is_shutting_down() {
    let redis = RedisServer::start();
    let mut proxy = Proxy::start(&redis, &[("RESP_PORT", "auto")]);
    let mut blocked = Wire::connect(proxy.resp_addr());
    blocked.send_args(&["BLPOP", "never", "0"]);
    wait_blocked(&redis, 1);
    proxy.signal("TERM");
    assert_eq!(
        show(&blocked.reply()),
        show(b"-ERR proxy shutting down\r\n")
    );
    let rest = read_until_closed(&mut blocked.stream);
    assert_eq!(show(&rest), "", "closed after it");
    assert_eq!(proxy.wait_exit().code(), Some(0), "{}", proxy.log());
    wait_blocked(&redis, 0);
}
