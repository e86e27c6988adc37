//! Where one Redis reply ends, in RESP2 or RESP3, without decoding it.
//!
//! The forwarder passes replies on exactly as Redis sent them, so it needs
//! only their boundaries: no values are built, a bulk string is skipped by
//! its length, and the framer resumes where the last read left off, so a
//! reply that arrives in many reads is scanned once. (The `redis` crate
//! decodes into `Value`, which cannot give the bytes back: `*-1` and `$-1`
//! both become `Nil`, a RESP3 double loses its text. `redis-protocol`
//! decodes into frames too; see docs/dependencies.md.)

/// Why the bytes are not RESP: the link is then unusable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameError(pub &'static str);

/// Deepest nesting accepted: Redis's own replies nest a few levels.
pub(super) const MAX_DEPTH: usize = 64;
/// Longest header line (type byte, number, CRLF) for aggregates and bulks;
/// simple strings and errors may be longer.
pub(super) const MAX_NUMBER_LINE: usize = 24;

/// What a reply (or a batch's replies) larger than the proxy relays is
/// refused with. A blocking connection is then unusable; the event loop's
/// skips the rest of the reply ([`super::skip::Skip`]) and goes on.
pub const TOO_LARGE: FrameError = FrameError("reply larger than RESP_MAX_REPLY_BYTES");

/// A resumable scan for the end of the next reply in a buffer.
#[derive(Debug, Default)]
pub struct Framer {
    /// Where the next element to scan starts.
    pos: usize,
    /// Elements still owed by each enclosing aggregate.
    owed: Vec<u64>,
}

impl Framer {
    /// The length of the complete reply at the start of `buf`, if it is all
    /// there; otherwise `None`, and the next call (with the same bytes and
    /// more after them) goes on from where this one stopped. After a
    /// complete reply the framer starts afresh, for the next one at
    /// `buf[len..]`.
    pub fn next(&mut self, buf: &[u8]) -> Result<Option<usize>, FrameError> {
        self.next_within(buf, usize::MAX)
    }

    /// [`Framer::next`] for a reply of at most `room` bytes: one said or
    /// seen to be longer is [`TOO_LARGE`] as soon as its header (or the
    /// bytes so far) show it, so what waits for a reply is bounded by
    /// `room` plus one read.
    ///
    /// A whole reply of one short line (`+OK`, `:1`, an error), the usual
    /// reply to a write, is framed at once, inlined into the caller's
    /// loop; anything else (or such a line not all there, too long, or
    /// past the room) the general way, which finds the same.
    #[inline]
    pub fn next_within(&mut self, buf: &[u8], room: usize) -> Result<Option<usize>, FrameError> {
        if self.pos == 0 && self.owed.is_empty() {
            if let Some(len) = short_line(buf) {
                if len <= room {
                    return Ok(Some(len));
                }
            }
        }
        self.scan(buf, room)
    }

    /// [`Framer::next_within`], element by element.
    fn scan(&mut self, buf: &[u8], room: usize) -> Result<Option<usize>, FrameError> {
        loop {
            let left = room.saturating_sub(self.pos);
            let Some(step) = element(&buf[self.pos..], left)? else {
                return Ok(None);
            };
            if step.len > left {
                return Err(TOO_LARGE);
            }
            self.pos += step.len;
            if step.children > 0 {
                if self.owed.len() >= MAX_DEPTH {
                    return Err(FrameError("replies nested too deep"));
                }
                self.owed.push(step.children);
                continue;
            }
            // One element done: settle the aggregates it completes.
            loop {
                match self.owed.last_mut() {
                    None => {
                        let len = self.pos;
                        self.pos = 0;
                        return Ok(Some(len));
                    }
                    Some(owed) => {
                        *owed -= 1;
                        if *owed > 0 {
                            break;
                        }
                        self.owed.pop();
                    }
                }
            }
        }
    }

    /// Gives up the reply being framed, after [`TOO_LARGE`]: how far into
    /// it the scan got (the element that passed the room starts there),
    /// and the elements still owed by each aggregate enclosing that one,
    /// for a [`super::skip::Skip`] to go on from. The framer starts afresh.
    pub(super) fn give_up(&mut self) -> (usize, Vec<u64>) {
        let pos = std::mem::take(&mut self.pos);
        (pos, std::mem::take(&mut self.owed))
    }
}

/// One element's own bytes: its header (and a bulk's body), and how many
/// elements follow as its children.
struct Step {
    len: usize,
    children: u64,
}

/// The element at the start of `buf`, if its header (and body) are all
/// there; one of more than `room` bytes is [`TOO_LARGE`] once that shows.
fn element(buf: &[u8], room: usize) -> Result<Option<Step>, FrameError> {
    let Some(&kind) = buf.first() else {
        return Ok(None);
    };
    let Some(line_end) = newline(buf) else {
        if buf.len() > MAX_NUMBER_LINE && !matches!(kind, b'+' | b'-' | b'(' | b',') {
            return Err(FrameError("a reply header without an end"));
        }
        if buf.len() > room {
            return Err(TOO_LARGE);
        }
        return Ok(None);
    };
    if line_end < 2 || buf[line_end - 1] != b'\r' {
        return Err(FrameError("a reply line not ended by CRLF"));
    }
    let line = &buf[1..line_end - 1];
    let header = line_end + 1;
    let leaf = Step {
        len: header,
        children: 0,
    };
    match kind {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Ok(Some(leaf)),
        _ => match counted(kind, line)? {
            Counted::Nil => Ok(Some(leaf)),
            Counted::Children(children) => Ok(Some(Step {
                len: header,
                children,
            })),
            Counted::Body(body) => {
                let total = usize::try_from(body)
                    .ok()
                    .and_then(|body| header.checked_add(body)?.checked_add(2))
                    .ok_or(FrameError("a bulk length out of range"))?;
                if total > room {
                    return Err(TOO_LARGE);
                }
                if buf.len() < total {
                    return Ok(None);
                }
                if &buf[total - 2..total] != b"\r\n" {
                    return Err(FrameError("a bulk string not ended by CRLF"));
                }
                Ok(Some(Step {
                    len: total,
                    children: 0,
                }))
            }
        },
    }
}

/// The length of the one-line reply at the start of `buf` (a simple
/// string, an error, an integer, or RESP3's null, double, boolean or big
/// number), if its CRLF is within its first 16 bytes.
#[inline]
fn short_line(buf: &[u8]) -> Option<usize> {
    const SHORT: usize = 16;
    if !matches!(buf.first()?, b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(') {
        return None;
    }
    let head = &buf[..buf.len().min(SHORT)];
    let line_end = head.iter().position(|&b| b == b'\n')?;
    (line_end >= 2 && head[line_end - 1] == b'\r').then_some(line_end + 1)
}

/// Where the first `\n` of `buf` is. Most reply lines are short (`+OK`,
/// `:1`, a bulk's or an array's header): a plain loop over the first
/// bytes finds their end in fewer instructions than `memchr`'s call and
/// setup, which takes over past them.
fn newline(buf: &[u8]) -> Option<usize> {
    const SHORT: usize = 16;
    let (head, rest) = buf.split_at(buf.len().min(SHORT));
    match head.iter().position(|&b| b == b'\n') {
        Some(at) => Some(at),
        None => memchr::memchr(b'\n', rest).map(|at| SHORT + at),
    }
}

/// What the header line of a bulk or an aggregate says follows it.
pub(super) enum Counted {
    /// Nothing: a null (`$-1`, `*-1`).
    Nil,
    /// A body of this many bytes, then CRLF.
    Body(u64),
    /// This many elements.
    Children(u64),
}

/// Reads the `line` (without its type byte and CRLF) of an element of
/// type `kind` that is not a simple line: shared by the framer and the
/// skip ([`super::skip::Skip`]), which must agree on every reply's length.
pub(super) fn counted(kind: u8, line: &[u8]) -> Result<Counted, FrameError> {
    match kind {
        b'$' | b'!' | b'=' => {
            if line == b"-1" {
                return Ok(Counted::Nil);
            }
            Ok(Counted::Body(number(line).ok_or(NOT_A_NUMBER)?))
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            if kind == b'*' && line == b"-1" {
                return Ok(Counted::Nil);
            }
            let count = number(line).ok_or(NOT_A_NUMBER)?;
            let children = match kind {
                b'%' => count.checked_mul(2),
                // An attribute map, then the reply it annotates.
                b'|' => count.checked_mul(2).and_then(|n| n.checked_add(1)),
                _ => Some(count),
            }
            .ok_or(FrameError("an aggregate length out of range"))?;
            Ok(Counted::Children(children))
        }
        _ => Err(FrameError("an unknown reply type")),
    }
}

/// What a header whose length is not a number is.
const NOT_A_NUMBER: FrameError = FrameError("a length that is not a number");

/// A non-negative decimal number of at most 19 digits (so it cannot
/// overflow): a header's length. Shared with `invalidations`, which reads
/// the lengths of frames this framer has checked.
pub(super) fn number(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| match d {
        b'0'..=b'9' => Some(n * 10 + u64::from(d - b'0')),
        _ => None,
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    fn whole(reply: &[u8]) -> Option<usize> {
        Framer::default().next(reply).expect("valid")
    }

    /// A reply of every type the framer knows, RESP2 and RESP3 (the
    /// skip's tests take them too).
    pub(in crate::backend::raw) const EVERY_TYPE: &[&[u8]] = &[
        b"+OK\r\n",
        b"-ERR wrong\r\n",
        b":42\r\n",
        b"$-1\r\n",
        b"*-1\r\n",
        b"$0\r\n\r\n",
        b"$5\r\nab\r\nc\r\n",
        b"*2\r\n$1\r\na\r\n*1\r\n:1\r\n",
        b"*0\r\n",
        b"_\r\n",
        b",3.14\r\n",
        b"#t\r\n",
        b"(12345678901234567890\r\n",
        b"!3\r\nerr\r\n",
        b"=7\r\ntxt:abc\r\n",
        b"%2\r\n+a\r\n:1\r\n+b\r\n%0\r\n",
        b"~1\r\n+x\r\n",
        b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n",
        b"|1\r\n+key\r\n+val\r\n:5\r\n",
    ];

    #[test]
    fn every_reply_type_is_framed_exactly() {
        for reply in EVERY_TYPE {
            assert_eq!(
                whole(reply),
                Some(reply.len()),
                "{:?}",
                String::from_utf8_lossy(reply)
            );
            let mut two = reply.to_vec();
            two.extend_from_slice(b"+next\r\n");
            assert_eq!(whole(&two), Some(reply.len()));
            for cut in 0..reply.len() {
                assert_eq!(whole(&reply[..cut]), None, "cut at {cut}");
            }
        }
    }

    #[test]
    fn a_reply_arriving_byte_by_byte_is_framed_once_whole() {
        let reply = b"*3\r\n$3\r\nabc\r\n*2\r\n:1\r\n:2\r\n%1\r\n+k\r\n$-1\r\n";
        let mut framer = Framer::default();
        for end in 1..reply.len() {
            assert_eq!(framer.next(&reply[..end]), Ok(None), "at {end}");
        }
        assert_eq!(framer.next(reply), Ok(Some(reply.len())));
        assert_eq!(framer.next(b":1\r\n"), Ok(Some(4)));
    }

    /// Bytes that are not RESP, which the framer and the skip both refuse.
    pub(in crate::backend::raw) const NOT_RESP: &[&[u8]] = &[
        b"?x\r\n",
        b"$abc\r\n",
        b"*2\n",
        b"$3\r\nabcd\r\n",
        b"$99999999999999999999\r\n",
        // An empty line: no type byte before its CRLF.
        b"\r\n",
    ];

    #[test]
    fn what_is_not_resp_is_refused() {
        for reply in NOT_RESP {
            assert!(Framer::default().next(reply).is_err(), "{reply:?}");
        }
        let deep = b"*1\r\n".repeat(MAX_DEPTH + 1);
        assert!(Framer::default().next(&deep).is_err());
        // A short line's end as the general way reads it (`short_line`).
        for line in [&b"+OK\n"[..], b"-\n", b":\n+OK\r\n"] {
            assert!(Framer::default().next(line).is_err(), "{line:?}");
        }
        assert_eq!(Framer::default().next(b":1\r\r\n"), Ok(Some(5)));
        assert_eq!(Framer::default().next(b"+\r\n"), Ok(Some(3)));
    }

    #[test]
    fn a_reply_past_its_room_is_refused_as_soon_as_that_shows() {
        let mut framer = Framer::default();
        // A bulk: its header says it, before any of the body is there.
        assert_eq!(framer.next_within(b"$1000\r\n", 100), Err(TOO_LARGE));
        // An aggregate of small elements: once they pass the room.
        let mut list = b"*100\r\n".to_vec();
        for _ in 0..20 {
            list.extend_from_slice(b"$3\r\nabc\r\n");
        }
        let mut framer = Framer::default();
        assert_eq!(framer.next_within(&list, 100), Err(TOO_LARGE));
        let mut framer = Framer::default();
        assert_eq!(framer.next_within(&list, 1000), Ok(None));
        // A line that never ends.
        let line = [b'+'; 200];
        assert_eq!(Framer::default().next_within(&line, 100), Err(TOO_LARGE));
        // Exactly the room is taken.
        let reply = b"*2\r\n$1\r\na\r\n:1\r\n";
        let exact = Framer::default().next_within(reply, reply.len());
        assert_eq!(exact, Ok(Some(reply.len())));
        let short = Framer::default().next_within(reply, reply.len() - 1);
        assert_eq!(short, Err(TOO_LARGE));
    }
}
