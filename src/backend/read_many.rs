//! Many reads at once, for `MGET`'s misses: `MGET` and `EXISTS` of the keys
//! in one round trip, then `PTTL` of those found in a second, so a thousand
//! absent keys cost Redis two commands, not a `GET` and a `PTTL` each
//! (`read.rs`), and hold a worker one round trip, not a thousand.
//!
//! What each key gets is what [`Backend::get`] would give it:
//! - `EXISTS` tells an absent key from one of another type, which `MGET`
//!   answers nil too and `GET` `WRONGTYPE` (the read's waiters may be a
//!   GET's). When its count is not the values found, the nil keys are
//!   read one by one, as `GET` would read them.
//! - The TTL comes from `PTTL`, counted by the caller from before the
//!   first round trip, so never later than Redis's. The commands are not
//!   atomic: a write between them is announced by the invalidation link,
//!   which drops the fill, as for `GET` then `PTTL`.
//! - The replies come on the forwarder's raw connections, so they are held
//!   to RESP_MAX_REPLY_BYTES as a forwarded batch's: past it the read fails
//!   ([`is_too_large`]) and the rest is left in Redis's socket.
//! - A Redis user refused `MGET` or `EXISTS` (an ACL written for the
//!   proxy before it sent them: `+get +pttl` only) is read as `GET` reads,
//!   a `GET` and a `PTTL` a key, all pipelined in one round trip; the
//!   refusal is remembered (and logged once), so it costs one refused
//!   command, not one per MGET.
//!
//! In cluster mode the keys are split by master and each master's read in
//! one round trip, all masters' at once, with `GET` and `PTTL` a key
//! (`MGET` cannot span slots): see `read_cluster_many.rs`.

use std::sync::atomic::Ordering;

use redis::Value;

use super::raw::encode;
use super::raw::frame::TOO_LARGE;
use super::read::{self, Read};
use super::{Backend, BackendError};

impl Backend {
    /// What [`Backend::get`] of each of `keys` in database `db` would
    /// find, in order: the whole read fails if Redis could not be read
    /// (or the values pass RESP_MAX_REPLY_BYTES); a key's own error
    /// (`WRONGTYPE`) is its own.
    pub fn get_many(
        &self,
        db: i64,
        keys: &[&[u8]],
    ) -> Result<Vec<Result<Read, BackendError>>, BackendError> {
        if let Some(router) = &self.router {
            return self.get_many_cluster(router, db, keys);
        }
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        if self.mget_refused.load(Ordering::Relaxed) {
            return self.pipelined(db, keys);
        }
        let mut wire = Vec::new();
        let mut argv: Vec<&[u8]> = Vec::with_capacity(keys.len() + 1);
        for name in [&b"MGET"[..], b"EXISTS"] {
            argv.clear();
            argv.push(name);
            argv.extend_from_slice(keys);
            encode(&argv, &mut wire);
        }
        let [values, exists]: [Value; 2] = self
            .round_trip(db, wire, 2, "MGET")?
            .try_into()
            .map_err(|_| BackendError::Unavailable("MGET's reply: short".to_owned()))?;
        let refused = [&values, &exists]
            .into_iter()
            .find_map(|reply| match reply {
                Value::ServerError(err) => Some(err),
                _ => None,
            });
        if let Some(err) = refused {
            // Only a user who may not run MGET or EXISTS at all turns this
            // path off; a key the user may not read (also NOPERM) is the
            // whole MGET's refusal, as at Redis.
            let command_refused = err.code() == "NOPERM"
                && err
                    .details()
                    .is_some_and(|d| d.contains("'mget'") || d.contains("'exists'"));
            if !command_refused {
                return Err(BackendError::Reply(format!(
                    "{} {}",
                    err.code(),
                    err.details().unwrap_or_default()
                )));
            }
            if !self.mget_refused.swap(true, Ordering::Relaxed) {
                log::warn!(
                    "Redis refused MGET or EXISTS ({}): MGET's misses are read with GET and PTTL from now on; give the proxy's user +mget +exists",
                    err.details().unwrap_or_default()
                );
            }
            return self.pipelined(db, keys);
        }
        let values = match values {
            Value::Array(values) if values.len() == keys.len() => values,
            other => {
                return Err(BackendError::Unavailable(format!(
                    "unexpected reply from Redis: MGET answered {other:?}"
                )))
            }
        };
        let found = values.iter().filter(|v| !matches!(v, Value::Nil)).count();
        // Some nil is a key of another type (or the keys changed between
        // the two commands): those are read as GET reads them.
        let some_nil_exists = !matches!(exists, Value::Int(n) if n == found as i64);
        let mut reads: Vec<Option<Result<Read, BackendError>>> = Vec::with_capacity(keys.len());
        let mut present = Vec::with_capacity(found);
        let mut nil = Vec::new();
        for (key, value) in keys.iter().zip(values) {
            reads.push(match value {
                Value::Nil if some_nil_exists => {
                    nil.push((reads.len(), *key));
                    None
                }
                Value::Nil => Some(Ok(Read {
                    value: None,
                    ttl: read::Ttl::Gone,
                    storable: true,
                })),
                Value::BulkString(bytes) => {
                    present.push((reads.len(), *key, bytes));
                    None
                }
                other => Some(Err(BackendError::Reply(format!(
                    "unexpected reply from Redis: MGET answered {other:?}"
                )))),
            });
        }
        self.ttls_of(db, present, &mut reads)?;
        // The nil keys, all together, as GET reads them (one round trip,
        // not one each: a GET waiting on one of them waits one round trip).
        if !nil.is_empty() {
            let names: Vec<&[u8]> = nil.iter().map(|(_, key)| *key).collect();
            for ((at, _), read) in nil.into_iter().zip(self.pipelined(db, &names)?) {
                reads[at] = Some(read);
            }
        }
        Ok(reads
            .into_iter()
            .map(|read| read.unwrap_or_else(|| Err(BackendError::Unavailable("no TTL".into()))))
            .collect())
    }

    /// `PTTL` of each key `present` names (its place in `reads`, the key,
    /// its value), in one round trip, each read filled in at its place.
    fn ttls_of(
        &self,
        db: i64,
        present: Vec<(usize, &[u8], Vec<u8>)>,
        reads: &mut [Option<Result<Read, BackendError>>],
    ) -> Result<(), BackendError> {
        if present.is_empty() {
            return Ok(());
        }
        let mut wire = Vec::new();
        for (_, key, _) in &present {
            encode(&[b"PTTL", key], &mut wire);
        }
        let ttls = self.round_trip(db, wire, present.len(), "PTTL")?;
        for ((at, _, value), ttl) in present.into_iter().zip(ttls) {
            reads[at] = Some(read::parse(vec![Value::BulkString(value), ttl]));
        }
        Ok(())
    }

    /// `GET` and `PTTL` of each key, all in one round trip: what
    /// [`Backend::get`] of each would find.
    fn pipelined(
        &self,
        db: i64,
        keys: &[&[u8]],
    ) -> Result<Vec<Result<Read, BackendError>>, BackendError> {
        let mut wire = Vec::new();
        for key in keys {
            encode(&[b"GET", key], &mut wire);
            encode(&[b"PTTL", key], &mut wire);
        }
        let mut replies = self
            .round_trip(db, wire, 2 * keys.len(), "GET")?
            .into_iter();
        let mut reads = Vec::with_capacity(keys.len());
        while let (Some(value), Some(ttl)) = (replies.next(), replies.next()) {
            reads.push(read::parse(vec![value, ttl]));
        }
        Ok(reads)
    }

    /// Sends `wire` (`count` requests) and reads their `count` replies, in
    /// order; `what` names the first command, for the error.
    fn round_trip(
        &self,
        db: i64,
        wire: Vec<u8>,
        count: usize,
        what: &str,
    ) -> Result<Vec<Value>, BackendError> {
        let mut out = Vec::new();
        self.forward((false, db, super::raw::Wait::Own), &wire, count, &mut out)
            .map_err(|failed| failed.error)?;
        drop(wire);
        let mut parser = redis::Parser::new();
        let mut input = &out[..];
        (0..count)
            .map(|_| {
                parser
                    .parse_value(&mut input)
                    .map_err(|err| BackendError::Unavailable(format!("{what}'s reply: {err}")))
            })
            .collect()
    }
}

/// Whether `err` is a read refused for passing RESP_MAX_REPLY_BYTES: not
/// Redis being unreachable, so no stale entry stands in for it.
pub fn is_too_large(err: &BackendError) -> bool {
    matches!(err, BackendError::Unavailable(why) if why == TOO_LARGE.0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_parser_reads_two_replies_in_turn() {
        let out = b"*3\r\n$1\r\na\r\n$-1\r\n$2\r\nbc\r\n:2\r\n";
        let mut parser = redis::Parser::new();
        let mut input = &out[..];
        let first = parser.parse_value(&mut input).expect("the array");
        assert!(matches!(first, redis::Value::Array(ref v) if v.len() == 3));
        let second = parser.parse_value(&mut input).expect("the count");
        assert_eq!(second, redis::Value::Int(2));
    }
}
