//! Cacheable reads other than GET and MGET (issue #22: HGETALL, LRANGE,
//! ZRANGE, SINTER...): looked up on the event loop, a hit answered there
//! with Redis's own reply bytes for the client's protocol; a miss goes to
//! a worker, which reads it through the cache (`Service::read_reply`:
//! coalesced with identical reads in flight, filled unless a change raced
//! it). Only plain reads reach here: inside MULTI or WATCH, on a held
//! connection, or with RESP_FORWARD=off, requests keep their old path.

use std::time::Instant;

use crate::service::{Client, Deferred, ReplyLookup, Service};

use super::super::reply::{Protocol, Replies};
use super::super::session::Session;
use super::get::{read_error, resend, Answer};
use super::{Executed, Fetch};

/// A cacheable read that missed on the event loop, for a worker.
pub struct Read {
    client: Client,
    argv: Vec<Vec<u8>>,
    deferred: Deferred,
}

/// Serves request `args` (which [`Service::names_cached`] let through)
/// for the connection: a hit is answered into `replies`, a miss comes back
/// for a worker; `None` if it is not a read whose reply is cached (it is
/// forwarded as any other). Every key a cached read reads is registered
/// for the client's own CLIENT TRACKING, as GET registers its key.
pub fn read(
    args: &[&[u8]],
    session: &mut Session,
    replies: &mut Replies,
    service: &Service,
) -> Option<Executed> {
    let started = Instant::now();
    let client = Client {
        resp3: replies.protocol == Protocol::Resp3,
        db: session.db,
        dedicated: false,
    };
    let hit = match service.lookup_reply(client, args, started, &mut replies.buf) {
        ReplyLookup::Uncached => return None,
        ReplyLookup::Hit => true,
        ReplyLookup::Miss => false,
    };
    session.track_reads(service, args);
    session.caching = None;
    if hit {
        service.resp_answered(true, started.elapsed());
        return Some(Executed::Done);
    }
    Some(Executed::Fetch(Fetch::Reply(Box::new(Read {
        client,
        argv: args.iter().map(|a| a.to_vec()).collect(),
        deferred: service.defer(),
    }))))
}

/// Completes a [`Read`] on a worker: waits for a WORKERS place, reads
/// through the cache, and returns Redis's reply bytes (its error reply
/// included), or the proxy's error when Redis could not be read, or the
/// request to forward then (see [`Service::resends`]).
pub fn finish(read: Read, service: &Service) -> Answer {
    let started = Instant::now();
    let Read {
        client,
        argv,
        mut deferred,
    } = read;
    let _place = service.admit();
    deferred.done();
    let in_flight = service.request_started();
    let args: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
    let mut replies = Replies::new();
    let ok = match service.read_reply(client, &args) {
        Ok(found) => {
            let bytes = found.value.bytes();
            replies.buf.extend_from_slice(bytes);
            !matches!(bytes.first(), Some(b'-' | b'!'))
        }
        Err(err) => {
            if let Some(batch) = resend(&err, service, &args) {
                return Answer::Resend(batch);
            }
            read_error(&mut replies, &err, service);
            false
        }
    };
    drop(in_flight);
    service.resp_answered(ok, started.elapsed());
    Answer::Reply(replies.buf)
}
