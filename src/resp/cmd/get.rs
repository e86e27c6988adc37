//! `GET` and `MGET`: the reads, through the cache.

use std::time::Instant;

use crate::service::{ReadError, Service, Value};

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
    /// `GET key`.
    Get(Vec<u8>),
    /// `MGET key ...`.
    MGet(Vec<Vec<u8>>),
}

/// `GET`: a hit is answered here, on the event loop, when one of the
/// WORKERS places is free now; anything else goes to a worker, which
/// may wait for one.
pub fn get(args: &[&[u8]], context: &mut Context<'_>) -> Outcome {
    let key = args[0];
    if key.len() > context.service.max_key_bytes() {
        return key_too_long(context);
    }
    let started = Instant::now();
    // Remembered now, before the reply exists: a change arriving while it
    // is fetched is then told after it.
    context.session.track_read(key);
    let Some(_place) = context.service.try_admit() else {
        return Outcome::Fetch(Fetch::Get(key.to_vec()));
    };
    let Some(found) = context.service.cached(key) else {
        return Outcome::Fetch(Fetch::Get(key.to_vec()));
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
    Outcome::Fetch(Fetch::MGet(args.iter().map(|k| k.to_vec()).collect()))
}

/// The answer to a key over MAX_KEY_BYTES: refused before it reaches the
/// cache's lock or Redis, and the connection goes on.
fn key_too_long(context: &mut Context<'_>) -> Outcome {
    let max = context.service.max_key_bytes();
    context.error(&format!("ERR key too long (max {max} bytes)"))
}

/// Completes a [`Fetch`] on a worker thread: waits for a WORKERS place,
/// reads through the cache, and returns the encoded reply.
pub fn fetch(fetch: &Fetch, protocol: Protocol, service: &Service) -> Vec<u8> {
    let started = Instant::now();
    let mut replies = Replies::new();
    replies.protocol = protocol;
    let _place = service.admit();
    service.request_started();
    let ok = match fetch {
        Fetch::Get(key) => {
            fault_hook(key);
            let result = service.get(key);
            let outcome = match &result {
                Ok(Some(found)) => found.source.name(),
                Ok(None) => "absent",
                Err(_) => "error",
            };
            log_get(key, outcome, started);
            match result {
                Ok(Some(found)) => replies.bulk(found.value.bytes()),
                Ok(None) => replies.null(),
                Err(err) => read_error(&mut replies, &err, service),
            }
            outcome != "error"
        }
        Fetch::MGet(keys) => match read_all(service, keys) {
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
                read_error(&mut replies, &err, service);
                false
            }
        },
    };
    service.request_ended();
    let elapsed = started.elapsed();
    service.resp_answered(ok, elapsed);
    let name = match fetch {
        Fetch::Get(_) => GET.name,
        Fetch::MGet(_) => MGET.name,
    };
    service.command_done(super::index_of(name), ok, elapsed);
    replies.buf
}

/// Reads every key; absent keys and keys holding another type are nil, as
/// Redis's MGET answers. Redis being unreachable fails the whole command.
fn read_all(service: &Service, keys: &[Vec<u8>]) -> Result<Vec<Option<Value>>, ReadError> {
    keys.iter()
        .map(|key| match service.get(key) {
            Ok(found) => Ok(found.map(|f| f.value)),
            Err(ReadError::Reply(_)) => Ok(None),
            Err(err) => Err(err),
        })
        .collect()
}

/// A failed read: Redis's own error reply is passed on as it is
/// (`-WRONGTYPE ...`); the proxy's are `-ERR` with the reason.
fn read_error(replies: &mut Replies, err: &ReadError, service: &Service) {
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
