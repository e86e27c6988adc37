//! Cluster mode's raw connections: one small pool per node, and the slot
//! map that says which master a request goes to (see `slots.rs`).
//!
//! The map is read from `CLUSTER SLOTS` on first use, and again when a
//! node answers `-MOVED` for a slot the map gives to another node, or a
//! node cannot be reached (a master down, a failover under way), and on
//! the next batch after any connection, one a client holds included, got
//! `-MOVED`, or `-READONLY` or a blocked command's `-UNBLOCKED` from a
//! master demoted by a failover (at most once a second, since a script can
//! return them too). It is
//! asked of the node that answered `-MOVED` first, then of the other known
//! masters, then of the seed nodes
//! (REDIS_ADDRESS), on the same raw connections, its reply decoded by the
//! redis crate's parser. One thread refreshes at a time; the others then
//! take its map rather than asking again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo};

use super::raw::{encode, RawConn, Wait};
use super::redirect::{redirection, Redirect};
use super::slots::{Addr, SlotMap};
use super::{Backend, BackendError};
use crate::config::Config;

/// How often a `-READONLY` may have the map read again. A real one (a
/// master demoted by a failover) is the first in a long while; one more
/// within this second, from a script or a second demotion, is dropped,
/// and the next one after it counts (a client retrying gets the error
/// for at most this long more).
const READONLY_EVERY: Duration = Duration::from_secs(1);

/// What a master a failover demotes answers the commands blocked on it
/// (`disconnectAllBlockedClients`): a queue's worker, sending only BLPOP,
/// would else get the old master's `-MOVED` next, a second error.
/// (`CLIENT UNBLOCK`'s `-UNBLOCKED` differs, and says nothing of the map.)
const DEMOTED_UNBLOCKED: &[u8] =
    b"-UNBLOCKED force unblock from blocking operation, instance state changed";

/// Idle connections to one node, one stack per protocol (RESP2, RESP3).
type Idle = [Vec<RawConn>; 2];

/// That the slot map is out of date, and which node said so: shared by the
/// router and every connection it opens, so a `-MOVED` or `-READONLY` read
/// on a connection a client holds has the next batch read the map again,
/// asking that node first.
///
/// Signals are counted, not flagged: a refresh answers only those raised
/// before it began, so one raised while it runs (its `CLUSTER SLOTS` may
/// have been answered before the change the signal reports) has the next
/// batch read the map again rather than being cleared with the rest.
#[derive(Default)]
pub(in crate::backend) struct Staleness {
    /// Signals raised so far.
    raised: AtomicU64,
    /// How many of them the last refresh that succeeded answered (the
    /// count when it began).
    answered: AtomicU64,
    ask_first: Mutex<Option<Addr>>,
    /// When a `-READONLY` or [`DEMOTED_UNBLOCKED`] last raised a signal.
    readonly_at: Mutex<Option<Instant>>,
}

impl Staleness {
    /// Reads a reply of `node`'s for what shows the map out of date:
    /// `-MOVED` to another node (the slot has another master now), or
    /// `-READONLY` or [`DEMOTED_UNBLOCKED`] (the node is a replica now, as
    /// after a failover), these at most once per [`READONLY_EVERY`].
    pub(in crate::backend) fn heard(&self, node: &Addr, reply: &[u8]) {
        if reply.first() != Some(&b'-') {
            return;
        }
        if reply.starts_with(b"-READONLY ") || reply.starts_with(DEMOTED_UNBLOCKED) {
            if self.readonly_due() {
                self.said_by(node);
            }
        } else if reply.starts_with(b"-MOVED ") {
            // A -MOVED naming the node that sent it is no node's: a script
            // wrote it, and would otherwise have every batch read the map.
            if let Some(Redirect::Moved(_, to)) = redirection(reply) {
                if to != *node {
                    self.said_by(node);
                }
            }
        }
    }

    /// Whether a `-READONLY` may raise a signal now (and, if so, that one
    /// did): a demoted master's cannot be told from a script's
    /// (`redis.error_reply('READONLY ...')`), which a client may have run
    /// in a loop.
    fn readonly_due(&self) -> bool {
        let now = Instant::now();
        let mut at = self
            .readonly_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if at.is_some_and(|at| now.saturating_duration_since(at) < READONLY_EVERY) {
            return false;
        }
        *at = Some(now);
        true
    }

    /// `node` answered `-MOVED` or `-READONLY`.
    fn said_by(&self, node: &Addr) {
        // The hint first: a refresh that counts this signal finds it.
        *self
            .ask_first
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(node.clone());
        self.raise();
    }

    fn raise(&self) {
        self.raised.fetch_add(1, Ordering::AcqRel);
    }

    /// Whether a signal was raised that no refresh has answered.
    fn is_stale(&self) -> bool {
        self.raised.load(Ordering::Acquire) != self.answered.load(Ordering::Acquire)
    }

    /// Called as a refresh begins: what it will answer if it succeeds.
    fn begin(&self) -> u64 {
        self.raised.load(Ordering::Acquire)
    }

    /// A refresh that began at `begun` succeeded: the signals raised
    /// before it are answered, any since are not.
    fn answer(&self, begun: u64) {
        self.answered.fetch_max(begun, Ordering::AcqRel);
    }
}

/// Routes forwarded commands to the cluster's masters.
pub(super) struct Router {
    /// The seed nodes' settings: where the map is asked when no master
    /// answers, and the user, password and TLS every node's connection uses.
    seeds: Vec<ConnectionInfo>,
    map: RwLock<Option<Arc<SlotMap>>>,
    /// The generation of the map in `map`, set with it (under its write
    /// lock): one atomic read says whether a map read before a fetch is
    /// still the current one after it.
    generation: AtomicU64,
    /// Raised when a node could not be reached, or answered `-MOVED` or
    /// `-READONLY` on any connection (held ones included: see
    /// `RawConn::map_stale`): the next batch asks again.
    stale: Arc<Staleness>,
    refreshing: Mutex<()>,
    idle: Mutex<HashMap<Addr, Idle>>,
}

impl Router {
    /// A router for the cluster REDIS_ADDRESS's seed nodes name, with no
    /// map yet (the first forwarded batch asks for one).
    pub(super) fn new(config: &Config) -> redis::RedisResult<Router> {
        let seeds = config
            .redis_nodes
            .iter()
            .map(|url| url.as_str().into_connection_info())
            .collect::<redis::RedisResult<Vec<_>>>()?;
        Ok(Router {
            seeds,
            map: RwLock::new(None),
            generation: AtomicU64::new(0),
            stale: Arc::default(),
            refreshing: Mutex::new(()),
            idle: Mutex::new(HashMap::new()),
        })
    }

    /// The map to route by: the current one, or a fresh one if there is
    /// none yet or it was marked stale since (see `stale`).
    pub(super) fn map(&self, backend: &Backend) -> Result<Arc<SlotMap>, BackendError> {
        if !self.stale.is_stale() {
            if let Some(map) = self.current() {
                return Ok(map);
            }
        }
        self.refresh(backend, None, None)
    }

    /// Says the map may be out of date: a node was unreachable.
    pub(super) fn mark_stale(&self) {
        self.stale.raise();
    }

    /// A fresh map, read from the cluster, unless another thread replaced
    /// `seen` (the map the caller found wrong) while this one waited.
    /// `first`, a node of `seen` that just answered `-MOVED` (else the one
    /// [`Staleness`] names), is asked before the others: it knows the
    /// slot's new owner, where a master that has not yet heard of a
    /// failover gives the old map again.
    pub(super) fn refresh(
        &self,
        backend: &Backend,
        seen: Option<&Arc<SlotMap>>,
        first: Option<&Addr>,
    ) -> Result<Arc<SlotMap>, BackendError> {
        let _one = self
            .refreshing
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let current = self.current();
        if let Some(current) = &current {
            let newer = seen.is_none_or(|seen| !Arc::ptr_eq(seen, current));
            if newer && !self.stale.is_stale() {
                return Ok(Arc::clone(current));
            }
        }
        let begun = self.stale.begin();
        let mut asked: Vec<Addr> = current
            .as_ref()
            .map(|map| map.masters().iter().map(|addr| Addr::clone(addr)).collect())
            .unwrap_or_default();
        let hint = self
            .stale
            .ask_first
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(first) = first.cloned().or(hint) {
            asked.retain(|addr| *addr != first);
            asked.insert(0, first);
        }
        asked.extend(self.seeds.iter().filter_map(|info| match info.addr() {
            ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => {
                Some(Addr {
                    host: host.clone(),
                    port: *port,
                })
            }
            _ => None,
        }));
        let mut last = BackendError::Unavailable("no cluster seed nodes".to_owned());
        for addr in &asked {
            match self.ask_slots(backend, addr) {
                Ok(map) => {
                    log::debug!("cluster slot map from {addr}: masters {:?}", map.masters());
                    let map = self.install(map);
                    self.stale.answer(begun);
                    return Ok(map);
                }
                Err(err) => last = err,
            }
        }
        Err(last)
    }

    /// Makes `map` the current map, of the next generation, and drops the
    /// idle connections to nodes it does not name a master.
    pub(super) fn install(&self, mut map: SlotMap) -> Arc<SlotMap> {
        let map = {
            let mut current = self.map.write().unwrap_or_else(PoisonError::into_inner);
            map.generation = self.generation.load(Ordering::Relaxed) + 1;
            let map = Arc::new(map);
            *current = Some(Arc::clone(&map));
            // Under the write lock: whoever reads this map reads at least
            // its generation here afterwards.
            self.generation.store(map.generation, Ordering::Release);
            map
        };
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|node, _| map.masters().iter().any(|master| **master == *node));
        map
    }

    /// The generation of the current map: the same as a map's read before
    /// only if no refresh replaced that map since.
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The slot map as last read (none before the first read).
    pub(super) fn current(&self) -> Option<Arc<SlotMap>> {
        self.map
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// `CLUSTER SLOTS` on `addr`.
    fn ask_slots(&self, backend: &Backend, addr: &Addr) -> Result<SlotMap, BackendError> {
        let (mut conn, _) = self.checkout(backend, addr, (false, 0, Wait::Own))?;
        let mut request = Vec::new();
        encode(&[b"CLUSTER", b"SLOTS"], &mut request);
        let mut reply = Vec::new();
        conn.send(&request)
            .and_then(|()| conn.receive(&mut reply))
            .map_err(|err| super::forward::classify(&err))?;
        self.checkin(addr, conn, backend.pool.max_size() as usize);
        if super::cluster::disabled(&reply) {
            let why = super::cluster::not_in_cluster_mode(addr);
            return Err(BackendError::Unavailable(why));
        }
        let value = redis::parse_redis_value(&reply)
            .map_err(|err| BackendError::Unavailable(format!("CLUSTER SLOTS on {addr}: {err}")))?;
        SlotMap::parse(&value)
            .map_err(|why| BackendError::Unavailable(format!("CLUSTER SLOTS on {addr}: {why}")))
    }

    /// A raw connection to `addr` in the client's protocol and database,
    /// and whether it was pooled.
    pub(super) fn checkout(
        &self,
        backend: &Backend,
        addr: &Addr,
        (resp3, db, wait): (bool, i64, Wait),
    ) -> Result<(RawConn, bool), BackendError> {
        let pooled = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(addr)
            .and_then(|idle| idle[usize::from(resp3)].pop())
            // A node that closed it while idle: found out before a send.
            .filter(RawConn::alive);
        let (mut conn, reused) = match pooled {
            Some(conn) => (conn, true),
            None => (self.open(backend, addr, resp3)?, false),
        };
        conn.wait_for(wait)
            .and_then(|()| conn.select(db))
            .map_err(|err| super::forward::classify(&err))?;
        Ok((conn, reused))
    }

    /// Gives back a connection to `addr`: kept unless it failed or `max`
    /// are idle already.
    pub(super) fn checkin(&self, addr: &Addr, conn: RawConn, max: usize) {
        if conn.broken {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        let stack = &mut idle.entry(addr.clone()).or_default()[usize::from(conn.resp3)];
        if stack.len() < max {
            stack.push(conn);
        }
    }

    fn open(&self, backend: &Backend, addr: &Addr, resp3: bool) -> Result<RawConn, BackendError> {
        let Some(seed) = self.seeds.first() else {
            return Err(BackendError::Unavailable(
                "no cluster seed nodes".to_owned(),
            ));
        };
        let mut node = seed.addr().clone();
        match &mut node {
            ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => {
                host.clone_from(&addr.host);
                *port = addr.port;
            }
            _ => {}
        }
        let info = seed.clone().set_addr(node);
        let mut conn =
            RawConn::open(&info, resp3, backend.timeout, &backend.roots).map_err(|err| {
                self.mark_stale();
                BackendError::Unavailable(format!("{addr}: {err}"))
            })?;
        conn.max_reply = backend.max_reply;
        conn.forward_timeout = backend.forward_timeout;
        conn.map_stale = Some((Arc::clone(&self.stale), addr.clone()));
        Ok(conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_raised_during_a_refresh_outlives_it() {
        let stale = Staleness::default();
        let node = Addr {
            host: "127.0.0.1".to_owned(),
            port: 7000,
        };
        stale.said_by(&node);
        assert!(stale.is_stale());
        let begun = stale.begin();
        stale.answer(begun);
        assert!(!stale.is_stale(), "the refresh answered it");
        // A -MOVED read while a refresh is asking CLUSTER SLOTS.
        let begun = stale.begin();
        stale.said_by(&node);
        stale.answer(begun);
        assert!(stale.is_stale(), "the next batch reads the map again");
        // An older refresh ending late answers nothing newer.
        let older = stale.begin();
        let newer = stale.begin();
        stale.answer(newer);
        stale.answer(older);
        assert!(!stale.is_stale());
    }
}
