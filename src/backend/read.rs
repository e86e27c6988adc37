//! The one read the proxy makes: `GET key` and `PTTL key`, pipelined.
//!
//! A key whose TTL in Redis ends before `GLOBAL_CACHE_EXPIRY` must not be
//! served past that TTL, and Redis announces an expiry to trackers only when
//! it reclaims the key, which may be much later or never. So every read
//! learns the key's remaining TTL in the same round trip as its value.
//!
//! Two commands, not a script: no `EVAL` permission needed, and both name
//! the same key, so in cluster mode both go to the node that holds it (see
//! `read_cluster.rs`, which follows `MOVED` and `ASK` for the pair). They
//! are not atomic: a write between them is
//! announced by the invalidation link, which drops the fill; with
//! `INVALIDATION=off` the proxy serves writes late anyway (up to the TTL),
//! and a key gone in between is reported as such and not cached.

use std::time::Duration;

use redis::Value;

use super::{reply_error, BackendError};

/// What one read of a key found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Read {
    /// The value, `None` when Redis has no such key.
    pub value: Option<Vec<u8>>,
    /// How long the key has left in Redis (meaningful with a value).
    pub ttl: Ttl,
    /// Whether the cache may keep it. Always, but in cluster mode: only
    /// if answered, without a redirection, by a master whose invalidation
    /// link is up (see `read_cluster.rs`); otherwise it is served, not kept.
    pub storable: bool,
}

/// What `PTTL` said of the key just read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ttl {
    /// `-1`: no TTL; the key stays until it is written.
    Persistent,
    /// This long, counted from when Redis ran the `PTTL` (so at least this
    /// long from before the read was sent).
    Left(Duration),
    /// `-2`: the key went (deleted, or expired) between the two commands:
    /// the value was right a moment ago but has no life left.
    Gone,
    /// Redis refused `PTTL` (an ACL user without `+pttl`): why. The value
    /// cannot be vouched for beyond this moment.
    Refused(String),
}

/// `GET key` then `PTTL key`, encoded as RESP in one buffer.
pub(super) fn pack(key: &[u8]) -> Vec<u8> {
    let len = key.len().to_string();
    let mut packed = Vec::with_capacity(2 * (key.len() + len.len()) + 40);
    for name in [&b"GET"[..], b"PTTL"] {
        packed.extend_from_slice(b"*2\r\n$");
        packed.extend_from_slice(name.len().to_string().as_bytes());
        packed.extend_from_slice(b"\r\n");
        packed.extend_from_slice(name);
        packed.extend_from_slice(b"\r\n$");
        packed.extend_from_slice(len.as_bytes());
        packed.extend_from_slice(b"\r\n");
        packed.extend_from_slice(key);
        packed.extend_from_slice(b"\r\n");
    }
    packed
}

/// `SELECT db`, `GET key`, `PTTL key`, `SELECT home`: the read in
/// database `db` on a connection that sits in `home`, left there again.
pub(super) fn pack_in(db: i64, home: i64, key: &[u8]) -> Vec<u8> {
    let mut packed = select(db);
    packed.extend_from_slice(&pack(key));
    packed.extend_from_slice(&select(home));
    packed
}

/// `SELECT db`, encoded.
fn select(db: i64) -> Vec<u8> {
    let db = db.to_string();
    format!("*2\r\n$6\r\nSELECT\r\n${}\r\n{db}\r\n", db.len()).into_bytes()
}

/// The replies to [`pack_in`]'s four commands as the read's two, or the
/// error Redis gave the first `SELECT` (an index out of range: the read
/// then ran in the connection's own database, and is not the caller's).
/// A last `SELECT` that did not answer `OK` leaves the connection in
/// another database than its pool's: that fails as a connection failure
/// (an I/O error, no reply code), so the caller retires it.
pub(super) fn unselect(
    replies: Vec<Value>,
) -> redis::RedisResult<Result<Vec<Value>, BackendError>> {
    let [first, get, pttl, last] = <[Value; 4]>::try_from(replies).map_err(|replies| {
        std::io::Error::other(format!(
            "{} replies to SELECT, GET, PTTL, SELECT",
            replies.len()
        ))
    })?;
    if !is_ok(&last) {
        return Err(std::io::Error::other(format!("SELECT back answered {last:?}")).into());
    }
    Ok(match first {
        Value::ServerError(err) => Err(server_error(err)),
        first if is_ok(&first) => Ok(vec![get, pttl]),
        other => Err(unexpected(&format!("SELECT answered {other:?}"))),
    })
}

fn is_ok(reply: &Value) -> bool {
    match reply {
        Value::Okay => true,
        Value::SimpleString(text) => text == "OK",
        _ => false,
    }
}

/// The two replies as a [`Read`]. An error reply to the `GET` (such as
/// WRONGTYPE) is the read's error; one to the `PTTL` is [`Ttl::Refused`].
pub(super) fn parse(replies: Vec<Value>) -> Result<Read, BackendError> {
    let mut replies = replies.into_iter();
    let (Some(value), Some(ttl), None) = (replies.next(), replies.next(), replies.next()) else {
        return Err(unexpected("not two replies to GET and PTTL"));
    };
    let value = match value {
        Value::Nil => None,
        Value::BulkString(bytes) => Some(bytes),
        Value::ServerError(err) => return Err(server_error(err)),
        other => return Err(unexpected(&format!("GET answered {other:?}"))),
    };
    let ttl = match ttl {
        Value::Int(-1) => Ttl::Persistent,
        Value::Int(-2) => Ttl::Gone,
        Value::Int(ms) => match u64::try_from(ms) {
            Ok(ms) => Ttl::Left(Duration::from_millis(ms)),
            Err(_) => return Err(unexpected(&format!("PTTL answered {ms}"))),
        },
        Value::ServerError(err) => Ttl::Refused(redis::RedisError::from(err).to_string()),
        other => return Err(unexpected(&format!("PTTL answered {other:?}"))),
    };
    Ok(Read {
        value,
        ttl,
        storable: true,
    })
}

fn server_error(err: redis::ServerError) -> BackendError {
    let err = redis::RedisError::from(err);
    reply_error(&err).unwrap_or_else(|| BackendError::Reply(err.to_string()))
}

fn unexpected(what: &str) -> BackendError {
    BackendError::Reply(format!("unexpected reply from Redis: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_get_then_pttl() {
        assert_eq!(
            pack(b"k:1"),
            b"*2\r\n$3\r\nGET\r\n$3\r\nk:1\r\n*2\r\n$4\r\nPTTL\r\n$3\r\nk:1\r\n"
        );
    }

    #[test]
    fn packs_a_read_in_another_database_and_back() {
        assert_eq!(
            pack_in(12, 0, b"k"),
            [
                &b"*2\r\n$6\r\nSELECT\r\n$2\r\n12\r\n"[..],
                &pack(b"k"),
                b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n"
            ]
            .concat()
        );
    }

    #[test]
    fn a_read_in_another_database_is_its_own_or_an_error() {
        let get = Value::BulkString(b"v".to_vec());
        let replies = |first, last| vec![first, get.clone(), Value::Int(-1), last];
        let read = unselect(replies(Value::Okay, Value::Okay)).expect("in step");
        assert_eq!(read, Ok(vec![get.clone(), Value::Int(-1)]));
        // Out of range: the GET ran in the connection's database.
        let out_of_range =
            redis::parse_redis_value(b"-ERR DB index is out of range\r\n").expect("parsed");
        assert!(matches!(out_of_range, Value::ServerError(_)));
        assert_eq!(
            unselect(replies(out_of_range, Value::Okay)).expect("in step"),
            Err(BackendError::Reply(
                "ERR DB index is out of range".to_owned()
            ))
        );
        // Not back home: a connection failure, so it is retired.
        let failed = unselect(replies(Value::Okay, Value::Nil)).expect_err("retired");
        assert!(failed.code().is_none());
        assert!(unselect(vec![Value::Okay]).is_err());
    }

    #[test]
    fn parses_every_pttl_answer() {
        let read = |ttl| parse(vec![Value::BulkString(b"v".to_vec()), ttl]);
        let ttl = |ttl| read(ttl).map(|read| read.ttl);
        assert_eq!(ttl(Value::Int(-1)), Ok(Ttl::Persistent));
        assert_eq!(ttl(Value::Int(-2)), Ok(Ttl::Gone));
        assert_eq!(
            ttl(Value::Int(1500)),
            Ok(Ttl::Left(Duration::from_millis(1500)))
        );
        assert!(ttl(Value::Int(-3)).is_err());
        assert_eq!(
            read(Value::Int(0)).map(|read| read.value),
            Ok(Some(b"v".to_vec()))
        );
        let absent = parse(vec![Value::Nil, Value::Int(-2)]);
        assert_eq!(absent.map(|read| read.value), Ok(None));
        assert!(parse(vec![Value::Nil]).is_err());
    }
}
