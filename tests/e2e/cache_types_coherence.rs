//! Issue 22: the rules GET's cache keeps hold for reads of every type.
//! Identical concurrent reads behind a slow Redis make one read of it; a
//! multi-key read (SINTER, SUNION, SDIFF) goes when either key changes; a
//! write through the proxy is read back at once; an entry never outlives
//! its key's TTL in Redis; each database's reply is its own entry. What
//! reached Redis is read off its own `INFO commandstats`.

use std::thread;
use std::time::{Duration, Instant};

use crate::common::relay::Relay;
use crate::common::reply_cache::{answers_within_patience, miss_then_hit, read_twice, reset_stats};
use crate::common::resp_wire::{encode_line, show, Wire};
use crate::common::{eventually, InProcess, RedisServer, PATIENCE};

const RESP: (&str, &str) = ("RESP_PORT", "auto");

/// Runs each line directly at Redis, in `db`.
fn prepare(redis: &RedisServer, db: &str, lines: &[&str]) {
    let mut direct = Wire::connect(redis.addr());
    assert_eq!(direct.call(&format!("SELECT {db}")), b"+OK\r\n");
    for line in lines {
        let reply = direct.call(line);
        assert!(!reply.starts_with(b"-"), "{line}: {}", show(&reply));
    }
}

/// Redis's own reply to `line` (RESP2, database 0).
fn direct(redis: &RedisServer, line: &str) -> Vec<u8> {
    Wire::connect(redis.addr()).call(line)
}

/// Panics with what went wrong, if anything did.
fn assert_right(wrong: Option<String>) {
    if let Some(wrong) = wrong {
        panic!("{wrong}");
    }
}

#[test]
fn identical_concurrent_hgetalls_behind_a_slow_redis_reach_it_once() {
    const READERS: usize = 16;
    let redis = RedisServer::start();
    prepare(&redis, "0", &["HSET hot name ann age 30 city rome"]);
    let want = direct(&redis, "HGETALL hot");
    let relay = Relay::start(redis.addr(), Duration::ZERO);
    let proxy = InProcess::start_at(
        &relay.url(),
        &[RESP, ("WORKERS", "20"), ("REDIS_TIMEOUT_MS", "10000")],
    );
    proxy.wait_for_link("up");
    // A cacheable read first: the proxy reads Redis's command table on the
    // first one, and has a pooled connection ready after it.
    let addr = proxy.resp_addr();
    assert_eq!(Wire::connect(addr).call("HGETALL warm-up"), b"*0\r\n");
    let coalesced = proxy.metric("redis_proxy_coalesced_total");
    reset_stats(&redis);
    // Redis holds every request (the invalidation link's aside): the first
    // HGETALL waits there, and the others on it.
    relay.hold();
    let readers: Vec<_> = (0..READERS)
        .map(|_| thread::spawn(move || Wire::connect(addr).call("HGETALL hot")))
        .collect();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let waiting = proxy.metric("redis_proxy_coalesced_total") - coalesced;
        if waiting == (READERS - 1) as f64 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{waiting} HGETALLs of {READERS} wait on the first one's read \
             ({} requests held at Redis; {} misses)",
            relay.in_flight(),
            proxy.metric("redis_proxy_cache_misses_total"),
        );
        thread::sleep(Duration::from_millis(10));
    }
    relay.release();
    for reader in readers {
        assert_eq!(show(&reader.join().expect("reader")), show(&want));
    }
    assert_eq!(redis.calls("hgetall"), 1, "HGETALLs that reached Redis");
}

#[test]
fn sinter_sunion_and_sdiff_are_dropped_by_a_write_to_either_key() {
    // (read over keys A and B, A's members, B's members, a write to A and a
    // write to B that each change the read's answer)
    let ops: [(&str, &str, &str, &str, &str); 3] = [
        ("SINTER", "x y c", "c d", "SREM $A c", "SREM $B c"),
        ("SUNION", "x y", "c", "SADD $A n", "SADD $B m"),
        ("SDIFF", "x c", "c", "SADD $A n", "SADD $B x"),
    ];
    let redis = RedisServer::start();
    let key = |op: &str, which: &str, written: &str| format!("{op}:{written}:{which}");
    for (op, a, b, _, _) in ops {
        for written in ["A", "B"] {
            prepare(
                &redis,
                "0",
                &[
                    &format!("SADD {} {a}", key(op, "A", written)),
                    &format!("SADD {} {b}", key(op, "B", written)),
                ],
            );
        }
    }
    let proxy = InProcess::start(&redis, &[RESP]);
    proxy.wait_for_link("up");
    let mut through = Wire::connect(proxy.resp_addr());
    for (op, _, _, write_a, write_b) in ops {
        for (written, write) in [("A", write_a), ("B", write_b)] {
            let (a, b) = (key(op, "A", written), key(op, "B", written));
            let read = format!("{op} {a} {b}");
            let before = direct(&redis, &read);
            assert_right(miss_then_hit(&redis, &mut through, &read, &before));
            let write = write.replace("$A", &a).replace("$B", &b);
            assert!(!direct(&redis, &write).starts_with(b"-"), "{write}");
            let after = direct(&redis, &read);
            assert_ne!(after, before, "{write} does not change {read}");
            assert!(
                answers_within_patience(&mut through, &read, &after),
                "{read} after {write} (to its {written} key) still answers {}; Redis: {}",
                show(&through.call(&read)),
                show(&after)
            );
        }
    }
}

#[test]
fn a_write_through_the_proxy_is_read_back_through_it_at_once() {
    let redis = RedisServer::start();
    prepare(&redis, "0", &["HSET ryw:h f start", "RPUSH ryw:l start"]);
    let proxy = InProcess::start(&redis, &[RESP]);
    proxy.wait_for_link("up");
    let mut writer = Wire::connect(proxy.resp_addr());
    let mut reader = Wire::connect(proxy.resp_addr());
    const ROUNDS: u64 = 100;
    reset_stats(&redis);
    let mut stale = Vec::new();
    for i in 0..ROUNDS {
        let value = format!("v{i}");
        let bulk = format!("${}\r\n{value}\r\n", value.len());
        assert_eq!(writer.call(&format!("HSET ryw:h f {value}")), b":0\r\n");
        assert_eq!(writer.call(&format!("LSET ryw:l 0 {value}")), b"+OK\r\n");
        let want = [
            ("HGETALL ryw:h", format!("*2\r\n$1\r\nf\r\n{bulk}")),
            ("LRANGE ryw:l 0 -1", format!("*1\r\n{bulk}")),
        ];
        // Twice each: the first read may fill the cache, the second may
        // hit it; neither may answer what was there before the write.
        for (read, want) in &want {
            for _ in 0..2 {
                let got = reader.call(read);
                if got != want.as_bytes() {
                    stale.push(format!("round {i}: {read} answered {}", show(&got)));
                }
            }
        }
    }
    assert!(stale.is_empty(), "stale reads:\n{}", stale.join("\n"));
    // Some of those reads were hits (each write's own announcement may
    // still drop a fill it arrives after, so not all).
    for command in ["hgetall", "lrange"] {
        let fetched = redis.calls(command);
        assert!(
            fetched < 2 * ROUNDS,
            "{fetched} {command}s of {} reached Redis: none was served from the cache",
            2 * ROUNDS
        );
    }
}

#[test]
fn an_entry_is_not_served_past_its_key_s_ttl_in_redis() {
    // Redis reclaims expired keys only when they are read, so it never
    // announces the expiry by itself: only a proxy that learned each key's
    // TTL stops serving it (before GLOBAL_CACHE_EXPIRY, 600 s here).
    let redis = RedisServer::start_with(&["--enable-debug-command", "yes"]);
    let _: () = redis.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    prepare(
        &redis,
        "0",
        &[
            "HSET ttl:h a 1 b 2",
            "RPUSH ttl:l a b",
            "ZADD ttl:z 1 a",
            "PEXPIRE ttl:h 8000",
            "PEXPIRE ttl:l 8000",
            "PEXPIRE ttl:z 8000",
        ],
    );
    let reads = ["HGETALL ttl:h", "LRANGE ttl:l 0 -1", "ZRANGE ttl:z 0 -1"];
    let proxy = InProcess::start(&redis, &[RESP, ("GLOBAL_CACHE_EXPIRY", "600")]);
    proxy.wait_for_link("up");
    let mut through = Wire::connect(proxy.resp_addr());
    for read in reads {
        let want = direct(&redis, read);
        assert_ne!(
            want, b"*0\r\n",
            "{read}: the key expired before the test read it"
        );
        assert_right(miss_then_hit(&redis, &mut through, read, &want));
    }
    for read in reads {
        assert!(
            answers_within_patience(&mut through, read, b"*0\r\n"),
            "{read} is still served ({}) past its key's TTL in Redis",
            show(&through.call(read))
        );
    }
}

#[test]
fn the_same_hgetall_in_database_0_and_1_is_two_entries() {
    let redis = RedisServer::start();
    prepare(&redis, "0", &["HSET h db zero"]);
    prepare(&redis, "1", &["HSET h db one"]);
    let proxy = InProcess::start(&redis, &[RESP]);
    proxy.wait_for_link("up");
    let in_db = |db: &str| {
        let mut wire = Wire::connect(proxy.resp_addr());
        assert_eq!(wire.call(&format!("SELECT {db}")), b"+OK\r\n");
        wire
    };
    let (mut zero, mut one) = (in_db("0"), in_db("1"));
    let reply = |value: &str| format!("*2\r\n$2\r\ndb\r\n${}\r\n{value}\r\n", value.len());
    let (want_zero, want_one) = (reply("zero"), reply("one"));
    assert_right(miss_then_hit(
        &redis,
        &mut zero,
        "HGETALL h",
        want_zero.as_bytes(),
    ));
    assert_right(miss_then_hit(
        &redis,
        &mut one,
        "HGETALL h",
        want_one.as_bytes(),
    ));
    // One connection moving between databases reads each one's entry.
    reset_stats(&redis);
    for (db, want) in [("1", &want_one), ("0", &want_zero), ("1", &want_one)] {
        assert_eq!(zero.call(&format!("SELECT {db}")), b"+OK\r\n");
        assert_eq!(
            show(&zero.call("HGETALL h")),
            show(want.as_bytes()),
            "db {db}"
        );
    }
    assert_eq!(redis.calls("hgetall"), 0, "a cached HGETALL reached Redis");
    // A write in database 1 by another client is seen there.
    prepare(&redis, "1", &["HSET h db changed"]);
    let changed = reply("changed");
    assert!(
        answers_within_patience(&mut one, "HGETALL h", changed.as_bytes()),
        "database 1's HGETALL after a write there: {}",
        show(&one.call("HGETALL h"))
    );
}

#[test]
fn a_fill_racing_a_write_is_answered_but_not_kept() {
    let redis = RedisServer::start();
    prepare(&redis, "0", &["HSET race f old"]);
    let relay = Relay::start(redis.addr(), Duration::ZERO);
    let proxy = InProcess::start_at(&relay.url(), &[RESP, ("REDIS_TIMEOUT_MS", "10000")]);
    proxy.wait_for_link("up");
    // A pooled connection ready, so the next read goes out at once.
    let addr = proxy.resp_addr();
    assert_eq!(Wire::connect(addr).call("HGETALL warm-up"), b"*0\r\n");
    // The proxy's HGETALL reaches Redis and reads "old"; its reply is held.
    relay.hold_replies();
    let reader = thread::spawn(move || Wire::connect(addr).call("HGETALL race"));
    eventually("Redis's reply to be held", || {
        (relay.replies_waiting() >= 1).then_some(())
    });
    // The write, and its invalidation (on the link, which is never held).
    let before = proxy.metric("redis_proxy_invalidations_total");
    prepare(&redis, "0", &["HSET race f new"]);
    eventually("the write's invalidation to arrive", || {
        (proxy.metric("redis_proxy_invalidations_total") > before).then_some(())
    });
    relay.release_replies();
    let old = b"*2\r\n$1\r\nf\r\n$3\r\nold\r\n";
    let new = b"*2\r\n$1\r\nf\r\n$3\r\nnew\r\n";
    // The read in flight gets what Redis answered it ...
    assert_eq!(show(&reader.join().expect("reader")), show(old));
    // ... but it was not kept: the next read asks Redis again, and that
    // one is kept.
    let mut through = Wire::connect(addr);
    assert_right(miss_then_hit(&redis, &mut through, "HGETALL race", new));
}

#[test]
fn a_lost_link_drops_cached_replies_even_if_a_write_follows_at_once() {
    let redis = RedisServer::start();
    prepare(&redis, "0", &["RPUSH lost a b"]);
    let proxy = InProcess::start(&redis, &[RESP]);
    proxy.wait_for_link("up");
    let mut through = Wire::connect(proxy.resp_addr());
    let read = "LRANGE lost 0 -1";
    assert_right(miss_then_hit(
        &redis,
        &mut through,
        read,
        &direct(&redis, read),
    ));
    let flushes = "redis_proxy_cache_flushes_total{reason=\"link_lost\"}";
    let before = proxy.metric(flushes);
    // Killed, then written before the proxy could have linked again: this
    // write is never announced.
    let id = redis.link_id();
    let mut wire = Wire::connect(redis.addr());
    wire.send(&encode_line(&format!("CLIENT KILL ID {id}")));
    wire.send(&encode_line("RPUSH lost c"));
    assert_eq!(wire.replies(2), [b":1\r\n".to_vec(), b":3\r\n".to_vec()]);
    eventually("the proxy to notice the lost link", || {
        (proxy.metric(flushes) > before).then_some(())
    });
    let want = direct(&redis, read);
    assert_eq!(show(&through.call(read)), show(&want));
    // It links again by itself, and caches again (the read above may
    // already have been kept, if the link was back by then).
    proxy.wait_for_link("up");
    assert_right(read_twice(&redis, &mut through, read, &want, false));
}
