//! `CLIENT TRACKING` through the proxy for forwarded reads (issue #21): a
//! client that keeps its own cache of HGET, LRANGE, ... replies (redis-py's
//! and node-redis's client-side caches do) is told when those keys change,
//! as Redis itself would tell it, not only for the GETs the proxy serves.

use crate::common::wire::{show, Wire};
use crate::common::{InProcess, RedisServer};

/// Reads frames until a push naming `key` arrives (a push may name several
/// keys; other frames are skipped).
fn invalidated(wire: &mut Wire, key: &str) -> bool {
    let needle = format!("\r\n${}\r\n{key}\r\n", key.len());
    for _ in 0..8 {
        let frame = wire.reply();
        if frame.starts_with(b">") && show(&frame).contains(&show(needle.as_bytes())) {
            return true;
        }
    }
    false
}

/// Sends one command and returns its reply, passing over push frames: the
/// proxy may tell a change twice (once as the write passes through it,
/// once when Redis's own announcement arrives), and the second may come
/// between later replies. None of those passed over may name `untold`.
fn call(wire: &mut Wire, args: &[&str], untold: &str) -> Vec<u8> {
    wire.send_args(args);
    let needle = show(format!("\r\n${}\r\n{untold}\r\n", untold.len()).as_bytes());
    loop {
        let frame = wire.reply();
        if !frame.starts_with(b">") {
            return frame;
        }
        assert!(
            !show(&frame).contains(&needle),
            "told of {untold}: {}",
            show(&frame)
        );
    }
}

#[test]
fn a_tracking_client_hears_of_changes_to_keys_its_forwarded_reads_read() {
    let redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[("RESP_PORT", "auto")]);
    let mut writer = Wire::connect(proxy.resp_addr());
    writer.call_args(&["HSET", "h", "f", "v1"]);
    writer.call_args(&["RPUSH", "l", "a"]);
    writer.call_args(&["SET", "s", "v1"]);
    proxy.wait_for_link("up");
    let mut reader = Wire::open_with(proxy.resp_addr(), 3);
    assert_eq!(reader.call_args(&["CLIENT", "TRACKING", "ON"]), b"+OK\r\n");
    // Redis announces the writes above on the proxy's link, maybe after
    // the reads below: those (correct, here unwanted) pushes come first,
    // once a change made after them has been told.
    assert_eq!(reader.call_args(&["GET", "caught-up"]), b"_\r\n");
    redis.cmd::<String>(&["SET", "caught-up", "1"]);
    assert!(invalidated(&mut reader, "caught-up"), "no invalidation");
    assert_eq!(reader.call_args(&["HGET", "h", "f"]), b"$2\r\nv1\r\n");
    assert_eq!(
        reader.call_args(&["LRANGE", "l", "0", "-1"]),
        b"*1\r\n$1\r\na\r\n"
    );
    assert_eq!(reader.call_args(&["GET", "s"]), b"$2\r\nv1\r\n");
    // Changed through the proxy and directly at Redis: both are told.
    writer.call_args(&["HSET", "h", "f", "v2"]);
    assert!(
        invalidated(&mut reader, "h"),
        "no invalidation for the hash"
    );
    redis.cmd::<i64>(&["RPUSH", "l", "b"]);
    assert!(
        invalidated(&mut reader, "l"),
        "no invalidation for the list"
    );
    // A write is not a read: the key it wrote is not tracked for it.
    assert_eq!(call(&mut reader, &["SET", "w", "1"], "w"), b"+OK\r\n");
    writer.call_args(&["SET", "w", "2"]);
    // (A push for `w` arriving after the PONG would go unseen here: this
    // check can miss one, never fail on a correct proxy.)
    assert_eq!(call(&mut reader, &["PING"], "w"), b"+PONG\r\n");
}

/// A client that redirects its tracking to itself, on one side: its own
/// id from `CLIENT GETREDIR`, then what it gets after reading `k9` and
/// another client writing it (RESP2: once subscribed to the channel).
fn redirect_to_self(addr: std::net::SocketAddr, resp3: bool) -> Vec<String> {
    use crate::common::resp_conn::RespConn;
    let text = |bytes: Vec<u8>| String::from_utf8_lossy(&bytes).into_owned();
    let mut c = RespConn::open(addr);
    let mut w = RespConn::open(addr);
    if resp3 {
        c.send(&["HELLO", "3"]);
        c.reply();
    }
    let id = c.call(&["CLIENT", "ID"]);
    let id = id.trim_start_matches(':').trim_end().to_owned();
    let mut seen = vec![c.call(&["CLIENT", "TRACKING", "ON", "REDIRECT", &id])];
    let redir = c.call(&["CLIENT", "GETREDIR"]);
    seen.push((redir.trim_start_matches(':').trim_end() == id).to_string());
    seen.push(c.call(&["GET", "k9"]));
    if !resp3 {
        seen.push(c.call(&["SUBSCRIBE", "__redis__:invalidate"]));
    }
    assert_eq!(w.call(&["SET", "k9", "x"]), "+OK\r\n");
    seen.push(text(c.reply()));
    seen
}

#[test]
fn a_client_redirecting_to_itself_is_told_as_at_redis() {
    let redis = crate::common::RedisServer::start();
    let (_backend, proxy) = crate::client_tracking::start(&[]);
    for resp3 in [false, true] {
        assert_eq!(
            redirect_to_self(proxy.resp_addr(), resp3),
            redirect_to_self(redis.addr(), resp3),
            "resp3: {resp3}"
        );
    }
}
