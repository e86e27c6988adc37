//! Forwarding (issue 21): writes and other commands the proxy does not
//! answer itself go to Redis, and a write through the proxy is seen by the
//! next read on any connection and over HTTP, whatever the invalidation
//! link does (read-your-writes), fetches in flight included; a pipeline
//! mixing writes and cached reads; Redis down and back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::common::relay::Relay;
use crate::common::resp_wire::{encode_line, show, Wire};
use crate::common::write_cases::{Want, CASES, FUNCTION};
use crate::common::{eventually, HttpConnection, InProcess, RedisServer};

const RESP: (&str, &str) = ("RESP_PORT", "auto");
/// No invalidation link: only the forwarding path can drop what a write
/// changed, so a missing drop shows as a stale read every time.
const NO_LINK: (&str, &str) = ("INVALIDATION", "off");

/// A bulk string reply.
fn bulk(value: &str) -> Vec<u8> {
    format!("${}\r\n{value}\r\n", value.len()).into_bytes()
}

/// SETs `k` to a new value through the proxy, then reads it back on
/// another RESP connection and over HTTP, `rounds` times, with the cache
/// holding the previous value each time, while bystanders keep reads of
/// `k` in flight (so writes meet fetches under way). No read may be stale.
fn read_your_writes(env: &[(&str, &str)], rounds: usize) {
    let redis = RedisServer::start();
    redis.set("k", "start");
    let mut env = env.to_vec();
    env.push(RESP);
    let proxy = InProcess::start(&redis, &env);
    let stop = Arc::new(AtomicBool::new(false));
    let (addr, resp) = (proxy.addr, proxy.resp_addr());
    let bystanders: Vec<_> = (0..2)
        .map(|n| {
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let mut http = HttpConnection::connect(addr);
                let mut wire = Wire::connect(resp);
                while !stop.load(Ordering::Relaxed) {
                    match n {
                        0 => drop(http.get("/proxy?key=k")),
                        _ => drop(wire.call("GET k")),
                    }
                }
            })
        })
        .collect();
    let mut writer = Wire::connect(resp);
    let mut reader = Wire::connect(resp);
    let mut http = HttpConnection::connect(addr);
    let mut stale = Vec::new();
    let mut http_hits = 0;
    for i in 0..rounds {
        let value = format!("v{i}");
        assert_eq!(writer.call(&format!("SET k {value}")), b"+OK\r\n");
        let got = reader.call("GET k");
        if got != bulk(&value) {
            stale.push(format!("round {i}: RESP read {}", show(&got)));
        }
        let reply = http.get("/proxy?key=k");
        if reply.body != value.as_bytes() {
            stale.push(format!("round {i}: HTTP read {}", reply.text()));
        }
        // The RESP read cached the value: the next write meets a warm cache.
        http_hits += usize::from(reply.is_hit());
    }
    stop.store(true, Ordering::Relaxed);
    for bystander in bystanders {
        bystander.join().expect("a bystander");
    }
    assert!(
        stale.is_empty(),
        "{} stale reads in {rounds} rounds: {:?}",
        stale.len(),
        &stale[..stale.len().min(10)]
    );
    assert!(
        http_hits > rounds / 2,
        "only {http_hits} HTTP reads were hits"
    );
}

#[test]
fn a_write_through_the_proxy_is_read_back_everywhere_with_no_invalidation_link() {
    read_your_writes(&[NO_LINK], 2000);
}

#[test]
fn a_write_through_the_proxy_is_read_back_everywhere_with_the_link_on() {
    read_your_writes(&[], 1000);
}

#[test]
fn a_write_meeting_a_fetch_in_flight_keeps_the_fetched_old_value_out_of_the_cache() {
    let redis = RedisServer::start();
    let relay = Relay::start(redis.addr(), Duration::ZERO);
    let proxy = InProcess::start_at(&relay.url(), &[RESP, NO_LINK]);
    // The read path's connection is open (held below); the forwarding
    // one, opened from now on, passes.
    assert_eq!(proxy.get_key("other").status, 404);
    relay.exempt_new_connections();
    let mut client = Wire::connect(proxy.resp_addr());
    assert_eq!(client.call("EXISTS other"), b":0\r\n");
    for (n, write, want) in [
        (0, "SET $ new", Some("new")),
        (1, "DEL $", None),
        (2, "FLUSHALL", None),
    ] {
        let key = format!("inflight{n}");
        redis.set(&key, "old");
        // A read fetches the old value; Redis's reply waits at the relay.
        relay.hold_replies();
        let addr = proxy.addr;
        let path = format!("/proxy?key={key}");
        let reader = thread::spawn(move || crate::common::request(addr, "GET", &path, &[]));
        eventually("the fetch to be in flight", || {
            (relay.replies_waiting() == 1).then_some(())
        });
        let reply = client.call(&write.replace('$', &key));
        assert!(!reply.starts_with(b"-"), "{write}: {}", show(&reply));
        relay.release_replies();
        // It began before the write: either value is right for it.
        let _ = reader.join().expect("the read in flight");
        let (resp, page) = (client.call(&format!("GET {key}")), proxy.get_key(&key));
        match want {
            Some(value) => {
                assert_eq!(show(&resp), show(&bulk(value)), "{write}");
                assert_eq!(page.text(), value, "{write}");
            }
            None => {
                assert_eq!(show(&resp), "$-1\\r\\n", "{write}");
                assert_eq!(page.status, 404, "{write}");
            }
        }
    }
}

#[test]
fn every_kind_of_write_is_seen_by_the_next_read() {
    let redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[RESP, NO_LINK]);
    let mut direct = Wire::connect(redis.addr());
    let mut client = Wire::connect(proxy.resp_addr());
    let mut reader = Wire::connect(proxy.resp_addr());
    let mut http = HttpConnection::connect(proxy.addr);
    // The library FCALL calls, loaded through the proxy.
    assert_eq!(client.call(FUNCTION), bulk("fwdtest"));
    let mut stale = Vec::new();
    for (n, case) in CASES.iter().enumerate() {
        let line = |text: &str| text.replace('$', &format!("case{n}:"));
        for before in case.before {
            assert!(!direct.call(&line(before)).starts_with(b"-"), "{before}");
        }
        for key in case.warm {
            let warm = format!("GET {}", line(key));
            let _ = client.call(&warm);
            assert!(client.call(&warm).starts_with(b"$"), "{warm}");
        }
        for behind in case.behind {
            assert!(!direct.call(&line(behind)).starts_with(b"-"), "{behind}");
        }
        let reply = client.call(&line(case.write));
        assert!(!reply.starts_with(b"-"), "{}: {}", case.write, show(&reply));
        for (key, want) in case.want {
            let key = line(key);
            let resp = reader.call(&format!("GET {key}"));
            let page = http.get(&format!("/proxy?key={key}"));
            let (resp_ok, http_ok) = match want {
                Want::Value(value) => (resp == bulk(value), page.body == value.as_bytes()),
                Want::Nil => (resp == b"$-1\r\n", page.status == 404),
                Want::AsRedis => {
                    let held = direct.call(&format!("GET {key}"));
                    let body = held.splitn(2, |b| *b == b'\n').nth(1).unwrap_or_default();
                    (
                        resp == held,
                        page.body == body[..body.len().saturating_sub(2)],
                    )
                }
                // Over HTTP another type is its JSON (issue #22).
                Want::WrongType => (
                    resp.starts_with(b"-WRONGTYPE"),
                    page.status == 200
                        && serde_json::from_slice::<serde_json::Value>(&page.body)
                            .is_ok_and(|body| body["type"].is_string()),
                ),
            };
            if !resp_ok || !http_ok {
                stale.push(format!(
                    "{} then GET {key}: RESP {}, HTTP {} {}",
                    case.write,
                    show(&resp),
                    page.status,
                    page.text()
                ));
            }
        }
    }
    assert!(stale.is_empty(), "stale reads:\n{}", stale.join("\n"));
}

#[test]
fn reads_that_fetch_and_writes_of_the_same_keys_in_one_pipeline_keep_their_order() {
    let redis = RedisServer::start();
    for i in 0..101 {
        redis.set(format!("c{i}"), "old");
    }
    let proxy = InProcess::start(&redis, &[RESP, NO_LINK]);
    let mut wire = Wire::connect(proxy.resp_addr());
    // Each key cold: its first GET fetches while the write behind it waits.
    let (mut requests, mut expected) = (Vec::new(), Vec::new());
    for i in 0..100 {
        let mut mget = b"*2\r\n".to_vec();
        mget.extend(bulk(&format!("new{i}")));
        mget.extend(bulk("old"));
        for (line, reply) in [
            (format!("GET c{i}"), bulk("old")),
            (format!("SET c{i} new{i}"), b"+OK\r\n".to_vec()),
            (format!("GET c{i}"), bulk(&format!("new{i}"))),
            (format!("MGET c{i} c{}", i + 1), mget),
        ] {
            requests.extend(encode_line(&line));
            expected.push((line, reply));
        }
    }
    wire.send(&requests);
    let replies = wire.replies(expected.len());
    for ((line, want), got) in expected.iter().zip(&replies) {
        assert_eq!(show(got), show(want), "{line}");
    }
}

#[test]
fn a_thousand_pipelined_writes_and_cached_reads_come_back_in_order() {
    let redis = RedisServer::start();
    for j in 0..50 {
        redis.set(format!("p{j}"), format!("old{j}"));
    }
    for j in 0..10 {
        redis.set(format!("w{j}"), format!("seed{j}"));
    }
    let proxy = InProcess::start(&redis, &[RESP, NO_LINK]);
    let mut wire = Wire::connect(proxy.resp_addr());
    let mut model: Vec<String> = (0..50).map(|j| format!("old{j}")).collect();
    for (j, value) in model.iter().enumerate() {
        assert_eq!(wire.call(&format!("GET p{j}")), bulk(value));
    }
    for j in 0..10 {
        assert_eq!(wire.call(&format!("GET w{j}")), bulk(&format!("seed{j}")));
    }
    let (mut requests, mut expected) = (Vec::new(), Vec::new());
    let (mut counter, mut length) = (0, 0);
    for i in 0..1000 {
        let (line, reply) = match i % 6 {
            0 => {
                model[i % 50] = format!("new{i}");
                (format!("SET p{} new{i}", i % 50), b"+OK\r\n".to_vec())
            }
            1 => (format!("GET p{}", (i - 1) % 50), bulk(&model[(i - 1) % 50])),
            2 => {
                counter += 1;
                (
                    "INCR counter".to_owned(),
                    format!(":{counter}\r\n").into_bytes(),
                )
            }
            3 => (format!("GET w{}", i % 10), bulk(&format!("seed{}", i % 10))),
            4 => {
                length += 1;
                (
                    format!("RPUSH list {i}"),
                    format!(":{length}\r\n").into_bytes(),
                )
            }
            _ => (format!("GET p{}", (i * 7) % 50), bulk(&model[(i * 7) % 50])),
        };
        requests.extend(encode_line(&line));
        expected.push((line, reply));
    }
    wire.send(&requests);
    let replies = wire.replies(expected.len());
    let wrong: Vec<String> = expected
        .iter()
        .zip(&replies)
        .enumerate()
        .filter(|(_, ((_, want), got))| want != *got)
        .map(|(i, ((line, want), got))| {
            format!("#{i} {line}: want {}, got {}", show(want), show(got))
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of 1000 wrong:\n{}",
        wrong.len(),
        wrong[..wrong.len().min(20)].join("\n")
    );
}

#[test]
fn refused_commands_in_a_forwarded_pipeline_keep_their_place() {
    let redis = RedisServer::start();
    redis.set("a", "0");
    let proxy = InProcess::start(&redis, &[RESP, NO_LINK]);
    let mut wire = Wire::connect(proxy.resp_addr());
    assert_eq!(wire.call("GET a"), bulk("0"));
    const REFUSED: &str = "is not allowed through the proxy";
    let expected: &[(&str, &str)] = &[
        ("SET a 1", "+OK\r\n"),
        ("DEBUG SLEEP 0", REFUSED),
        ("INCR a", ":2\r\n"),
        ("SAVE", REFUSED),
        ("INCR a", ":3\r\n"),
        ("GET a", "$1\r\n3\r\n"),
        ("ACL SETUSER someone on", REFUSED),
        (
            "NOSUCH x",
            "-ERR unknown command 'NOSUCH', with args beginning with: 'x' \r\n",
        ),
        ("LPUSH l x", ":1\r\n"),
        ("GET a", "$1\r\n3\r\n"),
    ];
    let all: Vec<u8> = expected.iter().flat_map(|(l, _)| encode_line(l)).collect();
    wire.send(&all);
    let replies = wire.replies(expected.len());
    for ((line, want), got) in expected.iter().zip(&replies) {
        let got = String::from_utf8_lossy(got);
        match *want {
            REFUSED => assert!(
                got.starts_with("-ERR '") && got.contains(REFUSED),
                "{line}: {got}"
            ),
            want => assert_eq!(got, want, "{line}"),
        }
    }
    assert_eq!(
        redis.calls("debug") + redis.calls("bgsave") + redis.calls("acl|setuser"),
        0
    );
}

#[test]
fn redis_down_is_an_error_naming_why_and_the_same_connection_recovers() {
    let mut redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[RESP, ("REDIS_TIMEOUT_MS", "500")]);
    let mut wire = Wire::connect(proxy.resp_addr());
    assert_eq!(wire.call("SET k before"), b"+OK\r\n");
    redis.stop();
    // Each names the cause: the connection Redis closed (a request the
    // loop wrote on it in the turn that also read its end), or a new one,
    // which Redis refuses.
    for line in ["SET k during", "LPUSH l x"] {
        let reply = wire.call_text(line);
        assert!(
            reply.starts_with("-ERR")
                && (reply.contains("refused") || reply.contains("Redis closed the connection")),
            "{line}: {reply}"
        );
    }
    assert_eq!(wire.call("PING"), b"+PONG\r\n");
    redis.restart();
    // The same connection, no reconnect: its next forwarded command works.
    assert_eq!(wire.call_text("SET k after"), "+OK\r\n");
    assert_eq!(redis.cmd::<String>(&["GET", "k"]), "after");
    assert_eq!(wire.call_text("LPUSH l x"), ":1\r\n");
    // Redis restarts between two commands, closing the proxy's idle
    // connections to it: the next command still works.
    redis.restart();
    assert_eq!(wire.call_text("SET k again"), "+OK\r\n");
    assert_eq!(redis.cmd::<String>(&["GET", "k"]), "again");
}

#[test]
fn a_reply_that_comes_after_the_timeout_is_never_taken_for_the_next_ones() {
    let redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[RESP, ("FORWARD_TIMEOUT_MS", "300")]);
    let mut wire = Wire::connect(proxy.resp_addr());
    // Some 1.5 s of Lua: Redis answers `late`, well after the proxy gave up.
    let slow = "EVAL \"local t = redis.call('TIME') while true do local n = redis.call('TIME') \
                if (n[1] - t[1]) * 1000000 + n[2] - t[2] > 1500000 then return 'late' end end\" 0";
    let reply = wire.call_text(slow);
    assert!(
        reply.starts_with("-ERR") && reply.contains("tim"),
        "{reply}"
    );
    // Until the script ends Redis answers nobody; then every reply is the
    // one to its own command, never the script's `late`.
    eventually("Redis to answer again through the proxy", || {
        let reply = wire.call_text("EXISTS nothing");
        assert!(!reply.contains("late"), "a stale reply: {reply}");
        (reply == ":0\r\n").then_some(())
    });
    for (line, want) in [
        ("SET k v", "+OK\r\n"),
        ("INCR n", ":1\r\n"),
        ("GET k", "$1\r\nv\r\n"),
    ] {
        assert_eq!(wire.call_text(line), want, "{line}");
    }
}
