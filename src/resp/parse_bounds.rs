//! Redis's bounds on a request from a client that has not authenticated
//! (`processMultibulkBuffer`: more than 10 arguments is `unauthenticated
//! multibulk length`, an argument longer than 16 KiB `unauthenticated bulk
//! length`), checked on the length lines as they arrive, before the usual
//! parse (`parse.rs`), which is left as it is for every other client.
//! Apart from the parser, which had grown past 400 lines.

use super::error::ProtocolError;
use super::lengths::parse_len;
use super::{memchr_crlf, Parser, Request, UNAUTHENTICATED};

impl Parser {
    /// Redis's bounds for a client not authenticated ([`UNAUTHENTICATED`]),
    /// or none again: called as authentication changes. Checked on
    /// [`Parser::parse_at`]'s cold path (below), so the parser
    /// is unchanged for a client that authenticated.
    pub fn bound(&mut self, bounded: bool) {
        self.bounded = bounded;
        self.slow = bounded || self.held.is_some();
    }

    /// [`Parser::parse_at`] with a line held or under [`Parser::bound`].
    #[cold]
    pub(super) fn parse_at_slowly(
        &mut self,
        buf: &mut [u8],
        at: u64,
    ) -> Result<Option<Request>, ProtocolError> {
        if self.held.is_some() {
            if let Some(again) = self.held_at(at) {
                return again;
            }
        }
        if self.bounded {
            if let Err(err) = check(buf) {
                self.args = Vec::new();
                self.count = None;
                self.pos = 0;
                self.scanned = 0;
                return Err(err);
            }
        }
        let outcome = self.parse(buf);
        if self.rewrote {
            self.hold(at, &outcome);
        }
        self.slow = self.bounded || self.held.is_some();
        outcome
    }
}

/// Redis's `proto-max-bulk-len` default (512 MB): a longer argument is
/// `invalid bulk length` at Redis, authenticated or not.
const MAX_BULK: usize = 512 * 1024 * 1024;

/// Longest length line read here: any number Redis takes fits (a sign
/// and 19 digits); a longer line is the usual parser's to refuse.
const LINE: usize = 24;

/// The number on the length line starting at `from` (just after its `*`
/// or `$`), if that line is all in, fits `LINE` and reads as Redis reads
/// lengths within `min..=max`; and where the bytes after its CRLF start.
fn line(buf: &[u8], from: usize, min: i64, max: i64) -> Option<(i64, usize)> {
    let rest = buf.get(from..)?;
    let window = &rest[..rest.len().min(LINE)];
    let end = memchr_crlf(window)?;
    let n = parse_len(&window[..end], min, max)?;
    Some((n, from + end + 2))
}

/// Refuses the array at the front of `buf` as Redis refuses it from a
/// client not authenticated, once a length line that breaks the bounds is
/// in. Anything else (an inline command, a request not all in, a length
/// Redis calls invalid, a byte out of place) is left to the usual parse,
/// so errors come in the order the bytes show them. Reads only the length
/// lines (at most 11), skipping the arguments between them: cheap however
/// often a request in pieces is looked at again.
pub(super) fn check(buf: &[u8]) -> Result<(), ProtocolError> {
    let (most_args, longest) = UNAUTHENTICATED;
    if buf.first() != Some(&b'*') {
        return Ok(());
    }
    // Redis 7.0 calls any count an `int` holds unauthenticated.
    let Some((count, mut pos)) = line(buf, 1, i64::MIN, i64::from(i32::MAX)) else {
        return Ok(());
    };
    if count > most_args as i64 {
        return Err(ProtocolError::new("unauthenticated multibulk length"));
    }
    for _ in 0..count.max(0) {
        if buf.get(pos) != Some(&b'$') {
            return Ok(());
        }
        // Up to `proto-max-bulk-len`: past it, Redis's `invalid bulk
        // length`, which the usual parse gives.
        let Some((len, start)) = line(buf, pos + 1, 0, MAX_BULK as i64) else {
            return Ok(());
        };
        if len > longest as i64 {
            return Err(ProtocolError::new("unauthenticated bulk length"));
        }
        // Cannot overflow: `start` indexes memory, `len` is 16 KiB at most.
        let stop = start + len as usize;
        if buf.get(stop..stop + 2) != Some(&b"\r\n"[..]) {
            return Ok(());
        }
        pos = stop + 2;
    }
    Ok(())
}
