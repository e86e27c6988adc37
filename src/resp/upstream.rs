//! Forwarded batches sent by the event loop itself, on a few non-blocking
//! Redis connections it drives ([`Upstream`], one per protocol and
//! database), instead of through a worker.
//!
//! Why: a batch handed to a worker and its replies handed back cost two
//! thread wake-ups each way; under redis-benchmark's many small writes that
//! scheduling took about half the proxy's CPU. Here every batch the loop
//! gathers from its clients' input during one turn is appended to its
//! connection's output and all are written with one write once that input
//! is read (before the replies that came in are handed out, so Redis works
//! on them meanwhile), many clients' commands pipelined together (as
//! twemproxy and Envoy do); a FIFO per connection
//! records whose replies come next, and how many.
//!
//! What goes this way is the service's decision ([`Service::plan`]): pooled
//! batches with no transaction, every request sent as it is, standalone or
//! sentinel over plain TCP. Everything else, and every batch while no
//! connection is ready (opening one happens on a thread of its own, since
//! it blocks), takes the workers' path, so a Redis that is down behaves as
//! before. A connection that fails or times out (FORWARD_TIMEOUT_MS) fails
//! every batch pending on it with the workers' words and is dropped: nothing
//! is sent twice, and a late reply has no connection left to arrive on. A
//! batch whose replies pass RESP_MAX_REPLY_BYTES fails alone: its client
//! gets the replies in whole before the bound, then the workers' error for
//! each of the rest, while the connection drops the rest as it comes in
//! and goes on with the next batches (one client's huge value costs the
//! others nothing).

use std::collections::VecDeque;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Interest, Registry, Token, Waker};

use crate::service::{Batch, Carried, Client, Plan, ReadError, Service, Taken, Upstream};

use super::conn::{Conn, OUTPUT_HIGH_WATER};
use super::fence::Fence;

/// Tokens from here up are upstreams' (clients' count up from 2).
const FIRST_TOKEN: usize = usize::MAX / 2;
/// Past this much unwritten output on a connection, further batches take
/// the workers' path: what Redis is slow to read is bounded.
const UNSENT_LIMIT: usize = OUTPUT_HIGH_WATER;
/// How long after a failed open the next is tried (meanwhile, workers).
const RETRY: Duration = Duration::from_secs(1);
/// Answered batches kept for reuse, and the largest kept: what the spare
/// ones hold is bounded (under 2 MiB, their lists included).
const SPARE_BATCHES: usize = 64;
const SPARE_BYTES: usize = 8 * 1024;
/// The most requests a plan kept for reuse (as many as batches) has room
/// for: some 24 bytes each, so the spare plans hold under 400 KiB.
const SPARE_PLAN: usize = 256;

/// Which clients a connection serves: their protocol (RESP3) and database.
type Key = (bool, i64);

/// A client batch sent and not yet answered.
struct Pending {
    token: Token,
    batch: Batch,
    plan: Plan,
}

/// One connection and the batches outstanding on it, oldest first.
struct Link {
    key: Key,
    token: Token,
    upstream: Upstream,
    pending: VecDeque<Pending>,
    /// Takes no more batches (sentinel failover); dropped once answered.
    retired: bool,
}

/// The event loop's connections to Redis.
pub struct Upstreams {
    service: Arc<Service>,
    waker: Arc<Waker>,
    /// Up while another client's earlier blocking command or Pub/Sub
    /// request is not yet at Redis: nothing is written meanwhile.
    fence: Fence,
    registry: Registry,
    enabled: bool,
    links: Vec<Link>,
    next_token: usize,
    /// Opens under way, and when the last failed (per key).
    opening: Vec<Key>,
    failed: Vec<(Key, Instant)>,
    opened_tx: Sender<(Key, Result<Upstream, ReadError>)>,
    opened: Receiver<(Key, Result<Upstream, ReadError>)>,
    /// Clients whose replies came in, to resume.
    resume: Vec<Token>,
    /// Batches answered, emptied, for the next ones gathered ([`Upstreams::batch`]).
    spare: Vec<Batch>,
    /// Their plans, likewise, for the next batches' ([`Service::plan`]).
    spare_plans: Vec<Plan>,
    /// What the last batch planned leaves for the next one's routing.
    carried: Carried,
}

impl Upstreams {
    /// None open yet; `registry` registers them with the loop's poll;
    /// nothing is written while `fence` is up.
    pub fn new(
        service: Arc<Service>,
        (waker, fence): (Arc<Waker>, Fence),
        registry: Registry,
    ) -> Upstreams {
        let (opened_tx, opened) = mpsc::channel();
        Upstreams {
            enabled: service.upstreams_possible(),
            service,
            waker,
            fence,
            registry,
            links: Vec::new(),
            next_token: FIRST_TOKEN,
            opening: Vec::new(),
            failed: Vec::new(),
            opened_tx,
            opened,
            resume: Vec::new(),
            spare: Vec::new(),
            spare_plans: Vec::new(),
            carried: Carried::default(),
        }
    }

    /// An empty batch with room for about `bytes` of requests: one whose
    /// replies came in, if any, rather than three new lists.
    pub fn batch(&mut self, bytes: usize) -> Batch {
        match self.spare.pop() {
            Some(mut batch) => {
                batch.reserve(bytes);
                batch
            }
            None => Batch::with_capacity(bytes),
        }
    }

    /// Whether poll's `token` is one of these connections.
    pub fn owns(token: Token) -> bool {
        token.0 >= FIRST_TOKEN
    }

    /// Poll reported Redis's end (or an error) on connection `token`: it
    /// is read to that end, not left after a short read.
    pub fn peer_closed(&mut self, token: Token) {
        if let Some(link) = self.links.iter_mut().find(|l| l.token == token) {
            link.upstream.peer_closed();
        }
    }

    /// Queues `batch` of the client `token` on a ready connection, to be
    /// written at the end of this turn; the client then waits. Gives the
    /// batch back when it must go through a worker instead.
    pub fn send(&mut self, token: Token, batch: Batch, client: Client) -> Result<(), Batch> {
        if !self.enabled {
            return Err(batch);
        }
        let key = (client.resp3, client.db);
        let Some(link) = self.links.iter_mut().find(|l| l.key == key && !l.retired) else {
            self.open(key, client);
            return Err(batch);
        };
        if !self.service.upstream_current(&link.upstream) {
            link.retired = true;
            self.open(key, client);
            return Err(batch);
        }
        if link.upstream.unsent() > UNSENT_LIMIT {
            return Err(batch);
        }
        let spare = self.spare_plans.pop().unwrap_or_else(Plan::new);
        let plan = match self.service.plan(&batch, client, spare, &mut self.carried) {
            Ok(plan) => plan,
            Err(spare) => {
                self.spare_plans.push(spare);
                return Err(batch);
            }
        };
        link.upstream.queue(batch.frames());
        link.pending.push_back(Pending { token, batch, plan });
        Ok(())
    }

    /// Opens a connection for `key` on a thread of its own (it blocks),
    /// unless one is opening or the last try failed a moment ago.
    fn open(&mut self, key: Key, client: Client) {
        if self.opening.contains(&key) {
            return;
        }
        let now = Instant::now();
        self.failed
            .retain(|(_, at)| now.duration_since(*at) < RETRY);
        if self.failed.iter().any(|(failed, _)| *failed == key) {
            return;
        }
        let (service, waker) = (Arc::clone(&self.service), Arc::clone(&self.waker));
        let done = self.opened_tx.clone();
        let spawned = std::thread::Builder::new()
            .name("resp-upstream-open".to_owned())
            .spawn(move || {
                let _ = done.send((key, service.open_upstream(client)));
                let _ = waker.wake();
            });
        match spawned {
            Ok(_) => self.opening.push(key),
            Err(err) => {
                log::warn!("cannot start a thread to open a Redis connection: {err}");
                self.failed.push((key, now));
            }
        }
    }

    /// Takes the connections opened since the last turn into the poll.
    pub fn take_opened(&mut self) {
        while let Ok((key, opened)) = self.opened.try_recv() {
            self.opening.retain(|k| *k != key);
            let mut upstream = match opened {
                Ok(upstream) => upstream,
                Err(err) => {
                    log::debug!("no event-loop connection to Redis yet: {err}");
                    self.failed.push((key, Instant::now()));
                    continue;
                }
            };
            let token = Token(self.next_token);
            self.next_token += 1;
            let interest = Interest::READABLE | Interest::WRITABLE;
            if let Err(err) = self.registry.register(upstream.source(), token, interest) {
                log::warn!("cannot poll a Redis connection: {err}");
                continue;
            }
            self.links.push(Link {
                key,
                token,
                upstream,
                pending: VecDeque::new(),
                retired: false,
            });
        }
    }

    /// A connection is ready: writes what waits (unless the fence is up),
    /// reads what came, and hands each batch answered in full to its
    /// client.
    pub fn ready(&mut self, token: Token, conns: &mut ClientMap, chunk: &mut [u8]) {
        let Some(i) = self.links.iter().position(|l| l.token == token) else {
            return;
        };
        let fenced = self.fence.is_up();
        let link = &mut self.links[i];
        let mut failure = match fenced {
            true => None,
            false => link.upstream.flush().err().map(ReadError::from),
        };
        // Read and hand out in turns until the socket is empty, so what a
        // reply being read makes the link hold is bounded (a batch's
        // replies past RESP_MAX_REPLY_BYTES fail as soon as they show it).
        while failure.is_none() {
            let read = link.upstream.read(chunk).map_err(ReadError::from);
            let spare = (&mut self.spare, &mut self.spare_plans);
            failure = deliver(link, &self.service, conns, &mut self.resume, spare).err();
            match read {
                Ok(false) => {}
                Ok(true) => break,
                Err(err) => failure = failure.or(Some(err)),
            }
        }
        self.settle(i, failure, conns);
    }

    /// Writes every connection's queued batches (once a turn has read its
    /// clients' input, and again at its end for clients it resumed: one
    /// write for all the clients served), unless the fence is up
    /// (they wait, and its fall wakes the loop to write them).
    pub fn flush(&mut self, conns: &mut ClientMap) {
        if self.fence.is_up() {
            return;
        }
        let mut i = 0;
        while i < self.links.len() {
            let failed = self.links[i].upstream.flush().err();
            if !self.settle(i, failed.map(ReadError::from), conns) {
                i += 1;
            }
        }
    }

    /// Fails the connections whose oldest batch has waited longer than
    /// FORWARD_TIMEOUT_MS (none by default: as long as Redis takes).
    pub fn expire(&mut self, conns: &mut ClientMap) {
        let limit = self.service.forward_timeout();
        let mut i = 0;
        while i < self.links.len() {
            let late = limit.filter(|limit| {
                let front = self.links[i].pending.front();
                front.is_some_and(|p| p.plan.started().elapsed() > *limit)
            });
            if let Some(limit) = late {
                let why = format!(
                    "no reply within FORWARD_TIMEOUT_MS ({} ms)",
                    limit.as_millis()
                );
                self.settle(i, Some(ReadError::Timeout(why)), conns);
            } else if !self.settle(i, None, conns) {
                i += 1;
            }
        }
    }

    /// The clients whose replies came in since the last call.
    pub fn take_resumed(&mut self, into: &mut Vec<Token>) {
        into.append(&mut self.resume);
    }

    /// After link `i` was used: drops it if it failed (its batches answered
    /// with `failure`), or if it is retired and has nothing pending. True
    /// when it was dropped (another link is at `i` now).
    fn settle(&mut self, i: usize, failure: Option<ReadError>, conns: &mut ClientMap) -> bool {
        let link = &mut self.links[i];
        let Some(error) = failure else {
            if link.retired && link.pending.is_empty() {
                let mut link = self.links.swap_remove(i);
                let _ = self.registry.deregister(link.upstream.source());
                return true;
            }
            return false;
        };
        let mut link = self.links.swap_remove(i);
        let _ = self.registry.deregister(link.upstream.source());
        log::debug!("a Redis connection of the event loop failed: {error}");
        let mut out = Vec::new();
        let mut answered = link.upstream.take_answered().to_vec();
        for pending in link.pending.drain(..) {
            out.clear();
            let Pending { token, batch, plan } = pending;
            self.service
                .planned_failed(plan, &batch, &answered, error.clone(), &mut out);
            answered.clear();
            if let Some(conn) = conns.get_mut(&token) {
                conn.deliver(&out, None, true);
                self.resume.push(token);
            }
        }
        true
    }
}

/// The event loop's clients, by token: looked up several times per client
/// and turn, so with foldhash rather than std's SipHash (tokens are the
/// loop's own numbers, nothing a client chooses).
pub type ClientMap = std::collections::HashMap<Token, Conn, foldhash::fast::FixedState>;

/// Hands `link`'s batches answered in full to their clients, in order:
/// the service drops what each wrote and counts it before its replies
/// reach the client's output. A client gone meanwhile: its replies are
/// dropped. A batch whose replies pass RESP_MAX_REPLY_BYTES is refused
/// alone (see the module's doc). An error: the link is unusable (its
/// replies are not RESP, or bytes came that no batch asked for).
fn deliver(
    link: &mut Link,
    service: &Service,
    conns: &mut ClientMap,
    resume: &mut Vec<Token>,
    (spare, spare_plans): (&mut Vec<Batch>, &mut Vec<Plan>),
) -> Result<(), ReadError> {
    // What a refused batch's client gets (no allocation until one is).
    let mut refused = Vec::new();
    while let Some(head) = link.pending.front() {
        let Some(taken) = link.upstream.take(head.batch.len())? else {
            break;
        };
        let Some(Pending { token, batch, plan }) = link.pending.pop_front() else {
            break;
        };
        let replies = match taken {
            Taken::Replies(replies, errors) => {
                let plan = service.planned_replies(plan, &batch, replies, errors);
                if spare_plans.len() < SPARE_BATCHES && plan.capacity() <= SPARE_PLAN {
                    spare_plans.push(plan);
                }
                replies
            }
            Taken::TooLarge(answered) => {
                log::debug!(
                    "a batch's replies passed RESP_MAX_REPLY_BYTES: refused, the rest dropped"
                );
                refused.clear();
                service.planned_refused(plan, &batch, answered, &mut refused);
                &refused[..]
            }
        };
        if let Some(conn) = conns.get_mut(&token) {
            conn.deliver(replies, None, true);
            resume.push(token);
        }
        if spare.len() < SPARE_BATCHES && batch.capacity() <= SPARE_BYTES {
            let mut batch = batch;
            batch.clear();
            spare.push(batch);
        }
    }
    link.upstream.compact()?;
    if link.pending.is_empty() && link.upstream.has_unclaimed() {
        return Err(ReadError::Unavailable(
            "Redis sent a reply no request asked for".to_owned(),
        ));
    }
    Ok(())
}
