//! One RESP connection: its socket, buffers and state, and the steps the
//! event loop drives it through (read a chunk, execute, write).
//!
//! Flow control lives here: a connection is read only while everything it
//! sent has been executed, it waits for no worker, and its unsent output is
//! under the high-water mark. Otherwise further requests stay in the kernel's
//! buffers (and then the client's own send blocks), so what one connection
//! holds is bounded: one partial request (at most RESP_MAX_REQUEST_BYTES), one
//! read, and about `OUTPUT_HIGH_WATER` of replies (plus the last reply, which
//! may be one large value).

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use crate::service::Service;

use crate::service::Held;

use super::cancel::Cancel;
use super::dedicated::Subscription;
use super::execute::ByName;
use super::parse::Parser;
use super::reply::Protocol;
use super::reply::Replies;
use super::session::Session;
use super::transport::Transport;

/// Stop executing a connection's input while this much output is unsent, so
/// a client that does not read cannot make us buffer without bound.
pub(super) const OUTPUT_HIGH_WATER: usize = 4 * 1024 * 1024;
/// How much tracking output a connection may have waiting to be sent: a
/// tracking client that does not read its pushes is closed past it, as
/// Redis closes one over its output buffer limit (closing also empties its
/// client-side cache, so nothing stale survives).
const PUSH_LIMIT: usize = 2 * OUTPUT_HIGH_WATER;
/// After a protocol error, how much of the client's further input is read
/// and discarded (so the close does not reset the error reply away).
pub(super) const DISCARD_LIMIT: usize = 4 * 1024 * 1024;
/// An emptied input buffer larger than this is given back, so one large
/// request (a 4 MB argument) does not leave its connection holding 4 MB.
pub(super) const INPUT_KEEP: usize = 64 * 1024;
/// Most requests in one forwarded batch.
pub(super) const BATCH_REQUESTS: usize = 128;
/// A forwarded batch is sent once it holds this many bytes.
pub(super) const BATCH_BYTES: usize = 512 * 1024;
/// How long a closing connection may take to send its last bytes.
pub const LINGER: Duration = Duration::from_secs(1);

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Reading and executing requests.
    Open,
    /// A worker is reading for it: nothing more of its input runs until the
    /// reply is in; `then` says what comes after.
    Waiting { then: Then },
    /// Answer what was asked, then close: after QUIT or the client's end of
    /// input (`since` None: no deadline but the idle timeout, if set), or at
    /// shutdown (`since`: at most `LINGER` more).
    Closing { since: Option<Instant> },
    /// After a protocol error: once the error reply is out, the write side
    /// is shut and input is read and dropped (at most `left` more bytes, for
    /// at most `LINGER`) until the client closes.
    Discarding { left: usize, since: Instant },
}

/// What a waiting connection does once its worker's reply is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Then {
    /// Goes on reading and executing.
    Continue,
    /// Closes, as [`State::Closing`] with this `since` (its input ended, or
    /// a shutdown came, meanwhile).
    Close { since: Option<Instant> },
}

/// What one read from a socket gave.
pub enum ReadOutcome {
    /// Bytes arrived: execute them, then perhaps read again.
    Data,
    /// Nothing more for now (or the client closed its side).
    Drained,
    /// The connection is finished.
    Finished,
}

/// One client's connection.
pub struct Conn {
    pub transport: Transport,
    pub session: Session,
    pub(super) input: Vec<u8>,
    /// Progress through the partial request at the front of `input`.
    pub(super) parser: Parser,
    /// Bytes of the client's stream consumed before `input`'s start: where
    /// a request is, for [`Parser::parse_at`].
    pub(super) stream_at: u64,
    pub(super) replies: Replies,
    /// Bytes of `replies.buf` already written.
    pub(super) written: usize,
    /// Tracking messages that arrived while a reply was being fetched: they
    /// go out after it.
    pub(super) pushes: Vec<u8>,
    pub state: State,
    /// When it last sent a request or was written a reply or a push: its
    /// idle clock (CLIENT_IDLE_TIMEOUT_SECS), restarted on both, as Redis
    /// restarts its own (`lastinteraction`) when it writes, so a client
    /// whose blocking command outlasted the timeout is not closed after
    /// its reply. A write only sets `wrote`; the sweep restarts the clock
    /// (so the write path reads no clock, and the clock is late by at most
    /// a sweep's 250 ms).
    pub last_active: Instant,
    /// Output was written since the sweep last looked.
    pub(super) wrote: bool,
    /// The blocking command running for it, to cancel if it leaves.
    pub(super) blocked: Option<Cancel>,
    /// The client closed its side while its blocking command waited (not
    /// the proxy's shutdown): see [`Conn::deliver`].
    left_blocked: bool,
    /// Its Pub/Sub subscription, once it has one: its commands go there.
    pub(super) subscription: Option<Subscription>,
    /// The socket has nothing more to read until poll says otherwise: the
    /// last read came back short (plain TCP) or would have blocked. Polling
    /// is edge-triggered and reports every arrival after that, so the read
    /// that would only say "nothing yet" is saved (one system call a
    /// request, as the reply's write is followed by no read).
    drained: bool,
    /// Poll said the client closed its side or the socket failed (a FIN or
    /// an RST, perhaps in the same wake-up as its last bytes): a short read
    /// no longer means the socket is empty, as only a further read returns
    /// the end or the error, and no further event would come for it.
    peer_closed: bool,
    /// What the last request's name decided (`execute_by_name.rs`).
    pub(super) by_name: ByName,
}

impl Conn {
    /// A new connection, numbered `id` for `CLIENT ID`, in database `db`,
    /// taking requests of at most `max_request` bytes.
    pub fn new(transport: Transport, id: u64, db: i64, max_request: usize) -> Conn {
        Conn {
            transport,
            session: Session::new(id, db),
            input: Vec::new(),
            parser: Parser::with_limit(max_request),
            stream_at: 0,
            replies: Replies::new(),
            written: 0,
            pushes: Vec::new(),
            state: State::Open,
            last_active: Instant::now(),
            wrote: false,
            blocked: None,
            left_blocked: false,
            subscription: None,
            drained: false,
            peer_closed: false,
            by_name: ByName::default(),
        }
    }

    /// Poll reported the socket readable, or (`closed`) the client's end
    /// or an error: read it again, and after an end or an error until the
    /// read itself says so.
    pub fn readable(&mut self, closed: bool) {
        self.drained = false;
        self.peer_closed |= closed;
    }

    /// The loop stops reading (`may_read` is false): a blocked client
    /// that kept `INPUT_KEEP` of input and then left would never be read
    /// to its end, so poll's word is taken for it, as a read of the end
    /// would have been (its blocking command cut short, nothing popped on
    /// its behalf). Other connections not read now are read again once
    /// their reply is in or their output drains, and see the end then.
    pub fn not_reading(&mut self) {
        if self.peer_closed && self.blocked.is_some() {
            self.input_ended();
        }
    }

    /// The client closed its side (or, blocked, was seen to leave): answer
    /// what it sent, then close. Its end is passed on to the connection of
    /// a blocking command of its own, behind the request (`cancel.rs`).
    fn input_ended(&mut self) {
        if let Some(blocked) = &self.blocked {
            blocked.cancel();
            self.left_blocked = true;
        }
        self.state = match self.state {
            State::Waiting {
                then: Then::Continue,
            } => State::Waiting {
                then: Then::Close { since: None },
            },
            State::Open | State::Discarding { .. } => State::Closing { since: None },
            other => other,
        };
    }

    pub(super) fn unsent(&self) -> usize {
        self.replies.buf.len() - self.written
    }

    /// True while its unsent output is over the high-water mark: no more of
    /// its input runs (`execute_input`), so some may be waiting, already
    /// read, for the output to drain.
    pub(super) fn over_high_water(&self) -> bool {
        self.unsent() > OUTPUT_HIGH_WATER
    }

    /// True once the connection has nothing left to do but close.
    pub fn is_done(&self) -> bool {
        match self.state {
            State::Closing { .. } => self.unsent() == 0 && !self.transport.has_pending(),
            _ => false,
        }
    }

    /// When a lingering connection must be closed, if it is lingering.
    pub fn linger_since(&self) -> Option<Instant> {
        match self.state {
            State::Closing { since } => since,
            State::Discarding { since, .. } => Some(since),
            State::Open | State::Waiting { .. } => None,
        }
    }

    /// Begins a graceful close (shutdown): answer what was asked, then go.
    pub fn close_gracefully(&mut self, now: Instant) {
        if let Some(blocked) = self.blocked.take() {
            blocked.shut_down();
        }
        self.subscription = None;
        let close = Then::Close { since: Some(now) };
        self.state = match self.state {
            State::Open => State::Closing { since: Some(now) },
            State::Waiting {
                then: Then::Continue,
            } => State::Waiting { then: close },
            other => other,
        };
    }

    /// The protocol the connection speaks.
    pub fn protocol(&self) -> Protocol {
        self.replies.protocol
    }

    /// A tracking message: at once between replies, or after the reply
    /// being fetched, so it never comes before a value it invalidates.
    pub fn push(&mut self, message: impl FnOnce(&mut Vec<u8>)) {
        match self.state {
            State::Waiting { .. } => message(&mut self.pushes),
            _ => message(&mut self.replies.buf),
        }
    }

    /// True when the client has let more than `PUSH_LIMIT` of output pile
    /// up: it must be closed rather than buffered for without bound.
    pub fn over_push_limit(&self) -> bool {
        self.unsent() + self.pushes.len() > PUSH_LIMIT
    }

    /// A worker's reply: append it (and the messages that waited for it)
    /// and carry on, holding the Redis connection that came back with it
    /// (forwarded batches only).
    ///
    /// A client that closed its side while its blocking command waited
    /// (ioredis's `disconnect()` half-closes) had its end passed on behind
    /// the command, so Redis decided as for the client itself: a whole
    /// reply (Redis answered before it read the end) is written and the
    /// rest runs, unless the client's WATCH ended with the command's
    /// connection (it would run unwatched); no reply (the empty one,
    /// `dedicated.rs`: Redis freed the client while it blocked) means
    /// nothing more is written or run, as Redis never runs a blocked
    /// client's further input.
    pub fn deliver(&mut self, reply: &[u8], held: Option<Held>, forwarded: bool) {
        let left = forwarded && std::mem::take(&mut self.left_blocked);
        let unwatched = held.is_none() && self.session.transaction.engaged();
        if forwarded {
            self.session.transaction.returned(held);
            self.blocked = None;
        }
        if left && (reply.is_empty() || unwatched) {
            // As after QUIT: the rest of its input is never executed.
            self.session.quit = true;
        }
        if left && reply.is_empty() {
            self.pushes.clear();
        } else {
            self.replies.buf.extend_from_slice(reply);
            self.replies.buf.append(&mut self.pushes);
        }
        self.state = match self.state {
            State::Waiting {
                then: Then::Continue,
            } => State::Open,
            State::Waiting {
                then: Then::Close { since },
            } => State::Closing { since },
            other => other,
        };
    }

    /// Whether the loop may read more from this connection now: everything
    /// it sent has been executed (the input holds at most a partial
    /// request), it waits for no worker, and its unsent output is under the
    /// high-water mark. While closing or discarding, input is read only to
    /// be dropped.
    pub fn may_read(&self) -> bool {
        match self.state {
            State::Open => !self.session.quit && !self.over_high_water(),
            // Blocked: read on, to see the client leave (and keep what
            // it sends meanwhile, up to a bound; past it, poll's word that
            // it left is taken: `not_reading`).
            State::Waiting { .. } => self.blocked.is_some() && self.input.len() < INPUT_KEEP,
            State::Closing { .. } | State::Discarding { .. } => true,
        }
    }

    /// Reads one chunk through the loop's `chunk` buffer (one buffer for all
    /// connections, so no per-read zeroing or allocation).
    pub fn read_chunk(&mut self, chunk: &mut [u8]) -> ReadOutcome {
        if self.drained {
            return ReadOutcome::Drained;
        }
        loop {
            match self.transport.read(chunk) {
                Ok(0) => {
                    self.input_ended();
                    return ReadOutcome::Drained;
                }
                Ok(n) => {
                    // A short read emptied the socket (TLS may hold more
                    // decrypted: read it until it would block), unless the
                    // client's end or an error waits behind it (8c48cac
                    // missed that: a client whose last bytes and close came
                    // in one wake-up was never closed).
                    self.drained =
                        n < chunk.len() && self.transport.is_plain() && !self.peer_closed;
                    self.last_active = Instant::now();
                    match &mut self.state {
                        State::Discarding { left, .. } => {
                            *left = left.saturating_sub(n);
                            if *left == 0 {
                                return ReadOutcome::Finished;
                            }
                        }
                        State::Open => self.input.extend_from_slice(&chunk[..n]),
                        State::Waiting { .. } if self.blocked.is_some() => {
                            self.input.extend_from_slice(&chunk[..n]);
                        }
                        State::Closing { .. } | State::Waiting { .. } => {}
                    }
                    return ReadOutcome::Data;
                }
                Err(err) if err.kind() == ErrorKind::WouldBlock => {
                    self.drained = true;
                    return ReadOutcome::Drained;
                }
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(_) => return ReadOutcome::Finished,
            }
        }
    }

    /// Waits for a reply from elsewhere (a worker, a dedicated connection):
    /// nothing more of the input runs until it is in.
    pub(super) fn wait(&mut self) {
        let then = match self.state {
            State::Closing { since } => Then::Close { since },
            _ => Then::Continue,
        };
        self.state = State::Waiting { then };
    }

    /// Answers an error the proxy gives itself.
    pub(super) fn refuse(&mut self, message: &str, service: &Service) {
        service.error_replied(message);
        self.replies.error(message);
    }

    /// Writes pending output. False when the connection is finished.
    pub fn write_output(&mut self) -> bool {
        match self.transport.flush() {
            Ok(()) => {}
            Err(err) if err.kind() == ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        }
        while self.written < self.replies.buf.len() {
            match self.transport.write(&self.replies.buf[self.written..]) {
                Ok(0) => return false,
                Ok(n) => {
                    self.written += n;
                    self.wrote = true;
                }
                Err(err) if err.kind() == ErrorKind::WouldBlock => return true,
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        self.replies.buf.clear();
        self.written = 0;
        if matches!(self.state, State::Discarding { .. }) {
            // The error reply is out: half-close, then read and discard
            // until the client closes (or LINGER / DISCARD_LIMIT runs out).
            self.transport.shutdown_write();
        }
        true
    }
}
