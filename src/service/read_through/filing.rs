//! Reply files: for each Redis key (in each database), an entry of the LRU
//! listing the cached replies that read it, so one change of the key drops
//! every one of them (issue #22).
//!
//! A file is an ordinary entry in a [`FILE`] database, keyed by the key's
//! own bytes: the change that drops the key's GET entry finds it in the
//! same walk (`Lru::remove_everywhere_filed`). Its value is the list of
//! the replies' full keys, each as its database (4 bytes, little-endian),
//! its length (4 bytes) and its bytes. Files are charged to
//! CACHE_MAX_BYTES like any entry. Wherever the LRU drops a file on its
//! own (evicted, expired, refused: [`Displaced`]), the replies it lists
//! go at once, under the same lock: else no change could reach them.

use crate::cache::{Db, Displaced, FILE, KIND_BASE};

use super::super::Value;
use super::{CacheState, ReadThrough};

/// Appends `(db, request)` to an encoded file list.
pub(super) fn push_entry(list: &mut Vec<u8>, db: Db, request: &[u8]) {
    list.extend_from_slice(&db.to_le_bytes());
    // A request is at most RESP_MAX_REQUEST_BYTES (512 MiB at most): it fits.
    list.extend_from_slice(&(request.len() as u32).to_le_bytes());
    list.extend_from_slice(request);
}

/// The entries of an encoded file list (a malformed tail ends it: the list
/// is only ever made by [`push_entry`]).
pub(super) fn entries(list: &[u8]) -> impl Iterator<Item = (Db, &[u8])> {
    let mut rest = list;
    std::iter::from_fn(move || {
        let db = Db::from_le_bytes(rest.get(..4)?.try_into().ok()?);
        let len = u32::from_le_bytes(rest.get(4..8)?.try_into().ok()?) as usize;
        let request = rest.get(8..8 + len)?;
        rest = &rest[8 + len..];
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
                self.drop_listed(state, file, out);
            }
            Displaced::Several(all) => {
                for displaced in all {
                    self.drop_filed_into(state, displaced, out);
                }
            }
            _ => {}
        }
    }

    /// Removes every reply `file` lists, into `out`.
    pub(super) fn drop_listed(&self, state: &mut CacheState, file: &Value, out: &mut Vec<Value>) {
        for (db, request) in entries(file.bytes()) {
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
        let mut list = Vec::new();
        push_entry(&mut list, 7, b"hgetall\x01");
        push_entry(&mut list, u32::MAX, b"");
        let read: Vec<(Db, &[u8])> = entries(&list).collect();
        assert_eq!(read, [(7, &b"hgetall\x01"[..]), (u32::MAX, &b""[..])]);
        // A truncated tail ends the list.
        assert_eq!(entries(&list[..list.len() - 1]).count(), 1);
        assert_eq!(
            file_db(crate::cache::REPLY | crate::cache::RESP3 | 3),
            FILE | 3
        );
    }
}
