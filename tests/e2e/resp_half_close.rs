//! A client that half-closes (`shutdown(SHUT_WR)`, as ioredis's
//! `disconnect()` and so every BullMQ `close()` does) reads through the
//! proxy exactly the bytes Redis would have sent before closing, and only
//! what Redis would have run has run. What Redis 7.0 does, seen with these
//! same pipelines sent to it directly:
//!
//! - It executes all it read before it reads the end, then closes: a
//!   pipeline is answered whole, a MULTI left open is discarded, a WATCH
//!   is simply dropped with the client.
//! - A blocking command that waits stops it: Redis processes none of a
//!   blocked client's further input, and on reading the end it frees the
//!   client, so nothing after the blocking command runs or is answered,
//!   and the blocking command itself gets no reply.
//!   One Redis answers at once does not: it is answered, and the rest runs.
//! - A subscriber is sent what it was owed (confirmations, a `PING`'s
//!   reply, in RESP3 the replies to its other commands), then closed.
//!
//! Before, the proxy cut the blocking command short without a reply but
//! then ran and answered what was queued behind it (`+OK +OK :3` for the
//! first case below): the client took a later reply for the blocking
//! command's, and writes ran that Redis never runs. And a subscriber whose
//! `SUBSCRIBE` and end came together was closed before Redis's
//! confirmation came back, with nothing written.

use std::net::SocketAddr;

use crate::common::wire::{info_clients, show, Wire};
use crate::common::{eventually, read_until_closed, resp_command, InProcess, RedisServer};

/// When the client half-closes.
#[derive(Clone, Copy, Debug)]
enum When {
    /// Right behind its pipeline, in the same breath.
    AtOnce,
    /// Once Redis counts its blocking command as blocked.
    Blocked,
}

/// The keys the cases write, read back from Redis after each run.
const KEYS: [&str; 4] = ["a", "b", "m", "w"];

fn start() -> (RedisServer, InProcess) {
    let redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[("RESP_PORT", "auto")]);
    (redis, proxy)
}

fn encode(commands: &[&[&str]]) -> Vec<u8> {
    let mut out = Vec::new();
    for args in commands {
        let args: Vec<&[u8]> = args.iter().map(|arg| arg.as_bytes()).collect();
        out.extend_from_slice(&resp_command(&args));
    }
    out
}

/// Sends `first` one command at a time (their replies read), then
/// `pipeline` in one write, then half-closes as `when` says. What the
/// client read after `first` until the close, and the keys at Redis.
fn half_close(
    redis: &RedisServer,
    addr: SocketAddr,
    first: &[&[&str]],
    pipeline: &[&[&str]],
    when: When,
) -> (String, Vec<Option<String>>) {
    redis.cmd::<String>(&["FLUSHALL"]);
    let mut wire = Wire::connect(addr);
    for args in first {
        let reply = wire.call_args(args);
        assert!(!reply.starts_with(b"-"), "{args:?}: {}", show(&reply));
    }
    wire.send(&encode(pipeline));
    if let When::Blocked = when {
        eventually("the client blocked at Redis", || {
            (info_clients(redis, "blocked_clients") == 1).then_some(())
        });
    }
    wire.stream
        .shutdown(std::net::Shutdown::Write)
        .expect("half-close");
    let read = show(&read_until_closed(&mut wire.stream));
    eventually("no client blocked at Redis", || {
        (info_clients(redis, "blocked_clients") == 0).then_some(())
    });
    let keys = KEYS
        .iter()
        .map(|key| redis.cmd::<Option<String>>(&["GET", key]))
        .collect();
    (read, keys)
}

/// Runs a case at Redis and through the proxy: the same bytes, the same
/// keys, and those are `expected` (so the test says what Redis does).
fn same_as_redis(
    (redis, proxy): &(RedisServer, InProcess),
    first: &[&[&str]],
    pipeline: &[&[&str]],
    when: When,
    expected: &[u8],
) {
    let direct = half_close(redis, redis.addr(), first, pipeline, when);
    let through = half_close(redis, proxy.resp_addr(), first, pipeline, when);
    assert_eq!(direct.0, show(expected), "Redis, {pipeline:?} {when:?}");
    assert_eq!(
        through, direct,
        "through the proxy vs Redis, {pipeline:?} {when:?}"
    );
    // Nothing is popped later for the client gone.
    assert_eq!(redis.cmd::<i64>(&["RPUSH", "l", "job"]), 1);
    assert_eq!(
        redis.cmd::<i64>(&["LLEN", "l"]),
        1,
        "popped for a gone client"
    );
}

#[test]
fn a_half_close_behind_a_blocked_command_runs_and_answers_nothing_after_it() {
    let both = start();
    let behind: [&[&str]; 2] = [&["SET", "b", "2"], &["INCR", "b"]];
    let blocking: [&[&str]; 3] = [
        &["BLPOP", "l", "0"],
        &["XREAD", "BLOCK", "0", "STREAMS", "s", "$"],
        &["WAIT", "1", "0"],
    ];
    for command in blocking {
        let pipeline = [&["SET", "a", "1"][..], command, behind[0], behind[1]];
        for when in [When::AtOnce, When::Blocked] {
            // As ioredis's reconnection test: a SELECT answered first.
            same_as_redis(&both, &[&["SELECT", "0"]], &pipeline, when, b"+OK\r\n");
        }
    }
    // The blocking command first: the end comes with no byte before it.
    let pipeline = [&["BLPOP", "l", "0"][..], behind[0], behind[1]];
    same_as_redis(&both, &[], &pipeline, When::AtOnce, b"");
    // On a client's own connection (a WATCH): the same.
    let pipeline = [
        &["WATCH", "w"][..],
        &["SET", "a", "1"],
        &["BLPOP", "l", "0"],
        behind[0],
    ];
    same_as_redis(&both, &[], &pipeline, When::Blocked, b"+OK\r\n+OK\r\n");
}

/// A blocking command Redis answers at once (the list has an element, the
/// key is of the wrong type, nothing to wait for) is answered, and what
/// follows it runs: Redis runs all it read before it reads the end. The
/// proxy passes the end on behind the command, so Redis decides; before,
/// the proxy had seen the end while the `RPUSH` was at Redis, and the
/// `BLPOP` was never sent.
#[test]
fn a_half_close_behind_a_blocking_command_redis_answers_at_once_runs_the_rest() {
    let both = start();
    let popped = "*2\r\n$1\r\nl\r\n$1\r\nx\r\n";
    let wrong = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
    let cases: [(&[&[&str]], String); 3] = [
        (
            &[
                &["RPUSH", "l", "x"],
                &["BLPOP", "l", "0"],
                &["SET", "b", "2"],
            ],
            format!(":1\r\n{popped}+OK\r\n"),
        ),
        (
            &[&["SET", "a", "1"], &["BLPOP", "a", "0"], &["SET", "b", "2"]],
            format!("+OK\r\n{wrong}+OK\r\n"),
        ),
        (
            &[&["SET", "a", "1"], &["WAIT", "0", "0"], &["SET", "b", "2"]],
            "+OK\r\n:0\r\n+OK\r\n".to_owned(),
        ),
    ];
    for (pipeline, expected) in cases {
        same_as_redis(&both, &[], pipeline, When::AtOnce, expected.as_bytes());
    }
}

#[test]
fn a_half_close_after_a_pipeline_multi_or_watch_is_answered_as_redis_answers() {
    let both = start();
    let cases: [(&[&[&str]], &[u8]); 4] = [
        (
            &[&["SET", "a", "1"], &["INCR", "a"], &["GET", "a"]],
            b"+OK\r\n:2\r\n$1\r\n2\r\n",
        ),
        // A transaction left open is discarded.
        (&[&["MULTI"], &["SET", "m", "1"]], b"+OK\r\n+QUEUED\r\n"),
        (
            &[&["MULTI"], &["SET", "m", "1"], &["EXEC"]],
            b"+OK\r\n+QUEUED\r\n*1\r\n+OK\r\n",
        ),
        (
            &[&["WATCH", "w"], &["SET", "w", "1"], &["GET", "w"]],
            b"+OK\r\n+OK\r\n$1\r\n1\r\n",
        ),
    ];
    for (pipeline, expected) in cases {
        same_as_redis(&both, &[], pipeline, When::AtOnce, expected);
    }
}

#[test]
fn a_subscriber_that_half_closes_is_sent_what_it_was_owed_first() {
    let both = start();
    let confirmed = "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n";
    let pipeline: [&[&str]; 2] = [&["SUBSCRIBE", "ch"], &["PING"]];
    let expected = format!("{confirmed}*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    same_as_redis(&both, &[], &pipeline, When::AtOnce, expected.as_bytes());
    // RESP3: its other commands take their usual paths meanwhile.
    let pipeline: [&[&str]; 4] = [
        &["SUBSCRIBE", "ch"],
        &["PING"],
        &["SET", "a", "1"],
        &["GET", "a"],
    ];
    let expected = format!(
        "{}+PONG\r\n+OK\r\n$1\r\n1\r\n",
        confirmed.replacen('*', ">", 1)
    );
    let hello: [&[&str]; 1] = [&["HELLO", "3"]];
    same_as_redis(&both, &hello, &pipeline, When::AtOnce, expected.as_bytes());
}
