//! The arena: every node, dense, indexed by slot.

use std::ops::{Index, IndexMut};

use super::{Node, Slot};

/// The nodes, indexed by [`Slot`].
#[derive(Debug)]
pub(super) struct Arena<V>(pub(super) Vec<Node<V>>);

impl<V> Index<Slot> for Arena<V> {
    type Output = Node<V>;
    fn index(&self, slot: Slot) -> &Node<V> {
        &self.0[slot as usize]
    }
}

impl<V> IndexMut<Slot> for Arena<V> {
    fn index_mut(&mut self, slot: Slot) -> &mut Node<V> {
        &mut self.0[slot as usize]
    }
}

impl<V> Arena<V> {
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    /// The slot the next pushed node gets.
    pub(super) fn next_slot(&self) -> Slot {
        // The capacity is at most MAX_CAPACITY, so this never truncates.
        self.0.len() as Slot
    }
}
