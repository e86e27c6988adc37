//! A counting semaphore that admits waiters in arrival order.
//!
//! WORKERS uses it: reads in service at once, across the HTTP and RESP
//! front ends. Waiters queue in arrival order and a released place is handed straight to
//! the first of them, which alone is woken: no waiter starves, and a release
//! costs one wake-up, not one per waiter (a `Condvar::notify_all` herd of 50
//! threads on 2 cores cut throughput tenfold here).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, Thread};

/// One queued caller: woken with `granted` set once a place is its own.
struct Waiter {
    thread: Thread,
    granted: AtomicBool,
}

/// The places free, and who waits for one, under one lock.
struct Places {
    available: usize,
    waiters: VecDeque<Arc<Waiter>>,
}

/// Admits at most `permits` holders at once, in arrival order.
pub struct Limiter {
    state: Mutex<Places>,
}

/// One admission; dropping it hands the place to the next waiter.
#[must_use = "the permit is released when dropped"]
pub struct Permit<'a> {
    limiter: &'a Limiter,
}

impl Limiter {
    /// A limiter with `permits` places.
    pub fn new(permits: usize) -> Limiter {
        Limiter {
            state: Mutex::new(Places {
                available: permits,
                waiters: VecDeque::new(),
            }),
        }
    }

    /// Waits for a place, behind everyone who asked earlier. `waiting` is
    /// told +1 when the caller has to queue and -1 when its wait ends (the
    /// service counts the requests queued with it); a caller admitted at
    /// once is not counted.
    pub fn acquire(&self, waiting: impl Fn(i64)) -> Permit<'_> {
        self.admit(waiting);
        Permit { limiter: self }
    }

    /// A place now, if one is free and nobody is queued for one; never waits.
    pub fn try_acquire(&self) -> Option<Permit<'_>> {
        let mut state = self.lock();
        if state.available > 0 && state.waiters.is_empty() {
            state.available -= 1;
            Some(Permit { limiter: self })
        } else {
            None
        }
    }

    /// Takes a place now if one is free and nobody is queued; else queues
    /// and sleeps until a releasing holder hands one over.
    fn admit(&self, waiting: impl Fn(i64)) {
        let waiter = {
            let mut state = self.lock();
            if state.available > 0 && state.waiters.is_empty() {
                state.available -= 1;
                return;
            }
            let waiter = Arc::new(Waiter {
                thread: thread::current(),
                granted: AtomicBool::new(false),
            });
            state.waiters.push_back(Arc::clone(&waiter));
            waiter
        };
        waiting(1);
        // `park` may wake spuriously; only `granted` means the place is ours.
        while !waiter.granted.load(Ordering::Acquire) {
            thread::park();
        }
        waiting(-1);
    }

    fn release(&self) {
        let mut state = self.lock();
        match state.waiters.pop_front() {
            Some(next) => {
                next.granted.store(true, Ordering::Release);
                next.thread.unpark();
            }
            None => state.available += 1,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Places> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A place taken and kept past its [`Permit`], to be handed to another
/// thread (the RESP event loop's lookup passes its place on to the worker
/// that finishes the read) and made a permit again there with
/// [`Limiter::reattach`]. Dropped instead, the place is lost.
#[must_use = "a detached place is lost unless reattached"]
pub struct Detached(());

impl Permit<'_> {
    /// Keeps the place taken without the borrow of the limiter.
    pub fn detach(self) -> Detached {
        std::mem::forget(self);
        Detached(())
    }
}

impl Limiter {
    /// The permit for a place taken earlier and [`Permit::detach`]ed.
    pub fn reattach(&self, place: Detached) -> Permit<'_> {
        let Detached(()) = place;
        Permit { limiter: self }
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.limiter.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering::SeqCst};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    fn uncounted(_: i64) {}

    #[test]
    fn a_detached_place_stays_taken_until_reattached_and_dropped() {
        let limiter = Limiter::new(1);
        let place = limiter.try_acquire().expect("a place").detach();
        assert!(limiter.try_acquire().is_none());
        drop(limiter.reattach(place));
        assert!(limiter.try_acquire().is_some());
    }

    #[test]
    fn never_admits_more_than_the_permits() {
        let limiter = Arc::new(Limiter::new(3));
        let inside = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (limiter, inside, most) = (limiter.clone(), inside.clone(), most.clone());
                std::thread::spawn(move || {
                    for _ in 0..200 {
                        let _permit = limiter.acquire(uncounted);
                        let now = inside.fetch_add(1, SeqCst) + 1;
                        most.fetch_max(now, SeqCst);
                        std::thread::yield_now();
                        inside.fetch_sub(1, SeqCst);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        assert_eq!(most.load(SeqCst), 3);
    }

    #[test]
    fn admits_waiters_in_arrival_order() {
        let limiter = Arc::new(Limiter::new(1));
        let queued = Arc::new(AtomicI64::new(0));
        let order = Arc::new(Mutex::new(Vec::new()));
        let first = limiter.acquire(uncounted);
        let mut threads = Vec::new();
        for i in 0..5 {
            let (limiter, counter, order) = (limiter.clone(), queued.clone(), order.clone());
            threads.push(std::thread::spawn(move || {
                let _permit = limiter.acquire(|delta| {
                    counter.fetch_add(delta, SeqCst);
                });
                order.lock().expect("order").push(i);
            }));
            // Wait until this one is queued before starting the next.
            let deadline = Instant::now() + Duration::from_secs(10);
            while queued.load(SeqCst) != i + 1 {
                assert!(Instant::now() < deadline, "waiter {i} never queued");
                std::thread::yield_now();
            }
        }
        drop(first);
        for t in threads {
            t.join().expect("thread");
        }
        assert_eq!(*order.lock().expect("order"), vec![0, 1, 2, 3, 4]);
        assert_eq!(queued.load(SeqCst), 0);
    }
}
