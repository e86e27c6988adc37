//! The JSON form of a Redis value that is not a string, made from Redis's
//! own reply to the read of the whole value (issue #22): a pure function of
//! the reply's bytes, so it is tested without Redis.
//!
//! The reply is decoded with the redis crate's parser (`parse_redis_value`,
//! RESP2 and RESP3 alike) rather than by hand: these replies are read once
//! per answer, off the hot path, and the crate already reads every reply
//! of the invalidation link and the pool. The proxy reads them in RESP3,
//! which tells a hash's map, a set and a score (a double) apart; RESP2's
//! flat arrays and scores as text are accepted too.
//!
//! Shapes: hash `{field: value}`, list and set `[member, ...]`, zset
//! `[[member, score], ...]` with the score a JSON number (`inf` and `-inf`,
//! which JSON has no number for, as the strings `"inf"` and `"-inf"`:
//! Redis's own words, which ZADD takes back), stream `[[id, {field:
//! value}], ...]`. When any string in the value is not UTF-8, every string
//! in it (fields, members, values, ids; never a score) is base64 and the
//! answer says `"encoding": "base64"`, as for a string's value: one rule
//! for the whole value keeps a hash's fields apart (no two encode alike)
//! and a client decodes all or nothing.

use base64::Engine as _;
use redis::Value as Resp;
use serde_json::{Map, Number, Value as Json};

/// The types of key `GET /proxy` answers as JSON besides strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Hash,
    List,
    Set,
    Zset,
    Stream,
}

impl Kind {
    /// The name `TYPE` gives it, and the answer's `"type"`.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Hash => "hash",
            Kind::List => "list",
            Kind::Set => "set",
            Kind::Zset => "zset",
            Kind::Stream => "stream",
        }
    }

    /// The read of a whole value of this kind: one of the commands the
    /// reply cache keeps by default, so it is cached and invalidated like
    /// any read (unless CACHE_COMMANDS leaves it out).
    pub fn read(self, key: &[u8]) -> Vec<&[u8]> {
        match self {
            Kind::Hash => vec![b"HGETALL", key],
            Kind::List => vec![b"LRANGE", key, b"0", b"-1"],
            Kind::Set => vec![b"SMEMBERS", key],
            Kind::Zset => vec![b"ZRANGE", key, b"0", b"-1", b"WITHSCORES"],
            Kind::Stream => vec![b"XRANGE", key, b"-", b"+"],
        }
    }
}

/// What `TYPE key` answered.
#[derive(Debug, PartialEq, Eq)]
pub enum Type {
    /// No such key (any more).
    None,
    /// A string (again): the GET path serves it.
    String,
    /// A type answered as JSON.
    Known(Kind),
    /// A type the proxy has no JSON form for (a module's, a vector set).
    Other(String),
}

/// A reply the proxy cannot read as it expects: Redis's fault or the
/// proxy's, never the client's, so answered 502 with this text.
#[derive(Debug, PartialEq, Eq)]
pub struct Unexpected(pub String);

/// What the read of a whole value came to.
#[derive(Debug, PartialEq)]
pub enum Reading {
    /// The value as JSON, and whether its strings are base64.
    Value { value: Json, base64: bool },
    /// Empty: Redis deletes an empty hash, list, set or zset, so the key
    /// went between `TYPE` and the read.
    Gone,
    /// WRONGTYPE: the key changed type between `TYPE` and the read.
    WrongType,
    /// Another error reply (such as NOPERM), as Redis worded it.
    Error(String),
}

/// An error reply's text, when `reply` is one (`-` in RESP2 and 3, `!` a
/// RESP3 blob error).
fn error_text(reply: &[u8]) -> Option<String> {
    let body = match reply.first()? {
        b'-' => &reply[1..],
        b'!' => {
            let at = reply.iter().position(|&b| b == b'\n')? + 1;
            &reply[at..]
        }
        _ => return None,
    };
    let body = body.strip_suffix(b"\r\n").unwrap_or(body);
    Some(String::from_utf8_lossy(body).into_owned())
}

/// Whether an error reply's text is Redis's WRONGTYPE.
pub fn is_wrong_type(text: &str) -> bool {
    text.starts_with("WRONGTYPE")
}

fn parse(reply: &[u8]) -> Result<Resp, Unexpected> {
    redis::parse_redis_value(reply)
        .map_err(|err| Unexpected(format!("unreadable reply from Redis: {err}")))
}

/// Reads `TYPE`'s reply. An error reply (NOPERM) is `Err`, as Redis said it.
pub fn parse_type(reply: &[u8]) -> Result<Type, Unexpected> {
    if let Some(text) = error_text(reply) {
        return Err(Unexpected(text));
    }
    let name = match parse(reply)? {
        Resp::SimpleString(name) => name,
        Resp::BulkString(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Resp::Okay => "OK".to_owned(),
        other => return Err(Unexpected(format!("TYPE answered {other:?}"))),
    };
    Ok(match name.as_str() {
        "none" => Type::None,
        "string" => Type::String,
        "hash" => Type::Known(Kind::Hash),
        "list" => Type::Known(Kind::List),
        "set" => Type::Known(Kind::Set),
        "zset" => Type::Known(Kind::Zset),
        "stream" => Type::Known(Kind::Stream),
        _ => Type::Other(name),
    })
}

/// Reads the reply to `kind.read(key)` into its JSON form.
pub fn render(kind: Kind, reply: &[u8]) -> Result<Reading, Unexpected> {
    if let Some(text) = error_text(reply) {
        return Ok(if is_wrong_type(&text) {
            Reading::WrongType
        } else {
            Reading::Error(text)
        });
    }
    let resp = parse(reply)?;
    let base64 = !all_utf8(&resp);
    let text = Text { base64 };
    let value = match kind {
        Kind::Hash => Json::Object(object(&resp, text)?),
        Kind::List | Kind::Set => Json::Array(
            elements(&resp)?
                .iter()
                .map(|item| text.of(item))
                .collect::<Result<_, _>>()?,
        ),
        Kind::Zset => Json::Array(
            pairs(&resp)?
                .into_iter()
                .map(|(member, score)| Ok(Json::Array(vec![text.of(member)?, score_of(score)?])))
                .collect::<Result<_, Unexpected>>()?,
        ),
        Kind::Stream => Json::Array(
            elements(&resp)?
                .iter()
                .map(|entry| stream_entry(entry, text))
                .collect::<Result<_, _>>()?,
        ),
    };
    let empty = matches!(&value, Json::Array(a) if a.is_empty())
        || matches!(&value, Json::Object(o) if o.is_empty());
    // An empty stream is a stream (XDEL of its last entry keeps the key).
    if empty && kind != Kind::Stream {
        return Ok(Reading::Gone);
    }
    Ok(Reading::Value { value, base64 })
}

/// How the strings of one value are written: as text, or all base64.
#[derive(Clone, Copy)]
struct Text {
    base64: bool,
}

impl Text {
    fn string(self, bytes: &[u8]) -> String {
        if self.base64 {
            base64::engine::general_purpose::STANDARD.encode(bytes)
        } else {
            // Checked by `all_utf8` before: never lossy here.
            String::from_utf8_lossy(bytes).into_owned()
        }
    }

    fn of(self, item: &Resp) -> Result<Json, Unexpected> {
        Ok(Json::String(self.string(bytes_of(item)?)))
    }
}

/// Whether every string in `resp` is UTF-8.
fn all_utf8(resp: &Resp) -> bool {
    match resp {
        Resp::BulkString(bytes) => std::str::from_utf8(bytes).is_ok(),
        Resp::Array(items) | Resp::Set(items) => items.iter().all(all_utf8),
        Resp::Map(pairs) => pairs.iter().all(|(k, v)| all_utf8(k) && all_utf8(v)),
        _ => true,
    }
}

/// A string's bytes (a bulk string, or the forms RESP3 may give text in).
fn bytes_of(item: &Resp) -> Result<&[u8], Unexpected> {
    match item {
        Resp::BulkString(bytes) => Ok(bytes),
        Resp::SimpleString(text) => Ok(text.as_bytes()),
        Resp::VerbatimString { text, .. } => Ok(text.as_bytes()),
        other => Err(Unexpected(format!(
            "expected a string, Redis gave {other:?}"
        ))),
    }
}

/// The items of an array or a set.
fn elements(resp: &Resp) -> Result<&[Resp], Unexpected> {
    match resp {
        Resp::Array(items) | Resp::Set(items) => Ok(items),
        other => Err(Unexpected(format!(
            "expected an array, Redis gave {other:?}"
        ))),
    }
}

/// Pairs: a RESP3 map, an array of two-item arrays (RESP3 `WITHSCORES`),
/// or a flat array of even length (RESP2).
fn pairs(resp: &Resp) -> Result<Vec<(&Resp, &Resp)>, Unexpected> {
    if let Resp::Map(pairs) = resp {
        return Ok(pairs.iter().map(|(k, v)| (k, v)).collect());
    }
    let items = elements(resp)?;
    let nested = |item: &Resp| matches!(item, Resp::Array(pair) if pair.len() == 2);
    if !items.is_empty() && items.iter().all(nested) {
        return Ok(items
            .iter()
            .filter_map(|item| match item {
                Resp::Array(pair) => Some((&pair[0], &pair[1])),
                _ => None,
            })
            .collect());
    }
    if items.len() % 2 != 0 {
        return Err(Unexpected("expected pairs, Redis gave an odd count".into()));
    }
    Ok(items.chunks_exact(2).map(|p| (&p[0], &p[1])).collect())
}

/// Field-value pairs as an object (a repeated field: the last one wins).
fn object(resp: &Resp, text: Text) -> Result<Map<String, Json>, Unexpected> {
    pairs(resp)?
        .into_iter()
        .map(|(field, value)| Ok((text.string(bytes_of(field)?), text.of(value)?)))
        .collect()
}

/// `[id, {field: value}]`; an entry whose fields Redis gave as nil keeps
/// `null`.
fn stream_entry(entry: &Resp, text: Text) -> Result<Json, Unexpected> {
    match elements(entry)? {
        [id, Resp::Nil] => Ok(Json::Array(vec![text.of(id)?, Json::Null])),
        [id, fields] => Ok(Json::Array(vec![
            text.of(id)?,
            Json::Object(object(fields, text)?),
        ])),
        other => Err(Unexpected(format!(
            "a stream entry of {} items",
            other.len()
        ))),
    }
}

/// A score as JSON: a number, or `"inf"` / `"-inf"`.
fn score_of(score: &Resp) -> Result<Json, Unexpected> {
    let value = match score {
        Resp::Double(value) => *value,
        Resp::Int(value) => *value as f64,
        other => std::str::from_utf8(bytes_of(other)?)
            .ok()
            .and_then(|text| text.parse::<f64>().ok())
            .ok_or_else(|| Unexpected(format!("a score of {other:?}")))?,
    };
    Ok(match Number::from_f64(value) {
        Some(number) => Json::Number(number),
        None if value == f64::INFINITY => Json::String("inf".into()),
        None if value == f64::NEG_INFINITY => Json::String("-inf".into()),
        None => Json::String("nan".into()),
    })
}

#[cfg(test)]
#[path = "typed_json_tests.rs"]
mod tests;
