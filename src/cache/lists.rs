//! The two intrusive doubly-linked lists threaded through the arena by
//! slot (recency and age): the link surgery every operation shares.

use super::{Lru, Slot, NIL};

/// One direction-pair of links in one list.
#[derive(Clone, Copy, Debug)]
pub(super) struct Links {
    pub(super) prev: Slot,
    pub(super) next: Slot,
}

impl Links {
    pub(super) const DETACHED: Links = Links {
        prev: NIL,
        next: NIL,
    };
}

/// The ends of one list.
#[derive(Clone, Copy, Debug)]
pub(super) struct Ends {
    pub(super) head: Slot,
    pub(super) tail: Slot,
}

impl Ends {
    pub(super) const EMPTY: Ends = Ends {
        head: NIL,
        tail: NIL,
    };
}

/// Which of a node's two lists an operation works on.
#[derive(Clone, Copy)]
pub(super) enum List {
    Recency,
    Age,
}

impl<V> Lru<V> {
    pub(super) fn links(&mut self, slot: Slot, list: List) -> &mut Links {
        let node = &mut self.nodes[slot];
        match list {
            List::Recency => &mut node.recency,
            List::Age => &mut node.age,
        }
    }

    pub(super) fn ends(&mut self, list: List) -> &mut Ends {
        match list {
            List::Recency => &mut self.recency,
            List::Age => &mut self.age,
        }
    }

    pub(super) fn unlink(&mut self, list: List, slot: Slot) {
        let links = std::mem::replace(self.links(slot, list), Links::DETACHED);
        match links.prev {
            NIL => self.ends(list).head = links.next,
            prev => self.links(prev, list).next = links.next,
        }
        match links.next {
            NIL => self.ends(list).tail = links.prev,
            next => self.links(next, list).prev = links.prev,
        }
    }

    pub(super) fn push_front(&mut self, list: List, slot: Slot) {
        let old_head = self.ends(list).head;
        *self.links(slot, list) = Links {
            prev: NIL,
            next: old_head,
        };
        match old_head {
            NIL => self.ends(list).tail = slot,
            head => self.links(head, list).prev = slot,
        }
        self.ends(list).head = slot;
    }

    pub(super) fn push_back(&mut self, list: List, slot: Slot) {
        let old_tail = self.ends(list).tail;
        *self.links(slot, list) = Links {
            prev: old_tail,
            next: NIL,
        };
        match old_tail {
            NIL => self.ends(list).head = slot,
            tail => self.links(tail, list).next = slot,
        }
        self.ends(list).tail = slot;
    }
}
