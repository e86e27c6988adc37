//! The event loop's side of client tracking: it hears of changes from the
//! service (through a channel and the loop's waker), remembers what each
//! tracking connection read, and writes each one its messages.
//!
//! Changes are applied in slices of [`SLICE`] keys per turn of the loop:
//! a burst of writes in Redis queues here and is worked off between the
//! other clients' commands, which keep being answered meanwhile.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;

use mio::{Token, Waker};

use crate::resp::conn::Conn;
use crate::resp::reply::Protocol;
use crate::resp::upstream::ClientMap;
use crate::service::{Change, ChangeListener, Service};

use super::messages::{invalidate_push, redir_broken_push, redirect_message};
use super::table::TrackingTable;
use super::{Deliveries, PrefixRoom};

/// Changed keys applied per turn of the loop. Each costs O(key length)
/// plus the messages it makes, a microsecond or so: a slice is well under
/// a millisecond, so other clients wait at most that for their turn.
const SLICE: usize = 512;

/// How much the tracking table may remember.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// TRACKING_TABLE_MAX_KEYS.
    pub max_keys: usize,
    /// TRACKING_TABLE_MAX_BYTES.
    pub max_bytes: usize,
}

/// What the service calls: queues the change for the loop and wakes it,
/// only while some connection tracks.
pub struct Listener {
    active: AtomicBool,
    changes: Sender<Change>,
    waker: Arc<Waker>,
}

impl ChangeListener for Listener {
    fn wants(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    fn changed(&self, change: Change) {
        if self.changes.send(change).is_ok() {
            let _ = self.waker.wake();
        }
    }
}

/// The loop's tracking state.
pub struct Tracker {
    table: TrackingTable,
    /// Changed keys received and not yet applied (the rest of a batch
    /// bigger than a slice).
    pending: VecDeque<Vec<u8>>,
    /// For the counters.
    service: Arc<Service>,
    /// `CLIENT ID` to token, for `REDIRECT`.
    ids: HashMap<u64, Token>,
    changes: Receiver<Change>,
    listener: Arc<Listener>,
    /// Connections with tracking on.
    tracking: HashSet<Token>,
    /// TRACKING_TABLE_MAX_BYTES, which also bounds all BCAST prefixes.
    max_bytes: usize,
}

impl Tracker {
    /// A tracker remembering what `limits` allow, and the listener to give
    /// the service.
    pub fn new(
        limits: Limits,
        waker: Arc<Waker>,
        service: Arc<Service>,
    ) -> (Tracker, Arc<Listener>) {
        let (sender, changes) = mpsc::channel();
        let listener = Arc::new(Listener {
            active: AtomicBool::new(false),
            changes: sender,
            waker,
        });
        let tracker = Tracker {
            table: TrackingTable::new(limits.max_keys, limits.max_bytes),
            pending: VecDeque::new(),
            service,
            ids: HashMap::new(),
            changes,
            listener: Arc::clone(&listener),
            tracking: HashSet::new(),
            max_bytes: limits.max_bytes,
        };
        (tracker, listener)
    }

    /// Connections with tracking on: for `redis_proxy_tracking_clients`
    /// and `INFO`'s `tracking_clients`.
    pub fn tracking_clients(&self) -> usize {
        self.tracking.len()
    }

    /// Room for `token`'s BCAST prefixes: what the others' take, and the
    /// bound on them all (TRACKING_TABLE_MAX_BYTES).
    pub fn prefix_room(&self, token: Token) -> PrefixRoom {
        PrefixRoom {
            elsewhere: self.table.prefix_bytes_elsewhere(token),
            max_bytes: self.max_bytes,
        }
    }

    /// Whether a connection with `id` is open.
    pub fn exists(&self, id: u64) -> bool {
        self.ids.contains_key(&id)
    }

    /// A connection opened.
    pub fn opened(&mut self, id: u64, token: Token) {
        self.ids.insert(id, token);
    }

    /// A connection closed: it is forgotten, and connections that sent
    /// their messages to it are told (RESP3), as Redis does.
    pub fn closed(&mut self, conn: &Conn, token: Token, conns: &mut ClientMap) -> Vec<Token> {
        self.ids.remove(&conn.session.id);
        self.table.forget(token);
        self.set_tracking(token, false);
        self.count();
        let mut touched = Vec::new();
        if conn.in_pubsub() {
            for (other, peer) in conns.iter_mut() {
                let redirected = peer
                    .session
                    .tracking
                    .as_ref()
                    .is_some_and(|mode| mode.redirect == Some(conn.session.id));
                if redirected && peer.protocol() == Protocol::Resp3 {
                    peer.push(|buf| redir_broken_push(buf, conn.session.id));
                    touched.push(*other);
                }
            }
        }
        touched
    }

    /// After a connection's commands ran and before their replies are
    /// written: a connection that just turned tracking on is listened for
    /// at once, so that Redis's announcement of a write made the moment
    /// the client reads its `+OK` is not dropped (the service builds
    /// changes only while some connection tracks, on another thread; the
    /// rest of the change is registered by [`Tracker::after_execute`],
    /// before any change is applied).
    pub fn before_replies(&self, conn: &Conn) {
        if conn.session.tracking_changed && conn.session.tracking.is_some() {
            self.listener.active.store(true, Ordering::SeqCst);
        }
    }

    /// After a connection's commands ran: registers its tracking changes
    /// and the keys it read. Returns connections with new messages.
    pub fn after_execute(&mut self, token: Token, conns: &mut ClientMap) -> Vec<Token> {
        let Some(conn) = conns.get_mut(&token) else {
            return Vec::new();
        };
        let session = &mut conn.session;
        if std::mem::take(&mut session.tracking_changed) {
            let added = std::mem::take(&mut session.tracking_prefixes_added);
            match &session.tracking {
                Some(mode) if mode.bcast => {
                    // Prefixes add up; when the table's and the session's
                    // differ by more than those just added (tracking went
                    // off and on again in one batch of commands), start
                    // over from the session's.
                    let held = self.table.prefix_count(token);
                    if held + added.len() == mode.prefixes.len() {
                        self.table.add_prefixes(token, added);
                    } else {
                        self.table.drop_prefixes(token);
                        self.table
                            .add_prefixes(token, mode.prefixes.iter().cloned().collect());
                    }
                }
                Some(_) => self.table.drop_prefixes(token),
                None => {
                    self.table.forget(token);
                    session.tracked.clear();
                }
            }
            let on = session.tracking.is_some();
            self.set_tracking(token, on);
            self.count();
        }
        if session.tracked.is_empty() {
            return Vec::new();
        }
        let mut out = Deliveries::new();
        for key in std::mem::take(&mut session.tracked) {
            self.table.track(token, key, &mut out);
        }
        self.count();
        self.deliver(out, conns)
    }

    /// Notes whether `token` tracks; the service builds changes for us
    /// only while some connection does.
    fn set_tracking(&mut self, token: Token, on: bool) {
        if on {
            self.tracking.insert(token);
        } else {
            self.tracking.remove(&token);
        }
        self.listener
            .active
            .store(!self.tracking.is_empty(), Ordering::Relaxed);
    }

    /// Applies the changes the service sent, [`SLICE`] keys at most; when
    /// more wait, wakes the loop to come back for them after serving the
    /// other connections. Returns connections with new messages.
    pub fn drain(&mut self, conns: &mut ClientMap) -> Vec<Token> {
        let mut touched = Vec::new();
        let mut out = Deliveries::new();
        let mut applied = 0;
        let mut flushed = false;
        loop {
            if applied == SLICE {
                let _ = self.listener.waker.wake();
                break;
            }
            if let Some(key) = self.pending.pop_front() {
                self.table.changed(&key, &mut out);
                applied += 1;
                continue;
            }
            match self.changes.try_recv() {
                Ok(Change::Keys(keys)) => self.pending.extend(keys),
                Ok(Change::All) => {
                    // In order: what changed before the flush is told first.
                    touched.extend(self.deliver(std::mem::take(&mut out), conns));
                    self.table.clear();
                    flushed = true;
                    let everyone = conns
                        .iter()
                        .filter(|(_, conn)| conn.session.tracking.is_some())
                        .map(|(token, _)| (*token, None))
                        .collect();
                    touched.extend(self.deliver(everyone, conns));
                }
                Err(_) => break,
            }
        }
        touched.extend(self.deliver(out, conns));
        // Keys of clients that left go in slices too.
        let tidying = self.table.is_tidying();
        if tidying && self.table.tidy(SLICE) {
            let _ = self.listener.waker.wake();
        }
        if applied > 0 {
            self.service.client_tracking_changed(applied as u64);
        }
        if applied > 0 || tidying || flushed {
            self.count();
        }
        touched
    }

    /// Publishes the table's size.
    fn count(&self) {
        self.service.set_client_tracking(
            self.table.len() as u64,
            self.table.bytes() as u64,
            self.table.prefixes() as u64,
        );
    }

    /// Writes each connection its message: a push on its own connection
    /// (RESP3), or a message to the connection it redirects to.
    fn deliver(&mut self, out: Deliveries, conns: &mut ClientMap) -> Vec<Token> {
        let mut touched = Vec::new();
        for (token, keys) in out {
            let Some(conn) = conns.get_mut(&token) else {
                continue;
            };
            let Some(mode) = &conn.session.tracking else {
                continue;
            };
            match mode.redirect {
                None if conn.protocol() == Protocol::Resp3 => {
                    conn.push(|buf| invalidate_push(buf, keys.as_deref()));
                    touched.push(token);
                }
                None => {}
                Some(id) => {
                    let target = self.ids.get(&id).copied();
                    match target.and_then(|t| conns.get_mut(&t).map(|c| (t, c))) {
                        // As Redis 7.0: a push on a RESP3 target, a
                        // message on a RESP2 one in Pub/Sub mode (any
                        // subscription), else nothing.
                        Some((target, peer)) if peer.protocol() == Protocol::Resp3 => {
                            peer.push(|buf| invalidate_push(buf, keys.as_deref()));
                            touched.push(target);
                        }
                        Some((target, peer)) => {
                            if peer.in_pubsub() {
                                peer.push(|buf| redirect_message(buf, keys.as_deref()));
                                touched.push(target);
                            }
                        }
                        None => {
                            if let Some(conn) = conns.get_mut(&token) {
                                if conn.protocol() == Protocol::Resp3 {
                                    conn.push(|buf| redir_broken_push(buf, id));
                                    touched.push(token);
                                }
                            }
                        }
                    }
                }
            }
        }
        touched
    }
}
