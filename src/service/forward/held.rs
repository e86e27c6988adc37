//! Redis connections a client holds for a while (a transaction, WATCH, a
//! blocking command, a subscription), and what a batch is sent on.

use crate::backend::raw::RawConn;
use crate::service::Service;

use super::{Batch, Client};

/// A Redis connection one client holds between batches: from MULTI or
/// WATCH until EXEC, DISCARD, UNWATCH or its close, so its transaction and
/// watched keys live on one connection at Redis. Dropping it closes the
/// connection, which makes Redis discard them.
pub struct Held(pub(super) Box<RawConn>);

impl Held {
    /// Lets reads wait as long as Redis takes, or bounds them again.
    pub fn wait_forever(&mut self, forever: bool) -> std::io::Result<()> {
        self.0.wait_forever(forever)
    }

    /// A handle that shuts the connection down from another thread.
    pub fn closer(&self) -> std::io::Result<std::net::TcpStream> {
        self.0.closer()
    }

    /// A handle to write on while another thread reads (plain TCP only).
    pub fn writer(&self) -> Option<std::net::TcpStream> {
        self.0.tcp_handle()
    }

    /// The next reply or push, exactly as Redis sent it.
    pub fn receive(&mut self, out: &mut Vec<u8>) -> std::io::Result<()> {
        self.0.receive(out)
    }
}

impl Service {
    /// A connection of the client's own, for a blocking command or a
    /// subscription (see `resp/dedicated.rs`).
    pub fn hold(&self, client: Client) -> Result<Held, String> {
        self.backend
            .checkout_raw(client.resp3, client.db)
            .map(|(conn, _)| Held(Box::new(conn)))
            .map_err(|err| format!("ERR {}", crate::service::ReadError::from(err)))
    }

    /// Gives back a connection from [`Service::hold`] once it is done
    /// with (kept for others only if it is sound).
    pub fn release(&self, mut held: Held) {
        if held.wait_forever(false).is_ok() {
            self.backend.checkin_raw(*held.0);
        }
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
