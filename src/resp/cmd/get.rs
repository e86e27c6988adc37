//! `GET` and `MGET`: the reads, through the cache.

use std::time::Instant;

use crate::service::{Batch, Claim, Deferred, ReadError, Service, Ticket};

use super::super::reply::{Protocol, Replies};
use super::{Context, Outcome, Spec};

/// `GET key`.
pub const GET: Spec = Spec {
    name: "get",
    arity: 2,
    flags: &["readonly", "fast"],
    keys: (1, 1, 1),
};

/// `MGET key [key ...]`.
pub const MGET: Spec = Spec {
    name: "mget",
    arity: -2,
    flags: &["readonly", "fast"],
    keys: (1, -1, 1),
};

/// A read that needs Redis, owned so it can move to a worker thread.
pub enum Fetch {
    /// One of the proxy's own commands (GET, MGET, COMMAND GETKEYS).
    Own(Own),
    /// Another cacheable read that missed on the event loop
    /// (`cached.rs`).
    Reply(Box<super::cached::Read>),
}

/// A read of the proxy's own commands, answered by [`fetch`] here. The
/// reads name the client's database (`SELECT`): the cache keeps each
/// database's keys apart.
pub enum Own {
    /// `GET key` in a database, read through on the worker, which waits
    /// for a place.
    Get(i64, Vec<u8>, Deferred),
    /// `GET key` that missed on the event loop, its fetch led or joined
    /// there (the ticket knows its database).
    Claimed(Vec<u8>, Ticket),
    /// `MGET key ...` in a database, read on the worker, which waits for a
    /// place.
    MGet(i64, Vec<Vec<u8>>, Deferred),
    /// `COMMAND GETKEYS` (or, `true`, `GETKEYSANDFLAGS`) of this request:
    /// the first use reads Redis's command table.
    CommandKeys(Vec<Vec<u8>>, bool, Deferred),
}

/// `GET`, in the client's database: when one of the WORKERS places is free
/// now, the key is looked up
/// here, on the event loop, once: a hit is answered at once, and a miss
/// goes to a worker with the fetch it leads (only if a worker is free to
/// start it) or joins. Otherwise the read goes to a worker, which may wait
/// for a place.
pub fn get(args: &[&[u8]], context: &mut Context<'_>) -> Outcome {
    let key = args[0];
    if key.len() > context.service.max_key_bytes() {
        return key_too_long(context);
    }
    let started = Instant::now();
    // Remembered now, before the reply exists: a change arriving while it
    // is fetched is then told after it.
    context.session.track_read(key);
    let service = context.service;
    let db = context.session.db;
    let Some(place) = service.try_admit() else {
        return Outcome::Fetch(Fetch::Own(Own::Get(db, key.to_vec(), service.defer())));
    };
    // A fetch led here must start at once: one queued behind busy workers
    // would hold every other reader of this key (see `WorkQueue`).
    let found = match service.claim(db, key, place, context.peers.worker_free, started) {
        Claim::Hit(found) => found,
        Claim::Fetch(ticket) => {
            return Outcome::Fetch(Fetch::Own(Own::Claimed(key.to_vec(), ticket)))
        }
        Claim::Pass => {
            return Outcome::Fetch(Fetch::Own(Own::Get(db, key.to_vec(), service.defer())))
        }
    };
    log_get(key, "HIT", started);
    context.replies.bulk(found.value.bytes());
    Outcome::Ok
}

/// `MGET`: a worker reads every key, hits included.
pub fn mget(args: &[&[u8]], context: &mut Context<'_>) -> Outcome {
    if args
        .iter()
        .any(|k| k.len() > context.service.max_key_bytes())
    {
        return key_too_long(context);
    }
    for key in args {
        context.session.track_read(key);
    }
    let keys = args.iter().map(|k| k.to_vec()).collect();
    let db = context.session.db;
    Outcome::Fetch(Fetch::Own(Own::MGet(db, keys, context.service.defer())))
}

/// The answer to a key over MAX_KEY_BYTES when GET or MGET gets here,
/// which is only with RESP_FORWARD=off (otherwise Redis answers it,
/// uncached: `forward::forwards`): refused before it reaches the cache's
/// lock or Redis, and the connection goes on.
fn key_too_long(context: &mut Context<'_>) -> Outcome {
    let max = context.service.max_key_bytes();
    context.error(&format!("ERR key too long (max {max} bytes)"))
}

/// What a worker's read gives its connection.
pub enum Answer {
    /// The encoded reply.
    Reply(Vec<u8>),
    /// The cache could not read Redis in time (REDIS_TIMEOUT_MS: Redis
    /// busy, say): the request, for the event loop to send to Redis as a
    /// forwarded command, which waits as those do (see
    /// [`Service::resends`]).
    Resend(Batch),
}

/// The request `args` to send again when the cache's read failed with
/// `err` (see [`Service::resends`]); made only then.
pub(super) fn resend(err: &ReadError, service: &Service, args: &[&[u8]]) -> Option<Batch> {
    if !service.resends(err, args) {
        return None;
    }
    let mut batch = Batch::default();
    batch.push(args, false);
    Some(batch)
}

/// Completes a [`Fetch`] on a worker thread: waits for a WORKERS place
/// (unless the event loop's lookup led or joined the fetch), reads through
/// the cache, and returns the encoded reply, or the request to forward.
pub fn fetch(fetch: Fetch, protocol: Protocol, service: &Service) -> Answer {
    match fetch {
        Fetch::Own(own) => fetch_own(own, protocol, service),
        Fetch::Reply(read) => super::cached::finish(*read, service),
    }
}

/// [`fetch`] of one of the proxy's own commands.
fn fetch_own(mut fetch: Own, protocol: Protocol, service: &Service) -> Answer {
    let started = Instant::now();
    let mut replies = Replies::new();
    replies.protocol = protocol;
    let name = match &fetch {
        Own::Get(..) | Own::Claimed(..) => GET.name,
        Own::MGet(..) => MGET.name,
        Own::CommandKeys(_, false, _) => "command|getkeys",
        Own::CommandKeys(_, true, _) => "command|getkeysandflags",
    };
    let _place = match &mut fetch {
        Own::Get(_, _, deferred) | Own::MGet(_, _, deferred) | Own::CommandKeys(_, _, deferred) => {
            let place = service.admit();
            deferred.done();
            Some(place)
        }
        Own::Claimed(..) => None,
    };
    let in_flight = service.request_started();
    let ok = match fetch {
        Own::Get(db, key, _) => {
            fault_hook(&key);
            let result = service.get_in(db, &key);
            if let Some(batch) = resend_get(&result, service, &key, started) {
                return Answer::Resend(batch);
            }
            answer_get(&mut replies, service, &key, result, started)
        }
        Own::Claimed(key, ticket) => {
            let result = service.finish(&key, ticket);
            // After the read: a ticket is always finished (see `Ticket`).
            fault_hook(&key);
            if let Some(batch) = resend_get(&result, service, &key, started) {
                return Answer::Resend(batch);
            }
            answer_get(&mut replies, service, &key, result, started)
        }
        Own::MGet(db, keys, _) => match service.get_many(db, &keys) {
            Ok(values) => {
                replies.array(values.len());
                for value in values {
                    match value {
                        Some(value) => replies.bulk(value.bytes()),
                        None => replies.null(),
                    }
                }
                true
            }
            Err(err) => {
                let mut args: Vec<&[u8]> = Vec::with_capacity(keys.len() + 1);
                args.push(b"MGET");
                args.extend(keys.iter().map(Vec::as_slice));
                if let Some(batch) = resend(&err, service, &args) {
                    return Answer::Resend(batch);
                }
                read_error(&mut replies, &err, service);
                false
            }
        },
        Own::CommandKeys(argv, with_flags, _) => {
            super::getkeys::answer(&argv, with_flags, &mut replies, service)
        }
    };
    drop(in_flight);
    let elapsed = started.elapsed();
    service.resp_answered(ok, elapsed);
    match name.contains('|') {
        true => service.subcommand_done(name, ok, false, elapsed),
        false => service.command_done(super::index_of(name), ok, elapsed),
    }
    Answer::Reply(replies.buf)
}

/// [`resend`] of `GET key` when `result` failed so.
fn resend_get(
    result: &Result<Option<crate::service::Found>, ReadError>,
    service: &Service,
    key: &[u8],
    started: Instant,
) -> Option<Batch> {
    let batch = resend(result.as_ref().err()?, service, &[b"GET", key])?;
    log_get(key, "forwarded", started);
    Some(batch)
}

/// Writes a GET's answer; whether it was not an error.
fn answer_get(
    replies: &mut Replies,
    service: &Service,
    key: &[u8],
    result: Result<Option<crate::service::Found>, ReadError>,
    started: Instant,
) -> bool {
    let outcome = match &result {
        Ok(Some(found)) => found.source.name(),
        Ok(None) => "absent",
        Err(_) => "error",
    };
    log_get(key, outcome, started);
    match result {
        Ok(Some(found)) => replies.bulk(found.value.bytes()),
        Ok(None) => replies.null(),
        Err(err) => read_error(replies, &err, service),
    }
    outcome != "error"
}

/// A failed read: Redis's own error reply is passed on as it is
/// (`-WRONGTYPE ...`); the proxy's are `-ERR` with the reason.
pub(super) fn read_error(replies: &mut Replies, err: &ReadError, service: &Service) {
    let message = match err {
        ReadError::Reply(message) => message.clone(),
        other => format!("ERR {other}"),
    };
    service.error_replied(&message);
    replies.error(&message);
}

/// The access line for a RESP GET, at debug level.
fn log_get(key: &[u8], outcome: &str, started: Instant) {
    if log::log_enabled!(log::Level::Debug) {
        log::debug!(
            "RESP GET {} {outcome} {:?}",
            String::from_utf8_lossy(key),
            started.elapsed()
        );
    }
}

/// The key that makes a worker panic, in builds with the `test-hooks`
/// feature only (the test suite's), to prove a panic costs one error reply.
#[cfg(feature = "test-hooks")]
const PANIC_KEY: &[u8] = b"redis-proxy:test-hooks:panic";

#[cfg(feature = "test-hooks")]
fn fault_hook(key: &[u8]) {
    if key == PANIC_KEY {
        panic!("fault injection: a worker panics on request");
    }
}

#[cfg(not(feature = "test-hooks"))]
fn fault_hook(_key: &[u8]) {}
