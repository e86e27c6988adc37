//! Bytes to requests: the part of RESP2 a Redis server accepts from clients.
//!
//! A request is either an array of bulk strings (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`)
//! or an inline command (`GET k\r\n`, as telnet or redis-benchmark's
//! PING_INLINE send it). Nothing else: no nested arrays, no other types. That
//! restriction is Redis's own (`processMultibulkBuffer` and
//! `processInlineBuffer` in its `networking.c`) and is what makes the parser
//! safe on hostile input: there is no recursion to overflow, and the limits
//! below are Redis's.
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

/// A request whose bytes are not valid RESP. The connection answers
/// `-ERR Protocol error: <message>` and closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub &'static str);

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
/// has not fully arrived yet. For one-off buffers (tests, fuzzing).
pub fn parse(buf: &[u8]) -> Result<Option<Request>, ProtocolError> {
    Parser::default().parse(buf)
}

/// A connection's parser: what it has learnt of the request at the front
/// of the connection's buffer. Between calls the caller may append bytes to
/// that buffer but must not move the request's start.
#[derive(Debug)]
pub struct Parser {
    /// Largest request taken, all its arguments together.
    limit: usize,
    /// Arguments found so far.
    args: Vec<Range<usize>>,
    /// The array's declared count, once its header line is in.
    count: Option<usize>,
    /// Where the next argument starts.
    pos: usize,
    /// How far the line being looked for has been searched.
    scanned: usize,
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
            args: Vec::new(),
            count: None,
            pos: 0,
            scanned: 0,
        }
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
    pub fn parse(&mut self, buf: &[u8]) -> Result<Option<Request>, ProtocolError> {
        let result = match buf.first() {
            None => return Ok(None),
            Some(b'*') => self.parse_array(buf),
            Some(_) => self.parse_inline(buf),
        };
        if !matches!(result, Ok(None)) {
            *self = Parser::with_limit(self.limit);
        }
        result
    }

    /// The end of the line starting at `from` (the index of its `\r`), or
    /// None if the line has not arrived; an error if it is longer than
    /// `MAX_LINE`. Resumes where the last search for it stopped.
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
        if limit.saturating_sub(from) > MAX_LINE {
            return Err(ProtocolError(too_long));
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
                            .ok_or(ProtocolError("invalid multibulk length"))?;
                        // `*0` and `*-1` are empty requests, which Redis
                        // skips.
                        (usize::try_from(count).unwrap_or(0), end)
                    }
                };
                if count > MAX_ARGS {
                    return Err(ProtocolError("invalid multibulk length"));
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
                Some(_) => return Err(ProtocolError("expected '$'")),
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
                        .ok_or(ProtocolError("invalid bulk length"))?;
                    (len as usize, end)
                }
            };
            if len > self.limit {
                return Err(ProtocolError("invalid bulk length"));
            }
            let start = end + 2;
            // Cannot overflow: len <= limit (RESP_MAX_REQUEST_BYTES, at
            // most 512 MiB) and start indexes memory.
            let stop = start + len;
            if stop + 2 > self.limit {
                return Err(ProtocolError("request too large for the proxy"));
            }
            if buf.len() < stop + 2 {
                // Only the length line is looked at again next time.
                return Ok(None);
            }
            if &buf[stop..stop + 2] != b"\r\n" {
                return Err(ProtocolError("bulk string not terminated by CRLF"));
            }
            self.args.push(start..stop);
            self.pos = stop + 2;
        }
        Ok(Some(Request {
            args: std::mem::take(&mut self.args),
            len: self.pos,
        }))
    }

    fn parse_inline(&mut self, buf: &[u8]) -> Result<Option<Request>, ProtocolError> {
        // Inline commands may end in a bare `\n`, as telnet sends them.
        let window_end = buf.len().min(MAX_LINE + 1);
        let start = self.scanned.min(window_end);
        let Some(i) = buf[start..window_end].iter().position(|&b| b == b'\n') else {
            if window_end > MAX_LINE {
                return Err(ProtocolError("too big inline request"));
            }
            self.scanned = window_end;
            return Ok(None);
        };
        let newline = start + i;
        let line_end = if newline > 0 && buf[newline - 1] == b'\r' {
            newline - 1
        } else {
            newline
        };
        let mut args = Vec::new();
        let mut i = 0;
        while i < line_end {
            while i < line_end && buf[i].is_ascii_whitespace() {
                i += 1;
            }
            let start = i;
            while i < line_end && !buf[i].is_ascii_whitespace() {
                i += 1;
            }
            if i > start {
                args.push(start..i);
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

/// The common case of a bulk length line, read in one pass: digits only
/// (at most 18) from `from`, then CRLF, all arrived: the number and where
/// its `\r` is. Anything else (a sign, another byte, the line not all
/// there) is `None`, for the general path to decide.
fn digits_line(buf: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut n = 0usize;
    for (i, &byte) in buf.get(from..)?.iter().enumerate().take(19) {
        match byte {
            b'0'..=b'9' => n = n * 10 + usize::from(byte - b'0'),
            b'\r' if i > 0 && buf.get(from + i + 1) == Some(&b'\n') => return Some((n, from + i)),
            _ => return None,
        }
    }
    None
}

/// A decimal length between `min` and `max`, as Redis writes them: optional
/// `-`, digits only, no `+`, no spaces.
fn parse_len(digits: &[u8], min: i64, max: i64) -> Option<i64> {
    let (negative, digits) = match digits.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, digits),
    };
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let magnitude = digits
        .iter()
        .fold(0i64, |n, d| n * 10 + i64::from(d - b'0'));
    let n = if negative { -magnitude } else { magnitude };
    (min..=max).contains(&n).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(buf: &[u8]) -> Vec<&[u8]> {
        let request = parse(buf).expect("valid").expect("complete");
        request.args.iter().map(|r| &buf[r.clone()]).collect()
    }

    #[test]
    fn arrays_of_bulk_strings() {
        let buf = b"*2\r\n$3\r\nGET\r\n$5\r\nhe\r\no\r\n";
        assert_eq!(args(buf), vec![&b"GET"[..], b"he\r\no"]);
        assert_eq!(parse(buf).expect("ok").expect("some").len, buf.len());
        assert_eq!(args(b"*1\r\n$0\r\n\r\n"), vec![&b""[..]]);
    }

    #[test]
    fn a_recycled_list_takes_the_next_request() {
        let buf = b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n*3\r\n$5\r\nLPUSH\r\n$1\r\nl\r\n$1\r\nv\r\n";
        let mut parser = Parser::default();
        let first = parser.parse(buf).expect("valid").expect("complete");
        assert_eq!(first.args, vec![8..11, 17..18]);
        let pointer = first.args.as_ptr();
        parser.recycle(first.args);
        let second = parser
            .parse(&buf[first.len..])
            .expect("valid")
            .expect("complete");
        assert_eq!(second.args, vec![8..13, 19..20, 26..27]);
        assert_eq!(
            second.args.as_ptr(),
            pointer,
            "parsed into the recycled list"
        );
        // A huge request's list is not kept.
        parser.recycle(Vec::with_capacity(RECYCLED_ARGS + 1));
        assert_eq!(parser.args.capacity(), 0);
    }

    #[test]
    fn inline_commands() {
        assert_eq!(args(b"PING\r\n"), vec![&b"PING"[..]]);
        assert_eq!(args(b"  GET   key \n"), vec![&b"GET"[..], b"key"]);
        assert!(args(b"\r\n").is_empty());
    }

    #[test]
    fn incomplete_until_the_last_byte() {
        let buf = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
        for cut in 0..buf.len() {
            assert_eq!(parse(&buf[..cut]), Ok(None), "cut at {cut}");
        }
        assert!(parse(buf).expect("ok").is_some());
    }

    #[test]
    fn absurd_lengths_are_errors_not_allocations() {
        for bad in [
            &b"*99999999999\r\n"[..],
            b"*1048577\r\n",
            b"*1\r\n$99999999999\r\n",
            b"*1\r\n$536870913\r\n",
            b"*1\r\n$-1\r\n",
            b"*x\r\n",
            b"*1\r\n+OK\r\n",
            b"*1\r\n*1\r\n",
            b"*1\r\n$1\r\nab\r\n",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        // A large but legal declared length just waits for the bytes.
        assert_eq!(parse(b"*1\r\n$67108000\r\nabc"), Ok(None));
        assert_eq!(parse(b"*1048576\r\n"), Ok(None));
        // Beyond what the proxy takes in one request: refused at once.
        assert!(parse(b"*1\r\n$67108864\r\n").is_err());
        assert!(parse(b"*1\r\n$524288000\r\n").is_err());
        assert!(parse(b"*3\r\n$3\r\nGET\r\n$67000000\r\n").is_ok());
        let mut two_big = b"*3\r\n$4\r\nMGET\r\n$40000000\r\n".to_vec();
        two_big.extend(vec![b'a'; 40_000_000]);
        two_big.extend(b"\r\n$40000000\r\n");
        assert!(parse(&two_big).is_err());
    }

    #[test]
    fn length_lines_in_any_form_and_any_pieces_parse_as_whole() {
        let requests: &[&[u8]] = &[
            b"*3\r\n$5\r\nLPUSH\r\n$19\r\nmylist:000000000042\r\n$3\r\nxxx\r\n",
            b"*03\r\n$003\r\nGET\r\n$01\r\nk\r\n$0\r\n\r\n",
            b"*2\r\n$-0\r\n\r\n$1\r\nk\r\n",
            b"*-1\r\n",
            b"*0\r\n",
            b"*1\r\n$+1\r\nk\r\n",
            b"*1\r\n$1 \r\nk\r\n",
            b"*1\r\n$\r\n\r\n",
            b"*\r\n",
            b"*1\r\n$1234567890123456789\r\n",
            b"*1\r\n$1\rk\r\n",
        ];
        for wire in requests {
            let whole = parse(wire);
            for cut in 0..wire.len() {
                let mut parser = Parser::default();
                let first = parser.parse(&wire[..cut]);
                let outcome = match first {
                    Ok(None) => parser.parse(wire),
                    other => other,
                };
                assert_eq!(
                    outcome,
                    whole,
                    "{:?} cut at {cut}",
                    String::from_utf8_lossy(wire)
                );
            }
        }
        assert_eq!(args(requests[0])[1], b"mylist:000000000042");
        assert_eq!(args(requests[1]), vec![&b"GET"[..], b"k", b""]);
        assert_eq!(args(requests[2]), vec![&b""[..], b"k"]);
        for bad in &requests[5..] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn a_request_in_pieces_is_walked_once() {
        // A 100k-argument MGET arriving a few bytes at a time: the resumed
        // parser looks at each byte a bounded number of times.
        let mut wire = b"*100001\r\n$4\r\nMGET\r\n".to_vec();
        for i in 0..100_000 {
            let key = format!("k{i:06}");
            wire.extend(format!("${}\r\n{key}\r\n", key.len()).bytes());
        }
        let mut parser = Parser::default();
        let mut outcome = Ok(None);
        for end in (0..=wire.len()).step_by(7).chain([wire.len()]) {
            outcome = parser.parse(&wire[..end]);
            if !matches!(outcome, Ok(None)) {
                break;
            }
        }
        let request = outcome.expect("valid").expect("complete");
        assert_eq!(request.args.len(), 100_001);
        assert_eq!(request.len, wire.len());
    }

    #[test]
    fn overlong_lines_are_errors() {
        let long = vec![b'a'; MAX_LINE + 1];
        assert!(parse(&long).is_err());
        let mut count = b"*".to_vec();
        count.extend(std::iter::repeat_n(b'1', MAX_LINE + 1));
        assert!(parse(&count).is_err());
    }

    #[test]
    fn a_request_past_the_parsers_limit_is_refused_once_declared() {
        let limit = 2 * 1024 * 1024;
        let mut parser = Parser::with_limit(limit);
        // A declared length past the limit: refused before any of it came.
        let over = format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${}\r\n", limit + 1);
        assert_eq!(
            parser.parse(over.as_bytes()),
            Err(ProtocolError("invalid bulk length"))
        );
        // Arguments that fit one by one but not together.
        let half = limit / 2;
        let mut two = format!("*3\r\n$3\r\nSET\r\n${half}\r\n").into_bytes();
        two.extend(std::iter::repeat_n(b'k', half));
        two.extend_from_slice(format!("\r\n${half}\r\n").as_bytes());
        assert_eq!(
            parser.parse(&two),
            Err(ProtocolError("request too large for the proxy"))
        );
        // The limit outlives the errors and requests that reset the parser.
        let mut fits = format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${}\r\n", limit - 64).into_bytes();
        fits.extend(std::iter::repeat_n(b'v', limit - 64));
        fits.extend_from_slice(b"\r\n");
        let request = parser.parse(&fits).expect("valid").expect("whole");
        assert_eq!(request.len, fits.len());
        assert!(parser.parse(over.as_bytes()).is_err());
        // The default is MAX_REQUEST.
        let mut default = Parser::default();
        let declared = format!("*2\r\n$3\r\nGET\r\n${}\r\n", MAX_REQUEST + 1);
        assert!(default.parse(declared.as_bytes()).is_err());
        let declared = format!("*2\r\n$3\r\nGET\r\n${}\r\n", MAX_REQUEST / 2);
        assert_eq!(default.parse(declared.as_bytes()), Ok(None));
    }
}
