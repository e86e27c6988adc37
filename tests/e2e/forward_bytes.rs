//! Forwarding (issue 21) is transparent: the same bytes sent to the proxy
//! and to redis-server get the same bytes back, for commands of every type,
//! errors included, in RESP2 and in RESP3 (after `HELLO 3`), one by one and
//! pipelined; and real client libraries (redis-py, node-redis) get the
//! same answers from the proxy as from Redis. RESP_FORWARD=reads passes
//! only read-only commands, and =off answers as before forwarding existed.

use std::net::SocketAddr;

use crate::common::resp_wire::{encode_line, show, Wire};
use crate::common::{run_ok, InProcess, RedisServer};

const RESP: (&str, &str) = ("RESP_PORT", "auto");

/// One command a line (see `resp_wire::words`). Replies must not depend on
/// time or chance: stream IDs are explicit, no PTTL, no RANDOMKEY.
const MATRIX: &[&str] = &[
    // Strings.
    "SET s hello",
    "GET s",
    "GETRANGE s 1 3",
    "APPEND s \" world\"",
    "GET s",
    "GETRANGE s 0 -1",
    "STRLEN s",
    "SETNX s other",
    "SET f 10.5",
    "INCRBYFLOAT f 0.1",
    "INCRBYFLOAT f 5.0e3",
    "GET f",
    "MSET a 1 b 2",
    "MGET a nothing b",
    "INCR a",
    "SETRANGE big 1000000 x",
    "GET big",
    "GETRANGE big 0 -1",
    // Hashes.
    "HSET h name ann age 30",
    "HGETALL h",
    "HINCRBYFLOAT h age 1.5",
    "HGET h age",
    "HMGET h name missing",
    "HGET h missing",
    // Lists.
    "LPUSH l c b a b",
    "LRANGE l 0 -1",
    "LPOS l b",
    "LPOS l b COUNT 0",
    "LPOS l z",
    "LPOP nolist 2",
    "SORT l ALPHA",
    "EVAL \"for i=1,5000 do redis.call('RPUSH', KEYS[1], i) end return redis.call('LLEN', KEYS[1])\" 1 long",
    "LRANGE long 0 -1",
    // Sets.
    "SADD s1 a b c 1 2",
    "SADD s2 b c d",
    "SADD n 3 1 2",
    "SMEMBERS s1",
    "SMEMBERS n",
    "SINTER s1 s2",
    "SISMEMBER s1 a",
    // Sorted sets: scores are doubles in RESP3.
    "ZADD z 1.5 a 2 b 3.25 c",
    "ZRANGE z 0 -1 WITHSCORES",
    "ZSCORE z a",
    "ZSCORE z nobody",
    "ZINCRBY z 0.1 a",
    "ZRANGEBYSCORE z -inf +inf WITHSCORES",
    "ZMSCORE z a nobody",
    "ZPOPMIN z",
    // Streams.
    "XADD st 1-1 f v",
    "XADD st 2-1 f w g x",
    "XRANGE st - +",
    "XLEN st",
    // Bitmaps, HyperLogLog, geo.
    "SETBIT bm 7 1",
    "SETBIT bm 100 1",
    "BITCOUNT bm",
    "BITPOS bm 1",
    "GET bm",
    "PFADD hll a b c d",
    "PFCOUNT hll",
    "PFADD hll a",
    "GEOADD geo 13.361389 38.115556 Palermo 15.087269 37.502669 Catania",
    "GEODIST geo Palermo Catania km",
    "GEOPOS geo Palermo nowhere",
    "GEOSEARCH geo FROMLONLAT 15 37 BYRADIUS 200 km ASC WITHDIST WITHCOORD",
    // Scripts: nested tables, RESP3 types, errors.
    "EVAL \"return {1,'two',{3,{'four',5.5}},redis.status_reply('FINE'),false}\" 0",
    "EVAL \"redis.setresp(3); return {double=3.5}\" 0",
    "EVAL \"redis.setresp(3); return redis.call('HGETALL', KEYS[1])\" 1 h",
    "EVAL \"return redis.call('HGETALL', KEYS[1])\" 1 h",
    "EVAL \"return redis.error_reply('MYERR custom')\" 0",
    "EVAL \"return nil\" 0",
    "EVAL \"return nosuchglobal\" 0",
    // Keyspace.
    "OBJECT ENCODING l",
    "OBJECT ENCODING s1",
    "OBJECT ENCODING n",
    "OBJECT ENCODING missing",
    "EXPIRE s 100",
    "TTL s",
    "TTL nokey",
    "TTL h",
    "PERSIST s",
    "TYPE s",
    "TYPE h",
    "TYPE z",
    "TYPE st",
    "TYPE nokey",
    "EXISTS a b nokey",
    "DBSIZE",
    // Errors, and nil bulk against nil array.
    "LPUSH s x",
    "GET h",
    "HSET h",
    "GET",
    "NOSUCHCOMMAND a b",
    "SET s v EX",
    "SET s v EX soon",
    "INCR s",
    "INCRBYFLOAT s 1",
    "ZADD z XX NX 1 a",
    "ZADD z nan x",
    "XADD st 1-0 f v",
    "GET nokey",
    "HGET h none",
    "LPOP l 0",
    "DEL s h l nokey",
    "GET s",
];

/// Runs [`MATRIX`] against `addr`, one command at a time or all in one
/// write, after `HELLO 3` when `resp3`: one reply per command.
fn run(addr: SocketAddr, resp3: bool, pipelined: bool) -> Vec<Vec<u8>> {
    let mut wire = Wire::connect(addr);
    if resp3 {
        // The proxy's HELLO map is its own (server, version): not compared.
        assert!(wire.call("HELLO 3").starts_with(b"%"));
    }
    if !pipelined {
        return MATRIX.iter().map(|line| wire.call(line)).collect();
    }
    let all: Vec<u8> = MATRIX.iter().flat_map(|line| encode_line(line)).collect();
    wire.send(&all);
    wire.replies(MATRIX.len())
}

/// Every command whose replies differ, with both replies.
fn differences(redis: &[Vec<u8>], proxy: &[Vec<u8>]) -> Vec<String> {
    MATRIX
        .iter()
        .zip(redis.iter().zip(proxy))
        .filter(|(_, (a, b))| a != b)
        .map(|(line, (a, b))| format!("{line}\n  redis: {}\n  proxy: {}", show(a), show(b)))
        .collect()
}

/// The matrix through the proxy (one by one, then pipelined), then
/// directly, each on an emptied Redis; every reply byte for byte the same.
fn same_bytes_as_redis(resp3: bool) {
    let redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[RESP]);
    let flush = |addr| assert_eq!(Wire::connect(addr).call("FLUSHALL"), b"+OK\r\n");
    flush(proxy.resp_addr());
    let one_by_one = run(proxy.resp_addr(), resp3, false);
    flush(proxy.resp_addr());
    let pipelined = run(proxy.resp_addr(), resp3, true);
    flush(redis.addr());
    let direct = run(redis.addr(), resp3, false);

    // The matrix means something: errors, nils and (in RESP3) RESP3 types.
    let starts = |prefix: &[u8]| direct.iter().filter(|r| r.starts_with(prefix)).count();
    assert!(starts(b"-") >= 14, "errors: {}", starts(b"-"));
    if resp3 {
        for kind in [b",", b"%", b"~", b"_"] {
            assert!(starts(kind) > 0, "no {} reply", show(kind));
        }
    } else {
        assert!(starts(b"$-1\r\n") > 0 && starts(b"*-1\r\n") > 0);
    }
    let mut wrong = differences(&direct, &one_by_one);
    wrong.extend(
        differences(&direct, &pipelined)
            .into_iter()
            .map(|d| format!("(pipelined) {d}")),
    );
    assert!(
        wrong.is_empty(),
        "{} of {} replies differ from Redis's:\n{}",
        wrong.len(),
        2 * MATRIX.len(),
        wrong.join("\n")
    );
}

#[test]
fn forwarded_replies_are_redis_bytes_in_resp2() {
    same_bytes_as_redis(false);
}

#[test]
fn forwarded_replies_are_redis_bytes_in_resp3() {
    same_bytes_as_redis(true);
}

#[test]
fn inline_commands_are_forwarded_and_answered_as_redis_answers_them() {
    let redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[RESP]);
    let inline =
        b"SET inl v\r\nGET inl\r\nINCR ctr\r\nLPUSH l a b\r\nLRANGE l 0 -1\r\nNOSUCH x\r\n";
    let run = |addr| {
        assert_eq!(Wire::connect(addr).call("FLUSHALL"), b"+OK\r\n");
        let mut wire = Wire::connect(addr);
        wire.send(inline);
        wire.replies(6).iter().map(|r| show(r)).collect::<Vec<_>>()
    };
    let ours = run(proxy.resp_addr());
    assert_eq!(ours, run(redis.addr()));
    assert_eq!(ours[4], "*2\\r\\n$1\\r\\nb\\r\\n$1\\r\\na\\r\\n");
}

#[test]
fn resp_forward_reads_passes_only_read_only_commands() {
    let redis = RedisServer::start();
    let _: i64 = redis.cmd(&["RPUSH", "l", "a", "b"]);
    let proxy = InProcess::start(&redis, &[RESP, ("RESP_FORWARD", "reads")]);
    let mut wire = Wire::connect(proxy.resp_addr());
    let mut direct = Wire::connect(redis.addr());
    for write in ["SET a b", "LPUSH l c", "EVAL \"return 1\" 0", "FLUSHALL"] {
        let reply = wire.call_text(write);
        assert!(
            reply.starts_with("-ERR") && reply.contains("RESP_FORWARD=reads"),
            "{write}: {reply}"
        );
    }
    for read in [
        "LRANGE l 0 -1",
        "DBSIZE",
        "TYPE l",
        "EXISTS l a",
        "EVAL_RO \"return redis.call('LLEN', KEYS[1])\" 1 l",
    ] {
        assert_eq!(wire.call(read), direct.call(read), "{read}");
    }
    // Nothing was written, and the connection still serves.
    assert_eq!(
        direct.call("LRANGE l 0 -1"),
        b"*2\r\n$1\r\na\r\n$1\r\nb\r\n"
    );
    assert_eq!(direct.call("EXISTS a"), b":0\r\n");
    assert_eq!(wire.call("PING"), b"+PONG\r\n");
}

#[test]
fn resp_forward_off_answers_unknown_command_as_before() {
    let redis = RedisServer::start();
    let _: i64 = redis.cmd(&["RPUSH", "l", "a"]);
    let proxy = InProcess::start(&redis, &[RESP, ("RESP_FORWARD", "off")]);
    let mut wire = Wire::connect(proxy.resp_addr());
    for (line, name) in [
        ("SET a b", "SET"),
        ("LRANGE l 0 -1", "LRANGE"),
        ("DBSIZE", "DBSIZE"),
    ] {
        let reply = wire.call_text(line);
        assert!(
            reply.starts_with(&format!("-ERR unknown command '{name}'")),
            "{line}: {reply}"
        );
    }
    assert_eq!(redis.calls("set"), 0);
    assert_eq!(redis.calls("lrange"), 0);
    assert_eq!(wire.call("GET nokey"), b"$-1\r\n");
}

/// Runs `script` (given a port) with `program` against the proxy and then
/// against Redis directly, each on an emptied Redis: both outputs.
fn against_both(
    program: &str,
    env: &[(&str, &str)],
    script: fn(u16) -> String,
) -> (String, String) {
    let redis = RedisServer::start();
    // No invalidation link: a write read back in a script is the proxy's
    // doing alone.
    let proxy = InProcess::start(&redis, &[RESP, ("INVALIDATION", "off")]);
    let flag = if program == "node" { "-e" } else { "-c" };
    let run = |port: u16| {
        assert_eq!(
            Wire::connect(proxy.resp_addr()).call("FLUSHALL"),
            b"+OK\r\n"
        );
        run_ok(program, &[flag, &script(port)], env)
            .trim()
            .to_owned()
    };
    let through_proxy = run(proxy.resp_addr().port());
    let direct = run(redis.port());
    (through_proxy, direct)
}

#[test]
fn redis_py_pipeline_without_transaction_answers_as_redis_does() {
    let (proxy, direct) = against_both("python3", &[], |port| {
        format!(
            "import redis\n\
             for protocol in (2, 3):\n\
             \x20   r = redis.Redis(port={port}, protocol=protocol)\n\
             \x20   r.set('warm', 'w0'); r.get('warm'); r.get('warm')\n\
             \x20   p = r.pipeline(transaction=False)\n\
             \x20   p.set('a', 1).incr('a').get('a').set('warm', 'w1').get('warm')\n\
             \x20   p.hset('h', mapping={{'f': 'v', 'g': '2'}}).hgetall('h').hincrbyfloat('h', 'g', 0.5)\n\
             \x20   p.lpush('l', 1, 2, 3).lrange('l', 0, -1).zadd('z', {{'m': 1.5}}).zscore('z', 'm')\n\
             \x20   p.get('nokey').lpush('a', 'x').delete('a', 'warm').get('a').get('warm').exists('h', 'l')\n\
             \x20   print(protocol, [('error ' + str(x)) if isinstance(x, Exception) else repr(x) for x in p.execute(raise_on_error=False)])\n\
             \x20   r.flushall()\n"
        )
    });
    assert_eq!(proxy, direct);
    // The write in the pipeline was read back in it, past the warm cache.
    assert!(proxy.contains("\"b'w1'\""), "{proxy}");
    assert!(proxy.contains("WRONGTYPE"), "{proxy}");
    assert_eq!(proxy.lines().count(), 2, "{proxy}");
}

#[test]
fn node_redis_plain_commands_answer_as_redis_does() {
    let modules = concat!(env!("CARGO_MANIFEST_DIR"), "/target/node/node_modules");
    let (proxy, direct) = against_both("node", &[("NODE_PATH", modules)], |port| {
        format!(
            "const {{ createClient }} = require('redis');\n\
             (async () => {{\n\
               for (const RESP of [2, 3]) {{\n\
                 const c = createClient({{ socket: {{ port: {port} }}, RESP }});\n\
                 await c.connect();\n\
                 const out = [RESP];\n\
                 await c.set('warm', 'w0'); out.push(await c.get('warm'), await c.get('warm'));\n\
                 out.push(await c.set('warm', 'w1'), await c.get('warm'));\n\
                 out.push(await c.incr('n'), await c.incrByFloat('n', 1.5));\n\
                 out.push(await c.hSet('h', {{ f: 'v', g: '2' }}), {{ ...(await c.hGetAll('h')) }});\n\
                 out.push(await c.lPush('l', ['1', '2']), await c.lRange('l', 0, -1));\n\
                 out.push(await c.sAdd('s', ['a']), await c.sMembers('s'));\n\
                 out.push(await c.zAdd('z', {{ score: 1.5, value: 'm' }}), await c.zScore('z', 'm'));\n\
                 out.push(await c.expire('h', 100), await c.ttl('h'), await c.type('l'));\n\
                 out.push(await c.del(['warm']), await c.get('warm'), await c.dbSize());\n\
                 try {{ await c.lPush('h', 'x'); }} catch (e) {{ out.push(e.message); }}\n\
                 console.log(JSON.stringify(out));\n\
                 await c.flushAll(); await c.quit();\n\
               }}\n\
             }})().catch(e => {{ console.error(e); process.exit(1); }});\n"
        )
    });
    assert_eq!(proxy, direct);
    assert!(proxy.contains("\"w0\",\"w0\",\"OK\",\"w1\""), "{proxy}");
    assert!(proxy.contains("WRONGTYPE"), "{proxy}");
    assert_eq!(proxy.lines().count(), 2, "{proxy}");
}
