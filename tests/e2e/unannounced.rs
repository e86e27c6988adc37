//! Issue 19, row 13: what Redis announces to trackers and what it does not,
//! checked against the redis-server the tests run (docs/coherence.md's
//! table), and the way to make the proxy drop everything after a change
//! Redis does not announce (`SWAPDB`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

use crate::common::{eventually, Proxy, RedisServer, TempDir};

#[test]
fn after_swapdb_a_flushdb_of_an_empty_database_makes_the_proxy_drop_everything() {
    let redis = RedisServer::start();
    let proxy = Proxy::start(&redis, &[]);
    redis.set("k", "db0");
    let mut conn = redis.conn();
    let _: () = redis::cmd("SELECT")
        .arg(1)
        .query(&mut conn)
        .expect("SELECT");
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("db1")
        .query(&mut conn)
        .expect("SET");
    eventually("k to be cached", || {
        proxy.get_key("k").is_hit().then_some(())
    });
    let _: () = redis.cmd(&["SWAPDB", "0", "1"]);
    // Redis announced nothing: the proxy still serves db 0's old value.
    let flushes = "redis_proxy_cache_flushes_total{reason=\"flushall\"}";
    let before = proxy.metric(flushes);
    let stale = proxy.get_key("k");
    assert_eq!((stale.body.as_slice(), stale.is_hit()), (&b"db0"[..], true));
    // The recipe: FLUSHDB of an empty scratch database.
    let _: () = redis::cmd("SELECT")
        .arg(15)
        .query(&mut conn)
        .expect("SELECT");
    let _: () = redis::cmd("FLUSHDB").query(&mut conn).expect("FLUSHDB");
    eventually("the flush to arrive", || {
        (proxy.metric(flushes) > before).then_some(())
    });
    assert_eq!(proxy.get_key("k").body, b"db1");
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
        let out = crate::common::resp_command(args);
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
