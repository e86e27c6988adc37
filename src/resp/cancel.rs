//! Shutting a dedicated connection (`dedicated.rs`) down from the event
//! loop while its thread waits on Redis: when the client leaves, or for the
//! proxy's shutdown, which the thread then tells the client.

use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};

/// Shuts a blocking command's connection down, from the event loop, when
/// its client leaves: by [`Cancel::cancel`], or by dropping it (a client
/// closed on a reset or a read error leaves without a word); a no-op once
/// the command is over.
pub struct Cancel(pub(super) Closer);

impl Cancel {
    /// Shuts the connection down now (or as soon as it exists). True if
    /// that cut the command short: its thread had not finished (so Redis,
    /// which answers nothing once it reads a blocked client's end, would
    /// run nothing the client sent after it: `Conn::deliver`).
    pub fn cancel(&self) -> bool {
        self.0.cancel()
    }

    /// [`Cancel::cancel`] for the proxy's shutdown: the client, still
    /// there, is told the proxy is shutting down, not that Redis closed
    /// the connection.
    pub fn shut_down(&self) {
        self.0.lock().shutting_down = true;
        self.0.cancel();
    }
}

impl Drop for Cancel {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// What shuts a dedicated connection down, shared by the event loop's
/// handle and the connection's thread.
#[derive(Clone, Default)]
pub(super) struct Closer(Arc<Mutex<CancelState>>);

#[derive(Default)]
struct CancelState {
    cancelled: bool,
    /// The command's thread has its reply (whole, or an error): a cancel
    /// from now on cuts nothing short.
    finished: bool,
    /// Cancelled by the proxy's shutdown, not by the client leaving.
    shutting_down: bool,
    closer: Option<TcpStream>,
}

impl Closer {
    /// Shuts the connection down now (or as soon as it exists). True if
    /// the command had not finished ([`Closer::finish`]).
    pub(super) fn cancel(&self) -> bool {
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        state.cancelled = true;
        if let Some(closer) = state.closer.take() {
            let _ = closer.shutdown(Shutdown::Both);
        }
        !state.finished
    }

    /// The command's thread has its reply, about to be passed on: a client
    /// that leaves now leaves after it (its later requests run, as at
    /// Redis, which answers a served command before it reads the end).
    pub(super) fn finish(&self) {
        self.lock().finished = true;
    }

    /// The state, whoever held the lock last (nothing in it can be left
    /// half-changed by a panic).
    fn lock(&self) -> std::sync::MutexGuard<'_, CancelState> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the proxy's shutdown cancelled it ([`Cancel::shut_down`]).
    pub(super) fn shutting_down(&self) -> bool {
        self.lock().shutting_down
    }

    /// Registers the connection to shut; false (and shut) if the client
    /// has left already.
    pub(super) fn arm(&self, closer: TcpStream) -> bool {
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if state.cancelled {
            let _ = closer.shutdown(Shutdown::Both);
            return false;
        }
        state.closer = Some(closer);
        true
    }

    /// The command is over: leave the connection alone from now on.
    /// False if the client left meanwhile (the connection may have been
    /// shut: it must not be used again).
    pub(super) fn disarm(&self) -> bool {
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        state.closer = None;
        !state.cancelled
    }
}
