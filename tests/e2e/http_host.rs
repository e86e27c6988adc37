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
