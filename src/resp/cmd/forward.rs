//! Which requests go to Redis (RESP_FORWARD), and running a batch of them
//! on a worker. What is done with each command there (sent, refused, its
//! keys dropped from the cache) is the service's: see
//! `service::forward`.

use std::time::Instant;

use crate::config::Forwarding;
use crate::service::{Batch, Client, Held, Lane, Queued, Service};

use super::super::session::Session;
use super::COMMANDS;

/// Whether request `args` (the command name first) goes to Redis rather
/// than being answered here: anything the proxy does not serve itself
/// (GET and MGET it serves in every database: the cache keys entries by
/// database; but not of a key over MAX_KEY_BYTES, which Redis answers
/// uncached), and (RESP_FORWARD=all) `COMMAND` and `CONFIG`, whose answers are Redis's.
/// Never before the client gave PROXY_PASSWORD, nor for a RESP2 client
/// subscribed to the proxy's own invalidation channel (the proxy answers
/// both as Redis would). `own`: where the name is in [`COMMANDS`]
/// ([`own_index`], which the caller may have found for the last request
/// of the same name).
///
/// [`own_index`]: super::own_index
#[inline]
pub fn forwards(
    args: &[&[u8]],
    own: Option<usize>,
    session: &Session,
    service: &Service,
    resp2: bool,
) -> bool {
    if args.is_empty() {
        return false;
    }
    if service.forwarding() == Forwarding::Off
        || (service.requires_password() && !session.authenticated)
        || (resp2 && session.subscribed)
    {
        return false;
    }
    match own.and_then(|i| COMMANDS.get(i)) {
        None => true,
        Some((spec, _)) => match spec.name {
            // Redis's own answers about its commands and settings, which
            // clients read at start (redis-cli's hints, ioredis, redis-py):
            // only with RESP_FORWARD=all, since Redis flags neither
            // readonly. GETKEYS stays the proxy's: it answers from the
            // table it already holds, and refuses nothing. CONFIG SET,
            // REWRITE and RESETSTAT are refused on the way (REFUSED).
            "command" => {
                service.forwarding() == Forwarding::All
                    && !args.get(1).is_some_and(|sub| {
                        sub.eq_ignore_ascii_case(b"getkeys")
                            || sub.eq_ignore_ascii_case(b"getkeysandflags")
                    })
            }
            "config" => service.forwarding() == Forwarding::All,
            // ACL WHOAMI is answered here: Redis would name the proxy's
            // own user (`server::acl`).
            "acl" => !args
                .get(1)
                .is_some_and(|sub| sub.eq_ignore_ascii_case(b"whoami")),
            // The cache's own reads, unless CACHE_COMMANDS leaves them out:
            // then Redis answers each (issue #22). A key too long to cache
            // (MAX_KEY_BYTES) is Redis's to answer too, uncached: an MGET
            // with one such key goes whole, its other keys uncached as well.
            "get" => !service.caches_strings(false) || too_long_to_cache(args, service),
            "mget" => !service.caches_strings(true) || too_long_to_cache(args, service),
            _ => false,
        },
    }
}

/// Whether a key of read `args` (the command name first) is over
/// MAX_KEY_BYTES, so the cache cannot keep it.
fn too_long_to_cache(args: &[&[u8]], service: &Service) -> bool {
    let max = service.max_key_bytes();
    args.iter().skip(1).any(|key| key.len() > max)
}

/// What running a forwarded batch gave.
pub struct Ran {
    /// Its replies, in order.
    pub replies: Vec<u8>,
    /// The Redis connection the client holds after it, if any.
    pub held: Option<Held>,
    /// The connection the client held ended under it (Redis closed it):
    /// `replies` holds those that came, and the client is to be closed,
    /// as Redis would have closed it.
    pub ended: bool,
    /// With `ended`, why (`Sent::why`), to log if the client is closed
    /// for it.
    pub why: Option<String>,
}

/// Sends a batch to Redis on a worker: see [`Ran`].
pub fn run(
    batch: &Batch,
    client: Client,
    lane: Lane,
    queued: Option<&Queued>,
    service: &Service,
) -> Ran {
    let started = Instant::now();
    let in_flight = service.request_started();
    let mut out = Vec::new();
    let sent = service.forward(batch, client, lane, queued, &mut out);
    drop(in_flight);
    // For `SELECT` on the event loop: a round trip the first time only,
    // and not while Redis fails (it would hold these replies a timeout
    // longer).
    if !out.starts_with(b"-ERR backing Redis") {
        service.learn_databases();
    }
    service.forwarded(&sent.counted, started.elapsed());
    Ran {
        replies: out,
        held: sent.held,
        ended: sent.ended,
        why: sent.why,
    }
}
