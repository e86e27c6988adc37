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
/// than being answered here: anything the proxy does not serve itself,
/// and the cached reads in a database other than the one the cache holds.
/// Never before the client gave PROXY_PASSWORD, nor for a RESP2 client
/// subscribed to the proxy's own invalidation channel (the proxy answers
/// both as Redis would).
pub fn forwards(args: &[&[u8]], session: &Session, service: &Service, resp2: bool) -> bool {
    let Some(&name) = args.first() else {
        return false;
    };
    if service.forwarding() == Forwarding::Off
        || (service.requires_password() && !session.authenticated)
        || (resp2 && session.subscribed)
    {
        return false;
    }
    match COMMANDS
        .iter()
        .find(|(spec, _)| name.eq_ignore_ascii_case(spec.name.as_bytes()))
    {
        None => true,
        Some((spec, _)) => {
            matches!(spec.name, "get" | "mget") && session.db != service.default_db()
        }
    }
}

/// Sends a batch to Redis on a worker: its replies, in order, and the
/// Redis connection the client holds after it, if any.
pub fn run(
    batch: &Batch,
    client: Client,
    lane: Lane,
    queued: Option<&Queued>,
    service: &Service,
) -> (Vec<u8>, Option<Held>) {
    let started = Instant::now();
    let in_flight = service.request_started();
    let mut out = Vec::new();
    let (held, counted) = service.forward(batch, client, lane, queued, &mut out);
    drop(in_flight);
    service.forwarded(&counted, started.elapsed());
    (out, held)
}
