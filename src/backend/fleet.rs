//! Several invalidation links reporting to the service as one: up only
//! while every link of the current set is up, lost as soon as one is, and
//! a set replaced by a newer one (the masters changed) is heard no more.

use std::sync::{Arc, Mutex, PoisonError};

use super::InvalidationSink;

/// The links of one set of masters, reporting to the service as one link.
pub(super) struct Fleet {
    sink: Arc<dyn InvalidationSink>,
    state: Mutex<FleetState>,
}

#[derive(Default)]
struct FleetState {
    /// Which set of links is current; older links' reports are ignored.
    generation: u64,
    up: Vec<bool>,
    /// Whether the service was told the link is up.
    reported_up: bool,
}

impl Fleet {
    /// A fleet reporting to `sink`, with no links yet.
    pub(super) fn new(sink: Arc<dyn InvalidationSink>) -> Arc<Fleet> {
        Arc::new(Fleet {
            sink,
            state: Mutex::new(FleetState::default()),
        })
    }

    /// A new set of `links` links, all down; the service hears the link is
    /// lost if it was up.
    pub(super) fn begin(&self, links: usize) -> u64 {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.generation += 1;
        state.up = vec![false; links];
        if std::mem::take(&mut state.reported_up) {
            self.sink.link_lost();
        }
        state.generation
    }
}

/// One master's link, as the fleet sees it.
pub(super) struct Member {
    fleet: Arc<Fleet>,
    generation: u64,
    index: usize,
}

impl Member {
    /// Link `index` of the fleet's `generation`.
    pub(super) fn new(fleet: &Arc<Fleet>, generation: u64, index: usize) -> Arc<Member> {
        Arc::new(Member {
            fleet: Arc::clone(fleet),
            generation,
            index,
        })
    }

    fn set_up(&self, up: bool) {
        let fleet = &self.fleet;
        let mut state = fleet.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.generation != self.generation {
            return;
        }
        state.up[self.index] = up;
        let all_up = state.up.iter().all(|up| *up);
        if all_up && !state.reported_up {
            state.reported_up = true;
            fleet.sink.link_up();
        } else if !all_up && state.reported_up {
            state.reported_up = false;
            fleet.sink.link_lost();
        }
    }
}

impl InvalidationSink for Member {
    fn link_up(&self) {
        self.set_up(true);
    }

    fn link_lost(&self) {
        self.set_up(false);
    }

    fn tracking_off(&self) {
        self.fleet.sink.tracking_off();
    }

    // Invalidations are passed on from every link, current or not: one too
    // many costs a miss, one too few a stale read.
    fn invalidate(&self, keys: &[&[u8]]) {
        self.fleet.sink.invalidate(keys);
    }

    fn flush(&self) {
        self.fleet.sink.flush();
    }
}
