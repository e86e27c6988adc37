//! The read (`GET key`, `PTTL key`: see `read.rs`) in cluster mode, sent
//! by the proxy itself to the key's master on one of the router's raw
//! connections, so it knows which node answered.
//!
//! Why not the redis crate's cluster connection: it routes by a slot map of
//! its own, so the read could be served by a master the invalidation links
//! do not cover yet (a slot moved to a master added since the watcher last
//! looked) and the proxy could not tell; and it follows `-ASK` for the
//! pipeline as a whole, `ASKING` once, so the `PTTL` came back `-MOVED`
//! and a read of a migrating slot failed.
//!
//! Redirections are followed as Redis Cluster clients do: `-MOVED` sends
//! the read again to the node named, after refreshing the router's map;
//! `-ASK` sends `ASKING` before each of the two commands to the node named.
//! A read is storable only if it was answered, without a redirection
//! (the slot was moving, or the map was old), by a master the invalidation
//! links cover (coherence invariant 1: see docs/coherence.md). Anything
//! else is served to its readers and not kept.

use std::ops::Range;

use redis::Value;

use super::raw::encode;
use super::read::{self, Read};
use super::redirect::{redirection, Redirect};
use super::router::Router;
use super::slots::{slot_of, Addr};
use super::{Backend, BackendError};

/// A first try and this many redirections (an `-ASK` after a `-MOVED`).
const REDIRECTS: usize = 2;

/// That every master of the slot map had its invalidation link up when a
/// fetch through the forwarder began, and which map that was: the fill
/// keeps the reply only if [`Backend::still_covers`] says no other map
/// replaced it meanwhile (see [`Backend::coverage`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Coverage {
    generation: u64,
}

impl Backend {
    /// Taken before a fetch through the forwarder, which does not say which
    /// node answered: `Some` if every master of the router's slot map (read
    /// first if there is none yet, or it was marked stale) has its
    /// invalidation link up; always outside cluster mode, or with nothing
    /// to check. Checked before the fetch, not after: a map read during
    /// it from a master that has not heard of a new one would leave that
    /// master out, and a reply it served would look covered.
    pub fn coverage(&self) -> Option<Coverage> {
        let Some(router) = &self.router else {
            return Some(Coverage { generation: 0 });
        };
        // The map the forwarder is about to route by (it asks the same).
        let map = router.map(self).ok()?;
        map.masters()
            .iter()
            .all(|m| self.linked.covers(m))
            .then_some(Coverage {
                generation: map.generation,
            })
    }

    /// Whether `coverage` still holds after the fetch: no refresh replaced
    /// its map, so the fetch was routed by it, to masters it covers (one a
    /// redirection named would have had the map read again). A link lost
    /// meanwhile is the fill's own check (the link's epoch).
    pub fn still_covers(&self, coverage: Coverage) -> bool {
        self.router
            .as_ref()
            .is_none_or(|router| router.generation() == coverage.generation)
    }

    /// `GET key` and `PTTL key` on the master owning `key`'s slot (in
    /// database `db`, which a cluster has only as 0).
    pub(super) fn get_cluster(
        &self,
        router: &Router,
        db: i64,
        key: &[u8],
    ) -> Result<Read, BackendError> {
        if db != self.default_db {
            // What a node answers `SELECT` of another database.
            return Err(BackendError::Reply(
                "ERR SELECT is not allowed in cluster mode".to_owned(),
            ));
        }
        let mut map = router.map(self)?;
        let mut addr = match map.master(slot_of(key)) {
            Some(addr) => Addr::clone(addr),
            None => {
                router.mark_stale();
                return Err(BackendError::Unavailable(
                    "no master serves the key's slot".to_owned(),
                ));
            }
        };
        let mut asking = false;
        for attempt in 0..=REDIRECTS {
            let (bytes, replies) = self.read_on(router, &addr, asking, key)?;
            let replies = replies.map(|range| &bytes[range]);
            match replies.iter().find_map(|reply| redirection(reply)) {
                None => {
                    let values = replies.iter().map(|reply| parse(&addr, reply));
                    let mut read = read::parse(values.collect::<Result<_, _>>()?)?;
                    read.storable = attempt == 0 && self.linked.covers(&addr);
                    return Ok(read);
                }
                Some(Redirect::Moved(_, to)) => {
                    // The node that answered -MOVED knows the new owner first.
                    map = router.refresh(self, Some(&map), Some(&addr))?;
                    (addr, asking) = (to, false);
                }
                Some(Redirect::Ask(to)) => (addr, asking) = (to, true),
            }
        }
        Err(BackendError::Unavailable(format!(
            "redirected more than {REDIRECTS} times reading the key"
        )))
    }

    /// The two replies of `addr` to the read (each after `ASKING` if
    /// `asking`): the bytes received and where in them each reply is. A
    /// pooled connection the node closed while it sat idle is replaced
    /// once: the read is safe to send again.
    fn read_on(
        &self,
        router: &Router,
        addr: &Addr,
        asking: bool,
        key: &[u8],
    ) -> Result<(Vec<u8>, [Range<usize>; 2]), BackendError> {
        let mut wire = Vec::new();
        for command in [&b"GET"[..], b"PTTL"] {
            if asking {
                encode(&[b"ASKING"], &mut wire);
            }
            encode(&[command, key], &mut wire);
        }
        let mut retry = true;
        loop {
            let (mut conn, reused) =
                router.checkout(self, addr, (false, 0, super::raw::Wait::Own))?;
            let mut replies = Vec::new();
            let mut ends = [0; 4];
            let count = if asking { 4 } else { 2 };
            let mut received = conn.send(&wire);
            for end in &mut ends[..count] {
                if received.is_err() {
                    break;
                }
                // A value is as long as Redis lets it be (as the crate's
                // read allowed): only forwarded batches are held to
                // RESP_MAX_REPLY_BYTES.
                received = conn.receive_within(&mut replies, usize::MAX);
                *end = replies.len();
            }
            match received {
                Ok(()) => {
                    router.checkin(addr, conn, self.pool.max_size() as usize);
                    // Each reply's bytes; with ASKING, every other one.
                    let reply = |i: usize| if i == 0 { 0 } else { ends[i - 1] }..ends[i];
                    let ranges = match asking {
                        true => [reply(1), reply(3)],
                        false => [reply(0), reply(1)],
                    };
                    return Ok((replies, ranges));
                }
                Err(err) if retry && reused && super::forward::closed_while_idle(&err) => {
                    retry = false;
                }
                Err(err) => {
                    router.mark_stale();
                    return Err(super::forward::classify(&err));
                }
            }
        }
    }
}

/// One reply, decoded (an error reply is a `Value::ServerError`).
pub(super) fn parse(addr: &Addr, reply: &[u8]) -> Result<Value, BackendError> {
    redis::parse_redis_value(reply).map_err(|err| {
        BackendError::Unavailable(format!("{addr} answered what is not RESP: {err}"))
    })
}

#[cfg(test)]
mod tests {
    use super::super::slots::tests::node;
    use super::super::slots::SlotMap;
    use super::*;
    use crate::config::Config;

    /// A cluster-mode backend that never reaches Redis (port 1), its
    /// invalidation as `invalidation` says.
    fn cluster_backend(invalidation: &str) -> Backend {
        let config = Config::from_lookup(|name| match name {
            "REDIS_ADDRESS" => Some("127.0.0.1:1".to_owned()),
            "REDIS_MODE" => Some("cluster".to_owned()),
            "INVALIDATION" => Some(invalidation.to_owned()),
            _ => None,
        })
        .expect("valid config");
        Backend::new(&config).expect("backend")
    }

    fn map_of(port: i64) -> SlotMap {
        SlotMap::parse(&Value::Array(vec![Value::Array(vec![
            Value::Int(0),
            Value::Int(16383),
            node("127.0.0.1", port),
        ])]))
        .expect("a map")
    }

    #[test]
    fn coverage_taken_before_a_fetch_is_lost_if_the_map_is_replaced_during_it() {
        // INVALIDATION=off: every master counts as covered.
        let backend = cluster_backend("off");
        let router = backend.router.as_ref().expect("cluster mode");
        router.install(map_of(7000));
        let before = backend.coverage().expect("every master covered");
        assert!(backend.still_covers(before), "nothing changed");
        // A refresh during the fetch (say, from a master that has not heard
        // of a new one): whatever answered is no longer known covered.
        router.install(map_of(7000));
        assert!(!backend.still_covers(before));
        let after = backend.coverage().expect("covered again");
        assert!(backend.still_covers(after));
    }

    #[test]
    fn no_coverage_while_a_master_has_no_link() {
        // Links expected, none up yet.
        let backend = cluster_backend("tracking");
        backend
            .router
            .as_ref()
            .expect("cluster mode")
            .install(map_of(7000));
        assert_eq!(backend.coverage(), None);
    }
}
