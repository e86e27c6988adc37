//! Replies of every cacheable read, of any type (issue #22): the service's
//! side. A request the command table calls cacheable, and CACHE_COMMANDS
//! names, is looked up by its canonical bytes (`request.rs`) in the
//! client's database and protocol; on a miss one fetch (`fetch.rs`: the
//! request and the PTTL of each of its keys, pipelined) answers every
//! identical read in flight and fills the cache, the reply filed under
//! each of its keys so a change of any of them drops it
//! (`read_through/replies.rs`, `read_through/filing.rs`).
//!
//! GET and MGET keep their own path (`Service::get`): their hit cost is
//! not touched by any of this.

mod fetch;
mod request;

use std::time::Instant;

use crate::cache::{Db, Life};
use crate::commands::{Class, Command, CommandTable, KeyRef};

use super::forward::Client;
use super::read_through::Probe;
use super::{hit, Found, ReadError, Service, Value, SHARED_ABOVE};

pub use request::CacheCommands;

/// What the RESP event loop's lookup of a read found
/// ([`Service::lookup_reply`]).
pub enum ReplyLookup {
    /// A fresh cached reply, appended: Redis's bytes for the client's
    /// protocol.
    Hit,
    /// Not cached now: a worker reads it through the cache.
    Miss,
    /// Not a read whose reply is cached: forwarded as any request.
    Uncached,
}

/// What a cacheable request is cached under: its reply database, its
/// canonical bytes, and where its keys are in the argv.
struct Plan {
    reply_db: Db,
    request: Vec<u8>,
    keys: Vec<KeyRef>,
}

impl Service {
    /// Whether CACHE_COMMANDS names GET (`mget`: false) or MGET (true),
    /// which have a path of their own: the RESP port forwards them when it
    /// is not named, like any uncached read, and without GET no string is
    /// stored (HTTP's reads included).
    pub fn caches_strings(&self, mget: bool) -> bool {
        match mget {
            false => self.core.caches_strings(),
            true => self.caches_mget,
        }
    }

    /// Whether CACHE_COMMANDS names the command of `args` (any case): a
    /// cheap first test, on the stack, before the command table is asked
    /// ([`Service::lookup_reply`]).
    pub fn names_cached(&self, args: &[&[u8]]) -> bool {
        self.cache_commands.names(args)
    }

    /// The command `args` runs, if its reply may be cached (CACHE_COMMANDS
    /// naming it is checked by the caller).
    fn cacheable<'t>(&self, table: &'t CommandTable, args: &[&[u8]]) -> Option<&'t Command> {
        let command = table.lookup(args)?;
        let cacheable = command.arity_fits(args.len())
            && command.class(args) == Class::Cacheable
            && command.has_keys();
        cacheable.then_some(command)
    }

    /// Reads request `args` for `client` through the cache: a fresh cached
    /// reply, or one fetched from Redis (coalesced with identical reads in
    /// flight, and stored unless a change of any of its keys raced it).
    /// Blocking: for worker threads. `Found.value.bytes()` is Redis's reply
    /// byte for byte in the client's protocol (RESP3 if `client.resp3`), in
    /// its database.
    ///
    /// Redis's error replies (`-WRONGTYPE ...`, `-ERR ...`, `-MOVED` and
    /// the like; RESP3 blob errors) come back as `Ok`, their bytes as Redis
    /// sent them, never cached: a RESP front end relays them as they are,
    /// HTTP tells them by their first byte (`-` or `!`). `Err` is the
    /// proxy's failure to get a reply at all (Redis unreachable, or silent
    /// within REDIS_TIMEOUT_MS), after stale-if-error found nothing.
    ///
    /// A request that is not cacheable (not named by CACHE_COMMANDS, or not
    /// a read whose reply depends only on its keys) is
    /// forwarded as a client's would be (a write's keys dropped) and its
    /// reply returned, nothing stored; a failure to deliver it is then the
    /// proxy's `-ERR` reply, as `Ok` too.
    pub fn read_reply(&self, client: Client, args: &[&[u8]]) -> Result<Found, ReadError> {
        let table = self.commands()?;
        let plan = Some(())
            .filter(|()| self.cache_commands.names(args))
            .and_then(|()| self.cacheable(&table, args))
            .and_then(|command| self.reply_plan(command, client, args));
        drop(table);
        let Some(plan) = plan else {
            return self.fetch_uncached(client, args);
        };
        let keys: Vec<&[u8]> = plan.keys.iter().map(|k| args[k.index]).collect();
        let read = match self.core.reply_probe(plan.reply_db, &plan.request, &keys) {
            Probe::Hit(value, life) => {
                self.metrics.hit();
                Ok(hit(value, life))
            }
            Probe::Lead(flight) => {
                self.metrics.miss();
                self.lead_reply(client, args, (&plan, &keys), &flight)
            }
            Probe::Follow(flight) => {
                self.metrics.miss();
                self.metrics.coalesced();
                self.reply_found(flight.wait(self.wait_limit))
            }
        };
        read.or_else(|err| {
            let stale = || self.core.reply_stale(plan.reply_db, &plan.request);
            self.stale_or(err, stale)
        })
    }

    /// The RESP event loop's lookup of request `args` for `client`, which
    /// [`Service::names_cached`] let through, without Redis and without
    /// waiting: a fresh cached reply, its bytes appended to `out` (counted
    /// as a hit; a small one copied under the lock, so nothing is
    /// allocated for it), a miss for a worker to read with
    /// [`Service::read_reply`] (which counts it; also while the command
    /// table is not read yet: the worker reads it), or not cacheable
    /// (forwarded as any request). `at`: the loop's reading of the clock
    /// when the request came.
    pub fn lookup_reply(
        &self,
        client: Client,
        args: &[&[u8]],
        at: Instant,
        out: &mut Vec<u8>,
    ) -> ReplyLookup {
        let take = |value: &Value| match value.bytes().len() <= SHARED_ABOVE {
            true => {
                out.extend_from_slice(value.bytes());
                None
            }
            false => Some(value.clone()),
        };
        match self.lookup_reply_with(client, args, at, take) {
            Ok((shared, _)) => {
                if let Some(value) = shared {
                    out.extend_from_slice(value.bytes());
                }
                ReplyLookup::Hit
            }
            Err(lookup) => lookup,
        }
    }

    /// [`Service::lookup_reply`] of the reply itself, with how its entry's
    /// life stands: a fresh cached reply of `args` for `client` (counted as
    /// a hit), or `None`, nothing counted and Redis not asked. For a front
    /// end that reads on with what it found (HTTP's typed reads: `TYPE`).
    pub fn cached_reply(&self, client: Client, args: &[&[u8]], at: Instant) -> Option<Found> {
        let (value, life) = self
            .lookup_reply_with(client, args, at, Value::clone)
            .ok()?;
        Some(hit(value, life))
    }

    /// [`Service::lookup_reply`], what a hit makes of the cached reply
    /// left to `take` (run under the lock: it must do no more than copy
    /// or clone); a miss or an uncached read is `Err`.
    fn lookup_reply_with<T>(
        &self,
        client: Client,
        args: &[&[u8]],
        at: Instant,
        take: impl FnOnce(&Value) -> T,
    ) -> Result<(T, Life), ReplyLookup> {
        // Away from the bounds (no files to keep recent), the cache is
        // asked first: a reply is held only for a request found cacheable
        // when it was filed, and that never changes for the same bytes
        // (CACHE_COMMANDS is fixed; a new command table comes only with a
        // new link, whose loss flushed the cache), so a hit need not ask
        // the table again: no lock on it, no lookup of the name, no
        // classing of the arguments. A miss asks it, as before.
        let fast = self.core.reply_db(client.db, client.resp3);
        let near_full = self.core.near_full();
        if let Some(reply_db) = fast.filter(|_| !near_full) {
            return match self.reply_hit(reply_db, args, (at, &[]), take) {
                Some(hit) => Ok(hit),
                None => Err(self.miss_or_uncached(args)),
            };
        }
        let Some(table) = self.backend.commands_known() else {
            return Err(ReplyLookup::Miss);
        };
        let Some(command) = self.cacheable(&table, args) else {
            return Err(ReplyLookup::Uncached);
        };
        let Some(reply_db) = fast else {
            return Err(ReplyLookup::Uncached);
        };
        // Near the bounds, a hit keeps its keys' files recent (see
        // `ReadThrough::touch_files`).
        let mut refs = Vec::new();
        let mut touch: Vec<&[u8]> = Vec::new();
        if command.keys(args, &mut refs).is_ok() {
            touch.extend(refs.iter().map(|r| args[r.index]));
        }
        drop(table);
        self.reply_hit(reply_db, args, (at, &touch), take)
            .ok_or(ReplyLookup::Miss)
    }

    /// What [`Service::lookup_reply`] says of a read not found in the
    /// cache: a miss if the command table calls it cacheable (or is not
    /// read yet: the worker reads it), else not cacheable.
    fn miss_or_uncached(&self, args: &[&[u8]]) -> ReplyLookup {
        let Some(table) = self.backend.commands_known() else {
            return ReplyLookup::Miss;
        };
        match self.cacheable(&table, args) {
            Some(_) => ReplyLookup::Miss,
            None => ReplyLookup::Uncached,
        }
    }

    /// [`Service::lookup_reply`]'s look in the cache: a fresh reply of
    /// `args` in `reply_db`, what `take` makes of it under the lock, and
    /// its life; counted as a hit. The files of `touch` kept recent.
    fn reply_hit<T>(
        &self,
        reply_db: Db,
        args: &[&[u8]],
        (at, touch): (Instant, &[&[u8]]),
        take: impl FnOnce(&Value) -> T,
    ) -> Option<(T, Life)> {
        let now = self.core.time_at(at);
        let cached = request::with_encoded(args, |request| {
            self.core
                .reply_cached_with((reply_db, request), (now, touch), take)
        });
        if cached.is_some() {
            self.metrics.hit();
        }
        cached
    }

    /// Where `args`'s reply is cached, if it can be: its keys found, each
    /// under MAX_KEY_BYTES, the request times its keys within the per-item
    /// limit, its database small enough to carry the kind bits.
    fn reply_plan(&self, command: &Command, client: Client, args: &[&[u8]]) -> Option<Plan> {
        let mut keys = Vec::new();
        command.keys(args, &mut keys).ok()?;
        if keys.is_empty()
            || keys
                .iter()
                .any(|k| args[k.index].len() > self.max_key_bytes)
        {
            return None;
        }
        // Filing copies the request once per key (listed under each key
        // while it is fetched, and in each key's file once stored): a read
        // whose copies would pass the per-item limit is forwarded, so one
        // request of many keys cannot make the proxy hold keys × its bytes.
        let request_bytes = request::encoded_len(args);
        if request_bytes.saturating_mul(keys.len()) > self.core.max_entry_bytes() {
            return None;
        }
        let reply_db = self.core.reply_db(client.db, client.resp3)?;
        Some(Plan {
            reply_db,
            request: request::encode(args),
            keys,
        })
    }
}

#[cfg(test)]
mod tests;
