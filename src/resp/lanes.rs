//! Which requests a connection sends to a Redis connection of their own
//! (`dedicated.rs`): blocking commands, subscriptions, and, once a client
//! has a subscription at Redis, its Pub/Sub commands and `PING` (and, in
//! RESP2 while Redis counts it subscribed, what Redis refuses there). Every
//! other request takes the path it takes without a subscription, behind a
//! barrier that keeps replies in order (`subscribed.rs`).

use std::sync::LazyLock;
use std::time::Duration;

use crate::commands;
use crate::config::Forwarding;
use crate::log_limit::LogLimiter;
use crate::service::{Batch, Client, Lane, Service};

use super::cmd::pubsub::confirmation;
use super::cmd::subscribed::OVER_SUBSCRIPTION;
use super::conn::{Conn, State};
use super::dedicated::Dedicated;
use super::reply::Protocol;
use super::session::AtRedis;
use super::tracking::CHANNEL;
use super::workers::{Done, DoneKind};

/// Where a request goes, as far as dedicated connections are concerned.
pub enum Dedication {
    /// Not to one: the usual paths.
    None,
    /// To one, once the batch gathered before it is answered.
    Later,
    /// To one, now.
    Now(Kind),
    /// Not over the client's subscription: once every reply owed there is
    /// in (or the subscription, left at Redis, is released), the usual
    /// paths (`Conn::pass_subscription`).
    Pass,
}

/// What a dedicated connection is for.
#[derive(Clone, Copy)]
pub enum Kind {
    /// One blocking command.
    Block,
    /// A subscription begins.
    Subscribe,
    /// The client has one: the request goes to it.
    Subscribed,
}

/// Commands that may block however their arguments read (XREAD and
/// XREADGROUP only with BLOCK: see [`may_block`]).
pub(super) const BLOCKING: &[&str] = &[
    "blpop",
    "brpop",
    "brpoplpush",
    "blmove",
    "blmpop",
    "bzpopmin",
    "bzpopmax",
    "bzmpop",
    "wait",
    "waitaof",
];

/// Whether request `argv` may block at Redis. Known by name, so the event
/// loop can tell without Redis's command table.
pub fn may_block(argv: &[&[u8]]) -> bool {
    let Some(name) = argv.first() else {
        return false;
    };
    let mut by_arguments = commands::BLOCK_BY_ARGUMENTS.iter();
    if by_arguments.any(|command| name.eq_ignore_ascii_case(command.as_bytes())) {
        return commands::asks_to_block(argv);
    }
    BLOCKING
        .iter()
        .any(|blocking| name.eq_ignore_ascii_case(blocking.as_bytes()))
}

/// Whether request `argv` subscribes to Redis's Pub/Sub (the proxy's own
/// invalidation channel alone is served by the proxy).
pub(super) fn subscribes(argv: &[&[u8]]) -> bool {
    let Some((name, channels)) = argv.split_first() else {
        return false;
    };
    if name.eq_ignore_ascii_case(b"subscribe") {
        return channels.iter().any(|channel| *channel != CHANNEL);
    }
    name.eq_ignore_ascii_case(b"psubscribe") || name.eq_ignore_ascii_case(b"ssubscribe")
}

/// Whether request `argv` goes over a client's subscription at Redis
/// ([`OVER_SUBSCRIPTION`]). QUIT and RESET go there too, on their own
/// path (`Conn::leave_subscription`).
fn over_subscription(argv: &[&[u8]]) -> bool {
    argv.first().is_some_and(|name| {
        OVER_SUBSCRIPTION
            .iter()
            .any(|command| name.eq_ignore_ascii_case(command.as_bytes()))
    })
}

/// `SUBSCRIBE __redis__:invalidate`, sent to Redis ahead of a client's
/// first subscription there when it is subscribed to that channel here.
const HANDOVER: &[u8] = b"*2\r\n$9\r\nSUBSCRIBE\r\n$20\r\n__redis__:invalidate\r\n";

/// Warnings that the proxy's user may not subscribe to its invalidation
/// channel at Redis, one per interval however many clients hit it.
static HANDOVER_REFUSED: LazyLock<LogLimiter> =
    LazyLock::new(|| LogLimiter::new(Duration::from_secs(60)));

/// Whether `reply`, from a client's subscription at Redis, answers the
/// proxy's own [`HANDOVER`] (see `start_dedicated`), to be dropped: its
/// confirmation, or its refusal (the proxy's user lacking the channel in
/// its ACL), which the client must not take for its own command's.
fn handover_reply(at_redis: &mut AtRedis, reply: &[u8]) -> bool {
    if at_redis.to_drop == 0 {
        return false;
    }
    if reply.first() == Some(&b'-') {
        at_redis.to_drop -= 1;
        at_redis.channels = at_redis.channels.saturating_sub(1);
        let why = String::from_utf8_lossy(reply);
        HANDOVER_REFUSED.warn(format_args!(
            "Redis refused the proxy's SUBSCRIBE {} for a client moving to Redis's Pub/Sub \
             (the proxy's user needs that channel for RESP2 REDIRECT targets): {}",
            String::from_utf8_lossy(CHANNEL),
            why.trim_end()
        ));
        return true;
    }
    if matches!(confirmation(reply), Some((false, true, _))) {
        at_redis.to_drop -= 1;
        return true;
    }
    false
}

/// What the event loop does with a connection after [`Conn::take_done`].
pub enum Next {
    /// Execute, write and read on.
    Serve,
    /// Write what came (a message), closing it if it is over its limit.
    Flush,
    /// Send this read, which the cache could not fill, to Redis as a
    /// forwarded batch; the connection waits on for its reply.
    Resend(Batch),
}

impl Conn {
    /// Sends `frame` (RESET or QUIT) over the client's subscription at
    /// Redis, whose reply comes after those owed to what was sent before
    /// it; Redis then closes that connection, and its end ends the
    /// subscription here (`take_done`). False if it is gone already.
    pub(super) fn leave_subscription(&mut self, frame: Vec<u8>) -> bool {
        self.session.leaving_subscription = true;
        let sent = self
            .subscription
            .as_ref()
            .is_some_and(|subscription| subscription.send(frame));
        if sent {
            self.wait();
        }
        sent
    }

    /// A worker's or a dedicated connection's result for this connection.
    pub fn take_done(&mut self, mut done: Done) -> Next {
        match done.kind {
            // RESET sent on the subscription: Redis's `+RESET` is the last
            // it sends there; its connection is closed, and its end (its
            // DEDICATED_CONNECTIONS place free by then) resumes the client.
            DoneKind::Message if self.session.leaving_subscription => {
                if handover_reply(&mut self.session.at_redis, &done.reply)
                    || self.own_reply(&mut done.reply)
                {
                    return Next::Flush;
                }
                self.relay(&done.reply);
                if done.reply == b"+RESET\r\n" {
                    self.subscription = None;
                }
                Next::Flush
            }
            DoneKind::Ended | DoneKind::LinkEnded if self.session.leaving_subscription => {
                self.session.leaving_subscription = false;
                self.session.at_redis = AtRedis::default();
                self.deliver(&[], None, false);
                if self.session.quit {
                    // QUIT sent on the subscription: Redis closed it after
                    // its `+OK`, as the client is closed now.
                    self.subscription = None;
                    self.state = State::Closing { since: None };
                    return Next::Serve;
                }
                // Released (`pass_subscription`): its end, awaited, is all.
                if self.subscription.is_some() {
                    // Ended before `+RESET`: as any lost subscription.
                    self.subscription_ended(&done.reply, done.kind);
                }
                Next::Serve
            }
            DoneKind::Fetched | DoneKind::Forwarded => {
                // A read the cache could not fill: no reply yet.
                if let Some(batch) = done.resend.take() {
                    return Next::Resend(batch);
                }
                self.deliver(&done.reply, done.held, done.kind == DoneKind::Forwarded);
                Next::Serve
            }
            DoneKind::Lost => {
                self.deliver(&done.reply, None, true);
                self.link_ended();
                Next::Serve
            }
            DoneKind::Message => {
                if self.own_reply(&mut done.reply) {
                    return Next::Flush;
                }
                if self.barrier_passed(&done.reply) {
                    return Next::Serve;
                }
                let at_redis = &mut self.session.at_redis;
                if let Some((shard, _, count)) = confirmation(&done.reply) {
                    match shard {
                        true => at_redis.shard = count,
                        false => at_redis.channels = count,
                    }
                }
                if handover_reply(at_redis, &done.reply) {
                    return Next::Flush;
                }
                self.relay(&done.reply);
                Next::Flush
            }
            DoneKind::Ended | DoneKind::LinkEnded => {
                self.subscription_ended(&done.reply, done.kind);
                Next::Serve
            }
        }
    }

    /// Where request `args` goes; `pending`: a batch gathered before it
    /// waits to be sent.
    pub(super) fn dedicated_lane(
        &self,
        args: &[&[u8]],
        pending: bool,
        service: &Service,
    ) -> Dedication {
        let at_redis = &self.session.at_redis;
        let usual = self.subscription.is_none()
            // Inside MULTI everything is queued, as without a subscription.
            || self.session.transaction.multi
            // RESP3 and subscribed, nothing owed: the usual paths too.
            || (at_redis.settled() && at_redis.any() && self.protocol() == Protocol::Resp3)
                && !over_subscription(args);
        let kind = if usual {
            let Some(kind) = self.usual_lane(args, service) else {
                return Dedication::None;
            };
            kind
        } else if over_subscription(args) || (at_redis.settled() && at_redis.any()) {
            // Pub/Sub, PING, or what Redis refuses in RESP2's Pub/Sub
            // mode (its own error; nothing runs).
            Kind::Subscribed
        } else {
            // Replies owed first, or no longer subscribed at Redis.
            return match pending {
                true => Dedication::Later,
                false => Dedication::Pass,
            };
        };
        match pending {
            true => Dedication::Later,
            false => Dedication::Now(kind),
        }
    }

    /// Where request `args` goes without a subscription at Redis: a
    /// blocking command or a first subscription to a connection of its
    /// own, or (None) the usual paths. (`execute_by_name.rs`'s
    /// `may_dedicate` names every command this may send elsewhere.)
    fn usual_lane(&self, args: &[&[u8]], service: &Service) -> Option<Kind> {
        if service.forwarding() == Forwarding::Off
            || (service.requires_password() && !self.session.authenticated)
            || self.session.transaction.multi
        {
            None
        } else if may_block(args) && !self.subscribed_here_in_resp2() {
            Some(Kind::Block)
        } else if subscribes(args) {
            Some(Kind::Subscribe)
        } else {
            None
        }
    }

    /// Sends request `args` to its dedicated connection. False when the
    /// connection must close (its subscription cannot keep up).
    pub(super) fn start_dedicated(
        &mut self,
        kind: Kind,
        batch: Batch,
        token: mio::Token,
        dedicated: &Dedicated,
    ) -> bool {
        let client = Client {
            resp3: self.protocol() == Protocol::Resp3,
            db: self.session.db,
            dedicated: true,
        };
        match kind {
            Kind::Block => {
                let transaction = &mut self.session.transaction;
                let lane = match transaction.pinned() {
                    true => Lane::Held(transaction.held.take(), transaction.watching),
                    false => Lane::Pooled,
                };
                match dedicated.block(token, batch, client, lane) {
                    Ok(cancel) => {
                        self.blocked = Some(cancel);
                        self.wait();
                    }
                    Err((message, lane)) => {
                        if let Lane::Held(held, _) = lane {
                            self.session.transaction.held = held;
                        }
                        self.refuse(&message, dedicated.service());
                    }
                }
                true
            }
            Kind::Subscribe => {
                match dedicated.subscribe(token, client, dedicated.service().pin(&batch)) {
                    Ok(subscription) => {
                        dedicated.service().drop_before_sending(&batch);
                        let at_redis = &mut self.session.at_redis;
                        *at_redis = AtRedis::default();
                        // Subscribed here to the invalidation channel: it
                        // is subscribed at Redis first, so that Redis
                        // counts it with the rest as it would have; its
                        // confirmation (given already) is dropped.
                        let mut sent = true;
                        if std::mem::take(&mut self.session.subscribed) {
                            at_redis.channels = 1;
                            at_redis.to_drop = 1;
                            sent = subscription.send(HANDOVER.to_vec());
                        }
                        let sent = sent && subscription.send(batch.frames().to_vec());
                        at_redis.owed = true;
                        self.subscription = Some(subscription);
                        sent
                    }
                    Err(message) => {
                        self.refuse(&message, dedicated.service());
                        true
                    }
                }
            }
            Kind::Subscribed => {
                // Pub/Sub commands, PING and refused ones: no key changes.
                self.session.at_redis.owed = true;
                self.count_token_pings(&batch);
                self.subscription
                    .as_ref()
                    .is_some_and(|subscription| subscription.send(batch.frames().to_vec()))
            }
        }
    }

    /// Subscribed to the proxy's invalidation channel in RESP2: Redis's
    /// Pub/Sub mode, where a blocking command is refused (`cmd::execute`),
    /// never sent.
    fn subscribed_here_in_resp2(&self) -> bool {
        self.session.subscribed && self.protocol() == Protocol::Resp2
    }

    /// Passes on what came over the subscription at once, even while the
    /// client waits (for a barrier, a read, a blocking command): nothing
    /// is owed on the subscription while the client waits for anything
    /// else (`subscribed.rs`), so this is a reply in its turn or a message,
    /// which Redis too sends whenever it comes; and replies from elsewhere
    /// are appended whole.
    fn relay(&mut self, frame: &[u8]) {
        self.replies.buf.extend_from_slice(frame);
    }

    /// In Pub/Sub mode, as Redis would see it: what a RESP2 `REDIRECT`
    /// target needs to be sent invalidation messages.
    pub fn in_pubsub(&self) -> bool {
        self.session.subscribed || (self.subscription.is_some() && self.session.at_redis.any())
    }

    /// The Redis connection the client's own work ran on (a blocking
    /// command's, a transaction's) ended under it: with the replies that
    /// came written, the client is closed without a word, as Redis's own
    /// connection to it would have been (clients take that for a lost
    /// connection and reconnect, where an error reply would be a server
    /// error to them). Nothing it sent after runs.
    fn link_ended(&mut self) {
        self.session.quit = true;
        if !matches!(self.state, State::Closing { .. }) {
            self.state = State::Closing { since: None };
        }
    }

    /// The subscription ended: say why (if there is something to say) and
    /// close, as Redis's own connection would have closed.
    /// Nothing the client sent after runs, as at Redis (a request waiting
    /// for the barrier would otherwise take the ordinary path). `kind`
    /// [`DoneKind::LinkEnded`]: its connection ended under it, `why` is
    /// the cause, logged, and the client is told nothing, as Redis's end
    /// tells it nothing (clients reconnect on a closed connection; an
    /// error reply would be a server error to them).
    pub fn subscription_ended(&mut self, why: &[u8], kind: DoneKind) {
        if self.subscription.is_none() && (self.session.quit || kind == DoneKind::LinkEnded) {
            // Ended here already (`barrier_overdue`), the client told,
            // or left here (the proxy's shutdown): this is its thread's
            // end, nothing more to say.
            return;
        }
        let why = match kind {
            DoneKind::LinkEnded => {
                super::dedicated::subscription_lost(why);
                &[]
            }
            _ => why,
        };
        self.subscription = None;
        self.session.quit = true;
        // What was held while the client waited goes out first.
        self.deliver(&[], None, false);
        if !why.is_empty() {
            let why = String::from_utf8_lossy(why).into_owned();
            self.push(|out| {
                out.push(b'-');
                out.extend_from_slice(why.as_bytes());
                out.extend_from_slice(b"\r\n");
            });
        }
        self.state = State::Closing { since: None };
    }
}
