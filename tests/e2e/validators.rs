//! HTTP caching semantics (RFC 9110, 9111): strong ETags made once from the
//! value's bytes, `If-None-Match` answered with 304, `Cache-Control: max-age`
//! the entry's lifetime and `Age` its time since the fill, `Vary: Accept`.

use std::process::Command;

use crate::common::{request, Endpoints, InProcess, Proxy, RedisServer, TempDir};

fn get_with(proxy: &Endpoints, key: &str, headers: &[(&str, &str)]) -> crate::common::http::Reply {
    request(proxy.addr, "GET", &format!("/proxy?key={key}"), headers)
}

fn start() -> (RedisServer, InProcess) {
    let redis = RedisServer::start();
    redis.set("k", "value one");
    let proxy = InProcess::start(&redis, &[("GLOBAL_CACHE_EXPIRY", "60")]);
    (redis, proxy)
}

#[test]
fn curl_revalidates_with_the_etag_it_saved_and_gets_304() {
    let (_redis, proxy) = start();
    let dir = TempDir::new("etag");
    let saved = dir.path().join("etag.txt");
    let saved = saved.to_str().expect("utf-8 path");
    let url = format!("http://{}/proxy?key=k", proxy.addr);
    let curl = |args: &[&str]| {
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
            .args(args)
            .arg(&url)
            .output()
            .expect("curl is installed");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(curl(&["--etag-save", saved]), "200");
    assert!(std::fs::read_to_string(saved)
        .expect("saved etag")
        .starts_with('"'));
    assert_eq!(curl(&["--etag-compare", saved]), "304");
}

#[test]
fn the_etag_is_the_same_on_every_proxy_and_differs_by_representation() {
    let (redis, proxy) = start();
    let raw = get_with(&proxy, "k", &[]);
    let json = get_with(&proxy, "k", &[("Accept", "application/json")]);
    let tag = raw.header("etag").expect("an ETag").to_owned();
    assert!(
        tag.starts_with('"') && tag.ends_with('"') && !tag.starts_with("W/"),
        "{tag}"
    );
    assert_ne!(json.header("etag"), Some(tag.as_str()));
    for reply in [&raw, &json] {
        assert_eq!(reply.header("vary"), Some("Accept"));
    }
    // Another proxy (the binary: another process, another hash seed for its
    // table) gives the same value the same tag.
    let other = Proxy::start(&redis, &[]);
    assert_eq!(
        get_with(&other, "k", &[]).header("etag"),
        Some(tag.as_str())
    );
}

#[test]
fn if_none_match_is_compared_as_rfc_9110_says() {
    let (_redis, proxy) = start();
    let tag = get_with(&proxy, "k", &[])
        .header("etag")
        .expect("ETag")
        .to_owned();
    let weak = format!("W/{tag}");
    let listed = format!("\"nope\", {tag}");
    for matching in [tag.as_str(), weak.as_str(), listed.as_str(), "*"] {
        let reply = get_with(&proxy, "k", &[("If-None-Match", matching)]);
        assert_eq!(reply.status, 304, "If-None-Match: {matching}");
        assert!(reply.body.is_empty());
        assert_eq!(reply.header("etag"), Some(tag.as_str()));
        assert!(reply.header("cache-control").is_some());
        assert_eq!(reply.header("vary"), Some("Accept"));
    }
    let reply = get_with(&proxy, "k", &[("If-None-Match", "\"other\"")]);
    assert_eq!(
        (reply.status, reply.body.as_slice()),
        (200, &b"value one"[..])
    );
    // HEAD revalidates too.
    let head = request(
        proxy.addr,
        "HEAD",
        "/proxy?key=k",
        &[("If-None-Match", tag.as_str())],
    );
    assert_eq!(head.status, 304);
    // No representation, nothing to match: a missing key stays a 404.
    let absent = get_with(&proxy, "absent", &[("If-None-Match", "*")]);
    assert_eq!(absent.status, 404);
}

#[test]
fn a_write_changes_the_tag_so_revalidation_gets_the_new_value() {
    let (redis, proxy) = start();
    let old = get_with(&proxy, "k", &[])
        .header("etag")
        .expect("ETag")
        .to_owned();
    let before = proxy.metric("redis_proxy_invalidations_total");
    redis.set("k", "value two");
    crate::common::eventually("the write's invalidation", || {
        (proxy.metric("redis_proxy_invalidations_total") > before).then_some(())
    });
    let reply = get_with(&proxy, "k", &[("If-None-Match", old.as_str())]);
    assert_eq!(
        (reply.status, reply.body.as_slice()),
        (200, &b"value two"[..])
    );
    assert_ne!(reply.header("etag"), Some(old.as_str()));
}

#[test]
fn max_age_is_the_lifetime_and_hits_say_their_age() {
    let (_redis, proxy) = start();
    let miss = get_with(&proxy, "k", &[]);
    assert_eq!(miss.header("x-cache"), Some("MISS"));
    assert_eq!(miss.header("cache-control"), Some("max-age=60"));
    assert_eq!(miss.header("age"), None);
    let hit = crate::common::eventually("a hit", || {
        let reply = get_with(&proxy, "k", &[]);
        reply.is_hit().then_some(reply)
    });
    let number = |name: &str| -> u64 {
        hit.header(name)
            .and_then(|v| v.trim_start_matches("max-age=").parse().ok())
            .unwrap_or_else(|| panic!("{name}: {:?}", hit.headers))
    };
    let (max_age, age) = (number("cache-control"), number("age"));
    // A downstream cache keeps it max-age - Age more (RFC 9111): max-age is
    // the whole lifetime, Age the time since the fill, rounded up.
    assert_eq!(max_age, 60, "age {age}");
    assert!((1..60).contains(&age), "{age}");
}
