//! MGET's refusals: Redis refuses a whole MGET it cannot read (a key the
//! user may not read, a script keeping it busy), and the proxy answers
//! that refusal with Redis's words, not nil for the key (only a key of
//! another type is nil). A key of another type among many absent ones
//! costs the proxy one round trip for them all, not one each. Redis's
//! work is read from `INFO commandstats` and `INFO stats`.

use std::thread;

use crate::common::info::info_number;
use crate::common::resp_wire::{show, Wire};
use crate::common::{eventually, Proxy, RedisServer};

/// The first word of a reply, and whether it is an error (`-`).
fn first_word(reply: &str) -> (bool, String) {
    let word = reply.split_whitespace().next().unwrap_or_default();
    (
        word.starts_with('-'),
        word.trim_start_matches('-').to_owned(),
    )
}

/// A user whose keys are `app:*`: an MGET naming `secret:s` is refused by
/// Redis, so through the proxy too, with the same first word (before: the
/// app key's value and nil). The refusal does not turn the batched path
/// off: a later MGET of absent app keys still costs one MGET, not a GET
/// per key.
#[test]
fn an_mget_naming_a_key_the_user_may_not_read_is_refused_as_redis_refuses_it() {
    let redis = RedisServer::start();
    redis.set("app:b", "2");
    redis.set("secret:s", "S");
    let mut rules = vec![
        "ACL",
        "SETUSER",
        "app",
        "on",
        ">pw",
        "~app:*",
        "resetchannels",
        "-@all",
    ];
    rules.extend_from_slice(RedisServer::PROXY_ACL);
    let _: () = redis.cmd(&rules);
    let mut direct = Wire::connect(redis.addr());
    assert_eq!(direct.call_text("AUTH app pw"), "+OK\r\n");
    let at_redis = direct.call_text("MGET app:b secret:s");
    assert_eq!(first_word(&at_redis), (true, "NOPERM".to_owned()));
    let address = format!("redis://app:pw@127.0.0.1:{}", redis.port());
    let proxy = Proxy::start_at(&address, &[("RESP_PORT", "auto")]);
    proxy.wait_for_settled_link();
    let mut wire = Wire::connect(proxy.resp_addr());
    let answered = wire.call_text("MGET app:b secret:s");
    assert_eq!(
        first_word(&answered),
        first_word(&at_redis),
        "proxy answered {answered:?}, Redis {at_redis:?}"
    );
    assert_eq!(wire.call("PING"), b"+PONG\r\n");
    // Still batched: absent app keys cost one MGET, not a GET each.
    let keys: Vec<String> = (0..50).map(|i| format!("app:x{i}")).collect();
    let (mgets, gets) = (redis.calls("mget"), redis.calls("get"));
    let reply = wire.call(&format!("MGET {}", keys.join(" ")));
    assert_eq!(reply, [&b"*50\r\n"[..], &b"$-1\r\n".repeat(50)].concat());
    assert!(
        redis.calls("mget") > mgets,
        "no MGET sent after the refusal"
    );
    let gets = redis.calls("get") - gets;
    assert!(gets < 10, "50 absent keys cost {gets} GETs");
}

/// A hash among 200 absent keys: MGET answers nil for all, as Redis does,
/// and the proxy reads the nil keys (a GET and a PTTL each) in one round
/// trip, which Redis reads from its socket in a few reads (before: one
/// round trip per key, so at least one read each).
#[test]
fn an_mget_of_a_hash_among_many_absent_keys_reads_them_in_one_round_trip() {
    let redis = RedisServer::start();
    let _: i64 = redis.cmd(&["HSET", "h", "f", "v"]);
    let proxy = Proxy::start(&redis, &[("RESP_PORT", "auto")]);
    proxy.wait_for_settled_link();
    let mut wire = Wire::connect(proxy.resp_addr());
    let mut keys = vec!["h".to_owned()];
    keys.extend((0..200).map(|i| format!("absent:{i}")));
    let line = format!("MGET {}", keys.join(" "));
    let mut direct = Wire::connect(redis.addr());
    let at_redis = direct.call(&line);
    assert_eq!(
        at_redis,
        [&b"*201\r\n"[..], &b"$-1\r\n".repeat(201)].concat()
    );
    let reads = || {
        let info: String = redis.cmd(&["INFO", "stats"]);
        info_number(&info, "total_reads_processed")
    };
    let before = reads();
    assert_eq!(show(&wire.call(&line)), show(&at_redis));
    let read = reads() - before;
    assert!(
        read < 50,
        "Redis read its sockets {read} times for one MGET"
    );
    assert!(wire.call_text("GET h").starts_with("-WRONGTYPE"));
}

/// A script keeps Redis busy: an MGET of a key the proxy has not cached
/// is refused with Redis's -BUSY (before: nil, as if the key were
/// absent), and answered its value once the script is killed.
#[test]
fn an_mget_while_redis_is_busy_is_refused_with_busy() {
    let redis = RedisServer::start();
    redis.set("a", "1");
    let _: () = redis.cmd(&["CONFIG", "SET", "busy-reply-threshold", "100"]);
    let proxy = Proxy::start(&redis, &[("RESP_PORT", "auto")]);
    proxy.wait_for_settled_link();
    let mut wire = Wire::connect(proxy.resp_addr());
    let addr = redis.addr();
    let script = thread::spawn(move || {
        let mut busy = Wire::connect(addr);
        busy.call_text("EVAL \"while true do end\" 0")
    });
    let mut direct = Wire::connect(redis.addr());
    eventually("Redis busy", || {
        direct.call_text("PING").starts_with("-BUSY").then_some(())
    });
    let answered = wire.call_text("MGET a");
    assert!(answered.starts_with("-BUSY"), "MGET answered {answered:?}");
    assert!(direct.call_text("SCRIPT KILL").starts_with("+OK"));
    let killed = script.join().expect("script thread");
    assert!(killed.starts_with('-'), "script ended {killed:?}");
    assert_eq!(show(&wire.call("MGET a")), show(b"*1\r\n$1\r\n1\r\n"));
}
