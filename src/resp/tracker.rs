//! The event loop's side of client tracking: it hears of changes from the
//! service (through a channel and the loop's waker), remembers what each
//! tracking connection read, and writes each one its messages.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;

use mio::{Token, Waker};

use crate::service::{Change, ChangeListener};

use super::conn::Conn;
use super::reply::Protocol;
use super::tracking::{
    invalidate_push, redir_broken_push, redirect_message, Deliveries, TrackingTable,
};

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
    /// `CLIENT ID` to token, for `REDIRECT`.
    ids: HashMap<u64, Token>,
    changes: Receiver<Change>,
    listener: Arc<Listener>,
    /// Connections with tracking on.
    tracking: HashSet<Token>,
}

impl Tracker {
    /// A tracker remembering at most `max_keys` keys, and the listener to
    /// give the service.
    pub fn new(max_keys: usize, waker: Arc<Waker>) -> (Tracker, Arc<Listener>) {
        let (sender, changes) = mpsc::channel();
        let listener = Arc::new(Listener {
            active: AtomicBool::new(false),
            changes: sender,
            waker,
        });
        let tracker = Tracker {
            table: TrackingTable::new(max_keys),
            ids: HashMap::new(),
            changes,
            listener: Arc::clone(&listener),
            tracking: HashSet::new(),
        };
        (tracker, listener)
    }

    /// Connections with tracking on, and keys the table remembers: for
    /// `redis_proxy_tracking_*` and `INFO`.
    pub fn sizes(&self) -> (usize, usize) {
        (self.tracking.len(), self.table.len())
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
    pub fn closed(
        &mut self,
        conn: &Conn,
        token: Token,
        conns: &mut HashMap<Token, Conn>,
    ) -> Vec<Token> {
        self.ids.remove(&conn.session.id);
        self.table.forget(token);
        self.set_tracking(token, false);
        let mut touched = Vec::new();
        if conn.session.subscribed {
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

    /// After a connection's commands ran: registers its tracking changes
    /// and the keys it read. Returns connections with new messages.
    pub fn after_execute(&mut self, token: Token, conns: &mut HashMap<Token, Conn>) -> Vec<Token> {
        let Some(conn) = conns.get_mut(&token) else {
            return Vec::new();
        };
        let session = &mut conn.session;
        if std::mem::take(&mut session.tracking_changed) {
            let bcast = session
                .tracking
                .as_ref()
                .filter(|mode| mode.bcast)
                .map(|mode| mode.prefixes.clone());
            self.table.set_bcast(token, bcast);
            let on = session.tracking.is_some();
            self.set_tracking(token, on);
        }
        if session.tracked.is_empty() {
            return Vec::new();
        }
        let mut out = Deliveries::new();
        for key in std::mem::take(&mut session.tracked) {
            self.table.track(token, key, &mut out);
        }
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

    /// Applies the changes the service sent. Returns connections with new
    /// messages.
    pub fn drain(&mut self, conns: &mut HashMap<Token, Conn>) -> Vec<Token> {
        let mut touched = Vec::new();
        while let Ok(change) = self.changes.try_recv() {
            let out = match change {
                Change::Keys(keys) => self.table.changed(&keys),
                Change::All => {
                    self.table.clear();
                    conns
                        .iter()
                        .filter(|(_, conn)| conn.session.tracking.is_some())
                        .map(|(token, _)| (*token, None))
                        .collect()
                }
            };
            touched.extend(self.deliver(out, conns));
        }
        touched
    }

    /// Writes each connection its message: a push on its own connection
    /// (RESP3), or a message to the connection it redirects to.
    fn deliver(&mut self, out: Deliveries, conns: &mut HashMap<Token, Conn>) -> Vec<Token> {
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
                        Some((target, peer)) => {
                            let protocol = peer.protocol();
                            peer.push(|buf| redirect_message(buf, protocol, keys.as_deref()));
                            touched.push(target);
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
