//! Forwarding in cluster mode: each request of a batch goes to the master
//! its keys' slot belongs to (the service says which slot; see
//! [`Dest`]), each node's share written at once (pipelined) and the
//! replies put back in request order, byte for byte.
//!
//! Redirections are followed once, as Redis Cluster clients do: `-MOVED`
//! (the slot has another owner; the request did not run) sends it again to
//! the node named, after refreshing the slot map if the map was wrong (a
//! node the map does not know, such as a replica a failover promoted, is
//! followed once the fresh map names it a master);
//! `-ASK` (the slot is migrating and the key is on the target) sends
//! `ASKING` and the request to the node named. Commands for every master
//! (FLUSHALL, DBSIZE, KEYS) get one reply folded from all of theirs.

use std::ops::Range;
use std::sync::Arc;

use super::fold::fold;
use super::raw::{encode, RawConn, Wait};
use super::redirect::{knows, redirection, Redirect};
use super::router::Router;
use super::slots::{Addr, Slot, SlotMap};
use super::{Backend, BackendError};

/// Where one forwarded request goes in cluster mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dest {
    /// The master owning this slot, which all the request's keys hash to.
    Slot(Slot),
    /// Any master (a keyless command): always the owner of the lowest
    /// slot, so one client's keyless commands keep their order.
    Any,
    /// Every master, their replies folded into one.
    Every(Fold),
    /// Master `master` of the map's masters, for `SCAN` (its cursor
    /// already that master's; see `scan.rs`): the reply's cursor is made
    /// the proxy's.
    Scan { master: usize },
}

/// How the replies of every master make one (as the redis crate's cluster
/// client combines them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fold {
    /// The first error reply, else the first master's reply (FLUSHALL's
    /// `+OK`).
    AllOk,
    /// The sum of the integers (DBSIZE).
    Sum,
    /// One array of every array's elements (KEYS).
    Concat,
}

/// One request's trip to one node.
struct Part {
    request: usize,
    addr: Arc<Addr>,
    /// Send `ASKING` first (after an `-ASK`).
    asking: bool,
    outcome: Outcome,
}

enum Outcome {
    Pending,
    /// Its reply, in the replies buffer.
    Reply(Range<usize>),
    Failed(BackendError),
    /// Never sent: the proxy answers it itself, as a node would.
    Answer(&'static [u8]),
}

/// What a node answers a `SCAN` cursor it cannot have given: for the
/// proxy, one whose low bits name a master past the map's.
const INVALID_CURSOR: &[u8] = b"-ERR invalid cursor\r\n";

impl Backend {
    /// Sends each of `requests` (a whole RESP request and where it goes)
    /// to its master for a client of protocol `resp3` in database `db`,
    /// and appends one reply per request to `out`, in order: the node's,
    /// byte for byte, or what `failed` writes for a request that got none.
    /// `wait`: whose requests they are (see [`Backend::forward`]).
    pub fn forward_cluster(
        &self,
        client: (bool, i64, Wait),
        requests: &[(&[u8], Dest)],
        out: &mut Vec<u8>,
        failed: &mut dyn FnMut(&BackendError, &mut Vec<u8>),
    ) {
        if requests.is_empty() {
            return;
        }
        let map = match self.router.as_ref() {
            Some(router) => router.map(self).map(|map| (router, map)),
            None => Err(BackendError::Unavailable("not a cluster".to_owned())),
        };
        let (router, map) = match map {
            Ok(found) => found,
            Err(err) => {
                for _ in requests {
                    failed(&err, out);
                }
                return;
            }
        };
        let mut parts = plan(&map, requests);
        let mut replies = Vec::new();
        self.run(router, client, requests, &mut parts, &mut replies);
        if self.redirect(router, &map, &mut parts, &replies) {
            self.run(router, client, requests, &mut parts, &mut replies);
        }
        let mut at = 0;
        for (request, (_, dest)) in requests.iter().enumerate() {
            let end = at
                + parts[at..]
                    .iter()
                    .take_while(|part| part.request == request)
                    .count();
            let mine = &parts[at..end];
            at = end;
            match (dest, mine) {
                (Dest::Every(how), _) => {
                    let each: Vec<Result<&[u8], BackendError>> = mine
                        .iter()
                        .map(|part| match &part.outcome {
                            Outcome::Reply(range) => Ok(&replies[range.clone()]),
                            Outcome::Failed(err) => Err(err.clone()),
                            Outcome::Pending | Outcome::Answer(_) => Err(no_reply()),
                        })
                        .collect();
                    fold(*how, &each, out, failed);
                }
                (_, [part]) => match &part.outcome {
                    Outcome::Reply(range) => match dest {
                        Dest::Scan { master } => {
                            let masters = map.masters().len();
                            super::scan::rewrite(&replies[range.clone()], *master, masters, out);
                        }
                        _ => out.extend_from_slice(&replies[range.clone()]),
                    },
                    Outcome::Failed(err) => failed(err, out),
                    Outcome::Answer(reply) => out.extend_from_slice(reply),
                    Outcome::Pending => failed(&no_reply(), out),
                },
                _ => failed(&no_reply(), out),
            }
        }
    }

    /// Sends every pending part, each node's share pipelined on one
    /// connection (all written before any is read), and records replies.
    fn run(
        &self,
        router: &Router,
        client: (bool, i64, Wait),
        requests: &[(&[u8], Dest)],
        parts: &mut [Part],
        replies: &mut Vec<u8>,
    ) {
        let mut nodes: Vec<Arc<Addr>> = Vec::new();
        for part in parts
            .iter()
            .filter(|p| matches!(p.outcome, Outcome::Pending))
        {
            if !nodes.contains(&part.addr) {
                nodes.push(Arc::clone(&part.addr));
            }
        }
        let mut asking = Vec::new();
        encode(&[b"ASKING"], &mut asking);
        let mut sent: Vec<(Arc<Addr>, RawConn, Vec<usize>)> = Vec::with_capacity(nodes.len());
        for addr in nodes {
            let mine: Vec<usize> = (0..parts.len())
                .filter(|&i| matches!(parts[i].outcome, Outcome::Pending) && parts[i].addr == addr)
                .collect();
            let mut wire = Vec::new();
            for &i in &mine {
                if parts[i].asking {
                    wire.extend_from_slice(&asking);
                }
                wire.extend_from_slice(requests[parts[i].request].0);
            }
            match self.send_to(router, &addr, client, &wire) {
                Ok(conn) => sent.push((addr, conn, mine)),
                Err(err) => {
                    for &i in &mine {
                        parts[i].outcome = Outcome::Failed(err.clone());
                    }
                }
            }
        }
        for (addr, mut conn, mine) in sent {
            let mut broken = None;
            for &i in &mine {
                if let Some(err) = &broken {
                    parts[i].outcome = Outcome::Failed(BackendError::clone(err));
                    continue;
                }
                let start = replies.len();
                // The batch's replies together, on every node, are held to
                // RESP_MAX_REPLY_BYTES, as one server's are.
                let room = conn.max_reply.saturating_sub(start);
                let received = if parts[i].asking {
                    conn.receive_within(replies, room)
                        .map(|()| replies.truncate(start))
                        .and_then(|()| conn.receive_within(replies, room))
                } else {
                    conn.receive_within(replies, room)
                };
                match received {
                    Ok(()) => parts[i].outcome = Outcome::Reply(start..replies.len()),
                    Err(err) => {
                        replies.truncate(start);
                        router.mark_stale();
                        let err = super::forward::classify(&err);
                        parts[i].outcome = Outcome::Failed(err.clone());
                        broken = Some(err);
                    }
                }
            }
            router.checkin(&addr, conn, self.pool.max_size() as usize);
        }
    }

    /// A connection to `addr` with `wire` written on it. A pooled one that
    /// the node closed while it sat idle fails at once: `wire` is then
    /// written on a fresh one (the node never read it).
    fn send_to(
        &self,
        router: &Router,
        addr: &Addr,
        client: (bool, i64, Wait),
        wire: &[u8],
    ) -> Result<RawConn, BackendError> {
        let (mut conn, reused) = router.checkout(self, addr, client)?;
        match conn.send(wire) {
            Ok(()) => Ok(conn),
            Err(err) if reused && super::forward::closed_while_idle(&err) => {
                let (mut conn, _) = router.checkout(self, addr, client)?;
                conn.send(wire).map_err(|err| {
                    router.mark_stale();
                    super::forward::classify(&err)
                })?;
                Ok(conn)
            }
            Err(err) => {
                router.mark_stale();
                Err(super::forward::classify(&err))
            }
        }
    }

    /// Turns the parts answered `-MOVED` or `-ASK` back into pending ones
    /// for the node named (once: a part sent with a redirection already
    /// keeps its reply). A redirection that shows the map wrong (a slot it
    /// gives to another node, or a node it does not know: a replica just
    /// promoted, a master just added) has the map read again first, asking
    /// the node that answered `-MOVED` before the others. Whether any part
    /// is pending again.
    fn redirect(
        &self,
        router: &Router,
        map: &Arc<SlotMap>,
        parts: &mut [Part],
        replies: &[u8],
    ) -> bool {
        let mut found: Vec<(usize, Redirect)> = Vec::new();
        let mut wrong_map = false;
        let mut first: Option<Arc<Addr>> = None;
        for (at, part) in parts.iter().enumerate() {
            let Outcome::Reply(range) = &part.outcome else {
                continue;
            };
            let Some(redirect) = redirection(&replies[range.clone()]) else {
                continue;
            };
            // A node never redirects to itself: such an error is a
            // script's own (its writes done), passed on as it is, never
            // sent again.
            let (Redirect::Moved(_, to) | Redirect::Ask(to)) = &redirect;
            if *to == *part.addr {
                continue;
            }
            match &redirect {
                Redirect::Moved(slot, addr) => {
                    if slot.is_none_or(|slot| map.master(slot).map(|a| &**a) != Some(addr)) {
                        first.get_or_insert_with(|| Arc::clone(&part.addr));
                        wrong_map = true;
                    }
                }
                Redirect::Ask(addr) => wrong_map |= !knows(map, addr),
            }
            found.push((at, redirect));
        }
        let fresh = if wrong_map {
            router
                .refresh(self, Some(map), first.as_deref())
                .inspect_err(|err| {
                    log::debug!("cluster slot map refresh after -MOVED failed: {err}")
                })
                .ok()
        } else {
            None
        };
        let mut again = false;
        for (at, redirect) in found {
            // Only to a node a slot map names a master: an error reply is
            // text a script can write (`redis.error_reply('MOVED 1
            // host:port')`), and following it would log in to that host.
            // A node no map knows: the reply is passed on.
            let (Redirect::Moved(_, addr) | Redirect::Ask(addr)) = &redirect;
            if !knows(map, addr) && !fresh.as_ref().is_some_and(|fresh| knows(fresh, addr)) {
                continue;
            }
            let part = &mut parts[at];
            (part.addr, part.asking) = match redirect {
                Redirect::Moved(_, addr) => (Arc::new(addr), false),
                Redirect::Ask(addr) => (Arc::new(addr), true),
            };
            part.outcome = Outcome::Pending;
            again = true;
        }
        again
    }
}

/// One part per request, or one per master for [`Dest::Every`], in
/// request order.
fn plan(map: &SlotMap, requests: &[(&[u8], Dest)]) -> Vec<Part> {
    let mut parts = Vec::with_capacity(requests.len());
    let part = |request, addr: &Arc<Addr>| Part {
        request,
        addr: Arc::clone(addr),
        asking: false,
        outcome: Outcome::Pending,
    };
    for (request, (_, dest)) in requests.iter().enumerate() {
        match dest {
            Dest::Slot(slot) => match map.master(*slot) {
                Some(addr) => parts.push(part(request, addr)),
                None => parts.push(Part {
                    outcome: Outcome::Failed(BackendError::Unavailable(
                        "no master serves the slot of the request's keys".to_owned(),
                    )),
                    ..part(request, map.any())
                }),
            },
            Dest::Any => parts.push(part(request, map.any())),
            Dest::Scan { master } => match map.masters().get(*master) {
                Some(addr) => parts.push(part(request, addr)),
                None => parts.push(Part {
                    outcome: Outcome::Answer(INVALID_CURSOR),
                    ..part(request, map.any())
                }),
            },
            Dest::Every(_) => parts.extend(map.masters().iter().map(|addr| part(request, addr))),
        }
    }
    parts
}

fn no_reply() -> BackendError {
    BackendError::Unavailable("the cluster node gave no reply".to_owned())
}
