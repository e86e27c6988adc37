//! Pub/Sub through the proxy (#21): a subscriber of the proxy gets exactly
//! the bytes a subscriber of Redis gets (confirmations, messages, RESP3
//! pushes, the RESP2 subscribed-mode errors), client libraries' own
//! Pub/Sub works unchanged, and a subscriber that does not read is closed
//! past the output limit without the proxy holding what it did not read.

use crate::common::wire::{show, Wire};
use crate::common::{eventually, read_until_closed, run_ok, InProcess, Proxy, RedisServer};

/// Redis, and the proxy in front of it with RESP on.
fn start() -> (RedisServer, InProcess) {
    let redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[("RESP_PORT", "auto")]);
    (redis, proxy)
}

/// Redis's subscribers of `channel` (`PUBSUB NUMSUB`).
pub(crate) fn subscribers(redis: &RedisServer, channel: &str) -> i64 {
    let numsub: (String, i64) = redis.cmd(&["PUBSUB", "NUMSUB", channel]);
    numsub.1
}

/// Reads one frame from each and checks they are the same bytes.
fn same_frame(direct: &mut Wire, through: &mut Wire, what: &str) -> Vec<u8> {
    let (theirs, ours) = (direct.reply(), through.reply());
    assert_eq!(show(&ours), show(&theirs), "{what}");
    ours
}

/// Sends `args` to both, and checks each of the `replies` frames is the
/// same bytes through the proxy as from Redis.
fn same(direct: &mut Wire, through: &mut Wire, args: &[&str], replies: usize) -> Vec<u8> {
    direct.send_args(args);
    through.send_args(args);
    let what = format!("{args:?}");
    (0..replies)
        .flat_map(|_| same_frame(direct, through, &what))
        .collect()
}

#[test]
fn subscribers_get_redis_own_bytes_in_resp2_and_resp3() {
    let (redis, proxy) = start();
    let mut publisher = Wire::connect(proxy.resp_addr());
    for protocol in [2, 3] {
        let mut direct = Wire::open_with(redis.addr(), protocol);
        let mut through = Wire::open_with(proxy.resp_addr(), protocol);
        let push = if protocol == 2 { "*" } else { ">" };
        let confirmed = same(
            &mut direct,
            &mut through,
            &["SUBSCRIBE", "news", "sport"],
            2,
        );
        let want = format!(
            "{push}3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n\
             {push}3\r\n$9\r\nsubscribe\r\n$5\r\nsport\r\n:2\r\n"
        );
        assert_eq!(show(&confirmed), show(want.as_bytes()));
        // Published through the proxy, and at Redis: both subscribers get
        // each message, the same bytes.
        assert_eq!(
            publisher.call_args(&["PUBLISH", "news", "via proxy"]),
            b":2\r\n"
        );
        let message = same_frame(&mut direct, &mut through, "message");
        let want = format!("{push}3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$9\r\nvia proxy\r\n");
        assert_eq!(show(&message), show(want.as_bytes()));
        assert_eq!(redis.cmd::<i64>(&["PUBLISH", "sport", "via redis"]), 2);
        same_frame(&mut direct, &mut through, "message published at Redis");
        // Patterns: the pattern's message comes beside the channel's.
        same(&mut direct, &mut through, &["PSUBSCRIBE", "n*"], 1);
        assert_eq!(
            publisher.call_args(&["PUBLISH", "news", "twice"]),
            b":4\r\n"
        );
        same_frame(&mut direct, &mut through, "message");
        let pmessage = same_frame(&mut direct, &mut through, "pmessage");
        assert!(show(&pmessage).contains("$8\\r\\npmessage\\r\\n$2\\r\\nn*\\r\\n$4\\r\\nnews"));
        // Shard channels.
        same(&mut direct, &mut through, &["SSUBSCRIBE", "shard"], 1);
        assert_eq!(publisher.call_args(&["SPUBLISH", "shard", "s"]), b":2\r\n");
        same_frame(&mut direct, &mut through, "smessage");
        // In subscribed mode: PING as Redis answers it there, and a GET is
        // Redis's own error in RESP2 (and allowed in RESP3).
        same(&mut direct, &mut through, &["PING"], 1);
        let get = same(&mut direct, &mut through, &["GET", "news"], 1);
        if protocol == 2 {
            assert!(
                get.starts_with(b"-ERR Can't execute 'get'"),
                "{}",
                show(&get)
            );
        }
        // Unsubscribing: each confirmation, counts going down.
        same(
            &mut direct,
            &mut through,
            &["UNSUBSCRIBE", "news", "sport"],
            2,
        );
        same(&mut direct, &mut through, &["PUNSUBSCRIBE", "n*"], 1);
        let last = same(&mut direct, &mut through, &["SUNSUBSCRIBE", "shard"], 1);
        assert!(last.ends_with(b":0\r\n"), "{}", show(&last));
        assert_eq!(redis.cmd::<i64>(&["PUBLISH", "news", "nobody"]), 0);
    }
}

#[test]
fn a_subscriber_that_leaves_releases_its_redis_connection() {
    let (redis, proxy) = start();
    let mut through = Wire::connect(proxy.resp_addr());
    through.call_args(&["SUBSCRIBE", "leaving"]);
    assert_eq!(subscribers(&redis, "leaving"), 1);
    drop(through);
    eventually("Redis to drop the subscription", || {
        (subscribers(&redis, "leaving") == 0).then_some(())
    });
}

/// Runs `script(subscriber_port, proxy_port, redis_port)` with `program`
/// subscribed at Redis and then through the proxy: both runs must print
/// the same. Returns what they printed.
fn same_output(
    program: &str,
    env: &[(&str, &str)],
    script: impl Fn(u16, u16, u16) -> String,
) -> String {
    let (redis, proxy) = start();
    let (proxy_port, redis_port) = (proxy.resp_addr().port(), redis.port());
    let flag = if program == "node" { "-e" } else { "-c" };
    let direct = run_ok(
        program,
        &[flag, &script(redis_port, proxy_port, redis_port)],
        env,
    );
    let through = run_ok(
        program,
        &[flag, &script(proxy_port, proxy_port, redis_port)],
        env,
    );
    assert_eq!(through, direct);
    through.trim().to_owned()
}

#[test]
fn redis_py_pubsub_get_message_loop_works_through_the_proxy() {
    for protocol in [2, 3] {
        let out = same_output("python3", &[], |sub, proxy, redis| {
            format!(
                "import time, redis\n\
                 sub = redis.Redis(port={sub}, protocol={protocol})\n\
                 publishers = [redis.Redis(port={proxy}), redis.Redis(port={redis})]\n\
                 ps = sub.pubsub()\n\
                 ps.subscribe('news')\n\
                 ps.psubscribe('n*')\n\
                 got = []\n\
                 deadline = time.time() + 10\n\
                 def drain(n):\n    while len(got) < n and time.time() < deadline:\n        \
                     m = ps.get_message(timeout=1.0)\n        \
                     if m: got.append('%s %s %s' % (m['type'], m['channel'].decode(), m['data']))\n\
                 drain(2)\n\
                 for i, p in enumerate(publishers): p.publish('news', 'hello %d' % i)\n\
                 drain(6)\n\
                 ps.unsubscribe('news')\n\
                 ps.punsubscribe('n*')\n\
                 drain(8)\n\
                 print('; '.join(got))\n"
            )
        });
        assert_eq!(
            out,
            "subscribe news 1; psubscribe n* 2; message news b'hello 0'; pmessage news b'hello 0'; \
             message news b'hello 1'; pmessage news b'hello 1'; unsubscribe news 1; punsubscribe n* 0",
            "RESP{protocol}"
        );
    }
}

#[test]
fn node_redis_subscribe_works_through_the_proxy() {
    // `make test` installs node-redis into target/node (scripts/lib.sh).
    let modules = concat!(env!("CARGO_MANIFEST_DIR"), "/target/node/node_modules");
    for protocol in [2, 3] {
        let out = same_output("node", &[("NODE_PATH", modules)], |sub, proxy, redis| {
            format!(
                "const {{ createClient }} = require('redis');\n\
                 (async () => {{\n\
                   const sub = createClient({{ socket: {{ port: {sub} }}, RESP: {protocol} }});\n\
                   const pubs = [{proxy}, {redis}].map(port => createClient({{ socket: {{ port }} }}));\n\
                   await sub.connect(); for (const p of pubs) await p.connect();\n\
                   const got = []; let done; const all = new Promise(r => done = r);\n\
                   const seen = (what) => {{ got.push(what); if (got.length === 4) done(); }};\n\
                   await sub.subscribe('news', (m, c) => seen(`message ${{c}} ${{m}}`));\n\
                   await sub.pSubscribe('n*', (m, c) => seen(`pmessage ${{c}} ${{m}}`));\n\
                   for (const [i, p] of pubs.entries()) await p.publish('news', `hello ${{i}}`);\n\
                   await all;\n\
                   await sub.unsubscribe('news'); await sub.pUnsubscribe('n*');\n\
                   console.log(got.join('; '));\n\
                   await sub.quit(); for (const p of pubs) await p.quit();\n\
                 }})().catch(e => {{ console.error(e); process.exit(1); }});\n"
            )
        });
        assert_eq!(
            out,
            "message news hello 0; pmessage news hello 0; message news hello 1; pmessage news hello 1",
            "RESP{protocol}"
        );
    }
}

#[test]
fn a_subscriber_that_does_not_read_is_closed_and_the_proxy_holds_little() {
    // The binary, for its resident memory.
    let redis = RedisServer::start();
    let proxy = Proxy::start(&redis, &[("RESP_PORT", "auto")]);
    let mut idle = Wire::connect(proxy.resp_addr());
    assert!(idle.call_args(&["SUBSCRIBE", "flood"]).ends_with(b":1\r\n"));
    let mut other = Wire::connect(proxy.resp_addr());
    let mut publisher = redis.conn();
    let message = vec![b'x'; 1 << 20];
    let before = proxy.rss_kib();
    let mut peak = before;
    // 1 MiB messages, at most 128, until Redis has no subscriber left: the
    // proxy closed the client (and so its Redis connection).
    let published = (1..=128).find(|i| {
        let receivers: i64 = redis::cmd("PUBLISH")
            .arg("flood")
            .arg(&message)
            .query(&mut publisher)
            .expect("PUBLISH");
        peak = peak.max(proxy.rss_kib());
        // Everyone else is still served meanwhile.
        let key = format!("k{i}");
        assert_eq!(other.call_args(&["SET", &key, "v"]), b"+OK\r\n");
        assert_eq!(other.call_args(&["GET", &key]), b"$1\r\nv\r\n");
        receivers == 0
    });
    // What it held for that client stayed about the 8 MiB limit (checked
    // first: a proxy that never closes it grows by all 128 MiB).
    let grown = (peak - before) / 1024;
    assert!(
        grown < 8 + 24,
        "RSS grew {grown} MiB ({published:?} MiB published)"
    );
    assert!(
        published.is_some(),
        "the proxy closes a subscriber that does not read"
    );
    // The client reads what was sent, then the close.
    read_until_closed(&mut idle.stream);
    eventually("the proxy to count one RESP connection", || {
        (proxy.metric("redis_proxy_connections{protocol=\"resp\"}") == 1.0).then_some(())
    });
    assert_eq!(other.call_args(&["PING"]), b"+PONG\r\n");
}

/// A subscribed client's writes take the usual path (`Service::forward`),
/// not its subscription connection: their keys are dropped from the cache.
/// INVALIDATION=off, so only that drop can make the next read fresh
/// (pubsub_gate.rs races readers against it).
#[test]
fn a_write_from_a_subscribed_client_drops_its_key_from_the_cache() {
    let redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[("RESP_PORT", "auto"), ("INVALIDATION", "off")]);
    for protocol in [3, 2] {
        let key = format!("k{protocol}");
        redis.set(&key, "old");
        assert_eq!(proxy.get_key(&key).text(), "old");
        let mut plain = Wire::connect(proxy.resp_addr());
        assert_eq!(plain.call_args(&["SET", &key, "mid"]), b"+OK\r\n");
        assert_eq!(proxy.get_key(&key).text(), "mid", "a plain client's write");
        let mut sub = Wire::open_with(proxy.resp_addr(), protocol);
        sub.call_args(&["SUBSCRIBE", "ch"]);
        if protocol == 2 {
            sub.call_args(&["UNSUBSCRIBE", "ch"]);
        }
        assert_eq!(sub.call_args(&["SET", &key, "new"]), b"+OK\r\n");
        assert_eq!(redis.cmd::<String>(&["GET", &key]), "new");
        assert_eq!(
            proxy.get_key(&key).text(),
            "new",
            "RESP{protocol} subscribed client's write"
        );
    }
}

/// `CLIENT LIST` shows a client subscribed at Redis as Redis shows its own
/// subscribers (`flags=P`, `cmd=subscribe`): redis-py's own tests find the
/// subscriber to kill that way.
#[test]
fn client_list_shows_a_subscriber_as_redis_does() {
    let redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[("RESP_PORT", "auto")]);
    let mut subscriber = Wire::connect(proxy.resp_addr());
    let id = String::from_utf8_lossy(&subscriber.call_args(&["CLIENT", "ID"])).into_owned();
    let id = id.trim_start_matches(':').trim_end().to_owned();
    subscriber.call_args(&["SUBSCRIBE", "news"]);
    let mut other = Wire::connect(proxy.resp_addr());
    let list = other.call_args(&["CLIENT", "LIST"]);
    let list = String::from_utf8_lossy(&list);
    let line = list
        .lines()
        .find(|line| line.starts_with(&format!("id={id} ")))
        .unwrap_or_else(|| panic!("client {id} in {list}"));
    assert!(line.contains(" flags=P "), "{line}");
    assert!(line.contains(" cmd=subscribe "), "{line}");
}
