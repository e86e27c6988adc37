//! The command table (`crate::commands`), fetched from Redis with
//! `COMMAND` on a pooled connection the first time it is wanted, and again
//! after the invalidation link reconnects (Redis may have restarted as
//! another version, or loaded a module).
//!
//! The reply is some 100-300 KB: it is read and parsed by the one thread
//! that wants the table first, never on the RESP event loop, and while a
//! refresh runs the others go on with the table they had.

use std::sync::{Arc, Mutex, PoisonError};

use crate::commands::CommandTable;

use super::{Backend, BackendError};

/// The table last read, and whether it must be read again.
#[derive(Default)]
pub(super) struct Cached {
    state: Mutex<State>,
    /// Held by the one thread fetching the table.
    fetching: Mutex<()>,
}

#[derive(Default)]
struct State {
    table: Option<Arc<CommandTable>>,
    stale: bool,
}

impl Cached {
    /// The table, unless there is none or it must be read again; the
    /// table however old, with `stale` set.
    fn current(&self) -> (Option<Arc<CommandTable>>, bool) {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        (state.table.clone(), state.stale)
    }
}

impl Backend {
    /// Redis's command table: one lock and a refcount on the way out once
    /// read; the first call (and the first after
    /// [`Backend::commands_changed`]) asks Redis.
    pub fn commands(&self) -> Result<Arc<CommandTable>, BackendError> {
        let cached = &self.commands;
        let (old, stale) = cached.current();
        match old.clone() {
            Some(table) if !stale => return Ok(table),
            // Another thread is refreshing it: keep to the old one.
            Some(table) => match cached.fetching.try_lock() {
                Ok(guard) => drop(guard),
                Err(_) => return Ok(table),
            },
            None => {}
        }
        let _fetching = cached
            .fetching
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Whoever held the lock before may have read it meanwhile.
        if let (Some(table), false) = cached.current() {
            return Ok(table);
        }
        let read = self
            .query(|conn| redis::cmd("COMMAND").query::<redis::Value>(conn.as_dyn()))
            .and_then(|reply| {
                CommandTable::parse(&reply).map_err(|err| BackendError::Reply(format!("ERR {err}")))
            });
        let table = match (read, old) {
            (Ok(table), _) => table,
            // Refreshing failed: the old table serves until the next try.
            (Err(err), Some(old)) => {
                log::debug!("command table not read again: {err}");
                return Ok(old);
            }
            (Err(err), None) => return Err(err),
        };
        let table = Arc::new(table);
        log::debug!("command table read from Redis: {} commands", table.len());
        let mut state = cached.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.table = Some(Arc::clone(&table));
        state.stale = false;
        Ok(table)
    }

    /// Redis may have changed (the invalidation link reconnected): the next
    /// [`Backend::commands`] reads the table again.
    /// The table if it has been read, without asking Redis (for the event
    /// loop, which must never wait on it).
    pub fn commands_known(&self) -> Option<Arc<CommandTable>> {
        self.commands.current().0
    }

    /// The table if it has been read and need not be read again (for the
    /// event loop: a stale one sends batches to a worker, which reads it).
    pub fn commands_fresh(&self) -> Option<Arc<CommandTable>> {
        match self.commands.current() {
            (Some(table), false) => Some(table),
            _ => None,
        }
    }

    /// Redis's table must be read again (the link reconnected).
    pub fn commands_changed(&self) {
        let mut state = self
            .commands
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        state.stale = true;
    }
}
