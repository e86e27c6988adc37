//! Every bad request and every backend failure gets the right status and a
//! JSON body naming the problem.

use crate::common::{eventually, request, InProcess, RedisServer};

#[test]
fn bad_key_parameters_are_400_json() {
    let redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[]);
    for path in [
        "/proxy",
        "/proxy?",
        "/proxy?key=",
        "/proxy?other=1",
        "/proxy?key=a&key=b",
    ] {
        let reply = proxy.get(path);
        assert_eq!(reply.status, 400, "{path}");
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert!(
            reply.json()["error"]
                .as_str()
                .is_some_and(|e| e.contains("key")),
            "{path}"
        );
    }
}

#[test]
fn overlong_key_is_414() {
    let redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[]);
    let reply = proxy.get(&format!("/proxy?key={}", "k".repeat(8 * 1024 + 1)));
    assert_eq!(reply.status, 414);
    assert!(reply.json()["error"].is_string());
}

#[test]
fn other_methods_are_405_with_allow() {
    let redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[]);
    for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        let reply = request(
            proxy.addr,
            method,
            "/proxy?key=k",
            &[("Content-Length", "0")],
        );
        assert_eq!(reply.status, 405, "{method}");
        assert_eq!(reply.header("allow"), Some("GET, HEAD"));
        assert!(reply.json()["error"].is_string());
    }
}

#[test]
fn unknown_path_is_404_json() {
    let redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[]);
    for path in ["/nope", "/proxy/extra?key=k", "/PROXY?key=k", "/stats/x"] {
        let reply = proxy.get(path);
        assert_eq!(reply.status, 404, "{path}");
        assert!(reply.json()["error"].is_string());
    }
}

#[test]
fn an_error_reply_is_502_with_redis_message() {
    // A key this user may not read: Redis's NOPERM. (A key of another type
    // than string is no error: its JSON, tests/e2e/http_types.rs.)
    let redis = RedisServer::start();
    redis.set("secret", "x");
    let address = redis.acl_user("keys", "pw", RedisServer::PROXY_ACL);
    let _: () = redis.cmd(&["ACL", "SETUSER", "keys", "resetkeys", "~fine"]);
    let proxy = InProcess::start_at(&address, &[]);
    let reply = proxy.get_key("secret");
    assert_eq!(reply.status, 502);
    let body = reply.json();
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("NOPERM")),
        "{body}"
    );
    assert_eq!(body["key"], "secret");
    // The error is not cached and the connection stays usable.
    redis.set("fine", "yes");
    assert_eq!(proxy.get_key("fine").body, b"yes");
}

#[test]
fn without_invalidation_redis_down_is_503_then_recovers_and_hits_keep_being_served() {
    let mut redis = RedisServer::start();
    redis.set("cached", "kept");
    let proxy = InProcess::start(
        &redis,
        &[("REDIS_TIMEOUT_MS", "300"), ("INVALIDATION", "off")],
    );
    assert_eq!(proxy.get_key("cached").status, 200);

    redis.stop();
    let reply = proxy.get_key("uncached");
    assert_eq!(reply.status, 503);
    assert!(reply.json()["error"].is_string());
    let hit = proxy.get_key("cached");
    assert_eq!((hit.status, hit.is_hit()), (200, true));

    redis.restart();
    redis.set("uncached", "back");
    let reply = eventually("the proxy to reconnect", || {
        let reply = proxy.get_key("uncached");
        (reply.status == 200).then_some(reply)
    });
    assert_eq!(reply.body, b"back");
}

#[test]
fn proxy_starts_while_redis_is_down() {
    let mut redis = RedisServer::start();
    redis.stop();
    let proxy = InProcess::start_at(&redis.url(), &[("REDIS_TIMEOUT_MS", "200")]);
    assert_eq!(proxy.get_key("k").status, 503);
    redis.restart();
    redis.set("k", "v");
    eventually("the first connection to Redis", || {
        (proxy.get_key("k").status == 200).then_some(())
    });
}

#[test]
fn restarted_redis_costs_no_failed_request() {
    let mut redis = RedisServer::start();
    for i in 0..8 {
        redis.set(format!("k{i}"), "v");
    }
    let proxy = InProcess::start(&redis, &[("CACHE_CAPACITY", "1")]);
    // Open several pooled connections, then restart Redis under them.
    for i in 0..8 {
        assert_eq!(proxy.get_key(format!("k{i}")).status, 200);
    }
    redis.restart();
    redis.set("after", "restart");
    // Stale pooled connections are retired and retried, not reported.
    assert_eq!(proxy.get_key("after").status, 200);
}

#[test]
fn paused_redis_is_504_within_the_timeout() {
    let redis = RedisServer::start();
    redis.set("k", "v");
    let proxy = InProcess::start(&redis, &[("REDIS_TIMEOUT_MS", "200")]);
    let _: () = redis.cmd(&["CLIENT", "PAUSE", "1500", "ALL"]);
    let reply = proxy.get_key("k");
    assert_eq!(reply.status, 504);
    assert!(reply.json()["error"].is_string());
    // Once Redis answers again, so does the proxy, with the right value.
    let reply = eventually("Redis to resume", || {
        let reply = proxy.get_key("k");
        (reply.status == 200).then_some(reply)
    });
    assert_eq!(reply.body, b"v");
}
