//! Forwarded commands counted (issue #21, "Metrics"): by command and
//! result in `/metrics`, with a latency histogram of forwarded batches,
//! and in `INFO commandstats` and `errorstats` as Redis counts its own,
//! compared with what the redis-server behind the proxy counted of the
//! same commands.

use std::io::{Read, Write};
use std::net::TcpStream;

use crate::common::info::info_value;
use crate::common::{connect, resp_command, InProcess, RedisServer};

/// Sends `requests` in one write and reads back exactly `expected`.
fn exchange(stream: &mut TcpStream, requests: &[&[&str]], expected: &[u8]) {
    let mut bytes = Vec::new();
    for args in requests {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        bytes.extend_from_slice(&resp_command(&args));
    }
    stream.write_all(&bytes).expect("send");
    let mut reply = vec![0; expected.len()];
    stream.read_exact(&mut reply).expect("replies");
    assert_eq!(
        String::from_utf8_lossy(&reply),
        String::from_utf8_lossy(expected),
        "replies to {requests:?}"
    );
}

/// `INFO <section>` on `stream`: the bulk string's text.
fn info(stream: &mut TcpStream, section: &str) -> String {
    stream
        .write_all(&resp_command(&[b"INFO", section.as_bytes()]))
        .expect("send INFO");
    let mut header = Vec::new();
    let mut byte = [0u8; 1];
    while !header.ends_with(b"\r\n") {
        stream.read_exact(&mut byte).expect("INFO's header");
        header.push(byte[0]);
    }
    let len: usize = std::str::from_utf8(&header[1..header.len() - 2])
        .ok()
        .and_then(|n| n.parse().ok())
        .expect("a bulk string");
    let mut body = vec![0; len + 2];
    stream.read_exact(&mut body).expect("INFO's text");
    String::from_utf8_lossy(&body[..len]).into_owned()
}

/// `calls`, `rejected_calls` and `failed_calls` of a `cmdstat_` line, and
/// its keys in order.
fn counts(line: &str) -> (Vec<&str>, [&str; 3]) {
    let pairs: Vec<(&str, &str)> = line.split(',').filter_map(|p| p.split_once('=')).collect();
    let get = |key: &str| {
        pairs
            .iter()
            .find(|(k, _)| *k == key)
            .map_or("?", |(_, v)| *v)
    };
    (
        pairs.iter().map(|(k, _)| *k).collect(),
        [get("calls"), get("rejected_calls"), get("failed_calls")],
    )
}

const WRONGTYPE: &str = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
const SAVE_REFUSED: &str = "-ERR 'save' is not allowed through the proxy: it changes the server itself (see docs/forwarding.md)\r\n";

#[test]
fn forwarded_commands_are_counted_by_command_and_result() {
    let redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[("RESP_PORT", "auto")]);
    let resp = |status: &str| {
        proxy.metric(&format!(
            "redis_proxy_requests_total{{protocol=\"resp\",status=\"{status}\"}}"
        ))
    };
    let (ok_before, errors_before) = (resp("ok"), resp("error"));
    let mut stream = connect(proxy.resp_addr());

    // One request at a time: each is a batch of its own.
    exchange(&mut stream, &[&["SET", "k", "1"]], b"+OK\r\n");
    exchange(&mut stream, &[&["INCR", "k"]], b":2\r\n");
    exchange(&mut stream, &[&["INCR", "k"]], b":3\r\n");
    exchange(&mut stream, &[&["LPUSH", "l", "a"]], b":1\r\n");
    exchange(&mut stream, &[&["INCR", "l"]], WRONGTYPE.as_bytes());
    exchange(
        &mut stream,
        &[&["OBJECT", "ENCODING", "k"]],
        b"$3\r\nint\r\n",
    );
    exchange(&mut stream, &[&["SAVE"]], SAVE_REFUSED.as_bytes());
    exchange(
        &mut stream,
        &[&["NOSUCHCMD"]],
        b"-ERR unknown command 'NOSUCHCMD', with args beginning with: \r\n",
    );
    let m = proxy.scrape();
    let histogram = "redis_proxy_forward_duration_seconds";
    assert_eq!(m.value(&format!("{histogram}_count")), 8.0);
    assert_eq!(m.value(&format!("{histogram}_bucket{{le=\"+Inf\"}}")), 8.0);

    // Pipelined, in one write: however the proxy batches them, each is
    // counted; a refusal between two requests Redis answers included.
    exchange(
        &mut stream,
        &[&["INCR", "k"], &["INCR", "k"], &["INCR", "k"]],
        b":4\r\n:5\r\n:6\r\n",
    );
    let mixed = format!("+OK\r\n{SAVE_REFUSED}{WRONGTYPE}");
    exchange(
        &mut stream,
        &[&["SET", "k2", "v"], &["SAVE"], &["INCR", "l"]],
        mixed.as_bytes(),
    );

    let m = proxy.scrape();
    let forwarded = |command: &str, result: &str| {
        m.value(&format!(
            "redis_proxy_forwarded_commands_total{{command=\"{command}\",result=\"{result}\"}}"
        ))
    };
    let figures = [
        ("set", [2.0, 0.0, 0.0]),
        ("incr", [5.0, 2.0, 0.0]),
        ("lpush", [1.0, 0.0, 0.0]),
        ("object|encoding", [1.0, 0.0, 0.0]),
        ("save", [0.0, 0.0, 2.0]),
        ("other", [0.0, 1.0, 0.0]),
    ];
    for (command, expected) in figures {
        let found = ["ok", "error", "rejected"].map(|result| forwarded(command, result));
        assert_eq!(found, expected, "{command}");
    }
    // Nothing else forwarded: no series beyond those.
    let series = m
        .iter()
        .filter(|(name, _)| name.starts_with("redis_proxy_forwarded_commands_total{"))
        .count();
    assert_eq!(series, figures.len() * 3);
    // RESP requests: the nine Redis answered well, the five errors.
    assert_eq!(resp("ok") - ok_before, 9.0);
    assert_eq!(resp("error") - errors_before, 5.0);

    // INFO commandstats: Redis's lines, with Redis's own counts of the
    // same commands (it saw all but the refused and the unknown ones).
    let ours = info(&mut stream, "commandstats");
    let theirs: String = redis.cmd(&["INFO", "commandstats"]);
    for command in ["set", "incr", "lpush", "object|encoding"] {
        let name = format!("cmdstat_{command}");
        let line = info_value(&ours, &name).unwrap_or_else(|| panic!("{name}: {ours}"));
        let reference = info_value(&theirs, &name).unwrap_or_else(|| panic!("Redis's {name}"));
        assert_eq!(counts(line), counts(reference), "{name}: {ours}");
    }
    assert_eq!(
        counts(info_value(&ours, "cmdstat_incr").expect("incr")).1,
        ["7", "0", "2"]
    );
    assert_eq!(
        info_value(&ours, "cmdstat_save"),
        Some("calls=0,usec=0,usec_per_call=0.00,rejected_calls=2,failed_calls=0")
    );
    assert!(!ours.to_lowercase().contains("nosuchcmd"), "{ours}");
    assert!(!ours.contains("cmdstat_other"), "{ours}");
    // INFO errorstats: Redis's errors under their codes, the proxy's too.
    let errors = info(&mut stream, "errorstats");
    assert_eq!(
        info_value(&errors, "errorstat_WRONGTYPE"),
        Some("count=2"),
        "{errors}"
    );
    assert_eq!(
        info_value(&errors, "errorstat_ERR"),
        Some("count=3"),
        "{errors}"
    );
}
