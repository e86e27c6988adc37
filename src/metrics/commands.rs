//! Per-command and per-error counts of the RESP front end, for `INFO
//! commandstats` and `INFO errorstats` as Redis keeps them.
//!
//! Commands are counted by their index in the RESP command table (the
//! front end knows the names), two relaxed atomic adds a command. Error
//! replies, off the hot path, are counted by their code (the first word of
//! the message, `ERR`, `NOAUTH`...) under a lock; at most [`MAX_ERROR_CODES`]
//! codes are kept, as Redis stops at 128.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::PoisonError;
use std::time::Duration;

use super::Metrics;

/// Most commands counted: the RESP table's length must stay below it.
pub const MAX_COMMANDS: usize = 32;

/// Most distinct error codes counted (Redis's `ERRORSTATS_LIMIT`).
const MAX_ERROR_CODES: usize = 128;

/// Most distinct subcommands counted (`client|setname`...); a client sending
/// made-up ones cannot grow the list past it.
const MAX_SUBCOMMANDS: usize = 64;

/// One command's counts.
#[derive(Default)]
pub(super) struct CommandCounters {
    pub(super) calls: AtomicU64,
    pub(super) usec: AtomicU64,
    pub(super) rejected: AtomicU64,
    pub(super) failed: AtomicU64,
}

impl CommandCounters {
    /// What they count now.
    pub(super) fn figures(&self) -> CommandFigures {
        CommandFigures {
            calls: self.calls.load(Relaxed),
            usec: self.usec.load(Relaxed),
            rejected: self.rejected.load(Relaxed),
            failed: self.failed.load(Relaxed),
        }
    }
}

/// What `INFO commandstats` shows of one command.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CommandFigures {
    /// Times it ran (failed runs included, rejected ones not).
    pub calls: u64,
    /// Microseconds spent in it, all calls together.
    pub usec: u64,
    /// Times it was refused before running (arity, authentication, a
    /// subscribed connection).
    pub rejected: u64,
    /// Runs that ended in an error reply.
    pub failed: u64,
}

impl CommandFigures {
    /// Adds `other`'s counts: one command counted in two places.
    pub(super) fn add(&mut self, other: &CommandFigures) {
        self.calls += other.calls;
        self.usec += other.usec;
        self.rejected += other.rejected;
        self.failed += other.failed;
    }
}

impl Metrics {
    /// Command `index` of the RESP table ran, `ok` or answering an error,
    /// in `elapsed`.
    pub fn command_done(&self, index: usize, ok: bool, elapsed: Duration) {
        let Some(counters) = self.commands.get(index) else {
            return;
        };
        counters.calls.fetch_add(1, Relaxed);
        let usec = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        counters.usec.fetch_add(usec, Relaxed);
        if !ok {
            counters.failed.fetch_add(1, Relaxed);
        }
    }

    /// Command `index` was refused before it ran.
    pub fn command_rejected(&self, index: usize) {
        if let Some(counters) = self.commands.get(index) {
            counters.rejected.fetch_add(1, Relaxed);
        }
    }

    /// The counts of command `index`.
    pub fn command_figures(&self, index: usize) -> CommandFigures {
        self.commands
            .get(index)
            .map_or(CommandFigures::default(), CommandCounters::figures)
    }

    /// A subcommand (`client|setname`, written so by the caller) ran, or
    /// was `rejected` before running; counted under a lock, as subcommands
    /// are never on the request path. Past [`MAX_SUBCOMMANDS`] names, new
    /// ones are not counted.
    pub fn subcommand_done(&self, name: &str, ok: bool, rejected: bool, elapsed: Duration) {
        let mut list = self
            .subcommands
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let position = list.iter().position(|(n, _)| n == name);
        let figures = match position {
            Some(i) => &mut list[i].1,
            None if list.len() < MAX_SUBCOMMANDS => {
                list.push((name.to_owned(), CommandFigures::default()));
                let last = list.len() - 1;
                &mut list[last].1
            }
            None => return,
        };
        if rejected {
            figures.rejected += 1;
            return;
        }
        figures.calls += 1;
        figures.usec += u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        if !ok {
            figures.failed += 1;
        }
    }

    /// The counts of every subcommand used, in the order first used.
    pub fn subcommand_figures(&self) -> Vec<(String, CommandFigures)> {
        self.subcommands
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// An error reply went out with `message`: counted under its code.
    pub fn error_reply(&self, message: &str) {
        let code = message.split(' ').next().unwrap_or_default();
        let mut codes = self.errors.lock().unwrap_or_else(PoisonError::into_inner);
        codes.0 += 1;
        if let Some(entry) = codes.1.iter_mut().find(|(c, _)| c == code) {
            entry.1 += 1;
        } else if codes.1.len() < MAX_ERROR_CODES {
            codes.1.push((code.to_owned(), 1));
        }
    }

    /// Error replies so far (`total_error_replies`), and the count of each
    /// code, in the order they first appeared.
    pub fn error_figures(&self) -> (u64, Vec<(String, u64)>) {
        let codes = self.errors.lock().unwrap_or_else(PoisonError::into_inner);
        (codes.0, codes.1.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_errors_are_counted_as_redis_counts_them() {
        let metrics = Metrics::new();
        metrics.command_done(1, true, Duration::from_micros(10));
        metrics.command_done(1, false, Duration::from_micros(5));
        metrics.command_rejected(1);
        metrics.command_done(MAX_COMMANDS, true, Duration::ZERO);
        assert_eq!(
            metrics.command_figures(1),
            CommandFigures {
                calls: 2,
                usec: 15,
                rejected: 1,
                failed: 1
            }
        );
        metrics.error_reply("ERR wrong number of arguments");
        metrics.error_reply("NOAUTH Authentication required.");
        metrics.error_reply("ERR unknown command");
        metrics.subcommand_done("client|setname", true, false, Duration::from_micros(3));
        metrics.subcommand_done("client|setname", false, false, Duration::from_micros(1));
        metrics.subcommand_done("config|get", false, true, Duration::ZERO);
        assert_eq!(
            metrics.subcommand_figures(),
            vec![
                (
                    "client|setname".to_owned(),
                    CommandFigures {
                        calls: 2,
                        usec: 4,
                        rejected: 0,
                        failed: 1
                    }
                ),
                (
                    "config|get".to_owned(),
                    CommandFigures {
                        calls: 0,
                        usec: 0,
                        rejected: 1,
                        failed: 0
                    }
                ),
            ]
        );
        assert_eq!(
            metrics.error_figures(),
            (3, vec![("ERR".to_owned(), 2), ("NOAUTH".to_owned(), 1)])
        );
    }
}
