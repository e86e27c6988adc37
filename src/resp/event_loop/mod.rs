//! The RESP event loop: one thread polls every connection (mio, epoll on
//! Linux), drives each through its steps (`conn.rs`), answers hits and
//! data-free commands at once, writes forwarded batches to the few Redis
//! connections it drives itself (`upstream.rs`: one write per turn for
//! all the clients served in it), and hands reads that need Redis, and the
//! batches that cannot go that way, to the worker pool (`workers.rs`).
//!
//! Why a loop and not a thread per connection: with one thread per client,
//! every request wakes a thread, and under many busy connections on few
//! cores the context switches cost more than the work (they took 46% of the
//! proxy's CPU under redis-benchmark). Here one wake-up serves every socket
//! that is ready.
//!
//! Order is kept per connection: while a connection waits for a worker's
//! reply, nothing more of its input is executed; the reply is appended when
//! it arrives and the connection resumes.

use std::io::{self, ErrorKind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::log_limit::LogLimiter;
use crate::metrics::{serve_on_this_thread, FrontEnd};
use crate::service::{Batch, Lane, Service};

mod accept;
mod closing;

use super::cmd::{Peers, Registry};
use super::conn::ReadOutcome;
use super::dedicated::Dedicated;
use super::fence::Fence;
use super::lanes::Next;
use super::tracking::{self, Tracker};
use super::upstream::{ClientMap, Upstreams};
use super::workers::{self, Done, WorkQueue};
use super::RespSettings;

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
/// Bytes read from a socket at a time.
const READ_CHUNK: usize = 16 * 1024;
/// How often idle connections are looked for, and how soon an accept that
/// failed (out of file descriptors) is tried again.
const SWEEP: Duration = Duration::from_millis(250);
/// Connections turned away per turn of the loop at most, so a flood of
/// them at MAX_CONNECTIONS cannot keep the loop from its connections.
const REJECTS_PER_TURN: usize = 256;
/// How often a failing accept (out of file descriptors) is logged at most.
const ACCEPT_WARNING_INTERVAL: Duration = Duration::from_secs(30);

/// The running loop, as its owner sees it.
pub struct EventLoop {
    stopping: Arc<AtomicBool>,
    waker: Arc<Waker>,
    thread: thread::JoinHandle<()>,
}

impl EventLoop {
    /// Starts the loop on `listener` (non-blocking), with its workers.
    pub fn spawn(
        listener: std::net::TcpListener,
        settings: RespSettings,
        service: Arc<Service>,
    ) -> io::Result<EventLoop> {
        let mut listener = TcpListener::from_std(listener);
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let (done_tx, done) = std::sync::mpsc::channel::<Done>();
        // Up while a blocking command or a Pub/Sub request handed to a
        // dedicated connection is not yet written: the loop's batches and
        // the workers' wait for it (the order rule, `fence.rs`).
        let fence = Fence::new(Arc::clone(&waker));
        let jobs = workers::start(settings.workers, &service, (&waker, &done_tx), &fence)?;
        let dedicated = Dedicated::new(
            Arc::clone(&service),
            (done_tx, Arc::clone(&waker)),
            settings.dedicated,
            fence.clone(),
        );
        let limits = tracking::Limits {
            max_keys: settings.tracking_max_keys,
            max_bytes: settings.tracking_max_bytes,
        };
        let (tracker, changes) = Tracker::new(limits, Arc::clone(&waker), Arc::clone(&service));
        service.listen_for_changes(changes);
        let upstreams = Upstreams::new(
            Arc::clone(&service),
            (Arc::clone(&waker), fence),
            poll.registry().try_clone()?,
        );
        let live = Arc::new(AtomicUsize::new(0));
        service.watch_connections(FrontEnd::Resp, Arc::clone(&live));
        let stopping = Arc::new(AtomicBool::new(false));
        let mut event_loop = Loop {
            poll,
            conns: ClientMap::default(),
            next_token: 2,
            next_id: 0,
            settings,
            service,
            live: Arc::clone(&live),
            stopping: Arc::clone(&stopping),
            jobs,
            dedicated,
            upstreams,
            resumed: Vec::new(),
            want_accept: true,
            accept_errors: LogLimiter::new(ACCEPT_WARNING_INTERVAL),
            accept_failed: false,
            chunk: vec![0u8; READ_CHUNK].into_boxed_slice(),
            tracker,
            clients: Registry::default(),
        };
        let thread = thread::Builder::new()
            .name("resp-loop".to_owned())
            .spawn(move || event_loop.run(listener, &done))?;
        Ok(EventLoop {
            stopping,
            waker,
            thread,
        })
    }

    /// Begins a graceful shutdown: stop accepting, answer what each
    /// connection has sent (reads at Redis finish first), then close.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
    }

    /// True once every connection has closed and the loop has ended.
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }
}

struct Loop {
    poll: Poll,
    conns: ClientMap,
    next_token: usize,
    next_id: u64,
    settings: RespSettings,
    service: Arc<Service>,
    live: Arc<AtomicUsize>,
    stopping: Arc<AtomicBool>,
    jobs: WorkQueue,
    /// Blocking commands and subscriptions, on connections of their own.
    dedicated: Dedicated,
    /// The loop's own Redis connections, carrying forwarded batches.
    upstreams: Upstreams,
    /// Clients whose replies came in on them, to resume.
    resumed: Vec<Token>,
    /// Whether the listener may have clients to accept: set by its events,
    /// by the sweep after an accept error, and while a flood of clients to
    /// turn away is not yet worked through.
    want_accept: bool,
    accept_failed: bool,
    accept_errors: LogLimiter,
    /// The read buffer every connection reads through.
    chunk: Box<[u8]>,
    /// `CLIENT TRACKING` for our clients.
    tracker: Tracker,
    /// What `CLIENT LIST` shows, and whom `CLIENT KILL` chose.
    clients: Registry,
}

impl Loop {
    /// Runs until shutdown has drained every connection.
    fn run(&mut self, listener: TcpListener, done: &Receiver<Done>) {
        let mut events = Events::with_capacity(1024);
        let mut last_sweep = Instant::now();
        let mut listener = Some(listener);
        // Redis connections with replies to read, handled after this
        // turn's requests are written (below).
        let mut replies_ready: Vec<Token> = Vec::new();
        serve_on_this_thread(FrontEnd::Resp);
        loop {
            // Clients still to accept: look at the sockets without waiting.
            let wait = if self.want_accept {
                Duration::ZERO
            } else {
                SWEEP
            };
            if let Err(err) = self.poll.poll(&mut events, Some(wait)) {
                if err.kind() != ErrorKind::Interrupted {
                    log::error!("RESP poll failed: {err}");
                    return;
                }
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.want_accept = true,
                    WAKER => {}
                    token if Upstreams::owns(token) => {
                        if event.is_read_closed() || event.is_error() {
                            self.upstreams.peer_closed(token);
                        }
                        replies_ready.push(token);
                    }
                    token => {
                        let closed = event.is_read_closed() || event.is_error();
                        if event.is_readable() || closed {
                            if let Some(conn) = self.conns.get_mut(&token) {
                                conn.readable(closed);
                            }
                        }
                        self.service_conn(token);
                    }
                }
            }
            // This turn's requests go to Redis before its replies are handed
            // out: Redis works on them while the loop writes to clients.
            if !replies_ready.is_empty() {
                self.upstreams.flush(&mut self.conns);
                for token in replies_ready.drain(..) {
                    self.upstreams
                        .ready(token, &mut self.conns, &mut self.chunk);
                    self.resume();
                }
            }
            // Changes in Redis, for tracking clients.
            for token in self.tracker.drain(&mut self.conns) {
                self.flush(token);
            }
            // Replies from workers.
            while let Ok(done) = done.try_recv() {
                let token = done.token;
                match self.conns.get_mut(&token).map(|conn| conn.take_done(done)) {
                    Some(Next::Serve) => self.service_conn(token),
                    Some(Next::Flush) => self.flush(token),
                    Some(Next::Resend(batch)) => self.resend(token, batch),
                    None => {}
                }
            }
            // Batches of this turn, many clients' in one write each.
            self.upstreams.take_opened();
            self.upstreams.expire(&mut self.conns);
            self.resume();
            // A client resumed by a failed write (its batch answered with
            // the error) may queue its next batch on another connection:
            // written now too, not left for the next event or the sweep.
            loop {
                self.upstreams.flush(&mut self.conns);
                if !self.resume() {
                    break;
                }
            }
            if self.stopping.load(Ordering::SeqCst) {
                if let Some(mut closed) = listener.take() {
                    let _ = self.poll.registry().deregister(&mut closed);
                }
                self.want_accept = false;
                self.close_for_shutdown();
                if self.conns.is_empty() {
                    return;
                }
            } else if let Some(listener) = &listener {
                if self.want_accept {
                    self.accept(listener);
                }
            }
            let clients = self.tracker.tracking_clients();
            self.service.set_tracking_clients(clients);
            if last_sweep.elapsed() >= SWEEP {
                self.sweep();
                last_sweep = Instant::now();
            }
        }
    }

    /// Executes, writes and reads for one connection, closing it when done.
    /// Reads one chunk at a time, and only while the connection has room
    /// (`Conn::may_read`): flow control. Input held back at the high-water
    /// mark runs as soon as a write takes the output back under it, before
    /// any read: it is already here, so no readable event will come for it
    /// (and if that write took it all, no writable one either).
    fn service_conn(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        let tracker = &self.tracker;
        let peers = Peers {
            live: self.live.load(Ordering::SeqCst),
            exists: &|id| tracker.exists(id),
            worker_free: self.jobs.has_free_worker(),
            clients: &self.clients,
            prefix_room: tracker.prefix_room(token),
        };
        let open = loop {
            let upstreams = &mut self.upstreams;
            if !conn.execute_input(
                token,
                &self.service,
                &self.jobs,
                &self.dedicated,
                upstreams,
                &peers,
            ) {
                break false;
            }
            // Stopped at the high-water mark, whole requests may be left
            // in its input: no event will say so.
            let held_back = conn.over_high_water();
            tracker.before_replies(conn);
            if !conn.write_output() {
                break false;
            }
            if held_back && !conn.over_high_water() {
                // The socket took enough: run them before reading more.
                continue;
            }
            if !conn.may_read() {
                conn.not_reading();
                break true;
            }
            match conn.read_chunk(&mut self.chunk) {
                ReadOutcome::Data => {}
                ReadOutcome::Drained => break true,
                ReadOutcome::Finished => break false,
            }
        };
        // CLIENT KILL: the others it chose.
        for victim in self.clients.take_killed() {
            if victim != token {
                self.close(victim);
            }
        }
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        // Replies owed on a subscription come before the client's end.
        let open = open && conn.settle_before_close();
        if !open || conn.is_done() {
            self.close(token);
            return;
        }
        for other in self.tracker.after_execute(token, &mut self.conns) {
            self.flush(other);
        }
    }

    /// Resumes the clients whose replies came in on the loop's own Redis
    /// connections.
    /// Changes their writes made are told to tracking clients first, as
    /// before a worker's reply (so no client reads, then hears of, a
    /// change older than its read). False when there were none.
    fn resume(&mut self) -> bool {
        let mut resumed = std::mem::take(&mut self.resumed);
        self.upstreams.take_resumed(&mut resumed);
        if resumed.is_empty() {
            self.resumed = resumed;
            return false;
        }
        for token in self.tracker.drain(&mut self.conns) {
            self.flush(token);
        }
        for token in resumed.drain(..) {
            self.service_conn(token);
        }
        self.resumed = resumed;
        true
    }

    /// Sends a client's read that the cache could not fill (Redis busy past
    /// REDIS_TIMEOUT_MS) to Redis as a forwarded batch of its own, as
    /// `execute_input` sends one: on the loop's shared connection, or a
    /// worker's; the client waits for Redis's reply as for any forwarded
    /// command, and no thread waits on its behalf meanwhile.
    fn resend(&mut self, token: Token, batch: Batch) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        let (jobs, upstreams) = (&self.jobs, &mut self.upstreams);
        if !conn.send_batch(token, batch, Lane::Pooled, None, jobs, upstreams) {
            self.close(token);
        }
    }

    /// Writes what a connection has pending (a tracking message), closing
    /// it if it is gone.
    fn flush(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        if !conn.write_output() {
            self.close(token);
        } else if conn.over_push_limit() {
            log::debug!("closing a RESP tracking client that does not read its pushes");
            self.close(token);
        }
    }
}
