//! One client's commands: everything but the socket, which the event loop
//! (`event_loop.rs`) owns.
//!
//! [`execute`] answers a request into the connection's reply buffer. Cache
//! hits and commands that need no data are answered right there, on the
//! event loop, without blocking; a read that must go to Redis comes back as
//! [`Step::Fetch`], which a worker thread completes with [`fetch`] while the
//! connection waits, so replies stay in request order.

use std::time::Instant;

use bytes::Bytes;

use crate::backend::BackendError;
use crate::service::Service;

use super::command::{Command, TABLE};
use super::reply::{Protocol, Replies};

/// What a connection keeps between commands.
pub struct Session {
    /// The connection's number, for `CLIENT ID`.
    pub id: u64,
    /// Set by `CLIENT SETNAME` or `HELLO ... SETNAME`.
    pub name: Option<Vec<u8>>,
    /// `QUIT` was received: close once the replies are written.
    pub quit: bool,
}

impl Session {
    /// A fresh session for connection `id`.
    pub fn new(id: u64) -> Session {
        Session {
            id,
            name: None,
            quit: false,
        }
    }
}

/// A read that needs Redis, owned so it can move to a worker thread.
pub enum Fetch {
    /// `GET key`.
    Get(Vec<u8>),
    /// `MGET key ...`.
    MGet(Vec<Vec<u8>>),
}

/// What became of one request.
pub enum Step {
    /// Answered into the reply buffer.
    Done,
    /// Needs Redis: hand it to a worker, and answer nothing more on this
    /// connection until its reply is in.
    Fetch(Fetch),
}

/// Completes a [`Fetch`] on a worker thread: waits for a MAX_CLIENTS place,
/// reads through the cache, and returns the encoded reply.
pub fn fetch(fetch: &Fetch, protocol: Protocol, service: &Service) -> Vec<u8> {
    let started = Instant::now();
    let metrics = service.metrics();
    let mut replies = Replies::new();
    replies.protocol = protocol;
    let _place = service.admit();
    metrics.in_flight(1);
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
                Ok(Some(found)) => replies.bulk(&found.value.bytes),
                Ok(None) => replies.null(),
                Err(err) => backend_error(&mut replies, &err),
            }
            outcome != "error"
        }
        Fetch::MGet(keys) => match mget(service, keys) {
            Ok(values) => {
                replies.array(values.len());
                for value in values {
                    match value {
                        Some(bytes) => replies.bulk(&bytes),
                        None => replies.null(),
                    }
                }
                true
            }
            Err(err) => {
                backend_error(&mut replies, &err);
                false
            }
        },
    };
    metrics.in_flight(-1);
    metrics.resp_request(ok, started.elapsed());
    replies.buf
}

/// The key that makes a worker panic, in builds with the `fault-injection`
/// feature only (the test suite's), to prove a panic costs one error reply.
#[cfg(feature = "fault-injection")]
pub const PANIC_KEY: &[u8] = b"redis-proxy:fault-injection:panic";

#[cfg(feature = "fault-injection")]
fn fault_hook(key: &[u8]) {
    if key == PANIC_KEY {
        panic!("fault injection: a worker panics on request");
    }
}

#[cfg(not(feature = "fault-injection"))]
fn fault_hook(_key: &[u8]) {}

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

/// Runs one request (its arguments, the command name first), appending its
/// reply, unless it needs Redis. `live` is the number of open connections,
/// for `INFO`.
pub fn execute(
    args: &[&[u8]],
    session: &mut Session,
    replies: &mut Replies,
    service: &Service,
    live: usize,
) -> Step {
    if args.is_empty() {
        return Step::Done;
    }
    let started = Instant::now();
    let metrics = service.metrics();
    let ok = match Command::parse(args) {
        Command::Get(key) if key.len() > service.max_key_bytes() => {
            key_too_long(replies, service);
            false
        }
        Command::MGet(keys) if keys.iter().any(|k| k.len() > service.max_key_bytes()) => {
            key_too_long(replies, service);
            false
        }
        Command::Get(key) => {
            // A hit is answered here when a MAX_CLIENTS place is free now;
            // anything else goes to a worker, which may wait for one.
            let Some(_place) = service.try_admit() else {
                return Step::Fetch(Fetch::Get(key.to_vec()));
            };
            let Some(found) = service.cached(key) else {
                return Step::Fetch(Fetch::Get(key.to_vec()));
            };
            log_get(key, "HIT", started);
            replies.bulk(&found.value.bytes);
            true
        }
        // Several keys: a worker reads them all, hits included.
        Command::MGet(keys) => {
            return Step::Fetch(Fetch::MGet(keys.iter().map(|k| k.to_vec()).collect()))
        }
        Command::Ping(None) => {
            replies.simple("PONG");
            true
        }
        Command::Ping(Some(message)) | Command::Echo(message) => {
            replies.bulk(message);
            true
        }
        Command::Quit => {
            replies.simple("OK");
            session.quit = true;
            true
        }
        Command::Hello { version, name } => hello(replies, session, version, name),
        Command::ClientSetName(name) => {
            session.name = (!name.is_empty()).then(|| name.to_vec());
            replies.simple("OK");
            true
        }
        Command::ClientGetName => {
            match &session.name {
                Some(name) => replies.bulk(name),
                None => replies.null(),
            }
            true
        }
        Command::ClientSetInfo => {
            replies.simple("OK");
            true
        }
        Command::ClientId => {
            replies.integer(i64::try_from(session.id).unwrap_or(i64::MAX));
            true
        }
        Command::Select(db) => {
            if db == b"0" {
                replies.simple("OK");
                true
            } else {
                replies.error("ERR the proxy serves one database; only SELECT 0 is allowed");
                false
            }
        }
        Command::CommandList => {
            replies.array(TABLE.len());
            for entry in TABLE {
                command_entry(replies, entry);
            }
            true
        }
        Command::CommandCount => {
            replies.integer(TABLE.len() as i64);
            true
        }
        Command::CommandDocs => {
            replies.map(0);
            true
        }
        Command::CommandInfo(names) => {
            replies.array(names.len());
            for name in names {
                match TABLE
                    .iter()
                    .find(|e| name.eq_ignore_ascii_case(e.0.as_bytes()))
                {
                    Some(entry) => command_entry(replies, entry),
                    None => replies.null(),
                }
            }
            true
        }
        Command::ConfigGet(patterns) => {
            config_get(replies, &patterns);
            true
        }
        Command::Info => {
            replies.bulk(info(service, live).as_bytes());
            true
        }
        Command::Invalid(message) => {
            replies.error(&message);
            false
        }
        Command::Unknown(name, rest) => {
            let mut message = format!(
                "ERR unknown command '{}', with args beginning with:",
                String::from_utf8_lossy(name)
            );
            for arg in rest.iter().take(8) {
                message.push_str(&format!(" '{}'", String::from_utf8_lossy(arg)));
            }
            replies.error(&message);
            false
        }
    };
    metrics.resp_request(ok, started.elapsed());
    Step::Done
}

/// The answer to a key over MAX_KEY_BYTES: refused before it reaches the
/// cache's lock or Redis, and the connection goes on.
fn key_too_long(replies: &mut Replies, service: &Service) {
    replies.error(&format!(
        "ERR key too long (max {} bytes)",
        service.max_key_bytes()
    ));
}

/// Reads every key; absent keys and keys holding another type are nil, as
/// Redis's MGET answers. Redis being unreachable fails the whole command.
fn mget(service: &Service, keys: &[Vec<u8>]) -> Result<Vec<Option<Bytes>>, BackendError> {
    keys.iter()
        .map(|key| match service.get(key) {
            Ok(found) => Ok(found.map(|f| f.value.bytes)),
            Err(BackendError::Reply(_)) => Ok(None),
            Err(err) => Err(err),
        })
        .collect()
}

/// A backing failure: Redis's own error reply is passed on as it is
/// (`-WRONGTYPE ...`); the proxy's are `-ERR` with the reason.
fn backend_error(replies: &mut Replies, err: &BackendError) {
    match err {
        BackendError::Reply(message) => replies.error(message),
        other => replies.error(&format!("ERR {other}")),
    }
}

fn hello(
    replies: &mut Replies,
    session: &mut Session,
    version: Option<&[u8]>,
    name: Option<&[u8]>,
) -> bool {
    if let Some(version) = version {
        match version {
            b"2" => replies.protocol = Protocol::Resp2,
            b"3" => replies.protocol = Protocol::Resp3,
            _ => {
                replies.error("NOPROTO unsupported protocol version");
                return false;
            }
        }
    }
    if let Some(name) = name {
        session.name = Some(name.to_vec());
    }
    let proto = match replies.protocol {
        Protocol::Resp2 => 2,
        Protocol::Resp3 => 3,
    };
    replies.map(7);
    replies.bulk(b"server");
    replies.bulk(b"redis-proxy");
    replies.bulk(b"version");
    replies.bulk(REDIS_VERSION.as_bytes());
    replies.bulk(b"proto");
    replies.integer(proto);
    replies.bulk(b"id");
    replies.integer(i64::try_from(session.id).unwrap_or(i64::MAX));
    replies.bulk(b"mode");
    replies.bulk(b"standalone");
    replies.bulk(b"role");
    replies.bulk(b"master");
    replies.bulk(b"modules");
    replies.array(0);
    true
}

/// The Redis version whose protocol the proxy speaks, reported to clients
/// that choose features by version.
const REDIS_VERSION: &str = "7.0.0";

fn command_entry(replies: &mut Replies, (name, arity, flags): &(&str, i64, &[&str])) {
    // Redis 7's shape: name, arity, flags, first key, last key, step,
    // ACL categories, tips, key specs, subcommands.
    let has_keys = matches!(*name, "get" | "mget");
    replies.array(10);
    replies.bulk(name.as_bytes());
    replies.integer(*arity);
    replies.array(flags.len());
    for flag in *flags {
        replies.simple(flag);
    }
    replies.integer(i64::from(has_keys));
    replies.integer(match *name {
        "get" => 1,
        "mget" => -1,
        _ => 0,
    });
    replies.integer(i64::from(has_keys));
    for _ in 0..4 {
        replies.array(0);
    }
}

/// What a proxy that persists nothing answers to the settings clients ask
/// about; redis-benchmark asks for `save` and `appendonly` at start.
const CONFIG: &[(&str, &str)] = &[("save", ""), ("appendonly", "no"), ("databases", "1")];

fn config_get(replies: &mut Replies, patterns: &[&[u8]]) {
    let matching: Vec<&(&str, &str)> = CONFIG
        .iter()
        .filter(|(name, _)| patterns.iter().any(|p| glob_match(p, name.as_bytes())))
        .collect();
    replies.map(matching.len());
    for (name, value) in matching {
        replies.bulk(name.as_bytes());
        replies.bulk(value.as_bytes());
    }
}

/// Case-insensitive match with `*` (any run) and `?` (any byte). Iterative,
/// remembering only the last `*`, so a hostile pattern costs at most
/// O(pattern x name), never exponential time.
fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut last_star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(b'*') => {
                last_star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == b'?' || c.eq_ignore_ascii_case(&name[n]) => {
                p += 1;
                n += 1;
            }
            _ => match last_star {
                Some((star, matched)) => {
                    p = star + 1;
                    n = matched + 1;
                    last_star = Some((star, matched + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}

fn info(service: &Service, live: usize) -> String {
    let metrics = service.metrics();
    format!(
        "# Server\r\nredis_version:{REDIS_VERSION}\r\nredis_proxy_version:{}\r\nredis_mode:standalone\r\nprocess_id:{}\r\n\r\n\
         # Clients\r\nconnected_clients:{}\r\n\r\n\
         # Stats\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\nrequests_in_flight:{}\r\nrequests_queued:{}\r\n\r\n\
         # Invalidation\r\ninvalidation_mode:{}\r\ninvalidation_link:{}\r\ninvalidations:{}\r\n",
        env!("CARGO_PKG_VERSION"),
        std::process::id(),
        live,
        metrics.hits(),
        metrics.misses(),
        metrics.requests_in_flight(),
        metrics.requests_queued(),
        service.invalidation_mode(),
        service.link_state().name(),
        metrics.invalidations(),
    )
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs() {
        assert!(glob_match(b"save", b"save"));
        assert!(glob_match(b"SAVE", b"save"));
        assert!(glob_match(b"*", b"appendonly"));
        assert!(glob_match(b"append*", b"appendonly"));
        assert!(glob_match(b"s?ve", b"save"));
        assert!(!glob_match(b"save", b"saves"));
        assert!(glob_match(b"*a*e*", b"save"));
        // Many stars cost linear time, not exponential.
        let hostile = [b'*'; 10_000];
        assert!(!glob_match(&[&hostile[..], b"x"].concat(), b"appendonly"));
    }
}
