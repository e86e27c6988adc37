//! The readiness probe: `PING` (a cluster: `CLUSTER INFO`) on a connection
//! of its own, outside the pool, so a pool busy with misses does not make a
//! healthy Redis look down.

use super::{connect_failure, Backend, BackendError, RedisConn};

impl Backend {
    /// `PING` on the backing Redis (a cluster: `CLUSTER INFO` saying
    /// `cluster_state:ok`), for readiness checks, on the probe's own
    /// connection (opened again after any failure) and within the Redis
    /// timeout, so it reports Redis's state rather than the pool's load.
    /// Probes that overlap do not queue: a second one uses a fresh connection.
    pub fn ping(&self) -> Result<(), BackendError> {
        let mut spare = None;
        let mut held = self.probe.try_lock().ok();
        let slot = match held.as_deref_mut() {
            Some(slot) => slot,
            None => &mut spare,
        };
        let reused = slot.is_some();
        let mut result = self.ping_on(slot);
        if reused && matches!(result, Err(BackendError::Unavailable(_))) {
            // The kept connection failed (an end of file, when Redis
            // stopped): a fresh one says why Redis cannot be reached.
            *slot = None;
            result = self.ping_on(slot);
        }
        if result.is_err() {
            *slot = None;
        }
        result
    }

    fn connect_probe(&self) -> Result<(RedisConn, u64), BackendError> {
        self.target
            .connect(self.timeout)
            .map_err(|err| BackendError::Unavailable(connect_failure(&err, &self.target)))
    }

    fn ping_on(&self, slot: &mut Option<(RedisConn, u64)>) -> Result<(), BackendError> {
        if slot
            .as_ref()
            .is_some_and(|(_, generation)| *generation != self.target.generation())
        {
            *slot = None;
        }
        let (conn, _) = match slot {
            Some(conn) => conn,
            None => slot.insert(self.connect_probe()?),
        };
        let classify = |err: redis::RedisError| match err.code() {
            Some(_) => BackendError::Reply(err.to_string()),
            None if err.is_timeout() => BackendError::Timeout(err.to_string()),
            None => BackendError::Unavailable(err.to_string()),
        };
        if let RedisConn::Cluster(_) = conn {
            let info: String = redis::cmd("CLUSTER")
                .arg("INFO")
                .query(conn.as_dyn())
                .map_err(|err| {
                    let kind = err.kind();
                    self.in_cluster_terms(classify(err), kind)
                })?;
            return match info.lines().any(|line| line.trim() == "cluster_state:ok") {
                true => Ok(()),
                false => Err(BackendError::Unavailable(
                    "the cluster does not say cluster_state:ok".to_owned(),
                )),
            };
        }
        redis::cmd("PING")
            .query::<String>(conn.as_dyn())
            .map(drop)
            .map_err(classify)
    }
}
