//! Discarding replies as they stream in, without holding them.
//!
//! Why: the event loop's connections carry many clients' batches. When one
//! batch's replies pass RESP_MAX_REPLY_BYTES, only that client is refused;
//! the rest of its replies still come on the shared connection, before the
//! next client's. Dropping the connection would fail every batch pending
//! on it; reading the rest whole would hold what the bound forbids. So the
//! rest is scanned and dropped read by read: what is kept between reads is
//! a bulk's byte count still to drop, the aggregates' nesting, and at most
//! a header line's start.

use super::frame::{counted, Counted, FrameError, MAX_DEPTH, MAX_NUMBER_LINE};

/// Where in an element the skip stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Within {
    /// At the start of an element.
    Start,
    /// In a bulk: this many bytes of it still to come, its CRLF included.
    Body(u64),
    /// In a line (`+`, `-`, `(`, `,`) whose end has not come yet.
    Line,
}

/// A resumable discard of replies: the rest of the one a
/// [`super::frame::Framer`] gave up on, then a number of whole ones.
/// Refuses what is not RESP as the framer does, so the connection is then
/// known to be unusable.
#[derive(Debug)]
pub struct Skip {
    within: Within,
    /// Elements still owed by each enclosing aggregate.
    owed: Vec<u64>,
    /// Whole replies still to drop after the one under way.
    more: usize,
}

impl Skip {
    /// A skip starting at an element nested in aggregates that still owe
    /// `owed` elements each (that one included; empty: at a reply's start),
    /// which then drops `more` whole replies after that one.
    pub fn new(owed: Vec<u64>, more: usize) -> Skip {
        Skip {
            within: Within::Start,
            owed,
            more,
        }
    }

    /// Drops what `buf` (the bytes that came, from where the last call
    /// stopped) holds of the replies being skipped. Returns how many bytes
    /// at its start are done with (what follows them, at most a line's
    /// start, must be passed again with what comes next), and whether the
    /// last of the replies ended there: the bytes after it are the next
    /// replies'.
    pub fn skip(&mut self, buf: &[u8]) -> Result<(usize, bool), FrameError> {
        let mut at = 0;
        loop {
            let rest = &buf[at..];
            match self.within {
                Within::Body(left) => {
                    if left > 2 {
                        let n = usize::try_from(left - 2).map_or(rest.len(), |b| b.min(rest.len()));
                        at += n;
                        let left = left - n as u64;
                        self.within = Within::Body(left);
                        if left > 2 {
                            return Ok((at, false));
                        }
                        continue;
                    }
                    // The CRLF, checked once both bytes are in.
                    let Some(end) = rest.get(..2) else {
                        return Ok((at, false));
                    };
                    if end != b"\r\n" {
                        return Err(FrameError("a bulk string not ended by CRLF"));
                    }
                    at += 2;
                }
                Within::Line => match memchr::memchr(b'\n', rest) {
                    // Its last byte is kept: the CR before an LF to come.
                    None => return Ok((at + rest.len().saturating_sub(1), false)),
                    Some(end) => {
                        if end < 1 || rest[end - 1] != b'\r' {
                            return Err(FrameError("a reply line not ended by CRLF"));
                        }
                        at += end + 1;
                    }
                },
                Within::Start => {
                    let Some(&kind) = rest.first() else {
                        return Ok((at, false));
                    };
                    if matches!(kind, b'+' | b'-' | b'(' | b',') {
                        self.within = Within::Line;
                        continue;
                    }
                    let Some(end) = memchr::memchr(b'\n', rest) else {
                        if rest.len() > MAX_NUMBER_LINE {
                            return Err(FrameError("a reply header without an end"));
                        }
                        return Ok((at, false));
                    };
                    if end < 2 || rest[end - 1] != b'\r' {
                        return Err(FrameError("a reply line not ended by CRLF"));
                    }
                    at += end + 1;
                    if !matches!(kind, b':' | b'_' | b'#') {
                        match counted(kind, &rest[1..end - 1])? {
                            Counted::Nil | Counted::Children(0) => {}
                            Counted::Body(body) => {
                                let left = body
                                    .checked_add(2)
                                    .ok_or(FrameError("a bulk length out of range"))?;
                                self.within = Within::Body(left);
                                continue;
                            }
                            Counted::Children(children) => {
                                if self.owed.len() >= MAX_DEPTH {
                                    return Err(FrameError("replies nested too deep"));
                                }
                                self.owed.push(children);
                                continue;
                            }
                        }
                    }
                }
            }
            self.within = Within::Start;
            if self.element_done() {
                return Ok((at, true));
            }
        }
    }

    /// One element ended: settles the aggregates it completes. True when
    /// that was the end of the last reply to drop.
    fn element_done(&mut self) -> bool {
        loop {
            match self.owed.last_mut() {
                None if self.more == 0 => return true,
                None => {
                    self.more -= 1;
                    return false;
                }
                Some(owed) => {
                    *owed -= 1;
                    if *owed > 0 {
                        return false;
                    }
                    self.owed.pop();
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "skip_tests.rs"]
mod tests;
