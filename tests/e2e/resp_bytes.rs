//! The Redis protocol front end byte by byte, over raw sockets: HELLO's
//! protocol switch, a pipeline in one write, a command a byte at a time, protocol errors
//! (which close only their own connection), and a read in flight at
//! SIGTERM. Real clients are `resp.rs`'s.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::common::{eventually, resp_command, InProcess, Proxy, RedisServer};

const RESP: (&str, &str) = ("RESP_PORT", "auto");

/// A raw connection that reads replies byte for byte.
struct Raw(TcpStream);

impl Raw {
    fn connect(addr: SocketAddr) -> Raw {
        Raw(crate::common::connect(addr))
    }

    fn send(&mut self, bytes: &[u8]) {
        self.0.write_all(bytes).expect("write");
    }

    /// Reads until `expected` bytes have arrived (or the peer closes).
    fn read_exact_len(&mut self, expected: usize) -> Vec<u8> {
        let mut out = vec![0; expected];
        self.0.read_exact(&mut out).expect("read reply");
        out
    }

    /// Reads until the proxy closes the connection.
    fn read_to_close(&mut self) -> Vec<u8> {
        crate::common::read_until_closed(&mut self.0)
    }
}

#[test]
fn hello_switches_protocols_and_rejects_others() {
    let redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[RESP]);
    let mut raw = Raw::connect(proxy.resp_addr());
    raw.send(&resp_command(&[b"GET", b"absent"]));
    assert_eq!(raw.read_exact_len(5), b"$-1\r\n");
    raw.send(&resp_command(&[b"HELLO", b"3"]));
    assert_eq!(raw.read_exact_len(4), b"%8\r\n");
    raw.send(&resp_command(&[b"PING"]));
    // Skip the rest of the HELLO map by reading up to the PONG.
    let mut seen = Vec::new();
    while !seen.ends_with(b"+PONG\r\n") {
        seen.extend(raw.read_exact_len(1));
    }
    raw.send(&resp_command(&[b"GET", b"absent"]));
    assert_eq!(raw.read_exact_len(3), b"_\r\n");
    raw.send(&resp_command(&[b"HELLO", b"4"]));
    let expected = b"-NOPROTO unsupported protocol version\r\n";
    assert_eq!(raw.read_exact_len(expected.len()), expected);
}

#[test]
fn a_hundred_pipelined_gets_in_one_write_are_answered_in_order() {
    let redis = RedisServer::start();
    for i in 0..100 {
        redis.set(format!("p{i}"), format!("v{i:03}"));
    }
    let proxy = InProcess::start(&redis, &[RESP]);
    let mut raw = Raw::connect(proxy.resp_addr());
    let mut batch = Vec::new();
    for i in 0..100 {
        batch.extend(resp_command(&[b"GET", format!("p{i}").as_bytes()]));
    }
    raw.send(&batch);
    let mut expected = Vec::new();
    for i in 0..100 {
        expected.extend(format!("$4\r\nv{i:03}\r\n").bytes());
    }
    assert_eq!(raw.read_exact_len(expected.len()), expected);
}

#[test]
fn a_command_sent_one_byte_at_a_time() {
    let redis = RedisServer::start();
    redis.set("k", "slowly");
    let proxy = InProcess::start(&redis, &[RESP]);
    let mut raw = Raw::connect(proxy.resp_addr());
    raw.0.set_nodelay(true).expect("nodelay");
    for byte in resp_command(&[b"GET", b"k"]) {
        raw.send(&[byte]);
        raw.0.flush().expect("flush");
    }
    assert_eq!(raw.read_exact_len(12), b"$6\r\nslowly\r\n");
    // An inline command, byte by byte too.
    for &byte in b"PING\r\n" {
        raw.send(&[byte]);
    }
    assert_eq!(raw.read_exact_len(7), b"+PONG\r\n");
}

#[test]
fn protocol_errors_close_only_that_connection() {
    let redis = RedisServer::start();
    redis.set("k", "v");
    let proxy = InProcess::start(&redis, &[RESP]);
    let mut bystander = Raw::connect(proxy.resp_addr());
    for (garbage, reply) in [
        (
            &b"*99999999999\r\n"[..],
            "-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"*1\r\n$99999999999\r\n",
            "-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*2\r\n$3\r\nGET\r\n:1\r\n",
            "-ERR Protocol error: expected '$', got ':'\r\n",
        ),
        (
            b"*1\r\n$1\r\nabc\r\n",
            "-ERR Protocol error: bulk string not terminated by CRLF\r\n",
        ),
    ] {
        let mut raw = Raw::connect(proxy.resp_addr());
        raw.send(garbage);
        assert_eq!(String::from_utf8_lossy(&raw.read_to_close()), reply);
    }
    // A huge line with no end is cut off too, without buffering it all.
    let mut raw = Raw::connect(proxy.resp_addr());
    let _ = raw.0.write_all(&vec![b'A'; 200 * 1024]);
    let answer = raw.read_to_close();
    assert!(answer.starts_with(b"-ERR Protocol error: too big inline request"));
    bystander.send(&resp_command(&[b"GET", b"k"]));
    assert_eq!(bystander.read_exact_len(7), b"$1\r\nv\r\n");
}

#[test]
fn sigterm_answers_resp_reads_in_flight_then_exits_zero() {
    let redis = RedisServer::start();
    redis.set("k", "v");
    let relay = crate::common::relay::Relay::start(redis.addr(), Duration::ZERO);
    let mut proxy = Proxy::start_at(
        &relay.url(),
        &[RESP, ("REDIS_TIMEOUT_MS", "10000"), ("INVALIDATION", "off")],
    );
    relay.hold();
    let mut raw = Raw::connect(proxy.resp_addr());
    raw.send(&resp_command(&[b"GET", b"k"]));
    eventually("the read to reach Redis", || {
        (relay.in_flight() == 1).then_some(())
    });
    proxy.signal("TERM");
    eventually("the RESP listener to close", || {
        TcpStream::connect(proxy.resp_addr()).is_err().then_some(())
    });
    relay.release();
    assert_eq!(raw.read_exact_len(7), b"$1\r\nv\r\n");
    assert_eq!(proxy.wait_exit().code(), Some(0), "{}", proxy.log());
    // Shutting the listener is not a failed accept worth a warning.
    assert_eq!(proxy.warnings(), Vec::<String>::new());
}
