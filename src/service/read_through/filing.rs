//! Reply files: for each Redis key (in each database), an entry of the LRU
//! listing the cached replies that read it, so one change of the key drops
//! every one of them (issue #22).
//!
//! A file is an ordinary entry in a [`FILE`] database, keyed by the key's
//! own bytes: the change that drops the key's GET entry finds it in the
//! same walk (`Lru::remove_everywhere_filed`). Its value is the list of
//! the replies' requests, each as one byte (whether it is RESP3's reply,
//! in the top bit; its length, if below 127, in the others, else 127 and
//! the length in 4 bytes, little-endian) and its bytes: a reply's database
//! is the file's but for the RESP3 bit (`file_db`), so it is not written
//! out. Files are charged to
//! CACHE_MAX_BYTES like any entry. Wherever the LRU drops a file on its
//! own (evicted, expired, refused: [`Displaced`]), the replies it lists
//! go at once, under the same lock: else no change could reach them.

use crate::cache::{Db, Displaced, FILE, KIND_BASE, REPLY, RESP3};

use super::super::Value;
use super::{CacheState, ReadThrough};

/// An entry's first byte: set when the reply is RESP3's.
const RESP3_BIT: u8 = 0x80;

/// An entry's first byte, without [`RESP3_BIT`], when its length follows in
/// 4 bytes.
const LONG: u8 = 0x7f;

/// Appends reply `(db, request)` to an encoded file list (`db` is a reply
/// database whose file database is the list's: only its RESP3 bit is
/// kept).
pub(super) fn push_entry(list: &mut Vec<u8>, db: Db, request: &[u8]) {
    let resp3 = match db & RESP3 {
        0 => 0,
        _ => RESP3_BIT,
    };
    match u8::try_from(request.len()) {
        Ok(len) if len < LONG => list.push(resp3 | len),
        _ => {
            list.push(resp3 | LONG);
            // A request is at most RESP_MAX_REQUEST_BYTES (512 MiB at
            // most): it fits.
            list.extend_from_slice(&(request.len() as u32).to_le_bytes());
        }
    }
    list.extend_from_slice(request);
}

/// The entries of an encoded file list of file database `fdb`, each with
/// its reply database (a malformed tail ends it: the list is only ever
/// made by [`push_entry`]).
pub(super) fn entries(fdb: Db, list: &[u8]) -> impl Iterator<Item = (Db, &[u8])> {
    let reply_db = REPLY | (fdb & (KIND_BASE - 1));
    let mut rest = list;
    std::iter::from_fn(move || {
        let (&head, tail) = rest.split_first()?;
        let (len, tail) = match head & !RESP3_BIT {
            LONG => {
                let len = u32::from_le_bytes(tail.get(..4)?.try_into().ok()?);
                (len as usize, &tail[4..])
            }
            len => (usize::from(len), tail),
        };
        let request = tail.get(..len)?;
        rest = &tail[len..];
        let db = match head & RESP3_BIT {
            0 => reply_db,
            _ => reply_db | RESP3,
        };
        Some((db, request))
    })
}

/// The file database of the replies in reply database `reply_db`: the
/// same numbered database, RESP2's and RESP3's replies filed together.
pub(super) fn file_db(reply_db: Db) -> Db {
    FILE | (reply_db & (KIND_BASE - 1))
}

impl ReadThrough {
    /// Removes the replies listed by every file `displaced` holds (pushed
    /// out by an insert), handing them back to be dropped after unlocking.
    /// Costs nothing when no file is among them.
    pub(super) fn drop_filed(
        &self,
        state: &mut CacheState,
        displaced: &Displaced<Value>,
    ) -> Vec<Value> {
        let mut out = Vec::new();
        self.drop_filed_into(state, displaced, &mut out);
        out
    }

    fn drop_filed_into(
        &self,
        state: &mut CacheState,
        displaced: &Displaced<Value>,
        out: &mut Vec<Value>,
    ) {
        match displaced {
            Displaced::Evicted(key, file) | Displaced::Expired(key, file)
                if key.db() & FILE != 0 =>
            {
                self.drop_listed(state, (key.db(), file), out);
            }
            Displaced::Several(all) => {
                for displaced in all {
                    self.drop_filed_into(state, displaced, out);
                }
            }
            _ => {}
        }
    }

    /// Removes every reply `file` (of file database `fdb`) lists, into
    /// `out`.
    pub(super) fn drop_listed(
        &self,
        state: &mut CacheState,
        (fdb, file): (Db, &Value),
        out: &mut Vec<Value>,
    ) {
        for (db, request) in entries(fdb, file.bytes()) {
            let hash = self.hasher.hash_in(db, request);
            out.extend(state.lru.remove_hashed(hash, db, request));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_reads_back_what_was_pushed() {
        let fdb = FILE | 7;
        let long = [b'r'; 200];
        let mut list = Vec::new();
        push_entry(&mut list, REPLY | 7, b"\x07hgetall\x01h");
        push_entry(&mut list, REPLY | RESP3 | 7, b"");
        push_entry(&mut list, REPLY | RESP3 | 7, &long);
        // One byte before a short request, 5 before a long one.
        assert_eq!(list.len(), (1 + 10) + 1 + (5 + 200));
        assert_eq!(&list[..2], b"\x0a\x07");
        let read: Vec<(Db, &[u8])> = entries(fdb, &list).collect();
        assert_eq!(
            read,
            [
                (REPLY | 7, &b"\x07hgetall\x01h"[..]),
                (REPLY | RESP3 | 7, &b""[..]),
                (REPLY | RESP3 | 7, &long[..]),
            ]
        );
        // A truncated tail ends the list.
        assert_eq!(entries(fdb, &list[..list.len() - 1]).count(), 2);
        assert_eq!(entries(fdb, &list[..13]).count(), 2);
        assert_eq!(file_db(REPLY | RESP3 | 3), FILE | 3);
    }
}
