//! Facts about the backing Redis server itself that clients' commands
//! depend on: how many databases it has (`SELECT n` is answered by the
//! proxy, which must refuse what Redis would refuse), and whether it is a
//! cluster (where only database 0 exists).

use super::{Backend, BackendError, Target};

impl Backend {
    /// Whether the proxy fronts a Redis Cluster (REDIS_MODE=cluster).
    pub fn is_cluster(&self) -> bool {
        matches!(self.target, Target::Cluster(_))
    }

    /// Redis's version (`version` of a bare `HELLO`, which every user may
    /// run), on a pooled connection: a round trip, so never on the RESP
    /// event loop.
    pub fn version(&self) -> Result<String, BackendError> {
        let fields: Vec<redis::Value> =
            self.query(|conn| redis::cmd("HELLO").query(conn.as_dyn()))?;
        fields
            .chunks(2)
            .find_map(|pair| match pair {
                [redis::Value::BulkString(name), redis::Value::BulkString(version)]
                    if name.as_slice() == b"version" =>
                {
                    String::from_utf8(version.clone()).ok()
                }
                _ => None,
            })
            .ok_or_else(|| BackendError::Reply("ERR HELLO gave no version".to_owned()))
    }

    /// Redis's `databases` setting (`CONFIG GET databases`), on a pooled
    /// connection: a round trip, so never on the RESP event loop. A cluster
    /// has one database. Fails when Redis cannot be reached or the proxy's
    /// user may not run `CONFIG GET` (its ACL lacks `+config|get`).
    pub fn databases(&self) -> Result<i64, BackendError> {
        if self.is_cluster() {
            return Ok(1);
        }
        let pairs: Vec<String> = self.query(|conn| {
            redis::cmd("CONFIG")
                .arg("GET")
                .arg("databases")
                .query::<Vec<String>>(conn.as_dyn())
        })?;
        pairs
            .get(1)
            .and_then(|count| count.parse::<i64>().ok())
            .filter(|count| *count > 0)
            .ok_or_else(|| {
                BackendError::Reply(format!(
                    "ERR unexpected CONFIG GET databases reply: {pairs:?}"
                ))
            })
    }
}
