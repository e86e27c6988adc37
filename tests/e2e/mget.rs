//! MGET through the cache: its reply is held to RESP_MAX_REPLY_BYTES as a
//! forwarded reply is (one cached value named many times made the proxy
//! hold the whole reply twice), its misses cost Redis a few commands, not
//! one per key, and its answers stay those Redis would give. Memory is
//! read from /proc (`VmHWM`), Redis's work from `INFO commandstats`.

use crate::common::resp_wire::{show, Wire};
use crate::common::{eventually, Proxy, RedisServer};

/// What a reply past RESP_MAX_REPLY_BYTES is answered (the forwarding
/// path's words).
const REFUSED: &[u8] =
    b"-ERR backing Redis unavailable: reply larger than RESP_MAX_REPLY_BYTES\r\n";

/// `MGET` of `keys`, as one line.
fn mget(keys: &[String]) -> String {
    format!("MGET {}", keys.join(" "))
}

/// A cached 1 MiB value named 24 times (a 24 MiB reply from a request of a
/// few hundred bytes) with RESP_MAX_REPLY_BYTES at 2 MiB: refused, and the
/// proxy's peak memory grows by far less than the reply (before, it built
/// the reply whole and copied it again into the connection's output). So
/// is an MGET whose misses alone pass the bound; one under it is answered
/// whole, and the connection goes on.
#[test]
fn an_mget_past_resp_max_reply_bytes_is_refused_and_not_held() {
    let redis = RedisServer::start();
    let value = "v".repeat(1024 * 1024);
    redis.set("big", &value);
    for i in 0..3 {
        redis.set(format!("big:{i}"), &value);
    }
    let proxy = Proxy::start(
        &redis,
        &[
            ("RESP_PORT", "auto"),
            ("RESP_MAX_REPLY_BYTES", "2097152"),
            ("CACHE_MAX_BYTES", "67108864"),
            ("REDIS_TIMEOUT_MS", "10000"),
        ],
    );
    let mut wire = Wire::connect(proxy.resp_addr());
    let one = wire.call("MGET big");
    assert_eq!(one.len(), 1024 * 1024 + 4 + 10 + 2, "1 MiB answered whole");
    let before = proxy.peak_kib();
    let many: Vec<String> = (0..24).map(|_| "big".to_owned()).collect();
    for round in 0..3 {
        let reply = wire.call(&mget(&many));
        assert!(
            reply == REFUSED,
            "round {round}: MGET of 24 MiB answered {} bytes: {}",
            reply.len(),
            show(&reply[..reply.len().min(120)])
        );
        assert_eq!(wire.call("PING"), b"+PONG\r\n");
    }
    // Three distinct 1 MiB misses: 3 MiB of reply, refused too.
    let misses: Vec<String> = (0..3).map(|i| format!("big:{i}")).collect();
    assert_eq!(show(&wire.call(&mget(&misses))), show(REFUSED));
    let grown = proxy.peak_kib().saturating_sub(before);
    assert!(grown < 12 * 1024, "peak grew {grown} KiB for a 24 MiB MGET");
    // Under the bound: answered whole, after the refusals.
    let two = wire.call("MGET big nothing");
    assert_eq!(two.len(), 4 + (1024 * 1024 + 10 + 2) + 5);
    assert!(two.starts_with(b"*2\r\n$1048576\r\nvvv") && two.ends_with(b"$-1\r\n"));
}

/// An MGET of 1,000 keys Redis does not have costs Redis a few commands
/// (before: a GET and a PTTL for each key, one round trip each, while
/// holding a WORKERS place), and is answered 1,000 nils; a second MGET of
/// keys now cached costs Redis nothing.
#[test]
fn an_mget_of_many_misses_costs_redis_a_few_commands() {
    let redis = RedisServer::start();
    for i in 0..10 {
        redis.set(format!("here:{i}"), format!("value {i}"));
    }
    let proxy = Proxy::start(&redis, &[("RESP_PORT", "auto")]);
    let mut wire = Wire::connect(proxy.resp_addr());
    let keys: Vec<String> = (0..1000).map(|i| format!("absent:{i}")).collect();
    let reads = || redis.calls("get") + redis.calls("mget") + redis.calls("pttl");
    let before = reads();
    let reply = wire.call(&mget(&keys));
    assert_eq!(
        reply,
        [&b"*1000\r\n"[..], &b"$-1\r\n".repeat(1000)].concat()
    );
    let absent = reads() - before;
    assert!(absent <= 4, "1,000 absent keys cost Redis {absent} reads");
    // Ten present among 500 absent: still a few commands, and the ten are
    // then cached.
    let mut mixed: Vec<String> = (0..500).map(|i| format!("gone:{i}")).collect();
    for i in 0..10 {
        mixed.insert(i * 50, format!("here:{i}"));
    }
    let expected = |mixed: &[String]| {
        let mut out = format!("*{}\r\n", mixed.len()).into_bytes();
        for key in mixed {
            match key.strip_prefix("here:") {
                Some(i) => out.extend(format!("$7\r\nvalue {i}\r\n").bytes()),
                None => out.extend(b"$-1\r\n"),
            }
        }
        out
    };
    let before = reads();
    assert_eq!(show(&wire.call(&mget(&mixed))), show(&expected(&mixed)));
    let cost = reads() - before;
    assert!(
        cost <= 4 + 10,
        "510 keys, 10 present, cost Redis {cost} reads"
    );
    let here: Vec<String> = (0..10).map(|i| format!("here:{i}")).collect();
    let before = reads();
    assert_eq!(show(&wire.call(&mget(&here))), show(&expected(&here)));
    assert_eq!(reads() - before, 0, "ten cached keys cost Redis nothing");
}

/// MGET answers what Redis would, hits and misses mixed: a write through
/// the proxy between two MGETs is seen by the second, a key of another
/// type is nil (and GET of it still WRONGTYPE), a key's TTL in Redis ends
/// its entry, and another database's keys are its own.
#[test]
fn mget_answers_stay_coherent() {
    let redis = RedisServer::start();
    redis.set("a", "1");
    redis.set("b", "2");
    let _: i64 = redis.cmd(&["RPUSH", "list", "x"]);
    let proxy = Proxy::start(&redis, &[("RESP_PORT", "auto")]);
    let mut wire = Wire::connect(proxy.resp_addr());
    let ab = "*4\r\n$1\r\n1\r\n$-1\r\n$1\r\n2\r\n$-1\r\n";
    assert_eq!(show(&wire.call("MGET a c b list")), show(ab.as_bytes()));
    // Now all hits (or known absent): the same answer.
    assert_eq!(show(&wire.call("MGET a c b list")), show(ab.as_bytes()));
    assert!(wire.call_text("GET list").starts_with("-WRONGTYPE"));
    assert_eq!(wire.call("SET a one"), b"+OK\r\n");
    assert_eq!(wire.call("SET c three"), b"+OK\r\n");
    assert_eq!(
        show(&wire.call("MGET a b c a")),
        show(b"*4\r\n$3\r\none\r\n$1\r\n2\r\n$5\r\nthree\r\n$3\r\none\r\n")
    );
    // A write straight to Redis is announced; the next MGETs see it.
    redis.set("b", "two");
    eventually("the write announced", || {
        let reply = wire.call("MGET b");
        (reply == b"*1\r\n$3\r\ntwo\r\n").then_some(())
    });
    // A key whose TTL ends in Redis is not served past it.
    let _: String = redis.cmd(&["SET", "brief", "here", "PX", "200"]);
    let reply = wire.call("MGET brief a");
    assert!(
        reply == b"*2\r\n$4\r\nhere\r\n$3\r\none\r\n" || reply.starts_with(b"*2\r\n$-1\r\n"),
        "{}",
        show(&reply)
    );
    eventually("the key's TTL to end in Redis", || {
        let left: i64 = redis.cmd(&["PTTL", "brief"]);
        (left == -2).then_some(())
    });
    assert_eq!(
        show(&wire.call("MGET brief a")),
        show(b"*2\r\n$-1\r\n$3\r\none\r\n")
    );
    // Another database: its own keys, cached apart.
    assert_eq!(wire.call("SELECT 3"), b"+OK\r\n");
    assert_eq!(wire.call("SET a three"), b"+OK\r\n");
    assert_eq!(
        show(&wire.call("MGET a b")),
        show(b"*2\r\n$5\r\nthree\r\n$-1\r\n")
    );
    assert_eq!(wire.call("SELECT 0"), b"+OK\r\n");
    assert_eq!(
        show(&wire.call("MGET a b")),
        show(b"*2\r\n$3\r\none\r\n$3\r\ntwo\r\n")
    );
}

/// A Redis user set up for the proxy before MGET sent `MGET` and `EXISTS`
/// (`+get +pttl` only): MGET answers as before, its misses read with GET
/// and PTTL, and Redis refuses the proxy once, not once per MGET.
#[test]
fn an_mget_through_a_user_without_mget_reads_with_get_and_pttl() {
    let redis = RedisServer::start();
    redis.set("a", "1");
    let _: i64 = redis.cmd(&["RPUSH", "list", "x"]);
    let rules: Vec<&str> = RedisServer::PROXY_ACL
        .iter()
        .copied()
        .filter(|rule| !["+mget", "+exists"].contains(rule))
        .collect();
    let address = redis.acl_user("old", "pw", &rules);
    let proxy = Proxy::start_at(&address, &[("RESP_PORT", "auto")]);
    proxy.wait_for_settled_link();
    let mut wire = Wire::connect(proxy.resp_addr());
    for round in 0..3 {
        let keys = format!("MGET a x:{round} list");
        assert_eq!(
            show(&wire.call(&keys)),
            show(b"*3\r\n$1\r\n1\r\n$-1\r\n$-1\r\n"),
            "round {round}"
        );
    }
    assert_eq!(redis.command_stat("mget", "rejected_calls"), 1);
    assert!(wire.call_text("GET list").starts_with("-WRONGTYPE"));
}

/// A GET that joins the fetch of a key an MGET leads is not failed for
/// that MGET's size: Redis is paused while the MGET's misses are in
/// flight, a GET of one of its keys joins (counted coalesced), and when
/// the MGET is refused the GET still gets the key's value.
#[test]
fn a_get_waiting_on_a_refused_mget_s_fetch_gets_its_value() {
    let redis = RedisServer::start();
    let value = "v".repeat(1024 * 1024);
    for i in 0..3 {
        redis.set(format!("big:{i}"), &value);
    }
    redis.set("k", "small");
    let proxy = Proxy::start(
        &redis,
        &[
            ("RESP_PORT", "auto"),
            ("RESP_MAX_REPLY_BYTES", "2097152"),
            ("REDIS_TIMEOUT_MS", "20000"),
        ],
    );
    let misses = || proxy.metric("redis_proxy_cache_misses_total");
    let coalesced = || proxy.metric("redis_proxy_coalesced_total");
    let before = (misses(), coalesced());
    let _: () = redis.cmd(&["CLIENT", "PAUSE", "4000", "ALL"]);
    let mut a = Wire::connect(proxy.resp_addr());
    a.send(&crate::common::resp_wire::encode_line(
        "MGET k big:0 big:1 big:2",
    ));
    eventually("the MGET's four misses in flight", || {
        (misses() >= before.0 + 4.0).then_some(())
    });
    let mut b = Wire::connect(proxy.resp_addr());
    b.send(&crate::common::resp_wire::encode_line("GET k"));
    eventually("the GET joined the MGET's fetch", || {
        (coalesced() >= before.1 + 1.0).then_some(())
    });
    assert_eq!(show(&a.reply()), show(REFUSED));
    assert_eq!(show(&b.reply()), show(b"$5\r\nsmall\r\n"));
}

/// In cluster mode, where an MGET's misses are read a master at a time
/// (`read_cluster_many.rs`), its reply is held to RESP_MAX_REPLY_BYTES all
/// the same: forty
/// 1 MiB values on whichever masters, against a 2 MiB bound, are refused,
/// counted as they come (the proxy's peak memory grows by far less than
/// 40 MiB); one passes.
#[test]
fn a_cluster_mget_past_resp_max_reply_bytes_is_refused() {
    let cluster = crate::common::cluster::Cluster::start();
    let value = "v".repeat(1024 * 1024);
    let mut conn = cluster.conn();
    for i in 0..40 {
        let _: () = redis::cmd("SET")
            .arg(format!("big:{i}"))
            .arg(&value)
            .query(&mut conn)
            .expect("SET");
    }
    let proxy = Proxy::start_at(
        &cluster.seeds(),
        &[
            ("REDIS_MODE", "cluster"),
            ("RESP_PORT", "auto"),
            ("RESP_MAX_REPLY_BYTES", "2097152"),
            ("REDIS_TIMEOUT_MS", "10000"),
        ],
    );
    proxy.wait_for_link("up");
    let mut wire = Wire::connect(proxy.resp_addr());
    let before = proxy.peak_kib();
    let all: Vec<String> = (0..40).map(|i| format!("big:{i}")).collect();
    assert_eq!(show(&wire.call(&mget(&all))), show(REFUSED));
    let grown = proxy.peak_kib().saturating_sub(before);
    assert!(
        grown < 16 * 1024,
        "peak grew {grown} KiB for 40 MiB of misses"
    );
    let two = wire.call("MGET big:0 nothing");
    assert_eq!(two.len(), 4 + (1024 * 1024 + 10 + 2) + 5);
}
