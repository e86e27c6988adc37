//! Facts about the backing Redis server itself that clients' commands
//! depend on: its version (clients pick commands by it), how many
//! databases it has (`SELECT n` is answered by the proxy, which must refuse
//! what Redis would refuse), its `maxmemory` and `maxmemory-policy` (queue
//! libraries warn when the policy may evict their jobs), and whether it is
//! a cluster (where only database 0 exists).

use redis::Value;

use super::{Backend, BackendError, Target};

/// What the proxy reads about Redis when its link comes up: each fact
/// `None` when Redis refused or garbled its command (an ACL without
/// `+config|get` refuses `CONFIG GET`; every user may run a bare `HELLO`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ServerFacts {
    /// `version` of a bare `HELLO`: Redis's `redis_version`.
    pub version: Option<String>,
    /// `databases` (a cluster has one).
    pub databases: Option<i64>,
    /// `maxmemory` and `maxmemory-policy`.
    pub memory: Option<MaxMemory>,
}

/// Redis's `maxmemory` and `maxmemory-policy`, which `INFO memory` passes
/// on: they describe the server that stores the clients' data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaxMemory {
    /// Bytes, 0 for no limit.
    pub bytes: u64,
    /// Such as `noeviction` or `allkeys-lru`.
    pub policy: String,
}

impl Backend {
    /// Whether the proxy fronts a Redis Cluster (REDIS_MODE=cluster).
    pub fn is_cluster(&self) -> bool {
        matches!(self.target, Target::Cluster(_))
    }

    /// Redis's version, and with `settings` its `databases`, `maxmemory`
    /// and `maxmemory-policy`: `HELLO` and `CONFIG GET databases maxmemory
    /// maxmemory-policy` (a Redis 7 form), pipelined in one round trip on a
    /// pooled connection, so never on the RESP event loop. In a cluster,
    /// where the two go to a node each (any: the redis crate routes both at
    /// random), one node's figures, and one database. Fails only when Redis
    /// cannot be reached; a refused command leaves its facts `None`.
    pub fn facts(&self, settings: bool) -> Result<ServerFacts, BackendError> {
        if !settings {
            let hello = self.query(|conn| redis::cmd("HELLO").query::<Value>(conn.as_dyn()))?;
            let none = Ok(Value::Nil);
            return Ok(read_facts(Ok(hello), none));
        }
        if self.is_cluster() {
            let hello = self.query(|conn| redis::cmd("HELLO").query::<Value>(conn.as_dyn()))?;
            let settings = self.query(|conn| {
                redis::cmd("CONFIG")
                    .arg("GET")
                    .arg("maxmemory")
                    .arg("maxmemory-policy")
                    .query::<redis::RedisResult<Value>>(conn.as_dyn())
            })?;
            let mut facts = read_facts(Ok(hello), settings);
            facts.databases = Some(1);
            return Ok(facts);
        }
        let replies: Vec<redis::RedisResult<Value>> = self.query(|conn| {
            redis::pipe()
                .ignore_errors()
                .cmd("HELLO")
                .cmd("CONFIG")
                .arg("GET")
                .arg("databases")
                .arg("maxmemory")
                .arg("maxmemory-policy")
                .query(conn.as_dyn())
        })?;
        let mut replies = replies.into_iter();
        let missing = || {
            Err(redis::RedisError::from((
                redis::ErrorKind::Parse,
                "no reply",
            )))
        };
        let hello = replies.next().unwrap_or_else(missing);
        let settings = replies.next().unwrap_or_else(missing);
        Ok(read_facts(hello, settings))
    }
}

/// The facts in `HELLO`'s and `CONFIG GET`'s replies (RESP2 or RESP3),
/// each refusal logged (at debug: the proxy works without them).
fn read_facts(
    hello: redis::RedisResult<Value>,
    settings: redis::RedisResult<Value>,
) -> ServerFacts {
    let hello = hello.map_err(|err| log::debug!("Redis's HELLO failed: {err}"));
    let settings = settings.map_err(|err| {
        log::debug!("Redis's CONFIG GET databases maxmemory maxmemory-policy failed: {err}");
    });
    let setting = |name: &str| settings.as_ref().ok().and_then(|reply| field(reply, name));
    let number = |name: &str| setting(name).and_then(|text| text.parse::<u64>().ok());
    ServerFacts {
        version: hello
            .ok()
            .as_ref()
            .and_then(|reply| field(reply, "version")),
        databases: number("databases")
            .and_then(|count| i64::try_from(count).ok())
            .filter(|count| *count > 0),
        memory: number("maxmemory")
            .zip(setting("maxmemory-policy"))
            .map(|(bytes, policy)| MaxMemory { bytes, policy }),
    }
}

/// The text of `name`'s value in a reply of name/value pairs: a RESP3 map,
/// or a RESP2 array of names and values in turn.
fn field(reply: &Value, name: &str) -> Option<String> {
    let text = |value: &Value| match value {
        Value::BulkString(bytes) => std::str::from_utf8(bytes).ok().map(str::to_owned),
        Value::SimpleString(text) | Value::VerbatimString { text, .. } => Some(text.clone()),
        _ => None,
    };
    let is_name = |key: &Value| text(key).is_some_and(|key| key.eq_ignore_ascii_case(name));
    match reply {
        Value::Map(pairs) => pairs
            .iter()
            .find(|(key, _)| is_name(key))
            .and_then(|(_, value)| text(value)),
        Value::Array(flat) => flat
            .chunks(2)
            .find(|pair| is_name(&pair[0]))
            .and_then(|pair| pair.get(1))
            .and_then(text),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(text: &str) -> Value {
        Value::BulkString(text.as_bytes().to_vec())
    }

    fn hello_resp2() -> Value {
        Value::Array(vec![
            bulk("server"),
            bulk("redis"),
            bulk("version"),
            bulk("7.0.15"),
            bulk("proto"),
            Value::Int(2),
        ])
    }

    #[test]
    fn facts_are_read_from_resp2_and_resp3_replies() {
        let config = Value::Array(
            [
                "databases",
                "16",
                "maxmemory",
                "1048576",
                "maxmemory-policy",
                "allkeys-lru",
            ]
            .map(bulk)
            .to_vec(),
        );
        let expected = ServerFacts {
            version: Some("7.0.15".to_owned()),
            databases: Some(16),
            memory: Some(MaxMemory {
                bytes: 1 << 20,
                policy: "allkeys-lru".to_owned(),
            }),
        };
        assert_eq!(read_facts(Ok(hello_resp2()), Ok(config)), expected);
        // RESP3: maps; CONFIG GET's in whatever order Redis keeps them.
        let hello = Value::Map(vec![
            (bulk("server"), bulk("redis")),
            (bulk("version"), bulk("7.0.15")),
        ]);
        let config = Value::Map(vec![
            (bulk("maxmemory-policy"), bulk("allkeys-lru")),
            (bulk("maxmemory"), bulk("1048576")),
            (bulk("databases"), bulk("16")),
        ]);
        assert_eq!(read_facts(Ok(hello), Ok(config)), expected);
    }

    #[test]
    fn a_refused_or_odd_reply_leaves_its_facts_unknown() {
        let refused = || {
            Err(redis::RedisError::from((
                redis::ErrorKind::Parse,
                "NOPERM this user has no permissions to run the 'config|get' command",
            )))
        };
        let facts = read_facts(Ok(hello_resp2()), refused());
        assert_eq!(facts.version.as_deref(), Some("7.0.15"));
        assert_eq!((facts.databases, facts.memory), (None, None));
        assert_eq!(read_facts(refused(), refused()), ServerFacts::default());
        // A policy without a size, a size that is no number, no databases.
        let config = Value::Array(
            [
                "databases",
                "0",
                "maxmemory",
                "lots",
                "maxmemory-policy",
                "noeviction",
            ]
            .map(bulk)
            .to_vec(),
        );
        assert_eq!(
            read_facts(Ok(Value::Nil), Ok(config)),
            ServerFacts::default()
        );
        // An odd number of elements: the last name has no value.
        let config = Value::Array(vec![bulk("databases")]);
        assert_eq!(
            read_facts(Ok(Value::Nil), Ok(config)),
            ServerFacts::default()
        );
    }
}
