//! RFC 9112 section 3.2: an HTTP/1.1 request without a `Host` header, and
//! any request with more than one, is answered 400 with a JSON body naming
//! the problem, before routing (no key is read). HTTP/1.0 needs none.

use crate::common::{HttpConnection, InProcess, RedisServer};

#[test]
fn a_missing_or_repeated_host_is_400_and_reads_no_key() {
    let redis = RedisServer::start();
    redis.set("k", "v");
    let proxy = InProcess::start(&redis, &[]);
    let reads = proxy.reads();
    let refused: [(&[u8], &str); 4] = [
        (b"GET /proxy?key=k HTTP/1.1\r\n\r\n", "needs a Host header"),
        (
            b"GET /proxy?key=k HTTP/1.1\r\nHost: x\r\nhost: y\r\n\r\n",
            "more than one Host header",
        ),
        (
            b"GET /proxy?key=k HTTP/1.1\r\nHost: x\r\nHost: x\r\n\r\n",
            "more than one Host header",
        ),
        (
            b"GET /proxy?key=k HTTP/1.0\r\nHost: x\r\nHost: y\r\n\r\n",
            "more than one Host header",
        ),
    ];
    for (raw, problem) in refused {
        let mut conn = HttpConnection::connect(proxy.addr);
        conn.reader_send_raw(raw);
        let reply = conn.read_reply(false).expect("a reply");
        let json = reply.json();
        let error = json["error"].as_str().unwrap_or_default();
        let sent = String::from_utf8_lossy(raw);
        assert_eq!(reply.status, 400, "{sent:?}: {json}");
        assert!(error.contains(problem), "{sent:?}: {error}");
    }
    assert_eq!(proxy.reads(), reads, "a refused request read a key");
    // One Host (any case), or HTTP/1.0 without one: served.
    let served: [&[u8]; 3] = [
        b"GET /proxy?key=k HTTP/1.1\r\nhost: x\r\n\r\n",
        b"GET /proxy?key=k HTTP/1.0\r\n\r\n",
        b"GET /proxy?key=k HTTP/1.2\r\nHOST: x\r\n\r\n",
    ];
    for raw in served {
        let mut conn = HttpConnection::connect(proxy.addr);
        conn.reader_send_raw(raw);
        let reply = conn.read_reply(false).expect("a reply");
        let sent = String::from_utf8_lossy(raw);
        assert_eq!((reply.status, reply.text()), (200, "v".into()), "{sent:?}");
    }
}

/// One request with `Host: {value}` on a fresh connection: its answer.
fn with_host(proxy: &InProcess, value: &[u8]) -> crate::common::http::Reply {
    let mut raw = b"GET /proxy?key=k HTTP/1.1\r\nHost: ".to_vec();
    raw.extend_from_slice(value);
    raw.extend_from_slice(b"\r\n\r\n");
    let mut conn = HttpConnection::connect(proxy.addr);
    conn.reader_send_raw(&raw);
    conn.read_reply(false).expect("a reply")
}

#[test]
fn a_host_that_is_not_a_host_and_port_is_400_and_reads_no_key() {
    let redis = RedisServer::start();
    redis.set("k", "v");
    let proxy = InProcess::start(&redis, &[]);
    let reads = proxy.reads();
    // RFC 9112 section 3.2: Host = uri-host [ ":" port ] (RFC 3986).
    let invalid: [&[u8]; 16] = [
        b"a b",
        b"exa mple.com",
        b"a\tb",
        b"x:port",
        b"x:80:80",
        b"x:-1",
        b"@evil",
        b"user@host",
        b"a/b",
        b"a?b",
        b"a#b",
        b"a\\b",
        b"%zz",
        b"[::1",
        b"[::1]x",
        b"[nothing:an:ip]",
    ];
    for value in invalid {
        let reply = with_host(&proxy, value);
        let json = reply.json();
        let error = json["error"].as_str().unwrap_or_default();
        let sent = String::from_utf8_lossy(value);
        assert_eq!(reply.status, 400, "{sent:?}: {json}");
        assert!(
            error.contains("Host header") && error.contains("3.2"),
            "{sent:?}: {error}"
        );
    }
    assert_eq!(proxy.reads(), reads, "a refused request read a key");
    // A reg-name (any of its characters), an IPv4 or IPv6 literal, a port,
    // and an empty value (RFC 9112 section 3.2: a target without an
    // authority is sent with an empty Host): served.
    let valid: [&[u8]; 12] = [
        b"",
        b"example.com",
        b"example.com:8080",
        b"127.0.0.1:6380",
        b"[::1]:8080",
        b"[::1]",
        b"[2001:db8::7]",
        b"[::ffff:192.0.2.1]:80",
        b"[v1.fe:x]",
        b"a-b_c~d!$&'()*+,;=%20.example",
        b"localhost:",
        b"EXAMPLE.COM",
    ];
    for value in valid {
        let reply = with_host(&proxy, value);
        let sent = String::from_utf8_lossy(value);
        assert_eq!((reply.status, reply.text()), (200, "v".into()), "{sent:?}");
    }
}
