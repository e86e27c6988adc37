//! The Redis protocol front end: any Redis client reads through the same
//! cache, pool and miss coalescing as HTTP, and every other command goes
//! to Redis (RESP_FORWARD; docs/forwarding.md).
//!
//! Split as mini-redis splits it: [`parse`] turns bytes into requests,
//! [`cmd`] holds the commands (one module per group, each command's table
//! row beside its code), [`reply`] writes answers, [`session`] is what a
//! connection keeps between commands, and the event loop owns the sockets.
//!
//! One event-loop thread serves every connection (`event_loop.rs`): it
//! answers cache hits and data-free commands itself and hands reads that
//! need Redis to WORKERS worker threads; batches of forwarded commands
//! (`execute.rs`) it writes to a few Redis connections it drives itself
//! (`upstream.rs`), or, where that cannot be, hands to the workers too;
//! blocking commands and subscriptions get a thread and a
//! Redis connection of their own (`dedicated.rs`; a subscribed client's
//! other commands take the usual paths, `subscribed.rs`). At most MAX_CONNECTIONS are
//! open: a further connection is told `-ERR max number of clients reached`
//! and closed, as Redis does at `maxclients`. A read that fetches from
//! Redis takes one of the WORKERS places shared with HTTP, so that limit
//! spans both front ends; hits and reads waiting on another's fetch take
//! none.

mod blocking;
mod cancel;
pub(crate) mod cmd;
mod conn;
mod dedicated;
mod event_loop;
mod execute;
mod fence;
mod gather;
mod lanes;
pub mod parse;
pub(crate) mod reply;
pub(crate) mod session;
mod subscribed;
mod tracking;
mod transaction;
mod transport;
mod upstream;
mod workers;

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use crate::service::Service;
use event_loop::EventLoop;

/// Settings of the RESP front end.
#[derive(Clone, Debug)]
pub(crate) struct RespSettings {
    /// Most connections open at once.
    pub max_connections: usize,
    /// Redis connections held for blocking commands and subscriptions at
    /// most (DEDICATED_CONNECTIONS).
    pub dedicated: usize,
    /// A connection with no request and no reply for this long is closed;
    /// zero: never (CLIENT_IDLE_TIMEOUT_SECS's default).
    pub idle_timeout: Duration,
    /// Threads that do the reads needing Redis (WORKERS).
    pub workers: usize,
    /// TLS_CERT_FILE/TLS_KEY_FILE: the port speaks TLS only.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// TRACKING_TABLE_MAX_KEYS: keys remembered for tracking clients.
    pub tracking_max_keys: usize,
    /// TRACKING_TABLE_MAX_BYTES: and their bytes.
    pub tracking_max_bytes: usize,
}

/// The running RESP front end.
pub(crate) struct RespServer {
    addr: SocketAddr,
    /// A handle on the listening socket, to stop accepting at shutdown.
    listener: TcpListener,
    event_loop: EventLoop,
}

impl RespServer {
    /// Binds `addr` and starts the event loop and its workers.
    pub fn start(
        addr: SocketAddr,
        settings: RespSettings,
        service: Arc<Service>,
    ) -> io::Result<RespServer> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let handle = listener.try_clone()?;
        listener.set_nonblocking(true)?;
        let event_loop = EventLoop::spawn(listener, settings, service)?;
        Ok(RespServer {
            addr,
            listener: handle,
            event_loop,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting; connections close once the commands they sent have
    /// been answered (reads in flight at Redis finish first).
    pub fn begin_shutdown(&self) {
        // The loop learns it is stopping first, so an accept the shut
        // listener fails (EINVAL) is not taken for a fault worth a warning.
        self.event_loop.stop();
        if let Err(err) = socket2::SockRef::from(&self.listener).shutdown(Shutdown::Both) {
            log::warn!("could not close the RESP listener: {err}");
        }
    }

    /// True once every connection has closed and the loop has ended.
    pub fn is_drained(&self) -> bool {
        self.event_loop.is_finished()
    }
}
