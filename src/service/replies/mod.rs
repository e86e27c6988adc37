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

use std::time::{Duration, Instant};

use crate::cache::Db;
use crate::commands::{Class, Command, CommandTable, KeyRef};

use super::forward::Client;
use super::read_through::Probe;
use super::{hit, Found, ReadError, Service, Source};

pub use request::CacheCommands;

/// What a cacheable request is cached under: its reply database, its
/// canonical bytes, and where its keys are in the argv.
struct Plan {
    reply_db: Db,
    request: Vec<u8>,
    keys: Vec<KeyRef>,
}

impl Service {
    /// Whether request `args` (the command name first, any case) has its
    /// reply cached: a command CACHE_COMMANDS names, which Redis's table
    /// calls a read whose reply depends only on its keys (see
    /// `commands::Class::Cacheable`), with keys the table can find. False
    /// while the table has not been read (it is read on a worker, by the
    /// first forwarded request or [`Service::read_reply`]).
    #[allow(dead_code)] // The HTTP front end's (issue #22); the RESP loop asks may_cache_reply.
    pub fn is_cacheable(&self, args: &[&[u8]]) -> bool {
        if !self.cache_commands.names(args) {
            return false;
        }
        match self.backend.commands_known() {
            Some(table) => self.cacheable(&table, args).is_some(),
            None => false,
        }
    }

    /// Whether the RESP event loop sends `args` the cache's way
    /// ([`Service::cached_reply`], then [`Service::read_reply`] on a
    /// worker): cacheable, or named by CACHE_COMMANDS while the command
    /// table is not read yet (the worker reads it, and forwards the
    /// request as any other if it turns out not to be).
    pub fn may_cache_reply(&self, args: &[&[u8]]) -> bool {
        if !self.cache_commands.names(args) {
            return false;
        }
        match self.backend.commands_known() {
            Some(table) => self.cacheable(&table, args).is_some(),
            None => true,
        }
    }

    /// The command `args` runs, if its reply may be cached.
    fn cacheable<'t>(&self, table: &'t CommandTable, args: &[&[u8]]) -> Option<&'t Command> {
        if !self.cache_commands.names(args) {
            return None;
        }
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
    /// A request that is not cacheable ([`Service::is_cacheable`]) is sent
    /// to Redis and its reply returned, nothing stored.
    pub fn read_reply(&self, client: Client, args: &[&[u8]]) -> Result<Found, ReadError> {
        let table = self.commands()?;
        let plan = self
            .cacheable(&table, args)
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
        match read {
            Err(err @ (ReadError::Unavailable(_) | ReadError::Timeout(_)))
                if self.core.keeps_stale() =>
            {
                match self.core.reply_stale(plan.reply_db, &plan.request) {
                    Some((value, life)) => {
                        self.metrics.stale_served();
                        Ok(Found {
                            value,
                            source: Source::Stale,
                            fresh_for: Duration::ZERO,
                            age: life.age,
                        })
                    }
                    None => Err(err),
                }
            }
            read => read,
        }
    }

    /// A fresh cached reply to `args` for `client`, without Redis and
    /// without waiting (the RESP event loop's lookup): counted as a hit
    /// when found. `None` when not cached (a worker then reads it with
    /// [`Service::read_reply`], which counts the miss), not cacheable, or
    /// the command table not read yet. `at`: the loop's reading of the
    /// clock when the request came.
    pub fn cached_reply(&self, client: Client, args: &[&[u8]], at: Instant) -> Option<Found> {
        if !self.cache_commands.names(args) {
            return None;
        }
        let table = self.backend.commands_known()?;
        self.cacheable(&table, args)?;
        let reply_db = self.core.reply_db(client.db, client.resp3)?;
        let now = self.core.time_at(at);
        let (value, life) = request::with_encoded(args, |request| {
            self.core.reply_cached(reply_db, request, now)
        })?;
        self.metrics.hit();
        Some(hit(value, life))
    }

    /// Where `args`'s reply is cached, if it can be: its keys found, each
    /// under INVALIDATION_PREFIXES and MAX_KEY_BYTES, its database small
    /// enough to carry the kind bits.
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
