//! `CLIENT TRACKING` for the proxy's own clients: which client read which
//! key or asked for which prefixes, and the messages that tell them a key
//! changed.
//!
//! - [`table`]: the keys each default-mode client read, bounded in keys and
//!   bytes, each key stored once; and the BCAST clients' prefixes.
//! - [`prefix_tree`]: those prefixes as a radix tree, so matching a changed
//!   key costs O(key length), not O(prefixes).
//! - [`delivery`]: the event loop's side: it hears of changes from the
//!   service, applies them to the table in bounded slices, and writes each
//!   client its messages.
//! - [`messages`]: the bytes of those messages, as Redis frames them.
//!
//! A read by a tracking client is recorded when the request is executed,
//! before its reply exists; a change that arrives while the reply is still
//! being fetched is sent after that reply (`Conn::push`), so a client never
//! caches a value whose invalidation it has already seen.

mod delivery;
mod messages;
mod prefix_tree;
mod table;

use std::collections::{BTreeSet, HashMap};
use std::ops::Bound::{Included, Unbounded};
use std::sync::Arc;

use mio::Token;

pub use delivery::{Limits, Tracker};

/// How a client asked to be told (`CLIENT TRACKING ON ...`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrackingMode {
    /// Told of every key under `prefixes`, whatever it read.
    pub bcast: bool,
    /// For `bcast`: sorted, as Redis lists them; `""` is every key. They
    /// add up over `CLIENT TRACKING ON BCAST` calls, as in Redis, up to
    /// [`MAX_PREFIXES`] and [`MAX_PREFIX_BYTES`]. Each is one allocation,
    /// shared with the tracking table.
    pub prefixes: BTreeSet<Arc<[u8]>>,
    /// Only reads after `CLIENT CACHING YES` are tracked.
    pub optin: bool,
    /// Reads after `CLIENT CACHING NO` are not tracked.
    pub optout: bool,
    /// Accepted: the proxy's clients never write.
    pub noloop: bool,
    /// Messages go to this connection (subscribed to
    /// `__redis__:invalidate`) instead of as pushes on this one.
    pub redirect: Option<u64>,
}

/// The channel RESP2 clients subscribe to for redirected messages.
pub const CHANNEL: &[u8] = b"__redis__:invalidate";

/// Who must be told what: per connection, the keys (`None`: everything).
/// Keys are shared with the table, not copied per reader.
pub type Deliveries = HashMap<Token, Option<Vec<Arc<[u8]>>>>;

/// BCAST prefixes one connection may hold (Redis has no limit). Real
/// clients name a handful; each new one is put in the radix tree on the
/// event loop, about a microsecond each, so one `CLIENT TRACKING` call
/// holds the other clients up a few milliseconds at most.
pub const MAX_PREFIXES: usize = 4096;

/// Bytes of BCAST prefixes one connection may hold, their lengths added:
/// 64 bytes a prefix on average at [`MAX_PREFIXES`]. It bounds the work of
/// checking and inserting one call's prefixes, however long each is.
pub const MAX_PREFIX_BYTES: usize = 256 * 1024;

/// What one prefix costs the proxy beyond its bytes: its `Arc`, its slots
/// in the session's set and the table's list, up to two tree nodes with
/// their lists. An estimate on the high side (250k prefixes of 12 bytes
/// took about 260 bytes each of resident memory), charged against
/// TRACKING_TABLE_MAX_BYTES for all clients together.
pub const PREFIX_COST: usize = 384;

/// What the prefixes of every connection take, estimated: each one's
/// length plus [`PREFIX_COST`].
pub fn prefix_bytes<'a>(prefixes: impl IntoIterator<Item = &'a [u8]>) -> usize {
    prefixes.into_iter().map(|p| p.len() + PREFIX_COST).sum()
}

/// Room for the prefixes of a connection about to add some: what the
/// others hold and the bound on them all, from the event loop's table.
#[derive(Clone, Copy, Debug, Default)]
pub struct PrefixRoom {
    /// Bytes (as [`prefix_bytes`]) the other connections' prefixes take.
    pub elsewhere: usize,
    /// TRACKING_TABLE_MAX_BYTES: all connections' prefixes together take
    /// at most this (apart from the keys, bounded by it on their own).
    pub max_bytes: usize,
}

/// Whether a connection holding `held` prefixes may hold `new` too (none
/// of them overlapping: [`check_prefixes`] ran), else the error to answer.
/// Past a limit, the whole command is refused.
pub fn check_room(
    held: &BTreeSet<Arc<[u8]>>,
    new: &[&[u8]],
    room: PrefixRoom,
) -> Result<(), String> {
    let count = held.len() + new.len();
    if count > MAX_PREFIXES {
        return Err(format!(
            "ERR too many tracking prefixes: at most {MAX_PREFIXES} per connection through the proxy"
        ));
    }
    let length: usize = held
        .iter()
        .map(|p| p.len())
        .chain(new.iter().map(|p| p.len()))
        .sum();
    if length > MAX_PREFIX_BYTES {
        return Err(format!(
            "ERR tracking prefixes too long: at most {MAX_PREFIX_BYTES} bytes of them per connection through the proxy"
        ));
    }
    if room.elsewhere + length + count * PREFIX_COST > room.max_bytes {
        return Err(format!(
            "ERR tracking prefixes of all connections would take more than TRACKING_TABLE_MAX_BYTES ({} bytes)",
            room.max_bytes
        ));
    }
    Ok(())
}

/// Up to this many new prefixes, a collision among them is named exactly
/// as Redis names it (its first pair in argument order, found by comparing
/// every pair as Redis does); past it, a pair found in O(n log n).
const EXACT_PAIRS_UP_TO: usize = 1024;

/// Redis's check of `CLIENT TRACKING ON BCAST PREFIX ...`: a client's
/// prefixes must not overlap (one a prefix of another), neither with those
/// it has (`existing`) nor among themselves. Returns Redis's error text.
///
/// Redis compares every pair, O(n²) for n prefixes given at once; this is
/// O(n log n), so a client cannot stall the loop with a long list.
pub fn check_prefixes(existing: &BTreeSet<Arc<[u8]>>, new: &[&[u8]]) -> Result<(), String> {
    const TAIL: &str = "Prefixes for a single client must not overlap.";
    let text = |p: &[u8]| String::from_utf8_lossy(p).into_owned();
    let among = overlapping_pair(new);
    for (i, prefix) in new.iter().enumerate() {
        if let Some(other) = overlapping_existing(existing, prefix) {
            return Err(format!(
                "ERR Prefix '{}' overlaps with an existing prefix '{}'. {TAIL}",
                text(prefix),
                text(other)
            ));
        }
        if let Some((_, j)) = among.filter(|(first, _)| *first == i) {
            return Err(format!(
                "ERR Prefix '{}' overlaps with another provided prefix '{}'. {TAIL}",
                text(prefix),
                text(new[j])
            ));
        }
    }
    Ok(())
}

/// The existing prefix Redis would name for `prefix` (it walks them in
/// sorted order): `""` overlaps everything; otherwise, as existing ones do
/// not overlap each other, only the one just before `prefix` in sorted
/// order can be a prefix of it, and the one just after can start with it.
fn overlapping_existing<'a>(existing: &'a BTreeSet<Arc<[u8]>>, prefix: &[u8]) -> Option<&'a [u8]> {
    if let Some(empty) = existing.get(&b""[..]) {
        return Some(empty);
    }
    let before = existing
        .range::<[u8], _>((Unbounded, Included(prefix)))
        .next_back()
        .filter(|p| prefix.starts_with(p));
    let after = || {
        existing
            .range::<[u8], _>((Included(prefix), Unbounded))
            .next()
            .filter(|p| p.starts_with(prefix))
    };
    before.or_else(after).map(|p| &**p)
}

/// Two of `new` that overlap, as (earlier, later) argument positions.
fn overlapping_pair(new: &[&[u8]]) -> Option<(usize, usize)> {
    let mut order: Vec<usize> = (0..new.len()).collect();
    order.sort_by(|a, b| new[*a].cmp(new[*b]));
    // In sorted order, the prefixes of an entry are on a stack of the
    // entries before it that it starts with.
    let mut stack: Vec<usize> = Vec::new();
    let mut found: Option<(usize, usize)> = None;
    for &i in &order {
        while stack
            .last()
            .is_some_and(|&top| !new[i].starts_with(new[top]))
        {
            stack.pop();
        }
        if let Some(&top) = stack.last() {
            let pair = (top.min(i), top.max(i));
            found = Some(found.map_or(pair, |best| best.min(pair)));
        }
        stack.push(i);
    }
    found?;
    if new.len() > EXACT_PAIRS_UP_TO {
        return found;
    }
    let overlap = |a: &[u8], b: &[u8]| a.starts_with(b) || b.starts_with(a);
    (0..new.len())
        .flat_map(|i| (i + 1..new.len()).map(move |j| (i, j)))
        .find(|&(i, j)| overlap(new[i], new[j]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(existing: &[&str], new: &[&str]) -> Result<(), String> {
        let existing = existing.iter().map(|p| Arc::from(p.as_bytes())).collect();
        let new: Vec<&[u8]> = new.iter().map(|p| p.as_bytes()).collect();
        check_prefixes(&existing, &new)
    }

    /// The texts are redis-server 7.0's, for the same commands.
    #[test]
    fn overlapping_prefixes_are_refused_with_redis_s_own_words() {
        let tail = "Prefixes for a single client must not overlap.";
        assert_eq!(
            check(&[], &["a", "ab"]),
            Err(format!(
                "ERR Prefix 'a' overlaps with another provided prefix 'ab'. {tail}"
            ))
        );
        assert_eq!(
            check(&[], &["ab", "a"]),
            Err(format!(
                "ERR Prefix 'ab' overlaps with another provided prefix 'a'. {tail}"
            ))
        );
        assert_eq!(
            check(&[], &["b", "c", "bx", "c"]),
            Err(format!(
                "ERR Prefix 'b' overlaps with another provided prefix 'bx'. {tail}"
            ))
        );
        assert_eq!(
            check(&["x", "y"], &["xy"]),
            Err(format!(
                "ERR Prefix 'xy' overlaps with an existing prefix 'x'. {tail}"
            ))
        );
        assert_eq!(
            check(&["x", "y"], &["x"]),
            Err(format!(
                "ERR Prefix 'x' overlaps with an existing prefix 'x'. {tail}"
            ))
        );
        assert_eq!(
            check(&["", "x", "y"], &[""]),
            Err(format!(
                "ERR Prefix '' overlaps with an existing prefix ''. {tail}"
            ))
        );
        assert_eq!(
            check(&["ab", "ac"], &["a"]),
            Err(format!(
                "ERR Prefix 'a' overlaps with an existing prefix 'ab'. {tail}"
            ))
        );
        assert_eq!(
            check(&["x", "y"], &["a", "b", "x"]),
            Err(format!(
                "ERR Prefix 'x' overlaps with an existing prefix 'x'. {tail}"
            ))
        );
        assert_eq!(check(&["x", "y"], &["a", "b", "z"]), Ok(()));
    }

    #[test]
    fn past_a_bound_the_whole_call_is_refused_naming_it() {
        let room = PrefixRoom {
            elsewhere: 0,
            max_bytes: usize::MAX,
        };
        let held: BTreeSet<Arc<[u8]>> = (0..4000)
            .map(|i| Arc::from(format!("h{i}:").as_bytes()))
            .collect();
        let many: Vec<String> = (0..96).map(|i| format!("n{i}:")).collect();
        let mut new: Vec<&[u8]> = many.iter().map(|p| p.as_bytes()).collect();
        assert_eq!(check_room(&held, &new, room), Ok(()));
        new.push(b"one more");
        let refused = check_room(&held, &new, room).expect_err("4097");
        assert!(refused.contains("at most 4096 per connection"), "{refused}");
        let long = vec![b'x'; MAX_PREFIX_BYTES];
        let refused = check_room(&BTreeSet::new(), &[&long, b"y"], room).expect_err("long");
        assert!(refused.contains("at most 262144 bytes"), "{refused}");
        assert_eq!(check_room(&BTreeSet::new(), &[&long], room), Ok(()));
        let tight = PrefixRoom {
            elsewhere: 1000,
            max_bytes: 1000 + 2 * (1 + PREFIX_COST),
        };
        assert_eq!(check_room(&BTreeSet::new(), &[b"a", b"b"], tight), Ok(()));
        let refused = check_room(&BTreeSet::new(), &[b"a", b"bc"], tight).expect_err("total");
        assert!(refused.contains("TRACKING_TABLE_MAX_BYTES"), "{refused}");
    }

    #[test]
    fn a_long_list_is_checked_without_comparing_every_pair() {
        let many: Vec<String> = (0..100_000).map(|i| format!("p:{i}:")).collect();
        let mut new: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(check(&[], &new), Ok(()));
        new.push("p:7");
        let refused = check(&[], &new).expect_err("p:7 overlaps p:7:");
        assert!(
            refused.starts_with("ERR Prefix 'p:7:' overlaps with another provided prefix 'p:7'.")
        );
    }
}
