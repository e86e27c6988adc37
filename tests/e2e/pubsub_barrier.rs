//! The barrier a subscribed client's other requests wait behind (the
//! proxy's own `PING` on the client's subscription at Redis,
//! `resp/subscribed.rs`): never answered as the client's, never waited for
//! without end, and nothing run once the subscription is gone.

use crate::common::resp_wire::encode_line;
use crate::common::wire::{client_list, show, Wire};
use crate::common::{read_until_closed, InProcess, RedisServer};

const RESP: (&str, &str) = ("RESP_PORT", "auto");

/// A bulk string reply.
fn bulk(value: &str) -> String {
    format!("${}\r\n{value}\r\n", value.len())
}

/// Redis refuses the barrier (`-NOPERM`: the proxy's user may not `PING`;
/// `-BUSY` during a long script is the same case): the client is told and
/// closed after REDIS_TIMEOUT_MS, instead of waiting for ever.
#[test]
fn a_barrier_redis_refuses_ends_the_subscription_instead_of_a_wait_for_ever() {
    let redis = RedisServer::start();
    let _: () = redis.cmd(&[
        "ACL", "SETUSER", "nopings", "on", ">pw", "~*", "&*", "+@all", "-ping",
    ]);
    let address = format!("redis://nopings:pw@{}", redis.addr());
    let proxy = InProcess::start_at(&address, &[RESP, ("REDIS_TIMEOUT_MS", "300")]);
    let mut client = Wire::connect(proxy.resp_addr());
    client.send_args(&["SUBSCRIBE", "a"]);
    client.send_args(&["GET", "k"]);
    let confirmed = client.reply();
    assert!(confirmed.ends_with(b":1\r\n"), "{}", show(&confirmed));
    let rest = read_until_closed(&mut client.stream);
    let rest = String::from_utf8_lossy(&rest);
    assert!(
        rest.contains("no reply from Redis on the subscription within REDIS_TIMEOUT_MS"),
        "{rest}"
    );
    // Told once: the end of the subscription's thread, which comes after,
    // adds nothing to a client already told and closing.
    assert_eq!(rest.matches("-ERR").count(), 1, "{rest}");
}

/// A client's own `PING` with the barrier's argument (which `SLOWLOG`
/// shows) is answered as the client's, in its place.
#[test]
fn a_client_ping_with_the_barriers_argument_is_answered_in_its_place() {
    let redis = RedisServer::start();
    redis.set("k", "v");
    let proxy = InProcess::start(&redis, &[RESP]);
    let _: () = redis.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
    // A barrier, to learn its argument from Redis's slow log.
    let mut first = Wire::open_with(proxy.resp_addr(), 3);
    first.call_args(&["SUBSCRIBE", "a"]);
    assert_eq!(
        show(&first.call_args(&["GET", "k"])),
        show(bulk("v").as_bytes())
    );
    let mut direct = Wire::connect(redis.addr());
    let log = direct.call_args(&["SLOWLOG", "GET", "1000"]);
    let log = String::from_utf8_lossy(&log);
    let at = log
        .find("redis-proxy-barrier-")
        .expect("the barrier in SLOWLOG");
    let token: String = log[at..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    let mut client = Wire::open_with(proxy.resp_addr(), 3);
    client.call_args(&["SUBSCRIBE", "a"]);
    // In one write, so the GET is read while the PING is still out.
    let mut both = encode_line(&format!("PING {token}"));
    both.extend_from_slice(&encode_line("GET k"));
    client.send(&both);
    let replies: Vec<String> = client.replies(2).iter().map(|r| show(r)).collect();
    let expected = [show(bulk(&token).as_bytes()), show(bulk("v").as_bytes())];
    assert_eq!(replies, expected);
    // And the connection goes on.
    assert_eq!(show(&client.call_args(&["GET", "k"])), expected[1]);
}

/// The subscription's connection at Redis ends while a request waits for
/// the barrier (here `CLIENT KILL`; Redis's output limit or a failover
/// alike): nothing more of the client's runs, as a client of Redis's own
/// would run nothing more (in RESP2's Pub/Sub mode Redis refuses a `SET`
/// anyway).
#[test]
fn a_request_waiting_for_a_barrier_never_runs_once_the_subscription_ends() {
    let redis = RedisServer::start();
    // Long enough that the barrier is not given up meanwhile.
    let proxy = InProcess::start(&redis, &[RESP, ("REDIS_TIMEOUT_MS", "10000")]);
    let mut client = Wire::connect(proxy.resp_addr());
    client.call_args(&["SUBSCRIBE", "q"]);
    // Something sent on the subscription since: the next other request
    // waits for a barrier.
    client.call_args(&["PING"]);
    let subscription = client_list(&redis, |line| line.contains(" sub=1 "));
    let id = subscription
        .first()
        .and_then(|line| line.strip_prefix("id="))
        .and_then(|rest| rest.split(' ').next())
        .expect("the subscription's connection")
        .to_owned();
    let _: () = redis.cmd(&["CLIENT", "PAUSE", "3000", "ALL"]);
    client.send_args(&["SET", "victim", "written"]);
    // The proxy sends the barrier as soon as it reads the SET, before the
    // kill below (a connection of its own to Redis) arrives; it cannot be
    // seen at Redis meanwhile (CLIENT LIST waits out the pause: CLIENT KILL
    // does not). Were the kill first, nothing would run either way.
    let _: i64 = redis.cmd(&["CLIENT", "KILL", "ID", &id]);
    let told = read_until_closed(&mut client.stream);
    let _: () = redis.cmd(&["CLIENT", "UNPAUSE"]);
    assert!(!told.starts_with(b"+OK"), "{}", show(&told));
    let victim: Option<String> = redis.cmd(&["GET", "victim"]);
    assert_eq!(victim, None, "the SET ran ({})", show(&told));
}
