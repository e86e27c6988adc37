//! What the invalidation link reads, taken apart without decoding: the
//! `>2 invalidate [keys]` pushes `CLIENT TRACKING ON BCAST` makes Redis send
//! (a null instead of the keys after a flush), and the replies to the link's
//! own PINGs.
//!
//! Why not the redis crate: it builds a `Value` per push (a vector for the
//! push, one for its keys, one per key) and hands each through a channel to
//! the thread that applies it, which then takes the cache's lock once per
//! push. Under a stream of writes, every written key comes back as one
//! push: that cost some 15% of the proxy's CPU. Here everything one read
//! brought is walked in place (the framer finds where each push ends, then
//! the keys are borrowed from the buffer), so the link's thread applies a
//! whole read's keys under one lock.

use super::frame::{number, FrameError, Framer};

/// One thing the link said, in the order it came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// This key changed.
    Key(&'a [u8]),
    /// Every key may have: FLUSHALL or FLUSHDB (a null for the keys).
    Flush,
    /// A reply (not a push): the answer to the link's PING.
    Reply,
    /// An error reply: what Redis said.
    Refused(&'a [u8]),
    /// An invalidation push of no shape Redis sends (the whole push): to
    /// stay safe, treat it as a flush.
    Unexpected(&'a [u8]),
}

/// Goes through the whole frames at the start of `buf`, calling `on` for
/// what each says, and returns how many bytes they took. A frame cut short
/// at the end is left for the next call, which `framer` resumes (pass the
/// same bytes again, from the first one not consumed, with more after
/// them). Pushes other than invalidations (none: the link subscribes to
/// nothing) are skipped. An error means the bytes are not RESP.
pub fn scan<'a>(
    buf: &'a [u8],
    framer: &mut Framer,
    on: &mut impl FnMut(Event<'a>),
) -> Result<usize, FrameError> {
    let mut at = 0;
    while let Some(len) = framer.next(&buf[at..])? {
        frame(&buf[at..at + len], on);
        at += len;
    }
    Ok(at)
}

/// What one whole frame says.
fn frame<'a>(frame: &'a [u8], on: &mut impl FnMut(Event<'a>)) {
    match frame.first() {
        Some(b'>') => {}
        Some(b'-' | b'!') => return on(Event::Refused(frame)),
        _ => return on(Event::Reply),
    }
    let mut cursor = Cursor { buf: frame, at: 0 };
    let Some((b'>', count)) = cursor.header() else {
        return on(Event::Unexpected(frame));
    };
    if cursor.string() != Some(b"invalidate".as_slice()) {
        return;
    }
    if count != b"2" {
        return on(Event::Unexpected(frame));
    }
    match cursor.header() {
        // RESP3's null, and RESP2's null array for good measure.
        Some((b'_', _)) | Some((b'*', b"-1")) => on(Event::Flush),
        Some((b'*', count)) => {
            let Some(count) = number(count) else {
                return on(Event::Unexpected(frame));
            };
            let start = cursor.at;
            // Checked first, so a malformed push names no key at all.
            if (0..count).any(|_| cursor.string().is_none()) {
                return on(Event::Unexpected(frame));
            }
            cursor.at = start;
            for _ in 0..count {
                if let Some(key) = cursor.string() {
                    on(Event::Key(key));
                }
            }
        }
        _ => on(Event::Unexpected(frame)),
    }
}

/// A walk through one whole frame (the framer has checked its lengths).
struct Cursor<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    /// The next header line: its type byte and what follows it.
    fn header(&mut self) -> Option<(u8, &'a [u8])> {
        let rest = self.buf.get(self.at..)?;
        let end = memchr::memchr(b'\n', rest)?;
        let line = rest.get(..end.checked_sub(1)?)?;
        self.at += end + 1;
        Some((*line.first()?, &line[1..]))
    }

    /// The next bulk string (`$`) or simple string (`+`).
    fn string(&mut self) -> Option<&'a [u8]> {
        match self.header()? {
            (b'+', text) => Some(text),
            (b'$', len) => {
                let len = usize::try_from(number(len)?).ok()?;
                let body = self.buf.get(self.at..self.at.checked_add(len)?)?;
                self.at += len + 2;
                Some(body)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `bytes` says, fed in two parts cut at `cut`, the consumed
    /// bytes dropped between the two as the link does.
    fn events_split(bytes: &[u8], cut: usize) -> Vec<String> {
        let mut seen = Vec::new();
        let mut framer = Framer::default();
        let mut input = bytes[..cut].to_vec();
        let mut record = |event: Event<'_>| seen.push(describe(event));
        let used = scan(&input, &mut framer, &mut record).expect("RESP");
        input.drain(..used);
        input.extend_from_slice(&bytes[cut..]);
        let used = scan(&input, &mut framer, &mut record).expect("RESP");
        assert_eq!(used, input.len(), "all consumed");
        seen
    }

    fn describe(event: Event<'_>) -> String {
        match event {
            Event::Key(key) => format!("key {}", String::from_utf8_lossy(key)),
            Event::Flush => "flush".to_owned(),
            Event::Reply => "reply".to_owned(),
            Event::Refused(text) => format!("refused {}", String::from_utf8_lossy(text)),
            Event::Unexpected(push) => format!("unexpected {}", String::from_utf8_lossy(push)),
        }
    }

    fn push(keys: &[&str]) -> Vec<u8> {
        let mut out = format!(">2\r\n$10\r\ninvalidate\r\n*{}\r\n", keys.len()).into_bytes();
        for key in keys {
            out.extend_from_slice(format!("${}\r\n{key}\r\n", key.len()).as_bytes());
        }
        out
    }

    #[test]
    fn a_burst_split_at_every_byte_says_the_same() {
        let mut burst = push(&["key:000000000042"]);
        burst.extend_from_slice(b"+PONG\r\n");
        burst.extend_from_slice(&push(&["a", "", "with\r\nbreak"]));
        burst.extend_from_slice(b">2\r\n$10\r\ninvalidate\r\n_\r\n");
        burst.extend_from_slice(b">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n");
        burst.extend_from_slice(&push(&["b"]));
        burst.extend_from_slice(b"-ERR no\r\n");
        let whole = events_split(&burst, burst.len());
        assert_eq!(
            whole,
            [
                "key key:000000000042",
                "reply",
                "key a",
                "key ",
                "key with\r\nbreak",
                "flush",
                "key b",
                "refused -ERR no\r\n",
            ]
        );
        for cut in 0..burst.len() {
            assert_eq!(events_split(&burst, cut), whole, "cut at {cut}");
        }
    }

    #[test]
    fn pushes_of_another_shape_are_unexpected_not_keys() {
        let odd: &[&[u8]] = &[
            b">1\r\n$10\r\ninvalidate\r\n",
            b">2\r\n$10\r\ninvalidate\r\n:1\r\n",
            b">2\r\n$10\r\ninvalidate\r\n*2\r\n$1\r\na\r\n:1\r\n",
        ];
        for push in odd {
            let events = events_split(push, push.len());
            assert_eq!(events.len(), 1, "{events:?}");
            assert!(events[0].starts_with("unexpected"), "{events:?}");
        }
        let simple = b">2\r\n+invalidate\r\n*1\r\n+k\r\n";
        assert_eq!(events_split(simple, simple.len()), ["key k"]);
        let null_array = b">2\r\n$10\r\ninvalidate\r\n*-1\r\n";
        assert_eq!(events_split(null_array, null_array.len()), ["flush"]);
    }

    #[test]
    fn what_is_not_resp_is_an_error() {
        let mut framer = Framer::default();
        assert!(scan(b"?x\r\n", &mut framer, &mut |_| {}).is_err());
    }
}
