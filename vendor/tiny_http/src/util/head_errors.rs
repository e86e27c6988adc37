//! redis-proxy patch 20: the answers the server writes itself, to request
//! heads it could not take, counted by status, so the embedding server can
//! count them with the requests it answers. Only the error paths of
//! `ClientConnection::next` add to it: a request that is read costs nothing.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The statuses the server answers heads with itself (client.rs).
pub const HEAD_ERROR_STATUSES: [u16; 7] = [400, 408, 413, 414, 417, 431, 505];

/// Answers written to request heads the server refused, by status.
#[derive(Debug, Default)]
pub struct HeadErrors {
    counts: [AtomicU64; HEAD_ERROR_STATUSES.len()],
}

impl HeadErrors {
    /// How many answers with `status` were written since the server started
    /// (0 for a status the server never answers a head with).
    pub fn answered(&self, status: u16) -> u64 {
        HEAD_ERROR_STATUSES
            .iter()
            .position(|&s| s == status)
            .map_or(0, |i| self.counts[i].load(Relaxed))
    }

    /// One answer with `status` was written.
    pub(crate) fn add(&self, status: u16) {
        if let Some(i) = HEAD_ERROR_STATUSES.iter().position(|&s| s == status) {
            self.counts[i].fetch_add(1, Relaxed);
        }
    }
}
