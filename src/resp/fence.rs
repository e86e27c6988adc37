//! The order rule between clients: a command the proxy read before another
//! client's command reaches Redis (its write finished) before that other
//! command is written, as Redis itself would order them for clients of
//! its own (one client's write finished before the other's began).
//!
//! Forwarded batches are written in the loop's turn (`upstream.rs`) or by
//! a worker, soon after they are read; but a blocking command or a Pub/Sub
//! request goes to a thread with a Redis connection of its own
//! (`dedicated.rs`), which may first have to open that connection. Such a
//! hand-off is a [`Start`]: while any is in flight the fence is up, and
//! the loop writes no forwarded batch (they stay queued) and a worker
//! waits before sending one (at most REDIS_TIMEOUT_MS). A `SUBSCRIBE`
//! therefore reaches Redis before a `PUBLISH` another client sent after
//! it, and an `XREAD BLOCK ... $` before the `XADD` that should wake it.
//!
//! Cost: one atomic load per write of the loop's batches and per worker
//! job while the fence is down; nothing on a cache hit.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use mio::Waker;

/// Counts the hand-offs not yet written to Redis. Cloning shares it.
#[derive(Clone)]
pub struct Fence(Arc<Inner>);

struct Inner {
    /// Starts in flight.
    count: AtomicUsize,
    /// For workers waiting for the count to fall to zero.
    lock: Mutex<()>,
    down: Condvar,
    /// Wakes the event loop when it falls to zero: its queued batches may
    /// be written.
    waker: Arc<Waker>,
}

/// One hand-off in flight: the fence stays up until it is dropped, right
/// after its request is written to Redis, or when its work ends without
/// writing (an error, no thread, the client gone: every path drops it).
pub struct Start(Option<Arc<Inner>>);

impl Fence {
    /// A fence that is down; `waker` wakes the event loop when it falls.
    pub fn new(waker: Arc<Waker>) -> Fence {
        Fence(Arc::new(Inner {
            count: AtomicUsize::new(0),
            lock: Mutex::new(()),
            down: Condvar::new(),
            waker,
        }))
    }

    /// Raises the fence for one hand-off, until the [`Start`] drops.
    pub fn start(&self) -> Start {
        self.0.count.fetch_add(1, Ordering::AcqRel);
        Start(Some(Arc::clone(&self.0)))
    }

    /// Whether a hand-off is in flight: forwarded batches wait.
    pub fn is_up(&self) -> bool {
        self.0.count.load(Ordering::Acquire) > 0
    }

    /// Waits until no hand-off is in flight, at most `limit` (each is
    /// bounded by REDIS_TIMEOUT_MS, so past it the batch goes anyway).
    pub fn wait(&self, limit: Duration) {
        if !self.is_up() {
            return;
        }
        let deadline = Instant::now() + limit;
        let mut guard = self.0.lock.lock().unwrap_or_else(PoisonError::into_inner);
        while self.is_up() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            guard = match self.0.down.wait_timeout(guard, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}

impl Start {
    /// A closure that ends this start when called (or dropped): for the
    /// backend, which calls it right after it writes the request.
    pub fn into_hook(self) -> Box<dyn FnOnce() + Send> {
        Box::new(move || drop(self))
    }
}

impl Drop for Start {
    fn drop(&mut self) {
        let Some(inner) = self.0.take() else {
            return;
        };
        if inner.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            // Taken between a waiter's check and its wait: none is missed.
            drop(inner.lock.lock().unwrap_or_else(PoisonError::into_inner));
            inner.down.notify_all();
            let _ = inner.waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use mio::{Poll, Token, Waker};

    use super::Fence;

    fn fence() -> (Poll, Fence) {
        let poll = Poll::new().expect("a poll");
        let waker = Waker::new(poll.registry(), Token(1)).expect("a waker");
        (poll, Fence::new(Arc::new(waker)))
    }

    #[test]
    fn up_while_any_start_lives_down_when_the_last_drops() {
        let (_poll, fence) = fence();
        assert!(!fence.is_up());
        let (first, second) = (fence.start(), fence.start());
        assert!(fence.is_up());
        drop(first);
        assert!(fence.is_up());
        // A hook dropped uncalled ends its start too.
        drop(second.into_hook());
        assert!(!fence.is_up());
        let hook = fence.start().into_hook();
        assert!(fence.is_up());
        hook();
        assert!(!fence.is_up());
    }

    #[test]
    fn a_waiting_worker_goes_on_when_the_fence_falls_or_at_its_limit() {
        let (_poll, fence) = fence();
        let start = fence.start();
        let ender = std::thread::spawn(move || drop(start));
        fence.wait(Duration::from_secs(600));
        ender.join().expect("the thread ends");
        assert!(!fence.is_up());
        let _left_up = fence.start();
        fence.wait(Duration::from_millis(1));
        assert!(fence.is_up());
    }
}
