//! Many reads at once in cluster mode, for `MGET`'s misses: the keys split
//! by the master the router's slot map names for each, every master's
//! share (`GET key`, `PTTL key` for each of its keys) written on one of its
//! raw connections in one go, every master's before any is read, then each
//! master's replies read in turn. An MGET of a hundred missed keys on
//! three masters costs about one round trip, not a hundred: behind a Redis
//! 20 ms away, 20 ms rather than 2 s of a worker's time.
//!
//! Why `GET` and `PTTL` a key, pipelined, and not `MGET` and `EXISTS` as in
//! standalone mode (`read_many.rs`): a node refuses a multi-key command
//! whose keys are in different slots (`-CROSSSLOT`), even slots it owns
//! both of, and the keys of one MGET are nearly all in slots of their own
//! (16384 of them), so `MGET` per slot would be one per key anyway, and a
//! second round trip for the `PTTL`s. A slot being migrated also answers a
//! multi-key command `-TRYAGAIN` when some of its keys have left, where a
//! key's own `GET` gets the `-ASK` that says where it went. So each key is
//! read exactly as [`Backend::get`] reads it (`read_cluster.rs`), on the
//! same connections, and gets what that read would give it: its value and
//! TTL, or its own error reply (`WRONGTYPE`, `-BUSY`, `-NOPERM`), the same
//! commands an ACL for the proxy (`+get +pttl`) already allows.
//!
//! The rules of the cluster read hold per key:
//! - A key answered with a redirection (`-MOVED`: the map was old; `-ASK`:
//!   its slot is migrating) is read again by the per-key path, which
//!   follows redirections, and is served and not kept (as a redirected
//!   read there is not).
//! - A read is storable only if the master that answered it is one the
//!   invalidation links cover (coherence invariant 1, docs/coherence.md).
//! - A master that cannot be read (refused, timed out, closed) fails its
//!   own keys' reads, as a read of each would have failed, and marks the
//!   map stale; the other masters' keys are answered.
//! - The replies, every master's together, are held to
//!   RESP_MAX_REPLY_BYTES as a forwarded batch's: past it the read fails
//!   ([`is_too_large`](super::is_too_large)), and the connections with
//!   replies left unread are closed, not pooled.

use std::io;
use std::sync::Arc;

use super::forward::{classify, closed_while_idle};
use super::raw::frame::TOO_LARGE;
use super::raw::{encode, RawConn, Wait};
use super::read::{self, Read};
use super::read_cluster::parse;
use super::read_many::is_too_large;
use super::redirect::redirection;
use super::router::Router;
use super::slots::{slot_of, Addr, SlotMap};
use super::{Backend, BackendError};

/// One key's read, while the batch is under way: `None` until answered.
type Reads = Vec<Option<Result<Read, BackendError>>>;

/// A connection the share was written on, whether it came from the pool,
/// and whether the write went through.
type Sent = Result<(RawConn, bool, io::Result<()>), BackendError>;

/// One master's share of the keys.
struct Share {
    addr: Arc<Addr>,
    /// Where each of its keys is in the MGET.
    at: Vec<usize>,
    /// `GET key`, `PTTL key` for each, encoded.
    wire: Vec<u8>,
}

/// `keys` by the master `map` names for each (in the order each master is
/// first named), and where the keys no master serves are.
fn split(map: &SlotMap, keys: &[&[u8]]) -> (Vec<Share>, Vec<usize>) {
    let mut shares: Vec<Share> = Vec::new();
    let mut unserved = Vec::new();
    for (at, key) in keys.iter().enumerate() {
        let Some(addr) = map.master(slot_of(key)) else {
            unserved.push(at);
            continue;
        };
        let share = match shares.iter().position(|s| Arc::ptr_eq(&s.addr, addr)) {
            Some(i) => &mut shares[i],
            None => {
                shares.push(Share {
                    addr: Arc::clone(addr),
                    at: Vec::new(),
                    wire: Vec::new(),
                });
                let last = shares.len() - 1;
                &mut shares[last]
            }
        };
        share.at.push(at);
        encode(&[b"GET", key], &mut share.wire);
        encode(&[b"PTTL", key], &mut share.wire);
    }
    (shares, unserved)
}

impl Backend {
    /// [`Backend::get_many`] in cluster mode: what [`Backend::get`] of
    /// each of `keys` would find, each master's keys read in one round
    /// trip, all masters' at once.
    pub(super) fn get_many_cluster(
        &self,
        router: &Router,
        db: i64,
        keys: &[&[u8]],
    ) -> Result<Vec<Result<Read, BackendError>>, BackendError> {
        if db != self.default_db || keys.is_empty() {
            // Refused without a word to Redis (a cluster has database 0).
            return Ok(keys
                .iter()
                .map(|key| self.get_cluster(router, db, key))
                .collect());
        }
        // `again`: the keys for the per-key path, no master known for
        // them, and (below) those answered with a redirection.
        let (shares, mut again) = split(&*router.map(self)?, keys);
        // Every master's share out before any reply is read.
        let sent: Vec<Sent> = shares
            .iter()
            .map(|share| self.send_share(router, share))
            .collect();
        let mut reads: Reads = keys.iter().map(|_| None).collect();
        let mut held = 0usize;
        for (share, sent) in shares.iter().zip(sent) {
            let (bytes, ends) = match self.replies_of(router, share, sent, held) {
                Ok(replies) => replies,
                Err(err) if is_too_large(&err) => return Err(err),
                Err(err) => {
                    for &at in &share.at {
                        reads[at] = Some(Err(err.clone()));
                    }
                    continue;
                }
            };
            held = held.saturating_add(bytes.len());
            let covered = self.linked.covers(&share.addr);
            for (i, &at) in share.at.iter().enumerate() {
                let reply = |n: usize| &bytes[if n == 0 { 0 } else { ends[n - 1] }..ends[n]];
                let (get, pttl) = (reply(2 * i), reply(2 * i + 1));
                if redirection(get).is_some() || redirection(pttl).is_some() {
                    again.push(at);
                    continue;
                }
                let read = parse(&share.addr, get)
                    .and_then(|get| Ok(vec![get, parse(&share.addr, pttl)?]))
                    .and_then(read::parse)
                    .map(|read| Read {
                        storable: covered,
                        ..read
                    });
                reads[at] = Some(read);
            }
        }
        for at in again {
            // The per-key path follows the redirection; what it reads is
            // served, not kept (the batch's answer was a redirection).
            let read = self.get_cluster(router, db, keys[at]).map(|read| Read {
                storable: false,
                ..read
            });
            if let Ok(Read {
                value: Some(value), ..
            }) = &read
            {
                held = held.saturating_add(value.len());
                if held > self.max_reply {
                    return Err(BackendError::Unavailable(TOO_LARGE.0.to_owned()));
                }
            }
            reads[at] = Some(read);
        }
        Ok(reads
            .into_iter()
            .map(|read| read.unwrap_or_else(|| Err(BackendError::Unavailable("no reply".into()))))
            .collect())
    }

    /// A connection to `share`'s master, its requests written on it.
    fn send_share(&self, router: &Router, share: &Share) -> Sent {
        router
            .checkout(self, &share.addr, (false, 0, Wait::Own))
            .map(|(mut conn, reused)| {
                let sent = conn.send(&share.wire);
                (conn, reused, sent)
            })
    }

    /// The replies to `share`'s requests, `sent` on a connection: the
    /// bytes, and where each reply ends in them. At most what `held` (the
    /// replies of the masters read before) leaves of RESP_MAX_REPLY_BYTES.
    /// A pooled connection the node closed while it sat idle is replaced
    /// once (the reads are safe to send again); any other failure marks
    /// the map stale, as a read of one key does.
    fn replies_of(
        &self,
        router: &Router,
        share: &Share,
        mut sent: Sent,
        held: usize,
    ) -> Result<(Vec<u8>, Vec<usize>), BackendError> {
        let count = 2 * share.at.len();
        let room = self.max_reply.saturating_sub(held);
        let mut retry = true;
        loop {
            let (mut conn, reused, written) = sent?;
            let mut bytes = Vec::new();
            let mut ends = Vec::with_capacity(count);
            let received = written.and_then(|()| {
                while ends.len() < count {
                    let left = room.saturating_sub(bytes.len());
                    conn.receive_within(&mut bytes, left)?;
                    ends.push(bytes.len());
                }
                Ok(())
            });
            match received {
                Ok(()) => {
                    router.checkin(&share.addr, conn, self.pool.max_size() as usize);
                    return Ok((bytes, ends));
                }
                Err(err) if retry && reused && closed_while_idle(&err) => {
                    retry = false;
                    sent = self.send_share(router, share);
                }
                Err(err) => {
                    let err = classify(&err);
                    if !is_too_large(&err) {
                        router.mark_stale();
                    }
                    return Err(err);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use redis::Value;

    use super::super::slots::tests::node;
    use super::*;

    fn range(start: i64, end: i64, port: i64) -> Value {
        Value::Array(vec![
            Value::Int(start),
            Value::Int(end),
            node("127.0.0.1", port),
        ])
    }

    #[test]
    fn keys_are_split_by_master_each_share_a_get_and_a_pttl_a_key() {
        // Redis: CLUSTER KEYSLOT foo = 12182, bar = 5061; {bar}x as bar.
        let map = SlotMap::parse(&Value::Array(vec![
            range(0, 8191, 7000),
            range(8192, 16383, 7001),
        ]))
        .expect("a map");
        let keys: [&[u8]; 3] = [b"foo", b"bar", b"{bar}x"];
        let (shares, unserved) = split(&map, &keys);
        assert!(unserved.is_empty());
        let ports: Vec<u16> = shares.iter().map(|s| s.addr.port).collect();
        assert_eq!(ports, [7001, 7000]);
        assert_eq!(shares[0].at, [0]);
        assert_eq!(shares[1].at, [1, 2]);
        let mut wire = Vec::new();
        for key in [&b"bar"[..], b"{bar}x"] {
            encode(&[b"GET", key], &mut wire);
            encode(&[b"PTTL", key], &mut wire);
        }
        assert_eq!(shares[1].wire, wire);
    }

    #[test]
    fn a_key_of_a_slot_no_master_serves_is_left_to_the_per_key_read() {
        let map = SlotMap::parse(&Value::Array(vec![range(0, 8191, 7000)])).expect("a map");
        let keys: [&[u8]; 2] = [b"foo", b"bar"];
        let (shares, unserved) = split(&map, &keys);
        assert_eq!(unserved, [0]);
        assert_eq!(shares.len(), 1);
        assert_eq!(shares[0].at, [1]);
    }
}
