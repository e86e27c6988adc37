//! What the tests of cached replies (issue 22) observe: whether a read
//! through the proxy reached Redis, read off Redis's own
//! `INFO commandstats` (zeroed before each read with `CONFIG RESETSTAT`),
//! and a read polled through the proxy until it answers what Redis does.

use std::time::{Duration, Instant};

use super::resp_wire::{show, Wire};
use super::{RedisServer, PATIENCE};

/// The names `INFO commandstats` counts `line` under (`object|encoding`):
/// an MGET may reach Redis as GETs of its keys (the proxy reads each key
/// of an MGET through its cache of GETs).
pub fn stat_names(line: &str) -> Vec<String> {
    let mut words = line.split(' ');
    let first = words.next().unwrap_or_default().to_lowercase();
    match first.as_str() {
        "object" | "config" | "client" => {
            let sub = words.next().unwrap_or_default().to_lowercase();
            vec![format!("{first}|{sub}")]
        }
        "mget" => vec![first, "get".to_owned()],
        _ => vec![first],
    }
}

/// How many times Redis has run `line`'s command (see [`stat_names`]).
pub fn calls(redis: &RedisServer, line: &str) -> u64 {
    stat_names(line).iter().map(|name| redis.calls(name)).sum()
}

/// Zeroes Redis's `INFO commandstats`.
pub fn reset_stats(redis: &RedisServer) {
    let _: () = redis.cmd(&["CONFIG", "RESETSTAT"]);
}

/// Polls `read` through `proxy` until it answers `want`; false if it never
/// does within `PATIENCE`.
pub fn answers_within_patience(proxy: &mut Wire, read: &str, want: &[u8]) -> bool {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if proxy.call(read) == want {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Reads `read` twice through `proxy` in its protocol: both answers must be
/// `want` (Redis's own), the first must reach Redis and the second not.
/// What went wrong, if anything.
pub fn miss_then_hit(
    redis: &RedisServer,
    proxy: &mut Wire,
    read: &str,
    want: &[u8],
) -> Option<String> {
    read_twice(redis, proxy, read, want, true)
}

/// [`miss_then_hit`], the first read allowed a hit (`must_fetch` false:
/// GET's entries are values, the same for RESP2 and RESP3 clients).
pub fn read_twice(
    redis: &RedisServer,
    proxy: &mut Wire,
    read: &str,
    want: &[u8],
    must_fetch: bool,
) -> Option<String> {
    reset_stats(redis);
    let miss = proxy.call(read);
    let fetched = calls(redis, read);
    let hit = proxy.call(read);
    let again = calls(redis, read) - fetched;
    let mut wrong = Vec::new();
    if miss != want {
        wrong.push(format!("first read answered {}", show(&miss)));
    }
    if hit != want {
        wrong.push(format!("second read answered {}", show(&hit)));
    }
    if must_fetch && fetched == 0 {
        wrong.push("the first read did not reach Redis".to_owned());
    }
    if again != 0 {
        wrong.push(format!("the second read reached Redis ({again} calls)"));
    }
    (!wrong.is_empty()).then(|| format!("{read}: {}; Redis: {}", wrong.join("; "), show(want)))
}
