//! The order rule: a command the proxy read before another client's
//! command reaches Redis before that one is written, as a client of Redis
//! itself sees it (its write finished before the other's began, so Redis
//! runs it first). SUBSCRIBE and blocking commands go to Redis on
//! connections of their own, opened on threads of their own; the event
//! loop holds other clients' batches until they are written (the fence,
//! docs/forwarding.md), so a PUBLISH sent after a SUBSCRIBE finds its
//! subscriber and an XADD after an `XREAD BLOCK ... $` wakes it. And the
//! fence never freezes: a blocking command or a subscription that fails
//! to start lets other clients' writes through.

use crate::common::eventually;
use crate::common::wire::{info_clients, show, Wire};
use crate::forward_blocking::start;

/// RESP2's `message` push for `payload` on `channel`.
fn message(channel: &str, payload: &str) -> String {
    format!(
        "*3\r\n$7\r\nmessage\r\n${}\r\n{channel}\r\n${}\r\n{payload}\r\n",
        channel.len(),
        payload.len()
    )
}

/// RESP2's confirmation of `SUBSCRIBE channel`, `count` channels in all.
fn subscribed(channel: &str, count: usize) -> String {
    format!(
        "*3\r\n$9\r\nsubscribe\r\n${}\r\n{channel}\r\n:{count}\r\n",
        channel.len()
    )
}

/// Rounds of each race, and how many may be overtaken all the same: Redis
/// itself reads two connections written by two threads, one after the
/// other, out of order now and then (a SUBSCRIBE written and done, then
/// a PUBLISH from another thread on another connection, straight to
/// Redis: 8 of 3,000 reached nobody on this machine at rest, about 1 in 70
/// under load), and the proxy writes a dedicated connection's requests
/// from a thread of its own. Without the fence nearly every round is
/// overtaken.
const ROUNDS: usize = 40;
const OVERTAKEN_AT_MOST: usize = ROUNDS / 8;

/// `SUBSCRIBE channel` written on `subscriber` (its confirmation, the
/// `count`th subscription, not awaited), then `PUBLISH channel m` on
/// `publisher`: whether the PUBLISH reached no subscriber (it overtook
/// the SUBSCRIBE); else the message must come after the confirmation.
fn overtook(subscriber: &mut Wire, publisher: &mut Wire, channel: &str, count: usize) -> bool {
    subscriber.send_args(&["SUBSCRIBE", channel]);
    let published = publisher.call_args(&["PUBLISH", channel, "m"]);
    assert_eq!(
        show(&subscriber.reply()),
        show(subscribed(channel, count).as_bytes())
    );
    match &published[..] {
        b":1\r\n" => {
            assert_eq!(
                show(&subscriber.reply()),
                show(message(channel, "m").as_bytes())
            );
            false
        }
        b":0\r\n" => true,
        other => panic!("PUBLISH: {}", show(other)),
    }
}

/// At most [`OVERTAKEN_AT_MOST`] of the [`ROUNDS`] were overtaken.
fn assert_rarely_overtaken(overtaken: usize, what: &str) {
    assert!(
        overtaken <= OVERTAKEN_AT_MOST,
        "{overtaken} of {ROUNDS} {what}"
    );
}

#[test]
fn a_publish_sent_after_a_subscribe_not_yet_confirmed_reaches_the_subscriber() {
    let (_redis, proxy) = start(&[]);
    let mut publisher = Wire::connect(proxy.resp_addr());
    let mut overtaken = 0;
    for i in 0..ROUNDS {
        let channel = format!("order:{i}");
        let mut subscriber = Wire::connect(proxy.resp_addr());
        // Connected (the proxy has it), as a client's handshake makes sure.
        assert_eq!(subscriber.call_args(&["PING"]), b"+PONG\r\n");
        // Written, its confirmation not awaited (as redis-py does).
        if overtook(&mut subscriber, &mut publisher, &channel, 1) {
            overtaken += 1;
        }
    }
    assert_rarely_overtaken(overtaken, "PUBLISHes reached no subscriber");
}

#[test]
fn a_subscribe_on_a_subscribed_connection_is_not_overtaken_by_a_publish() {
    let (_redis, proxy) = start(&[]);
    let mut publisher = Wire::connect(proxy.resp_addr());
    let mut subscriber = Wire::connect(proxy.resp_addr());
    let first = subscriber.call_args(&["SUBSCRIBE", "base"]);
    assert_eq!(show(&first), show(subscribed("base", 1).as_bytes()));
    let mut overtaken = 0;
    for i in 0..ROUNDS {
        let channel = format!("more:{i}");
        if overtook(&mut subscriber, &mut publisher, &channel, i + 2) {
            overtaken += 1;
        }
    }
    assert_rarely_overtaken(overtaken, "PUBLISHes reached no subscriber");
}

#[test]
fn an_xadd_sent_after_an_xread_block_from_dollar_wakes_the_reader() {
    let (_redis, proxy) = start(&[]);
    let mut writer = Wire::connect(proxy.resp_addr());
    let mut reader = Wire::connect(proxy.resp_addr());
    let mut overtaken = 0;
    for i in 0..ROUNDS {
        let stream = format!("stream:{i}");
        // Only entries added after it: one overtaken by the XADD is missed,
        // and the reader then gets its timeout's nil.
        reader.send_args(&["XREAD", "BLOCK", "2000", "STREAMS", &stream, "$"]);
        let id = writer.call_args(&["XADD", &stream, "*", "field", "value"]);
        assert!(id.starts_with(b"$"), "XADD: {}", show(&id));
        let read = show(&reader.reply());
        if read == "*-1\\r\\n" {
            overtaken += 1;
        } else {
            assert!(read.contains("$5\\r\\nfield\\r\\n$5\\r\\nvalue"), "{read}");
        }
    }
    assert_rarely_overtaken(overtaken, "XREADs missed the entry added after them");
}

/// Sends a write on `other` and checks it is answered: bounded by the
/// client's read timeout (`PATIENCE`), far below the proxy's
/// REDIS_TIMEOUT_MS here, so a fence left up fails this.
fn writes_flow(other: &mut Wire, what: &str) {
    let reply = other.call_args(&["INCR", "flowing"]);
    assert!(reply.starts_with(b":"), "{what}: {}", show(&reply));
}

#[test]
fn a_blocking_command_or_subscription_that_fails_to_start_leaves_writes_flowing() {
    let (redis, proxy) = start(&[
        ("DEDICATED_CONNECTIONS", "1"),
        ("REDIS_TIMEOUT_MS", "120000"),
    ]);
    let mut other = Wire::connect(proxy.resp_addr());
    writes_flow(&mut other, "at first");
    writes_flow(&mut other, "again");
    // The one place taken by a blocked BLPOP: another is refused.
    let mut blocked = Wire::connect(proxy.resp_addr());
    blocked.send_args(&["BLPOP", "jobs", "0"]);
    eventually("one blocked client at Redis", || {
        (info_clients(&redis, "blocked_clients") == 1).then_some(())
    });
    writes_flow(&mut other, "while a BLPOP blocks");
    let mut refused = Wire::connect(proxy.resp_addr());
    let reply = show(&refused.call_args(&["BLPOP", "jobs2", "0"]));
    assert!(reply.contains("DEDICATED_CONNECTIONS"), "{reply}");
    let reply = show(&refused.call_args(&["SUBSCRIBE", "news"]));
    assert!(reply.contains("DEDICATED_CONNECTIONS"), "{reply}");
    writes_flow(&mut other, "after refusals for want of a place");
    assert_eq!(other.call_args(&["RPUSH", "jobs", "j"]), b":1\r\n");
    assert_eq!(
        show(&blocked.reply()),
        show(b"*2\r\n$4\r\njobs\r\n$1\r\nj\r\n")
    );
    // Redis refuses the connection a RESP3 client's blocking command or
    // subscription needs (at maxclients; no RESP3 connection is pooled, no
    // client having spoken RESP3): nothing is written for it.
    let connected = info_clients(&redis, "connected_clients");
    let proxy_count = (connected - 1).to_string();
    let _: String = redis.cmd(&["CONFIG", "SET", "maxclients", &proxy_count]);
    let mut resp3 = Wire::open_with(proxy.resp_addr(), 3);
    let reply = show(&resp3.call_args(&["BLPOP", "jobs", "1"]));
    assert!(reply.contains("max number of clients"), "BLPOP: {reply}");
    writes_flow(&mut other, "after a BLPOP whose connection Redis refused");
    let mut resp3 = Wire::open_with(proxy.resp_addr(), 3);
    let reply = show(&resp3.call_args(&["SUBSCRIBE", "news"]));
    assert!(
        reply.contains("max number of clients"),
        "SUBSCRIBE: {reply}"
    );
    writes_flow(
        &mut other,
        "after a SUBSCRIBE whose connection Redis refused",
    );
}
