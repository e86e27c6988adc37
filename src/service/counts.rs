//! What the front ends report to the service for counting: requests begun
//! and answered, commands run or refused, connections opened and turned
//! away, what their tracking clients hold. The front ends say what
//! happened; which counters that moves is the metrics' business, reached
//! through here rather than from every call site. [`Service::metrics`]
//! stays for reading the figures (`/stats`, `INFO`).

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use crate::commands::Command;
use crate::metrics::{ForwardResult, ForwardedCommand, FrontEnd};

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

    /// A batch forwarded to Redis was answered, `elapsed` after a worker
    /// took it: each request counted under its command and result (for
    /// `/metrics` and `INFO commandstats`, its share of `elapsed` as its
    /// time), and as a RESP request answered well or with an error.
    pub fn forwarded(&self, batch: &Forwarded, elapsed: Duration) {
        self.metrics.forward_batch(elapsed);
        let ran = batch
            .requests
            .iter()
            .filter(|(_, result)| *result != ForwardResult::Rejected)
            .count();
        let usec = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let share = usec / u64::try_from(ran.max(1)).unwrap_or(1);
        // Counted by runs of the same command and result: a client's
        // pipeline is mostly one command.
        for run in batch.requests.chunk_by(|a, b| a == b) {
            let (command, result) = run[0];
            let n = u64::try_from(run.len()).unwrap_or(u64::MAX);
            self.metrics
                .forwarded_run(command, result, share, n, elapsed);
        }
    }

    /// Where a forwarded request of `command` (None: not in Redis's
    /// table) is counted.
    pub(super) fn forwarded_command(&self, command: Option<&Command>) -> ForwardedCommand {
        command.map_or(ForwardedCommand::OTHER, |command| {
            self.metrics.forwarded_command(&command.name)
        })
    }

    /// Counts the results of the requests `replies` (Redis's, back to back)
    /// answer, from the first request on.
    pub(super) fn redis_replies(&self, replies: &[u8], counted: &mut Forwarded) {
        let mut framer = crate::backend::raw::frame::Framer::default();
        let mut at = 0;
        let mut i = 0;
        while let Ok(Some(len)) = framer.next(&replies[at..]) {
            counted.set(i, self.redis_replied(&replies[at..at + len]));
            at += len;
            i += 1;
        }
    }

    /// How a forwarded request ended, from Redis's `reply` to it: an
    /// error (`-` or RESP3's `!`) is also counted under its code for
    /// `INFO errorstats`, as the client saw it.
    pub(super) fn redis_replied(&self, reply: &[u8]) -> ForwardResult {
        match error_code(reply) {
            Some(code) => {
                self.metrics.error_reply(&String::from_utf8_lossy(code));
                ForwardResult::Error
            }
            None => ForwardResult::Ok,
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

/// The code (`ERR`, `WRONGTYPE`) of an error reply, `-` or RESP3's `!`
/// (`!<length>\r\n<message>\r\n`); None for any other reply.
fn error_code(reply: &[u8]) -> Option<&[u8]> {
    let message = match reply.first()? {
        b'-' => &reply[1..],
        b'!' => reply
            .iter()
            .position(|&b| b == b'\n')
            .map_or(&reply[1..], |at| &reply[at + 1..]),
        _ => return None,
    };
    message.split(|&b| b == b' ' || b == b'\r').next()
}

/// What became of each request of a forwarded batch, in order: the
/// command it ran, as the metrics count it, and how it ended. Built by
/// [`Service::forward`] (one allocation a batch), counted by
/// [`Service::forwarded`] once the batch's time is known.
#[derive(Debug, Default)]
pub struct Forwarded {
    requests: Vec<(ForwardedCommand, ForwardResult)>,
}

impl Forwarded {
    pub(super) fn with_capacity(requests: usize) -> Forwarded {
        Forwarded {
            requests: Vec::with_capacity(requests),
        }
    }

    /// How many requests it has room for.
    pub(super) fn capacity(&self) -> usize {
        self.requests.capacity()
    }

    /// None counted, the room kept (a plan reused).
    pub(super) fn clear(&mut self) {
        self.requests.clear();
    }

    /// The next request, of `command`: an error until told otherwise
    /// (a request sent that got no reply).
    pub(super) fn push(&mut self, command: ForwardedCommand) {
        self.requests.push((command, ForwardResult::Error));
    }

    /// Every request was answered, none with an error.
    pub(super) fn all_ok(&mut self) {
        for request in &mut self.requests {
            request.1 = ForwardResult::Ok;
        }
    }

    /// Request `i` ended with `result`.
    pub(super) fn set(&mut self, i: usize, result: ForwardResult) {
        if let Some(request) = self.requests.get_mut(i) {
            request.1 = result;
        }
    }
}

/// A request in flight, from [`Service::request_started`] until dropped.
pub struct InFlight<'a>(&'a Service);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.metrics.in_flight(-1);
    }
}

#[cfg(test)]
mod tests {
    use super::error_code;

    #[test]
    fn error_replies_are_told_by_their_first_byte_and_counted_by_code() {
        let wrongtype = b"-WRONGTYPE Operation against a key\r\n";
        assert_eq!(error_code(wrongtype), Some(&b"WRONGTYPE"[..]));
        assert_eq!(error_code(b"-ERR\r\n"), Some(&b"ERR"[..]));
        assert_eq!(
            error_code(b"!21\r\nSYNTAX invalid syntax\r\n"),
            Some(&b"SYNTAX"[..])
        );
        for reply in [
            &b"+OK\r\n"[..],
            b":1\r\n",
            b"$4\r\n-ERR\r\n",
            b"*1\r\n-ERR x\r\n",
            b"",
        ] {
            assert_eq!(error_code(reply), None, "{reply:?}");
        }
    }
}
