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

    /// Redis's version (`redis_version` of `INFO server`), on a pooled
    /// connection: a round trip, so never on the RESP event loop.
    pub fn version(&self) -> Result<String, BackendError> {
        let info: String = self.query(|conn| redis::cmd("INFO").arg("server").query(conn))?;
        info.lines()
            .find_map(|line| line.trim().strip_prefix("redis_version:"))
            .map(str::to_owned)
            .ok_or_else(|| BackendError::Reply("ERR INFO server gave no redis_version".to_owned()))
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
                .query::<Vec<String>>(conn)
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
