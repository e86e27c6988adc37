//! TEMPORARY stand-in for `Service::read_reply` (issue #22), which the
//! `replycache` branch is building: it lets the HTTP JSON for every type
//! (`http::typed`) be written and tested end to end before that lands.
//! It reads straight from Redis every time (nothing cached, nothing
//! coalesced) on a pooled forwarding connection. Delete this file, and its
//! `mod` line in `service/mod.rs`, when `replycache` is merged.

use std::time::Duration;

use super::{Batch, Client, Found, ReadError, Service, Source, Value};

impl Service {
    /// TEMPORARY (see the module doc): Redis's reply to `args`, byte for
    /// byte, in `client`'s protocol and database; never cached.
    pub fn read_reply(&self, client: Client, args: &[&[u8]]) -> Result<Found, ReadError> {
        let mut batch = Batch::with_capacity(64);
        batch.push(args, false);
        let mut out = Vec::new();
        self.backend
            .forward(client.resp3, client.db, batch.frames(), 1, &mut out)
            .map_err(|err| ReadError::from(err.error))?;
        Ok(Found {
            value: Value::new(&out),
            source: Source::Miss,
            fresh_for: Duration::ZERO,
            age: Duration::ZERO,
        })
    }
}
