//! The connection's own commands: `PING`, `ECHO`, `QUIT`, `HELLO`, `AUTH`,
//! `SELECT`, `RESET`.

use crate::config::Forwarding;

use crate::service::Service;

use super::super::reply::{Protocol, Replies};
use super::super::session::{AtRedis, Session};
use super::super::transaction::Transaction;
use super::{Context, Outcome, Spec};

/// `PING [message]`.
pub const PING: Spec = Spec {
    name: "ping",
    arity: -1,
    flags: &["fast"],
    keys: (0, 0, 0),
};
/// `ECHO message`.
pub const ECHO: Spec = Spec {
    name: "echo",
    arity: 2,
    flags: &["fast"],
    keys: (0, 0, 0),
};
/// `QUIT`.
pub const QUIT: Spec = Spec {
    name: "quit",
    arity: -1,
    flags: &["fast"],
    keys: (0, 0, 0),
};
/// `HELLO [protover [AUTH user pass] [SETNAME name]]`.
pub const HELLO: Spec = Spec {
    name: "hello",
    arity: -1,
    flags: &["fast", "no_auth"],
    keys: (0, 0, 0),
};
/// `AUTH [user] password`.
pub const AUTH: Spec = Spec {
    name: "auth",
    arity: -2,
    flags: &["fast", "no_auth"],
    keys: (0, 0, 0),
};
/// `SELECT db`.
pub const SELECT: Spec = Spec {
    name: "select",
    arity: 2,
    flags: &["fast"],
    keys: (0, 0, 0),
};

/// `RESET`: the connection back to how it began (Redis's
/// `clearClientConnectionState`). Not queued inside MULTI, allowed while
/// subscribed and before AUTH, as at Redis.
pub const RESET: Spec = Spec {
    name: "reset",
    arity: 1,
    flags: &[
        "noscript",
        "loading",
        "stale",
        "fast",
        "no_auth",
        "allow_busy",
    ],
    keys: (0, 0, 0),
};

pub fn ping(args: &[&[u8]], context: &mut Context<'_>) -> Outcome {
    // Subscribed in RESP2, PING answers as a message, as Redis does.
    if context.session.subscribed && context.replies.protocol == Protocol::Resp2 {
        if args.len() > 1 {
            return context.error("ERR wrong number of arguments for 'ping' command");
        }
        context.replies.array(2);
        context.replies.bulk(b"pong");
        context.replies.bulk(args.first().copied().unwrap_or(b""));
        return Outcome::Ok;
    }
    match args {
        [] => context.replies.simple("PONG"),
        [message] => context.replies.bulk(message),
        _ => return context.error("ERR wrong number of arguments for 'ping' command"),
    }
    Outcome::Ok
}

pub fn echo(args: &[&[u8]], context: &mut Context<'_>) -> Outcome {
    context.replies.bulk(args[0]);
    Outcome::Ok
}

pub fn quit(_args: &[&[u8]], context: &mut Context<'_>) -> Outcome {
    context.session.quit = true;
    context.ok()
}

/// `RESET`, as Redis's `clearClientConnectionState`: see [`clear_session`].
/// A client subscribed at Redis is reset in `Conn::execute_input` instead,
/// where `+RESET` is Redis's own reply on the subscription's connection.
pub fn reset(_args: &[&[u8]], context: &mut Context<'_>) -> Outcome {
    clear_session(context.session, context.replies, context.service);
    context.replies.simple("RESET");
    Outcome::Ok
}

/// What `RESET` clears, as Redis's `clearClientConnectionState`: tracking
/// off, the default database, RESP2, not authenticated (with
/// PROXY_PASSWORD), MULTI and WATCH gone (the held Redis connection is
/// dropped, which closes it: Redis discards both), the proxy's
/// invalidation channel left, the name cleared.
pub fn clear_session(session: &mut Session, replies: &mut Replies, service: &Service) {
    session.tracking = None;
    session.tracking_changed = true;
    session.tracking_prefixes_added.clear();
    session.caching = None;
    session.subscribed = false;
    session.at_redis = AtRedis::default();
    session.name = None;
    session.authenticated = false;
    session.db = service.default_db();
    session.transaction = Transaction::default();
    replies.protocol = Protocol::Resp2;
}

/// Redis's default `databases`: what `SELECT` checks against in the
/// moments before Redis's own setting is learnt (see
/// `Service::learn_databases`).
const DEFAULT_DATABASES: i64 = 16;

/// `SELECT db`: any database Redis has, checked as Redis checks it (its
/// words for a bad index and for a cluster, which has only database 0),
/// here on the event loop. Forwarded commands then run in it, and
/// `GET`/`MGET` read the cache's entries of it.
pub fn select(args: &[&[u8]], context: &mut Context<'_>) -> Outcome {
    let Some(db) = parse_integer(args[0]) else {
        return context.error("ERR value is not an integer or out of range");
    };
    let service = context.service;
    if service.is_cluster() && db != 0 {
        return context.error("ERR SELECT is not allowed in cluster mode");
    }
    // RESP_FORWARD=off keeps the proxy as it was before forwarding: one
    // database, REDIS_ADDRESS's.
    if service.forwarding() == Forwarding::Off && db != service.default_db() {
        return context.error(&format!(
            "ERR with RESP_FORWARD=off the proxy serves only database {}",
            service.default_db()
        ));
    }
    let databases = service.databases().unwrap_or(DEFAULT_DATABASES);
    if db < 0 || (db >= databases && db != service.default_db()) {
        return context.error("ERR DB index is out of range");
    }
    context.session.db = db;
    context.ok()
}

/// An integer as Redis's `string2ll` reads one: optional `-`, digits, no
/// leading zero, no sign on zero, no spaces, within i64.
pub(super) fn parse_integer(text: &[u8]) -> Option<i64> {
    let digits = text.strip_prefix(b"-").unwrap_or(text);
    let plain = match digits {
        [b'0'] => text.len() == 1,
        [b'1'..=b'9', rest @ ..] => rest.iter().all(u8::is_ascii_digit),
        _ => false,
    };
    if !plain {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// `AUTH [user] password`. With PROXY_PASSWORD set, as a Redis with
/// `requirepass`: the password, for the `default` user. Without one, as a
/// Redis 7 whose default user has no password.
pub fn auth(args: &[&[u8]], context: &mut Context<'_>) -> Outcome {
    match args {
        [_] if !context.service.requires_password() => context.error(
            "ERR AUTH <password> called without any password configured for the default user. \
             Are you sure your configuration is correct?",
        ),
        [password] => {
            credentials(context, b"default", password).map_or(Outcome::Error, |()| context.ok())
        }
        [user, password] => {
            credentials(context, user, password).map_or(Outcome::Error, |()| context.ok())
        }
        _ => context.error("ERR syntax error"),
    }
}

/// Checks `user` and `password`: only `default` exists; its password is
/// PROXY_PASSWORD, or anything when none is set. On success the connection
/// is authenticated; on failure the error reply is written.
fn credentials(context: &mut Context<'_>, user: &[u8], password: &[u8]) -> Result<(), ()> {
    let right = if user == b"default" {
        context.service.check_password(password, "resp")
    } else {
        context.service.auth_failed("resp");
        false
    };
    if right {
        context.session.authenticated = true;
        return Ok(());
    }
    context
        .replies
        .error("WRONGPASS invalid username-password pair or user is disabled.");
    Err(())
}

pub fn hello(args: &[&[u8]], context: &mut Context<'_>) -> Outcome {
    let mut protocol = context.replies.protocol;
    let mut options = args;
    if let Some((&version, rest)) = args.split_first() {
        protocol = match version {
            b"2" => Protocol::Resp2,
            b"3" => Protocol::Resp3,
            // As Redis: an integer first, then one it speaks.
            _ if parse_integer(version).is_none() => {
                return context.error("ERR Protocol version is not an integer or out of range")
            }
            _ => return context.error("NOPROTO unsupported protocol version"),
        };
        options = rest;
    }
    let mut name = None;
    let mut authenticating = false;
    while let Some((&option, tail)) = options.split_first() {
        if option.eq_ignore_ascii_case(b"auth") && tail.len() >= 2 {
            if credentials(context, tail[0], tail[1]).is_err() {
                return Outcome::Error;
            }
            authenticating = true;
            options = &tail[2..];
        } else if option.eq_ignore_ascii_case(b"setname") && !tail.is_empty() {
            // Checked as CLIENT SETNAME checks it, before anything changes.
            if let Err(message) =
                super::client::check_name(tail[0], context.service.max_key_bytes())
            {
                return context.error(&message);
            }
            name = Some(tail[0]);
            options = &tail[1..];
        } else {
            return context.error(&format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(option)
            ));
        }
    }
    // Redis 7.0's words (7.2 says `HELLO <proto> AUTH`): 7.0 is the
    // oldest Redis the proxy supports.
    if context.service.requires_password() && !context.session.authenticated && !authenticating {
        return context.error(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the \
             HELLO AUTH <user> <pass> option can be used to authenticate the client and \
             select the RESP protocol version at the same time",
        );
    }
    context.replies.protocol = protocol;
    if let Some(name) = name {
        context.session.name = (!name.is_empty()).then(|| name.to_vec());
    }
    let version = context.service.reported_version();
    let replies = &mut *context.replies;
    replies.map(8);
    replies.bulk(b"server");
    replies.bulk(b"redis");
    replies.bulk(b"version");
    replies.bulk(version.as_bytes());
    replies.bulk(b"proto");
    replies.integer(match protocol {
        Protocol::Resp2 => 2,
        Protocol::Resp3 => 3,
    });
    replies.bulk(b"id");
    replies.integer(i64::try_from(context.session.id).unwrap_or(i64::MAX));
    replies.bulk(b"mode");
    replies.bulk(b"standalone");
    replies.bulk(b"role");
    replies.bulk(b"master");
    replies.bulk(b"modules");
    replies.array(0);
    replies.bulk(b"proxy");
    replies.bulk(b"redis-proxy");
    Outcome::Ok
}
