//! What `CLIENT TRACKING` clients can make the proxy hold and do (issue 19,
//! rows 8 and 9): long keys stored once, the table bounded in bytes and
//! given back when a client leaves; 100k BCAST prefixes matched without the
//! other clients noticing; and the bounds on those prefixes, per connection
//! and for all together.

use std::thread;

use crate::client_tracking::{start, start_binary, tracking, Client};
use crate::common::info::info_number;
use crate::common::{eventually, Proxy, RedisServer};

const MIB: u64 = 1024;

/// An 8 KiB key (MAX_KEY_BYTES), distinct per `tag` and `i`.
fn long_key(tag: &str, i: usize) -> String {
    let head = format!("{tag}:{i:06}:");
    format!("{head}{}", "x".repeat(8192 - head.len()))
}

/// MGETs `count` long keys, 100 at a time, reading the replies and any
/// pushes between them (keys the table let go of). Returns the pushes.
fn track_long_keys(client: &mut Client, tag: &str, count: usize) -> usize {
    let mut pushes = 0;
    for batch in 0..count / 100 {
        let keys: Vec<String> = (0..100).map(|i| long_key(tag, batch * 100 + i)).collect();
        let mut words = vec!["MGET"];
        words.extend(keys.iter().map(String::as_str));
        client.send(&words);
        loop {
            let frame = client.next();
            if frame.starts_with('>') {
                pushes += 1;
            } else {
                assert!(frame.starts_with("*[_"), "an MGET reply: {:.40}", frame);
                break;
            }
        }
    }
    pushes
}

/// One line of the proxy's `INFO` as a number, asked on `client`.
fn info_field(client: &mut Client, field: &str) -> u64 {
    info_number(&client.call(&["INFO", "everything"]), field)
}

/// The binary (its resident memory is read), CACHE_CAPACITY=1: the cache's
/// own copies of the keys stay out of the figures.
fn proxy_with(env: &[(&str, &str)]) -> (RedisServer, Proxy) {
    let mut vars = vec![("CACHE_CAPACITY", "1")];
    vars.extend_from_slice(env);
    start_binary(&vars)
}

#[test]
fn long_tracked_keys_are_stored_once_and_given_back_when_their_client_leaves() {
    let (_redis, proxy) = proxy_with(&[]);
    let mut watcher = Client::open(&proxy);
    let mut first = tracking(&proxy, &[]);
    track_long_keys(&mut first, "warm", 100);
    let before = proxy.rss_kib();
    // 4000 keys of 8 KiB: 31 MiB of keys, under the 64 MiB default bound.
    assert_eq!(track_long_keys(&mut first, "one", 4000), 0);
    let with_first = proxy.rss_kib();
    let grown = with_first - before;
    // Stored twice, they took 62 MiB and more.
    assert!(
        grown < 46 * MIB,
        "4000 keys of 8 KiB took {grown} KiB: stored more than once?"
    );
    assert_eq!(info_field(&mut watcher, "tracking_total_keys"), 4100);

    // It leaves: its keys go at once, not when they next change.
    drop(first);
    eventually("the first client's keys to go", || {
        (info_field(&mut watcher, "tracking_total_keys") == 0).then_some(())
    });
    let mut second = tracking(&proxy, &[]);
    assert_eq!(track_long_keys(&mut second, "two", 4000), 0);
    let with_second = proxy.rss_kib();
    // The second client's keys reuse the memory the first one's freed.
    assert!(
        with_second < with_first + 16 * MIB,
        "after the first client left, a second one's keys took RSS from {with_first} to {with_second} KiB"
    );
}

#[test]
fn the_tracking_table_is_bounded_in_bytes_and_tells_what_it_lets_go() {
    let (_redis, proxy) = proxy_with(&[("TRACKING_TABLE_MAX_BYTES", "4194304")]);
    let mut watcher = Client::open(&proxy);
    let mut client = tracking(&proxy, &[]);
    track_long_keys(&mut client, "warm", 100);
    let before = proxy.rss_kib();
    // 31 MiB of keys against a 4 MiB bound: the oldest are let go (and
    // their reader told), as past TRACKING_TABLE_MAX_KEYS.
    let pushes = track_long_keys(&mut client, "many", 4000);
    assert!(pushes > 0, "no key was let go");
    let grown = proxy.rss_kib() - before;
    assert!(
        grown < 16 * MIB,
        "a 4 MiB table grew the proxy by {grown} KiB"
    );
    let bytes = info_field(&mut watcher, "tracking_table_bytes");
    assert!(bytes <= 4 << 20, "the table holds {bytes} bytes");
    assert!(info_field(&mut watcher, "tracking_total_keys") >= 400);
}

#[test]
fn overlapping_bcast_prefixes_are_refused_as_redis_refuses_them_and_others_add_up() {
    let (_redis, proxy) = start(&[]);
    let mut client = Client::open(&proxy);
    assert!(client.call(&["HELLO", "3"]).starts_with("%["));
    let tail = "Prefixes for a single client must not overlap.";
    assert_eq!(
        client.call(&["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "a", "PREFIX", "ab"]),
        format!("-ERR Prefix 'a' overlaps with another provided prefix 'ab'. {tail}")
    );
    let on = |client: &mut Client, prefix: &str| {
        client.call(&["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", prefix])
    };
    assert_eq!(on(&mut client, "x"), "+OK");
    assert_eq!(on(&mut client, "y"), "+OK");
    assert_eq!(
        on(&mut client, "xy"),
        format!("-ERR Prefix 'xy' overlaps with an existing prefix 'x'. {tail}")
    );
    assert_eq!(
        client.call(&["CLIENT", "TRACKINGINFO"]),
        "%[$flags ~[$on $bcast] $redirect :0 $prefixes *[$x $y]]"
    );
}

/// Row 9: 25 clients hold 100k BCAST prefixes (4000 each, under the cap
/// of 4096 a connection) while Redis takes 20k writes. Another client
/// keeps asking the proxy (INFO, answered by the same loop that applies
/// the changes) how many changed keys it has applied: while the burst is
/// worked off it must be answered, seeing the count part-way, not only
/// before and after (here: hundreds of answers). Matched against every
/// prefix on the loop, all at once, the burst held the loop for seconds
/// (3.3 s) and no answer came part-way.
#[test]
fn other_clients_are_answered_while_a_write_burst_meets_100k_bcast_prefixes() {
    const PREFIXES: usize = 100_000;
    const EACH: usize = 4000;
    const WRITES: usize = 20_000;
    let (redis, proxy) = start(&[]);
    let mut told = Vec::new();
    for holder_number in 0..PREFIXES / EACH {
        let mut holder = Client::open(&proxy);
        assert!(holder.call(&["HELLO", "3"]).starts_with("%["));
        let first = holder_number * EACH;
        let prefixes: Vec<String> = (first..first + EACH)
            .map(|i| format!("p:{i:06}:"))
            .collect();
        let mut words = vec!["CLIENT", "TRACKING", "ON", "BCAST"];
        for prefix in &prefixes {
            words.extend(["PREFIX", prefix.as_str()]);
        }
        assert_eq!(holder.call(&words), "+OK");
        // The keys written under its prefixes: every 100th of the first
        // 20k prefixes (below). Each holder reads what it is told, on its
        // own thread.
        let due = (first..first + EACH)
            .filter(|i| i % 100 == 0 && *i < WRITES)
            .count();
        told.push(thread::spawn(move || {
            let mut keys = 0;
            while keys < due {
                let frame = holder.next();
                assert!(frame.starts_with(">[$invalidate"), "{frame:.60}");
                keys += frame.matches("$p:").count();
            }
            // Kept open (its prefixes held) until joined.
            (keys, holder)
        }));
    }

    let mut other = Client::open(&proxy);
    let field = "tracking_changes_processed";
    assert_eq!(info_field(&mut other, field), 0);
    assert_eq!(
        info_field(&mut other, "tracking_total_prefixes"),
        PREFIXES as u64
    );
    let writer = {
        let mut conn = redis.conn();
        thread::spawn(move || {
            // Every 100th key is under a prefix; the rest under none, and
            // as long as the prefixes: what a scan of every prefix costs
            // most.
            for batch in 0..WRITES / 100 {
                let mut pipe = redis::pipe();
                for i in 0..100 {
                    let n = batch * 100 + i;
                    let key = if i == 0 {
                        format!("p:{:06}:{n}", n % PREFIXES)
                    } else {
                        format!("q:{n:06}:")
                    };
                    pipe.cmd("SET").arg(key).arg(1).ignore();
                }
                let _: () = pipe.query(&mut conn).expect("writes");
            }
        })
    };
    let mut part_way = 0;
    loop {
        let applied = info_field(&mut other, field);
        if applied == WRITES as u64 {
            break;
        }
        if applied > 0 {
            part_way += 1;
        }
    }
    writer.join().expect("writer");
    let keys: usize = told.into_iter().map(|t| t.join().expect("holder").0).sum();
    assert_eq!(keys, WRITES / 100);
    assert!(
        part_way >= 10,
        "another client was answered only {part_way} times while 20k changes were matched"
    );
}

/// `CLIENT TRACKING ON BCAST PREFIX ...` words for `prefixes`.
fn bcast_words(prefixes: &[String]) -> Vec<&str> {
    let mut words = vec!["CLIENT", "TRACKING", "ON", "BCAST"];
    for prefix in prefixes {
        words.extend(["PREFIX", prefix.as_str()]);
    }
    words
}

/// The keys `client` is told of, in order, up to `last` (a flush, told
/// when the link came up, is skipped; keys come one or more a push).
fn told_until(client: &mut Client, last: &str) -> Vec<String> {
    let mut keys = Vec::new();
    while keys.last().map(String::as_str) != Some(last) {
        let frame = client.next();
        if frame == ">[$invalidate _]" {
            continue;
        }
        let list = frame
            .strip_prefix(">[$invalidate *[")
            .and_then(|rest| rest.strip_suffix("]]"))
            .unwrap_or_else(|| panic!("an invalidation: {frame:.80}"));
        keys.extend(
            list.split(' ')
                .map(|key| key.trim_start_matches('$').to_owned()),
        );
    }
    keys
}

/// A connection holds at most 4096 BCAST prefixes: one call that would go
/// past that is refused whole, naming the limit, and the connection keeps
/// what it had; another client is not held back. Without the cap, 500k
/// prefixes in one call held every RESP client up 0.3-0.5 s, and ten calls
/// of 100k took the proxy to 417 MB.
#[test]
fn bcast_prefixes_past_the_cap_of_a_connection_are_refused_whole() {
    let (redis, proxy) = start(&[]);
    let mut holder = tracking(&proxy, &["BCAST", "PREFIX", "a:"]);
    let refused: Vec<String> = (0..4096).map(|i| format!("b{i}:")).collect();
    assert_eq!(
        holder.call(&bcast_words(&refused)),
        "-ERR too many tracking prefixes: at most 4096 per connection through the proxy"
    );
    assert_eq!(
        holder.call(&["CLIENT", "TRACKINGINFO"]),
        "%[$flags ~[$on $bcast] $redirect :0 $prefixes *[$a:]]"
    );
    // Up to the cap, prefixes add up as before.
    let kept: Vec<String> = (0..4095).map(|i| format!("c{i}:")).collect();
    assert_eq!(holder.call(&bcast_words(&kept)), "+OK");
    let one_more = ["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "d:"];
    assert!(holder
        .call(&one_more)
        .starts_with("-ERR too many tracking prefixes"));
    // Too long, whatever the count: 256 KiB of prefixes a connection.
    let mut long = tracking(&proxy, &["BCAST", "PREFIX", "e:"]);
    let huge = format!("f:{}", "x".repeat(256 * 1024));
    assert_eq!(
        long.call(&["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", &huge]),
        "-ERR tracking prefixes too long: at most 262144 bytes of them per connection through the proxy"
    );

    // Another client takes a prefix the holder was refused.
    let mut other = tracking(&proxy, &["BCAST", "PREFIX", "b7:"]);
    assert_eq!(other.call(&["PING"]), "+PONG");
    for key in ["b7:1", "f:1", "d:1", "a:1", "c7:1"] {
        redis.set(key, "1");
    }
    // Told in order: nothing of the refused calls came first.
    assert_eq!(told_until(&mut holder, "c7:1"), ["a:1", "c7:1"]);
    assert_eq!(told_until(&mut other, "b7:1"), ["b7:1"]);
    redis.set("e:1", "1");
    assert_eq!(told_until(&mut long, "e:1"), ["e:1"]);
}

/// All connections' prefixes together are bounded by
/// TRACKING_TABLE_MAX_BYTES (each costs its length and 384 bytes): past
/// it a call is refused whole, naming the setting; what a connection held
/// is given back when it leaves.
#[test]
fn all_bcast_prefixes_together_are_bounded_by_tracking_table_max_bytes() {
    let (redis, proxy) = start(&[("TRACKING_TABLE_MAX_BYTES", "1900")]);
    // 386 bytes each: three fit, five do not.
    let mut first = tracking(&proxy, &["BCAST", "PREFIX", "x:", "PREFIX", "y:"]);
    let mut second = tracking(&proxy, &["BCAST", "PREFIX", "z:"]);
    let two_more = [
        "CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "v:", "PREFIX", "w:",
    ];
    assert_eq!(
        second.call(&two_more),
        "-ERR tracking prefixes of all connections would take more than TRACKING_TABLE_MAX_BYTES (1900 bytes)"
    );
    assert_eq!(
        second.call(&["CLIENT", "TRACKINGINFO"]),
        "%[$flags ~[$on $bcast] $redirect :0 $prefixes *[$z:]]"
    );
    redis.set("v:1", "1");
    redis.set("z:1", "1");
    assert_eq!(told_until(&mut second, "z:1"), ["z:1"]);
    // The first turns tracking off: its room is the second's.
    assert_eq!(first.call(&["CLIENT", "TRACKING", "OFF"]), "+OK");
    assert_eq!(first.call(&["PING"]), "+PONG");
    assert_eq!(second.call(&two_more), "+OK");
    redis.set("w:1", "1");
    assert_eq!(told_until(&mut second, "w:1"), ["w:1"]);
}
