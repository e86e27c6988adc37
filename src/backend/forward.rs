//! Clients' own commands on their way to Redis: raw connections (see
//! `raw/`) kept in a small pool per protocol, each batch of requests
//! written at once and its replies read back in order (pipelining, as
//! twemproxy does: one checkout carries many clients' commands).

use std::io::{self, ErrorKind};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::raw::{RawConn, Upstream, Wait};
use super::slots::Slot;
use super::{Backend, BackendError, Target};

/// Why a connection a client held was given up: the sentinels named
/// another master since it was opened.
pub const MASTER_CHANGED: &str = "master changed (sentinel failover): transaction/WATCH discarded";

/// Why a batch on a pooled or the event loop's connection got no reply:
/// the sentinels named another master while it waited (a hung old master
/// would never answer), which shut the connection down.
pub const MASTER_LEFT: &str =
    "master changed (sentinel failover) before Redis answered: the command may have run";

/// Idle raw connections, one stack per protocol (RESP2, RESP3).
#[derive(Default)]
pub(super) struct RawPool {
    idle: [Mutex<Vec<RawConn>>; 2],
}

/// How a forwarded batch ended when it did not end well: `answered`
/// replies are in the output; the rest of the batch got none.
#[derive(Debug)]
pub struct ForwardError {
    pub answered: usize,
    pub error: BackendError,
}

impl Backend {
    /// FORWARD_TIMEOUT_MS: how long a forwarded command's replies are
    /// waited for (`None`: as long as Redis takes).
    pub fn forward_timeout(&self) -> Option<Duration> {
        self.forward_timeout
    }

    /// Sends `requests` (`count` whole RESP requests) on one connection
    /// speaking the client's protocol in database `db`, and appends the
    /// `count` replies to `out`, exactly as Redis sent them; `wait` says
    /// whose requests they are, so how long they are waited for (clients'
    /// by FORWARD_TIMEOUT_MS, the cache's own by REDIS_TIMEOUT_MS).
    ///
    /// A pooled connection that Redis closed while it sat idle is found
    /// out before anything is sent on it ([`RawConn::alive`]) and a fresh
    /// one used. Nothing is ever sent twice: after a send, whether Redis
    /// ran the requests cannot be known, so those without a reply fail.
    pub fn forward(
        &self,
        (resp3, db, wait): (bool, i64, Wait),
        requests: &[u8],
        count: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), ForwardError> {
        let failed = |error| ForwardError { answered: 0, error };
        let (mut conn, _) = self.checkout_raw(resp3, db, wait).map_err(failed)?;
        let mut answered = 0;
        let result = conn
            .send(requests)
            .and_then(|()| conn.receive_batch(out, count, &mut answered));
        match result {
            Ok(()) => {
                self.checkin_raw(conn);
                Ok(())
            }
            Err(err) => Err(ForwardError {
                answered,
                error: self.failed_on(&conn, &err, MASTER_LEFT),
            }),
        }
    }

    /// Why a batch on `conn` failed with `err`: `changed` when the
    /// sentinels named another master meanwhile (which shut the connection
    /// down: see [`Backend::open_raw`]).
    fn failed_on(&self, conn: &RawConn, err: &io::Error, changed: &str) -> BackendError {
        match conn.generation != self.target.generation() {
            true => BackendError::Unavailable(changed.to_owned()),
            false => classify(err),
        }
    }

    /// Sends `requests` on `conn`, a connection a client holds (a
    /// transaction, WATCH), in the client's protocol (`resp3`) and database
    /// `db`, and appends the `count`
    /// replies to `out`. Nothing is retried: the connection's state at
    /// Redis (queued commands, watched keys) would not survive it. After a
    /// failure `conn.broken` is set.
    ///
    /// A connection opened to a master the sentinels no longer name is not
    /// used: nothing is sent and the batch fails with [`MASTER_CHANGED`]
    /// (the demoted master would answer with old data, and run an EXEC
    /// whose writes the new master never sees). The caller drops it, which
    /// ends the client's transaction as a lost connection would (and, the
    /// connection counting as ended, closes the client, as the sentinels'
    /// `CLIENT KILL TYPE normal` closes the demoted master's clients).
    pub fn forward_on(
        &self,
        conn: &mut RawConn,
        (resp3, db): (bool, i64),
        requests: &[u8],
        count: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), ForwardError> {
        if conn.generation != self.target.generation() {
            // As if ended under the client: the sentinels close the
            // demoted master's clients (`CLIENT KILL TYPE normal`).
            conn.broken = true;
            conn.ended = true;
            return Err(ForwardError {
                answered: 0,
                error: BackendError::Unavailable(MASTER_CHANGED.to_owned()),
            });
        }
        let mut answered = 0;
        let result = conn
            .speak(resp3)
            .and_then(|()| conn.select(db))
            .and_then(|()| conn.send(requests))
            .and_then(|()| conn.receive_batch(out, count, &mut answered));
        result.map_err(|err| ForwardError {
            answered,
            error: self.failed_on(conn, &err, MASTER_CHANGED),
        })
    }

    /// A raw connection of the client's protocol in database `db`, for a
    /// client that needs one of its own for a while (a transaction, a
    /// blocking command, Pub/Sub), and whether it was pooled; its reads
    /// and writes bounded for `wait`'s requests (a `SELECT` it needs, too).
    /// Give it back with [`Backend::checkin_raw`], or drop it. In cluster
    /// mode this is a connection to the master keyless commands go to;
    /// use [`Backend::checkout_raw_for`] to name the slot.
    pub fn checkout_raw(
        &self,
        resp3: bool,
        db: i64,
        wait: Wait,
    ) -> Result<(RawConn, bool), BackendError> {
        if self.router.is_some() {
            return self.checkout_raw_for((resp3, db, wait), None);
        }
        let generation = self.target.generation();
        let idle = &self.raw.idle[usize::from(resp3)];
        let pooled = {
            let mut idle = idle.lock().unwrap_or_else(PoisonError::into_inner);
            loop {
                match idle.pop() {
                    Some(conn) if conn.generation != generation || !conn.alive() => drop(conn),
                    other => break other,
                }
            }
        };
        let (mut conn, reused) = match pooled {
            Some(conn) => (conn, true),
            None => (self.open_raw(resp3)?, false),
        };
        if let Err(err) = conn.wait_for(wait).and_then(|()| conn.select(db)) {
            return Err(classify(&err));
        }
        Ok((conn, reused))
    }

    /// In cluster mode, a raw connection to the master owning `slot` (the
    /// slot all of a transaction's keys hash to: see
    /// [`crate::backend::slot_of`]), or to the master keyless commands go
    /// to; elsewhere the same as [`Backend::checkout_raw`]. The hook for
    /// transactions and WATCH in cluster mode, which stay within one slot.
    /// Such a connection is not pooled: [`Backend::checkin_raw`] drops it.
    pub fn checkout_raw_for(
        &self,
        (resp3, db, wait): (bool, i64, Wait),
        slot: Option<Slot>,
    ) -> Result<(RawConn, bool), BackendError> {
        let Some(router) = &self.router else {
            return self.checkout_raw(resp3, db, wait);
        };
        let map = router.map(self)?;
        let addr = match slot {
            Some(slot) => map
                .master(slot)
                .ok_or_else(|| BackendError::Unavailable("no master serves the slot".to_owned()))?,
            None => map.any(),
        };
        router.checkout(self, addr, (resp3, db, wait))
    }

    /// [`Backend::checkout_raw_for`] for a blocking command or a
    /// subscription: a new connection is answered once first
    /// ([`RawConn::ping`]), so that its request, once written, is read by
    /// Redis before another client's command written after it (the order
    /// rule, `resp/fence.rs`). A reused one has been answered before.
    /// That PING is the proxy's own, bounded by REDIS_TIMEOUT_MS.
    pub fn checkout_dedicated(
        &self,
        resp3: bool,
        db: i64,
        slot: Option<Slot>,
    ) -> Result<RawConn, BackendError> {
        let (mut conn, reused) = self.checkout_raw_for((resp3, db, Wait::Own), slot)?;
        if !reused {
            conn.ping().map_err(|err| classify(&err))?;
        }
        Ok(conn)
    }

    /// Gives back a connection from [`Backend::checkout_raw`]: kept for
    /// the next batch unless it failed, or enough are idle already.
    pub fn checkin_raw(&self, conn: RawConn) {
        if conn.broken || self.router.is_some() || conn.generation != self.target.generation() {
            return;
        }
        let mut idle = self.raw.idle[usize::from(conn.resp3)]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.pool.max_size() as usize {
            idle.push(conn);
        }
    }

    /// Whether the RESP event loop may drive connections to Redis itself
    /// ([`Upstream`]): one server (standalone or sentinel's master) over
    /// plain TCP. Cluster mode routes per slot, and a TLS stream is not
    /// driven without blocking: both stay on the workers' path.
    pub fn upstreams_possible(&self) -> bool {
        self.router.is_none() && !self.roots.is_tls()
    }

    /// A connection for the event loop to drive, of the client's protocol
    /// and in database `db`: opened (or taken from the pool) and checked
    /// blocking, so call it off the loop.
    pub fn open_upstream(&self, resp3: bool, db: i64) -> Result<Upstream, BackendError> {
        if !self.upstreams_possible() {
            return Err(BackendError::Unavailable(
                "no event-loop connections in cluster mode or over TLS".to_owned(),
            ));
        }
        let (conn, _) = self.checkout_raw(resp3, db, Wait::Own)?;
        Upstream::take_over(conn)
    }

    /// Shuts `conn` down (from another thread) as soon as the sentinels
    /// name another master, so a blocking command or a subscription on it
    /// does not stay on the demoted one; [`MasterWatch::changed`] says
    /// whether that is what ended it. Nothing to watch outside sentinel
    /// mode.
    pub fn watch_master(&self, conn: &RawConn) -> MasterWatch {
        let Target::Sentinel(topology) = &self.target else {
            return MasterWatch(None);
        };
        let key = conn
            .closer()
            .ok()
            .map(|stream| topology.watch_lane(stream, conn.generation));
        MasterWatch(key.map(|key| (Arc::clone(topology), key, conn.generation)))
    }

    /// Whether `upstream` goes to the master of now (sentinel mode: not
    /// to one the sentinels stopped naming).
    pub fn upstream_current(&self, upstream: &Upstream) -> bool {
        upstream.generation == self.target.generation()
    }

    fn open_raw(&self, resp3: bool) -> Result<RawConn, BackendError> {
        let (info, generation) = match &self.target {
            Target::Single(client) => (client.get_connection_info().clone(), 0),
            Target::Sentinel(topology) => {
                let (client, generation) = topology
                    .master_client()
                    .map_err(|err| BackendError::Unavailable(err.to_string()))?;
                (client.get_connection_info().clone(), generation)
            }
            Target::Cluster(_) => {
                return Err(BackendError::Unavailable(
                    "cluster mode forwards through Backend::forward_cluster".to_owned(),
                ))
            }
        };
        let mut conn =
            RawConn::open(&info, resp3, self.timeout, &self.roots).map_err(|err| {
                match (classify(&err), &self.target) {
                    (BackendError::Unavailable(why), Target::Sentinel(topology)) => {
                        BackendError::Unavailable(topology.explain(why))
                    }
                    (BackendError::Timeout(why), Target::Sentinel(topology)) => {
                        BackendError::Timeout(topology.explain(why))
                    }
                    (other, _) => other,
                }
            })?;
        conn.generation = generation;
        conn.max_reply = self.max_reply;
        conn.forward_timeout = self.forward_timeout;
        // Sentinel mode: shut down as soon as the sentinels name another
        // master, so a batch waiting for a hung (stopped) old one fails
        // then, however long FORWARD_TIMEOUT_MS is (none by default).
        conn.watch = self.watch_master(&conn);
        Ok(conn)
    }
}

/// Whether `err` is what a connection Redis closed while idle gives on
/// first use.
pub(super) fn closed_while_idle(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset | ErrorKind::BrokenPipe
    )
}

pub(super) fn classify(err: &io::Error) -> BackendError {
    match err.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => BackendError::Timeout(err.to_string()),
        _ => BackendError::Unavailable(err.to_string()),
    }
}

/// A connection watched for a change of master (see
/// [`Backend::watch_master`]); unwatched when dropped.
pub struct MasterWatch(Option<(Arc<super::Topology>, u64, u64)>);

impl MasterWatch {
    /// Watching nothing.
    pub fn none() -> MasterWatch {
        MasterWatch(None)
    }

    /// Whether the sentinels named another master since the connection
    /// was opened (and so shut it down).
    pub fn changed(&self) -> bool {
        self.0
            .as_ref()
            .is_some_and(|(topology, _, generation)| topology.generation() != *generation)
    }
}

impl Drop for MasterWatch {
    fn drop(&mut self) {
        if let Some((topology, key, _)) = &self.0 {
            topology.unwatch_lane(*key);
        }
    }
}
