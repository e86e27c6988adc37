//! Several invalidation links reporting to the service as one: up only
//! while every link of the current set is up, lost as soon as one is, and
//! a set replaced by a newer one (the masters changed) is heard no more.
//!
//! The fleet also says which masters it covers ([`Linked`]): the service
//! seeing the link up means every master of the fleet's set is linked, not
//! that every node a read may reach is (a slot moved to a master added
//! since the watcher last looked is served by a node nobody listens to).

use std::sync::{Arc, Mutex, PoisonError, RwLock};

use super::slots::Addr;
use super::InvalidationSink;

/// The masters whose invalidation links are up, all of them, as the
/// service was told: a cluster read is stored only if the node that
/// answered it is one of them (see `read_cluster.rs`), so a value read
/// from a master nobody listens to yet is served but never kept.
pub struct Linked {
    /// `None`: nothing to check (not cluster mode, INVALIDATION=off, or
    /// tracking refused under `auto`: the cache then relies on TTLs).
    masters: RwLock<Option<Vec<Addr>>>,
}

impl Linked {
    /// Covering no master yet if `checked`; covering every node if not.
    pub(super) fn new(checked: bool) -> Linked {
        Linked {
            masters: RwLock::new(checked.then(Vec::new)),
        }
    }

    /// Whether writes on the node at `addr` are announced to the cache.
    pub(super) fn covers(&self, addr: &Addr) -> bool {
        match &*self.masters.read().unwrap_or_else(PoisonError::into_inner) {
            None => true,
            Some(masters) => masters.contains(addr),
        }
    }

    fn set(&self, masters: Option<Vec<Addr>>) {
        *self.masters.write().unwrap_or_else(PoisonError::into_inner) = masters;
    }
}

/// The links of one set of masters, reporting to the service as one link.
pub(super) struct Fleet {
    sink: Arc<dyn InvalidationSink>,
    linked: Arc<Linked>,
    state: Mutex<FleetState>,
}

#[derive(Default)]
struct FleetState {
    /// Which set of links is current; older links' reports are ignored.
    generation: u64,
    /// The current set's masters, link `i` to `masters[i]`.
    masters: Vec<Addr>,
    up: Vec<bool>,
    /// Whether the service was told the link is up.
    reported_up: bool,
}

impl Fleet {
    /// A fleet reporting to `sink` and keeping `linked` true, with no
    /// links yet.
    pub(super) fn new(sink: Arc<dyn InvalidationSink>, linked: Arc<Linked>) -> Arc<Fleet> {
        Arc::new(Fleet {
            sink,
            linked,
            state: Mutex::new(FleetState::default()),
        })
    }

    /// A new set of links, one per master of `masters`, all down; the
    /// service hears the link is lost if it was up.
    pub(super) fn begin(&self, masters: Vec<Addr>) -> u64 {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.generation += 1;
        state.up = vec![false; masters.len()];
        state.masters = masters;
        if std::mem::take(&mut state.reported_up) {
            self.linked.set(Some(Vec::new()));
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
        // `linked` changes under the fleet's lock, before the service
        // hears of it: covered only while the service sees the link up.
        if all_up && !state.reported_up {
            state.reported_up = true;
            fleet.linked.set(Some(state.masters.clone()));
            fleet.sink.link_up();
        } else if !all_up && state.reported_up {
            state.reported_up = false;
            fleet.linked.set(Some(Vec::new()));
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
        // TTLs only from now on, as in standalone mode: nothing to check.
        self.fleet.linked.set(None);
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
