//! Values larger than a read's arguments through the RESP port (issue
//! #21): a write carrying a value of several MiB reaches Redis and reads
//! back byte for byte, as at Redis (whose own limit is 512 MB), up to
//! RESP_MAX_REQUEST_BYTES; past that setting, the client's request is
//! refused as soon as its declared length says so.

use crate::common::resp_wire::{show, Wire};
use crate::common::{resp_command, InProcess, RedisServer};

/// A value of `len` bytes, not all alike.
fn value(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// A bulk string reply of `bytes`.
fn bulk(bytes: &[u8]) -> Vec<u8> {
    let mut reply = format!("${}\r\n", bytes.len()).into_bytes();
    reply.extend_from_slice(bytes);
    reply.extend_from_slice(b"\r\n");
    reply
}

#[test]
fn a_five_mib_value_is_written_and_read_back_whole() {
    let redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[("RESP_PORT", "auto")]);
    proxy.wait_for_link("up");
    let mut wire = Wire::connect(proxy.resp_addr());
    let big = value(5 * 1024 * 1024);
    wire.send(&resp_command(&[b"SET", b"big", &big]));
    assert_eq!(wire.reply(), b"+OK\r\n");
    proxy.wait_for_invalidations(1.0);
    // Read back through the proxy: fetched, then from the cache.
    for _ in 0..2 {
        wire.send(&resp_command(&[b"GET", b"big"]));
        assert!(
            wire.reply() == bulk(&big),
            "GET big answered the value whole"
        );
    }
    assert_eq!(redis.calls("get"), 1, "the second read was a hit");
    let at_redis: Vec<u8> = redis.cmd(&["GET", "big"]);
    assert!(at_redis == big, "Redis holds what was sent");
    wire.send(&resp_command(&[b"APPEND", b"big", b"!"]));
    assert_eq!(wire.reply(), format!(":{}\r\n", big.len() + 1).into_bytes());
}

#[test]
fn past_resp_max_request_bytes_a_request_is_refused_at_once_and_below_it_passes() {
    let redis = RedisServer::start();
    let limit = 2 * 1024 * 1024;
    let proxy = InProcess::start(
        &redis,
        &[
            ("RESP_PORT", "auto"),
            ("RESP_MAX_REQUEST_BYTES", &limit.to_string()),
        ],
    );
    let mut wire = Wire::connect(proxy.resp_addr());
    let fits = value(limit - 1024);
    wire.send(&resp_command(&[b"SET", b"fits", &fits]));
    assert_eq!(wire.reply(), b"+OK\r\n");
    // Declared past the limit: refused before any of the value is sent.
    wire.send(format!("*3\r\n$3\r\nSET\r\n$4\r\nlate\r\n${}\r\n", limit + 1).as_bytes());
    let refused = wire.reply();
    assert!(
        refused.starts_with(b"-ERR Protocol error"),
        "{}",
        show(&refused)
    );
    let exists: i64 = redis.cmd(&["EXISTS", "late"]);
    assert_eq!(exists, 0);
}
