//! `CLIENT TRACKING` for the proxy's own clients: their caches are told
//! when a key changes in Redis, as Redis itself tells its clients.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::common::{connect, read_until_closed, run_ok, Endpoints, InProcess, Proxy, RedisServer};

/// One RESP frame, as text good enough to compare: `+PONG`, `$v`,
/// `*[...]`, `>[...]`, `~[...]`, `_`.
pub(crate) fn frame(reader: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).expect("read a frame");
    let line = line.trim_end_matches("\r\n");
    let (tag, rest) = line.split_at(1);
    match tag {
        "$" => {
            let len: i64 = rest.parse().expect("a length");
            if len < 0 {
                return "nil".to_owned();
            }
            let mut bytes = vec![0u8; len as usize + 2];
            reader.read_exact(&mut bytes).expect("bulk");
            format!("${}", String::from_utf8_lossy(&bytes[..len as usize]))
        }
        "*" | ">" | "%" | "~" => {
            let n: i64 = rest.parse().expect("a count");
            if n < 0 {
                return "nil".to_owned();
            }
            let n = if tag == "%" { 2 * n } else { n };
            let items: Vec<String> = (0..n).map(|_| frame(reader)).collect();
            format!("{tag}[{}]", items.join(" "))
        }
        _ => line.to_owned(),
    }
}

/// A raw RESP connection.
pub(crate) struct Client(pub TcpStream, pub BufReader<TcpStream>);

impl Client {
    pub(crate) fn open(proxy: &Endpoints) -> Client {
        let stream = connect(proxy.resp_addr());
        let reader = BufReader::new(stream.try_clone().expect("clone"));
        Client(stream, reader)
    }

    pub(crate) fn send(&mut self, words: &[&str]) {
        let mut out = format!("*{}\r\n", words.len());
        for word in words {
            out.push_str(&format!("${}\r\n{word}\r\n", word.len()));
        }
        self.0.write_all(out.as_bytes()).expect("send");
    }

    pub(crate) fn call(&mut self, words: &[&str]) -> String {
        self.send(words);
        frame(&mut self.1)
    }

    pub(crate) fn next(&mut self) -> String {
        frame(&mut self.1)
    }

    /// For a default-mode tracking client: waits until the proxy has passed
    /// on every change Redis made before now. A write made just before can
    /// be announced on the proxy's link after this client reads the key,
    /// and so be told as a (correct, but here unwanted) spurious
    /// invalidation. Reads a fresh key, writes it in Redis and waits for its
    /// invalidation, which Redis, the link and the loop pass on after every
    /// earlier one; the fresh key is no longer tracked afterwards.
    pub(crate) fn catch_up(&mut self, redis: &RedisServer) {
        static SEQUENCE: AtomicUsize = AtomicUsize::new(0);
        let key = format!("caught-up:{}", SEQUENCE.fetch_add(1, Ordering::Relaxed));
        assert_eq!(self.call(&["GET", &key]), "_");
        redis.set(&key, "1");
        // A flush told before it (the link coming up announces one, and a
        // loaded machine may pass it on after this client connected) is
        // one of the earlier changes this waits past.
        let mut push = self.next();
        while push == ">[$invalidate _]" {
            push = self.next();
        }
        assert_eq!(push, format!(">[$invalidate *[${key}]]"));
    }
}

/// Redis and the proxy in this process, RESP on, the link up.
pub(crate) fn start(env: &[(&str, &str)]) -> (RedisServer, InProcess) {
    let redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &settings(env));
    proxy.wait_for_link("up");
    (redis, proxy)
}

/// [`start`] with the binary, for tests that read its /proc entries.
pub(crate) fn start_binary(env: &[(&str, &str)]) -> (RedisServer, Proxy) {
    let redis = RedisServer::start();
    let proxy = Proxy::start(&redis, &settings(env));
    proxy.wait_for_link("up");
    (redis, proxy)
}

/// RESP on, and a generous timeout: a link that flapped under a loaded
/// machine would push a flush these tests do not expect; then `env`.
fn settings<'a>(env: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut vars = vec![("RESP_PORT", "auto"), ("REDIS_TIMEOUT_MS", "10000")];
    vars.extend_from_slice(env);
    vars
}

/// A RESP3 connection with tracking on (`options` after `ON`).
pub(crate) fn tracking(proxy: &Endpoints, options: &[&str]) -> Client {
    let mut client = Client::open(proxy);
    assert!(client.call(&["HELLO", "3"]).starts_with("%["));
    let mut words = vec!["CLIENT", "TRACKING", "ON"];
    words.extend_from_slice(options);
    assert_eq!(client.call(&words), "+OK");
    client
}

#[test]
fn a_resp3_client_is_pushed_the_keys_it_read_when_they_change() {
    let (redis, proxy) = start(&[]);
    redis.set("k", "v");
    let mut client = tracking(&proxy, &[]);
    client.catch_up(&redis);
    assert_eq!(client.call(&["GET", "k"]), "$v");
    assert_eq!(client.call(&["GET", "absent"]), "_");
    redis.set("k", "w");
    assert_eq!(client.next(), ">[$invalidate *[$k]]");
    // Absent keys are tracked too, as Redis tracks them.
    redis.set("absent", "now here");
    assert_eq!(client.next(), ">[$invalidate *[$absent]]");
    // Told once: read again to be told again.
    redis.set("k", "x");
    assert_eq!(client.call(&["GET", "k"]), "$x");
    // Pushes come between whole replies of a pipeline.
    client.send(&["PING"]);
    redis.set("k", "y");
    for _ in 0..50 {
        client.send(&["PING"]);
    }
    let mut seen_push = false;
    let mut pongs = 0;
    while pongs < 51 {
        match client.next().as_str() {
            "+PONG" => pongs += 1,
            ">[$invalidate *[$k]]" => seen_push = true,
            other => panic!("not a whole reply or push: {other}"),
        }
    }
    if !seen_push {
        assert_eq!(client.next(), ">[$invalidate *[$k]]");
    }
    assert_eq!(client.call(&["CLIENT", "GETREDIR"]), ":0");
}

#[test]
fn a_resp2_client_redirects_to_a_connection_subscribed_to_the_invalidation_channel() {
    let (redis, proxy) = start(&[]);
    redis.set("k", "v");
    let mut target = Client::open(&proxy);
    let id = target.call(&["CLIENT", "ID"]);
    let id = id.trim_start_matches(':').to_owned();
    assert_eq!(
        target.call(&["SUBSCRIBE", "__redis__:invalidate"]),
        "*[$subscribe $__redis__:invalidate :1]"
    );
    let mut reader = Client::open(&proxy);
    assert_eq!(
        reader.call(&["CLIENT", "TRACKING", "ON", "REDIRECT", &id]),
        "+OK"
    );
    assert_eq!(reader.call(&["CLIENT", "GETREDIR"]), format!(":{id}"));
    assert_eq!(reader.call(&["GET", "k"]), "$v");
    redis.set("k", "w");
    assert_eq!(target.next(), "*[$message $__redis__:invalidate *[$k]]");
    assert_eq!(target.call(&["PING"]), "*[$pong $]");
}

#[test]
fn bcast_tells_of_every_key_under_the_prefixes_and_optin_only_of_reads_asked_for() {
    let (redis, proxy) = start(&[]);
    let mut bcast = tracking(&proxy, &["BCAST", "PREFIX", "user:"]);
    redis.set("other:1", "x");
    redis.set("user:1", "x");
    assert_eq!(bcast.next(), ">[$invalidate *[$user:1]]");

    let mut optin = tracking(&proxy, &["OPTIN"]);
    assert_eq!(optin.call(&["GET", "a"]), "_");
    assert_eq!(optin.call(&["CLIENT", "CACHING", "YES"]), "+OK");
    assert_eq!(optin.call(&["GET", "b"]), "_");
    redis.set("a", "1");
    redis.set("b", "1");
    assert_eq!(optin.next(), ">[$invalidate *[$b]]");
    assert_eq!(
        optin.call(&["CLIENT", "TRACKINGINFO"]),
        "%[$flags ~[$on $optin] $redirect :0 $prefixes *[]]"
    );
}

#[test]
fn every_tracking_client_is_told_to_flush_when_the_proxy_loses_its_link() {
    let (redis, proxy) = start(&[]);
    redis.set("k", "v");
    let mut client = tracking(&proxy, &[]);
    client.catch_up(&redis);
    assert_eq!(client.call(&["GET", "k"]), "$v");
    let link = redis.link_id();
    let _: () = redis.cmd(&["CLIENT", "KILL", "ID", &link]);
    assert_eq!(client.next(), ">[$invalidate _]");
    // And again once it is back: what was read meanwhile was not vouched for.
    proxy.wait_for_link("up");
    assert_eq!(client.next(), ">[$invalidate _]");
}

#[test]
fn a_full_tracking_table_invalidates_its_oldest_keys() {
    let (_redis, proxy) = start(&[("TRACKING_TABLE_MAX_KEYS", "3")]);
    let mut client = tracking(&proxy, &[]);
    for key in ["a", "b", "c", "d", "e"] {
        client.send(&["GET", key]);
    }
    let mut told = Vec::new();
    let mut replies = 0;
    while replies < 5 || told.len() < 2 {
        let frame = client.next();
        if frame.starts_with('>') {
            told.push(frame);
        } else {
            replies += 1;
        }
    }
    assert_eq!(told, [">[$invalidate *[$a]]", ">[$invalidate *[$b]]"]);
}

/// A client library with its own cache reads `k` a hundred times through
/// the proxy (started with `settings`), `k` is written in Redis, and the
/// client reads until it sees the new value: `script(proxy_port,
/// redis_port)` prints the first, the hundredth and the last value read.
/// The proxy must have served at most a few of those reads, and the client
/// must have seen the write.
fn client_cache_reads(
    settings: &[(&str, &str)],
    program: &str,
    env: &[(&str, &str)],
    script: fn(u16, u16) -> String,
) -> String {
    let (redis, proxy) = start(settings);
    redis.set("k", "v");
    let before = proxy.reads();
    let script = script(proxy.resp_addr().port(), redis.port());
    let flag = if program == "node" { "-e" } else { "-c" };
    let out = run_ok(program, &[flag, &script], env);
    let reads = proxy.reads() - before;
    assert!(reads <= 3.0, "the proxy served {reads} reads of 101");
    out.trim().to_owned()
}

#[test]
fn redis_py_serves_repeated_reads_from_its_own_cache_and_sees_writes() {
    // redis-py turns its cache on only for a Redis 7.4 or later, and the
    // proxy reports this machine's Redis's own version (7.0) unless told
    // otherwise: RESP_REPORTED_VERSION is the documented way.
    let reported = [("RESP_REPORTED_VERSION", "7.4.0")];
    let out = client_cache_reads(&reported, "python3", &[], |proxy, redis| {
        format!(
            "import time, redis\n\
             from redis.cache import CacheConfig\n\
             proxy = redis.Redis(port={proxy}, protocol=3, cache_config=CacheConfig())\n\
             direct = redis.Redis(port={redis})\n\
             first = [proxy.get('k') for _ in range(100)]\n\
             direct.set('k', 'w')\n\
             deadline = time.time() + 10\n\
             while proxy.get('k') != b'w' and time.time() < deadline:\n    time.sleep(0.001)\n\
             print(first[0], first[-1], proxy.get('k'))\n"
        )
    });
    assert_eq!(out, "b'v' b'v' b'w'");
}

#[test]
fn node_redis_serves_repeated_reads_from_its_own_cache_and_sees_writes() {
    // `make test` installs node-redis into target/node (scripts/lib.sh).
    let modules = concat!(env!("CARGO_MANIFEST_DIR"), "/target/node/node_modules");
    // node-redis asks for no version: the proxy's default serves it.
    let out = client_cache_reads(&[], "node", &[("NODE_PATH", modules)], |proxy, redis| {
        format!(
            "const {{ createClient }} = require('redis');\n\
             (async () => {{\n\
               const proxy = createClient({{ socket: {{ port: {proxy} }}, RESP: 3, clientSideCache: {{ ttl: 0, maxEntries: 0 }} }});\n\
               const direct = createClient({{ socket: {{ port: {redis} }} }});\n\
               await proxy.connect(); await direct.connect();\n\
               const first = [];\n\
               for (let i = 0; i < 100; i++) first.push(await proxy.get('k'));\n\
               await direct.set('k', 'w');\n\
               const deadline = Date.now() + 10000;\n\
               let now = await proxy.get('k');\n\
               while (now !== 'w' && Date.now() < deadline) {{ await new Promise(r => setTimeout(r, 1)); now = await proxy.get('k'); }}\n\
               console.log(first[0], first[99], now);\n\
               await proxy.quit(); await direct.quit();\n\
             }})().catch(e => {{ console.error(e); process.exit(1); }});\n"
        )
    });
    assert_eq!(out, "v v w");
}

#[test]
fn a_client_whose_redirect_target_closes_is_told_the_redirect_broke() {
    let (_redis, proxy) = start(&[]);
    // Subscribed here only, and then at Redis too (the channel moves there).
    for also in [None, Some("other")] {
        let mut target = Client::open(&proxy);
        let id = target
            .call(&["CLIENT", "ID"])
            .trim_start_matches(':')
            .to_owned();
        target.call(&["SUBSCRIBE", "__redis__:invalidate"]);
        if let Some(channel) = also {
            assert_eq!(
                target.call(&["SUBSCRIBE", channel]),
                format!("*[$subscribe ${channel} :2]")
            );
        }
        let mut client = tracking(&proxy, &["REDIRECT", &id]);
        drop(target);
        assert_eq!(client.next(), format!(">[$tracking-redir-broken :{id}]"));
    }
}

#[test]
fn a_tracking_client_that_does_not_read_its_pushes_is_closed_not_buffered_for() {
    let (redis, proxy) = start(&[]);
    let client = tracking(&proxy, &["BCAST"]);
    // Some 40 MB of invalidations for a client that reads none of them.
    let mut conn = redis.conn();
    let name = "k".repeat(200);
    for batch in 0..15 {
        let mut pipe = redis::pipe();
        for i in 0..10_000 {
            pipe.cmd("SET")
                .arg(format!("{name}{batch}:{i}"))
                .arg(1)
                .ignore();
        }
        let _: () = pipe.query(&mut conn).expect("writes");
    }
    // The proxy closed it: what it had sent can be read, then the end.
    let mut stream = client.0;
    read_until_closed(&mut stream);
}
