//! Issue 19: an entry never outlives its key's TTL in Redis, and what Redis
//! does not announce to trackers at all.
//!
//! Redis announces an expiry only when it reclaims the key: on access, or
//! when its active expiry cycle gets to it (seconds later on a busy server).
//! The test Redis runs with active expiry off (`DEBUG SET-ACTIVE-EXPIRE 0`),
//! so it never announces the expiry by itself: only a proxy that learned
//! the TTL stops serving the key.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

use crate::common::{eventually, Proxy, RedisServer, TempDir};

/// A Redis that reclaims expired keys only when they are read.
fn lazy_redis() -> RedisServer {
    let redis = RedisServer::start_with(&["--enable-debug-command", "yes"]);
    let _: () = redis.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    redis
}

/// `Cache-Control: max-age=N`'s N.
fn max_age(reply: &crate::common::http::Reply) -> u64 {
    reply
        .header("cache-control")
        .and_then(|value| value.strip_prefix("max-age="))
        .and_then(|n| n.split(',').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no max-age: {:?}", reply.headers))
}

#[test]
fn a_key_is_not_served_past_its_ttl_in_redis_over_http_and_resp() {
    let redis = lazy_redis();
    let proxy = Proxy::start(&redis, &[("RESP_PORT", "auto")]);
    assert_eq!(proxy.link_state(), "up");
    // Long enough to be read into the cache on a loaded machine; far
    // shorter than GLOBAL_CACHE_EXPIRY (60 s).
    for key in ["http", "resp", "mget"] {
        let _: () = redis.cmd(&["SET", key, "short-lived", "PX", "2000"]);
    }
    redis.set("plain", "stays");
    let hit = eventually("the key to be cached", || {
        let reply = proxy.get_key("http");
        reply.is_hit().then_some(reply)
    });
    assert!(
        max_age(&hit) <= 2,
        "max-age beyond the TTL: {:?}",
        hit.headers
    );
    let mut resp = redis::Client::open(proxy.resp_url())
        .and_then(|c| c.get_connection())
        .expect("RESP connection");
    let mut get = |key: &str| -> Option<String> {
        redis::cmd("GET")
            .arg(key)
            .query(&mut resp)
            .expect("GET through the proxy")
    };
    assert_eq!(get("resp").as_deref(), Some("short-lived"));

    let invalidations = proxy.metric("redis_proxy_invalidations_total");
    let message = "the proxy to stop serving a key whose TTL in Redis has ended \
                   (Redis has not announced the expiry; a proxy that does not \
                   cap entries by PTTL serves it for GLOBAL_CACHE_EXPIRY)";
    eventually(message, || {
        (proxy.get_key("http").status == 404).then_some(())
    });
    eventually(message, || get("resp").is_none().then_some(()));
    let mut conn = redis::Client::open(proxy.resp_url())
        .and_then(|c| c.get_connection())
        .expect("RESP connection");
    eventually(message, || {
        let values: Vec<Option<String>> = redis::cmd("MGET")
            .arg("mget")
            .arg("plain")
            .query(&mut conn)
            .expect("MGET through the proxy");
        (values == [None, Some("stays".to_owned())]).then_some(())
    });
    // Redis announced nothing by itself: only the proxy's own reads of the
    // expired keys made it reclaim (and announce) them.
    assert!(proxy.metric("redis_proxy_invalidations_total") <= invalidations + 3.0);
    // A key without a TTL is still cached.
    assert!(proxy.get_key("plain").is_hit());
}

#[test]
fn stale_if_error_never_serves_a_key_past_its_ttl_in_redis() {
    let mut redis = lazy_redis();
    let proxy = Proxy::start(
        &redis,
        &[
            ("INVALIDATION", "off"),
            ("GLOBAL_CACHE_EXPIRY", "1"),
            ("STALE_IF_ERROR_SECS", "60"),
            ("REDIS_TIMEOUT_MS", "300"),
        ],
    );
    // Ends in Redis 4 s from now: after the 1 s lifetime, well within the
    // 60 s grace. Stale-if-error may serve it until then, never after.
    let _: () = redis.cmd(&["SET", "k", "v", "PX", "4000"]);
    eventually("k to be cached", || {
        proxy.get_key("k").is_hit().then_some(())
    });
    redis.stop();
    let mut answers = Vec::new();
    eventually(
        "stale-if-error to stop serving k once its TTL in Redis ended",
        || {
            let reply = proxy.get_key("k");
            answers.push(reply.header("x-cache").unwrap_or("-").to_owned());
            match reply.status {
                200 => {
                    assert_eq!(reply.body, b"v");
                    None
                }
                status => Some(status),
            }
        },
    );
    assert!(
        answers.iter().any(|a| a == "STALE"),
        "stale-if-error still serves within the TTL: {answers:?}"
    );
}

/// A raw RESP3 connection to Redis: commands in, replies and pushes out.
struct Resp3 {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}

/// What the tests need of a RESP3 reply.
#[derive(Debug, PartialEq)]
enum Frame {
    Line(String),
    Int(i64),
    Bulk(Vec<u8>),
    Null,
    Array(Vec<Frame>),
    /// An `invalidate` push: the keys, or `None` for everything.
    Invalidate(Option<Vec<String>>),
}

impl Resp3 {
    fn connect(redis: &RedisServer) -> Resp3 {
        let writer = TcpStream::connect(redis.addr()).expect("connect to redis");
        let reader = BufReader::new(writer.try_clone().expect("clone"));
        Resp3 { writer, reader }
    }

    fn send(&mut self, args: &[&[u8]]) {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            out.extend_from_slice(arg);
            out.extend_from_slice(b"\r\n");
        }
        self.writer.write_all(&out).expect("send");
    }

    /// Sends a command and returns its reply (pushes before it are lost:
    /// only the tracking connection gets any, and it sends nothing after
    /// turning tracking on).
    fn cmd(&mut self, args: &[&str]) -> Frame {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.send(&args);
        loop {
            match self.read() {
                Frame::Invalidate(_) => continue,
                frame => return frame,
            }
        }
    }

    fn read(&mut self) -> Frame {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read a reply");
        let line = line.trim_end();
        let (kind, rest) = line.split_at(1);
        let count = || rest.parse::<i64>().expect("a length");
        match kind {
            "+" | "-" => Frame::Line(line.to_owned()),
            ":" => Frame::Int(count()),
            "_" => Frame::Null,
            "$" if count() < 0 => Frame::Null,
            "$" => {
                let mut bytes = vec![0; count() as usize + 2];
                self.reader.read_exact(&mut bytes).expect("bulk");
                bytes.truncate(bytes.len() - 2);
                Frame::Bulk(bytes)
            }
            "*" => Frame::Array((0..count()).map(|_| self.read()).collect()),
            "%" => Frame::Array((0..2 * count()).map(|_| self.read()).collect()),
            ">" => {
                let items: Vec<Frame> = (0..count()).map(|_| self.read()).collect();
                match items.as_slice() {
                    [Frame::Bulk(kind), Frame::Null] if kind == b"invalidate" => {
                        Frame::Invalidate(None)
                    }
                    [Frame::Bulk(kind), Frame::Array(keys)] if kind == b"invalidate" => {
                        Frame::Invalidate(Some(
                            keys.iter()
                                .map(|key| match key {
                                    Frame::Bulk(key) => String::from_utf8_lossy(key).into_owned(),
                                    other => panic!("a key: {other:?}"),
                                })
                                .collect(),
                        ))
                    }
                    other => panic!("an unexpected push: {other:?}"),
                }
            }
            other => panic!("an unexpected reply type {other}: {line}"),
        }
    }

    /// Every invalidation pushed until the one for `marker`.
    fn invalidations_until(&mut self, marker: &str) -> Vec<Option<Vec<String>>> {
        let mut seen = Vec::new();
        loop {
            match self.read() {
                Frame::Invalidate(Some(keys)) if keys == [marker] => return seen,
                Frame::Invalidate(keys) => seen.push(keys),
                other => panic!("a push, not {other:?}"),
            }
        }
    }
}

/// Checked against redis-server, the table in docs/coherence.md: what a
/// `CLIENT TRACKING ON BCAST` connection (the proxy's link) is told of each
/// change. Fails if Redis starts (or stops) announcing one of them.
#[test]
fn what_redis_announces_to_trackers_and_what_it_does_not() {
    let dir = TempDir::new("redis-ttl");
    let dir_arg = dir.path().to_string_lossy().into_owned();
    let redis = RedisServer::start_with(&["--enable-debug-command", "yes", "--dir", &dir_arg]);
    let mut tracker = Resp3::connect(&redis);
    assert!(matches!(tracker.cmd(&["HELLO", "3"]), Frame::Array(_)));
    assert_eq!(
        tracker.cmd(&["CLIENT", "TRACKING", "ON", "BCAST"]),
        Frame::Line("+OK".to_owned())
    );
    let mut writer = Resp3::connect(&redis);
    let _ = writer.cmd(&["SET", "dumped", "d"]);
    let dump = match writer.cmd(&["DUMP", "dumped"]) {
        Frame::Bulk(bytes) => bytes,
        other => panic!("DUMP answered {other:?}"),
    };
    let mut probe = Probe {
        tracker,
        writer,
        mark: 0,
    };
    let mut case = |setup: &[&[&str]], change: &[&[u8]]| probe.case(setup, change);
    let keys = |keys: &[&str]| vec![Some(keys.iter().map(|k| k.to_string()).collect::<Vec<_>>())];
    let k_in_both_dbs: &[&[&str]] = &[
        &["SET", "k", "db0"],
        &["SELECT", "1"],
        &["SET", "k", "db1"],
        &["SELECT", "0"],
    ];

    // Not announced at all: every key of db 0 changes.
    assert_eq!(case(k_in_both_dbs, &[b"SWAPDB", b"0", b"1"]), vec![]);
    // Not announced until Redis reclaims the key (here: never, until read).
    assert_eq!(
        case(
            &[
                &["DEBUG", "SET-ACTIVE-EXPIRE", "0"],
                &["SET", "e", "v", "PX", "1"]
            ],
            &[b"DEBUG", b"SLEEP", b"0.05"]
        ),
        vec![]
    );
    assert_eq!(case(&[], &[b"GET", b"e"]), keys(&["e"]));

    // Announced as "everything" (a null invalidation).
    assert_eq!(
        case(&[&["DEBUG", "SET-ACTIVE-EXPIRE", "1"]], &[b"FLUSHDB"]),
        vec![None]
    );
    assert_eq!(
        case(&[&["SET", "k", "v"], &["SELECT", "9"]], &[b"FLUSHDB"]),
        vec![None],
        "FLUSHDB of another, even empty, db flushes every tracker"
    );
    assert_eq!(
        case(&[&["SELECT", "0"]], &[b"DEBUG", b"RELOAD"]),
        vec![None]
    );

    // Announced per key (tracking ignores the db: a write to k in db 1
    // invalidates k in db 0 too).
    assert_eq!(
        case(&[&["FLUSHALL"], &["SET", "k", "v"]], &[b"MOVE", b"k", b"1"]),
        keys(&["k"])
    );
    assert_eq!(
        case(&[&["SET", "k", "v"]], &[b"COPY", b"k", b"dst", b"REPLACE"]),
        keys(&["dst"])
    );
    assert_eq!(
        case(&[&["SET", "k", "v"]], &[b"RENAME", b"k", b"k2"]),
        keys(&["k", "k2"])
    );
    assert_eq!(
        case(&[&["SET", "k", "v"]], &[b"EXPIRE", b"k", b"100"]),
        keys(&["k"])
    );
    assert_eq!(
        case(
            &[],
            &[b"EVAL", b"redis.call('SET', KEYS[1], 'x')", b"1", b"k"]
        ),
        keys(&["k"])
    );
    assert_eq!(
        case(&[], &[b"RESTORE", b"k", b"0", &dump, b"REPLACE"]),
        keys(&["k"])
    );
    assert_eq!(
        case(&[&["SELECT", "1"]], &[b"SET", b"k", b"other-db"]),
        keys(&["k"])
    );
}

/// Two connections to one Redis: a BCAST tracker and a writer.
struct Probe {
    tracker: Resp3,
    writer: Resp3,
    mark: u32,
}

impl Probe {
    /// Runs `setup`, then `change`, and returns what the tracker was told
    /// of the change alone (markers written before and after bound it).
    fn case(&mut self, setup: &[&[&str]], change: &[&[u8]]) -> Vec<Option<Vec<String>>> {
        for command in setup {
            let _ = self.writer.cmd(command);
        }
        self.mark += 1;
        let before = format!("before-{}", self.mark);
        let _ = self.writer.cmd(&["SET", &before, "1"]);
        let _ = self.tracker.invalidations_until(&before);
        self.writer.send(change);
        let _ = self.writer.read();
        let after = format!("after-{}", self.mark);
        let _ = self.writer.cmd(&["SET", &after, "1"]);
        self.tracker.invalidations_until(&after)
    }
}
