//! The Redis protocol front end: any Redis client reads through the same
//! cache, pool and miss coalescing as HTTP.
//!
//! Split as mini-redis splits it: [`parse`] turns bytes into requests,
//! [`cmd`] holds the commands (one module per group, each command's table
//! row beside its code), [`reply`] writes answers, [`session`] is what a
//! connection keeps between commands, and the event loop owns the sockets.
//!
//! One event-loop thread serves every connection (`event_loop.rs`): it
//! answers cache hits and data-free commands itself and hands reads that
//! need Redis to MAX_CLIENTS worker threads. At most MAX_CONNECTIONS are
//! open: at the limit the loop stops accepting, so a further connection waits
//! in the kernel's listen backlog (costing a socket, nothing more) and is
//! served when another closes. Reads of keys take one of the MAX_CLIENTS
//! places shared with HTTP, so that limit spans both front ends.

pub(crate) mod cmd;
mod event_loop;
pub mod parse;
pub(crate) mod reply;
pub(crate) mod session;

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use mio::Waker;

use crate::service::Service;
use event_loop::Shared;

/// Settings of the RESP front end.
#[derive(Clone, Debug)]
pub(crate) struct RespSettings {
    /// Most connections open at once.
    pub max_connections: usize,
    /// A connection with no request for this long is closed.
    pub idle_timeout: Duration,
    /// Threads that do the reads needing Redis (MAX_CLIENTS).
    pub workers: usize,
}

/// The running RESP front end.
pub(crate) struct RespServer {
    addr: SocketAddr,
    listener: TcpListener,
    shared: Arc<Shared>,
    waker: Arc<Waker>,
    event_loop: thread::JoinHandle<()>,
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
        let (poll, waker, shared) = event_loop::prepare()?;
        let workers = event_loop::start_workers(&settings, &service, &waker)?;
        let event_loop = {
            let shared = Arc::clone(&shared);
            let listener = mio::net::TcpListener::from_std(listener);
            thread::Builder::new()
                .name("resp-loop".to_owned())
                .spawn(move || {
                    event_loop::run(listener, poll, workers, settings, service, shared)
                })?
        };
        Ok(RespServer {
            addr,
            listener: handle,
            shared,
            waker,
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
        self.shared.stopping.store(true, Ordering::SeqCst);
        if let Err(err) = socket2::SockRef::from(&self.listener).shutdown(Shutdown::Both) {
            log::warn!("could not close the RESP listener: {err}");
        }
        let _ = self.waker.wake();
    }

    /// True once every connection has closed and the loop has ended.
    pub fn is_drained(&self) -> bool {
        self.event_loop.is_finished()
    }
}
