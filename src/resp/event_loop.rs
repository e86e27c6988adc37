//! The RESP event loop: one thread polls every connection (mio, epoll on
//! Linux), parses what arrived, answers hits and data-free commands at once,
//! and hands reads that need Redis to a pool of worker threads.
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
//!
//! Flow control: a connection's socket is read only while everything it sent
//! has been executed, it waits for no worker, and its unsent output is under
//! the high-water mark. Otherwise its further requests stay in the kernel's
//! buffers (and then the client's own send blocks), so what one connection
//! holds here is bounded: one partial request (at most `parse::MAX_REQUEST`)
//! plus one read, and about `OUTPUT_HIGH_WATER` of replies (plus the last
//! reply, which may be one large value).

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};

use crate::log_limit::LogLimiter;
use crate::service::Service;

use super::cmd::{execute, fetch, Fetch, Step};
use super::parse::Parser;
use super::reply::{Protocol, Replies};
use super::session::Session;
use super::RespSettings;

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
/// Bytes read from a socket at a time.
const READ_CHUNK: usize = 16 * 1024;
/// Stop executing a connection's input while this much output is unsent, so
/// a client that does not read cannot make us buffer without bound.
const OUTPUT_HIGH_WATER: usize = 4 * 1024 * 1024;
/// After a protocol error, how much of the client's further input is read
/// and discarded (so the close does not reset the error reply away).
const DISCARD_LIMIT: usize = 4 * 1024 * 1024;
/// How long a closing connection may take to send its last bytes.
const LINGER: Duration = Duration::from_secs(1);
/// How often idle connections are looked for.
const SWEEP: Duration = Duration::from_millis(250);

/// What the loop shares with the server handle.
pub struct Shared {
    /// Connections open now.
    pub live: AtomicUsize,
    /// Set to begin a graceful shutdown.
    pub stopping: AtomicBool,
}

/// A worker's finished reply for a connection.
pub struct Done {
    token: Token,
    reply: Vec<u8>,
}

/// A read for a worker to do.
pub struct Job {
    token: Token,
    fetch: Fetch,
    protocol: Protocol,
}

struct Conn {
    stream: TcpStream,
    session: Session,
    input: Vec<u8>,
    /// Progress through the partial request at the front of `input`.
    parser: Parser,
    replies: Replies,
    /// Bytes of `replies.buf` already written.
    written: usize,
    /// Waiting for a worker's reply.
    waiting: bool,
    /// Close once the output is written (QUIT, protocol error, shutdown).
    closing: bool,
    /// After a protocol error: the write side is shut; discard input.
    discarding: usize,
    last_active: Instant,
    closing_since: Option<Instant>,
}

/// Runs the loop until shutdown has drained every connection.
pub fn run(
    mut listener: TcpListener,
    poll: Poll,
    workers: (Sender<Job>, Receiver<Done>),
    settings: RespSettings,
    service: Arc<Service>,
    shared: Arc<Shared>,
) {
    let (jobs, done) = workers;
    let mut event_loop = Loop {
        poll,
        conns: HashMap::new(),
        next_token: 2,
        next_id: 0,
        settings,
        service,
        shared,
        jobs,
        want_accept: true,
        accept_errors: LogLimiter::new(Duration::from_secs(5)),
        accept_failed: false,
        chunk: vec![0u8; READ_CHUNK].into_boxed_slice(),
    };
    if let Err(err) =
        event_loop
            .poll
            .registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
    {
        log::error!("RESP listener cannot be polled: {err}");
        return;
    }
    let mut events = Events::with_capacity(1024);
    let mut last_sweep = Instant::now();
    let mut listener = Some(listener);
    loop {
        if let Err(err) = event_loop.poll.poll(&mut events, Some(SWEEP)) {
            if err.kind() != ErrorKind::Interrupted {
                log::error!("RESP poll failed: {err}");
                return;
            }
        }
        for event in events.iter() {
            match event.token() {
                LISTENER => event_loop.want_accept = true,
                WAKER => {}
                token => event_loop.service_conn(token),
            }
        }
        // Replies from workers.
        while let Ok(Done { token, reply }) = done.try_recv() {
            event_loop.deliver(token, reply);
        }
        if event_loop.shared.stopping.load(Ordering::SeqCst) {
            if let Some(mut closed) = listener.take() {
                let _ = event_loop.poll.registry().deregister(&mut closed);
            }
            event_loop.close_idle_for_shutdown();
            if event_loop.conns.is_empty() {
                return;
            }
        } else if let Some(listener) = &listener {
            if event_loop.want_accept {
                event_loop.accept(listener);
            }
        }
        if last_sweep.elapsed() >= SWEEP {
            event_loop.sweep();
            last_sweep = Instant::now();
        }
    }
}

/// Starts the worker threads that do reads needing Redis. Fails if any
/// cannot start, rather than leave connections waiting for a worker that
/// does not exist.
pub fn start_workers(
    settings: &RespSettings,
    service: &Arc<Service>,
    waker: &Arc<Waker>,
) -> io::Result<(Sender<Job>, Receiver<Done>)> {
    let (job_tx, job_rx) = mpsc::channel::<Job>();
    let (done_tx, done_rx) = mpsc::channel::<Done>();
    let job_rx = Arc::new(Mutex::new(job_rx));
    for i in 0..settings.workers {
        let (job_rx, done_tx) = (Arc::clone(&job_rx), done_tx.clone());
        let (service, waker) = (Arc::clone(service), Arc::clone(waker));
        thread::Builder::new()
            .name(format!("resp-worker-{i}"))
            .spawn(move || loop {
                let job = {
                    let queue = job_rx.lock().unwrap_or_else(PoisonError::into_inner);
                    match queue.recv() {
                        Ok(job) => job,
                        Err(_) => return,
                    }
                };
                let reply = fetch_guarded(&job, &service);
                if done_tx
                    .send(Done {
                        token: job.token,
                        reply,
                    })
                    .is_err()
                {
                    return;
                }
                let _ = waker.wake();
            })?;
    }
    Ok((job_tx, done_rx))
}

/// Runs a job, turning a panic into an error reply: the connection goes on,
/// the panic is logged (by the panic hook and here), and the worker lives on
/// to take the next job, as a replaced worker would.
fn fetch_guarded(job: &Job, service: &Service) -> Vec<u8> {
    let run = || fetch(&job.fetch, job.protocol, service);
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        Ok(reply) => reply,
        Err(_) => {
            log::error!("a RESP worker panicked; answered -ERR internal error");
            service.metrics().resp_request(false, Duration::ZERO);
            let mut replies = Replies::new();
            replies.protocol = job.protocol;
            replies.error("ERR internal error");
            replies.buf
        }
    }
}

struct Loop {
    poll: Poll,
    conns: HashMap<Token, Conn>,
    next_token: usize,
    next_id: u64,
    settings: RespSettings,
    service: Arc<Service>,
    shared: Arc<Shared>,
    jobs: Sender<Job>,
    /// Whether the listener may have clients to accept: set by its events,
    /// by a close that frees a place, and by the sweep after an accept error.
    /// While at MAX_CONNECTIONS, further clients wait in the backlog.
    want_accept: bool,
    accept_failed: bool,
    accept_errors: LogLimiter,
    /// The read buffer every connection reads through.
    chunk: Box<[u8]>,
}

impl Loop {
    /// Accepts while below MAX_CONNECTIONS. Polling is edge-triggered, so
    /// this runs after every wake-up, and again after a close frees a place.
    fn accept(&mut self, listener: &TcpListener) {
        while self.conns.len() < self.settings.max_connections {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    self.service.metrics().resp_connection();
                    let token = Token(self.next_token);
                    self.next_token += 1;
                    self.next_id += 1;
                    let _ = stream.set_nodelay(true);
                    let interest = Interest::READABLE | Interest::WRITABLE;
                    if let Err(err) = self.poll.registry().register(&mut stream, token, interest) {
                        log::warn!("cannot poll a RESP connection: {err}");
                        continue;
                    }
                    self.conns.insert(
                        token,
                        Conn {
                            stream,
                            session: Session::new(self.next_id),
                            input: Vec::new(),
                            parser: Parser::default(),
                            replies: Replies::new(),
                            written: 0,
                            waiting: false,
                            closing: false,
                            discarding: 0,
                            last_active: Instant::now(),
                            closing_since: None,
                        },
                    );
                    self.shared.live.store(self.conns.len(), Ordering::SeqCst);
                    // Data may already be waiting; edge-triggered polling
                    // reports it once, which registration may have missed.
                    self.service_conn(token);
                }
                Err(err) if err.kind() == ErrorKind::WouldBlock => {
                    self.want_accept = false;
                    return;
                }
                Err(err) => {
                    // Out of file descriptors and the like: the sweep tries
                    // again (at most SWEEP later); never give up.
                    self.accept_errors
                        .warn(format_args!("RESP accept failed, retrying: {err}"));
                    self.want_accept = false;
                    self.accept_failed = true;
                    return;
                }
            }
        }
        // At the limit: the rest wait in the backlog until a close.
        self.want_accept = false;
    }

    /// Executes, writes and reads for one connection, closing it when done.
    /// Reads one chunk at a time, and only while [`may_read`] says the
    /// connection has room: flow control.
    fn service_conn(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        let live = self.shared.live.load(Ordering::SeqCst);
        let open = loop {
            if !execute_input(conn, token, &self.service, &self.jobs, live) || !write_output(conn) {
                break false;
            }
            if !may_read(conn) {
                break true;
            }
            match read_chunk(conn, &mut self.chunk) {
                ReadOutcome::Data => {}
                ReadOutcome::Drained => break true,
                ReadOutcome::Finished => break false,
            }
        };
        if !open
            || (conn.closing
                && conn.written == conn.replies.buf.len()
                && conn.discarding == 0
                && !conn.waiting)
        {
            self.close(token);
        }
    }

    /// A worker's reply: append it and carry on with the connection's input.
    fn deliver(&mut self, token: Token, reply: Vec<u8>) {
        if let Some(conn) = self.conns.get_mut(&token) {
            conn.waiting = false;
            conn.replies.buf.extend_from_slice(&reply);
            self.service_conn(token);
        }
    }

    fn close(&mut self, token: Token) {
        if let Some(mut conn) = self.conns.remove(&token) {
            let _ = self.poll.registry().deregister(&mut conn.stream);
            self.shared.live.store(self.conns.len(), Ordering::SeqCst);
            self.want_accept = true;
        }
    }

    /// Closes connections idle past the timeout, and closing ones that
    /// lingered too long.
    fn sweep(&mut self) {
        if std::mem::take(&mut self.accept_failed) {
            self.want_accept = true;
        }
        let idle = self.settings.idle_timeout;
        let expired: Vec<Token> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                // A read still at Redis is waited for (it is bounded by
                // REDIS_TIMEOUT_MS); anything else idle or lingering goes.
                !c.waiting
                    && (c.last_active.elapsed() >= idle
                        || c.closing_since.is_some_and(|t| t.elapsed() >= LINGER))
            })
            .map(|(t, _)| *t)
            .collect();
        for token in expired {
            log::debug!("closing idle RESP connection");
            self.close(token);
        }
    }

    /// At shutdown: connections not waiting for Redis close once their
    /// replies are written; waiting ones finish first.
    fn close_idle_for_shutdown(&mut self) {
        let tokens: Vec<Token> = self.conns.keys().copied().collect();
        for token in tokens {
            if let Some(conn) = self.conns.get_mut(&token) {
                if !conn.closing {
                    conn.closing = true;
                    conn.closing_since = Some(Instant::now());
                }
            }
            self.service_conn(token);
        }
    }
}

/// What one read from a socket gave.
enum ReadOutcome {
    /// Bytes arrived: execute them, then perhaps read again.
    Data,
    /// Nothing more for now (or the client closed its side).
    Drained,
    /// The connection is finished.
    Finished,
}

/// Whether the loop may read more from this connection now: everything it
/// sent has been executed (the input holds at most a partial request), it
/// waits for no worker, and its unsent output is under the high-water mark.
/// After a protocol error or at shutdown, input is read only to be dropped.
fn may_read(conn: &Conn) -> bool {
    if conn.discarding > 0 || conn.closing {
        return true;
    }
    !conn.waiting
        && !conn.session.quit
        && conn.replies.buf.len() - conn.written <= OUTPUT_HIGH_WATER
}

/// Reads one chunk through the loop's `chunk` buffer (one buffer for all
/// connections, so no per-read zeroing or allocation).
fn read_chunk(conn: &mut Conn, chunk: &mut [u8]) -> ReadOutcome {
    loop {
        match conn.stream.read(chunk) {
            Ok(0) => {
                // The client closed its side: answer what it sent, then close.
                conn.closing = true;
                conn.discarding = 0;
                return ReadOutcome::Drained;
            }
            Ok(n) => {
                conn.last_active = Instant::now();
                if conn.discarding > 0 {
                    conn.discarding = conn.discarding.saturating_sub(n);
                    if conn.discarding == 0 {
                        return ReadOutcome::Finished;
                    }
                } else if !conn.closing {
                    conn.input.extend_from_slice(&chunk[..n]);
                }
                return ReadOutcome::Data;
            }
            Err(err) if err.kind() == ErrorKind::WouldBlock => return ReadOutcome::Drained,
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(_) => return ReadOutcome::Finished,
        }
    }
}

/// Executes complete requests until one needs Redis or the output is full.
/// False when the connection is finished.
fn execute_input(
    conn: &mut Conn,
    token: Token,
    service: &Service,
    jobs: &Sender<Job>,
    live: usize,
) -> bool {
    let mut consumed = 0;
    while !conn.waiting && !conn.session.quit && conn.discarding == 0 {
        if conn.replies.buf.len() - conn.written > OUTPUT_HIGH_WATER {
            break;
        }
        match conn.parser.parse(&conn.input[consumed..]) {
            Ok(Some(request)) => {
                let frame = &conn.input[consumed..consumed + request.len];
                let args: Vec<&[u8]> = request.args.iter().map(|r| &frame[r.clone()]).collect();
                let step = execute(&args, &mut conn.session, &mut conn.replies, service, live);
                consumed += request.len;
                if let Step::Fetch(fetch) = step {
                    let job = Job {
                        token,
                        fetch,
                        protocol: conn.replies.protocol,
                    };
                    if jobs.send(job).is_err() {
                        return false;
                    }
                    conn.waiting = true;
                }
                if conn.session.quit {
                    conn.closing = true;
                }
            }
            Ok(None) => break,
            Err(err) => {
                conn.replies
                    .error(&format!("ERR Protocol error: {}", err.0));
                service.metrics().resp_request(false, Duration::ZERO);
                conn.closing = true;
                conn.discarding = DISCARD_LIMIT;
                conn.closing_since = Some(Instant::now());
                break;
            }
        }
    }
    conn.input.drain(..consumed);
    true
}

/// Writes pending output. False when the connection is finished.
fn write_output(conn: &mut Conn) -> bool {
    while conn.written < conn.replies.buf.len() {
        match conn.stream.write(&conn.replies.buf[conn.written..]) {
            Ok(0) => return false,
            Ok(n) => conn.written += n,
            Err(err) if err.kind() == ErrorKind::WouldBlock => return true,
            Err(err) if err.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    conn.replies.buf.clear();
    conn.written = 0;
    if conn.discarding > 0 && conn.closing_since.is_some() {
        // The error reply is out: half-close, then read and discard until
        // the client closes (or LINGER / DISCARD_LIMIT runs out).
        let _ = conn.stream.shutdown(Shutdown::Write);
    }
    true
}

/// Creates the poll, its waker and the shared state for a listener.
pub fn prepare() -> io::Result<(Poll, Arc<Waker>, Arc<Shared>)> {
    let poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let shared = Arc::new(Shared {
        live: AtomicUsize::new(0),
        stopping: AtomicBool::new(false),
    });
    Ok((poll, waker, shared))
}
