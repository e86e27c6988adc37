//! The tracking table: which default-mode client read which key, and which
//! BCAST client asked for which prefixes.
//!
//! Memory: each key is stored once, as one `Arc<[u8]>` shared by the
//! key-to-entry map, the entry and every message naming it. The table is
//! bounded in keys (TRACKING_TABLE_MAX_KEYS, as Redis's
//! `tracking-table-max-keys`) and in bytes (TRACKING_TABLE_MAX_BYTES): past
//! either, the oldest keys are dropped and their readers told, as if the
//! keys had changed. A client that leaves (or turns tracking off) takes its
//! keys with it at once, not when they next change, so what it held is
//! free for the next client.
//!
//! Only the event loop touches the table: no lock.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use mio::Token;

use super::prefix_tree::PrefixTree;
use super::{prefix_bytes, Deliveries};

/// Bytes a key costs beyond its own length: its slots in the maps, the
/// entry, the `Arc` header, allocator rounding. An estimate on the high
/// side, so that the byte bound holds for the table's real footprint.
const ENTRY_COST: usize = 160;
/// Bytes one more reader of a key costs: its token in the entry and the
/// key's id in the reader's set.
const READER_COST: usize = 40;

struct Entry {
    key: Arc<[u8]>,
    readers: Vec<Token>,
}

/// Keys read by tracking clients (default mode) and the prefixes of the
/// clients in broadcast mode.
pub struct TrackingTable {
    /// Each key to its entry's id. Ids only grow: a smaller one is older.
    ids: HashMap<Arc<[u8]>, u64>,
    /// The entries by id, so oldest first.
    entries: BTreeMap<u64, Entry>,
    /// What each reader holds, so that it can be forgotten at once.
    held: HashMap<Token, HashSet<u64>>,
    next_id: u64,
    /// The table's estimated size (`ENTRY_COST`, `READER_COST`).
    bytes: usize,
    max_keys: usize,
    max_bytes: usize,
    /// Every BCAST client's prefixes, to match changed keys against.
    prefixes: PrefixTree,
    /// Each BCAST client's prefixes, to take them out of the tree again:
    /// the session's own allocations, shared.
    bcast: HashMap<Token, Vec<Arc<[u8]>>>,
    /// What the prefixes in `bcast` take ([`prefix_bytes`]), for the bound
    /// `CLIENT TRACKING` checks.
    prefix_bytes: usize,
    /// Clients gone, and the ids of the keys they held, still to drop.
    leaving: VecDeque<(Token, Vec<u64>)>,
}

impl TrackingTable {
    /// An empty table remembering at most `max_keys` keys and about
    /// `max_bytes` bytes of them.
    pub fn new(max_keys: usize, max_bytes: usize) -> TrackingTable {
        TrackingTable {
            ids: HashMap::new(),
            entries: BTreeMap::new(),
            held: HashMap::new(),
            next_id: 0,
            bytes: 0,
            max_keys: max_keys.max(1),
            max_bytes: max_bytes.max(1),
            prefixes: PrefixTree::new(),
            bcast: HashMap::new(),
            prefix_bytes: 0,
            leaving: VecDeque::new(),
        }
    }

    /// Keys remembered now.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// The table's estimated size in bytes, prefixes left out.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// BCAST prefixes held, all clients together.
    pub fn prefixes(&self) -> usize {
        self.prefixes.len()
    }

    /// BCAST prefixes `token` holds.
    pub fn prefix_count(&self, token: Token) -> usize {
        self.bcast.get(&token).map_or(0, Vec::len)
    }

    /// What the BCAST prefixes of every client but `token` take, as
    /// [`prefix_bytes`] counts.
    pub fn prefix_bytes_elsewhere(&self, token: Token) -> usize {
        let mine = self
            .bcast
            .get(&token)
            .map_or(0, |mine| prefix_bytes(mine.iter().map(|p| &**p)));
        self.prefix_bytes.saturating_sub(mine)
    }

    /// Remembers that `token` read `key`. When the table is over a bound,
    /// the oldest keys are dropped and their readers told, into `out`.
    pub fn track(&mut self, token: Token, key: Arc<[u8]>, out: &mut Deliveries) {
        match self.ids.get(&*key) {
            Some(id) => {
                let id = *id;
                if let Some(entry) = self.entries.get_mut(&id) {
                    if !entry.readers.contains(&token) {
                        entry.readers.push(token);
                        self.held.entry(token).or_default().insert(id);
                        self.bytes += READER_COST;
                    }
                }
            }
            None => {
                let id = self.next_id;
                self.next_id += 1;
                self.bytes += key.len() + ENTRY_COST + READER_COST;
                self.ids.insert(Arc::clone(&key), id);
                self.entries.insert(
                    id,
                    Entry {
                        key,
                        readers: vec![token],
                    },
                );
                self.held.entry(token).or_default().insert(id);
            }
        }
        while self.ids.len() > self.max_keys || self.bytes > self.max_bytes {
            let Some(oldest) = self.entries.keys().next().copied() else {
                break;
            };
            if let Some(entry) = self.remove(oldest) {
                tell(out, &entry.readers, &entry.key);
            }
        }
    }

    /// Takes entry `id` out, from its readers' sets too.
    fn remove(&mut self, id: u64) -> Option<Entry> {
        let entry = self.entries.remove(&id)?;
        self.ids.remove(&entry.key);
        for reader in &entry.readers {
            if let Some(ids) = self.held.get_mut(reader) {
                ids.remove(&id);
                if ids.is_empty() {
                    self.held.remove(reader);
                }
            }
        }
        self.bytes = self
            .bytes
            .saturating_sub(entry.key.len() + ENTRY_COST + READER_COST * entry.readers.len());
        Some(entry)
    }

    /// Adds `prefixes` (`""`: every key) to `token`'s broadcast prefixes.
    pub fn add_prefixes(&mut self, token: Token, prefixes: Vec<Arc<[u8]>>) {
        self.prefix_bytes += prefix_bytes(prefixes.iter().map(|p| &**p));
        let mine = self.bcast.entry(token).or_default();
        for prefix in prefixes {
            self.prefixes.insert(&prefix, token);
            mine.push(prefix);
        }
    }

    /// Takes `token` out of broadcast mode.
    pub fn drop_prefixes(&mut self, token: Token) {
        let mine = self.bcast.remove(&token).unwrap_or_default();
        let bytes = prefix_bytes(mine.iter().map(|p| &**p));
        self.prefix_bytes = self.prefix_bytes.saturating_sub(bytes);
        for prefix in mine {
            self.prefixes.remove(&prefix, token);
        }
    }

    /// Forgets `token` (closed, or tracking off): its prefixes at once,
    /// and the keys it read over the next calls of [`Self::tidy`]. Keys
    /// others read too stay for them.
    pub fn forget(&mut self, token: Token) {
        self.drop_prefixes(token);
        if let Some(ids) = self.held.remove(&token) {
            self.leaving.push_back((token, ids.into_iter().collect()));
        }
    }

    /// Whether keys of clients that left are still to be dropped.
    pub fn is_tidying(&self) -> bool {
        !self.leaving.is_empty()
    }

    /// Takes up to `budget` keys of clients that left out of the table, so
    /// that one which held a million keys does not stall the loop for the
    /// time it takes to drop them. Returns whether more wait. Meanwhile a
    /// key of theirs that changes is told to no one: they are gone.
    pub fn tidy(&mut self, budget: usize) -> bool {
        let mut left = budget;
        while let Some((token, ids)) = self.leaving.front_mut() {
            let token = *token;
            let take = ids.len().min(left);
            let batch: Vec<u64> = ids.drain(ids.len() - take..).collect();
            if ids.is_empty() {
                self.leaving.pop_front();
            }
            left -= take;
            for id in batch {
                let Some(entry) = self.entries.get_mut(&id) else {
                    continue;
                };
                entry.readers.retain(|reader| *reader != token);
                self.bytes = self.bytes.saturating_sub(READER_COST);
                if entry.readers.is_empty() {
                    self.remove(id);
                }
            }
            if left == 0 {
                break;
            }
        }
        if self.leaving.is_empty() && self.ids.capacity() > 4 * self.ids.len() + 1024 {
            // A client that held most of the table leaves the maps'
            // capacity behind; give it back once it is mostly unused.
            self.ids.shrink_to_fit();
            self.held.shrink_to_fit();
        }
        !self.leaving.is_empty()
    }

    /// `key` changed: who must be told, into `out`. Its default-mode entry
    /// is removed (a client reads again to be told again), as Redis does;
    /// BCAST clients with a prefix of it are told. O(key length) plus the
    /// readers told, however many prefixes there are.
    pub fn changed(&mut self, key: &[u8], out: &mut Deliveries) {
        let mut shared: Option<Arc<[u8]>> = None;
        if let Some(id) = self.ids.get(key).copied() {
            if let Some(entry) = self.remove(id) {
                tell(out, &entry.readers, &entry.key);
                shared = Some(entry.key);
            }
        }
        if self.prefixes.is_empty() {
            return;
        }
        self.prefixes.matches(key, |token| {
            let key = shared.get_or_insert_with(|| Arc::from(key));
            if let Some(keys) = out.entry(token).or_insert_with(|| Some(Vec::new())) {
                // A client with both "" and another prefix of it: once.
                if !keys.last().is_some_and(|last| Arc::ptr_eq(last, key)) {
                    keys.push(Arc::clone(key));
                }
            }
        });
    }

    /// Everything may have changed: the keys are forgotten (their readers
    /// are told to flush everything); prefixes stay.
    pub fn clear(&mut self) {
        self.ids = HashMap::new();
        self.entries.clear();
        self.held = HashMap::new();
        self.leaving.clear();
        self.bytes = 0;
    }
}

fn tell(out: &mut Deliveries, readers: &[Token], key: &Arc<[u8]>) {
    for token in readers {
        if let Some(keys) = out.entry(*token).or_insert_with(|| Some(Vec::new())) {
            keys.push(Arc::clone(key));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::PREFIX_COST;
    use super::*;

    fn key(k: &str) -> Arc<[u8]> {
        Arc::from(k.as_bytes())
    }

    fn told(out: &Deliveries, token: usize) -> Vec<String> {
        out.get(&Token(token))
            .and_then(Option::as_ref)
            .map(|keys| {
                keys.iter()
                    .map(|k| String::from_utf8_lossy(k).into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn readers_are_told_once_and_forgotten_and_the_bound_tells_the_oldest() {
        let mut table = TrackingTable::new(2, usize::MAX);
        let mut out = Deliveries::new();
        table.track(Token(1), key("a"), &mut out);
        table.track(Token(2), key("a"), &mut out);
        table.track(Token(1), key("b"), &mut out);
        assert!(out.is_empty());
        table.track(Token(1), key("c"), &mut out);
        // Over the bound: "a", the oldest, is dropped and both readers told.
        assert_eq!(out.len(), 2);
        assert_eq!(told(&out, 2), ["a"]);
        let mut out = Deliveries::new();
        table.changed(b"b", &mut out);
        table.changed(b"b", &mut out);
        assert_eq!(told(&out, 1), ["b"]);
        assert_eq!(table.len(), 1);
        table.add_prefixes(Token(9), vec![key("user:")]);
        let mut out = Deliveries::new();
        table.changed(b"user:1", &mut out);
        table.changed(b"other", &mut out);
        assert_eq!(told(&out, 9), ["user:1"]);
    }

    #[test]
    fn the_byte_bound_drops_the_oldest_and_a_key_is_stored_once() {
        let long = |i: usize| Arc::<[u8]>::from(format!("{i:08}").repeat(1024).as_bytes());
        let cost = 8 * 1024 + ENTRY_COST + READER_COST;
        let mut table = TrackingTable::new(usize::MAX, 10 * cost);
        let mut out = Deliveries::new();
        for i in 0..100 {
            let key = long(i);
            table.track(Token(1), Arc::clone(&key), &mut out);
            // One allocation, shared: ours, the map's and the entry's.
            if i == 99 {
                assert_eq!(Arc::strong_count(&key), 3);
            }
        }
        assert_eq!(table.len(), 10);
        assert_eq!(table.bytes(), 10 * cost);
        let dropped = out[&Token(1)].as_ref().expect("keys");
        assert_eq!(dropped.len(), 90);
        assert_eq!(dropped[0], long(0));
    }

    #[test]
    fn a_client_that_leaves_takes_its_keys_at_once_but_not_others() {
        let mut table = TrackingTable::new(100, usize::MAX);
        let mut out = Deliveries::new();
        for k in ["a", "b", "c"] {
            table.track(Token(1), key(k), &mut out);
        }
        table.track(Token(2), key("b"), &mut out);
        table.add_prefixes(Token(1), vec![key("x")]);
        assert_eq!(table.prefix_bytes_elsewhere(Token(2)), 1 + PREFIX_COST);
        assert_eq!(table.prefix_bytes_elsewhere(Token(1)), 0);
        table.forget(Token(1));
        // Two keys a turn: "b" stays for its other reader.
        assert!(table.tidy(2));
        assert!(!table.tidy(2));
        assert_eq!(table.len(), 1);
        assert_eq!(table.bytes(), 1 + ENTRY_COST + READER_COST);
        let mut out = Deliveries::new();
        for k in ["a", "b", "c", "xy"] {
            table.changed(k.as_bytes(), &mut out);
        }
        assert!(told(&out, 1).is_empty());
        assert_eq!(told(&out, 2), ["b"]);
        assert_eq!(table.prefix_bytes_elsewhere(Token(2)), 0);
        table.forget(Token(2));
        assert!(!table.tidy(100));
        assert_eq!((table.len(), table.bytes()), (0, 0));
    }

    #[test]
    fn a_bcast_client_is_told_once_per_key_even_with_overlapping_prefixes() {
        let mut table = TrackingTable::new(100, usize::MAX);
        table.add_prefixes(Token(3), vec![key("x"), key("")]);
        let mut out = Deliveries::new();
        table.changed(b"xy", &mut out);
        table.changed(b"z", &mut out);
        assert_eq!(told(&out, 3), ["xy", "z"]);
        table.drop_prefixes(Token(3));
        let mut out = Deliveries::new();
        table.changed(b"xy", &mut out);
        assert!(out.is_empty());
    }
}
