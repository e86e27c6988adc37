//! A client with a subscription at Redis: what its other requests wait
//! for, so that they take exactly the path they take without one.
//!
//! Only Pub/Sub commands and `PING` go over the subscription's connection
//! (`lanes.rs`); every other request runs as on a connection with no
//! subscription (refusals, RESP_FORWARD, the proxy's own answers, the cache,
//! forwarding with its drops before and after, transactions, blocking
//! commands), once nothing is owed on the subscription:
//!
//! - A barrier: before the first such request after anything was sent on
//!   the subscription, the proxy sends a `PING` of its own there and the
//!   client waits; Redis answers in order, so once that `PING`'s reply is in
//!   (and dropped), every reply owed before it has been passed on, and the
//!   subscription counts the proxy read from Redis's confirmations are
//!   Redis's own. While the request runs, the connection waits for it as
//!   any, so later Pub/Sub commands go out only after its reply.
//! - Then: still subscribed at Redis in RESP2, the request goes over the
//!   subscription after all, for Redis's own refusal (Redis allows nothing
//!   else in RESP2's Pub/Sub mode, and runs nothing it refuses); still
//!   subscribed in RESP3, the usual paths; subscribed to nothing (RESP2 or
//!   RESP3), the subscription is released: its connection is closed and
//!   the client waits for its thread to end (its DEDICATED_CONNECTIONS place
//!   free by then), and is an ordinary client again.
//! - A protocol change (`HELLO 2|3`, answered by the proxy) while
//!   subscribed is followed by a `HELLO` of the proxy's own on the
//!   subscription, so that Redis frames what it sends there in the client's
//!   new protocol; its reply is dropped, and a message framed in the old
//!   one meanwhile is reframed (a message is the same array either way).

use std::hash::{BuildHasher, Hasher};
use std::sync::LazyLock;
use std::time::Duration;

use mio::Token;

use super::cmd::pubsub::is_message;
use super::conn::{Conn, State};
use super::reply::Protocol;
use super::session::AtRedis;
use super::upstream::ClientMap;
use crate::service::Batch;

/// The proxy's own `PING` over a subscription, with an argument no client
/// can guess, and the two shapes of its reply.
struct Barrier {
    /// The argument.
    token: Vec<u8>,
    request: Vec<u8>,
    /// RESP3, or RESP2 outside Pub/Sub mode: the argument as a bulk string.
    bulk: Vec<u8>,
    /// RESP2 in Pub/Sub mode: `*2 pong <argument>`.
    pong: Vec<u8>,
}

static BARRIER: LazyLock<Barrier> = LazyLock::new(|| {
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let token = format!("redis-proxy-barrier-{random:016x}");
    let bulk = format!("${}\r\n{token}\r\n", token.len()).into_bytes();
    let mut request = b"*2\r\n$4\r\nPING\r\n".to_vec();
    request.extend_from_slice(&bulk);
    let mut pong = b"*2\r\n$4\r\npong\r\n".to_vec();
    pong.extend_from_slice(&bulk);
    Barrier {
        token: token.into_bytes(),
        request,
        bulk,
        pong,
    }
});

/// `HELLO 2` and `HELLO 3`.
const HELLO_2: &[u8] = b"*2\r\n$5\r\nHELLO\r\n$1\r\n2\r\n";
const HELLO_3: &[u8] = b"*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n";

impl Conn {
    /// A request that does not go over the client's subscription waits
    /// for it: the barrier is sent (false: the subscription is gone, the
    /// client must close), or, with nothing owed and nothing subscribed at
    /// Redis, the subscription is released. The request runs once the
    /// client resumes (`take_done`).
    pub(super) fn pass_subscription(&mut self) -> bool {
        if self.session.at_redis.settled() {
            // Redis's own count says the client left Pub/Sub mode: the
            // connection is closed; its end (`take_done`, as after a
            // RESET's) resumes the client, its place free.
            self.session.leaving_subscription = true;
            self.subscription = None;
            self.wait();
            return true;
        }
        self.send_barrier()
    }

    /// Sends the barrier and waits for it; false if the subscription is
    /// gone.
    fn send_barrier(&mut self) -> bool {
        self.session.at_redis.barrier = true;
        self.session.at_redis.barrier_since = Some(std::time::Instant::now());
        let sent = self
            .subscription
            .as_ref()
            .is_some_and(|subscription| subscription.send(BARRIER.request.clone()));
        if sent {
            self.wait();
        }
        sent
    }

    /// The client's input ended with replies still owed on its
    /// subscription (`SUBSCRIBE ch` and `PING`, then a half-close): Redis
    /// executes all it read before it reads the end, so it writes those
    /// replies, then closes. The proxy sends the barrier and closes once it
    /// is back, those replies passed on. False if the subscription is gone
    /// (the client is closed now).
    pub fn settle_before_close(&mut self) -> bool {
        let at_redis = &self.session.at_redis;
        if self.state != (State::Closing { since: None })
            || self.session.quit
            || self.subscription.is_none()
            || at_redis.settled()
            || at_redis.barrier
        {
            return true;
        }
        self.send_barrier()
    }

    /// Whether `reply` is the barrier's: dropped, and the client resumes
    /// (the replies that came before it, held while it waited, go out).
    pub(super) fn barrier_passed(&mut self, reply: &[u8]) -> bool {
        let at_redis = &mut self.session.at_redis;
        if reply != BARRIER.bulk && reply != BARRIER.pong {
            return false;
        }
        // Redis answers in order: the client's own such PINGs, sent before
        // the barrier, are answered before it.
        if at_redis.token_pings > 0 {
            at_redis.token_pings -= 1;
            return false;
        }
        if !at_redis.barrier {
            return false;
        }
        at_redis.barrier = false;
        at_redis.barrier_since = None;
        at_redis.owed = false;
        self.deliver(&[], None, false);
        true
    }

    /// Counts the client's requests in `batch` (sent on its subscription)
    /// that are `PING`s with the barrier's own argument.
    pub(super) fn count_token_pings(&mut self, batch: &Batch) {
        let mut argv = Vec::new();
        for i in 0..batch.len() {
            batch.argv(i, &mut argv);
            if let [name, argument] = argv.as_slice() {
                if name.eq_ignore_ascii_case(b"ping") && *argument == BARRIER.token.as_slice() {
                    self.session.at_redis.token_pings += 1;
                }
            }
        }
    }

    /// The clients of `conns` whose barrier is overdue (see
    /// [`Conn::barrier_overdue`]), told and set to close: to flush.
    pub fn overdue_barriers(conns: &mut ClientMap, limit: Duration) -> Vec<Token> {
        let overdue = conns
            .iter_mut()
            .filter_map(|(token, conn)| conn.barrier_overdue(limit).then_some(*token));
        overdue.collect()
    }

    /// Gives up a subscription whose barrier has had no reply within
    /// `limit` (REDIS_TIMEOUT_MS): Redis stopped answering, or answered
    /// the barrier with an error (`-BUSY` during a long script, `-NOPERM`
    /// if the proxy's user may not `PING`), which was passed on as the
    /// client's. The client is told and closed, as when the subscription's
    /// connection ends, rather than left waiting. True if it was.
    pub fn barrier_overdue(&mut self, limit: std::time::Duration) -> bool {
        let since = self.session.at_redis.barrier_since;
        if since.is_none_or(|since| since.elapsed() <= limit) {
            return false;
        }
        let why = format!(
            "ERR no reply from Redis on the subscription within REDIS_TIMEOUT_MS ({} ms): subscription ended",
            limit.as_millis()
        );
        self.subscription_ended(why.as_bytes(), super::workers::DoneKind::Ended);
        true
    }

    /// The client's protocol changed (`HELLO`) while it has a
    /// subscription: Redis is told too, with a `HELLO` of the proxy's own
    /// whose reply is dropped (`own_reply`). False if the subscription is
    /// gone.
    pub(super) fn follow_protocol(&mut self) -> bool {
        let hello = match self.protocol() {
            Protocol::Resp2 => HELLO_2,
            Protocol::Resp3 => HELLO_3,
        };
        let at_redis = &mut self.session.at_redis;
        at_redis.hello += 1;
        at_redis.owed = true;
        self.subscription
            .as_ref()
            .is_some_and(|subscription| subscription.send(hello.to_vec()))
    }

    /// Whether `frame`, from the subscription, answers the proxy's own
    /// `HELLO`: to be dropped. A message that comes before that reply is
    /// framed in the client's new protocol (it comes after the proxy's
    /// answer to the client's `HELLO`).
    pub(super) fn own_reply(&mut self, frame: &mut [u8]) -> bool {
        let protocol = self.protocol();
        let at_redis: &mut AtRedis = &mut self.session.at_redis;
        if at_redis.hello == 0 {
            return false;
        }
        if !is_message(frame) {
            at_redis.hello -= 1;
            return true;
        }
        if let Some(first) = frame.first_mut() {
            *first = match protocol {
                Protocol::Resp2 => b'*',
                Protocol::Resp3 => b'>',
            };
        }
        false
    }
}
