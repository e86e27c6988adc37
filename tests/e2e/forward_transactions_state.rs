//! What one client's transaction or WATCH leaves behind through the proxy
//! (#21): its Redis connection closed when it leaves, nothing of it on a
//! connection another client gets, and a request the proxy refuses inside
//! MULTI counted as the queueing error it is; after WATCH, the proxy's own
//! answers about the connection as Redis gives them there.

use crate::common::wire::{show, Wire};
use crate::common::{eventually, InProcess, RedisServer};

use super::forward_transactions::{open, proxy};

/// The clients connected to `redis` now, one `CLIENT LIST` line each.
fn clients(redis: &RedisServer) -> Vec<String> {
    let list: String = redis.cmd(&["CLIENT", "LIST"]);
    list.lines().map(str::to_owned).collect()
}

/// The `id=` of the one client of `redis` whose CLIENT LIST line has
/// `field` (such as `multi=1` or `cmd=watch`), once there is one.
fn client_with(redis: &RedisServer, field: &str) -> String {
    eventually(&format!("a client with {field} at Redis"), || {
        let found: Vec<String> = clients(redis)
            .into_iter()
            .filter(|line| line.split(' ').any(|f| f == field))
            .collect();
        assert!(found.len() <= 1, "several clients with {field}: {found:?}");
        let line = found.first()?;
        Some(line.split(' ').next()?.to_owned())
    })
}

/// Waits until no client of `redis` has `id` (such as `id=12`).
fn wait_gone(redis: &RedisServer, id: &str) {
    eventually(&format!("Redis's client {id} to close"), || {
        (!clients(redis)
            .iter()
            .any(|line| line.split(' ').next() == Some(id)))
        .then_some(())
    });
}

#[test]
fn a_client_that_leaves_mid_transaction_or_mid_watch_has_its_redis_connection_closed() {
    let redis = RedisServer::start();
    let proxy = proxy(&redis, "auto");
    // Sent one at a time, and both at once.
    for together in [false, true] {
        let key = format!("never{together}");
        let mut conn = open(proxy.resp_addr(), false);
        if together {
            let mut wire = crate::common::resp_command(&[b"MULTI"]);
            wire.extend(crate::common::resp_command(&[b"SET", key.as_bytes(), b"1"]));
            conn.send_raw(&wire);
            assert_eq!(conn.reply(), b"+OK\r\n");
            assert_eq!(conn.reply(), b"+QUEUED\r\n");
        } else {
            assert_eq!(conn.call(&["MULTI"]), "+OK\r\n");
            assert_eq!(conn.call(&["SET", &key, "1"]), "+QUEUED\r\n");
        }
        let held = client_with(&redis, "multi=1");
        conn.close();
        wait_gone(&redis, &held);
        let value: Option<String> = redis.cmd(&["GET", &key]);
        assert_eq!(value, None, "the queued SET never ran");
        assert!(
            clients(&redis)
                .iter()
                .all(|line| !line.contains(" multi=1 ")),
            "no Redis connection is left in MULTI"
        );
    }
    // WATCH, then leave.
    let mut conn = open(proxy.resp_addr(), false);
    assert_eq!(conn.call(&["WATCH", "w"]), "+OK\r\n");
    let held = client_with(&redis, "cmd=watch");
    conn.close();
    wait_gone(&redis, &held);
}

#[test]
fn nothing_of_one_clients_transaction_or_watch_reaches_other_clients() {
    let redis = RedisServer::start();
    let proxy = proxy(&redis, "auto");
    let addr = proxy.resp_addr();
    // One leaves while watching; one ends its watch with UNWATCH, one with
    // EXEC, one with DISCARD (their connections may go back to the pool);
    // one stays in MULTI and one keeps watching while the others run.
    let mut left = open(addr, false);
    assert_eq!(left.call(&["WATCH", "w1"]), "+OK\r\n");
    left.close();
    let mut ended = open(addr, false);
    for (command, want) in [
        (&["WATCH", "w2"][..], "+OK\r\n"),
        (&["UNWATCH"], "+OK\r\n"),
        (&["WATCH", "w3"], "+OK\r\n"),
        (&["MULTI"], "+OK\r\n"),
        (&["SET", "x", "1"], "+QUEUED\r\n"),
        (&["EXEC"], "*1\r\n+OK\r\n"),
        (&["WATCH", "w4"], "+OK\r\n"),
        (&["MULTI"], "+OK\r\n"),
        (&["DISCARD"], "+OK\r\n"),
        (&["MULTI"], "+OK\r\n"),
        (&["SET", "x", "1"], "+QUEUED\r\n"),
        (&["EXEC"], "*1\r\n+OK\r\n"),
    ] {
        assert_eq!(ended.call(command), want, "{command:?}");
    }
    let mut in_multi = open(addr, false);
    assert_eq!(in_multi.call(&["MULTI"]), "+OK\r\n");
    assert_eq!(in_multi.call(&["SET", "y", "1"]), "+QUEUED\r\n");
    let mut watching = open(addr, false);
    assert_eq!(watching.call(&["WATCH", "w5"]), "+OK\r\n");
    // Every watched key changes: a watch left on a pooled connection would
    // make another client's EXEC run nothing.
    for key in ["w1", "w2", "w3", "w4", "w5"] {
        redis.set(key, "changed");
    }
    let others: Vec<_> = (0..100)
        .map(|i| {
            std::thread::spawn(move || {
                let mut conn = open(addr, false);
                let key = format!("other:{i}");
                assert_eq!(conn.call(&["SET", &key, "v"]), "+OK\r\n");
                assert_eq!(conn.call(&["INCR", "count"]).as_bytes()[0], b':');
                assert_eq!(conn.call(&["GET", &key]), "$1\r\nv\r\n");
                assert_eq!(conn.call(&["MULTI"]), "+OK\r\n");
                assert_eq!(conn.call(&["SET", &key, "t"]), "+QUEUED\r\n");
                assert_eq!(conn.call(&["EXEC"]), "*1\r\n+OK\r\n");
                assert_eq!(conn.call(&["EXEC"]), "-ERR EXEC without MULTI\r\n");
            })
        })
        .collect();
    for other in others {
        other.join().expect("another client");
    }
    assert_eq!(redis.cmd::<i64>(&["GET", "count"]), 100);
    // The held ones are still theirs: the watch still fails its EXEC, and
    // the transaction still runs its SET.
    assert_eq!(watching.call(&["MULTI"]), "+OK\r\n");
    assert_eq!(watching.call(&["SET", "z", "1"]), "+QUEUED\r\n");
    assert_eq!(watching.call(&["EXEC"]), "*-1\r\n");
    assert_eq!(in_multi.call(&["EXEC"]), "*1\r\n+OK\r\n");
    assert_eq!(redis.cmd::<Option<String>>(&["GET", "z"]), None);
    assert_eq!(redis.cmd::<String>(&["GET", "y"]), "1");
}

#[test]
fn a_request_the_proxy_refuses_inside_multi_aborts_the_transaction_as_a_queueing_error_does() {
    // Redis discards a transaction in which a command was refused while
    // queueing (EXECABORT): the client saw an error, so nothing may run.
    let redis = RedisServer::start();
    let proxy = proxy(&redis, "auto");
    let aborted = "-EXECABORT Transaction discarded because of previous errors.\r\n";
    // SUBSCRIBE too: queued, EXEC would leave the proxy's connection
    // subscribed, and back in the pool.
    let refused: [&[&str]; 4] = [
        &["CONFIG", "SET", "maxmemory", "1"],
        &["CLIENT", "SETNAME", "x"],
        &["SUBSCRIBE", "ch"],
        &["PSUBSCRIBE", "c*"],
    ];
    let mut conn = open(proxy.resp_addr(), false);
    for request in refused {
        assert_eq!(conn.call(&["MULTI"]), "+OK\r\n");
        assert_eq!(conn.call(&["SET", "a", "1"]), "+QUEUED\r\n");
        let reply = conn.call(request);
        assert!(reply.starts_with("-ERR '"), "{request:?} refused: {reply}");
        assert_eq!(conn.call(&["INCR", "n"]), "+QUEUED\r\n");
        assert_eq!(conn.call(&["EXEC"]), aborted, "after {request:?}");
        // Pipelined: the refusal among requests sent on in one batch.
        let mut wire = Vec::new();
        for step in [
            &["MULTI"][..],
            &["SET", "a", "1"],
            request,
            &["INCR", "n"],
            &["EXEC"],
        ] {
            let args: Vec<&[u8]> = step.iter().map(|w| w.as_bytes()).collect();
            wire.extend(crate::common::resp_command(&args));
        }
        conn.send_raw(&wire);
        let replies: Vec<String> = (0..5)
            .map(|_| String::from_utf8_lossy(&conn.reply()).into_owned())
            .collect();
        assert_eq!(replies[..2], ["+OK\r\n", "+QUEUED\r\n"]);
        assert!(replies[2].starts_with("-ERR '"), "{}", replies[2]);
        assert_eq!(replies[3..], ["+QUEUED\r\n", aborted]);
        assert_eq!(redis.cmd::<Option<String>>(&["GET", "a"]), None);
        assert_eq!(redis.cmd::<Option<String>>(&["GET", "n"]), None);
        assert_eq!(conn.call(&["SET", "b", "1"]), "+OK\r\n");
    }
    // Every pooled connection still answers plainly.
    for i in 1..=20 {
        let mut other = open(proxy.resp_addr(), false);
        assert_eq!(other.call(&["INCR", "after"]), format!(":{i}\r\n"));
    }
}

/// Between WATCH and EXEC (no MULTI) Redis answers CLIENT ID, CLIENT
/// SETNAME, HELLO and SELECT on the watching connection: the proxy gives
/// its own answers there as anywhere, and its held connection follows
/// HELLO's protocol and SELECT's database, the WATCH kept.
#[test]
fn after_watch_connection_commands_answer_as_without_it() {
    let redis = RedisServer::start();
    let proxy = InProcess::start(&redis, &[("RESP_PORT", "auto")]);
    redis.set("k", "zero");
    redis.cmd::<i64>(&["HSET", "h", "f", "v"]);
    let mut client = Wire::connect(proxy.resp_addr());
    let id = client.call_args(&["CLIENT", "ID"]);
    assert_eq!(client.call_args(&["WATCH", "k"]), b"+OK\r\n");
    assert_eq!(client.call_args(&["CLIENT", "ID"]), id);
    assert_eq!(client.call_args(&["CLIENT", "SETNAME", "n"]), b"+OK\r\n");
    assert_eq!(client.call_args(&["CLIENT", "GETNAME"]), b"$1\r\nn\r\n");
    let hello = client.call_args(&["HELLO", "3"]);
    assert!(
        hello.starts_with(b"%") && show(&hello).contains("$5\\r\\nproxy\\r\\n"),
        "{}",
        show(&hello)
    );
    // The held connection speaks RESP3 now: a map.
    assert_eq!(
        show(&client.call_args(&["HGETALL", "h"])),
        show(b"%1\r\n$1\r\nf\r\n$1\r\nv\r\n")
    );
    assert_eq!(client.call_args(&["SELECT", "1"]), b"+OK\r\n");
    assert_eq!(client.call_args(&["SET", "k", "one"]), b"+OK\r\n");
    assert_eq!(client.call_args(&["MULTI"]), b"+OK\r\n");
    assert_eq!(client.call_args(&["GET", "k"]), b"+QUEUED\r\n");
    // Database 0's k, watched, is unchanged: EXEC runs, in database 1.
    assert_eq!(
        show(&client.call_args(&["EXEC"])),
        show(b"*1\r\n$3\r\none\r\n")
    );
    // And a watched key changed after a SELECT still aborts EXEC.
    assert_eq!(client.call_args(&["WATCH", "k"]), b"+OK\r\n");
    assert_eq!(client.call_args(&["SELECT", "0"]), b"+OK\r\n");
    let mut other = Wire::connect(proxy.resp_addr());
    other.call_args(&["SELECT", "1"]);
    assert_eq!(other.call_args(&["SET", "k", "changed"]), b"+OK\r\n");
    assert_eq!(client.call_args(&["MULTI"]), b"+OK\r\n");
    assert_eq!(client.call_args(&["GET", "k"]), b"+QUEUED\r\n");
    assert_eq!(show(&client.call_args(&["EXEC"])), show(b"_\r\n"));
}
