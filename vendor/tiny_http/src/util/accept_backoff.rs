//! redis-proxy patch 13: what the accept thread does while `accept` fails
//! for want of resources (out of file descriptors, most often).
//!
//! Patch 3 logged every failed retry at ERROR level, 20 lines a second for
//! as long as descriptors stayed short. Here the thread waits longer after
//! each failure in a row (10 ms, doubling, at most 250 ms, so serving
//! resumes within 250 ms of descriptors coming free), and warns at most
//! once every 30 s, saying how many failures it did not log.

use std::io;
use std::thread;
use std::time::{Duration, Instant};

/// The wait after a first failure.
const FIRST_DELAY: Duration = Duration::from_millis(10);
/// The longest wait between two tries.
const MAX_DELAY: Duration = Duration::from_millis(250);
/// At most one warning this often.
const WARN_INTERVAL: Duration = Duration::from_secs(30);

/// The accept thread's back-off and rate-limited warning.
pub(crate) struct AcceptBackoff {
    delay: Duration,
    warned: Option<Instant>,
    suppressed: u64,
}

impl AcceptBackoff {
    pub(crate) fn new() -> AcceptBackoff {
        AcceptBackoff {
            delay: FIRST_DELAY,
            warned: None,
            suppressed: 0,
        }
    }

    /// An accept (or setting up what it accepted) failed: warn unless a
    /// warning went out within `WARN_INTERVAL`, then wait before the next
    /// try, twice as long as last time, up to `MAX_DELAY`.
    pub(crate) fn failed(&mut self, error: &io::Error) {
        if self.warned.map_or(true, |at| at.elapsed() >= WARN_INTERVAL) {
            if self.suppressed == 0 {
                log::warn!("Error accepting new client, retrying: {}", error);
            } else {
                log::warn!(
                    "Error accepting new client, retrying: {} ({} more since the last warning)",
                    error,
                    self.suppressed
                );
            }
            self.warned = Some(Instant::now());
            self.suppressed = 0;
        } else {
            self.suppressed += 1;
        }
        thread::sleep(self.delay);
        self.delay = (self.delay * 2).min(MAX_DELAY);
    }

    /// A client was accepted: the next failure waits briefly again.
    pub(crate) fn succeeded(&mut self) {
        self.delay = FIRST_DELAY;
    }
}
