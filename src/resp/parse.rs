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
//! The parser checks before it builds: [`parse`] walks the buffer without
//! allocating anything sized by the input's declared lengths, returns
//! `Ok(None)` until a whole request has arrived, and then returns the
//! argument positions and the bytes consumed. A declared length is never
//! allocated up front: the caller's buffer only ever holds what arrived.

use std::ops::Range;

/// Most arguments in one request (Redis: 1024*1024).
pub const MAX_ARGS: usize = 1024 * 1024;
/// Largest bulk string (Redis's `proto-max-bulk-len` default, 512 MB).
pub const MAX_BULK_LEN: usize = 512 * 1024 * 1024;
/// Longest inline command or length line (Redis: 64 KiB).
pub const MAX_LINE: usize = 64 * 1024;

/// A request whose bytes are not valid RESP. The connection answers
/// `-ERR Protocol error: <message>` and closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub &'static str);

/// One complete request: where each argument lies in the buffer passed to
/// [`parse`], and how many bytes it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Byte ranges of the arguments, the command name first. Empty for an
    /// empty inline line, which Redis ignores.
    pub args: Vec<Range<usize>>,
    /// Bytes consumed from the front of the buffer.
    pub len: usize,
}

/// Parses the request at the front of `buf`: `Ok(None)` if it has not fully
/// arrived yet.
pub fn parse(buf: &[u8]) -> Result<Option<Request>, ProtocolError> {
    match buf.first() {
        None => Ok(None),
        Some(b'*') => parse_array(buf),
        Some(_) => parse_inline(buf),
    }
}

/// The end of the line starting at `from` (the index of its `\r`), or None
/// if the line has not arrived; an error if it is longer than `MAX_LINE`.
fn line_end(
    buf: &[u8],
    from: usize,
    too_long: &'static str,
) -> Result<Option<usize>, ProtocolError> {
    let window = &buf[from..buf.len().min(from + MAX_LINE + 2)];
    match memchr_crlf(window) {
        Some(i) => Ok(Some(from + i)),
        None if window.len() > MAX_LINE => Err(ProtocolError(too_long)),
        None => Ok(None),
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

fn parse_array(buf: &[u8]) -> Result<Option<Request>, ProtocolError> {
    let Some(end) = line_end(buf, 1, "too big mbulk count string")? else {
        return Ok(None);
    };
    let count = parse_len(&buf[1..end], i64::MIN, MAX_ARGS as i64)
        .ok_or(ProtocolError("invalid multibulk length"))?;
    let mut pos = end + 2;
    // `*0` and `*-1` are empty requests, which Redis skips.
    let count = usize::try_from(count).unwrap_or(0);
    // Grow with what arrives, never with what is declared.
    let mut args = Vec::with_capacity(count.min(16));
    for _ in 0..count {
        match buf.get(pos) {
            None => return Ok(None),
            Some(b'$') => {}
            Some(_) => return Err(ProtocolError("expected '$'")),
        }
        let Some(end) = line_end(buf, pos + 1, "too big bulk count string")? else {
            return Ok(None);
        };
        let len = parse_len(&buf[pos + 1..end], 0, MAX_BULK_LEN as i64)
            .ok_or(ProtocolError("invalid bulk length"))? as usize;
        let start = end + 2;
        // start + len + 2 cannot overflow: len <= 512 MB and start is an
        // index into a buffer in memory.
        let stop = start + len;
        if buf.len() < stop + 2 {
            return Ok(None);
        }
        if &buf[stop..stop + 2] != b"\r\n" {
            return Err(ProtocolError("bulk string not terminated by CRLF"));
        }
        args.push(start..stop);
        pos = stop + 2;
    }
    Ok(Some(Request { args, len: pos }))
}

fn parse_inline(buf: &[u8]) -> Result<Option<Request>, ProtocolError> {
    // Inline commands may end in a bare `\n`, as telnet sends them.
    let window = &buf[..buf.len().min(MAX_LINE + 1)];
    let Some(newline) = window.iter().position(|&b| b == b'\n') else {
        if window.len() > MAX_LINE {
            return Err(ProtocolError("too big inline request"));
        }
        return Ok(None);
    };
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
        assert_eq!(parse(b"*1\r\n$536870912\r\nabc"), Ok(None));
        assert_eq!(parse(b"*1048576\r\n"), Ok(None));
    }

    #[test]
    fn overlong_lines_are_errors() {
        let long = vec![b'a'; MAX_LINE + 1];
        assert!(parse(&long).is_err());
        let mut count = b"*".to_vec();
        count.extend(std::iter::repeat_n(b'1', MAX_LINE + 1));
        assert!(parse(&count).is_err());
    }
}
