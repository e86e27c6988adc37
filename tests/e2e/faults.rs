//! A flaky backing Redis: killed under load, restarted, paused; passwords
//! and a read-only ACL user. Never a wrong value, never a hang.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::thread;

use crate::common::{eventually, try_request, InProcess, Proxy, RedisServer};

fn value_of(key: &str) -> String {
    format!("value-of-{key}")
}

fn seed(redis: &RedisServer, keys: usize) {
    let mut conn = redis.conn();
    let mut pipe = redis::pipe();
    for i in 0..keys {
        let key = format!("key{i}");
        pipe.cmd("SET").arg(&key).arg(value_of(&key)).ignore();
    }
    let _: () = pipe.query(&mut conn).expect("seed");
}

#[test]
fn redis_killed_and_restarted_under_load_never_yields_a_wrong_value() {
    let mut redis = RedisServer::start();
    seed(&redis, 200);
    let proxy = InProcess::start(
        &redis,
        &[
            ("CACHE_CAPACITY", "50"),
            ("REDIS_TIMEOUT_MS", "300"),
            ("WORKERS", "8"),
        ],
    );
    let addr = proxy.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, errors) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let clients: Vec<_> = (0..8)
        .map(|t| {
            let (stop, ok, errors) = (stop.clone(), ok.clone(), errors.clone());
            thread::spawn(move || {
                let mut n = t;
                while !stop.load(SeqCst) {
                    let key = format!("key{}", n % 200);
                    n += 7;
                    // Every request is answered: a hang fails this read.
                    let reply = try_request(addr, "GET", &format!("/proxy?key={key}"), &[])
                        .expect("an answer, never a hang");
                    match reply.status {
                        200 => {
                            assert_eq!(reply.text(), value_of(&key), "wrong value for {key}");
                            ok.fetch_add(1, SeqCst);
                        }
                        // Keys are re-seeded after each restart; until then
                        // they may be absent.
                        404 | 503 | 504 => {
                            assert!(reply.json()["error"].is_string());
                            errors.fetch_add(1, SeqCst);
                        }
                        other => panic!("unexpected status {other}: {}", reply.text()),
                    }
                }
            })
        })
        .collect();
    for _ in 0..2 {
        let before = ok.load(SeqCst);
        eventually("reads to succeed", || {
            (ok.load(SeqCst) > before + 200).then_some(())
        });
        redis.stop();
        let failed = errors.load(SeqCst);
        eventually("reads to fail while Redis is down", || {
            (errors.load(SeqCst) > failed + 20).then_some(())
        });
        redis.restart();
        seed(&redis, 200);
    }
    let before = ok.load(SeqCst);
    eventually("service to come back", || {
        (ok.load(SeqCst) > before + 200).then_some(())
    });
    stop.store(true, SeqCst);
    for client in clients {
        client
            .join()
            .expect("no client saw a wrong value or a hang");
    }
}

#[test]
fn cached_keys_are_served_while_redis_is_paused() {
    let redis = RedisServer::start();
    seed(&redis, 10);
    let proxy = InProcess::start(&redis, &[("REDIS_TIMEOUT_MS", "200")]);
    assert_eq!(proxy.get_key("key1").status, 200);
    let _: () = redis.cmd(&["CLIENT", "PAUSE", "2000", "ALL"]);
    let hit = proxy.get_key("key1");
    assert_eq!((hit.status, hit.is_hit()), (200, true));
    let miss = proxy.get_key("key2");
    assert!(miss.status == 503 || miss.status == 504, "{}", miss.status);
    let reply = eventually("Redis to resume", || {
        let reply = proxy.get_key("key2");
        (reply.status == 200).then_some(reply)
    });
    assert_eq!(reply.text(), value_of("key2"));
}

#[test]
fn a_password_in_redis_address_works_and_is_never_logged() {
    let redis = RedisServer::start_with(&["--requirepass", "pa55-w0rd"]);
    let mut conn = redis::Client::open(format!("redis://:pa55-w0rd@127.0.0.1:{}", redis.port()))
        .and_then(|c| c.get_connection())
        .expect("connect with password");
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut conn)
        .expect("set");
    let address = format!("redis://:pa55-w0rd@127.0.0.1:{}", redis.port());
    let proxy = Proxy::start_at(&address, &[("RUST_LOG", "debug")]);
    assert_eq!(proxy.get_key("k").body, b"v");
    assert!(!proxy.log().contains("pa55-w0rd"));
    // A wrong password is a clear 503, not a hang.
    let wrong = format!("redis://:nope@127.0.0.1:{}", redis.port());
    let proxy = Proxy::start_at(&wrong, &[("REDIS_TIMEOUT_MS", "300")]);
    let reply = proxy.get_key("k");
    assert_eq!(reply.status, 503, "{}", reply.text());
}

#[test]
fn a_read_only_acl_user_is_enough() {
    // The README's ACL example: GET, PTTL and PING only, on every key.
    let redis = RedisServer::start();
    redis.set("k", "v");
    let address = redis.acl_user(
        "proxy",
        "proxy-pw",
        // Reads, and what the invalidation link needs (the README's ACL line).
        RedisServer::PROXY_ACL,
    );
    // RESP_FORWARD=off, the setting that user is documented for: with
    // forwarding on, the proxy also reads Redis's settings (`CONFIG GET`,
    // for SELECT and INFO), which that user is refused.
    let proxy = InProcess::start_at(&address, &[("RESP_PORT", "auto"), ("RESP_FORWARD", "off")]);
    proxy.wait_for_link("up");
    assert_eq!(proxy.get_key("k").body, b"v");
    assert_eq!(proxy.get("/readyz").status, 200);
    let mut conn = redis::Client::open(proxy.resp_url())
        .and_then(|c| c.get_connection())
        .expect("RESP");
    let values: Vec<Option<String>> = redis::cmd("MGET")
        .arg("k")
        .arg("x")
        .query(&mut conn)
        .expect("MGET");
    assert_eq!(values, vec![Some("v".to_owned()), None]);
    // Redis saw nothing but reads from the proxy's user.
    let log: Vec<redis::Value> = redis.cmd(&["ACL", "LOG"]);
    assert!(
        log.is_empty(),
        "the proxy's user was refused something: {log:?}"
    );
}
