//! Redis's command table, read by the proxy from `COMMAND`: `COMMAND
//! GETKEYS` and `GETKEYSANDFLAGS` answered from it are byte for byte what
//! redis-server 7 answers, over raw sockets, in RESP2 and RESP3.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};

use crate::common::{connect, eventually, resp_command, InProcess, RedisServer};

const RESP: (&str, &str) = ("RESP_PORT", "auto");

/// One connection, read one whole reply at a time, its bytes as sent.
struct Raw(BufReader<TcpStream>);

impl Raw {
    fn open(addr: SocketAddr, resp3: bool) -> Raw {
        let mut raw = Raw(BufReader::new(connect(addr)));
        if resp3 {
            raw.ask(&[b"HELLO", b"3"]);
        }
        raw
    }

    fn ask(&mut self, args: &[&[u8]]) -> Vec<u8> {
        self.0
            .get_mut()
            .write_all(&resp_command(args))
            .expect("send");
        let mut out = Vec::new();
        self.reply(&mut out);
        out
    }

    fn reply(&mut self, out: &mut Vec<u8>) {
        let start = out.len();
        self.0.read_until(b'\n', out).expect("a reply line");
        let line = &out[start..];
        let (tag, n) = (line[0], &line[1..line.len() - 2]);
        let n: i64 = std::str::from_utf8(n)
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let count = usize::try_from(n).unwrap_or(0);
        match tag {
            b'$' | b'=' | b'!' if n >= 0 => {
                let mut body = vec![0; count + 2];
                self.0.read_exact(&mut body).expect("a bulk body");
                out.extend_from_slice(&body);
            }
            b'*' | b'~' | b'>' => (0..count).for_each(|_| self.reply(out)),
            b'%' => (0..2 * count).for_each(|_| self.reply(out)),
            _ => {}
        }
    }
}

fn words(line: &str) -> Vec<&[u8]> {
    line.split(' ')
        .map(|w| if w == "''" { &b""[..] } else { w.as_bytes() })
        .collect()
}

/// The matrix the issue names: keys by index, range, keynum, keyword,
/// Redis's own finders, subcommands, and the error cases.
const MATRIX: &[&str] = &[
    "GET k",
    "SET k v",
    "SET k v GET",
    "SET k v EX 10 NX",
    "MSET a 1 b 2 c 3",
    "MGET a b c",
    "DEL a b c",
    "EVAL s 2 k1 k2 a1",
    "EVAL s 0",
    "EVAL s 5 k1",
    "ZUNIONSTORE d 2 a b WEIGHTS 1 2",
    "ZUNIONSTORE d 0 a",
    "XREAD COUNT 2 STREAMS s1 s2 0 0",
    "XREAD BLOCK 0 STREAMS s1 0",
    "XREADGROUP GROUP g c STREAMS s1 >",
    "SORT l BY w_* GET # STORE d",
    "SORT l LIMIT 0 1",
    "SORT_RO l",
    "MIGRATE h 6379 k 0 10",
    "MIGRATE h 6379 '' 0 10 COPY AUTH pw KEYS a b",
    "MIGRATE h 6379 k 0 10 KEYS a b",
    "LMOVE a b LEFT RIGHT",
    "BLMPOP 0 2 a b LEFT COUNT 3",
    "LMPOP 1 a RIGHT",
    "RENAME a b",
    "COPY a b DB 1 REPLACE",
    "OBJECT ENCODING k",
    "GEORADIUS g 0 0 1 km STORE d",
    "GEORADIUS g 0 0 1 km STOREDIST d",
    "BITFIELD k GET u8 0",
    "BITFIELD k SET u8 0 1",
    "BITOP AND d a b",
    "SINTERCARD 2 a b LIMIT 1",
    "FCALL f 1 k a",
    "XADD s * f v",
    "PING x",
    "CONFIG GET maxmemory",
    "CONFIG",
    "OBJECT NOPE k",
    "NOSUCHCOMMAND a b",
    "GET",
    "GET a b",
    "PUBLISH ch m",
];

#[test]
fn getkeys_and_getkeysandflags_are_byte_for_byte_redis_s() {
    let redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[RESP]);
    for resp3 in [false, true] {
        let mut theirs = Raw::open(redis.addr(), resp3);
        let mut ours = Raw::open(proxy.resp_addr(), resp3);
        for line in MATRIX {
            for sub in ["GETKEYS", "GETKEYSANDFLAGS"] {
                let mut args: Vec<&[u8]> = vec![b"COMMAND", sub.as_bytes()];
                args.extend(words(line));
                let want = theirs.ask(&args);
                let got = ours.ask(&args);
                assert_eq!(
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(&want),
                    "COMMAND {sub} {line} (RESP{})",
                    if resp3 { 3 } else { 2 }
                );
            }
        }
        // Too few arguments: the subcommand's own arity error.
        let args: &[&[u8]] = &[b"COMMAND", b"GETKEYS", b"GET"];
        assert_eq!(ours.ask(args), theirs.ask(args));
    }
}

/// The keywords a command's key specs search for (STORE, STREAMS, KEYS...),
/// from its `COMMAND` entry in RESP2 form.
fn keywords(entry: &redis::Value, out: &mut Vec<(String, Vec<u8>)>, name: &mut String) {
    let redis::Value::Array(items) = entry else {
        return;
    };
    if let (Some(redis::Value::BulkString(n)), Some(redis::Value::Int(_))) =
        (items.first(), items.get(1))
    {
        *name = String::from_utf8_lossy(n).to_lowercase();
    }
    if items.len() % 2 == 0 {
        for pair in items.chunks_exact(2) {
            if let [redis::Value::BulkString(key), redis::Value::BulkString(word)] = pair {
                if key == b"keyword" {
                    out.push((name.clone(), word.clone()));
                }
            }
        }
    }
    for item in items {
        let mut inner = name.clone();
        keywords(item, out, &mut inner);
    }
}

/// Sample requests for a command: its name (and subcommand), then
/// placeholder arguments, or numbers (so a key count finds keys), to its
/// arity and past it.
fn samples(name: &str, arity: i64) -> Vec<Vec<Vec<u8>>> {
    let head: Vec<Vec<u8>> = name.split('|').map(|w| w.as_bytes().to_vec()).collect();
    let min = usize::try_from(arity.unsigned_abs())
        .unwrap_or(1)
        .max(head.len());
    let mut out = Vec::new();
    for extra in [0, 3] {
        if arity > 0 && extra > 0 {
            continue;
        }
        for numbers in [false, true] {
            let mut argv = head.clone();
            for i in head.len()..min + extra {
                argv.push(match numbers {
                    true => b"2".to_vec(),
                    false => format!("a{i}").into_bytes(),
                });
            }
            out.push(argv);
        }
    }
    out
}

#[test]
fn every_command_redis_lists_has_the_keys_redis_gives() {
    let redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[RESP]);
    let reply: redis::Value = redis::cmd("COMMAND")
        .query(&mut redis.conn())
        .expect("COMMAND");
    let table = redis_proxy::commands::CommandTable::parse(&reply).expect("a table");
    let mut found = Vec::new();
    keywords(&reply, &mut found, &mut String::new());
    let mut theirs = Raw::open(redis.addr(), false);
    let mut ours = Raw::open(proxy.resp_addr(), false);
    let (mut asked, mut with_keys, mut mismatched) = (0, 0, Vec::new());
    let mut names: Vec<(&str, i64)> = table.iter().map(|c| (c.name.as_str(), c.arity)).collect();
    names.sort_unstable();
    for (name, arity) in names {
        let mut all = samples(name, arity);
        // And each keyword its specs search for, after the arity's
        // arguments, followed by four more.
        for (_, word) in found.iter().filter(|(of, _)| of == name) {
            let mut argv = all[0].clone();
            argv.push(word.clone());
            argv.extend((0..4).map(|i| format!("k{i}").into_bytes()));
            all.push(argv);
        }
        for argv in all {
            let mut args: Vec<&[u8]> = vec![b"COMMAND", b"GETKEYSANDFLAGS"];
            args.extend(argv.iter().map(Vec::as_slice));
            let want = theirs.ask(&args);
            let got = ours.ask(&args);
            asked += 1;
            if want.starts_with(b"*") && !want.starts_with(b"*0") {
                with_keys += 1;
            }
            if got != want {
                mismatched.push(format!(
                    "{}: redis {:?}, proxy {:?}",
                    String::from_utf8_lossy(&argv.join(&b' ')),
                    String::from_utf8_lossy(&want),
                    String::from_utf8_lossy(&got)
                ));
            }
        }
    }
    println!(
        "{} commands, {} keywords; {asked} sample requests, {with_keys} with keys in Redis's answer; {} differ",
        table.len(),
        found.len(),
        mismatched.len()
    );
    assert!(table.len() > 200, "redis-server 7 lists over 200 commands");
    assert!(
        mismatched.is_empty(),
        "differ from Redis:\n{}",
        mismatched.join("\n")
    );
}

#[test]
fn the_table_is_read_once_and_again_after_redis_comes_back() {
    let mut redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[RESP]);
    let args: &[&[u8]] = &[b"COMMAND", b"GETKEYS", b"GET", b"k"];
    let mut ours = Raw::open(proxy.resp_addr(), false);
    for _ in 0..5 {
        assert_eq!(ours.ask(args), b"*1\r\n$1\r\nk\r\n");
    }
    assert_eq!(redis.calls("command"), 1, "one COMMAND for five requests");
    // Another Redis may run other commands: once the link is back, the
    // table is read again, once.
    redis.restart();
    let mut ours = Raw::open(proxy.resp_addr(), false);
    eventually("the table read from the restarted Redis", || {
        assert_eq!(ours.ask(args), b"*1\r\n$1\r\nk\r\n");
        (redis.calls("command") == 1).then_some(())
    });
    for _ in 0..5 {
        assert_eq!(ours.ask(args), b"*1\r\n$1\r\nk\r\n");
    }
    assert_eq!(redis.calls("command"), 1);
}
