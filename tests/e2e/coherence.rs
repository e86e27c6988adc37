//! Coherence: a write to Redis, by anyone, is visible through the proxy as
//! soon as Redis's invalidation for it has arrived. Each test observes the
//! invalidation arriving (the proxy's own counters) instead of waiting for
//! time to pass, then asserts the old value is never served again; without
//! invalidation each would see the old value for the whole TTL (60 s).

use std::thread;
use std::time::Duration;

use crate::common::relay::Relay;
use crate::common::{eventually, Endpoints, InProcess, Proxy, RedisServer};

/// The series counting the keys Redis announced as changed.
pub(crate) const INVALIDATIONS: &str = "redis_proxy_invalidations_total";

/// How many times the whole cache went, for `reason` (`link_lost`,
/// `flushall`).
pub(crate) fn flushes(proxy: &Endpoints, reason: &str) -> f64 {
    proxy.metric(&format!(
        "redis_proxy_cache_flushes_total{{reason=\"{reason}\"}}"
    ))
}

/// Waits until the proxy has applied at least `n` key invalidations.
pub(crate) fn wait_invalidations(proxy: &Endpoints, n: f64) {
    eventually(&format!("{n} invalidations to arrive"), || {
        (proxy.metric(INVALIDATIONS) >= n).then_some(())
    });
}

/// Reads `key` through HTTP until it is a hit on `value`. (A read racing
/// the invalidation of the write that set the key is answered but not kept,
/// so the first read after a write may not fill the cache.)
pub(crate) fn cache(proxy: &Endpoints, key: &str, value: &str) {
    let reply = eventually(&format!("{key} to be cached"), || {
        let reply = proxy.get_key(key);
        reply.is_hit().then_some(reply)
    });
    assert_eq!(reply.body, value.as_bytes());
}

/// `GET key` over RESP, on a connection of its own.
pub(crate) fn resp_get(proxy: &Endpoints, key: &str) -> Option<String> {
    let mut conn = redis::Client::open(proxy.resp_url())
        .and_then(|c| c.get_connection())
        .expect("RESP connection");
    redis::cmd("GET").arg(key).query(&mut conn).expect("GET")
}

fn start() -> (RedisServer, InProcess) {
    let redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[("RESP_PORT", "auto")]);
    assert_eq!(proxy.link_state(), "up");
    (redis, proxy)
}

#[test]
fn every_kind_of_write_is_visible_at_once_over_http_and_resp() {
    let (redis, proxy) = start();
    // (key, command writing it, what GET answers afterwards)
    let cases: [(&str, &[&str], Option<&str>); 6] = [
        ("set", &["SET", "set", "new"], Some("new")),
        ("del", &["DEL", "del"], None),
        ("append", &["APPEND", "append", "+"], Some("old+")),
        ("incr", &["INCRBY", "incr", "5"], Some("15")),
        ("renamed", &["RENAME", "renamed", "elsewhere"], None),
        ("getdel", &["GETDEL", "getdel"], None),
    ];
    for (key, _, _) in &cases {
        redis.set(key, if *key == "incr" { "10" } else { "old" });
    }
    for (key, _, _) in &cases {
        let old = if *key == "incr" { "10" } else { "old" };
        cache(&proxy, key, old);
        assert_eq!(resp_get(&proxy, key).as_deref(), Some(old));
    }
    let before = proxy.metric(INVALIDATIONS);
    for (_, command, _) in &cases {
        let _: redis::Value = redis.cmd(command);
    }
    // RENAME announces both keys.
    wait_invalidations(&proxy, before + cases.len() as f64 + 1.0);
    for (key, _, after) in &cases {
        let reply = proxy.get_key(key);
        assert!(!reply.is_hit(), "{key} was served from the cache");
        match after {
            Some(value) => assert_eq!(reply.body, value.as_bytes(), "{key}"),
            None => assert_eq!(reply.status, 404, "{key}"),
        }
        assert_eq!(resp_get(&proxy, key).as_deref(), *after, "{key} over RESP");
    }
}

#[test]
fn flushall_empties_the_cache() {
    let (redis, proxy) = start();
    redis.set("a", "1");
    redis.set("b", "2");
    cache(&proxy, "a", "1");
    cache(&proxy, "b", "2");
    let _: () = redis.cmd(&["FLUSHALL"]);
    eventually("the flush to arrive", || {
        (flushes(&proxy, "flushall") == 1.0).then_some(())
    });
    assert_eq!(proxy.get_key("a").status, 404);
    assert_eq!(resp_get(&proxy, "b"), None);
}

#[test]
fn a_key_expiring_in_redis_is_dropped() {
    let (redis, proxy) = start();
    redis.set("short", "lived");
    cache(&proxy, "short", "lived");
    let before = proxy.metric(INVALIDATIONS);
    // PEXPIRE is announced as a write; then Redis deletes the key on its own
    // (active expiry) and announces that too.
    let _: () = redis.cmd(&["PEXPIRE", "short", "200"]);
    wait_invalidations(&proxy, before + 2.0);
    assert_eq!(redis.cmd::<i64>(&["EXISTS", "short"]), 0);
    assert_eq!(proxy.get_key("short").status, 404);
}

#[test]
fn a_key_evicted_by_redis_under_maxmemory_is_dropped() {
    let redis =
        RedisServer::start_with(&["--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru"]);
    let proxy = InProcess::start(&redis, &[]);
    redis.set("victim", "v");
    cache(&proxy, "victim", "v");
    // Fill Redis until it evicts the victim (the least recently used).
    let filler = vec![b'x'; 10 * 1024];
    let mut conn = redis.conn();
    let mut i = 0;
    while redis.cmd::<i64>(&["EXISTS", "victim"]) == 1 {
        let _: () = redis::cmd("SET")
            .arg(format!("fill:{i}"))
            .arg(&filler)
            .query(&mut conn)
            .expect("SET filler");
        i += 1;
        assert!(i < 10_000, "Redis never evicted the victim");
    }
    eventually("the eviction to reach the proxy", || {
        (proxy.get_key("victim").status == 404).then_some(())
    });
}

#[test]
fn a_fill_racing_a_write_is_not_stored() {
    let redis = RedisServer::start();
    redis.set("k", "old");
    let relay = Relay::start(redis.addr(), Duration::ZERO);
    let proxy = InProcess::start_at(&relay.url(), &[("REDIS_TIMEOUT_MS", "10000")]);
    proxy.wait_for_link("up");
    // A pooled connection ready, so the next GET goes out at once.
    assert_eq!(proxy.get_key("warm-up").status, 404);
    // The proxy's GET reaches Redis and reads "old"; its reply is held.
    relay.hold_replies();
    let addr = proxy.addr;
    let reader = thread::spawn(move || crate::common::request(addr, "GET", "/proxy?key=k", &[]));
    eventually("Redis's reply to be held", || {
        (relay.replies_waiting() >= 1).then_some(())
    });
    // The write, and its invalidation (on the link, which is never held).
    let before = proxy.metric(INVALIDATIONS);
    redis.set("k", "new");
    wait_invalidations(&proxy, before + 1.0);
    relay.release_replies();
    // The request in flight gets what Redis answered it ...
    assert_eq!(reader.join().expect("reader").body, b"old");
    // ... but it was not kept: the next read asks Redis again.
    let reply = proxy.get_key("k");
    assert!(!reply.is_hit());
    assert_eq!(reply.body, b"new");
}

#[test]
fn a_killed_link_drops_the_cache_even_if_a_write_follows_at_once() {
    let (redis, proxy) = start();
    redis.set("k", "old");
    cache(&proxy, "k", "old");
    let id = redis.link_id();
    // Killed, then written before the proxy could have relinked: this
    // write is never announced.
    let mut conn = redis.conn();
    let _: () = redis::pipe()
        .cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(&id)
        .ignore()
        .cmd("SET")
        .arg("k")
        .arg("new")
        .ignore()
        .query(&mut conn)
        .expect("kill and write");
    eventually("the proxy to notice", || {
        (flushes(&proxy, "link_lost") == 1.0).then_some(())
    });
    let reply = proxy.get_key("k");
    assert!(!reply.is_hit());
    assert_eq!(reply.body, b"new");
    // It comes back by itself, and caches again.
    proxy.wait_for_link("up");
    assert_ne!(redis.link_id(), id);
    cache(&proxy, "k", "new");
}

#[test]
fn nothing_cached_before_a_redis_restart_is_served_after_it() {
    let (mut redis, proxy) = start();
    redis.set("k", "before");
    cache(&proxy, "k", "before");
    redis.restart();
    redis.set("k", "after");
    proxy.wait_for_link("up");
    assert_eq!(proxy.get_key("k").body, b"after");
    assert_eq!(resp_get(&proxy, "k").as_deref(), Some("after"));
}

#[test]
fn the_link_is_named_and_off_means_no_link() {
    // The binary: its start-up line is read.
    let redis = RedisServer::start();
    let proxy = Proxy::start(&redis, &[("RESP_PORT", "auto")]);
    let list: String = redis.cmd(&["CLIENT", "LIST"]);
    assert_eq!(list.matches("name=redis-proxy-invalidation").count(), 1);
    let mut conn = redis::Client::open(proxy.resp_url())
        .and_then(|c| c.get_connection())
        .expect("RESP connection");
    let info: String = redis::cmd("INFO").query(&mut conn).expect("INFO");
    assert!(info.contains("invalidation_mode:auto\r\n"), "{info}");
    assert!(info.contains("invalidation_link:up\r\n"), "{info}");
    assert!(proxy.log().contains("invalidation=auto"));

    let quiet = RedisServer::start();
    let proxy = Proxy::start(&quiet, &[("INVALIDATION", "off")]);
    assert_eq!(proxy.link_state(), "off");
    quiet.set("k", "v");
    cache(&proxy, "k", "v");
    let list: String = quiet.cmd(&["CLIENT", "LIST"]);
    assert!(!list.contains("redis-proxy-invalidation"), "{list}");
}

#[test]
fn auto_falls_back_to_ttl_only_when_redis_refuses_tracking_and_warns_once() {
    let redis = RedisServer::start();
    // A user allowed to read but not to track.
    let address = redis.acl_user(
        "reader",
        "pw",
        &RedisServer::proxy_acl_without("+client|tracking"),
    );
    let proxy = Proxy::start_at(&address, &[]);
    proxy.wait_for_link("off");
    redis.set("k", "v");
    cache(&proxy, "k", "v");
    let log = proxy.log();
    assert_eq!(log.matches("refused client tracking").count(), 1, "{log}");
    assert!(
        log.contains("no permissions to run the 'client|tracking' command"),
        "the warning names the cause: {log}"
    );
    // And `tracking` would not fall back: it keeps the cache bypassed.
    let strict = Proxy::start_at(&address, &[("INVALIDATION", "tracking")]);
    eventually("the refusal to be logged", || {
        strict
            .log()
            .contains("INVALIDATION=tracking but Redis refused")
            .then_some(())
    });
    assert_eq!(strict.link_state(), "down");
    assert!(!strict.get_key("k").is_hit());
    assert!(!strict.get_key("k").is_hit());
}

#[test]
fn auto_keeps_retrying_a_link_redis_refused_for_a_passing_reason() {
    // The proxy's password is not yet Redis's (a rotation half done):
    // HELLO gets WRONGPASS. That passes; it must not turn invalidation off
    // for good, which would serve writes made elsewhere stale until a
    // restart.
    let redis = RedisServer::start();
    let address = redis
        .acl_user("rotated", "old", RedisServer::PROXY_ACL)
        .replace(":old@", ":new@");
    let proxy = Proxy::start_at(&address, &[]);
    eventually("the failed set-up to be logged", || {
        proxy
            .log()
            .contains("invalidation link not set up")
            .then_some(())
    });
    assert_ne!(proxy.link_state(), "off");
    let _: () = redis.cmd(&["ACL", "SETUSER", "rotated", ">new"]);
    proxy.wait_for_link("up");
    redis.set("k", "v");
    cache(&proxy, "k", "v");
    let before = proxy.metric(INVALIDATIONS);
    redis.set("k", "v2");
    wait_invalidations(&proxy, before + 1.0);
    assert_eq!(proxy.get_key("k").body, b"v2");
    assert!(
        !proxy.log().contains("falls back to off"),
        "{}",
        proxy.log()
    );
}

#[test]
fn keys_outside_the_tracked_prefixes_are_never_cached() {
    let redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[("INVALIDATION_PREFIXES", "user:,session:")]);
    redis.set("user:1", "u");
    redis.set("other", "o");
    cache(&proxy, "user:1", "u");
    assert_eq!(proxy.get_key("other").body, b"o");
    assert!(!proxy.get_key("other").is_hit());
    let before = proxy.metric(INVALIDATIONS);
    redis.set("user:1", "u2");
    wait_invalidations(&proxy, before + 1.0);
    assert_eq!(proxy.get_key("user:1").body, b"u2");
}

#[test]
fn readers_see_the_final_values_once_a_concurrent_writer_stops() {
    let (redis, proxy) = start();
    const KEYS: usize = 20;
    const ROUNDS: usize = 100;
    for k in 0..KEYS {
        redis.set(format!("soak:{k}"), "0");
    }
    let before = proxy.metric(INVALIDATIONS);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..4)
        .map(|r| {
            let (addr, url, stop) = (proxy.addr, proxy.resp_url(), stop.clone());
            thread::spawn(move || {
                let mut conn = redis::Client::open(url)
                    .and_then(|c| c.get_connection())
                    .expect("RESP");
                let mut reads = 0;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let key = format!("soak:{}", reads % KEYS);
                    if r % 2 == 0 {
                        let reply =
                            crate::common::request(addr, "GET", &format!("/proxy?key={key}"), &[]);
                        assert_eq!(reply.status, 200);
                    } else {
                        let _: Option<String> =
                            redis::cmd("GET").arg(&key).query(&mut conn).expect("GET");
                    }
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    let mut conn = redis.conn();
    for round in 1..=ROUNDS {
        for k in 0..KEYS {
            let _: () = redis::cmd("SET")
                .arg(format!("soak:{k}"))
                .arg(round)
                .query(&mut conn)
                .expect("SET");
        }
    }
    wait_invalidations(&proxy, before + (KEYS * ROUNDS) as f64);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for reader in readers {
        assert!(reader.join().expect("reader") > 0);
    }
    for k in 0..KEYS {
        let key = format!("soak:{k}");
        assert_eq!(
            proxy.get_key(&key).body,
            ROUNDS.to_string().as_bytes(),
            "{key}"
        );
        assert_eq!(resp_get(&proxy, &key), Some(ROUNDS.to_string()), "{key}");
    }
}
