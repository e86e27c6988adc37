//! Bytes to requests: the part of RESP2 a Redis server accepts from clients.
//!
//! A request is either an array of bulk strings (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`)
//! or an inline command (`GET k\r\n`, as telnet or redis-benchmark's
//! PING_INLINE send it; `SET k "a b"` quoted as Redis's `sdssplitargs`
//! reads it, see `parse_inline.rs`). Nothing else: no nested arrays, no
//! other types. That restriction is Redis's own (`processMultibulkBuffer`
//! and `processInlineBuffer` in its `networking.c`) and is what makes the
//! parser safe on hostile input: there is no recursion to overflow, and the
//! limits below are Redis's.
//!
//! The parser checks before it builds: [`Parser::parse`] walks the buffer
//! without allocating anything sized by the input's declared lengths, returns
//! `Ok(None)` until a whole request has arrived, and then returns the
//! argument positions and the bytes consumed. A declared length is never
//! allocated up front: the caller's buffer only ever holds what arrived.
//!
//! A [`Parser`] remembers how far it got in a request that has not fully
//! arrived (the arguments found, the line searched so far), so a request
//! delivered in any number of pieces costs O(its length) in all, not a
//! re-parse from its start on every read.

use std::ops::Range;

/// Most arguments in one request (Redis: 1024*1024).
pub const MAX_ARGS: usize = 1024 * 1024;
/// Largest request, all its arguments together, unless the parser is
/// given another ([`Parser::with_limit`]: RESP_MAX_REQUEST_BYTES, whose
/// default this is). Forwarded writes carry values, which Redis takes up
/// to 512 MB (`proto-max-bulk-len`); a request larger than the limit is
/// refused as soon as its declared lengths say so, and one connection
/// never makes the proxy buffer more than the limit plus one read.
pub const MAX_REQUEST: usize = 64 * 1024 * 1024;
/// Longest inline command or length line (Redis: 64 KiB).
pub const MAX_LINE: usize = 64 * 1024;
/// Most arguments, and longest argument, in a request from a client that
/// has not given PROXY_PASSWORD yet: Redis's own bounds for a client not
/// authenticated (`processMultibulkBuffer`), so that such a client makes
/// the proxy hold at most some 160 KiB, not RESP_MAX_REQUEST_BYTES.
pub const UNAUTHENTICATED: (usize, usize) = (10, 16 * 1024);

#[path = "parse_error.rs"]
mod error;
pub use error::ProtocolError;

/// One complete request: where each argument lies in the buffer passed to
/// [`Parser::parse`], and how many bytes it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Byte ranges of the arguments, the command name first. Empty for an
    /// empty inline line, which Redis ignores.
    pub args: Vec<Range<usize>>,
    /// Bytes consumed from the front of the buffer.
    pub len: usize,
}

/// Parses the request at the front of `buf` from scratch: `Ok(None)` if it
/// has not fully arrived yet. For one-off buffers (tests, fuzzing). As
/// [`Parser::parse`], it may rewrite a quoted inline line in place.
pub fn parse(buf: &mut [u8]) -> Result<Option<Request>, ProtocolError> {
    Parser::default().parse(buf)
}

/// A connection's parser: what it has learnt of the request at the front
/// of the connection's buffer. Between calls the caller may append bytes to
/// that buffer but must not move the request's start.
#[derive(Debug)]
pub struct Parser {
    /// Largest request taken, all its arguments together.
    limit: usize,
    /// Under [`UNAUTHENTICATED`]'s bounds until the client authenticates
    /// ([`Parser::bound`]).
    bounded: bool,
    /// `bounded` or a line `held`: [`Parser::parse_at`]'s cold path.
    slow: bool,
    /// Arguments found so far.
    args: Vec<Range<usize>>,
    /// The array's declared count, once its header line is in.
    count: Option<usize>,
    /// Where the next argument starts.
    pos: usize,
    /// How far the line being looked for has been searched.
    scanned: usize,
    /// Whether the last inline line parsed was rewritten in place (it had
    /// quotes): set by the parse, read by [`Parser::parse_at`].
    rewrote: bool,
    /// What a rewritten line parsed to, and where in the connection's
    /// stream it starts: a caller that parses a request and leaves it for
    /// a later turn (a batch to answer first) parses the same bytes again,
    /// which after the rewrite would read as another request.
    held: Option<(u64, Result<Request, ProtocolError>)>,
}

/// Largest argument list a parser keeps for the next request: a
/// pipeline's usual requests then parse without allocating, while one
/// huge request's list is not held for the connection's life.
const RECYCLED_ARGS: usize = 64;

impl Default for Parser {
    fn default() -> Parser {
        Parser::with_limit(MAX_REQUEST)
    }
}

impl Parser {
    /// A parser refusing requests larger than `limit` bytes.
    pub fn with_limit(limit: usize) -> Parser {
        Parser {
            limit,
            bounded: false,
            slow: false,
            args: Vec::new(),
            count: None,
            pos: 0,
            scanned: 0,
            rewrote: false,
            held: None,
        }
    }

    /// [`Parser::parse`] of the request starting `at` bytes into the
    /// connection's stream (the bytes consumed before `buf`'s start). A
    /// quoted inline line is rewritten by its parse, so when it is parsed
    /// again at the same place (its request was left for a later turn) it
    /// gets what its first parse found, not a parse of the rewritten bytes.
    #[inline]
    pub fn parse_at(&mut self, buf: &mut [u8], at: u64) -> Result<Option<Request>, ProtocolError> {
        if self.slow {
            return self.parse_at_slowly(buf, at);
        }
        let outcome = self.parse(buf);
        if self.rewrote {
            self.hold(at, &outcome);
        }
        outcome
    }

    /// What the rewritten line at `at` parsed to, if that is the line held;
    /// else forgets the held one (its request was consumed).
    #[cold]
    fn held_at(&mut self, at: u64) -> Option<Result<Option<Request>, ProtocolError>> {
        match &self.held {
            Some((start, outcome)) if *start == at => Some(outcome.clone().map(Some)),
            _ => {
                self.held = None;
                None
            }
        }
    }

    /// Keeps what a rewritten line at `at` parsed to (see `parse_at`).
    #[cold]
    fn hold(&mut self, at: u64, outcome: &Result<Option<Request>, ProtocolError>) {
        self.rewrote = false;
        let kept = match outcome {
            Ok(Some(request)) => Ok(request.clone()),
            Err(err) => Err(err.clone()),
            Ok(None) => return,
        };
        self.held = Some((at, kept));
        self.slow = true;
    }

    /// Takes back a parsed request's argument list (`Request::args`) once
    /// it is read, for the next request to be parsed into.
    pub fn recycle(&mut self, mut args: Vec<Range<usize>>) {
        if self.args.capacity() == 0 && args.capacity() <= RECYCLED_ARGS {
            args.clear();
            self.args = args;
        }
    }

    /// Parses the request at the front of `buf`, carrying on from the last
    /// call: `Ok(None)` if it has not fully arrived yet. After a request or
    /// an error, the parser starts afresh.
    ///
    /// `buf` is mutable for inline commands with quotes only: their
    /// arguments are unquoted in place, within the request's own line
    /// (`parse_inline.rs`), so every argument is still a range of `buf`
    /// and arrays, the usual requests, cost nothing more. Bytes past the
    /// request are never touched.
    #[inline]
    pub fn parse(&mut self, buf: &mut [u8]) -> Result<Option<Request>, ProtocolError> {
        let result = match buf.first() {
            None => return Ok(None),
            Some(b'*') => self.parse_array(buf),
            Some(_) => self.parse_inline(buf),
        };
        if !matches!(result, Ok(None)) {
            // Afresh for the next request, field by field: `rewrote` and
            // `held` are `parse_at`'s, and a whole new parser would move
            // them on every request.
            self.args = Vec::new();
            self.count = None;
            self.pos = 0;
            self.scanned = 0;
        }
        result
    }

    /// The end of the line starting at `from` (the index of its `\r`), or
    /// None if the line has not arrived; an error if it is longer than
    /// `MAX_LINE`, its `*` or `$` (just before `from`) counted, as Redis
    /// counts it: 64 KiB with no line end yet is still awaited, one byte
    /// more is refused. Resumes where the last search for it stopped.
    fn line_end(
        &mut self,
        buf: &[u8],
        from: usize,
        too_long: &'static str,
    ) -> Result<Option<usize>, ProtocolError> {
        let limit = buf.len().min(from + MAX_LINE + 2);
        let start = self.scanned.max(from);
        if let Some(i) = buf.get(start..limit).and_then(memchr_crlf) {
            self.scanned = 0;
            return Ok(Some(start + i));
        }
        if limit.saturating_sub(from) >= MAX_LINE {
            return Err(ProtocolError::new(too_long));
        }
        // A `\r` at the very end may yet be followed by its `\n`.
        self.scanned = limit.saturating_sub(1).max(from);
        Ok(None)
    }

    fn parse_array(&mut self, buf: &[u8]) -> Result<Option<Request>, ProtocolError> {
        let count = match self.count {
            Some(count) => count,
            None => {
                let (count, end) = match digits_line(buf, 1) {
                    Some((count, end)) => {
                        self.scanned = 0;
                        (count, end)
                    }
                    None => {
                        let Some(end) = self.line_end(buf, 1, "too big mbulk count string")? else {
                            return Ok(None);
                        };
                        let count = parse_len(&buf[1..end], i64::MIN, MAX_ARGS as i64)
                            .ok_or(ProtocolError::new("invalid multibulk length"))?;
                        // `*0` and `*-1` are empty requests, which Redis
                        // skips.
                        (usize::try_from(count).unwrap_or(0), end)
                    }
                };
                if count > MAX_ARGS {
                    return Err(ProtocolError::new("invalid multibulk length"));
                }
                self.count = Some(count);
                self.pos = end + 2;
                count
            }
        };
        while self.args.len() < count {
            let pos = self.pos;
            match buf.get(pos) {
                None => return Ok(None),
                Some(b'$') => {}
                Some(_) => return self.not_a_bulk(buf, pos),
            }
            let (len, end) = match digits_line(buf, pos + 1) {
                // The usual line, whole: its digits read as it is found.
                Some((len, end)) => {
                    self.scanned = 0;
                    (len, end)
                }
                None => {
                    let Some(end) = self.line_end(buf, pos + 1, "too big bulk count string")?
                    else {
                        return Ok(None);
                    };
                    let len = parse_len(&buf[pos + 1..end], 0, self.limit as i64)
                        .ok_or(ProtocolError::new("invalid bulk length"))?;
                    (len as usize, end)
                }
            };
            if len > self.limit {
                return Err(ProtocolError::new("invalid bulk length"));
            }
            let start = end + 2;
            // Cannot overflow: len <= limit (RESP_MAX_REQUEST_BYTES, at
            // most 512 MiB) and start indexes memory.
            let stop = start + len;
            if stop + 2 > self.limit {
                return Err(ProtocolError::new("request too large for the proxy"));
            }
            if buf.len() < stop + 2 {
                // Only the length line is looked at again next time.
                return Ok(None);
            }
            if &buf[stop..stop + 2] != b"\r\n" {
                return Err(ProtocolError::new("bulk string not terminated by CRLF"));
            }
            self.args.push(start..stop);
            self.pos = stop + 2;
        }
        Ok(Some(Request {
            args: std::mem::take(&mut self.args),
            len: self.pos,
        }))
    }

    /// Another byte where a bulk string's `$` belongs (at `pos`), as Redis
    /// 7.0 answers it: it looks for the line's `\r` first, in a C string
    /// (`strchr`), and names the byte only once that `\r` and one byte
    /// after it are in (`expected '$', got 'x'`, the byte raw: a `\r` or
    /// `\n` the reply writer makes a space). A NUL before the `\r` (the
    /// byte itself, say) ends the C string: the line never ends, and more
    /// is awaited until it passes 64 KiB (`too big bulk count string`), so
    /// a NUL is never named. Resumes where the last search stopped.
    #[cold]
    fn not_a_bulk(&mut self, buf: &[u8], pos: usize) -> Result<Option<Request>, ProtocolError> {
        let window_end = buf.len().min(pos + MAX_LINE + 2);
        let start = self.scanned.max(pos).min(window_end);
        let found = buf[start..window_end]
            .iter()
            .position(|&b| b == b'\r' || b == 0)
            .map(|i| start + i);
        match found {
            Some(at) if buf[at] == b'\r' => {
                if at + 1 < buf.len() {
                    return Err(ProtocolError {
                        reason: "expected '$'",
                        got: Some(buf[pos]),
                    });
                }
                // The byte after the `\r` is still to come.
                self.scanned = at;
                return Ok(None);
            }
            // A NUL: nothing after it is searched.
            Some(at) => self.scanned = at,
            None => self.scanned = window_end,
        }
        if buf.len() - pos > MAX_LINE {
            return Err(ProtocolError::new("too big bulk count string"));
        }
        Ok(None)
    }

    /// An inline command: the line up to the first `\n` (a `\r` before
    /// it dropped), split as Redis splits it. As at Redis, whose search
    /// for the `\n` is a C string's (`strchr`), a NUL byte before it means
    /// the line never ends: more is awaited until the line is too long.
    fn parse_inline(&mut self, buf: &mut [u8]) -> Result<Option<Request>, ProtocolError> {
        // Inline commands may end in a bare `\n`, as telnet sends them.
        let window_end = buf.len().min(MAX_LINE + 1);
        let start = self.scanned.min(window_end);
        let found = buf[start..window_end]
            .iter()
            .position(|&b| b == b'\n' || b == 0);
        let newline = match found.map(|i| start + i) {
            Some(at) if buf[at] == b'\n' => at,
            found => {
                if buf.len() > MAX_LINE {
                    return Err(ProtocolError::new("too big inline request"));
                }
                // After a NUL, nothing more is searched.
                self.scanned = found.unwrap_or(window_end);
                return Ok(None);
            }
        };
        let line_end = if newline > 0 && buf[newline - 1] == b'\r' {
            newline - 1
        } else {
            newline
        };
        let mut args = std::mem::take(&mut self.args);
        match inline::split(&mut buf[..line_end], &mut args) {
            Ok(rewrote) => self.rewrote = rewrote,
            Err(_) => {
                self.rewrote = true;
                return Err(ProtocolError::new("unbalanced quotes in request"));
            }
        }
        Ok(Some(Request {
            args,
            len: newline + 1,
        }))
    }
}

fn memchr_crlf(bytes: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = bytes[from..].iter().position(|&b| b == b'\r') {
        let at = from + i;
        match bytes.get(at + 1) {
            Some(b'\n') => return Some(at),
            Some(_) => from = at + 1,
            None => return None,
        }
    }
    None
}

#[path = "parse_len.rs"]
mod lengths;
use lengths::{digits_line, parse_len};

#[path = "parse_bounds.rs"]
mod bounds;

#[path = "parse_inline.rs"]
mod inline;

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
