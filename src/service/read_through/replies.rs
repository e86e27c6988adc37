//! Cached replies in the read-through core (issue #22): a reply entry is
//! an ordinary entry of the LRU in a [`REPLY`] database (the client's
//! database, RESP3 or not), keyed by the request's canonical bytes, and
//! filed under each key it read (`filing.rs`). It reuses the fetches in
//! flight, coalescing and the fill race as GET does; a reply fetch is also
//! listed under each of its keys (`CacheState::reply_deps`), so a change
//! of either key of `SINTER a b` while it is in flight keeps it out.

use crate::cache::{Db, Displaced, Life, Lookup, Time, KIND_BASE, REPLY, RESP3};

use super::super::fill::Fetched;
use super::super::flight::Flight;
use super::super::{FetchResult, Value};
use super::filing::{entries, file_db, push_entry};
use super::{CacheState, Probe, ReadThrough};

/// The most replies filed under one key: a reply that would be one more
/// is relayed but not kept.
pub(in crate::service) const MAX_PER_FILE: usize = 64;

impl ReadThrough {
    /// The reply database for a client in Redis's database `db` speaking
    /// RESP3 or not; `None` for a database too large to carry the kind
    /// bits (never cached then).
    pub(in crate::service) fn reply_db(&self, db: i64, resp3: bool) -> Option<Db> {
        let db = self.db(db);
        (db < KIND_BASE).then_some(REPLY | if resp3 { RESP3 } else { 0 } | db)
    }

    /// A fresh cached reply of `request` in `reply_db` at `now`, never
    /// leading or joining a fetch (the RESP event loop's hit): `take` gets
    /// it under the lock, to copy a small one's bytes out (no allocation)
    /// or clone its handle, and must do no more. A hit keeps the files of
    /// `touch` (its keys, when [`ReadThrough::near_full`]) recent.
    pub(in crate::service) fn reply_cached_with<T>(
        &self,
        request: (Db, &[u8]),
        (now, touch): (Time, &[&[u8]]),
        take: impl FnOnce(&Value) -> T,
    ) -> Option<(T, Life)> {
        let on_hit = |value: &Value, life| Some((take(value), life));
        self.reply_lookup(request, (now, touch), on_hit, |_| None)
    }

    /// [`ReadThrough::reply_cached_with`], the value itself.
    #[cfg(test)]
    pub(in crate::service) fn reply_cached(
        &self,
        reply_db: Db,
        request: &[u8],
        now: Time,
    ) -> Option<(Value, Life)> {
        self.reply_cached_with((reply_db, request), (now, &[]), Value::clone)
    }

    /// A fresh cached reply, or the fetch to lead or join; a fetch led is
    /// listed under each of `keys` (see [`ReadThrough::reply_fill`]).
    pub(in crate::service) fn reply_probe(
        &self,
        reply_db: Db,
        request: &[u8],
        keys: &[&[u8]],
    ) -> Probe {
        let now = self.clock.now();
        let hit = |value: &Value, life| Probe::Hit(value.clone(), life);
        let touch = match self.near_full() {
            true => keys,
            false => &[],
        };
        self.reply_lookup((reply_db, request), (now, touch), hit, |state| {
            let probe = state.join_or_lead(reply_db, request);
            if matches!(probe, Probe::Lead(_)) {
                for key in keys {
                    let deps = state.reply_deps.entry((*key).into()).or_default();
                    deps.push((reply_db, request.into()));
                }
            }
            probe
        })
    }

    /// The reply kept past its freshness, within STALE_IF_ERROR_SECS (and
    /// any entry's, in the cache's numbering of databases: [`stale`]'s).
    ///
    /// [`stale`]: ReadThrough::stale
    pub(in crate::service) fn reply_stale(
        &self,
        reply_db: Db,
        request: &[u8],
    ) -> Option<(Value, Life)> {
        let now = self.clock.now();
        let state = self.lock();
        let (value, life) = state.lru.stale_in(reply_db, request, now)?;
        Some((value.clone(), life))
    }

    /// [`ReadThrough::lookup`] of a reply: the cache vouches for it only
    /// while the link lets it (every key it read was tracked when it was
    /// stored).
    fn reply_lookup<T>(
        &self,
        (reply_db, request): (Db, &[u8]),
        (now, touch): (Time, &[&[u8]]),
        on_hit: impl FnOnce(&Value, Life) -> T,
        on_miss: impl FnOnce(&mut CacheState) -> T,
    ) -> T {
        let hash = self.hasher.hash_in(reply_db, request);
        let touch_files = |state: &mut CacheState| {
            let mut dropped = Vec::new();
            self.touch_files(state, (file_db(reply_db), touch), now, &mut dropped);
            dropped
        };
        let entry = (hash, reply_db, request);
        self.lookup_hashed(entry, (now, true), (on_hit, touch_files), on_miss)
    }

    /// Makes the files of `keys` (in file database `fdb`) the most
    /// recently read entries, as the reply just read from them is: a hot
    /// reply's file is then not the LRU's next victim, which would take
    /// the reply with it. (A file found expired goes, with what it lists.)
    fn touch_files(
        &self,
        state: &mut CacheState,
        (fdb, keys): (Db, &[&[u8]]),
        now: Time,
        dropped: &mut Vec<Value>,
    ) {
        for key in keys {
            let hash = self.hasher.hash_in(fdb, key);
            if let Lookup::Expired(file) = state.lru.get_hashed(hash, fdb, key, now) {
                self.drop_listed(state, (fdb, &file), dropped);
                dropped.push(file);
            }
        }
    }

    /// The largest charge one entry may have (CACHE_MAX_BYTES / 8): also
    /// the most a reply's filing may copy of its request.
    pub(in crate::service) fn max_entry_bytes(&self) -> usize {
        self.max_bytes / crate::cache::ENTRY_FRACTION
    }

    /// Whether the cache is within an eighth of either bound
    /// (CACHE_CAPACITY, CACHE_MAX_BYTES), by the figures last published:
    /// only then can the LRU push a file out, so only then does a hit
    /// keep its files recent ([`ReadThrough::touch_files`]), which costs a
    /// lookup per key.
    pub(in crate::service) fn near_full(&self) -> bool {
        let entries = self.metrics.entries() as usize;
        let bytes = self.metrics.cache_bytes()[0] as usize;
        entries >= self.capacity.get() - self.capacity.get() / 8
            || bytes >= self.max_bytes - self.max_bytes / 8
    }

    /// Retires the reply fetch `flight` of `request` and stores its reply,
    /// filed under each of `keys`, unless: the flight went stale (a change
    /// of any of its keys, a flush, the link moving), the reply has no life
    /// left (an error reply, a key gone or its PTTL refused), a key is
    /// outside INVALIDATION_PREFIXES, or a key already has
    /// [`MAX_PER_FILE`] replies filed. Returns whether it was stored.
    pub(in crate::service) fn reply_fill(
        &self,
        (reply_db, request): (Db, &[u8]),
        keys: &[&[u8]],
        flight: &Flight,
        outcome: &FetchResult,
    ) -> bool {
        let tracked = keys.iter().all(|key| self.is_tracked(key));
        let hash = self.hasher.hash_in(reply_db, request);
        let now = self.clock.now();
        let fdb = file_db(reply_db);
        let mut dropped = Vec::new();
        let mut stored = false;
        let displaced = {
            let mut state = self.lock();
            let fresh = state.retire((reply_db, request), flight, tracked);
            state.undepend(reply_db, request, keys);
            let displaced = match outcome {
                Ok(Some(Fetched { value, ends }))
                    if fresh
                        && ends.is_none_or(|ends| ends > now)
                        && self.room_in_files(&state, fdb, keys, (reply_db, request)) =>
                {
                    let value = value.clone();
                    let lru = &mut state.lru;
                    let displaced = match ends {
                        None => lru.insert_hashed(hash, reply_db, request, value, now),
                        Some(ends) => {
                            lru.insert_hashed_until(hash, reply_db, request, value, now, *ends)
                        }
                    };
                    dropped.extend(self.drop_filed(&mut state, &displaced));
                    if !matches!(displaced, Displaced::Refused(..)) {
                        for (i, key) in keys.iter().enumerate() {
                            if !keys[..i].contains(key) {
                                self.file(
                                    &mut state,
                                    (fdb, key),
                                    (reply_db, request),
                                    now,
                                    &mut dropped,
                                );
                            }
                        }
                        // (A file refused as too large took it back out.)
                        stored = state.lru.contains_hashed(hash, reply_db, request);
                    }
                    displaced
                }
                Ok(Some(Fetched { ends, .. })) if fresh && ends.is_none_or(|ends| ends > now) => {
                    // A key had its fill of replies filed.
                    self.metrics.reply_unfiled();
                    state
                        .lru
                        .remove_hashed(hash, reply_db, request)
                        .map_or(Displaced::Nothing, Displaced::Replaced)
                }
                // Redis answered: what was kept of this request is not
                // its answer any more.
                Ok(_) => state
                    .lru
                    .remove_hashed(hash, reply_db, request)
                    .map_or(Displaced::Nothing, Displaced::Replaced),
                Err(_) => Displaced::Nothing,
            };
            self.metrics.set_entries(state.lru.len(), state.lru.bytes());
            displaced
        };
        self.count_displaced(&displaced);
        drop((displaced, dropped));
        stored
    }

    /// Whether every key's file has room for one more reply (replies it
    /// lists that are gone do not count).
    fn room_in_files(
        &self,
        state: &CacheState,
        fdb: Db,
        keys: &[&[u8]],
        reply: (Db, &[u8]),
    ) -> bool {
        keys.iter().all(|key| {
            let hash = self.hasher.hash_in(fdb, key);
            let Some(file) = state.lru.peek_hashed(hash, fdb, key) else {
                return true;
            };
            let listed = entries(fdb, file.bytes())
                .filter(|&entry| entry != reply && self.holds(state, entry))
                .count();
            listed < MAX_PER_FILE
        })
    }

    fn holds(&self, state: &CacheState, (db, request): (Db, &[u8])) -> bool {
        state
            .lru
            .contains_hashed(self.hasher.hash_in(db, request), db, request)
    }

    /// Files `reply` under `key`: its file is made again with the replies
    /// it listed that are still held, plus this one, and stored fresh (so
    /// it outlives each reply it lists). Whatever the LRU pushes out to
    /// make room, or refuses, takes its listed replies with it.
    fn file(
        &self,
        state: &mut CacheState,
        (fdb, key): (Db, &[u8]),
        reply: (Db, &[u8]),
        now: Time,
        dropped: &mut Vec<Value>,
    ) {
        let hash = self.hasher.hash_in(fdb, key);
        let old = state.lru.remove_hashed(hash, fdb, key);
        let mut list = Vec::new();
        if let Some(old) = &old {
            for entry in entries(fdb, old.bytes()) {
                if entry != reply && self.holds(state, entry) {
                    push_entry(&mut list, entry.0, entry.1);
                }
            }
        }
        push_entry(&mut list, reply.0, reply.1);
        let displaced = state
            .lru
            .insert_hashed(hash, fdb, key, Value::new(&list), now);
        dropped.extend(self.drop_filed(state, &displaced));
        if let Displaced::Refused(file, _) = &displaced {
            self.drop_listed(state, (fdb, file), dropped);
        }
        dropped.extend(old);
    }

    /// What a change of `key` does to cached replies, under the lock: the
    /// replies its `files` (taken out by the walk that dropped the key)
    /// list go, and reply fetches in flight that read it are marked stale.
    pub(in crate::service) fn replies_changed(
        &self,
        state: &mut CacheState,
        key: &[u8],
        files: &mut Vec<(Db, Value)>,
        dropped: &mut Vec<Value>,
    ) {
        for (fdb, file) in files.drain(..) {
            self.drop_listed(state, (fdb, &file), dropped);
            dropped.push(file);
        }
        if state.reply_deps.is_empty() {
            return;
        }
        let CacheState {
            reply_deps,
            flights,
            ..
        } = state;
        for (db, request) in reply_deps.get(key).into_iter().flatten() {
            if let Some(entry) = flights.get_mut(*db, request) {
                entry.stale = true;
            }
        }
    }
}

impl CacheState {
    /// Takes one listing of the reply fetch of `request` off each of its
    /// keys (a fetch led again after one went stale is listed again).
    fn undepend(&mut self, reply_db: Db, request: &[u8], keys: &[&[u8]]) {
        for key in keys {
            let Some(deps) = self.reply_deps.get_mut(*key) else {
                continue;
            };
            if let Some(at) = deps
                .iter()
                .position(|(db, r)| *db == reply_db && **r == *request)
            {
                deps.swap_remove(at);
            }
            if deps.is_empty() {
                self.reply_deps.remove(*key);
            }
        }
    }
}
