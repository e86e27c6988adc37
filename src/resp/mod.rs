//! The Redis protocol front end: any Redis client reads through the same
//! cache, pool and miss coalescing as HTTP.
//!
//! Split as mini-redis splits it: [`parse`] turns bytes into requests,
//! [`command`] turns a request into a [`command::Command`], [`reply`] writes
//! answers, and [`connection`] runs one client's read-execute-write loop.
//!
//! One thread per connection. At most MAX_CONNECTIONS are open: the accept
//! loop takes a place before it accepts, so a connection beyond the limit
//! waits in the kernel's listen backlog (costing a socket, nothing more) and
//! is served when another closes. Commands that read keys also take one of
//! the MAX_CLIENTS places shared with HTTP, so that limit spans both front
//! ends.

pub mod command;
pub mod connection;
pub mod parse;
pub mod reply;

use std::collections::HashMap;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use crate::limit::Limiter;
use crate::log_limit::LogLimiter;
use crate::service::Service;

/// Pause after a failed accept (out of file descriptors, say) before trying
/// again, so the loop neither spins nor gives up.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Settings of the RESP front end.
#[derive(Clone, Debug)]
pub struct RespSettings {
    /// Most connections open at once.
    pub max_connections: usize,
    /// A connection with no request for this long is closed.
    pub idle_timeout: Duration,
}

/// The open connections, so shutdown can end their reads.
#[derive(Default)]
pub struct Registry {
    streams: Mutex<HashMap<u64, TcpStream>>,
    next_id: AtomicU64,
    live: AtomicUsize,
    stopping: AtomicBool,
}

impl Registry {
    /// Connections open now.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    fn add(&self, stream: &TcpStream) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        self.live.fetch_add(1, Ordering::SeqCst);
        if let Ok(clone) = stream.try_clone() {
            self.lock().insert(id, clone);
        }
        // A connection that arrives as shutdown begins is ended like the rest.
        if self.stopping.load(Ordering::SeqCst) {
            let _ = stream.shutdown(Shutdown::Read);
        }
        id
    }

    fn remove(&self, id: u64) {
        self.lock().remove(&id);
        self.live.fetch_sub(1, Ordering::SeqCst);
    }

    /// Ends every connection's wait for its next request; commands already
    /// running finish and their replies are written.
    fn end_reads(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        for stream in self.lock().values() {
            let _ = stream.shutdown(Shutdown::Read);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, TcpStream>> {
        self.streams.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The running RESP front end.
pub struct RespServer {
    addr: SocketAddr,
    listener: TcpListener,
    registry: Arc<Registry>,
    acceptor: thread::JoinHandle<()>,
}

impl RespServer {
    /// Binds `addr` and starts accepting.
    pub fn start(
        addr: SocketAddr,
        settings: RespSettings,
        service: Arc<Service>,
    ) -> io::Result<RespServer> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let handle = listener.try_clone()?;
        let registry = Arc::new(Registry::default());
        let acceptor = {
            let registry = Arc::clone(&registry);
            thread::Builder::new()
                .name("resp-accept".to_owned())
                .spawn(move || accept_loop(&listener, &settings, &service, &registry))?
        };
        Ok(RespServer {
            addr,
            listener: handle,
            registry,
            acceptor,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting and ends idle connections; commands in flight finish.
    pub fn begin_shutdown(&self) {
        self.registry.end_reads();
        if let Err(err) = socket2::SockRef::from(&self.listener).shutdown(Shutdown::Both) {
            log::warn!("could not close the RESP listener: {err}");
        }
    }

    /// True once the accept loop and every connection have ended.
    pub fn is_drained(&self) -> bool {
        self.acceptor.is_finished() && self.registry.live() == 0
    }
}

fn accept_loop(
    listener: &TcpListener,
    settings: &RespSettings,
    service: &Arc<Service>,
    registry: &Arc<Registry>,
) {
    let places = Arc::new(Limiter::new(settings.max_connections));
    let accept_errors = LogLimiter::new(Duration::from_secs(5));
    loop {
        let place = places.acquire_owned();
        if registry.stopping.load(Ordering::SeqCst) {
            return;
        }
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(_) if registry.stopping.load(Ordering::SeqCst) => return,
            Err(err) => {
                accept_errors.warn(format_args!("RESP accept failed, retrying: {err}"));
                thread::sleep(ACCEPT_BACKOFF);
                continue;
            }
        };
        let id = registry.add(&stream);
        let (service, settings) = (Arc::clone(service), settings.clone());
        let conn_registry = Arc::clone(registry);
        let spawned = thread::Builder::new()
            .name(format!("resp-conn-{id}"))
            .stack_size(256 * 1024)
            .spawn(move || {
                let _place = place;
                connection::serve(stream, id, &service, &settings, &conn_registry);
                conn_registry.remove(id);
            });
        if let Err(err) = spawned {
            accept_errors.warn(format_args!("cannot start a RESP connection thread: {err}"));
            registry.remove(id);
        }
    }
}
