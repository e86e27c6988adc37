//! What the front ends report to the service for counting: requests begun
//! and answered, commands run or refused, connections opened and turned
//! away, what their tracking clients hold. The front ends say what
//! happened; which counters that moves is the metrics' business, reached
//! through here rather than from every call site. [`Service::metrics`]
//! stays for reading the figures (`/stats`, `INFO`).

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use crate::metrics::FrontEnd;

use super::{LinkState, Service};

impl Service {
    /// A request began to be served (either front end): counted in flight
    /// until the returned guard drops, so a request that panics is not
    /// counted in flight for ever.
    pub fn request_started(&self) -> InFlight<'_> {
        self.metrics.in_flight(1);
        InFlight(self)
    }

    /// An HTTP request was answered with `status`, `elapsed` after it came.
    pub fn http_answered(&self, status: u16, elapsed: Duration) {
        self.metrics.http_request(status, elapsed);
    }

    /// A RESP command was answered, well (`ok`) or with an error reply.
    pub fn resp_answered(&self, ok: bool, elapsed: Duration) {
        self.metrics.resp_request(ok, elapsed);
    }

    /// A batch of `requests` forwarded to Redis was answered.
    pub fn forwarded(&self, requests: usize, elapsed: Duration) {
        for _ in 0..requests {
            self.metrics.resp_request(true, elapsed);
        }
    }

    /// The RESP command at `index` of the command table ran.
    pub fn command_done(&self, index: usize, ok: bool, elapsed: Duration) {
        self.metrics.command_done(index, ok, elapsed);
    }

    /// The RESP command at `index` was refused before it ran.
    pub fn command_rejected(&self, index: usize) {
        self.metrics.command_rejected(index);
    }

    /// A container's subcommand (`client|setname`) ran, or was refused.
    pub fn subcommand_done(&self, name: &str, ok: bool, rejected: bool, elapsed: Duration) {
        self.metrics.subcommand_done(name, ok, rejected, elapsed);
    }

    /// An error reply was sent (counted by its code, `ERR`, `WRONGTYPE`).
    pub fn error_replied(&self, message: &str) {
        self.metrics.error_reply(message);
    }

    /// `open` is the number of `front_end`'s open connections, read when
    /// the metrics are rendered.
    pub fn watch_connections(&self, front_end: FrontEnd, open: Arc<AtomicUsize>) {
        self.metrics.watch_connections(front_end, open);
    }

    /// A RESP client was accepted.
    pub fn resp_connection_opened(&self) {
        self.metrics.resp_connection();
    }

    /// A RESP client was turned away at MAX_CONNECTIONS.
    pub fn resp_connection_rejected(&self) {
        self.metrics.resp_rejected();
    }

    /// How many RESP clients track keys now.
    pub fn set_tracking_clients(&self, clients: usize) {
        self.metrics.set_tracking_clients(clients);
    }

    /// Changes to `keys` keys were passed on to tracking clients.
    pub fn client_tracking_changed(&self, keys: u64) {
        self.metrics.client_tracking_changed(keys);
    }

    /// The size of the RESP tracking table now.
    pub fn set_client_tracking(&self, keys: u64, bytes: u64, prefixes: u64) {
        self.metrics.set_client_tracking(keys, bytes, prefixes);
    }

    /// The Prometheus exposition of every counter, as `/metrics` serves it.
    pub fn render_metrics(&self) -> String {
        self.metrics
            .set_invalidation_enabled(self.link_state() != LinkState::Off);
        self.metrics.render()
    }
}

/// A request in flight, from [`Service::request_started`] until dropped.
pub struct InFlight<'a>(&'a Service);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.metrics.in_flight(-1);
    }
}
