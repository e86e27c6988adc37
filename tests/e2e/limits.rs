//! Limits a client runs into, each answered as Redis answers it and none
//! costing the proxy more than its bound: MAX_CONNECTIONS on the RESP port,
//! client names, keys too long to cache, and running out of file
//! descriptors.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::common::resp_wire::{show, Wire};
use crate::common::{
    connect, eventually, read_until_closed, resp_command, roundtrip_line, try_request, InProcess,
    Proxy, RedisServer,
};

const RESP: (&str, &str) = ("RESP_PORT", "auto");
const NAME_ERROR: &str =
    "-ERR Client names cannot contain spaces, newlines or special characters.\r\n";

/// Sends `request` and reads one bulk reply's payload.
fn roundtrip_bulk(stream: &mut TcpStream, request: &[u8]) -> Vec<u8> {
    let header = roundtrip_line(stream, request);
    let len: usize = header
        .strip_prefix('$')
        .and_then(|h| h.trim_end().parse().ok())
        .unwrap_or_else(|| panic!("a bulk reply, not {header:?}"));
    let mut body = vec![0; len + 2];
    stream.read_exact(&mut body).expect("bulk payload");
    body.truncate(len);
    body
}

/// One RESP request on a new connection, its first reply line; None if the
/// port does not answer (yet).
fn try_resp(addr: SocketAddr, request: &[u8]) -> Option<String> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    stream.write_all(request).ok()?;
    let mut reply = Vec::new();
    let mut byte = [0u8; 1];
    while !reply.ends_with(b"\r\n") {
        stream.read_exact(&mut byte).ok()?;
        reply.push(byte[0]);
    }
    String::from_utf8(reply).ok()
}

#[test]
fn a_resp_client_beyond_max_connections_is_told_so_and_closed_at_once() {
    let redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[RESP, ("MAX_CONNECTIONS", "2")]);
    let mut first = connect(proxy.resp_addr());
    let mut second = connect(proxy.resp_addr());
    for conn in [&mut first, &mut second] {
        assert_eq!(roundtrip_line(conn, b"PING\r\n"), "+PONG\r\n");
    }
    // The third is answered without asking anything, and closed: not left
    // waiting unanswered in the listen backlog.
    let mut third = connect(proxy.resp_addr());
    let ours = read_until_closed(&mut third);
    // Byte for byte what redis-server says at its maxclients.
    let limited = RedisServer::start_with(&["--maxclients", "1"]);
    let _held = eventually("a connection to the limited redis-server", || {
        let mut held = connect(limited.addr());
        (roundtrip_line(&mut held, b"PING\r\n") == "+PONG\r\n").then_some(held)
    });
    let theirs = read_until_closed(&mut connect(limited.addr()));
    assert_eq!(theirs, b"-ERR max number of clients reached\r\n");
    assert_eq!(
        String::from_utf8_lossy(&ours),
        String::from_utf8_lossy(&theirs)
    );
    // So is one that sends before it reads, and its connection ends in a
    // clean close: what it sent, left unread, would make the close a reset.
    for _ in 0..100 {
        let mut eager = connect(proxy.resp_addr());
        eager.write_all(&b"PING\r\n".repeat(100)).expect("send");
        let mut answer = Vec::new();
        eager
            .read_to_end(&mut answer)
            .expect("a clean close, not a reset");
        assert_eq!(answer, theirs);
    }
    // Counted, as Redis counts it and in /metrics.
    let info = roundtrip_bulk(&mut second, b"INFO stats\r\n");
    let info = String::from_utf8_lossy(&info);
    assert!(info.contains("\r\nrejected_connections:101\r\n"), "{info}");
    assert_eq!(
        proxy.metric("redis_proxy_rejected_connections_total{protocol=\"resp\"}"),
        101.0
    );
    // The two served go on being served, and once one leaves, a newcomer is
    // served in its place.
    assert_eq!(roundtrip_line(&mut second, b"PING\r\n"), "+PONG\r\n");
    drop(first);
    eventually("a place to come free", || {
        (try_resp(proxy.resp_addr(), b"PING\r\n")? == "+PONG\r\n").then_some(())
    });
}

/// MAX_CONNECTIONS is Redis's `maxclients` 10,000 by default, and lowered
/// at start to the open files limit less 32, with a warning, where that is
/// lower: redis-server under the same hard limit of 100 says "maxclients
/// has been reduced to 68" and reports `maxclients:68`. Past it a client is
/// told so, not left unanswered in the backlog for want of a descriptor.
#[test]
fn max_connections_is_lowered_to_the_open_files_limit_as_redis_lowers_maxclients() {
    let redis = RedisServer::start();
    let wrapper = ["prlimit", "--nofile=100:100", "--"];
    let proxy = Proxy::start_wrapped(&redis.url(), &[RESP], &wrapper);
    let warned = proxy.log().lines().any(|line| {
        line.contains(" WARN ")
            && line.contains("MAX_CONNECTIONS=10000 needs at least 10032 open files")
            && line.contains("MAX_CONNECTIONS lowered to 68")
    });
    assert!(warned, "{}", proxy.log());
    assert_eq!(proxy.metric("redis_proxy_max_connections"), 68.0);
    let mut held: Vec<TcpStream> = (0..68).map(|_| connect(proxy.resp_addr())).collect();
    for conn in &mut held {
        assert_eq!(roundtrip_line(conn, b"PING\r\n"), "+PONG\r\n");
    }
    let info = roundtrip_bulk(&mut held[0], b"INFO clients\r\n");
    let info = String::from_utf8_lossy(&info);
    assert!(info.contains("\r\nmaxclients:68\r\n"), "{info}");
    let refused = read_until_closed(&mut connect(proxy.resp_addr()));
    assert_eq!(
        show(&refused),
        show(b"-ERR max number of clients reached\r\n")
    );
}

#[test]
fn client_names_are_refused_with_redis_words_and_no_longer_than_a_key() {
    let redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[RESP, ("MAX_KEY_BYTES", "64")]);
    let mut ours = connect(proxy.resp_addr());
    let mut theirs = connect(redis.addr());
    for name in [
        &b"a b"[..],
        b"a\nb",
        b"a\r\nb",
        b"tab\there",
        b"\x7f",
        b"caf\xc3\xa9",
    ] {
        for request in [
            resp_command(&[b"CLIENT", b"SETNAME", name]),
            resp_command(&[b"HELLO", b"3", b"SETNAME", name]),
        ] {
            let expected = roundtrip_line(&mut theirs, &request);
            assert_eq!(expected, NAME_ERROR, "redis-server on {name:?}");
            assert_eq!(roundtrip_line(&mut ours, &request), expected, "{name:?}");
        }
    }
    // Nothing was named, and the failed HELLO 3 left both on RESP2.
    for conn in [&mut ours, &mut theirs] {
        assert_eq!(roundtrip_line(conn, b"CLIENT GETNAME\r\n"), "$-1\r\n");
    }
    // A name as long as a key may be is taken; one byte more is refused,
    // and the connection goes on.
    let longest = vec![b'n'; 64];
    let request = resp_command(&[b"CLIENT", b"SETNAME", &longest]);
    assert_eq!(roundtrip_line(&mut ours, &request), "+OK\r\n");
    let too_long = vec![b'n'; 65];
    for request in [
        resp_command(&[b"CLIENT", b"SETNAME", &too_long]),
        resp_command(&[b"HELLO", b"2", b"SETNAME", &too_long]),
    ] {
        assert_eq!(
            roundtrip_line(&mut ours, &request),
            "-ERR Client name too long (max 64 bytes)\r\n"
        );
    }
    assert_eq!(
        roundtrip_bulk(&mut ours, b"CLIENT GETNAME\r\n"),
        longest,
        "the last name taken stays"
    );
    assert_eq!(roundtrip_line(&mut ours, b"PING\r\n"), "+PONG\r\n");
}

#[test]
fn fifty_four_megabyte_client_names_are_refused_and_not_kept() {
    let redis = RedisServer::start();
    let proxy = Proxy::start(&redis, &[RESP]);
    let before = proxy.rss_kib();
    let name = vec![b'n'; 4_000_000];
    let request = resp_command(&[b"CLIENT", b"SETNAME", &name]);
    let mut conns: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut conn = connect(proxy.resp_addr());
            let reply = roundtrip_line(&mut conn, &request);
            assert_eq!(reply, "-ERR Client name too long (max 8192 bytes)\r\n");
            conn
        })
        .collect();
    // Every one of them still usable, and none holding its 4 MB (all 50
    // kept it: 400 MB).
    for conn in &mut conns {
        assert_eq!(roundtrip_line(conn, b"PING\r\n"), "+PONG\r\n");
    }
    let grown = proxy.rss_kib().saturating_sub(before);
    assert!(
        grown < 64 * 1024,
        "RSS grew {grown} KiB with 50 connections"
    );
}

/// User plus system CPU time of process `pid` so far, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // Fields after the command name (which is in parentheses): utime and
    // stime are the 12th and 13th.
    let (_, rest) = stat.rsplit_once(')').expect("stat format");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

/// The lines the proxy logged about failing to accept.
fn accept_warnings(proxy: &Proxy) -> usize {
    proxy
        .log()
        .lines()
        .filter(|l| l.contains("Error accepting new client") || l.contains("RESP accept failed"))
        .count()
}

#[test]
fn out_of_file_descriptors_both_ports_back_off_warn_once_and_recover() {
    let redis = RedisServer::start();
    redis.set("k", "v");
    // A hard limit of 64 open files, which the proxy cannot raise.
    let proxy = Proxy::start_wrapped(&redis.url(), &[RESP], &["prlimit", "--nofile=64:64", "--"]);
    let ports = [proxy.addr, proxy.resp_addr()];
    // Held connections on both ports run it out of descriptors (an HTTP one
    // costs two, a RESP one one); the rest wait in the backlogs.
    let mut held: Vec<TcpStream> = Vec::new();
    for _ in 0..60 {
        for addr in ports {
            held.extend(TcpStream::connect(addr).ok());
        }
    }
    eventually("both accept loops to run out of descriptors", || {
        let log = proxy.log();
        (log.contains("Error accepting new client") && log.contains("RESP accept failed"))
            .then_some(())
    });
    // Held so for a while, with a newcomer knocking on each port every
    // 100 ms (each wakes the accept loops). What is observed is counted, not
    // timed: lines logged, and CPU ticks spent, over these 20 knocks.
    let ticks_before = cpu_ticks(proxy.pid());
    for _ in 0..20 {
        for addr in ports {
            held.extend(TcpStream::connect(addr).ok());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let ticks = cpu_ticks(proxy.pid()) - ticks_before;
    let warnings = accept_warnings(&proxy);
    assert!(
        warnings <= 2,
        "{warnings} accept warnings while out of descriptors (one a port expected):\n{}",
        proxy.log()
    );
    // Retrying a few times a second costs next to nothing; a loop spinning
    // on accept would take every tick of a core (100 a second).
    assert!(ticks < 40, "{ticks} CPU ticks while out of descriptors");
    // Descriptors come free: both ports serve again.
    drop(held);
    let reply = eventually("HTTP to serve again", || {
        try_request(proxy.addr, "GET", "/proxy?key=k", &[]).ok()
    });
    assert_eq!((reply.status, &reply.body[..]), (200, &b"v"[..]));
    let get = resp_command(&[b"GET", b"k"]);
    eventually("RESP to serve again", || {
        (try_resp(proxy.resp_addr(), &get)? == "$1\r\n").then_some(())
    });
}

/// A key longer than MAX_KEY_BYTES (8192 by default) can be written and
/// read over RESP as at Redis: GET and MGET of it are Redis's answers,
/// uncached (an MGET with one such key goes to Redis whole).
#[test]
fn a_get_or_mget_of_a_key_too_long_to_cache_answers_as_redis_uncached() {
    let redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[RESP]);
    let long = "k".repeat(9000);
    let mut ours = Wire::connect(proxy.resp_addr());
    let mut direct = Wire::connect(redis.addr());
    assert_eq!(ours.call_args(&["SET", &long, "long value"]), b"+OK\r\n");
    assert_eq!(ours.call_args(&["SET", "short", "s"]), b"+OK\r\n");
    assert_eq!(ours.call_args(&["GET", &long]), b"$10\r\nlong value\r\n");
    for args in [
        vec!["GET", long.as_str()],
        vec!["MGET", long.as_str()],
        vec!["MGET", "short", long.as_str(), "missing"],
        vec!["GET", "short"],
        vec!["MGET", "short", "missing"],
    ] {
        let reply = ours.call_args(&args);
        assert_eq!(show(&reply), show(&direct.call_args(&args)), "{}", args[0]);
    }
    // Uncached: each read of it reaches Redis, forwarded as any command
    // (counted so), never looked up in the cache.
    for (command, args) in [
        ("get", vec!["GET", long.as_str()]),
        ("mget", vec!["MGET", "short", long.as_str()]),
    ] {
        let before = redis.calls(command);
        let forwarded =
            format!("redis_proxy_forwarded_commands_total{{command=\"{command}\",result=\"ok\"}}");
        let (forwarded_before, reads_before) = (proxy.metric(&forwarded), proxy.reads());
        ours.call_args(&args);
        ours.call_args(&args);
        assert_eq!(redis.calls(command), before + 2, "{command}");
        assert_eq!(
            proxy.metric(&forwarded),
            forwarded_before + 2.0,
            "{command}"
        );
        assert_eq!(proxy.reads(), reads_before, "{command}");
    }
}
