//! What one connection's commands may know of the others: the register of
//! the proxy's clients behind `CLIENT LIST`, `CLIENT INFO` and `CLIENT
//! KILL`.
//!
//! The event loop owns every connection and lends out one at a time, so a
//! command cannot look at the others' sessions. It keeps this register
//! beside them instead: a record per connection, written when the
//! connection opens and closes, when a command that changes what the list
//! shows runs (`HELLO`, `SELECT`, `CLIENT`, `SUBSCRIBE`; see
//! [`Registry::sync`]), and at each sweep for the idle time. `CLIENT KILL`
//! marks connections; the loop closes them once the killing command's turn
//! is over ([`Registry::take_killed`]). Single-threaded (the loop's), so a
//! `RefCell`; its cost is a map lookup per such command, none per `GET`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use mio::Token;

use super::super::reply::Protocol;
use super::super::session::Session;

/// The proxy's clients, as `CLIENT LIST` shows them.
#[derive(Default)]
pub struct Registry {
    clients: RefCell<HashMap<u64, Record>>,
    /// Connections `CLIENT KILL` chose, for the loop to close.
    killed: RefCell<Vec<Token>>,
}

/// One client, as far as others may see it.
#[derive(Clone, Debug)]
pub struct Record {
    /// The connection's `CLIENT ID`.
    pub id: u64,
    /// The event loop's handle for it.
    pub token: Token,
    /// The client's address (`addr=`), if the socket still knew it.
    pub addr: Option<SocketAddr>,
    /// The proxy's address it connected to (`laddr=`).
    pub laddr: Option<SocketAddr>,
    /// The socket's file descriptor (`fd=`).
    pub fd: i64,
    /// When it connected (`age=`).
    pub opened: Instant,
    /// When it last sent anything, as of the last sweep (`idle=`).
    pub active: Instant,
    /// `CLIENT SETNAME`.
    pub name: Option<Vec<u8>>,
    /// `SELECT`.
    pub db: i64,
    /// 2 or 3 (`HELLO`).
    pub resp: u8,
    /// Subscribed to the invalidation channel (`flags=P`, `sub=1`).
    pub subscribed: bool,
    /// `CLIENT TRACKING ON` (`flags=t`), and where its messages go.
    pub redirect: Option<i64>,
    /// The last command the proxy answered for it itself.
    pub cmd: &'static str,
    /// `CLIENT SETINFO LIB-NAME`.
    pub lib_name: Vec<u8>,
    /// `CLIENT SETINFO LIB-VER`.
    pub lib_ver: Vec<u8>,
}

impl Registry {
    /// Connection `id` opened.
    pub fn opened(
        &self,
        id: u64,
        token: Token,
        addr: Option<SocketAddr>,
        laddr: Option<SocketAddr>,
        fd: i64,
        db: i64,
    ) {
        let now = Instant::now();
        let record = Record {
            id,
            token,
            addr,
            laddr,
            fd,
            opened: now,
            active: now,
            name: None,
            db,
            resp: 2,
            subscribed: false,
            redirect: None,
            cmd: "NULL",
            lib_name: Vec::new(),
            lib_ver: Vec::new(),
        };
        self.clients.borrow_mut().insert(id, record);
    }

    /// Connection `id` closed.
    pub fn closed(&self, id: u64) {
        self.clients.borrow_mut().remove(&id);
    }

    /// Connection `id` sent `cmd` to its subscription connection at Redis
    /// (`SUBSCRIBE` and the like, and what follows): listed as subscribed,
    /// as Redis lists its own subscribers (`flags=P`).
    pub fn subscribed(&self, id: u64, cmd: &'static str) {
        if let Some(record) = self.clients.borrow_mut().get_mut(&id) {
            record.subscribed = true;
            record.cmd = cmd;
            record.active = Instant::now();
        }
    }

    /// Connection `id` left its subscription at Redis (subscribed to
    /// nothing there, it is released).
    pub fn unsubscribed(&self, id: u64) {
        if let Some(record) = self.clients.borrow_mut().get_mut(&id) {
            record.subscribed = false;
        }
    }

    /// Connection `id` last sent something at `active` (from the sweep).
    pub fn touch(&self, id: u64, active: Instant) {
        if let Some(record) = self.clients.borrow_mut().get_mut(&id) {
            record.active = active;
        }
    }

    /// Copies what the list shows from `session` after command `cmd` ran.
    pub fn sync(&self, session: &Session, protocol: Protocol, cmd: &'static str) {
        let mut clients = self.clients.borrow_mut();
        let Some(record) = clients.get_mut(&session.id) else {
            return;
        };
        if record.name != session.name {
            record.name.clone_from(&session.name);
        }
        record.db = session.db;
        record.resp = match protocol {
            Protocol::Resp2 => 2,
            Protocol::Resp3 => 3,
        };
        // Subscribed here, or at Redis (a RESP3 client's commands run
        // here meanwhile).
        record.subscribed = session.subscribed || session.at_redis.any();
        record.redirect = session.tracking.as_ref().map(|mode| {
            mode.redirect
                .map_or(0, |id| i64::try_from(id).unwrap_or(i64::MAX))
        });
        record.cmd = cmd;
        record.active = Instant::now();
    }

    /// `CLIENT SETINFO LIB-NAME|LIB-VER value` for connection `id`.
    pub fn set_lib(&self, id: u64, version: bool, value: &[u8]) {
        if let Some(record) = self.clients.borrow_mut().get_mut(&id) {
            let field = if version {
                &mut record.lib_ver
            } else {
                &mut record.lib_name
            };
            field.clear();
            field.extend_from_slice(value);
        }
    }

    /// The address the client `id` connected to, for `INFO`'s `tcp_port`.
    pub fn local_addr(&self, id: u64) -> Option<SocketAddr> {
        self.clients
            .borrow()
            .get(&id)
            .and_then(|record| record.laddr)
    }

    /// Every client, in `CLIENT ID` order.
    pub fn records(&self) -> Vec<Record> {
        let mut all: Vec<Record> = self.clients.borrow().values().cloned().collect();
        all.sort_by_key(|record| record.id);
        all
    }

    /// Marks connection `token` to be closed once the current command's
    /// turn on the loop is over.
    pub fn kill(&self, token: Token) {
        self.killed.borrow_mut().push(token);
    }

    /// The connections `CLIENT KILL` marked since the last call.
    pub fn take_killed(&self) -> Vec<Token> {
        std::mem::take(&mut *self.killed.borrow_mut())
    }
}
