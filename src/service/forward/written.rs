//! What a write through the proxy changes: the keys dropped from the
//! cache (and fetches in flight for them marked stale) before its reply
//! goes back, and the keys a tracking client's forwarded reads read.

use std::ops::Range;

use crate::commands::{Class, Command, CommandTable, KeyRef, NoKeys, READONLY, WRITE};

use super::super::{Change, Service};
use super::Batch;

/// Commands without keys that change every key of a database or more.
const FLUSHING: &[&str] = &["flushall", "flushdb", "swapdb"];

/// What a batch's writes change, worked out as the batch is routed (each
/// request's arguments and command at hand then), so that dropping them
/// once the replies are in reads no request again.
#[derive(Debug, Default)]
pub(super) struct Written {
    /// The written keys, as ranges of the batch's bytes.
    keys: Vec<Range<usize>>,
    /// A write whose keys cannot be known, or a flush: everything.
    everything: bool,
    /// The last write noted's keys (their positions in its arguments;
    /// reads routed between do not clear them).
    refs: Vec<KeyRef>,
    /// For which command (its address) and number of arguments the last
    /// write noted's keys (`refs`, and whether they were found) are good
    /// again, when that command's keys follow from the count alone
    /// (`Command::keys_by_count`: a pipeline of HSET finds them once).
    last: Option<((usize, usize), Result<(), NoKeys>)>,
}

impl Written {
    /// How many keys it has room for (a plan kept for reuse is not a
    /// large one).
    pub(super) fn capacity(&self) -> usize {
        self.keys.capacity()
    }

    /// Nothing noted, its lists' room kept (a plan reused).
    pub(super) fn clear(&mut self) {
        self.keys.clear();
        self.everything = false;
        self.refs.clear();
        self.last = None;
    }

    /// Notes what request `i` of `batch` (`argv`, a write of `command`)
    /// changes.
    pub(super) fn note(&mut self, command: &Command, batch: &Batch, i: usize, argv: &[&[u8]]) {
        if self.note_again(command, batch, i) {
            return;
        }
        let found = command.keys(argv, &mut self.refs);
        self.last = command
            .keys_by_count
            .then_some(((command as *const Command as usize, argv.len()), found));
        self.apply(found, command, batch, i);
    }

    /// Notes request `i` of `batch`, a write of `command`, without reading
    /// its arguments, when the last write noted was of that command with
    /// as many arguments and its keys' positions follow from the count;
    /// false otherwise, and nothing noted.
    pub(super) fn note_again(&mut self, command: &Command, batch: &Batch, i: usize) -> bool {
        let run = (
            command as *const Command as usize,
            batch.arg_ranges(i).len(),
        );
        match self.last {
            Some((last, found)) if last == run => {
                self.apply(found, command, batch, i);
                true
            }
            _ => false,
        }
    }

    /// What the last write noted, if it was of `command` with `argc`
    /// arguments and its keys' positions follow from that count, does to
    /// another request of the same command and count, its keys' positions
    /// copied into `refs`; None otherwise.
    pub(super) fn last_effect(
        &self,
        command: &Command,
        argc: usize,
        refs: &mut Vec<KeyRef>,
    ) -> Option<Effect> {
        let (last, found) = self.last?;
        if last != (command as *const Command as usize, argc) {
            return None;
        }
        refs.clear();
        refs.extend_from_slice(&self.refs);
        Some(effect(found, refs, command))
    }

    /// Notes a request whose arguments lie at `ranges` in the batch, of
    /// the same command and number of arguments as a write noted before,
    /// whose keys' positions follow from that count (the caller checked):
    /// `effect` and `refs`, [`Written::last_effect`] of that write.
    pub(super) fn note_run(&mut self, effect: Effect, refs: &[KeyRef], ranges: &[Range<usize>]) {
        match effect {
            Effect::Keys => {
                for key in refs {
                    self.keys.push(ranges[key.index].clone());
                }
            }
            Effect::Everything => self.everything = true,
            Effect::Nothing => {}
        }
    }

    /// Notes what `found` (the keys in `refs`, for request `i`) says.
    fn apply(&mut self, found: Result<(), NoKeys>, command: &Command, batch: &Batch, i: usize) {
        match effect(found, &self.refs, command) {
            Effect::Everything => self.everything = true,
            Effect::Keys => {
                if self.keys.is_empty() {
                    // Sized once for a batch of writes of a key each (as a
                    // pipeline of SET, HSET, LPUSH), rather than grown.
                    self.keys.reserve(batch.len() - i);
                }
                let ranges = batch.arg_ranges(i);
                self.keys
                    .extend(self.refs.iter().map(|r| ranges[r.index].clone()));
            }
            Effect::Nothing => {}
        }
    }
}

/// What a write does to the cache.
#[derive(Clone, Copy, Debug)]
pub(super) enum Effect {
    /// Its keys (their positions found) are dropped.
    Keys,
    /// Everything is dropped.
    Everything,
    /// Nothing: Redis refuses it.
    Nothing,
}

/// What a write of `command` whose keys were `found` (their positions in
/// `refs`) does.
fn effect(found: Result<(), NoKeys>, refs: &[KeyRef], command: &Command) -> Effect {
    match found {
        Ok(()) if refs.is_empty() && FLUSHING.contains(&command.name.as_str()) => {
            Effect::Everything
        }
        Ok(()) => Effect::Keys,
        // Redis refuses a request whose keys do not parse; or it
        // declares none (EVAL, FCALL with no keys: a script's
        // undeclared keys are not known, docs/forwarding.md).
        Err(NoKeys::Invalid) => Effect::Nothing,
        Err(NoKeys::Unknown) => Effect::Everything,
    }
}

impl Service {
    /// Drops from the cache every key `written` names (slices of `batch`;
    /// all of it where a write's keys cannot be known, or a flush),
    /// marking fetches in flight for them stale, and tells tracking
    /// clients.
    pub(super) fn drop_written(&self, batch: &Batch, written: &Written) {
        if written.everything {
            self.drop_everything();
        } else if !written.keys.is_empty() {
            // Borrowed from the batch: a key is copied only for a listener.
            let bytes = batch.frames();
            let keys = written.keys.iter().map(|r| &bytes[r.clone()]);
            self.core.invalidate(keys.clone());
            self.announce(|| Change::Keys(keys.map(<[u8]>::to_vec).collect()));
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
        self.drop_written(batch, &written(&table, batch));
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

/// What `batch`'s writes change (a blocking write such as BLMOVE
/// included), for a batch not routed here.
pub(super) fn written(table: &CommandTable, batch: &Batch) -> Written {
    let mut argv = Vec::new();
    let mut written = Written::default();
    for i in 0..batch.len() {
        batch.argv(i, &mut argv);
        let Some(command) = table.lookup(&argv) else {
            continue;
        };
        if command.flags & WRITE != 0 || command.class(&argv) == Class::Write {
            written.note(command, batch, i, &argv);
        }
    }
    written
}
