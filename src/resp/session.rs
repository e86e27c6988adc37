//! What a RESP connection keeps between its commands.

use std::sync::Arc;

use super::tracking::TrackingMode;
use super::transaction::Transaction;

/// One client's state: everything but the socket and the buffers, which
/// the event loop owns.
pub struct Session {
    /// The connection's number, for `CLIENT ID`.
    pub id: u64,
    /// Set by `CLIENT SETNAME` or `HELLO ... SETNAME`.
    pub name: Option<Vec<u8>>,
    /// `QUIT` was received: close once the replies are written.
    pub quit: bool,
    /// Gave PROXY_PASSWORD (`AUTH`, `HELLO ... AUTH`); unused without one.
    pub authenticated: bool,
    /// `CLIENT TRACKING ON ...`.
    pub tracking: Option<TrackingMode>,
    /// Set by `tracking` changes, for the event loop to register them.
    pub tracking_changed: bool,
    /// BCAST prefixes added since the event loop last registered them.
    /// Shared with `tracking`'s set: one allocation each.
    pub tracking_prefixes_added: Vec<Arc<[u8]>>,
    /// `CLIENT CACHING YES|NO`, for the next command only.
    pub caching: Option<bool>,
    /// Keys this command read that the event loop must remember for it:
    /// the one copy the tracking table will keep.
    pub tracked: Vec<Arc<[u8]>>,
    /// Subscribed to `__redis__:invalidate` (a `REDIRECT` target), the
    /// proxy answering: no subscription at Redis yet.
    pub subscribed: bool,
    /// Subscribed at Redis (on its dedicated connection), as Redis's own
    /// confirmations count: whether a RESP2 `REDIRECT` target gets the
    /// proxy's invalidation messages, as Redis sends them to a client in
    /// Pub/Sub mode (any channel, pattern or shard channel).
    pub at_redis: AtRedis,
    /// The database selected (`SELECT`), where forwarded commands run.
    pub db: i64,
    /// MULTI / WATCH, and the Redis connection they hold.
    pub transaction: Transaction,
    /// RESET (or QUIT, with `quit`) left a subscription at Redis, or the
    /// proxy released one subscribed to nothing (`subscribed.rs`), whose
    /// thread has not ended yet: the connection waits for that end.
    pub leaving_subscription: bool,
}

/// A client's subscriptions at Redis, from the confirmations Redis sent.
#[derive(Default)]
pub struct AtRedis {
    /// Channels and patterns (what `SUBSCRIBE`'s confirmations count).
    pub channels: u64,
    /// Shard channels (what `SSUBSCRIBE`'s count).
    pub shard: u64,
    /// Confirmations still to drop: the proxy's own `SUBSCRIBE
    /// __redis__:invalidate`, sent first when a client subscribed here
    /// moves to Redis, so that Redis counts that channel too.
    pub to_drop: usize,
    /// Something was sent on the subscription since its last barrier:
    /// replies may still be owed, and the counts may change.
    pub owed: bool,
    /// The proxy's own `PING` (the barrier, `lanes.rs`) is on its way: its
    /// reply is dropped, and resumes the client.
    pub barrier: bool,
    /// When the barrier was sent: past REDIS_TIMEOUT_MS with no reply, the
    /// subscription is given up (`Conn::barrier_overdue`).
    pub barrier_since: Option<std::time::Instant>,
    /// The client's own `PING`s carrying the barrier's argument (learnt
    /// from `SLOWLOG`, say) still unanswered: their replies are the
    /// client's, not the barrier's.
    pub token_pings: usize,
    /// Replies to the proxy's own `HELLO` (the client's protocol changed
    /// while subscribed at Redis) still to drop.
    pub hello: usize,
}

impl AtRedis {
    /// In Pub/Sub mode at Redis.
    pub fn any(&self) -> bool {
        self.channels + self.shard > 0
    }

    /// Every reply owed on the subscription has been passed on: the counts
    /// are Redis's own now.
    pub fn settled(&self) -> bool {
        !self.owed && self.to_drop == 0 && self.hello == 0
    }
}

impl Session {
    /// A fresh session for connection `id`, in database `db`.
    pub fn new(id: u64, db: i64) -> Session {
        Session {
            id,
            name: None,
            quit: false,
            authenticated: false,
            tracking: None,
            tracking_changed: false,
            tracking_prefixes_added: Vec::new(),
            caching: None,
            tracked: Vec::new(),
            subscribed: false,
            at_redis: AtRedis::default(),
            db,
            transaction: Transaction::default(),
            leaving_subscription: false,
        }
    }

    /// Notes for tracking the keys request `args` reads (as `service`'s
    /// command table finds them), if this client tracks.
    /// (Inlined: it runs for every forwarded request, and most clients
    /// do not track.)
    #[inline]
    pub fn track_reads(&mut self, service: &crate::service::Service, args: &[&[u8]]) {
        if self.tracking.is_some() {
            self.track_reads_now(service, args);
        }
    }

    /// [`Session::track_reads`] of a client that tracks.
    fn track_reads_now(&mut self, service: &crate::service::Service, args: &[&[u8]]) {
        let mut read = Vec::new();
        service.keys_read(args, &mut read);
        for i in read {
            self.track_read(args[i]);
        }
    }

    /// Notes a read of `key` for tracking, if this client tracks it (default
    /// mode; OPTIN and OPTOUT as `CLIENT CACHING` says).
    pub fn track_read(&mut self, key: &[u8]) {
        let Some(mode) = &self.tracking else {
            return;
        };
        let wanted = if mode.bcast {
            false
        } else if mode.optin {
            self.caching == Some(true)
        } else if mode.optout {
            self.caching != Some(false)
        } else {
            true
        };
        if wanted {
            self.tracked.push(Arc::from(key));
        }
    }
}
