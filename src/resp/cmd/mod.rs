//! The commands the RESP front end serves, one module per group (as
//! mini-redis's `cmd/`): each command's table row (name, arity, flags, key
//! positions) sits beside the code that parses and runs it, and [`COMMANDS`]
//! lists them once, for dispatch and for `COMMAND`.
//!
//! [`execute`] answers a request into the connection's reply buffer. Cache
//! hits and commands that need no data are answered right there, on the
//! event loop, without blocking; a read that must go to Redis comes back as
//! [`Executed::Fetch`], which a worker thread completes with [`fetch`] while
//! the connection waits, so replies stay in request order.
//!
//! Anything not in the table goes to Redis (RESP_FORWARD, see
//! [`forwards`]): the connection gathers such requests into a batch, which
//! a worker sends ([`forward`]). With RESP_FORWARD=off they answer
//! `-ERR unknown command`.

mod cached;
mod client;
mod clients;
mod connection;
mod forward;
mod get;
mod getkeys;
mod info;
mod peers;
pub(super) mod pubsub;
mod server;
pub(super) mod subscribed;

use std::time::Instant;

use crate::commands::{packed, packed_const};
use crate::config::Forwarding;
use crate::service::Service;

use super::reply::Replies;
use super::session::Session;
use super::tracking::PrefixRoom;

pub use cached::read as cached_read;
pub use connection::clear_session;
pub use forward::{forwards, run as forward, Ran};
pub use get::{fetch, Answer, Fetch};
pub use peers::Registry;

/// A command's description, as Redis 7's `COMMAND` gives it.
pub struct Spec {
    /// Lower-case name.
    pub name: &'static str,
    /// Argument count, the name included; negative means "at least".
    pub arity: i64,
    /// Redis's flags for it.
    pub flags: &'static [&'static str],
    /// First key, last key (-1: the last argument), step; zeros: no keys.
    pub keys: (i64, i64, i64),
}

/// Runs one command: its arguments after the name, and what it may touch.
type Handler = fn(&[&[u8]], &mut Context<'_>) -> Outcome;

/// Every command served, its description and its handler. GET first: it is
/// the one looked up most.
pub const COMMANDS: &[(&Spec, Handler)] = &[
    (&get::GET, get::get),
    (&get::MGET, get::mget),
    (&connection::PING, connection::ping),
    (&connection::ECHO, connection::echo),
    (&connection::QUIT, connection::quit),
    (&connection::HELLO, connection::hello),
    (&connection::AUTH, connection::auth),
    (&connection::SELECT, connection::select),
    (&connection::RESET, connection::reset),
    (&client::CLIENT, client::client),
    (&pubsub::SUBSCRIBE, pubsub::subscribe),
    (&pubsub::UNSUBSCRIBE, pubsub::unsubscribe),
    (&pubsub::PUNSUBSCRIBE, pubsub::punsubscribe),
    (&pubsub::SUNSUBSCRIBE, pubsub::sunsubscribe),
    (&server::COMMAND, server::command),
    (&server::CONFIG, server::config),
    (&info::INFO, info::info),
    (&server::ACL, server::acl),
];

// `INFO commandstats` counts commands by their index in [`COMMANDS`].
const _: () = assert!(COMMANDS.len() <= crate::metrics::MAX_COMMANDS);

/// [`COMMANDS`]' names packed ([`packed`]), in the same order.
const PACKED: [u128; COMMANDS.len()] = {
    let mut out = [0; COMMANDS.len()];
    let mut i = 0;
    while i < COMMANDS.len() {
        out[i] = packed_const(COMMANDS[i].0.name);
        i += 1;
    }
    out
};

/// Where request name `name` (any case) is in [`COMMANDS`]: every
/// request's name is matched so, a forwarded write's included, as one
/// number compared with each.
pub fn own_index(name: &[u8]) -> Option<usize> {
    let key = packed(name)?;
    PACKED.iter().position(|&own| own == key)
}

/// The index of command `name` in [`COMMANDS`], for its counts.
fn index_of(name: &str) -> usize {
    COMMANDS
        .iter()
        .position(|(spec, _)| spec.name == name)
        .unwrap_or(COMMANDS.len())
}

/// What became of one request.
pub enum Executed {
    /// Answered into the reply buffer.
    Done,
    /// Needs Redis: hand it to a worker, and answer nothing more on this
    /// connection until its reply is in.
    Fetch(Fetch),
}

/// How a handler ended, for the request counters.
pub enum Outcome {
    /// Answered with a value or status.
    Ok,
    /// Answered with an error reply.
    Error,
    /// Needs Redis.
    Fetch(Fetch),
}

/// What a command may touch.
pub struct Context<'a> {
    /// The connection's state.
    pub session: &'a mut Session,
    /// Where replies go.
    pub replies: &'a mut Replies,
    /// The cache.
    pub service: &'a Service,
    /// The other connections, as far as commands may know them.
    pub peers: &'a Peers<'a>,
}

/// What a command may know of the other connections.
pub struct Peers<'a> {
    /// Connections open now, for `INFO`.
    pub live: usize,
    /// Whether a connection with this `CLIENT ID` is open (`REDIRECT`).
    pub exists: &'a dyn Fn(u64) -> bool,
    /// Whether a read handed to a worker now is started at once (see
    /// `workers::WorkQueue`): only then does `GET` lead its fetch here.
    pub worker_free: bool,
    /// Every connection, for `CLIENT LIST`, `INFO` and `KILL`.
    pub clients: &'a Registry,
    /// Room for this connection's BCAST prefixes (`CLIENT TRACKING`).
    pub prefix_room: PrefixRoom,
}

impl Context<'_> {
    /// Answers `message` as an error reply.
    fn error(&mut self, message: &str) -> Outcome {
        self.service.error_replied(message);
        self.replies.error(message);
        Outcome::Error
    }

    /// Answers an error reply of any bytes (Redis's words for a request
    /// quote its bytes, UTF-8 or not).
    fn error_bytes(&mut self, message: &[u8]) -> Outcome {
        self.service
            .error_replied(&String::from_utf8_lossy(message));
        self.replies.error_bytes(message);
        Outcome::Error
    }

    /// Answers `+OK`.
    fn ok(&mut self) -> Outcome {
        self.replies.simple("OK");
        Outcome::Ok
    }
}

/// Runs one request (its arguments, the command name first), appending its
/// reply, unless it needs Redis. `own`: [`own_index`] of its name, which
/// the caller has already looked up.
pub fn execute(
    args: &[&[u8]],
    own: Option<usize>,
    session: &mut Session,
    replies: &mut Replies,
    service: &Service,
    peers: &Peers<'_>,
) -> Executed {
    let Some((&name, rest)) = args.split_first() else {
        return Executed::Done;
    };
    let started = Instant::now();
    let mut context = Context {
        session,
        replies,
        service,
        peers,
    };
    let index = own;
    let command = index.and_then(|i| COMMANDS.get(i));
    // Whether the command ran, or was refused before (`rejected_calls`).
    let mut ran = false;
    let outcome = match command {
        // As Redis with a password: only these run before it is given
        // (but Redis's checks of the command come first).
        Some((spec, _))
            if service.requires_password()
                && !context.session.authenticated
                && !matches!(spec.name, "auth" | "hello" | "quit" | "reset") =>
        {
            refuse_unauthenticated(args, spec.name, &mut context)
        }
        None if service.requires_password() && !context.session.authenticated => {
            let fallback = String::from_utf8_lossy(name).to_lowercase();
            refuse_unauthenticated(args, &fallback, &mut context)
        }
        Some((spec, _)) if !arity_fits(spec.arity, args.len()) => context.error(&format!(
            "ERR wrong number of arguments for '{}' command",
            spec.name
        )),
        // As Redis: a RESP2 connection subscribed to a channel takes
        // nothing but Pub/Sub commands, PING, QUIT and RESET.
        Some((spec, _)) if subscribed_resp2(&context) && !subscribed::allowed(spec.name) => {
            // Named as Redis names it: a container's subcommand in full.
            let full = match rest.first() {
                Some(sub) if CONTAINERS.contains(&spec.name) => subcommand_name(spec.name, sub),
                _ => None,
            };
            refuse_subscribed(args, full.as_deref().unwrap_or(spec.name), &mut context)
        }
        Some((spec, handler)) => {
            ran = true;
            let outcome = handler(rest, &mut context);
            // CLIENT CACHING YES|NO applies to the one command after it.
            if spec.name != "client" {
                context.session.caching = None;
            }
            // What `CLIENT LIST` shows of it (the reads are left out: they
            // change nothing it shows, and are the hot path).
            if !matches!(spec.name, "get" | "mget") {
                let protocol = context.replies.protocol;
                peers.clients.sync(context.session, protocol, spec.name);
            }
            outcome
        }
        // What would have gone to Redis (`forwards`) cannot: Redis's
        // connection is not subscribed, and would run it.
        None if subscribed_resp2(&context) && service.forwarding() != Forwarding::Off => {
            let fallback = String::from_utf8_lossy(name).to_lowercase();
            refuse_subscribed(args, &fallback, &mut context)
        }
        None => {
            let message = subscribed::unknown_command(args);
            context.error_bytes(&message)
        }
    };
    let ok = match outcome {
        Outcome::Fetch(fetch) => return Executed::Fetch(fetch),
        Outcome::Ok => true,
        Outcome::Error => false,
    };
    let elapsed = started.elapsed();
    service.resp_answered(ok, elapsed);
    match (command, rest.first()) {
        // As Redis 7: a container's subcommands are counted apart
        // (`cmdstat_client|setname`).
        (Some((spec, _)), Some(sub)) if CONTAINERS.contains(&spec.name) => {
            if let Some(name) = subcommand_name(spec.name, sub) {
                service.subcommand_done(&name, ok, !ran, elapsed);
            }
        }
        (Some(_), _) => match index {
            Some(i) if ran => service.command_done(i, ok, elapsed),
            Some(i) => service.command_rejected(i),
            None => {}
        },
        (None, _) => {}
    }
    Executed::Done
}

/// Commands whose first argument names a subcommand, counted as
/// `name|subcommand` in `INFO commandstats`.
const CONTAINERS: &[&str] = &["client", "config", "command", "acl"];

/// `container|subcommand`, lower case, if `sub` looks like a subcommand
/// name (short, letters and digits): anything else is not counted.
fn subcommand_name(container: &str, sub: &[u8]) -> Option<String> {
    let plain = !sub.is_empty() && sub.len() <= 32 && sub.iter().all(u8::is_ascii_alphanumeric);
    plain.then(|| {
        format!(
            "{container}|{}",
            String::from_utf8_lossy(sub).to_lowercase()
        )
    })
}

fn arity_fits(arity: i64, args: usize) -> bool {
    let args = i64::try_from(args).unwrap_or(i64::MAX);
    if arity >= 0 {
        args == arity
    } else {
        args >= -arity
    }
}

/// Whether the connection is subscribed to the proxy's invalidation
/// channel in RESP2: Redis's Pub/Sub mode, where few commands run.
fn subscribed_resp2(context: &Context<'_>) -> bool {
    context.session.subscribed && context.replies.protocol == super::reply::Protocol::Resp2
}

/// Refuses `args` in RESP2 Pub/Sub mode as Redis would
/// ([`subscribed::refusal`]), from Redis's command table if it has been
/// read; else naming the command `fallback`.
fn refuse_subscribed(args: &[&[u8]], fallback: &str, context: &mut Context<'_>) -> Outcome {
    let table = context.service.commands_known();
    let message = subscribed::refusal(args, table.as_deref(), fallback);
    context.error_bytes(&message)
}

/// Refuses `args` from a client that has not authenticated as Redis
/// would ([`subscribed::unauthenticated`]).
fn refuse_unauthenticated(args: &[&[u8]], fallback: &str, context: &mut Context<'_>) -> Outcome {
    let table = context.service.commands_known();
    let message = subscribed::unauthenticated(args, table.as_deref(), fallback);
    context.error_bytes(&message)
}

/// `-ERR unknown subcommand`, worded as Redis words it.
fn unknown_subcommand(context: &mut Context<'_>, sub: &[u8], command: &str) -> Outcome {
    context.error(&format!(
        "ERR unknown subcommand '{}'. Try {} HELP.",
        String::from_utf8_lossy(sub),
        command.to_uppercase()
    ))
}

/// `-ERR wrong number of arguments` for a subcommand (`client|setname`).
fn subcommand_arity(context: &mut Context<'_>, command: &str, sub: &str) -> Outcome {
    context.error(&format!(
        "ERR wrong number of arguments for '{command}|{sub}' command"
    ))
}

/// A `HELP` answer: one simple string a line, as Redis gives them.
fn help(context: &mut Context<'_>, lines: &[&str]) -> Outcome {
    context.replies.array(lines.len());
    for line in lines {
        context.replies.simple(line);
    }
    Outcome::Ok
}

#[cfg(test)]
mod tests;
