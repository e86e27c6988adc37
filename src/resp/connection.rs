//! One RESP client: read, parse every complete request, execute, write the
//! replies in order, repeat.
//!
//! Pipelined requests are answered in one write per batch. A protocol error
//! answers `-ERR Protocol error: ...` and closes this connection only; a
//! command error (wrong arity, unknown command, Redis down) answers `-ERR`
//! and the connection goes on, as Redis does.

use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Instant;

use crate::backend::BackendError;
use crate::metrics::Metrics;
use crate::service::Service;

use super::command::{Command, TABLE};
use super::parse::{self, Request};
use super::reply::{Protocol, Replies};
use super::{Registry, RespSettings};

/// Values at least this long are written straight from the cache's buffer
/// instead of being copied into the reply buffer first.
const LARGE_VALUE: usize = 64 * 1024;

/// Bytes read from the socket at a time.
const READ_CHUNK: usize = 16 * 1024;

/// What a connection keeps between commands.
struct Session {
    id: u64,
    name: Option<Vec<u8>>,
    quit: bool,
}

/// The connection loop for one client.
pub fn serve(
    mut stream: TcpStream,
    id: u64,
    service: &Arc<Service>,
    settings: &RespSettings,
    registry: &Registry,
) {
    let _ = stream.set_nodelay(true);
    // Idle and half-open connections are closed after the idle timeout; a
    // client that stops reading cannot hold the thread longer either.
    let _ = stream.set_read_timeout(Some(settings.idle_timeout));
    let _ = stream.set_write_timeout(Some(settings.idle_timeout));
    let mut session = Session {
        id,
        name: None,
        quit: false,
    };
    let mut input: Vec<u8> = Vec::with_capacity(READ_CHUNK);
    let mut replies = Replies::new();
    let mut chunk = [0u8; READ_CHUNK];
    loop {
        // Answer every complete request in the buffer, in order.
        let mut consumed = 0;
        loop {
            match parse::parse(&input[consumed..]) {
                Ok(Some(request)) => {
                    let frame = &input[consumed..consumed + request.len];
                    let result = execute(
                        frame,
                        &request,
                        &mut session,
                        &mut replies,
                        &mut stream,
                        service,
                        registry,
                    );
                    consumed += request.len;
                    if result.is_err() || session.quit {
                        let _ = stream.write_all(&replies.buf);
                        return;
                    }
                }
                Ok(None) => break,
                Err(err) => {
                    replies.error(&format!("ERR Protocol error: {}", err.0));
                    let _ = stream.write_all(&replies.buf);
                    close_after_error(&mut stream);
                    return;
                }
            }
        }
        input.drain(..consumed);
        if !replies.buf.is_empty() {
            if stream.write_all(&replies.buf).is_err() {
                return;
            }
            replies.buf.clear();
        }
        match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => input.extend_from_slice(&chunk[..n]),
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(err) => {
                if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) {
                    log::debug!("closing idle RESP connection {id}");
                }
                return;
            }
        }
    }
}

/// Closes after a protocol error so the client can read the error: closing
/// with unread input would send a reset that may destroy the reply in
/// flight. Sends FIN, then discards what the client still sends, within
/// bounds.
fn close_after_error(stream: &mut TcpStream) {
    const DISCARD_LIMIT: usize = 4 * 1024 * 1024;
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(1)));
    let mut sink = [0u8; READ_CHUNK];
    let mut discarded = 0;
    while discarded < DISCARD_LIMIT {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(n) => discarded += n,
        }
    }
}

/// Runs one request, appending its reply. An `Err` means the socket failed
/// while a large value was being written.
fn execute(
    frame: &[u8],
    request: &Request,
    session: &mut Session,
    replies: &mut Replies,
    stream: &mut TcpStream,
    service: &Service,
    registry: &Registry,
) -> io::Result<()> {
    if request.args.is_empty() {
        return Ok(());
    }
    let started = Instant::now();
    let args: Vec<&[u8]> = request.args.iter().map(|r| &frame[r.clone()]).collect();
    let metrics = service.metrics();
    let ok = match Command::parse(&args) {
        Command::Get(key) => {
            let _permit = service.admit();
            metrics.in_flight(1);
            let result = service.get(key);
            metrics.in_flight(-1);
            if log::log_enabled!(log::Level::Debug) {
                let outcome = match &result {
                    Ok(Some(found)) if found.hit => "HIT",
                    Ok(Some(_)) => "MISS",
                    Ok(None) => "absent",
                    Err(_) => "error",
                };
                log::debug!(
                    "RESP GET {} {outcome} {:?}",
                    String::from_utf8_lossy(key),
                    started.elapsed()
                );
            }
            match result {
                Ok(Some(found)) => write_value(replies, stream, &found.value.bytes)?,
                Ok(None) => replies.null(),
                Err(err) => backend_error(replies, &err),
            }
            true
        }
        Command::MGet(keys) => {
            let _permit = service.admit();
            metrics.in_flight(1);
            let result = mget(service, &keys);
            metrics.in_flight(-1);
            match result {
                Ok(values) => {
                    replies.array(values.len());
                    for value in values {
                        match value {
                            Some(bytes) => write_value(replies, stream, &bytes)?,
                            None => replies.null(),
                        }
                    }
                }
                Err(err) => backend_error(replies, &err),
            }
            true
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
            replies.bulk(info(metrics, registry).as_bytes());
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
    Ok(())
}

/// Reads every key; absent keys and keys holding another type are nil, as
/// Redis's MGET answers. Redis being unreachable fails the whole command.
fn mget(service: &Service, keys: &[&[u8]]) -> Result<Vec<Option<bytes::Bytes>>, BackendError> {
    keys.iter()
        .map(|key| match service.get(key) {
            Ok(found) => Ok(found.map(|f| f.value.bytes)),
            Err(BackendError::Reply(_)) => Ok(None),
            Err(err) => Err(err),
        })
        .collect()
}

fn write_value(replies: &mut Replies, stream: &mut TcpStream, value: &[u8]) -> io::Result<()> {
    if value.len() < LARGE_VALUE {
        replies.bulk(value);
        return Ok(());
    }
    replies.bulk_header(value.len());
    stream.write_all(&replies.buf)?;
    replies.buf.clear();
    stream.write_all(value)?;
    replies.buf.extend_from_slice(b"\r\n");
    Ok(())
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

fn info(metrics: &Metrics, registry: &Registry) -> String {
    format!(
        "# Server\r\nredis_version:{REDIS_VERSION}\r\nredis_proxy_version:{}\r\nredis_mode:standalone\r\nprocess_id:{}\r\n\r\n\
         # Clients\r\nconnected_clients:{}\r\n\r\n\
         # Stats\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\nrequests_in_flight:{}\r\nrequests_queued:{}\r\n",
        env!("CARGO_PKG_VERSION"),
        std::process::id(),
        registry.live(),
        metrics.hits(),
        metrics.misses(),
        metrics.requests_in_flight(),
        metrics.requests_queued(),
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
