//! Ending a dedicated connection (`dedicated.rs`) from the event loop while
//! its thread waits on Redis: when the client leaves, or for the proxy's
//! shutdown, which the thread then tells the client.
//!
//! A blocking command's client that closes its side (a FIN, perhaps a
//! half-close) has its end passed on to Redis as Redis would have read it:
//! behind the request, as a half-close of the command's connection. So
//! Redis decides, exactly as for the client itself: a command it can
//! answer at once is answered (the reply comes back whole, and what the
//! client sent after it runs, as at Redis), one that blocks is dropped
//! when Redis reads the end (it frees the client: nothing popped, no
//! reply, nothing after it runs). A client that is gone (a reset, a read
//! error, closed by the proxy) or the proxy's shutdown shuts the
//! connection at once, both ways, and a request not yet written is never
//! sent: no one would read its reply.

use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex, PoisonError};

use super::fence::Start;

/// Ends a blocking command's connection, from the event loop, when its
/// client leaves: by [`Cancel::cancel`] (its end read), or by dropping it
/// (gone without a word); a no-op once the command is over.
pub struct Cancel(pub(super) Closer);

impl Cancel {
    /// The client's end was read: passed on behind the request (see the
    /// module's comment).
    pub fn cancel(&self) {
        self.0.cancel();
    }

    /// [`Cancel::cancel`] for the proxy's shutdown: the connection is shut
    /// at once, and the client, still there, is told the proxy is shutting
    /// down, not that Redis closed the connection.
    pub fn shut_down(&self) {
        self.0.lock().shutting_down = true;
        self.0.cancel();
    }
}

impl Drop for Cancel {
    fn drop(&mut self) {
        self.0.lock().gone = true;
        self.0.cancel();
    }
}

/// What ends a dedicated connection, shared by the event loop's handle and
/// the connection's thread.
#[derive(Clone, Default)]
pub(super) struct Closer(Arc<Mutex<CancelState>>);

#[derive(Default)]
struct CancelState {
    cancelled: bool,
    /// Cancelled by the proxy's shutdown, not by the client leaving.
    shutting_down: bool,
    /// The client is gone: nothing it sent is worth sending any more.
    gone: bool,
    /// A blocking command's: its client's end follows the request to Redis
    /// as a half-close (a subscription's connection is shut at once).
    half: bool,
    /// The request has been written (or failed to be).
    sent: bool,
    closer: Option<TcpStream>,
}

impl CancelState {
    /// Whether a cancel shuts the connection at once, both ways, rather
    /// than half-closing it behind the request.
    fn cuts(&self) -> bool {
        !self.half || self.shutting_down || self.gone
    }
}

impl Closer {
    /// A blocking command's: see the module's comment.
    pub(super) fn for_blocking() -> Closer {
        let closer = Closer::default();
        closer.lock().half = true;
        closer
    }

    /// Ends the connection: shuts it now (or as soon as it exists), or,
    /// for a blocking command's client that closed its side, half-closes
    /// it once the request is written.
    pub(super) fn cancel(&self) {
        let mut state = self.lock();
        state.cancelled = true;
        if state.cuts() {
            if let Some(closer) = state.closer.take() {
                let _ = closer.shutdown(Shutdown::Both);
            }
        } else if state.sent {
            if let Some(closer) = &state.closer {
                let _ = closer.shutdown(Shutdown::Write);
            }
        }
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

    /// Registers the connection to end; false (and shut) if the request
    /// must not be sent (the client is gone, or the proxy shutting down).
    pub(super) fn arm(&self, closer: TcpStream) -> bool {
        let mut state = self.lock();
        if state.cancelled && state.cuts() {
            let _ = closer.shutdown(Shutdown::Both);
            return false;
        }
        state.closer = Some(closer);
        true
    }

    /// What runs once the request is written (or fails to be): `start`
    /// ends (the fence falls), and a client whose end was read meanwhile
    /// has it passed on.
    pub(super) fn after_send(&self, start: Start) -> Box<dyn FnOnce() + Send> {
        let (fence, written) = (start.into_hook(), self.clone());
        Box::new(move || {
            fence();
            written.sent();
        })
    }

    /// The request is written (or failed to be): a client whose end was
    /// read meanwhile has it passed on now.
    fn sent(&self) {
        let mut state = self.lock();
        state.sent = true;
        if state.cancelled && !state.cuts() {
            if let Some(closer) = &state.closer {
                let _ = closer.shutdown(Shutdown::Write);
            }
        }
    }

    /// The command is over: leave the connection alone from now on.
    /// False if the client left meanwhile (the connection may have been
    /// shut: it must not be used again).
    pub(super) fn disarm(&self) -> bool {
        let mut state = self.lock();
        state.closer = None;
        !state.cancelled
    }
}
