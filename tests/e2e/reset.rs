//! `RESET` through the proxy (#21): the client's connection goes back to
//! how it began, as Redis's `clearClientConnectionState` does: the default
//! database, RESP2, no name, tracking off, MULTI and WATCH gone, its
//! subscriptions left (at Redis too), and with PROXY_PASSWORD not
//! authenticated. Compared byte for byte with Redis where they can be.

use crate::common::wire::{info_clients, show, Wire};
use crate::common::{eventually, InProcess, RedisServer};

/// Redis, and the proxy in front of it with RESP on and `extra`.
fn start(extra: &[(&'static str, &'static str)]) -> (RedisServer, InProcess) {
    let redis = RedisServer::start();
    let mut env = vec![("RESP_PORT", "auto")];
    env.extend_from_slice(extra);
    let proxy = InProcess::start(&redis, &env);
    (redis, proxy)
}

/// Sends `args` to both; their replies must be the same bytes.
fn same(direct: &mut Wire, through: &mut Wire, args: &[&str]) -> String {
    let (theirs, ours) = (direct.call_args(args), through.call_args(args));
    assert_eq!(show(&ours), show(&theirs), "{args:?}");
    show(&ours)
}

#[test]
fn reset_selects_the_default_database_resp2_no_name_no_tracking() {
    let (redis, proxy) = start(&[]);
    let mut direct = Wire::connect(redis.addr());
    let mut through = Wire::connect(proxy.resp_addr());
    same(&mut direct, &mut through, &["SET", "k", "zero"]);
    same(&mut direct, &mut through, &["SELECT", "2"]);
    same(&mut direct, &mut through, &["SET", "k", "two"]);
    same(&mut direct, &mut through, &["CLIENT", "SETNAME", "app"]);
    for wire in [&mut direct, &mut through] {
        let hello = wire.call_args(&["HELLO", "3"]);
        assert!(hello.starts_with(b"%"), "{}", show(&hello));
    }
    same(&mut direct, &mut through, &["CLIENT", "TRACKING", "ON"]);
    assert_eq!(same(&mut direct, &mut through, &["RESET"]), "+RESET\\r\\n");
    // Database 0 again, and RESP2's null for the name.
    assert_eq!(
        same(&mut direct, &mut through, &["GET", "k"]),
        "$4\\r\\nzero\\r\\n"
    );
    assert_eq!(
        same(&mut direct, &mut through, &["CLIENT", "GETNAME"]),
        "$-1\\r\\n"
    );
    let info = same(&mut direct, &mut through, &["CLIENT", "TRACKINGINFO"]);
    assert!(info.contains("off"), "{info}");
    // Back in RESP3, a key read now is not tracked: a write through the
    // proxy (whose reply comes after the pushes it causes) tells nothing.
    for wire in [&mut direct, &mut through] {
        wire.call_args(&["HELLO", "3"]);
    }
    same(&mut direct, &mut through, &["GET", "k"]);
    let mut writer = Wire::connect(proxy.resp_addr());
    assert_eq!(writer.call_args(&["SET", "k", "changed"]), b"+OK\r\n");
    assert_eq!(same(&mut direct, &mut through, &["PING"]), "+PONG\\r\\n");
}

#[test]
fn reset_ends_multi_and_watch_as_redis_does() {
    let (redis, proxy) = start(&[]);
    let mut direct = Wire::connect(redis.addr());
    let mut through = Wire::connect(proxy.resp_addr());
    redis.set("k", "before");
    same(&mut direct, &mut through, &["MULTI"]);
    same(&mut direct, &mut through, &["SET", "k", "queued"]);
    // Not queued: run at once, and the transaction is gone.
    assert_eq!(same(&mut direct, &mut through, &["RESET"]), "+RESET\\r\\n");
    let exec = same(&mut direct, &mut through, &["EXEC"]);
    assert_eq!(exec, "-ERR EXEC without MULTI\\r\\n");
    assert_eq!(
        same(&mut direct, &mut through, &["GET", "k"]),
        "$6\\r\\nbefore\\r\\n"
    );
    // WATCH, RESET: the watch is gone, so a transaction after a change of
    // the key runs.
    same(&mut direct, &mut through, &["WATCH", "k"]);
    assert_eq!(same(&mut direct, &mut through, &["RESET"]), "+RESET\\r\\n");
    redis.set("k", "changed");
    same(&mut direct, &mut through, &["MULTI"]);
    same(&mut direct, &mut through, &["SET", "k", "done"]);
    assert_eq!(
        same(&mut direct, &mut through, &["EXEC"]),
        "*1\\r\\n+OK\\r\\n"
    );
    assert_eq!(
        same(&mut direct, &mut through, &["GET", "k"]),
        "$4\\r\\ndone\\r\\n"
    );
}

#[test]
fn reset_while_subscribed_leaves_the_subscription_at_redis() {
    // One dedicated place: subscribing again after RESET shows it freed.
    let (redis, proxy) = start(&[("DEDICATED_CONNECTIONS", "1")]);
    redis.set("k", "v");
    let subscribers = |channel: &str| -> i64 {
        let numsub: (String, i64) = redis.cmd(&["PUBSUB", "NUMSUB", channel]);
        numsub.1
    };
    let mut through = Wire::connect(proxy.resp_addr());
    assert_eq!(through.call_args(&["GET", "k"]), b"$1\r\nv\r\n");
    let before = info_clients(&redis, "connected_clients");
    for round in 0..2 {
        let confirmed = through.call_args(&["SUBSCRIBE", "news"]);
        assert_eq!(
            show(&confirmed),
            show(b"*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n"),
            "round {round}"
        );
        assert_eq!(subscribers("news"), 1);
        assert_eq!(show(&through.call_args(&["RESET"])), "+RESET\\r\\n");
        // Its connection closed at Redis, not only unsubscribed.
        eventually("the subscription's connection closed", || {
            (info_clients(&redis, "connected_clients") == before).then_some(())
        });
        assert_eq!(subscribers("news"), 0);
        // A normal connection again: GET answers (in subscribed RESP2 it
        // would be refused), nothing published reaches it.
        assert_eq!(redis.cmd::<i64>(&["PUBLISH", "news", "late"]), 0);
        assert_eq!(through.call_args(&["GET", "k"]), b"$1\r\nv\r\n");
        assert_eq!(through.call_args(&["PING"]), b"+PONG\r\n");
    }
    // Pipelined: the confirmation, then `+RESET`, then GET's reply, in
    // order, as from Redis.
    let mut direct = Wire::connect(redis.addr());
    let pipeline = b"*2\r\n$9\r\nSUBSCRIBE\r\n$4\r\nnews\r\n*1\r\n$5\r\nRESET\r\n\
                     *2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
    direct.send(pipeline);
    through.send(pipeline);
    for what in ["confirmation", "reset", "get"] {
        assert_eq!(show(&through.reply()), show(&direct.reply()), "{what}");
    }
}

#[test]
fn reset_with_a_password_needs_auth_again() {
    let (redis, proxy) = start(&[("PROXY_PASSWORD", "s3cret")]);
    redis.set("k", "v");
    let mut through = Wire::connect(proxy.resp_addr());
    // Allowed before AUTH, as at Redis (`no-auth`).
    assert_eq!(through.call_args(&["RESET"]), b"+RESET\r\n");
    assert_eq!(through.call_args(&["AUTH", "s3cret"]), b"+OK\r\n");
    assert_eq!(through.call_args(&["GET", "k"]), b"$1\r\nv\r\n");
    assert_eq!(through.call_args(&["RESET"]), b"+RESET\r\n");
    assert_eq!(
        show(&through.call_args(&["GET", "k"])),
        "-NOAUTH Authentication required.\\r\\n"
    );
    assert_eq!(through.call_args(&["AUTH", "s3cret"]), b"+OK\r\n");
    assert_eq!(through.call_args(&["GET", "k"]), b"$1\r\nv\r\n");
}
