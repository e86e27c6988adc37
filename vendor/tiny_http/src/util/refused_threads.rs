//! redis-proxy patch 24: the warning when the OS refuses the task pool a
//! thread (RLIMIT_NPROC, a cgroup's `pids.max` or systemd's `TasksMax`,
//! `kernel.threads-max`, memory).
//!
//! The connection that needed the thread is closed; others keep coming
//! while the limit holds, so, as for failed accepts (patch 13), at most one
//! warning goes out every 30 s, saying how many refusals it did not log.

use std::cell::Cell;
use std::io;
use std::time::{Duration, Instant};

/// At most one warning this often.
const WARN_INTERVAL: Duration = Duration::from_secs(30);

/// The rate-limited warning of the pool's failed thread starts. Used by
/// the accept thread alone, which owns the pool.
pub(crate) struct RefusedThreads {
    warned: Cell<Option<Instant>>,
    suppressed: Cell<u64>,
}

impl RefusedThreads {
    pub(crate) fn new() -> RefusedThreads {
        RefusedThreads {
            warned: Cell::new(None),
            suppressed: Cell::new(0),
        }
    }

    /// A thread for a new client could not be started, so the client is
    /// closed: warn unless a warning went out within `WARN_INTERVAL`.
    pub(crate) fn refused(&self, error: &io::Error) {
        if self
            .warned
            .get()
            .is_some_and(|at| at.elapsed() < WARN_INTERVAL)
        {
            self.suppressed.set(self.suppressed.get() + 1);
            return;
        }
        match self.suppressed.replace(0) {
            0 => log::warn!("No thread for a new client, closing it: {}", error),
            n => log::warn!(
                "No thread for a new client, closing it: {} ({} more since the last warning)",
                error,
                n
            ),
        }
        self.warned.set(Some(Instant::now()));
    }
}
