//! A TCP relay between the proxy and `redis-server` that delays every chunk
//! going towards Redis, and counts what passes: a slow, far-away Redis made
//! of a real one, with concurrency observed rather than timed.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

/// What the relay has seen.
#[derive(Default)]
pub struct RelayStats {
    /// Requests sent on towards Redis and not yet answered.
    pub in_flight: AtomicUsize,
    /// The most requests ever in flight at once.
    pub max_in_flight: AtomicUsize,
    /// Connections opened through the relay, ever.
    pub connections: AtomicUsize,
    /// While true, chunks towards Redis are held (after being counted).
    held: Mutex<bool>,
    /// Connections opened from now on are never held.
    exempt_new: AtomicBool,
    /// While true, replies towards the proxy are held, except on the
    /// proxy's invalidation link (recognised by its client name).
    replies_held: Mutex<bool>,
    replies_released: Condvar,
    /// Replies held right now.
    pub replies_waiting: AtomicUsize,
    released: Condvar,
}

impl RelayStats {
    fn wait_until_replies_released(&self) {
        let held = self.replies_held.lock().expect("relay gate");
        if !*held {
            return;
        }
        self.replies_waiting.fetch_add(1, SeqCst);
        let _open = self
            .replies_released
            .wait_while(held, |held| *held)
            .expect("relay gate");
        self.replies_waiting.fetch_sub(1, SeqCst);
    }

    fn wait_until_released(&self) {
        let held = self.held.lock().expect("relay gate");
        let _open = self
            .released
            .wait_while(held, |held| *held)
            .expect("relay gate");
    }
}

/// A running relay; stops accepting on drop.
pub struct Relay {
    pub addr: SocketAddr,
    pub stats: Arc<RelayStats>,
    stop: Arc<AtomicBool>,
}

impl Relay {
    /// Relays to `upstream`, holding each chunk towards it for `delay`.
    pub fn start(upstream: SocketAddr, delay: Duration) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind relay");
        let addr = listener.local_addr().expect("relay addr");
        let stats = Arc::new(RelayStats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (thread_stats, thread_stop) = (Arc::clone(&stats), Arc::clone(&stop));
        thread::spawn(move || {
            for client in listener.incoming() {
                if thread_stop.load(SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                thread_stats.connections.fetch_add(1, SeqCst);
                pipe(client, server, delay, Arc::clone(&thread_stats));
            }
        });
        Relay { addr, stats, stop }
    }

    /// `redis://` URL of the relay.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// Holds every request towards Redis until [`Relay::release`].
    pub fn hold(&self) {
        *self.stats.held.lock().expect("relay gate") = true;
    }

    /// Lets held and further requests through.
    pub fn release(&self) {
        *self.stats.held.lock().expect("relay gate") = false;
        self.stats.released.notify_all();
    }

    /// Connections opened from now on pass through even while held (their
    /// requests and replies both): the ones already open stay held, busy,
    /// as a far-away Redis keeps them.
    pub fn exempt_new_connections(&self) {
        self.stats.exempt_new.store(true, SeqCst);
    }

    /// Holds every reply towards the proxy (but the invalidation link's)
    /// until [`Relay::release_replies`]: Redis has answered, the proxy has
    /// not heard yet.
    pub fn hold_replies(&self) {
        *self.stats.replies_held.lock().expect("relay gate") = true;
    }

    pub fn release_replies(&self) {
        *self.stats.replies_held.lock().expect("relay gate") = false;
        self.stats.replies_released.notify_all();
    }

    /// Replies held at the relay now.
    pub fn replies_waiting(&self) -> usize {
        self.stats.replies_waiting.load(SeqCst)
    }

    pub fn in_flight(&self) -> usize {
        self.stats.in_flight.load(SeqCst)
    }

    pub fn max_in_flight(&self) -> usize {
        self.stats.max_in_flight.load(SeqCst)
    }

    pub fn connections(&self) -> usize {
        self.stats.connections.load(SeqCst)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, SeqCst);
        self.release();
        self.release_replies();
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// The client name of the proxy's invalidation link.
const LINK_NAME: &[u8] = b"redis-proxy-invalidation";

/// Starts the two copying threads of one relayed connection.
fn pipe(client: TcpStream, server: TcpStream, delay: Duration, stats: Arc<RelayStats>) {
    let pending = Arc::new(AtomicBool::new(false));
    let holdable = !stats.exempt_new.load(SeqCst);
    let is_link = Arc::new(AtomicBool::new(false));
    let up_is_link = Arc::clone(&is_link);
    let (mut client_in, mut server_out) = (
        client.try_clone().expect("clone client"),
        server.try_clone().expect("clone server"),
    );
    let (up_stats, up_pending) = (Arc::clone(&stats), Arc::clone(&pending));
    thread::spawn(move || {
        let mut buf = [0u8; 64 * 1024];
        while let Ok(n @ 1..) = client_in.read(&mut buf) {
            if buf[..n].windows(LINK_NAME.len()).any(|w| w == LINK_NAME) {
                up_is_link.store(true, SeqCst);
            }
            // The proxy's invalidation link is neither counted nor held:
            // its PINGs are not requests.
            if up_is_link.load(SeqCst) {
                if server_out.write_all(&buf[..n]).is_err() {
                    break;
                }
                continue;
            }
            if !up_pending.swap(true, SeqCst) {
                let now = up_stats.in_flight.fetch_add(1, SeqCst) + 1;
                up_stats.max_in_flight.fetch_max(now, SeqCst);
            }
            thread::sleep(delay);
            if holdable {
                up_stats.wait_until_released();
            }
            if server_out.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = server_out.shutdown(Shutdown::Both);
    });
    let (mut server_in, mut client_out) = (server, client);
    thread::spawn(move || {
        let mut buf = [0u8; 64 * 1024];
        while let Ok(n @ 1..) = server_in.read(&mut buf) {
            if holdable && !is_link.load(SeqCst) {
                stats.wait_until_replies_released();
            }
            // Count the answer before the proxy can see it and send more.
            if pending.swap(false, SeqCst) {
                stats.in_flight.fetch_sub(1, SeqCst);
            }
            if client_out.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = client_out.shutdown(Shutdown::Both);
        if pending.swap(false, SeqCst) {
            stats.in_flight.fetch_sub(1, SeqCst);
        }
    });
}
