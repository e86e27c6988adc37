//! What a client that has not given PROXY_PASSWORD may send: Redis's own
//! bounds for a client not authenticated (at most 10 arguments, none
//! longer than 16 KiB, else `-ERR Protocol error: unauthenticated ...`
//! and the connection closed), compared byte for byte with a redis-server
//! run with `--requirepass`; and the proxy's memory while such clients
//! send tens of megabytes (audit finding: 8 of them took it to 494 MB).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use crate::common::resp_wire::{show, Wire};
use crate::common::{connect, read_until_closed, resp_command, InProcess, Proxy, RedisServer};

const PASSWORD: &str = "s3cret-proxy-pw";

/// The proxy (in this process) asking for PASSWORD, and a redis-server
/// with `--requirepass PASSWORD`, the reference; the proxy's own Redis
/// too, which must outlive the proxy.
fn start() -> (RedisServer, InProcess, RedisServer) {
    let backing = RedisServer::start();
    let settings = [("RESP_PORT", "auto"), ("PROXY_PASSWORD", PASSWORD)];
    let proxy = InProcess::start(&backing, &settings);
    let reference = RedisServer::start_with(&["--requirepass", PASSWORD]);
    (backing, proxy, reference)
}

/// `SET k` with the header of a `len`-byte value, and no value.
fn set_header(len: usize) -> Vec<u8> {
    format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${len}\r\n").into_bytes()
}

/// What `addr` answers to `bytes` up to its closing the connection.
fn until_closed(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut stream = connect(addr);
    stream.write_all(bytes).expect("send");
    read_until_closed(&mut stream)
}

/// The `n` replies `addr` gives to `bytes`, on a connection left open.
fn replies(addr: SocketAddr, bytes: &[u8], n: usize) -> Vec<Vec<u8>> {
    let mut wire = Wire::connect(addr);
    wire.send(bytes);
    wire.replies(n)
}

fn auth() -> Vec<u8> {
    resp_command(&[b"AUTH", PASSWORD.as_bytes()])
}

#[test]
fn before_auth_requests_are_bounded_as_redis_bounds_them() {
    let (_backing, proxy, reference) = start();
    let (ours, redis) = (proxy.resp_addr(), reference.addr());
    let mut reset_then_long = auth();
    reset_then_long.extend_from_slice(&resp_command(&[b"RESET"]));
    reset_then_long.extend_from_slice(&set_header(16 * 1024 + 1));
    let closing: [(&str, Vec<u8>); 8] = [
        ("a value of 16 KiB + 1", set_header(16 * 1024 + 1)),
        ("a value of 100 MB", set_header(100_000_000)),
        ("a value past proto-max-bulk-len", set_header(600_000_000)),
        ("11 arguments", b"*11\r\n".to_vec()),
        ("2,000,000 arguments", b"*2000000\r\n".to_vec()),
        ("more arguments than an int", b"*2147483648\r\n".to_vec()),
        (
            "a 100 KB password",
            format!("*2\r\n$4\r\nAUTH\r\n${}\r\n", 100_000).into_bytes(),
        ),
        ("RESET, then a long value", reset_then_long),
    ];
    for (what, bytes) in &closing {
        let expected = until_closed(redis, bytes);
        assert!(
            expected.ends_with(b" length\r\n"),
            "{what}: {}",
            show(&expected)
        );
        assert_eq!(
            show(&until_closed(ours, bytes)),
            show(&expected),
            "{what}, then closed"
        );
    }
    // The whole 100 KB password sent: refused from its length, closed.
    let mut long_auth = resp_command(&[b"AUTH", &[b'p'; 100_000]]);
    let refused = until_closed(ours, &long_auth);
    assert_eq!(
        refused,
        b"-ERR Protocol error: unauthenticated bulk length\r\n",
        "{}",
        show(&refused)
    );
    // Up to the bounds, and an inline line (which Redis does not bound
    // apart from any line's 64 KiB): -NOAUTH, the connection kept.
    let value = vec![b'x'; 16 * 1024];
    let mut ten: Vec<&[u8]> = vec![b"DEL"];
    ten.extend([&b"k"[..]; 9]);
    let mut inline = b"SET k ".to_vec();
    inline.extend_from_slice(&[b'x'; 20_000]);
    inline.extend_from_slice(b"\r\nPING\r\n");
    let kept: [(&str, Vec<u8>, usize); 3] = [
        (
            "a value of 16 KiB",
            resp_command(&[b"SET", b"k", &value]),
            1,
        ),
        ("10 arguments", resp_command(&ten), 1),
        ("a long inline line", inline, 2),
    ];
    for (what, bytes, n) in &kept {
        let expected = replies(redis, bytes, *n);
        assert!(expected[0].starts_with(b"-NOAUTH"), "{what}");
        assert_eq!(replies(ours, bytes, *n), expected, "{what}");
    }
    // Once authenticated (in the same write), the same requests run.
    let big = vec![b'x'; 100_000];
    let mut thirty: Vec<&[u8]> = vec![b"DEL"];
    thirty.extend([&b"k"[..]; 30]);
    long_auth = auth();
    long_auth.extend_from_slice(&resp_command(&[b"SET", b"k", &big]));
    long_auth.extend_from_slice(&resp_command(&[b"STRLEN", b"k"]));
    long_auth.extend_from_slice(&resp_command(&thirty));
    let expected = replies(redis, &long_auth, 4);
    assert_eq!(expected.concat(), b"+OK\r\n+OK\r\n:100000\r\n:1\r\n");
    assert_eq!(replies(ours, &long_auth, 4), expected);
    // HELLO ... AUTH lifts them too.
    let mut wire = Wire::connect(ours);
    let hello = wire.call_args(&["HELLO", "2", "AUTH", "default", PASSWORD]);
    assert!(hello.starts_with(b"*"), "{}", show(&hello));
    wire.send(&resp_command(&[b"SET", b"k", &big]));
    assert_eq!(wire.reply(), b"+OK\r\n");
}

/// Sends `header` and `len` bytes of value without reading, up to the
/// proxy's closing the connection (which it may do at once).
fn push_value(addr: SocketAddr, header: &[u8], len: usize) -> TcpStream {
    let mut stream = connect(addr);
    let chunk = vec![b'v'; 1024 * 1024];
    let mut sent = stream.write_all(header);
    let mut left = len;
    while sent.is_ok() && left > 0 {
        let n = left.min(chunk.len());
        sent = stream.write_all(&chunk[..n]);
        left -= n;
    }
    stream
}

#[test]
fn clients_that_never_authenticate_cannot_make_the_proxy_hold_their_requests() {
    // The binary, whose memory /proc shows.
    let backing = RedisServer::start();
    let settings = [("RESP_PORT", "auto"), ("PROXY_PASSWORD", PASSWORD)];
    let proxy = Proxy::start(&backing, &settings);
    let addr = proxy.resp_addr();
    // Warmed: a connection's usual buffers once.
    let mut warm = Wire::connect(addr);
    assert!(warm.call_args(&["PING"]).starts_with(b"-NOAUTH"));
    let (rss, peak) = (proxy.rss_kib(), proxy.peak_kib());
    const CLIENTS: usize = 6;
    const VALUE: usize = 20 * 1024 * 1024;
    let senders: Vec<_> = (0..CLIENTS)
        .map(|_| std::thread::spawn(move || push_value(addr, &set_header(VALUE), VALUE)))
        .collect();
    let streams: Vec<TcpStream> = senders
        .into_iter()
        .map(|sender| sender.join().expect("sender"))
        .collect();
    // All sent (or refused); the connections are still open on this side.
    let (rss_after, peak_after) = (proxy.rss_kib(), proxy.peak_kib());
    assert!(
        rss_after < rss + 8 * 1024 && peak_after < peak + 8 * 1024,
        "{CLIENTS} clients sending {VALUE} bytes each before AUTH: RSS {rss} -> {rss_after} \
         KiB, peak {peak} -> {peak_after} KiB"
    );
    for mut stream in streams {
        let mut reply = Vec::new();
        let _ = stream.read_to_end(&mut reply);
        assert!(
            reply.starts_with(b"-ERR Protocol error: unauthenticated bulk length\r\n"),
            "{}",
            show(&reply)
        );
    }
    // Authenticated, the same request is taken whole.
    let mut wire = Wire::connect(addr);
    assert_eq!(wire.call_args(&["AUTH", PASSWORD]), b"+OK\r\n");
    wire.send(&set_header(VALUE));
    wire.send(&vec![b'v'; VALUE]);
    wire.send(b"\r\n");
    assert_eq!(wire.reply(), b"+OK\r\n");
    assert_eq!(wire.call_args(&["STRLEN", "k"]), b":20971520\r\n");
}
