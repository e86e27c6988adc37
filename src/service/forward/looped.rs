//! Batches the RESP event loop sends to Redis itself, on connections it
//! drives without blocking ([`Upstream`]), rather than through a worker
//! (docs/forwarding.md, "On the event loop"). The decisions stay here:
//! which batches may go that way ([`Service::plan`]), and what is done once
//! their replies are in (the written keys dropped from the cache before a
//! reply goes back, the counts), the same code the workers' path runs.
//! The event loop only moves the bytes.

use std::time::{Duration, Instant};

use crate::backend::raw::frame::TOO_LARGE;
use crate::config::Forwarding;
use crate::service::{Forwarded, ReadError, Service};

use super::{Batch, Carried, Client, Delivered, Route, Written};

pub use crate::backend::raw::{Taken, Upstream};

/// What the service decided for a batch the event loop sends itself, and
/// what it needs again once the replies are in (or the connection failed).
/// Its lists are kept for the next batch's plan ([`Service::plan`] takes
/// one answered back), so routing a batch allocates nothing.
pub struct Plan {
    written: Written,
    counted: Forwarded,
    started: Instant,
}

impl Plan {
    /// An empty plan, for [`Service::plan`] to fill.
    pub fn new() -> Plan {
        Plan {
            written: Written::default(),
            counted: Forwarded::with_capacity(0),
            started: Instant::now(),
        }
    }

    /// How many requests' counts and written keys it has room for: what
    /// a plan kept for reuse holds is bounded by this.
    pub fn capacity(&self) -> usize {
        self.written.capacity().max(self.counted.capacity())
    }

    /// When the batch was sent: it fails once FORWARD_TIMEOUT_MS (if set)
    /// passed without its replies.
    pub fn started(&self) -> Instant {
        self.started
    }
}

impl Service {
    /// Whether the event loop may send batches to Redis itself: forwarding
    /// is on, and Redis is one server over plain TCP (cluster mode and
    /// `rediss://` keep the workers' path).
    pub fn upstreams_possible(&self) -> bool {
        self.forwarding != Forwarding::Off && self.backend.upstreams_possible()
    }

    /// A connection for the event loop to drive, for clients like
    /// `client`. It blocks (connect, handshake): call it off the loop.
    /// (Redis's `databases`, which a worker learns after a batch, is
    /// learnt by the batches that go to the workers while it opens: the
    /// first after start, and after each failure, as after a restart of
    /// Redis, are such.)
    pub fn open_upstream(&self, client: Client) -> Result<Upstream, ReadError> {
        Ok(self.backend.open_upstream(client.resp3, client.db)?)
    }

    /// Whether `upstream` still goes where batches should (sentinel mode:
    /// the master of now). An old one takes no more batches.
    pub fn upstream_current(&self, upstream: &Upstream) -> bool {
        self.backend.upstream_current(upstream)
    }

    /// REDIS_TIMEOUT_MS: how long the proxy's own waits last (the order
    /// fence, a subscription's barrier).
    pub fn redis_timeout(&self) -> Duration {
        self.wait_limit
    }

    /// FORWARD_TIMEOUT_MS: how long a batch sent from the event loop may
    /// wait for its replies (`None`: as long as Redis takes).
    pub fn forward_timeout(&self) -> Option<Duration> {
        self.backend.forward_timeout()
    }

    /// Whether `batch` (pooled, no transaction in it) may be sent by the
    /// event loop: Redis's command table is known already and not due to
    /// be read again (the loop never waits for it: a worker reads it), and
    /// every request of it goes to Redis as it is, none refused by the
    /// proxy. `None` sends it through a worker, which handles every case.
    /// `plan` is filled in (one emptied by [`Service::planned_replies`],
    /// or [`Plan::new`]); given back when the batch may not go this way.
    /// `carried`: what the last batch planned left for the next
    /// (`route.rs`'s [`Carried`]), kept by the caller.
    pub fn plan(
        &self,
        batch: &Batch,
        client: Client,
        mut plan: Plan,
        carried: &mut Carried,
    ) -> Result<Plan, Plan> {
        let Some(table) = self.backend.commands_fresh() else {
            return Err(plan);
        };
        if (0..batch.len()).any(|i| batch.queued(i)) {
            return Err(plan);
        }
        plan.counted.clear();
        plan.written.clear();
        let lists = (&mut plan.counted, &mut plan.written);
        let sent = |route: Route| matches!(route, Route::Send { .. });
        if !self.route_each(&table, batch, client, lists, carried, sent) {
            return Err(plan);
        }
        self.metrics.in_flight(1);
        plan.started = Instant::now();
        Ok(plan)
    }

    /// A planned batch's `replies` are all in (one per request, in order;
    /// `errors`: some are error replies): drops what its writes touched
    /// from the cache and counts it. Call it before the replies reach the
    /// client (read-your-writes).
    /// The plan comes back for the next batch's [`Service::plan`].
    pub fn planned_replies(
        &self,
        mut plan: Plan,
        batch: &Batch,
        replies: &[u8],
        errors: bool,
    ) -> Plan {
        self.settle(&mut plan, batch, replies, errors);
        plan
    }

    /// A planned batch got only `answered` (its first replies) before its
    /// connection failed with `error`: the same as [`planned_replies`],
    /// and `out` gets those replies then an error for each request left,
    /// in the words of the workers' path. Nothing is sent again: the
    /// requests may have run (so their keys are dropped all the same).
    ///
    /// [`planned_replies`]: Service::planned_replies
    pub fn planned_failed(
        &self,
        plan: Plan,
        batch: &Batch,
        answered: &[u8],
        error: ReadError,
        out: &mut Vec<u8>,
    ) {
        out.extend_from_slice(answered);
        let delivered = Delivered {
            answered: replies_in(answered),
            error: Some(error),
        };
        self.fail_rest(batch.len(), delivered, out);
        let mut plan = plan;
        self.settle(&mut plan, batch, answered, true);
    }

    /// A planned batch's replies passed RESP_MAX_REPLY_BYTES after only
    /// `answered` (its first replies) came in whole: the same as
    /// [`planned_failed`], with the words the workers' path has for it.
    /// The rest of its replies is dropped as it comes; the connection and
    /// the other batches on it go on.
    ///
    /// [`planned_failed`]: Service::planned_failed
    pub fn planned_refused(&self, plan: Plan, batch: &Batch, answered: &[u8], out: &mut Vec<u8>) {
        let error = ReadError::Unavailable(TOO_LARGE.0.to_owned());
        self.planned_failed(plan, batch, answered, error, out);
    }

    /// What every planned batch ends with, answered or not: its written
    /// keys dropped, `replies` (Redis's, maybe fewer than its requests)
    /// counted, and it is no longer in flight. Without `errors` (every
    /// request answered, none with an error) the replies are not framed
    /// again: each request is counted as answered well.
    fn settle(&self, plan: &mut Plan, batch: &Batch, replies: &[u8], errors: bool) {
        self.drop_written(batch, &plan.written);
        if errors {
            self.redis_replies(replies, &mut plan.counted);
        } else {
            plan.counted.all_ok();
        }
        self.metrics.in_flight(-1);
        self.forwarded(&plan.counted, plan.started.elapsed());
    }
}

/// How many whole replies `replies` holds.
fn replies_in(replies: &[u8]) -> usize {
    let mut framer = crate::backend::raw::frame::Framer::default();
    let (mut at, mut count) = (0, 0);
    while let Ok(Some(len)) = framer.next(&replies[at..]) {
        at += len;
        count += 1;
    }
    count
}
