//! A raw connection turned non-blocking, for the RESP event loop to drive
//! itself: many clients' forwarded batches are queued on it during one turn
//! of the loop and written together, and Redis's replies are framed as they
//! arrive (twemproxy's shape: one server connection, a FIFO of requests
//! outstanding on it, replies matched by position).
//!
//! Why: handing every batch to a worker thread and its replies back through
//! a channel cost the proxy more in wake-ups (futex waits, context switches)
//! than in work. Here the loop that read the clients' requests writes them
//! to Redis and reads the replies back without another thread.
//!
//! It is opened and handshaken blocking (`RawConn::open`, off the loop),
//! then only ever read and written without waiting. Plain TCP only: a TLS
//! connection stays on the workers' blocking path.

use std::io::{self, ErrorKind, Read, Write};

use super::frame::{Framer, TOO_LARGE};
use super::skip::Skip;
use super::stream::Stream;
use super::RawConn;
use crate::backend::forward::{classify, MASTER_LEFT};
use crate::backend::{BackendError, MasterWatch};

/// The client name the event loop's connections carry at Redis.
pub const NAME: &str = "redis-proxy-loop";
/// An emptied buffer larger than this is given back.
const KEEP: usize = 256 * 1024;
/// Most bytes one [`Upstream::read`] takes before the replies are framed
/// (and a batch past RESP_MAX_REPLY_BYTES is refused): what comes faster
/// than that waits in the socket.
const READ_BUDGET: usize = KEEP;

/// One non-blocking connection to Redis carrying pipelined batches.
pub struct Upstream {
    socket: mio::net::TcpStream,
    /// Requests queued and not yet written.
    out: Vec<u8>,
    /// Bytes of `out` already written.
    written: usize,
    /// Bytes read and not yet handed out, from `head` on.
    input: Vec<u8>,
    head: usize,
    /// The end of the replies framed so far (from `head`) and how many.
    scanned: usize,
    framed: usize,
    /// Whether a reply framed so far (from `head`) is an error.
    errors: bool,
    framer: Framer,
    /// The replies of a refused batch still being dropped as they come
    /// (from `head`, which `scanned` then equals): the next batch's come
    /// after them.
    skip: Option<Skip>,
    /// RESP_MAX_REPLY_BYTES: the most one batch's replies may be.
    max_reply: usize,
    /// Which master it was opened to (sentinel mode's generation).
    pub generation: u64,
    /// Poll said Redis closed it (or it failed): a short read no longer
    /// means the socket is empty (the end may wait behind the last reply).
    closed: bool,
    /// Sentinel mode: shuts it down when the master changes, so batches
    /// pending on a hung old master fail then (see `RawConn::watch`).
    watch: MasterWatch,
}

impl Upstream {
    /// Takes over `conn` (opened and handshaken, nothing pending on it),
    /// names it [`NAME`] at Redis (so `CLIENT LIST` there tells the loop's
    /// connections from the rest; a refusal, by ACL say, is ignored), then
    /// makes it non-blocking. Blocks for the naming: call it off the loop.
    /// Fails for a TLS connection, or one with bytes already waiting.
    pub fn take_over(mut conn: RawConn) -> Result<Upstream, BackendError> {
        if !conn.input.is_empty() || conn.broken {
            return Err(BackendError::Unavailable(
                "the connection has unread replies".to_owned(),
            ));
        }
        let mut request = Vec::new();
        super::encode(&[b"CLIENT", b"SETNAME", NAME.as_bytes()], &mut request);
        let mut reply = Vec::new();
        conn.send(&request)
            .and_then(|()| conn.receive(&mut reply))
            .map_err(|err| classify(&err))?;
        let RawConn {
            stream,
            generation,
            max_reply,
            watch,
            ..
        } = conn;
        let Stream::Tcp(tcp) = stream else {
            return Err(BackendError::Unavailable(
                "a TLS connection is not driven by the event loop".to_owned(),
            ));
        };
        tcp.set_nonblocking(true).map_err(|err| classify(&err))?;
        let mut upstream =
            Upstream::with_socket(mio::net::TcpStream::from_std(tcp), max_reply, generation);
        upstream.watch = watch;
        Ok(upstream)
    }

    /// A connection with nothing queued or read yet, on a socket already
    /// non-blocking (the unit tests' too).
    fn with_socket(socket: mio::net::TcpStream, max_reply: usize, generation: u64) -> Upstream {
        Upstream {
            socket,
            out: Vec::new(),
            written: 0,
            input: Vec::new(),
            head: 0,
            scanned: 0,
            framed: 0,
            errors: false,
            framer: Framer::default(),
            skip: None,
            max_reply,
            generation,
            closed: false,
            watch: MasterWatch::none(),
        }
    }

    /// Poll reported Redis's end or an error: [`Upstream::read`] reads on
    /// until the socket says so itself.
    pub fn peer_closed(&mut self) {
        self.closed = true;
    }

    /// The socket, to register with the event loop's poll.
    pub fn source(&mut self) -> &mut mio::net::TcpStream {
        &mut self.socket
    }

    /// Queues whole RESP requests, to go out with the next [`flush`].
    ///
    /// [`flush`]: Upstream::flush
    pub fn queue(&mut self, requests: &[u8]) {
        self.out.extend_from_slice(requests);
    }

    /// Bytes queued and not yet written: what bounds further queueing.
    pub fn unsent(&self) -> usize {
        self.out.len() - self.written
    }

    /// Writes what is queued, as far as the socket takes it now.
    pub fn flush(&mut self) -> Result<(), BackendError> {
        while self.written < self.out.len() {
            match self.socket.write(&self.out[self.written..]) {
                Ok(0) => return Err(self.failed(closed())),
                Ok(n) => self.written += n,
                Err(err) if err.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(err) => return Err(self.failed(classify(&err))),
            }
        }
        self.out.clear();
        self.written = 0;
        if self.out.capacity() > KEEP {
            self.out = Vec::new();
        }
        Ok(())
    }

    /// Reads what Redis has sent so far through `chunk`, up to a budget:
    /// true when the socket is empty, false when more may wait (take the
    /// replies, then read again: polling is edge-triggered, and reports
    /// only what arrives next). The bytes read stay in, to be taken with
    /// [`Upstream::take`], even when the read then fails (Redis answered,
    /// then closed).
    pub fn read(&mut self, chunk: &mut [u8]) -> Result<bool, BackendError> {
        let mut budget = READ_BUDGET;
        loop {
            match self.socket.read(chunk) {
                Ok(0) => return Err(self.failed(closed())),
                Ok(n) => {
                    self.input.extend_from_slice(&chunk[..n]);
                    // A short read emptied the socket (unless Redis's
                    // end waits behind it).
                    if n < chunk.len() && !self.closed {
                        return Ok(true);
                    }
                    budget = budget.saturating_sub(n);
                    if budget == 0 {
                        return Ok(false);
                    }
                }
                Err(err) if err.kind() == ErrorKind::WouldBlock => return Ok(true),
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(err) => return Err(self.failed(classify(&err))),
            }
        }
    }

    /// `err`, or [`MASTER_LEFT`] if the sentinels named another master
    /// since it was opened (which shut it down).
    fn failed(&self, err: BackendError) -> BackendError {
        match self.watch.changed() {
            true => BackendError::Unavailable(MASTER_LEFT.to_owned()),
            false => err,
        }
    }

    /// The next batch's `count` replies once all are in (`None` until
    /// then: the scan resumes where it stopped), or, as soon as what came
    /// shows they pass RESP_MAX_REPLY_BYTES, the refusal
    /// ([`Taken::TooLarge`]): then the rest of them is dropped as it comes,
    /// and the next call takes the next batch's replies, which follow. An
    /// error means the bytes are not RESP: the connection is unusable.
    pub fn take(&mut self, count: usize) -> Result<Option<Taken<'_>>, BackendError> {
        if self.skip.is_some() && !self.skip_on()? {
            return Ok(None);
        }
        while self.framed < count {
            let room = self.max_reply.saturating_sub(self.scanned - self.head);
            match self.framer.next_within(&self.input[self.scanned..], room) {
                Ok(Some(len)) => {
                    self.errors |= matches!(self.input[self.scanned], b'-' | b'!');
                    self.scanned += len;
                    self.framed += 1;
                }
                Ok(None) => return Ok(None),
                Err(err) if err == TOO_LARGE => return Ok(Some(self.refuse(count))),
                Err(err) => return Err(BackendError::Unavailable(err.0.to_owned())),
            }
        }
        let replies = &self.input[self.head..self.scanned];
        let errors = std::mem::take(&mut self.errors);
        self.head = self.scanned;
        self.framed = 0;
        Ok(Some(Taken::Replies(replies, errors)))
    }

    /// The batch of `count` replies being framed passed the bound: hands
    /// out those in whole before the one that passed it, and starts
    /// dropping the rest (that one from where the framer stopped in it,
    /// then the batch's replies after it).
    fn refuse(&mut self, count: usize) -> Taken<'_> {
        let (pos, owed) = self.framer.give_up();
        let more = count.saturating_sub(self.framed + 1);
        self.skip = Some(Skip::new(owed, more));
        let answered = self.head..self.scanned;
        self.head = self.scanned + pos;
        self.scanned = self.head;
        self.framed = 0;
        self.errors = false;
        Taken::TooLarge(&self.input[answered])
    }

    /// Drops what has come of a refused batch's replies: true once they
    /// are all gone (or none were being dropped).
    fn skip_on(&mut self) -> Result<bool, BackendError> {
        let Some(skip) = self.skip.as_mut() else {
            return Ok(true);
        };
        let (used, done) = skip
            .skip(&self.input[self.head..])
            .map_err(|err| BackendError::Unavailable(err.0.to_owned()))?;
        self.head += used;
        self.scanned = self.head;
        if done {
            self.skip = None;
        }
        Ok(done)
    }

    /// The replies of the next batch that are in whole so far, handed out
    /// (after a failure: those are delivered, the rest fail).
    pub fn take_answered(&mut self) -> &[u8] {
        let replies = &self.input[self.head..self.scanned];
        self.head = self.scanned;
        self.framed = 0;
        self.errors = false;
        replies
    }

    /// Whether bytes are left over that no batch asked for (not those of
    /// a refused batch's replies being dropped).
    pub fn has_unclaimed(&self) -> bool {
        self.skip.is_none() && self.input.len() > self.head
    }

    /// Forgets the replies handed out, and drops what came of a refused
    /// batch's (after a read's batches are done, so what a refused reply
    /// makes the connection hold is about one read's worth). An error
    /// means the bytes are not RESP: the connection is unusable.
    pub fn compact(&mut self) -> Result<(), BackendError> {
        self.skip_on()?;
        if self.head == 0 {
            return Ok(());
        }
        self.input.drain(..self.head);
        self.scanned -= self.head;
        self.head = 0;
        if self.input.is_empty() && self.input.capacity() > KEEP {
            self.input = Vec::new();
        }
        Ok(())
    }
}

/// A batch's replies as [`Upstream::take`] hands them out.
#[derive(Debug, PartialEq, Eq)]
pub enum Taken<'a> {
    /// All of them, back to back exactly as Redis sent them, and whether
    /// any is an error reply (when none is, the counting need not frame
    /// them again).
    Replies(&'a [u8], bool),
    /// They pass RESP_MAX_REPLY_BYTES ([`TOO_LARGE`]): only the first ones,
    /// in whole before the bound was passed, are here. The rest are being
    /// dropped as they come; only this batch's client is refused, and the
    /// connection goes on with the next batch.
    TooLarge(&'a [u8]),
}

fn closed() -> BackendError {
    classify(&io::Error::new(
        ErrorKind::UnexpectedEof,
        "Redis closed the connection",
    ))
}

#[cfg(test)]
#[path = "upstream_tests.rs"]
mod tests;
