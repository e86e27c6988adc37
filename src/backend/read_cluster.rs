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

use redis::Value;

use super::raw::encode;
use super::read::{self, Read};
use super::router::Router;
use super::slots::{slot_of, Addr};
use super::{Backend, BackendError};

/// A first try and this many redirections (an `-ASK` after a `-MOVED`).
const REDIRECTS: usize = 2;

/// Where a reply sends the read.
#[derive(Debug, PartialEq, Eq)]
enum Redirect {
    Moved(Addr),
    Ask(Addr),
}

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
            let replies = self.read_on(router, &addr, asking, key)?;
            match replies.iter().find_map(redirect_of) {
                None => {
                    let mut read = read::parse(replies)?;
                    read.storable = attempt == 0 && self.linked.covers(&addr);
                    return Ok(read);
                }
                Some(Redirect::Moved(to)) => {
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
    /// `asking`). A pooled connection the node closed while it sat idle is
    /// replaced once: the read is safe to send again.
    fn read_on(
        &self,
        router: &Router,
        addr: &Addr,
        asking: bool,
        key: &[u8],
    ) -> Result<Vec<Value>, BackendError> {
        let mut wire = Vec::new();
        for command in [&b"GET"[..], b"PTTL"] {
            if asking {
                encode(&[b"ASKING"], &mut wire);
            }
            encode(&[command, key], &mut wire);
        }
        let mut retry = true;
        loop {
            let (mut conn, reused) = router.checkout(self, addr, false, 0)?;
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
                    let step = count / 2;
                    return (0..count)
                        .skip(step - 1)
                        .step_by(step)
                        .map(|i| {
                            let start = if i == 0 { 0 } else { ends[i - 1] };
                            parse(addr, &replies[start..ends[i]])
                        })
                        .collect();
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
fn parse(addr: &Addr, reply: &[u8]) -> Result<Value, BackendError> {
    redis::parse_redis_value(reply).map_err(|err| {
        BackendError::Unavailable(format!("{addr} answered what is not RESP: {err}"))
    })
}

/// The redirection a reply is, if it is one: `-MOVED slot host:port` or
/// `-ASK slot host:port`.
fn redirect_of(reply: &Value) -> Option<Redirect> {
    let Value::ServerError(err) = reply else {
        return None;
    };
    let to = err
        .details()?
        .split_whitespace()
        .nth(1)
        .and_then(Addr::parse)?;
    match err.code() {
        "MOVED" => Some(Redirect::Moved(to)),
        "ASK" => Some(Redirect::Ask(to)),
        _ => None,
    }
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

    fn reply(bytes: &[u8]) -> Value {
        redis::parse_redis_value(bytes).expect("RESP")
    }

    #[test]
    fn moved_and_ask_name_the_node_and_other_errors_are_none() {
        let to = Addr {
            host: "127.0.0.1".to_owned(),
            port: 7001,
        };
        assert_eq!(
            redirect_of(&reply(b"-MOVED 3999 127.0.0.1:7001\r\n")),
            Some(Redirect::Moved(to.clone()))
        );
        assert_eq!(
            redirect_of(&reply(b"-ASK 3999 127.0.0.1:7001\r\n")),
            Some(Redirect::Ask(to))
        );
        assert_eq!(redirect_of(&reply(b"-WRONGTYPE Operation\r\n")), None);
        assert_eq!(redirect_of(&reply(b"-MOVED nonsense\r\n")), None);
        assert_eq!(redirect_of(&reply(b"$1\r\nv\r\n")), None);
    }
}
