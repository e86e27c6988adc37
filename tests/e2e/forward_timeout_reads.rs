//! A RESP client's cached read that misses waits for Redis as a forwarded
//! command does (FORWARD_TIMEOUT_MS, off by default), however small
//! REDIS_TIMEOUT_MS is: while Redis runs another client's slow script, a
//! `GET`, an `MGET` or a `CACHE_COMMANDS` read (`HGETALL`,
//! `ZRANGEBYSCORE`: arq's worker polls its queue with the latter) is
//! answered with Redis's own reply once the script ends, in RESP2 and
//! RESP3, as a client straight at Redis is, not failed with the cache's
//! timeout (framework audit: arq's worker died of that error with the
//! defaults). HTTP keeps REDIS_TIMEOUT_MS (504); with FORWARD_TIMEOUT_MS
//! set the read fails in the forwarded commands' words.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use redis_proxy::clock::ManualClock;

use crate::coherence::cache;
use crate::common::busy::LoggedRedis;
use crate::common::wire::{loop_carries_writes, show, Wire};
use crate::common::InProcess;

const RESP: (&str, &str) = ("RESP_PORT", "auto");
/// Small, so that the cache's own read of each miss below times out well
/// within the script.
const REDIS_TIMEOUT: (&str, &str) = ("REDIS_TIMEOUT_MS", "250");
/// How long the script keeps Redis busy: long past REDIS_TIMEOUT_MS, so
/// every read below is sent, and its fill times out, while it runs (as in
/// `forward_timeout.rs`).
const BUSY: Duration = Duration::from_millis(3000);

/// The reads of client `n`, each a miss (nothing is cached yet), each on
/// a connection of its own (a connection waits for its read's reply
/// before the next) and of keys of its own (so each leads its own fill).
fn reads(n: u8) -> [Vec<String>; 4] {
    let words = |line: String| line.split(' ').map(str::to_owned).collect();
    [
        words(format!("GET s{n}")),
        words(format!("MGET m{n} absent{n} h{n}")),
        words(format!("HGETALL h{n}")),
        words(format!("ZRANGEBYSCORE z{n} -inf +inf WITHSCORES")),
    ]
}

/// The cache's own reads that failed so far: timed out, or found no
/// connection in time (a busy Redis does not answer a new connection's
/// handshake either).
fn fill_failures(proxy: &InProcess) -> f64 {
    let scrape = proxy.scrape();
    ["timeout", "unavailable"]
        .iter()
        .map(|result| {
            scrape.value(&format!(
                "redis_proxy_backend_requests_total{{result=\"{result}\"}}"
            ))
        })
        .sum()
}

/// Keys for clients 2 and 3, the command table read (a first cached read
/// reads it), and the event loop's connection to Redis for each protocol
/// open, before Redis is kept busy: a forwarded command that needs a new
/// connection then fails with its handshake (REDIS_TIMEOUT_MS), as it
/// would in any case (docs/forwarding.md, "Timeouts").
fn seed(logged: &LoggedRedis, proxy: &InProcess) {
    let redis = &logged.redis;
    for n in [2, 3] {
        let _: () = redis.cmd(&["SET", &format!("s{n}"), "v"]);
        let _: () = redis.cmd(&["SET", &format!("m{n}"), "w"]);
        let _: i64 = redis.cmd(&["HSET", &format!("h{n}"), "f", "1"]);
        let _: i64 = redis.cmd(&["ZADD", &format!("z{n}"), "1.5", "job"]);
    }
    let _: () = redis.cmd(&["SET", "http-key", "x"]);
    let mut warm = Wire::connect(proxy.resp_addr());
    assert_eq!(warm.call_args(&["HGETALL", "warm"]), b"*0\r\n");
    for protocol in [2, 3] {
        loop_carries_writes(redis, proxy.resp_addr(), protocol);
    }
}

/// Sends `read` without reading its reply.
fn send(wire: &mut Wire, read: &[String]) {
    let args: Vec<&str> = read.iter().map(String::as_str).collect();
    wire.send_args(&args);
}

/// arq's worker polling its queue (arq/worker.py: `zrangebyscore(queue,
/// min=float('-inf'), max=now, start=0, num=n, withscores=True)`) with
/// redis-py's defaults (RESP3 from redis-py 8, RESP2 before; a socket
/// timeout of 5 s in 8, none before): it connects, says so, and polls
/// once told to (Redis is busy by then).
const ARQ_POLL: &str = r#"
import sys, time, redis
r = redis.Redis(port=int(sys.argv[1]))
r.ping()
print('connected', flush=True)
sys.stdin.readline()
print(r.zrangebyscore('arq:queue', min=float('-inf'), max=time.time() * 1000,
                      start=0, num=10, withscores=True))
"#;

#[test]
fn an_arq_style_poll_through_redis_py_waits_out_a_busy_redis() {
    let logged = LoggedRedis::start();
    let proxy = InProcess::start(&logged.redis, &[RESP, REDIS_TIMEOUT]);
    let _: i64 = logged.redis.cmd(&["ZADD", "arq:queue", "1", "job-1"]);
    for protocol in [2, 3] {
        loop_carries_writes(&logged.redis, proxy.resp_addr(), protocol);
    }
    let port = proxy.resp_addr().port().to_string();
    let mut worker = Command::new("python3")
        .args(["-c", ARQ_POLL, &port])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 is installed");
    let mut out = BufReader::new(worker.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("the worker's first line");
    assert_eq!(line, "connected\n");
    let failures = fill_failures(&proxy);
    let busy = logged.busy_for(BUSY);
    let mut stdin = worker.stdin.take().expect("stdin");
    stdin.write_all(b"poll\n").expect("tell the worker to poll");
    let mut polled = String::new();
    out.read_to_string(&mut polled)
        .expect("the worker's output");
    let status = worker.wait().expect("the worker's end");
    busy.finish();
    let mut errors = String::new();
    if let Some(mut stderr) = worker.stderr.take() {
        stderr.read_to_string(&mut errors).expect("stderr");
    }
    assert!(status.success(), "the worker died: {errors}");
    assert_eq!(polled, "[(b'job-1', 1.0)]\n");
    // Its poll's fill failed: it was answered after the script, as at
    // Redis, not failed meanwhile.
    assert_eq!(fill_failures(&proxy) - failures, 1.0);
}

#[test]
fn resp_cached_reads_that_miss_wait_out_a_busy_redis_as_at_redis() {
    let logged = LoggedRedis::start();
    let proxy = InProcess::start(&logged.redis, &[RESP, REDIS_TIMEOUT]);
    seed(&logged, &proxy);
    let mut clients: Vec<(u8, Vec<String>, Wire)> = Vec::new();
    for protocol in [2, 3] {
        for read in reads(protocol) {
            let wire = Wire::open_with(proxy.resp_addr(), protocol);
            clients.push((protocol, read, wire));
        }
    }
    let failures = fill_failures(&proxy);
    let busy = logged.busy_for(BUSY);
    for (_, read, wire) in &mut clients {
        send(wire, read);
    }
    // HTTP keeps REDIS_TIMEOUT_MS: a miss fails while Redis is busy, 504
    // (no reply) or 503 (no connection: a new one's handshake timed out).
    let status = proxy.get_key("http-key").status;
    assert!(status == 504 || status == 503, "{status}");
    let replies: Vec<Vec<u8>> = clients.iter_mut().map(|(_, _, w)| w.reply()).collect();
    busy.finish();
    // Every read's fill failed (the HTTP one's too), yet each client has
    // Redis's own reply, byte for byte, as a client of its protocol
    // straight at Redis gets it.
    assert_eq!(fill_failures(&proxy) - failures, clients.len() as f64 + 1.0);
    for ((protocol, read, _), reply) in clients.iter().zip(&replies) {
        let mut direct = Wire::open_with(logged.redis.addr(), *protocol);
        send(&mut direct, read);
        let expected = direct.reply();
        assert_eq!(show(reply), show(&expected), "RESP{protocol} {read:?}");
    }
    // The connections go on, and the reads are cached as ever.
    let (_, _, wire) = &mut clients[0];
    assert_eq!(wire.call_args(&["GET", "s2"]), b"$1\r\nv\r\n");
    assert_eq!(proxy.get_key("http-key").text(), "x");
}

#[test]
fn with_forward_timeout_ms_set_a_cached_read_fails_in_the_forwarded_words() {
    let logged = LoggedRedis::start();
    let proxy = InProcess::start(
        &logged.redis,
        &[RESP, REDIS_TIMEOUT, ("FORWARD_TIMEOUT_MS", "100")],
    );
    seed(&logged, &proxy);
    let reads = reads(2);
    let mut clients: Vec<Wire> = reads
        .iter()
        .map(|_| Wire::connect(proxy.resp_addr()))
        .collect();
    let busy = logged.busy_for(BUSY);
    for (wire, read) in clients.iter_mut().zip(&reads) {
        send(wire, read);
    }
    let replies: Vec<String> = clients.iter_mut().map(|w| show(&w.reply())).collect();
    busy.finish();
    let timed_out =
        "-ERR backing Redis timed out: no reply within FORWARD_TIMEOUT_MS (100 ms)\\r\\n";
    for (reply, read) in replies.iter().zip(&reads) {
        assert_eq!(reply, timed_out, "{read:?}");
    }
    // The connections go on.
    assert_eq!(clients[0].call_args(&["GET", "s2"]), b"$1\r\nv\r\n");
}

/// Stale-if-error still answers first: a RESP read whose fill fails while
/// an entry is kept past its freshness (STALE_IF_ERROR_SECS) gets that
/// entry at once, as before reads were sent again, not Redis's newer value
/// once the script ends. A guard of what this change keeps (it passes on
/// the code before it too), red when stale-if-error is skipped.
#[test]
fn stale_if_error_answers_a_resp_read_before_it_is_sent_again() {
    let logged = LoggedRedis::start();
    let _: () = logged.redis.cmd(&["SET", "k", "old"]);
    let hand = ManualClock::new();
    let proxy = InProcess::start_on(
        &logged.redis,
        &[
            RESP,
            REDIS_TIMEOUT,
            // No link: the change below goes unannounced, so only the
            // value's source tells stale from Redis's.
            ("INVALIDATION", "off"),
            ("STALE_IF_ERROR_SECS", "600"),
        ],
        &hand,
    );
    cache(&proxy, "k", "old");
    // The forwarding path ready (see `seed`): sent again, the read would
    // be answered Redis's value.
    loop_carries_writes(&logged.redis, proxy.resp_addr(), 2);
    let _: () = logged.redis.cmd(&["SET", "k", "new"]);
    hand.advance(Duration::from_secs(120));
    let mut reader = Wire::connect(proxy.resp_addr());
    let busy = logged.busy_for(BUSY);
    let reply = reader.call_args(&["GET", "k"]);
    busy.finish();
    assert_eq!(show(&reply), show(b"$3\r\nold\r\n"));
    assert_eq!(proxy.metric("redis_proxy_stale_served_total"), 1.0);
    assert_eq!(reader.call_args(&["GET", "k"]), b"$3\r\nnew\r\n");
}
