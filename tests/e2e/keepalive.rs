//! Regression test for vendor/tiny_http patch 1: keep-alive connections that
//! arrive together each get a thread, so none waits for another to close.

use std::net::TcpStream;

use crate::common::{eventually, HttpConnection, Proxy, RedisServer, PATIENCE};

#[test]
fn fifty_keep_alive_connections_opened_at_once_are_all_answered() {
    let redis = RedisServer::start();
    redis.set("k", "v");
    let proxy = Proxy::start(&redis, &[]);
    // Open all fifty before any request, as a burst of browsers would.
    let mut conns: Vec<HttpConnection> = (0..50)
        .map(|_| {
            let stream = TcpStream::connect(proxy.addr).expect("connect");
            stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
            HttpConnection::new(stream)
        })
        .collect();
    for conn in &mut conns {
        conn.send("GET", "/proxy?key=k", &[]).expect("send");
    }
    // All fifty are answered while every connection stays open (keep-alive)
    // and unread: a connection with no thread would never be read.
    eventually("all fifty requests to be answered", || {
        (proxy.reads() >= 50.0).then_some(())
    });
    for (i, conn) in conns.iter_mut().enumerate() {
        let reply = conn
            .read_reply(false)
            .unwrap_or_else(|e| panic!("connection {i} got no answer: {e}"));
        assert_eq!(reply.body, b"v");
    }
    // And each can go on being used.
    for conn in &mut conns {
        assert_eq!(conn.get("/proxy?key=k").body, b"v");
    }
    // A burst of connections is ordinary load: nothing in it is an error.
    let log = proxy.log();
    assert!(
        !log.lines()
            .any(|l| l.contains(" ERROR ") || l.contains(" WARN ")),
        "{log}"
    );
}
