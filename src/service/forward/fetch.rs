//! A batch the proxy itself sends for its cache (a cacheable read and the
//! PTTL of each of its keys, issue #22), routed as clients' batches are
//! (in cluster mode, each request to its key's master), but with a failure
//! to deliver returned as an error rather than written as replies.

use super::super::{Forwarded, ReadError, Service};
use super::{Batch, Client, Route, Wait, Written};

impl Service {
    /// Sends `batch` for `client` on a pooled connection and appends one
    /// reply per request to `out`, Redis's byte for byte. A request the
    /// proxy refuses is `Err(ReadError::Reply)` with the refusal's words,
    /// sending nothing; Redis unreachable, or a reply missing, is an `Err`
    /// too. Nothing is counted as forwarded: these are the cache's own
    /// reads, bounded by REDIS_TIMEOUT_MS (not FORWARD_TIMEOUT_MS), so
    /// stale-if-error can answer when Redis is slow.
    pub(in crate::service) fn fetch_batch(
        &self,
        batch: &Batch,
        client: Client,
        out: &mut Vec<u8>,
    ) -> Result<(), ReadError> {
        let table = self.commands()?;
        let mut counted = Forwarded::with_capacity(batch.len());
        let mut written = Written::default();
        let routes = self.route_batch(&table, batch, client, &mut counted, &mut written);
        if let Some(Route::Refuse(message)) = routes
            .iter()
            .find(|route| matches!(route, Route::Refuse(_)))
        {
            return Err(ReadError::Reply(message.clone()));
        }
        let delivered = match self.backend.is_cluster() {
            true => self.send_routed(batch, &routes, (client, Wait::Own), out),
            false => self.send(batch.frames(), batch.len(), (client, Wait::Own), None, out),
        };
        match delivered.answered == batch.len() {
            true => Ok(()),
            false => Err(delivered.read_error()),
        }
    }
}
