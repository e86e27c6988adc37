//! Redis connections a client holds for a while (a transaction, WATCH, a
//! blocking command, a subscription), and what a batch is sent on.
//!
//! In cluster mode such a connection goes to the master owning the slot of
//! the first key the client sends on it (a [`Pin`]), as a cluster-aware
//! client would send it. A `MULTI` that arrives alone, before any key, is
//! answered here (`+OK`, as Redis answers it) and sent ahead of the
//! transaction's next requests, once their keys name the master.

use std::io::{self, ErrorKind};

use crate::backend::raw::frame::Framer;
use crate::backend::raw::{RawConn, Wait};
use crate::backend::{slot_of, Slot};
use crate::service::Service;

use super::{Batch, Client, Sent};

/// A Redis connection one client holds between batches: from MULTI or
/// WATCH until EXEC, DISCARD, UNWATCH or its close, so its transaction and
/// watched keys live on one connection at Redis. Dropping it closes the
/// connection, which makes Redis discard them. `None`: a `MULTI` answered
/// here whose connection is not open yet (cluster mode; see the module
/// docs).
pub struct Held(pub(super) Option<Box<RawConn>>);

/// Where a connection a client will hold must go: in cluster mode, the
/// master owning this slot (`None`: any master); elsewhere, Redis.
#[derive(Clone, Copy, Debug)]
pub struct Pin(Option<Slot>);

impl Held {
    fn conn(&mut self) -> io::Result<&mut RawConn> {
        self.0.as_deref_mut().ok_or_else(|| {
            io::Error::new(
                ErrorKind::NotConnected,
                "the transaction's connection is not open yet",
            )
        })
    }

    /// Lets reads wait as long as Redis takes, or bounds them again.
    pub fn wait_forever(&mut self, forever: bool) -> io::Result<()> {
        self.conn()?.wait_forever(forever)
    }

    /// A handle that shuts the connection down from another thread.
    pub fn closer(&self) -> io::Result<std::net::TcpStream> {
        match &self.0 {
            Some(conn) => conn.closer(),
            None => Err(io::Error::new(ErrorKind::NotConnected, "not open")),
        }
    }

    /// A handle to write on while another thread reads (plain TCP only).
    pub fn writer(&self) -> Option<std::net::TcpStream> {
        self.0.as_ref().and_then(|conn| conn.tcp_handle())
    }

    /// Calls `hook` once the next client request is written on it, or
    /// drops it now if the connection is not open; `None` drops the one
    /// set (a blocking command learns its request is at Redis:
    /// `resp/fence.rs`).
    pub fn after_next_send(&mut self, hook: Option<Box<dyn FnOnce() + Send>>) {
        if let Some(conn) = self.0.as_deref_mut() {
            conn.after_next_send(hook);
        }
    }

    /// The next reply or push, exactly as Redis sent it.
    pub fn receive(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        self.conn()?.receive(out)
    }
}

impl Service {
    /// Where a connection for `batch` must go (see [`Pin`]): the slot of
    /// the first key (or shard channel) among its requests.
    pub fn pin(&self, batch: &Batch) -> Pin {
        if !self.backend.is_cluster() {
            return Pin(None);
        }
        let Ok(table) = self.commands() else {
            return Pin(None);
        };
        let (mut argv, mut refs) = (Vec::new(), Vec::new());
        for i in 0..batch.len() {
            batch.argv(i, &mut argv);
            let keyed = table
                .lookup(&argv)
                .filter(|command| command.slot_keys(&argv, &mut refs).is_ok())
                .and_then(|_| refs.first());
            if let Some(key) = keyed {
                return Pin(Some(slot_of(argv[key.index])));
            }
        }
        Pin(None)
    }

    /// A connection of the client's own, for a blocking command or a
    /// subscription (see `resp/dedicated.rs`), where `pin` says, answered
    /// once already ([`Backend::checkout_dedicated`]).
    pub fn hold(&self, client: Client, pin: Pin) -> Result<Held, String> {
        self.backend
            .checkout_dedicated(client.resp3, client.db, pin.0)
            .map(|conn| Held(Some(Box::new(conn))))
            .map_err(|err| format!("ERR {}", crate::service::ReadError::from(err)))
    }

    /// A raw connection where `pin` says, in the client's protocol and
    /// database; Err: the error reply's words.
    pub(super) fn open_pinned(&self, client: Client, pin: Pin) -> Result<RawConn, String> {
        self.backend
            .checkout_raw_for((client.resp3, client.db, Wait::Forwarded), pin.0)
            .map(|(conn, _)| conn)
            .map_err(|err| format!("ERR {}", crate::service::ReadError::from(err)))
    }

    /// Sends the `MULTI` answered here (see [`Service::defers_multi`])
    /// ahead of `batch`, on a connection where their keys say, and drops
    /// its reply, which the client had already.
    pub(super) fn forward_after_multi(
        &self,
        batch: &Batch,
        client: Client,
        keep: bool,
        queued: Option<&Queued>,
        out: &mut Vec<u8>,
    ) -> Sent {
        let mut whole = Batch::default();
        whole.push(&[b"MULTI"], false);
        whole.append(batch);
        let mut replies = Vec::new();
        let result = self.forward(&whole, client, Lane::Held(None, keep), queued, &mut replies);
        let multi = match Framer::default().next(&replies) {
            Ok(Some(len)) => len,
            _ => 0,
        };
        out.extend_from_slice(&replies[multi..]);
        result
    }

    /// Watches `held` for a change of master (sentinel mode): it is shut
    /// down when the sentinels name another, so a blocking command or a
    /// subscription does not wait on the demoted master.
    pub fn watch_master(&self, held: &Held) -> crate::backend::MasterWatch {
        match &held.0 {
            Some(conn) => self.backend.watch_master(conn),
            None => crate::backend::MasterWatch::none(),
        }
    }

    /// Gives back a connection from [`Service::hold`] once it is done
    /// with (kept for others only if it is sound).
    pub fn release(&self, mut held: Held) {
        if held.wait_forever(false).is_ok() {
            if let Some(conn) = held.0 {
                self.backend.checkin_raw(*conn);
            }
        }
    }

    /// Whether `batch`, on a lane that holds no connection yet, is a
    /// `MULTI` alone that cluster mode answers here (see the module docs).
    pub(super) fn defers_multi(&self, batch: &Batch) -> bool {
        if !self.backend.is_cluster() || batch.len() != 1 {
            return false;
        }
        let mut argv = Vec::new();
        batch.argv(0, &mut argv);
        argv.len() == 1 && argv[0].eq_ignore_ascii_case(b"multi")
    }
}

/// What the EXEC of a batch runs, for the keys it changes.
pub enum Queued {
    /// These commands, queued since MULTI.
    Commands(Batch),
    /// More than the connection remembered: anything may change.
    Unknown,
}

/// What a batch is sent on.
pub enum Lane {
    /// A pooled connection, given back after the batch.
    Pooled,
    /// The client's own connection, or a new one it will hold (`None`);
    /// `keep`: whether the client still holds it after this batch.
    Held(Option<Held>, bool),
}
