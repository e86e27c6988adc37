//! What a write through the proxy changes: the keys dropped from the
//! cache (and fetches in flight for them marked stale) before its reply
//! goes back, and the keys a tracking client's forwarded reads read.

use crate::commands::{Class, CommandTable, KeyRef, NoKeys, READONLY, WRITE};

use super::super::{Change, Service};
use super::lookups::Lookups;
use super::{Batch, Route};

/// Commands without keys that change every key of a database or more.
const FLUSHING: &[&str] = &["flushall", "flushdb", "swapdb"];

impl Service {
    /// Drops from the cache every key the batch's writes touched (all of
    /// it where a write's keys cannot be known, or a flush), marking
    /// fetches in flight for them stale, and tells tracking clients.
    pub(super) fn drop_written(&self, table: &CommandTable, batch: &Batch, routes: &[Route]) {
        // A batch of reads drops nothing: nothing to allocate for it.
        if !routes
            .iter()
            .any(|route| matches!(route, Route::Send { write: true, .. }))
        {
            return;
        }
        // Sized once for a batch of writes of a key each (as a pipeline of
        // SET, HSET, LPUSH), rather than grown step by step.
        let mut argv = Vec::with_capacity(8);
        let mut refs: Vec<KeyRef> = Vec::with_capacity(4);
        // Borrowed from the batch: a key is copied only for a listener.
        let mut keys: Vec<&[u8]> = Vec::with_capacity(routes.len());
        let mut everything = false;
        let mut lookups = Lookups::new(table);
        for (i, route) in routes.iter().enumerate() {
            if !matches!(route, Route::Send { write: true, .. }) {
                continue;
            }
            batch.argv(i, &mut argv);
            let Some(command) = lookups.lookup(&argv) else {
                continue;
            };
            match command.keys(&argv, &mut refs) {
                Ok(()) if refs.is_empty() && FLUSHING.contains(&command.name.as_str()) => {
                    everything = true;
                }
                Ok(()) => keys.extend(refs.iter().map(|r| argv[r.index])),
                // Redis refuses a request whose keys do not parse; or it
                // declares none (EVAL, FCALL with no keys: a script's
                // undeclared keys are not known, docs/forwarding.md).
                Err(NoKeys::Invalid) => {}
                Err(NoKeys::Unknown) => everything = true,
            }
        }
        if everything {
            self.drop_everything();
        } else if !keys.is_empty() {
            self.core.invalidate(&keys);
            self.announce(|| Change::Keys(keys.iter().map(|key| key.to_vec()).collect()));
        }
    }

    /// Drops the keys `batch`'s writes will change, before it is sent on a
    /// connection whose replies the service does not see (a client's
    /// subscription connection, where RESP3 allows any command). Without
    /// Redis's table yet, anything but the Pub/Sub commands drops all.
    pub fn drop_before_sending(&self, batch: &Batch) {
        let mut argv = Vec::new();
        let Some(table) = self.backend.commands_known() else {
            let harmless = (0..batch.len()).all(|i| {
                batch.argv(i, &mut argv);
                argv.first().is_some_and(|name| {
                    let name = String::from_utf8_lossy(name).to_ascii_lowercase();
                    name.ends_with("subscribe") || name == "ping"
                })
            });
            if !harmless {
                self.drop_everything();
            }
            return;
        };
        self.drop_written(&table, batch, &writes(&table, batch));
    }

    /// The positions in `argv` of the keys a forwarded request reads, for
    /// a client that tracks them (`CLIENT TRACKING`, as Redis remembers
    /// the keys of its read-only commands), into `out`. Without Redis's
    /// table yet (the event loop never waits for it), every argument:
    /// more than the keys, so at worst a spurious invalidation.
    pub fn keys_read(&self, argv: &[&[u8]], out: &mut Vec<usize>) {
        out.clear();
        let Some(table) = self.backend.commands_known() else {
            out.extend(1..argv.len());
            return;
        };
        let Some(command) = table.lookup(argv) else {
            return;
        };
        if command.flags & READONLY == 0 {
            return;
        }
        let mut refs = Vec::new();
        match command.keys(argv, &mut refs) {
            Ok(()) => out.extend(refs.iter().map(|r| r.index)),
            Err(NoKeys::Unknown) => out.extend(1..argv.len()),
            Err(NoKeys::Invalid) => {}
        }
    }

    /// After a write whose keys cannot be known: nothing cached can be
    /// vouched for.
    pub(super) fn drop_everything(&self) {
        self.core.flush();
        self.metrics.flushed("write");
        self.announce(|| Change::All);
    }
}

/// Each request of `batch` as sent, marked a write when it may change its
/// keys (a blocking write such as BLMOVE included).
pub(super) fn writes(table: &CommandTable, batch: &Batch) -> Vec<Route> {
    let mut argv = Vec::new();
    (0..batch.len())
        .map(|i| {
            batch.argv(i, &mut argv);
            let write = table
                .lookup(&argv)
                .is_some_and(|c| c.flags & WRITE != 0 || c.class(&argv) == Class::Write);
            Route::Send {
                write,
                dest: crate::backend::Dest::Any,
            }
        })
        .collect()
}
