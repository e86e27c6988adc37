//! Cached replies without Redis: reply fetches led by hand through the
//! core, filled with made-up replies, and changes announced as the link
//! announces them. Each test names the path of the LRU it covers.

use std::sync::Arc;
use std::time::Duration;

use super::super::fill::Fetched;
use super::super::flight::Flight;
use super::super::read_through::Probe;
use super::super::*;
use crate::backend::InvalidationSink;
use crate::cache::{Db, Time, FILE, REPLY, RESP3};
use crate::clock::ManualClock;

/// A service over nothing (port 1), INVALIDATION=off, with `env` on top,
/// and the hand of its clock.
fn build(env: &[(&str, &str)]) -> (Service, ManualClock) {
    let hand = ManualClock::new();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let config = Config::from_lookup(|name| match name {
        "REDIS_ADDRESS" => Some("127.0.0.1:1".to_owned()),
        "INVALIDATION" => Some("off".to_owned()),
        _ => env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
    })
    .expect("valid config");
    let backend = Backend::new(&config).expect("backend");
    let service = Service::new(&config, backend, Arc::new(Metrics::new()), hand.clock());
    (service, hand)
}

const R2: Db = REPLY;

fn lead(service: &Service, db: Db, request: &[u8], keys: &[&[u8]]) -> Arc<Flight> {
    match service.core.reply_probe(db, request, keys) {
        Probe::Lead(flight) => flight,
        _ => panic!("not a lead"),
    }
}

fn fill(
    service: &Service,
    (db, request): (Db, &[u8]),
    keys: &[&[u8]],
    flight: &Flight,
    ends: Option<Time>,
) -> bool {
    let outcome = Ok(Some(Fetched {
        value: Value::new(b"*1\r\n$1\r\ny\r\n"),
        ends,
    }));
    service
        .core
        .reply_fill((db, request), keys, flight, &outcome)
}

/// Leads and fills `request` reading `keys`, with no TTL.
fn cache(service: &Service, db: Db, request: &[u8], keys: &[&[u8]]) -> bool {
    let flight = lead(service, db, request, keys);
    fill(service, (db, request), keys, &flight, None)
}

fn cached(service: &Service, db: Db, request: &[u8]) -> bool {
    let now = service.core.now();
    service.core.reply_cached(db, request, now).is_some()
}

fn len_and_bytes(service: &Service) -> (usize, usize) {
    let state = service.core.lock();
    (state.lru.len(), state.lru.bytes())
}

/// A GET entry of `key` (database 0), filled as a GET miss fills it.
fn get_entry(service: &Service, key: &[u8], bytes: &[u8]) {
    let flight = match service.core.lock().join_or_lead(0, key) {
        Probe::Lead(flight) => flight,
        _ => panic!("not a lead"),
    };
    let value = Fetched {
        value: Value::new(bytes),
        ends: None,
    };
    service.finish_flight(0, key, &flight, Ok(Some(value)));
}

#[test]
fn a_multi_key_reply_goes_with_either_key() {
    let (service, _hand) = build(&[]);
    for changed in [&b"a"[..], b"b"] {
        assert!(cache(&service, R2, b"sinter a b", &[b"a", b"b"]));
        assert!(cached(&service, R2, b"sinter a b"));
        // The reply and one file per key.
        assert_eq!(len_and_bytes(&service).0, 3);
        service.invalidate(&[changed]);
        assert!(!cached(&service, R2, b"sinter a b"), "changed {changed:?}");
    }
    // One change drops RESP2's and RESP3's replies of the key alike, and
    // their file: what they were charged is given back.
    let before = len_and_bytes(&service);
    assert!(cache(&service, R2, b"hgetall h", &[b"h"]));
    assert!(cache(&service, R2 | RESP3, b"hgetall h", &[b"h"]));
    service.invalidate(&[b"h"]);
    assert!(!cached(&service, R2, b"hgetall h"));
    assert!(!cached(&service, R2 | RESP3, b"hgetall h"));
    assert_eq!(len_and_bytes(&service), before);
}

#[test]
fn a_change_of_either_key_during_the_fetch_keeps_the_reply_out() {
    let (service, _hand) = build(&[]);
    for changed in [&b"a"[..], b"b"] {
        let flight = lead(&service, R2, b"sinter a b", &[b"a", b"b"]);
        // A second reader joins the fetch in flight.
        assert!(matches!(
            service.core.reply_probe(R2, b"sinter a b", &[b"a", b"b"]),
            Probe::Follow(_)
        ));
        service.invalidate(&[changed]);
        assert!(!fill(
            &service,
            (R2, b"sinter a b"),
            &[b"a", b"b"],
            &flight,
            None
        ));
        assert!(!cached(&service, R2, b"sinter a b"));
        assert!(service.core.lock().reply_deps.is_empty());
    }
    // A change of another key does not.
    let flight = lead(&service, R2, b"sinter a b", &[b"a", b"b"]);
    service.invalidate(&[b"c"]);
    assert!(fill(
        &service,
        (R2, b"sinter a b"),
        &[b"a", b"b"],
        &flight,
        None
    ));
}

#[test]
fn a_reply_ends_with_the_first_of_its_keys_ttls() {
    let (service, hand) = build(&[]);
    let flight = lead(&service, R2, b"lrange l 0 -1", &[b"l"]);
    let ends = service.core.now() + Duration::from_secs(2);
    assert!(fill(
        &service,
        (R2, b"lrange l 0 -1"),
        &[b"l"],
        &flight,
        Some(ends)
    ));
    hand.advance(Duration::from_millis(1900));
    assert!(cached(&service, R2, b"lrange l 0 -1"));
    hand.advance(Duration::from_millis(100));
    assert!(!cached(&service, R2, b"lrange l 0 -1"));
    // No life left (an error reply, a key gone): not stored.
    let flight = lead(&service, R2, b"lrange l 0 -1", &[b"l"]);
    let now = Some(service.core.now());
    assert!(!fill(
        &service,
        (R2, b"lrange l 0 -1"),
        &[b"l"],
        &flight,
        now
    ));
}

/// Displaced::Evicted: a file pushed out by CACHE_CAPACITY takes its
/// replies with it, or they could never be invalidated.
#[test]
fn an_evicted_file_takes_its_replies() {
    let (service, _hand) = build(&[("CACHE_CAPACITY", "3")]);
    assert!(cache(&service, R2, b"hgetall h", &[b"h"]));
    // Read: the reply is now more recent than its file.
    assert!(cached(&service, R2, b"hgetall h"));
    get_entry(&service, b"k1", b"v");
    // Full: the next insert evicts the least recently read, the file.
    get_entry(&service, b"k2", b"v");
    assert!(!cached(&service, R2, b"hgetall h"), "gone with its file");
    assert_eq!(len_and_bytes(&service).0, 2);
    let state = service.core.lock();
    let hash = state.lru.hasher().hash_in(FILE, b"h");
    assert!(state.lru.peek_hashed(hash, FILE, b"h").is_none());
}

/// Displaced::Several: one large insert pushing out several entries under
/// CACHE_MAX_BYTES, a file among them.
#[test]
fn a_file_pushed_out_among_several_takes_its_replies() {
    let (service, _hand) = build(&[("CACHE_MAX_BYTES", "65536")]);
    assert!(cache(&service, R2, b"smembers s", &[b"s"]));
    let small = vec![b'x'; 1000];
    for i in 0..58 {
        get_entry(&service, format!("s{i}").as_bytes(), &small);
    }
    // Nothing pushed out yet; the reply is now the most recent.
    assert!(cached(&service, R2, b"smembers s"));
    assert_eq!(len_and_bytes(&service).0, 60);
    // Room for this one takes the file and several others at once.
    get_entry(&service, b"big", &vec![b'x'; 8000]);
    assert!(!cached(&service, R2, b"smembers s"), "gone with its file");
    assert!(len_and_bytes(&service).1 <= 65536);
}

/// A reply refused as too large for CACHE_MAX_BYTES is not filed; a file
/// refused takes what it lists.
#[test]
fn a_reply_too_large_is_relayed_not_kept() {
    let (service, _hand) = build(&[("CACHE_MAX_BYTES", "65536")]);
    let flight = lead(&service, R2, b"lrange big 0 -1", &[b"big"]);
    let outcome = Ok(Some(Fetched {
        value: Value::new(&vec![b'x'; 9000]),
        ends: None,
    }));
    let request = (R2, &b"lrange big 0 -1"[..]);
    assert!(!service
        .core
        .reply_fill(request, &[b"big"], &flight, &outcome));
    assert_eq!(len_and_bytes(&service), (0, 0));
}

/// At most MAX_PER_FILE replies per key: one more is relayed, not kept;
/// replies gone no longer count.
#[test]
fn a_full_file_keeps_the_next_reply_out() {
    let (service, _hand) = build(&[]);
    let max = crate::service::read_through::MAX_PER_FILE;
    for i in 0..max {
        let request = format!("hget h f{i}");
        assert!(cache(&service, R2, request.as_bytes(), &[b"h"]), "{i}");
    }
    assert!(!cache(&service, R2, b"hget h more", &[b"h"]));
    let counted = "redis_proxy_replies_unfiled_total 1\n";
    assert!(service.metrics().render().contains(counted));
    let mut state = service.core.lock();
    let hash = state.lru.hasher().hash_in(R2, b"hget h f0");
    state.lru.remove_hashed(hash, R2, b"hget h f0");
    drop(state);
    assert!(cache(&service, R2, b"hget h more", &[b"h"]));
}

/// Displaced::Expired and the age list: a file is refiled after its
/// replies, so it is reclaimed after them, never leaving a live reply
/// behind; a reply read after its expiry is a miss.
#[test]
fn expired_replies_and_files_go_in_order() {
    let (service, hand) = build(&[("CACHE_CAPACITY", "3"), ("GLOBAL_CACHE_EXPIRY", "1")]);
    assert!(cache(&service, R2, b"llen l", &[b"l"]));
    hand.advance(Duration::from_secs(2));
    assert!(!cached(&service, R2, b"llen l"));
    for key in [&b"k1"[..], b"k2", b"k3"] {
        get_entry(&service, key, b"v");
    }
    // The file, reclaimed as expired, went too.
    assert_eq!(len_and_bytes(&service).0, 3);
    let state = service.core.lock();
    let hash = state.lru.hasher().hash_in(FILE, b"l");
    assert!(state.lru.peek_hashed(hash, FILE, b"l").is_none());
}

/// Displaced::Refused of a file (grown past an eighth of CACHE_MAX_BYTES):
/// every reply it listed goes, the new one included.
#[test]
fn a_file_refused_as_too_large_takes_its_replies() {
    let (service, _hand) = build(&[("CACHE_MAX_BYTES", "65536")]);
    let long = "x".repeat(300);
    let request = |i: usize| format!("hget h {long}{i}");
    let mut i = 0;
    while cache(&service, R2, request(i).as_bytes(), &[b"h"]) {
        i += 1;
        assert!(i < 64, "the file never grew past the bound");
    }
    // 8192 / ~320 bytes a listing: the file was refused at about 25.
    assert!(i > 10, "{i}");
    for j in 0..=i {
        assert!(!cached(&service, R2, request(j).as_bytes()), "{j}");
    }
    assert_eq!(len_and_bytes(&service), (0, 0));
}

/// Lru::expire_all (the link lost, with STALE_IF_ERROR_SECS): replies are
/// kept as stale, their files too, so a change still finds and drops them.
#[test]
fn stale_replies_still_go_with_their_keys() {
    let (service, _hand) = build(&[("STALE_IF_ERROR_SECS", "60")]);
    assert!(cache(&service, R2, b"zrange z 0 -1", &[b"z"]));
    service.core.lock().lru.expire_all(service.core.now());
    assert!(!cached(&service, R2, b"zrange z 0 -1"));
    assert!(service.core.reply_stale(R2, b"zrange z 0 -1").is_some());
    service.invalidate(&[b"z"]);
    assert!(service.core.reply_stale(R2, b"zrange z 0 -1").is_none());
}

/// Near the bounds a hit keeps its files recent: a hot reply survives a
/// stream of inserts that would otherwise push its file out, and the
/// reply with it.
#[test]
fn a_hot_reply_keeps_its_file_near_the_bounds() {
    let (service, _hand) = build(&[("CACHE_CAPACITY", "8")]);
    assert!(cache(&service, R2, b"hgetall h", &[b"h"]));
    for i in 0..30 {
        let read = service.core.reply_probe(R2, b"hgetall h", &[b"h"]);
        assert!(matches!(read, Probe::Hit(..)), "read {i}");
        get_entry(&service, format!("k{i}").as_bytes(), b"v");
    }
    assert_eq!(len_and_bytes(&service).0, 8);
}
