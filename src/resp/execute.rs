//! Running a connection's input: each complete request is executed here
//! (hits and data-free commands), gathered into a batch for Redis, sent to
//! a connection of its own (blocking, Pub/Sub), or handed to a worker; and
//! the order of replies is kept whichever way each went.

use std::ops::Range;
use std::time::{Duration, Instant};

use mio::Token;

use crate::config::Forwarding;
use crate::service::{Batch, Client, Lane, Queued, Service};

use super::cmd::{cached_read, clear_session, execute, forwards, own_index, Executed, Peers};
use super::conn::{
    Conn, State, BATCH_BYTES, BATCH_REQUESTS, DISCARD_LIMIT, INPUT_KEEP, OUTPUT_HIGH_WATER,
};
use super::dedicated::Dedicated;
use super::lanes::{Dedication, Kind};
use super::parse::Parser;
use super::reply::Protocol;
use super::session::Session;
use super::transaction::Transaction;
use super::upstream::Upstreams;
use super::workers::{Forward, Job, Work, WorkQueue};
use by_name::Named;

#[path = "execute_by_name.rs"]
mod by_name;
pub(super) use by_name::ByName;

/// The `CLIENT LIST` name of a request that starts a subscription.
fn subscribing(kind: Kind, args: &[&[u8]]) -> Option<&'static str> {
    if !matches!(kind, Kind::Subscribe) {
        return None;
    }
    let name = args.first()?;
    ["subscribe", "psubscribe", "ssubscribe"]
        .into_iter()
        .find(|known| name.eq_ignore_ascii_case(known.as_bytes()))
}

/// `QUIT` (any arguments: Redis ignores them).
fn is_quit(args: &[&[u8]]) -> bool {
    args.first()
        .is_some_and(|name| name.eq_ignore_ascii_case(b"quit"))
}

/// A bare `RESET` (with arguments it is an arity error, answered as any).
pub(super) fn is_reset(args: &[&[u8]]) -> bool {
    matches!(args, [name] if name.eq_ignore_ascii_case(b"reset"))
}

impl Conn {
    /// Executes complete requests until one needs Redis or the output is
    /// full. False when the connection is finished.
    pub fn execute_input(
        &mut self,
        token: Token,
        service: &Service,
        jobs: &WorkQueue,
        dedicated: &Dedicated,
        upstreams: &mut Upstreams,
        peers: &Peers<'_>,
    ) -> bool {
        let mut consumed = 0;
        // Consecutive requests for Redis, sent as one batch: a request
        // answered here waits until the batch's replies are in, so replies
        // keep request order.
        let mut batch: Option<Batch> = None;
        // Whether the batch goes on the client's own Redis connection, and
        // what its EXEC runs.
        let mut held_lane = self.session.transaction.pinned();
        let mut exec: Option<Queued> = None;
        // The last forwarded request's argument list, emptied: the next
        // request's is built in it rather than allocated.
        let mut spare: Vec<&[u8]> = Vec::new();
        // The last request's argument ranges, given back to the parser
        // once that request is done with (a forwarded one's are copied
        // into the batch).
        let mut parsed: Option<Vec<Range<usize>>> = None;
        while matches!(self.state, State::Open | State::Closing { .. }) && !self.session.quit {
            if let Some(done) = parsed.take() {
                self.parser.recycle(done);
            }
            if self.unsent() > OUTPUT_HIGH_WATER {
                break;
            }
            let at = self.stream_at + consumed as u64;
            match self.parser.parse_at(&mut self.input[consumed..], at) {
                Ok(Some(request)) => {
                    let frame = &self.input[consumed..consumed + request.len];
                    let mut args = reuse(std::mem::take(&mut spare));
                    args.extend(request.args.iter().map(|r| &frame[r.clone()]));
                    let ranges = parsed.insert(request.args);
                    if args.is_empty() {
                        // `*0`, `*-1` or a blank inline line: Redis ignores
                        // it, with no reply, so it is never sent there (on
                        // any lane), where a reply would be awaited.
                        consumed += request.len;
                        spare = reuse(args);
                        continue;
                    }
                    let resp2 = self.replies.protocol == Protocol::Resp2;
                    // `repeat`: the same name as the last request's.
                    let (named, repeat) = match args.first() {
                        Some(name) => self.by_name.of(name, service),
                        None => (Named::default(), false),
                    };
                    // RESET runs here, after what was gathered before it,
                    // whatever lane the connection is on: it ends them.
                    if named.reset && is_reset(&args) {
                        if batch.is_some() {
                            break;
                        }
                        consumed += request.len;
                        held_lane = false;
                        if self.subscription.is_some() {
                            // Subscribed at Redis: RESET goes there, and
                            // Redis's `+RESET` comes after the replies to
                            // what was sent before it; then that
                            // connection is closed, and the client waits
                            // for its end (`take_done`).
                            // The handover's confirmation, if still to
                            // come, is dropped even so (`take_done`).
                            // So are those to the proxy's own HELLO.
                            let at_redis = &self.session.at_redis;
                            let (to_drop, hello) = (at_redis.to_drop, at_redis.hello);
                            clear_session(&mut self.session, &mut self.replies, service);
                            bound_parser(&mut self.parser, &self.session, service);
                            self.session.at_redis.to_drop = to_drop;
                            self.session.at_redis.hello = hello;
                            peers.clients.sync(&self.session, Protocol::Resp2, "reset");
                            if !self.leave_subscription(frame.to_vec()) {
                                return false;
                            }
                            continue;
                        }
                        let own = own_index(args[0]);
                        execute(
                            &args,
                            own,
                            &mut self.session,
                            &mut self.replies,
                            service,
                            peers,
                        );
                        bound_parser(&mut self.parser, &self.session, service);
                        continue;
                    }
                    if self.subscription.is_some() && is_quit(&args) {
                        // Subscribed at Redis: QUIT goes there too, so its
                        // `+OK` comes after the replies owed to what was
                        // sent before it; Redis then closes that
                        // connection, and its end closes the client's.
                        consumed += request.len;
                        self.session.quit = true;
                        if !self.leave_subscription(frame.to_vec()) {
                            return false;
                        }
                        break;
                    }
                    // Without a subscription at Redis, only some names may
                    // go to a connection of their own.
                    let lane = match named.lane || self.subscription.is_some() {
                        true => self.dedicated_lane(&args, batch.is_some(), service),
                        false => Dedication::None,
                    };
                    match lane {
                        Dedication::None => {}
                        Dedication::Later => break,
                        Dedication::Pass => {
                            // The subscription's owed replies first (or
                            // its release); this request runs after.
                            if self.session.at_redis.settled() {
                                peers.clients.unsubscribed(self.session.id);
                            }
                            if !self.pass_subscription() {
                                return false;
                            }
                            break;
                        }
                        Dedication::Now(kind) => {
                            let mut request_batch = Batch::default();
                            request_batch.push(&args, false);
                            consumed += request.len;
                            if let Some(cmd) = subscribing(kind, &args) {
                                peers.clients.subscribed(self.session.id, cmd);
                            }
                            if matches!(kind, Kind::Subscribed) {
                                self.session.caching = None;
                            }
                            if !self.start_dedicated(kind, request_batch, token, dedicated) {
                                return false;
                            }
                            continue;
                        }
                    }
                    let (own, cached) = (named.own, named.cached);
                    let transaction = &self.session.transaction;
                    let to_redis = match transaction.pinned()
                        && !Transaction::answered_here(&args, transaction.multi)
                    {
                        true => true,
                        false => forwards(&args, own, &self.session, service, resp2),
                    };
                    // A plain read whose reply the cache keeps (issue #22):
                    // answered here on a hit, else by a worker, as GET. The
                    // proxy's own reads (GET, MGET) get here only with a
                    // key too long to cache: forwarded, never looked up.
                    if to_redis && !self.session.transaction.pinned() && cached && own.is_none() {
                        if batch.is_some() {
                            break;
                        }
                        let session = &mut self.session;
                        if let Some(executed) =
                            cached_read(&args, session, &mut self.replies, service)
                        {
                            consumed += request.len;
                            spare = reuse(args);
                            if let Executed::Fetch(fetch) = executed {
                                if !self.hand_over(token, Work::Fetch(fetch), jobs) {
                                    return false;
                                }
                            }
                            continue;
                        }
                    }
                    if to_redis {
                        // Room for what was read (a pipeline is pushed
                        // whole), up to a batch's bound.
                        let room = (self.input.len() - consumed).min(BATCH_BYTES) + 64;
                        let batch = batch.get_or_insert_with(|| upstreams.batch(room));
                        let engaged = self.session.transaction.engaged();
                        // With RESP_FORWARD=reads, MULTI and WATCH are
                        // refused: no transaction begins.
                        let transaction = &mut self.session.transaction;
                        let (queued, ran) = match service.forwarding() {
                            Forwarding::All if named.noted || transaction.multi => {
                                transaction.note(&args)
                            }
                            // Nothing a note would change.
                            _ => (false, None),
                        };
                        batch.push_parsed(frame, ranges, &args, (queued, repeat));
                        self.session.track_reads(service, &args);
                        held_lane |= self.session.transaction.pinned();
                        self.session.caching = None;
                        consumed += request.len;
                        let transaction = &self.session.transaction;
                        let first_watch = !engaged && transaction.watching;
                        if ran.is_some() || (engaged && !transaction.engaged()) || first_watch {
                            // What ends a transaction or a WATCH, or begins
                            // watching, ends its batch: an EXEC's keys are
                            // dropped before its reply goes out; the held
                            // connection is pooled again only if that reply
                            // is no error, and kept after a first WATCH only
                            // if it is none (Redis keeps nothing of a failed
                            // WATCH): what follows goes where that says.
                            if first_watch {
                                batch.mark_first_watch();
                            }
                            exec = ran;
                            break;
                        }
                        if batch.len() >= BATCH_REQUESTS || batch.bytes_len() >= BATCH_BYTES {
                            break;
                        }
                        spare = reuse(args);
                        continue;
                    }
                    if batch.is_some() {
                        break;
                    }
                    let protocol = self.replies.protocol;
                    let executed = execute(
                        &args,
                        own,
                        &mut self.session,
                        &mut self.replies,
                        service,
                        peers,
                    );
                    consumed += request.len;
                    if named.auth {
                        bound_parser(&mut self.parser, &self.session, service);
                    }
                    if self.replies.protocol != protocol
                        && self.subscription.is_some()
                        && !self.follow_protocol()
                    {
                        return false;
                    }
                    if let Executed::Fetch(fetch) = executed {
                        if !self.hand_over(token, Work::Fetch(fetch), jobs) {
                            return false;
                        }
                    }
                    if self.session.quit && self.state == State::Open {
                        self.state = State::Closing { since: None };
                    }
                }
                Ok(None) => break,
                Err(_) if batch.is_some() => break,
                Err(err) => {
                    self.replies.error_bytes(&err.message());
                    service.resp_answered(false, Duration::ZERO);
                    self.state = State::Discarding {
                        left: DISCARD_LIMIT,
                        since: Instant::now(),
                    };
                    break;
                }
            }
        }
        if let Some(done) = parsed {
            self.parser.recycle(done);
        }
        self.stream_at += consumed as u64;
        self.input.drain(..consumed);
        if self.input.is_empty() && self.input.capacity() > INPUT_KEEP {
            self.input = Vec::new();
        }
        match batch {
            Some(batch) if !batch.is_empty() => {
                let lane = match held_lane {
                    true => Lane::Held(
                        self.session.transaction.held.take(),
                        self.session.transaction.pinned(),
                    ),
                    false => Lane::Pooled,
                };
                self.send_batch(token, batch, lane, exec, jobs, upstreams)
            }
            _ => true,
        }
    }

    /// Sends a batch on one of the loop's own Redis connections when it
    /// may go that way (`upstream.rs`), else hands it to the workers; the
    /// connection waits for its replies.
    pub(super) fn send_batch(
        &mut self,
        token: Token,
        batch: Batch,
        lane: Lane,
        exec: Option<Queued>,
        jobs: &WorkQueue,
        upstreams: &mut Upstreams,
    ) -> bool {
        let client = Client {
            resp3: self.replies.protocol == Protocol::Resp3,
            db: self.session.db,
            dedicated: false,
        };
        let batch = match (&lane, &exec) {
            (Lane::Pooled, None) => match upstreams.send(token, batch, client) {
                Ok(()) => {
                    self.wait();
                    return true;
                }
                Err(batch) => batch,
            },
            _ => batch,
        };
        let work = Work::Forward(Box::new(Forward {
            batch,
            client,
            lane,
            exec,
        }));
        self.hand_over(token, work, jobs)
    }

    /// Queues `work` for a worker; the connection waits for its reply.
    /// False if the workers are gone.
    fn hand_over(&mut self, token: Token, work: Work, jobs: &WorkQueue) -> bool {
        let job = Job {
            token,
            work,
            protocol: self.replies.protocol,
        };
        if !jobs.send(job) {
            return false;
        }
        self.wait();
        true
    }
}

/// Redis's bounds on requests while a password is owed, set or lifted as
/// AUTH, HELLO or RESET change that, before the next request is parsed.
pub(super) fn bound_parser(parser: &mut Parser, session: &Session, service: &Service) {
    parser.bound(service.requires_password() && !session.authenticated);
}

/// `spare`, emptied, on the same allocation, for borrows of another
/// lifetime: a request's arguments borrow the connection's input, which
/// a list kept from one request to the next must not (std collects a
/// `Vec` into one of a same-sized element type in place).
fn reuse<'b>(mut spare: Vec<&[u8]>) -> Vec<&'b [u8]> {
    spare.clear();
    spare.into_iter().map(|_| -> &'b [u8] { &[] }).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reuse_keeps_the_allocation() {
        let input = b"LPUSH list value".to_vec();
        let mut args: Vec<&[u8]> = Vec::with_capacity(8);
        args.extend(input.split(|&b| b == b' '));
        let pointer = args.as_ptr() as usize;
        let spare = super::reuse(args);
        assert!(spare.is_empty());
        assert_eq!(spare.capacity(), 8);
        assert_eq!(spare.as_ptr() as usize, pointer);
    }
}
