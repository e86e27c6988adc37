//! Concurrency, observed rather than timed: requests in flight counted at a
//! relay in front of Redis, and Redis's own counters.

use std::io::Write;
use std::net::SocketAddr;
use std::thread;
use std::time::Duration;

use crate::common::relay::Relay;
use crate::common::{eventually, InProcess, RedisServer};

/// Reads each key in `keys` from its own thread; returns the bodies.
fn read_all(addr: SocketAddr, keys: Vec<String>) -> Vec<thread::JoinHandle<(u16, Vec<u8>)>> {
    keys.into_iter()
        .map(|key| {
            thread::spawn(move || {
                let reply = crate::common::request(addr, "GET", &format!("/proxy?key={key}"), &[]);
                (reply.status, reply.body)
            })
        })
        .collect()
}

#[test]
fn misses_on_different_keys_go_to_redis_in_parallel() {
    let redis = RedisServer::start();
    for i in 0..8 {
        redis.set(format!("p{i}"), format!("v{i}"));
    }
    let relay = Relay::start(redis.addr(), Duration::ZERO);
    let proxy = InProcess::start_at(
        &relay.url(),
        &[
            // The relay counts every request: no invalidation link's PINGs.
            ("INVALIDATION", "off"),
            ("WORKERS", "8"),
            ("REDIS_TIMEOUT_MS", "10000"),
        ],
    );
    relay.hold();
    let readers = read_all(proxy.addr, (0..8).map(|i| format!("p{i}")).collect());
    // All eight are at Redis at once: served in one round trip, not eight.
    eventually("8 backing requests in flight at once", || {
        (relay.in_flight() == 8).then_some(())
    });
    relay.release();
    for (i, reader) in readers.into_iter().enumerate() {
        let (status, body) = reader.join().expect("reader");
        assert_eq!(status, 200);
        assert_eq!(body, format!("v{}", i).as_bytes());
    }
}

#[test]
fn requests_beyond_the_workers_wait_their_turn_and_are_all_served() {
    let redis = RedisServer::start();
    for i in 0..6 {
        redis.set(format!("q{i}"), format!("v{i}"));
    }
    let relay = Relay::start(redis.addr(), Duration::ZERO);
    let proxy = InProcess::start_at(
        &relay.url(),
        &[
            // The relay counts every request: no invalidation link's PINGs.
            ("INVALIDATION", "off"),
            ("WORKERS", "2"),
            ("REDIS_TIMEOUT_MS", "10000"),
        ],
    );
    // Six reads while Redis holds every request: two reach it, the other
    // four wait their turn.
    relay.hold();
    let readers = read_all(proxy.addr, (0..6).map(|i| format!("q{i}")).collect());
    eventually("the two places to be in use", || {
        (relay.in_flight() == 2).then_some(())
    });
    relay.release();
    for (i, reader) in readers.into_iter().enumerate() {
        let (status, body) = reader.join().expect("reader");
        assert_eq!(status, 200, "none is refused");
        assert_eq!(body, format!("v{}", i).as_bytes());
    }
    // Two at a time reached Redis: the limit held and was used in full.
    assert_eq!(relay.max_in_flight(), 2);
}

#[test]
fn concurrent_misses_on_one_key_make_one_backing_get() {
    let redis = RedisServer::start();
    redis.set("hot", "shared value");
    let relay = Relay::start(redis.addr(), Duration::ZERO);
    let proxy = InProcess::start_at(
        &relay.url(),
        &[
            // The relay counts every request: no invalidation link's PINGs.
            ("INVALIDATION", "off"),
            ("WORKERS", "20"),
            ("REDIS_TIMEOUT_MS", "10000"),
        ],
    );
    relay.hold();
    let readers = read_all(proxy.addr, vec!["hot".to_owned(); 16]);
    // Fifteen requests are waiting on the first one's fetch.
    eventually("15 coalesced waiters", || {
        (proxy.metric("redis_proxy_coalesced_total") == 15.0).then_some(())
    });
    relay.release();
    for reader in readers {
        let (status, body) = reader.join().expect("reader");
        assert_eq!((status, body.as_slice()), (200, &b"shared value"[..]));
    }
    assert_eq!(redis.calls("get"), 1);
}

#[test]
fn coalesced_waiters_share_an_error_and_it_is_not_cached() {
    // An error reply: NOPERM for a key this user may not read (a list is
    // no error any more: its JSON, tests/e2e/http_types.rs).
    let redis = RedisServer::start();
    redis.set("denied", "x");
    redis.acl_user("keys", "pw", RedisServer::PROXY_ACL);
    let _: () = redis.cmd(&["ACL", "SETUSER", "keys", "resetkeys", "~other"]);
    let relay = Relay::start(redis.addr(), Duration::ZERO);
    let proxy = InProcess::start_at(
        &relay.url().replace("redis://", "redis://keys:pw@"),
        &[
            // The relay counts every request: no invalidation link's PINGs.
            ("INVALIDATION", "off"),
            ("WORKERS", "8"),
            ("REDIS_TIMEOUT_MS", "10000"),
        ],
    );
    relay.hold();
    let readers = read_all(proxy.addr, vec!["denied".to_owned(); 4]);
    eventually("3 coalesced waiters", || {
        (proxy.metric("redis_proxy_coalesced_total") == 3.0).then_some(())
    });
    relay.release();
    for reader in readers {
        assert_eq!(reader.join().expect("reader").0, 502);
    }
    assert_eq!(redis.command_stat("get", "rejected_calls"), 1);
    assert_eq!(proxy.get_key("denied").status, 502);
    assert_eq!(
        redis.command_stat("get", "rejected_calls"),
        2,
        "errors are not cached"
    );
}

#[test]
fn a_stuck_fetch_never_hangs_its_waiters() {
    let redis = RedisServer::start();
    redis.set("slow", "v");
    let relay = Relay::start(redis.addr(), Duration::ZERO);
    let proxy = InProcess::start_at(
        &relay.url(),
        &[
            // The relay counts every request: no invalidation link's PINGs.
            ("INVALIDATION", "off"),
            ("WORKERS", "4"),
            ("REDIS_TIMEOUT_MS", "300"),
        ],
    );
    relay.hold();
    let readers = read_all(proxy.addr, vec!["slow".to_owned(); 3]);
    let statuses: Vec<u16> = readers
        .into_iter()
        .map(|r| r.join().expect("reader").0)
        .collect();
    relay.release();
    // The leader's checkout or read times out (503 or 504) and its waiters
    // share that answer or stop waiting at the same bound (504).
    assert!(
        statuses.iter().all(|s| *s == 503 || *s == 504),
        "{statuses:?}"
    );
    let reply = eventually("the relay to pass requests again", || {
        let reply = proxy.get_key("slow");
        (reply.status == 200).then_some(reply)
    });
    assert_eq!(reply.body, b"v");
}

#[test]
fn backing_connections_never_exceed_the_pool_size() {
    let redis = RedisServer::start();
    for i in 0..50 {
        redis.set(format!("b{i}"), "v");
    }
    let relay = Relay::start(redis.addr(), Duration::ZERO);
    let proxy = InProcess::start_at(
        &relay.url(),
        &[
            // The relay counts every request: no invalidation link's PINGs.
            ("INVALIDATION", "off"),
            ("WORKERS", "4"),
            ("CACHE_CAPACITY", "5"),
        ],
    );
    let addr = proxy.addr;
    let clients: Vec<_> = (0..32)
        .map(|t| {
            thread::spawn(move || {
                for n in 0..7 {
                    if t * 7 + n >= 200 {
                        break;
                    }
                    let key = format!("b{}", (t * 7 + n) % 50);
                    let reply =
                        crate::common::request(addr, "GET", &format!("/proxy?key={key}"), &[]);
                    assert_eq!(reply.status, 200);
                }
            })
        })
        .collect();
    let mut most = 0;
    while clients.iter().any(|c| !c.is_finished()) {
        let list: String = redis.cmd(&["CLIENT", "LIST"]);
        // The proxy's connections: the ones whose last command was a GET
        // (the test's own SETs and this CLIENT LIST are not, and a closed
        // one may linger in the list for a moment).
        most = most.max(list.lines().filter(|l| l.contains(" cmd=get ")).count());
    }
    for client in clients {
        client.join().expect("client");
    }
    assert!(most <= 4, "{most} backing connections at once");
    assert!(relay.connections() <= 4, "{} opened", relay.connections());
    assert!(relay.connections() >= 1);
}

#[test]
fn an_http_hit_is_served_while_misses_hold_every_place() {
    let redis = RedisServer::start();
    redis.set("hot", "cached");
    for i in 0..3 {
        redis.set(format!("cold{i}"), "v");
    }
    let relay = Relay::start(redis.addr(), Duration::ZERO);
    let proxy = InProcess::start_at(
        &relay.url(),
        &[
            ("INVALIDATION", "off"),
            ("WORKERS", "3"),
            ("RESP_PORT", "auto"),
            // Longer than the wait below: the misses keep their places.
            ("REDIS_TIMEOUT_MS", "60000"),
        ],
    );
    let addr = proxy.addr;
    let reply = crate::common::request(addr, "GET", "/proxy?key=hot", &[]);
    assert_eq!(reply.header("X-Cache"), Some("MISS"));
    // Three RESP misses, held at Redis, take the three WORKERS places.
    relay.hold();
    let resp = proxy.resp_url();
    let misses: Vec<_> = (0..3)
        .map(|i| {
            let resp = resp.clone();
            thread::spawn(move || {
                let mut conn = redis::Client::open(resp)
                    .and_then(|c| c.get_connection())
                    .expect("connect to the RESP port");
                let value: Option<String> = redis::cmd("GET")
                    .arg(format!("cold{i}"))
                    .query(&mut conn)
                    .expect("GET");
                value
            })
        })
        .collect();
    eventually("the three misses to hold every place", || {
        (relay.in_flight() == 3).then_some(())
    });
    // A hit never touches Redis, and HTTP has workers free: it is answered
    // now, not once a place comes back.
    let hit = thread::spawn(move || crate::common::request(addr, "GET", "/proxy?key=hot", &[]));
    eventually(
        "the hit to be answered while Redis holds the misses",
        || hit.is_finished().then_some(()),
    );
    assert_eq!(relay.in_flight(), 3, "the misses still hold their places");
    let reply = hit.join().expect("hit");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("X-Cache"), Some("HIT"));
    assert_eq!(reply.body, b"cached");
    relay.release();
    for miss in misses {
        assert_eq!(miss.join().expect("miss").as_deref(), Some("v"));
    }
}

/// A RESP `GET` that misses while every RESP worker is busy must not lead
/// its key's fetch from the event loop: queued behind those workers, that
/// fetch would start late, and every other reader of the key (HTTP here)
/// would wait on it, up to a 504, though Redis could answer at once. Found
/// by a review: a place was free, no worker was.
#[test]
fn a_resp_miss_queued_behind_busy_workers_holds_no_other_reader_of_its_key() {
    let redis = RedisServer::start();
    redis.set("a", "va");
    redis.set("y", "vy");
    let relay = Relay::start(redis.addr(), Duration::ZERO);
    let proxy = InProcess::start_at(
        &relay.url(),
        &[
            ("INVALIDATION", "off"),
            ("WORKERS", "2"),
            ("RESP_PORT", "auto"),
            ("REDIS_TIMEOUT_MS", "60000"),
        ],
    );
    let (addr, resp) = (proxy.addr, proxy.resp_url());
    let resp_get = move |key: &'static str| {
        let resp = resp.clone();
        thread::spawn(move || {
            let mut conn = redis::Client::open(resp)
                .and_then(|c| c.get_connection())
                .expect("connect to the RESP port");
            let value: Option<String> = redis::cmd("GET").arg(key).query(&mut conn).expect("GET");
            value
        })
    };
    let http_get = move |key: &'static str| {
        thread::spawn(move || {
            crate::common::request(addr, "GET", &format!("/proxy?key={key}"), &[])
        })
    };
    relay.hold();
    // HTTP leads `a` (one place of two), held at Redis; two RESP reads of
    // `a` follow it, so both RESP workers are busy waiting, and one place
    // is still free.
    let http_a = http_get("a");
    eventually("HTTP's fetch of a to reach the relay", || {
        (relay.in_flight() == 1).then_some(())
    });
    let followers: Vec<_> = (0..2).map(|_| resp_get("a")).collect();
    eventually("both RESP workers to wait on a", || {
        (proxy.metric("redis_proxy_coalesced_total") == 2.0).then_some(())
    });
    // A RESP miss on `y` now, then an HTTP read of `y`: HTTP must be free to
    // fetch `y` itself (the relay sees a second fetch), not wait on a RESP
    // fetch no worker has started (nor for a place that fetch would hold).
    let mut resp_y = crate::common::connect(proxy.resp_addr());
    resp_y
        .write_all(&crate::common::resp_command(&[b"GET", b"y"]))
        .expect("send GET y");
    // Two PINGs answered on another connection, one after the other: the
    // loop has since finished the turn that took `GET y` (its bytes came
    // first), since the second PING is read in a later turn than the first.
    let mut other = crate::common::connect(proxy.resp_addr());
    for _ in 0..2 {
        let pong = crate::common::roundtrip_line(&mut other, b"PING\r\n");
        assert_eq!(pong, "+PONG\r\n");
    }
    let http_y = http_get("y");
    eventually("HTTP's fetch of y to reach Redis while a is held", || {
        (relay.in_flight() == 2).then_some(())
    });
    relay.release();
    assert_eq!(http_y.join().expect("http y").body, b"vy");
    assert_eq!(http_a.join().expect("http a").body, b"va");
    let reply = crate::common::roundtrip_line(&mut resp_y, b"");
    assert_eq!(reply, "$2\r\n");
    for follower in followers {
        assert_eq!(follower.join().expect("follower").as_deref(), Some("va"));
    }
}
