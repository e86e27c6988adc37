//! The test harness itself: a proxy run in the test process leaves nothing
//! behind when dropped (a port still open, a thread still connected to a
//! Redis), so the tests that follow it in the same process meet no trace of it.

use std::net::TcpStream;

use crate::common::{eventually, InProcess, Proxy, RedisServer};

/// Clients connected to `redis` other than the one asking.
fn other_clients(redis: &RedisServer) -> usize {
    let list: String = redis.cmd(&["CLIENT", "LIST"]);
    list.lines().count() - 1
}

#[test]
fn a_dropped_in_process_proxy_closes_its_ports_and_its_redis_connections() {
    let redis = RedisServer::start();
    redis.set("k", "v");
    let proxy = InProcess::start(&redis, &[("RESP_PORT", "auto")]);
    assert_eq!(proxy.link_state(), "up");
    assert_eq!(proxy.get_key("k").body, b"v");
    let (http, resp) = (proxy.addr, proxy.resp_addr());
    assert!(
        other_clients(&redis) >= 2,
        "the link and a pooled connection"
    );
    drop(proxy);
    assert!(TcpStream::connect(http).is_err(), "HTTP still accepts");
    assert!(TcpStream::connect(resp).is_err(), "RESP still accepts");
    // The pool goes with the service; the link notices within a second.
    eventually("the proxy's Redis connections to close", || {
        (other_clients(&redis) == 0).then_some(())
    });
}

#[test]
fn the_binary_on_port_zero_reports_the_ports_it_bound() {
    let redis = RedisServer::start();
    let proxy = Proxy::start(&redis, &[("RESP_PORT", "auto")]);
    assert_ne!(proxy.addr.port(), 0);
    assert_ne!(proxy.resp_addr().port(), 0);
    let mut conn = redis::Client::open(proxy.resp_url())
        .and_then(|client| client.get_connection())
        .expect("connect to the RESP port the start-up line named");
    let pong: String = redis::cmd("PING").query(&mut conn).expect("PING");
    assert_eq!(pong, "PONG");
}

#[test]
fn a_redis_server_whose_port_was_taken_meanwhile_moves_to_another() {
    let first = RedisServer::start();
    first.set("whose", "first");
    // The port the second was given is taken by the time it binds it: it
    // must not take the first's answers for its own.
    let second = RedisServer::start_preferring(first.port(), &[]);
    assert_ne!(second.port(), first.port());
    second.set("whose", "second");
    let theirs: String = first.cmd(&["GET", "whose"]);
    assert_eq!(theirs, "first");
}
