//! Connections to Redis that carry clients' own commands and bring back
//! Redis's replies as bytes, untouched (the forwarder's; see
//! docs/forwarding.md).
//!
//! The redis crate's connections decode every reply into `Value`, which
//! cannot give the bytes back; these speak the socket themselves, using
//! the crate only for what the URL says (address, user, password,
//! database). They open with the crate's handshake order: `HELLO 3` (with
//! `AUTH` in it) for a RESP3 client's connection, `AUTH` otherwise, then
//! `SELECT`.

pub mod frame;
pub mod invalidations;
mod skip;
mod stream;
mod upstream;
mod wait;

use std::io::{self, ErrorKind, Read, Write};
use std::sync::Arc;
use std::time::Duration;

use super::router::Staleness;
use super::slots::Addr;
use super::MasterWatch;
use frame::Framer;
use redis::{ConnectionAddr, ConnectionInfo};
use stream::Stream;
pub use stream::TlsRoots;
pub use upstream::{Taken, Upstream};
pub use wait::Wait;

/// Bytes read from Redis at a time.
const READ_CHUNK: usize = 16 * 1024;
/// A read buffer emptied above this size is given back.
const KEEP: usize = 256 * 1024;

/// One raw connection to a Redis node.
pub struct RawConn {
    stream: Stream,
    /// Bytes read but not yet handed out.
    input: Vec<u8>,
    framer: Framer,
    /// Whether it speaks RESP3 (after `HELLO 3`).
    pub resp3: bool,
    /// The database it has selected.
    pub db: i64,
    /// Which master it was opened to (sentinel mode's generation).
    pub generation: u64,
    /// Set after any failure: it must not be reused.
    pub broken: bool,
    /// Set when a read or write failed because the connection ended under
    /// it (Redis closed or reset it: a crash, a restart, `CLIENT KILL`, or
    /// the proxy shut it down), not for a failure of the proxy's own making
    /// (a timeout, a reply past RESP_MAX_REPLY_BYTES): a client holding it
    /// is then closed as Redis would have closed it (`resp/dedicated.rs`).
    pub ended: bool,
    /// REDIS_TIMEOUT_MS, for the proxy's own reads ([`Wait::Own`]).
    timeout: Duration,
    /// FORWARD_TIMEOUT_MS, for clients' commands ([`Wait::Forwarded`]):
    /// `None`, no bound (as opened; the backend sets it).
    pub(in crate::backend) forward_timeout: Option<Duration>,
    /// The socket's read and write timeouts as last set, and whose
    /// requests they are for (which setting a timeout names).
    reads: Option<Duration>,
    writes: Option<Duration>,
    wait: Wait,
    /// RESP_MAX_REPLY_BYTES on connections carrying clients' commands:
    /// the most one reply may make it hold (unbounded as opened).
    pub max_reply: usize,
    /// Cluster mode: the router's note that its slot map is out of date,
    /// and this node's address, for when the node answers `-MOVED` or
    /// `-READONLY` (see `Staleness::heard`), also on a connection a client
    /// holds, whose replies the router never reads.
    pub(in crate::backend) map_stale: Option<(Arc<Staleness>, Addr)>,
    /// Sentinel mode: the watch that shuts it down when the master changes
    /// (none elsewhere, and as opened).
    pub(in crate::backend) watch: MasterWatch,
    /// Called once the next client request is written ([`RawConn::send`];
    /// not the proxy's own HELLO or SELECT): a blocking command's caller
    /// learns its request is at Redis (see `resp/fence.rs`).
    after_send: Option<Box<dyn FnOnce() + Send>>,
}

impl RawConn {
    /// Opens a connection to the node `info` names, authenticated and in
    /// `info`'s database, speaking RESP3 if `resp3`. Connect, reads and
    /// writes are bounded by `timeout`.
    pub fn open(
        info: &ConnectionInfo,
        resp3: bool,
        timeout: Duration,
        roots: &TlsRoots,
    ) -> io::Result<RawConn> {
        let stream = match info.addr() {
            ConnectionAddr::Tcp(host, port) => Stream::tcp(host, *port, timeout)?,
            ConnectionAddr::TcpTls { host, port, .. } => Stream::tls(host, *port, timeout, roots)?,
            _ => {
                return Err(io::Error::new(
                    ErrorKind::Unsupported,
                    "only TCP addresses can carry forwarded commands",
                ))
            }
        };
        let mut conn = RawConn {
            stream,
            input: Vec::new(),
            framer: Framer::default(),
            resp3,
            db: 0,
            generation: 0,
            broken: false,
            ended: false,
            timeout,
            forward_timeout: None,
            // As `Stream::tcp` and `Stream::tls` left the socket.
            reads: Some(timeout),
            writes: Some(timeout),
            wait: Wait::Own,
            max_reply: usize::MAX,
            map_stale: None,
            watch: MasterWatch::none(),
            after_send: None,
        };
        let settings = info.redis_settings();
        let password = settings.password();
        let user = settings.username().unwrap_or("default");
        let mut hello: Vec<&[u8]> = Vec::new();
        if resp3 {
            hello.extend([b"HELLO".as_slice(), b"3"]);
            if let Some(password) = password {
                hello.extend([b"AUTH".as_slice(), user.as_bytes(), password.as_bytes()]);
            }
        } else if let Some(password) = password {
            hello.extend([b"AUTH".as_slice(), user.as_bytes(), password.as_bytes()]);
        }
        if !hello.is_empty() {
            conn.call(&hello)?;
        }
        conn.select(settings.db())?;
        Ok(conn)
    }

    /// Speaks RESP3 if `resp3`, else RESP2, switching with `HELLO` if it
    /// does not already: a client holding it (after WATCH) may switch with
    /// its own `HELLO`, which the proxy answers.
    pub fn speak(&mut self, resp3: bool) -> io::Result<()> {
        if resp3 != self.resp3 {
            let version: &[u8] = if resp3 { b"3" } else { b"2" };
            self.call(&[b"HELLO", version])?;
            self.resp3 = resp3;
        }
        Ok(())
    }

    /// Switches to database `db` if it is not there already.
    pub fn select(&mut self, db: i64) -> io::Result<()> {
        if db != self.db {
            let db_text = db.to_string();
            self.call(&[b"SELECT", db_text.as_bytes()])?;
            self.db = db;
        }
        Ok(())
    }

    /// Sends one command of the proxy's own and checks it was not refused
    /// (a refusal is an error of kind `PermissionDenied`).
    pub(in crate::backend) fn call(&mut self, argv: &[&[u8]]) -> io::Result<()> {
        let mut request = Vec::new();
        encode(argv, &mut request);
        self.write_out(&request)?;
        let mut reply = Vec::new();
        self.receive(&mut reply)?;
        if reply.first() == Some(&b'-') || reply.first() == Some(&b'!') {
            self.broken = true;
            let text = String::from_utf8_lossy(&reply);
            return Err(io::Error::new(
                ErrorKind::PermissionDenied,
                format!(
                    "Redis refused {}: {}",
                    String::from_utf8_lossy(argv[0]),
                    text.trim_end()
                ),
            ));
        }
        Ok(())
    }

    /// A round trip (`PING`): once it is answered, Redis has accepted this
    /// connection and polls it, so what is written on it next is read
    /// before what another connection sends later. A new connection that
    /// needed no HELLO, AUTH or SELECT has had none: Redis may still have
    /// it in its accept queue, and a request on it be overtaken. A refusal
    /// that leaves the connection usable (`-NOPERM`: a user without PING;
    /// `-BUSY`, `-LOADING`: the client's request gets Redis's own) is an
    /// answer too; any other error reply (max clients) fails, as
    /// [`RawConn::call`] does.
    pub fn ping(&mut self) -> io::Result<()> {
        let mut request = Vec::new();
        encode(&[b"PING"], &mut request);
        self.write_out(&request)?;
        let mut reply = Vec::new();
        self.receive(&mut reply)?;
        let usable = [&b"-NOPERM"[..], b"-BUSY", b"-LOADING"];
        if reply.first() == Some(&b'-') && !usable.iter().any(|p| reply.starts_with(p)) {
            self.broken = true;
            let text = String::from_utf8_lossy(&reply);
            return Err(io::Error::new(
                ErrorKind::PermissionDenied,
                format!("Redis refused PING: {}", text.trim_end()),
            ));
        }
        Ok(())
    }

    /// Writes `requests` (whole RESP frames) and flushes them, then calls
    /// the hook set by [`RawConn::after_next_send`], if any.
    pub fn send(&mut self, requests: &[u8]) -> io::Result<()> {
        let sent = self.write_out(requests);
        if let Some(hook) = self.after_send.take() {
            hook();
        }
        sent
    }

    /// Sets `hook` to be called once the next request is written (or
    /// fails to be); `None` drops the one set.
    pub fn after_next_send(&mut self, hook: Option<Box<dyn FnOnce() + Send>>) {
        self.after_send = hook;
    }

    fn write_out(&mut self, requests: &[u8]) -> io::Result<()> {
        let sent = self
            .stream
            .write_all(requests)
            .and_then(|()| self.stream.flush());
        if let Err(err) = &sent {
            self.broken = true;
            self.ended |= ended(err);
        }
        sent.map_err(|err| self.timed_out(err, self.writes))
    }

    /// Reads the next reply into `out`, exactly as Redis sent it (one
    /// larger than [`RawConn::max_reply`] is an error).
    pub fn receive(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        self.receive_within(out, self.max_reply)
    }

    /// Reads `count` replies into `out`, counting them in `answered`: a
    /// batch's replies, together at most [`RawConn::max_reply`] bytes (one
    /// client's batch is what one connection makes the proxy hold).
    pub fn receive_batch(
        &mut self,
        out: &mut Vec<u8>,
        count: usize,
        answered: &mut usize,
    ) -> io::Result<()> {
        let start = out.len();
        while *answered < count {
            let room = self.max_reply.saturating_sub(out.len() - start);
            self.receive_within(out, room)?;
            *answered += 1;
        }
        Ok(())
    }

    /// [`RawConn::receive`] of a reply of at most `room` bytes: a longer
    /// one is an error (of kind `InvalidData`, the connection broken) as
    /// soon as its header or the bytes read so far show it, so what it
    /// holds meanwhile is bounded by `room` plus one read.
    pub fn receive_within(&mut self, out: &mut Vec<u8>, room: usize) -> io::Result<()> {
        let start = out.len();
        let result = self.receive_inner(out, room);
        match (&result, &self.map_stale) {
            (Err(err), _) => {
                self.broken = true;
                self.ended |= ended(err);
            }
            (Ok(()), Some((stale, node))) => stale.heard(node, &out[start..]),
            (Ok(()), None) => {}
        }
        result
    }

    fn receive_inner(&mut self, out: &mut Vec<u8>, room: usize) -> io::Result<()> {
        loop {
            let framed = self
                .framer
                .next_within(&self.input, room)
                .map_err(|err| io::Error::new(ErrorKind::InvalidData, err.0))?;
            if let Some(len) = framed {
                out.extend_from_slice(&self.input[..len]);
                self.input.drain(..len);
                if self.input.is_empty() && self.input.capacity() > KEEP {
                    self.input = Vec::new();
                }
                return Ok(());
            }
            let start = self.input.len();
            self.input.resize(start + READ_CHUNK, 0);
            let read = loop {
                match self.stream.read(&mut self.input[start..]) {
                    Err(err) if err.kind() == ErrorKind::Interrupted => continue,
                    other => break other,
                }
            };
            match read {
                Ok(0) => {
                    self.input.truncate(start);
                    return Err(io::Error::new(
                        ErrorKind::UnexpectedEof,
                        "Redis closed the connection",
                    ));
                }
                Ok(n) => self.input.truncate(start + n),
                Err(err) => {
                    self.input.truncate(start);
                    return Err(self.timed_out(err, self.reads));
                }
            }
        }
    }
}

impl RawConn {
    /// Lets reads wait up to `wait` (the invalidation link's: it wakes at
    /// least that often to check on Redis).
    pub(in crate::backend) fn read_timeout(&mut self, wait: Duration) -> io::Result<()> {
        self.stream.tcp_ref().set_read_timeout(Some(wait))?;
        self.reads = Some(wait);
        Ok(())
    }

    /// Reads once into `into` (bytes already read and not handed out
    /// come first, without a read, as many as fit): the invalidation link
    /// reads whatever Redis has sent into a buffer it keeps, and takes it
    /// apart itself. Returns how many bytes were read; a read timeout is
    /// an error of kind `WouldBlock` or `TimedOut`, the end of the
    /// connection one of kind `UnexpectedEof`.
    pub(in crate::backend) fn read_some(&mut self, into: &mut [u8]) -> io::Result<usize> {
        if !self.input.is_empty() {
            let n = self.input.len().min(into.len());
            into[..n].copy_from_slice(&self.input[..n]);
            self.input.drain(..n);
            self.framer = Framer::default();
            return Ok(n);
        }
        let read = loop {
            match self.stream.read(into) {
                Err(err) if err.kind() == ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        match read {
            Ok(0) if !into.is_empty() => Err(io::Error::new(
                ErrorKind::UnexpectedEof,
                "Redis closed the connection",
            )),
            other => other,
        }
    }

    /// A handle on the socket that can close it from another thread (the
    /// client left while its blocking command waits), or write to it
    /// while another thread reads (plain TCP only: `None` over TLS).
    pub fn tcp_handle(&self) -> Option<std::net::TcpStream> {
        match &self.stream {
            Stream::Tcp(tcp) => tcp.try_clone().ok(),
            Stream::Tls(_) => None,
        }
    }

    /// Whether the connection is still usable as it sits in the pool: Redis
    /// has not closed it (a restart, its idle `timeout`) and sent nothing
    /// unasked. Checked before a batch goes out on it, since after a send
    /// nobody can tell whether Redis read the batch: a batch is never sent
    /// twice. A peek that does not wait: three system calls.
    pub fn alive(&self) -> bool {
        if !self.input.is_empty() {
            return false;
        }
        let tcp = self.stream.tcp_ref();
        if tcp.set_nonblocking(true).is_err() {
            return false;
        }
        let mut byte = [0u8; 1];
        let quiet = matches!(tcp.peek(&mut byte), Err(err) if err.kind() == ErrorKind::WouldBlock);
        tcp.set_nonblocking(false).is_ok() && quiet
    }

    /// A handle that can only shut the socket down (TLS included).
    pub fn closer(&self) -> io::Result<std::net::TcpStream> {
        self.stream.tcp_ref().try_clone()
    }
}

/// Whether `err` says the connection itself ended (closed or reset by
/// the other side, or shut down here): see [`RawConn::ended`].
pub fn ended(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        ErrorKind::UnexpectedEof
            | ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::BrokenPipe
    )
}

/// Appends `argv` as a RESP array of bulk strings.
pub fn encode(argv: &[&[u8]], out: &mut Vec<u8>) {
    let mut number = itoa::Buffer::new();
    out.push(b'*');
    out.extend_from_slice(number.format(argv.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    for arg in argv {
        out.push(b'$');
        out.extend_from_slice(number.format(arg.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}
