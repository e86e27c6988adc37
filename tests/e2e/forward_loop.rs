//! Forwarded batches the RESP event loop sends on its own Redis
//! connections (issue #21's throughput; docs/forwarding.md, "On the event
//! loop"): they need no worker, many clients' writes share one connection,
//! and a connection that fails or stays silent past FORWARD_TIMEOUT_MS fails
//! the batches pending on it as the workers' path does, after which the
//! clients carry on.

use std::io::Read;
use std::thread;
use std::time::Duration;

use crate::common::info::{client_lines, info_number};
use crate::common::relay::Relay;
use crate::common::resp_wire::{show, Wire};
use crate::common::{eventually, InProcess, RedisServer};

const RESP: (&str, &str) = ("RESP_PORT", "auto");
/// No invalidation link: nothing at Redis but the forwarding connections
/// and the read path's.
const NO_LINK: (&str, &str) = ("INVALIDATION", "off");
/// The client name the event loop's connections carry at Redis.
const LOOP_NAME: &str = "name=redis-proxy-loop ";

/// Redis's `CLIENT LIST` lines of the event loop's connections, asked on
/// `direct` (a connection of the test's own).
fn loop_connections(direct: &mut Wire) -> Vec<String> {
    client_lines(&direct.call_text("CLIENT LIST"), |line| {
        line.contains(LOOP_NAME)
    })
}

/// Sends SETs through `client` until one has travelled on an event-loop
/// connection (Redis shows it as that connection's last command): from
/// then on such batches take that way.
fn warm(redis: &RedisServer, client: &mut Wire) {
    let mut direct = Wire::connect(redis.addr());
    eventually("a SET to travel on the event loop's connection", || {
        assert_eq!(client.call("SET warm 1"), b"+OK\r\n");
        loop_connections(&mut direct)
            .iter()
            .any(|line| line.contains(" cmd=set "))
            .then_some(())
    });
}

#[test]
fn a_forwarded_write_is_answered_while_the_only_worker_waits_on_redis() {
    let redis = RedisServer::start();
    let relay = Relay::start(redis.addr(), Duration::ZERO);
    let proxy = InProcess::start_at(
        &relay.url(),
        &[
            RESP,
            NO_LINK,
            ("WORKERS", "1"),
            ("REDIS_TIMEOUT_MS", "20000"),
        ],
    );
    // The read path's connection is open (held below); the forwarding
    // ones, opened from now on, pass.
    assert_eq!(proxy.get_key("other").status, 404);
    relay.exempt_new_connections();
    let mut writer = Wire::connect(proxy.resp_addr());
    warm(&redis, &mut writer);
    relay.hold();
    // A miss: the only worker fetches it, and waits at the relay.
    let mut reader = Wire::connect(proxy.resp_addr());
    reader.send(b"GET missing\r\n");
    eventually("the miss to wait at the relay", || {
        (relay.in_flight() == 1).then_some(())
    });
    // No worker is free: the write goes all the same.
    assert_eq!(show(&writer.call("SET b 2")), "+OK\\r\\n");
    assert_eq!(show(&writer.call("INCR n")), ":1\\r\\n");
    assert_eq!(redis.cmd::<String>(&["GET", "b"]), "2");
    relay.release();
    assert_eq!(show(&reader.reply()), "$-1\\r\\n");
}

#[test]
fn many_clients_writes_share_one_redis_connection() {
    let redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[RESP, NO_LINK, ("WORKERS", "16")]);
    let mut first = Wire::connect(proxy.resp_addr());
    warm(&redis, &mut first);
    let mut direct = Wire::connect(redis.addr());
    let opened_before = info_number(&direct.call_text("INFO"), "total_connections_received");
    let resp = proxy.resp_addr();
    let clients: Vec<_> = (0..50)
        .map(|c| {
            thread::spawn(move || {
                let mut wire = Wire::connect(resp);
                for round in 0..20 {
                    // One command, then a pipeline of 16.
                    let reply = wire.call(&format!("SET c{c} {round}"));
                    assert_eq!(reply, b"+OK\r\n", "{}", show(&reply));
                    let mut pipeline = Vec::new();
                    for i in 0..16 {
                        pipeline.extend_from_slice(format!("INCR c{c}:n{i}\r\n").as_bytes());
                    }
                    wire.send(&pipeline);
                    for i in 0..16 {
                        let want = format!(":{}\r\n", round + 1);
                        let reply = wire.reply();
                        assert_eq!(show(&reply), show(want.as_bytes()), "INCR c{c}:n{i}");
                    }
                }
            })
        })
        .collect();
    for client in clients {
        client.join().expect("a client");
    }
    // Redis was connected to by nobody new: all went on the connections
    // the proxy had open (the event loop's one, per protocol and database).
    let opened_after = info_number(&direct.call_text("INFO"), "total_connections_received");
    assert_eq!(
        opened_after - opened_before,
        0,
        "connections opened to Redis during 50 clients' writes"
    );
    assert_eq!(loop_connections(&mut direct).len(), 1);
    assert_eq!(redis.cmd::<String>(&["GET", "c7:n3"]), "20");
}

#[test]
fn batches_pending_when_redis_dies_get_errors_and_the_next_command_recovers() {
    let mut redis = RedisServer::start();
    let relay = Relay::start(redis.addr(), Duration::ZERO);
    let proxy = InProcess::start_at(
        &relay.url(),
        &[RESP, NO_LINK, ("REDIS_TIMEOUT_MS", "20000")],
    );
    let mut clients: Vec<Wire> = (0..5).map(|_| Wire::connect(proxy.resp_addr())).collect();
    warm(&redis, &mut clients[0]);
    relay.hold();
    for (i, client) in clients.iter_mut().enumerate() {
        client.send(format!("SET x{i} v\r\nINCR y{i}\r\n").as_bytes());
    }
    // Every client's batch is out: counted in flight until answered.
    eventually("five batches in flight", || {
        // (The scrape itself is one.)
        (proxy.metric("redis_proxy_requests_in_flight") >= 6.0).then_some(())
    });
    redis.stop();
    relay.release();
    for client in &mut clients {
        for _ in 0..2 {
            let reply = client.reply();
            assert!(
                reply.starts_with(b"-ERR backing Redis unavailable: "),
                "{}",
                show(&reply)
            );
        }
    }
    redis.restart();
    for (i, client) in clients.iter_mut().enumerate() {
        assert_eq!(show(&client.call(&format!("SET x{i} w"))), "+OK\\r\\n");
        assert_eq!(show(&client.call(&format!("GET x{i}"))), "$1\\r\\nw\\r\\n");
    }
}

#[test]
fn a_batch_unanswered_past_forward_timeout_fails_and_its_late_reply_answers_nothing() {
    let redis = RedisServer::start();
    let relay = Relay::start(redis.addr(), Duration::ZERO);
    let proxy = InProcess::start_at(
        &relay.url(),
        &[RESP, NO_LINK, ("FORWARD_TIMEOUT_MS", "2000")],
    );
    let mut client = Wire::connect(proxy.resp_addr());
    warm(&redis, &mut client);
    relay.hold_replies();
    let reply = client.call("INCR n");
    assert_eq!(
        show(&reply),
        "-ERR backing Redis timed out: no reply within FORWARD_TIMEOUT_MS (2000 ms)\\r\\n"
    );
    // Redis ran it; its reply, late, must answer nothing that follows.
    eventually("the INCR to have run", || {
        (redis.cmd::<Option<i64>>(&["GET", "n"]) == Some(1)).then_some(())
    });
    relay.release_replies();
    assert_eq!(show(&client.call("INCR n")), ":2\\r\\n");
    assert_eq!(show(&client.call("INCR n")), ":3\\r\\n");
    assert_eq!(show(&client.call("GET n")), "$1\\r\\n3\\r\\n");
    // The connection is usable; nothing more arrives unasked.
    client.stream.set_nonblocking(true).expect("nonblocking");
    let mut byte = [0u8; 1];
    let read = client.stream.read(&mut byte);
    assert!(
        matches!(&read, Err(err) if err.kind() == std::io::ErrorKind::WouldBlock),
        "{read:?}"
    );
}

#[test]
fn a_client_gone_while_its_batch_is_out_leaves_the_others_answered_in_order() {
    let redis = RedisServer::start();
    let relay = Relay::start(redis.addr(), Duration::ZERO);
    let proxy = InProcess::start_at(
        &relay.url(),
        &[RESP, NO_LINK, ("REDIS_TIMEOUT_MS", "20000")],
    );
    let mut stays = Wire::connect(proxy.resp_addr());
    warm(&redis, &mut stays);
    relay.hold();
    let mut leaves = Wire::connect(proxy.resp_addr());
    leaves.send(b"SET gone 1\r\nINCR gone\r\n");
    eventually("the leaving client's batch to be out", || {
        // (The scrape itself is one.)
        (proxy.metric("redis_proxy_requests_in_flight") >= 2.0).then_some(())
    });
    drop(leaves);
    stays.send(b"INCR stays\r\nINCR stays\r\n");
    eventually("both batches to be out", || {
        (proxy.metric("redis_proxy_requests_in_flight") >= 3.0).then_some(())
    });
    relay.release();
    assert_eq!(show(&stays.reply()), ":1\\r\\n");
    assert_eq!(show(&stays.reply()), ":2\\r\\n");
    // What the client that left sent ran; its replies went nowhere.
    assert_eq!(redis.cmd::<String>(&["GET", "gone"]), "2");
    assert_eq!(show(&stays.call("INCR stays")), ":3\\r\\n");
}

#[test]
fn a_pipeline_of_one_command_drops_each_requests_own_keys() {
    const KEYS: [&str; 8] = ["k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8"];
    // No link: only the proxy's own drop of what passes through it keeps
    // the cache from serving the old values.
    let redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[RESP, NO_LINK, ("GLOBAL_CACHE_EXPIRY", "3600")]);
    let mut client = Wire::connect(proxy.resp_addr());
    warm(&redis, &mut client);
    for key in KEYS {
        redis.cmd::<String>(&["SET", key, "old"]);
        assert_eq!(
            show(&client.call(&format!("GET {key}"))),
            "$3\\r\\nold\\r\\n"
        );
    }
    // Cached: a change made at Redis alone is not seen.
    redis.cmd::<String>(&["SET", "k8", "new"]);
    assert_eq!(show(&client.call("GET k8")), "$3\\r\\nold\\r\\n");
    // A run of one command routed, its keys found, once per argument
    // count: each request's own keys are dropped all the same, whether
    // its count is its neighbour's (k1 then k2; k3 k4 then k5 k6: the
    // route and key positions taken over) or not.
    client.send(b"DEL k1\r\nDEL k2\r\nDEL k3 k4\r\nDEL k5 k6\r\nDEL k7\r\nDEL k8 k8 k8\r\n");
    for want in [":1\r\n", ":1\r\n", ":2\r\n", ":2\r\n", ":1\r\n", ":1\r\n"] {
        assert_eq!(show(&client.reply()), show(want.as_bytes()));
    }
    for key in KEYS {
        assert_eq!(
            show(&client.call(&format!("GET {key}"))),
            "$-1\\r\\n",
            "{key}"
        );
    }
}
