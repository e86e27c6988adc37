//! `Lru::validate`: every structural invariant, checked after each step of
//! the property tests. Compiled for the unit tests and the `test-hooks`
//! feature only.

use super::{List, Lru, Node, Weigh, NIL};

impl<V: Weigh> Lru<V> {
    /// Checks every structural invariant; panics with a description when one
    /// fails. For tests: run it after every step of a random sequence.
    /// Compiled for the unit tests and the `test-hooks` feature only.
    pub fn validate(&self) {
        assert!(self.nodes.len() <= self.capacity, "over capacity");
        assert_eq!(self.table.len(), self.nodes.len(), "table and arena differ");
        let charged: usize = (0..self.nodes.next_slot())
            .map(|slot| self.charge_at(slot))
            .sum();
        assert_eq!(
            self.bytes, charged,
            "bytes differ from the entries' charges"
        );
        assert!(self.bytes <= self.max_bytes, "over max_bytes");
        for (slot, node) in (0..).zip(self.nodes.0.iter()) {
            assert_eq!(
                self.find(self.hash_of(slot), node.key.db(), node.key.as_bytes()),
                Some(slot),
                "table misses a node"
            );
        }
        let mut by_db: Vec<(super::Db, usize)> = Vec::new();
        for node in &self.nodes.0 {
            match by_db.iter_mut().find(|(db, _)| *db == node.key.db()) {
                Some((_, count)) => *count += 1,
                None => by_db.push((node.key.db(), 1)),
            }
        }
        by_db.sort_unstable();
        assert_eq!(self.entries_by_db(), by_db, "entries per database differ");
        for list in [List::Recency, List::Age] {
            let ends = match list {
                List::Recency => self.recency,
                List::Age => self.age,
            };
            let pick = |node: &Node<V>| match list {
                List::Recency => node.recency,
                List::Age => node.age,
            };
            let mut count = 0;
            let mut prev = NIL;
            let mut slot = ends.head;
            while slot != NIL {
                assert!(count < self.nodes.len(), "list has a cycle");
                assert_eq!(pick(&self.nodes[slot]).prev, prev, "broken prev link");
                prev = slot;
                slot = pick(&self.nodes[slot]).next;
                count += 1;
            }
            assert_eq!(ends.tail, prev, "tail is not the last node");
            assert_eq!(count, self.nodes.len(), "list misses nodes");
        }
        // Entries without an end in Redis expire in age-list order.
        let mut last = None;
        let mut slot = self.age.head;
        while slot != NIL {
            let stamp = self.nodes[slot].stamp;
            if stamp.ends_after().is_none() {
                if let Some(last) = last {
                    assert!(last <= stamp.expires_at(), "age list out of expiry order");
                }
                last = Some(stamp.expires_at());
            }
            slot = self.nodes[slot].age.next;
        }
    }
}
