//! The hash table and the arena's upkeep: finding a key's slot, indexing
//! and unindexing slots, and removing a node while keeping the arena dense.

use super::bytes::Weigh;
use super::{Key, List, Lru, Slot, NIL};

impl<V: Weigh> Lru<V> {
    /// Takes the node in `slot` out of both lists and the map, then moves the
    /// arena's last node into the hole so the arena stays dense.
    pub(super) fn remove_slot(&mut self, slot: Slot) -> (Key, V) {
        self.unlink(List::Recency, slot);
        self.unlink(List::Age, slot);
        self.unindex(slot);
        self.bytes -= self.charge_at(slot);
        let last = self.nodes.next_slot() - 1;
        if slot != last {
            self.relocate(last, slot);
        }
        let Some(node) = self.nodes.0.pop() else {
            unreachable!("remove_slot is only called on an occupied slot");
        };
        self.dbs.removed(node.key.db());
        (node.key, node.value)
    }
}

impl<V> Lru<V> {
    /// Keys from most to least recently read; for tests and debugging.
    pub fn keys_by_recency(&self) -> Vec<&[u8]> {
        let mut keys = Vec::with_capacity(self.nodes.len());
        let mut slot = self.recency.head;
        while slot != NIL {
            keys.push(self.nodes[slot].key.as_bytes());
            slot = self.nodes[slot].recency.next;
        }
        keys
    }

    /// Swaps node `from` into `to` (whose node is already unlinked), fixing
    /// every index that pointed at `from`. Afterwards `from` holds the
    /// unlinked node.
    pub(super) fn relocate(&mut self, from: Slot, to: Slot) {
        self.nodes.0.swap(from as usize, to as usize);
        for list in [List::Recency, List::Age] {
            let links = *self.links(to, list);
            match links.prev {
                NIL => self.ends(list).head = to,
                prev => self.links(prev, list).next = to,
            }
            match links.next {
                NIL => self.ends(list).tail = to,
                next => self.links(next, list).prev = to,
            }
        }
        let hash = self.hash_of(to);
        if let Some(entry) = self.table.find_mut(hash, |&s| s == from) {
            *entry = to;
        }
    }

    /// The slot holding `key` of database `db`, whose hash is `hash`.
    #[inline]
    pub(super) fn find(&self, hash: u64, db: super::Db, key: &[u8]) -> Option<Slot> {
        let nodes = &self.nodes;
        self.table
            .find(hash, |&s| nodes[s].key.is(db, key))
            .copied()
    }

    /// Adds `slot` to the table under `hash`.
    pub(super) fn index(&mut self, hash: u64, slot: Slot) {
        let (nodes, hasher) = (&self.nodes, &self.hasher);
        self.table.insert_unique(hash, slot, |&s| {
            let key = &nodes[s].key;
            hasher.hash_in(key.db(), key.as_bytes())
        });
    }

    /// The hash of the key in `slot`.
    pub(super) fn hash_of(&self, slot: Slot) -> u64 {
        let key = &self.nodes[slot].key;
        self.hasher.hash_in(key.db(), key.as_bytes())
    }

    /// Takes `slot` out of the table.
    pub(super) fn unindex(&mut self, slot: Slot) {
        let hash = self.hash_of(slot);
        if let Ok(entry) = self.table.find_entry(hash, |&s| s == slot) {
            entry.remove();
        }
    }
}
