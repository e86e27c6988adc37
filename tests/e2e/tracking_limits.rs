//! What `CLIENT TRACKING` clients can make the proxy hold and do (issue 19,
//! rows 8 and 9): long keys stored once, the table bounded in bytes and
//! given back when a client leaves; 100k BCAST prefixes matched without the
//! other clients noticing.

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

/// Row 9: one client holds 100k BCAST prefixes while Redis takes 20k
/// writes. Another client keeps asking the proxy (INFO, answered by the
/// same loop that applies the changes) how many changed keys it has
/// applied: while the burst is worked off it must be answered, seeing the
/// count part-way, not only before and after (here: hundreds of answers).
/// Matched against every prefix on the loop, all at once, the burst held
/// the loop for seconds (3.3 s) and no answer came part-way.
#[test]
fn other_clients_are_answered_while_a_write_burst_meets_100k_bcast_prefixes() {
    const PREFIXES: usize = 100_000;
    const WRITES: usize = 20_000;
    let (redis, proxy) = start(&[]);
    let mut holder = Client::open(&proxy);
    assert!(holder.call(&["HELLO", "3"]).starts_with("%["));
    let prefixes: Vec<String> = (0..PREFIXES).map(|i| format!("p:{i:06}:")).collect();
    let mut words = vec!["CLIENT", "TRACKING", "ON", "BCAST"];
    for prefix in &prefixes {
        words.extend(["PREFIX", prefix.as_str()]);
    }
    assert_eq!(holder.call(&words), "+OK");
    // The holder reads what it is told, on its own thread.
    let told = thread::spawn(move || {
        let mut keys = 0;
        while keys < WRITES / 100 {
            let frame = holder.next();
            assert!(frame.starts_with(">[$invalidate"), "{frame:.60}");
            keys += frame.matches("$p:").count();
        }
        keys
    });

    let mut other = Client::open(&proxy);
    let field = "tracking_changes_processed";
    assert_eq!(info_field(&mut other, field), 0);
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
    assert_eq!(told.join().expect("holder"), WRITES / 100);
    assert!(
        part_way >= 10,
        "another client was answered only {part_way} times while 20k changes were matched"
    );
}
