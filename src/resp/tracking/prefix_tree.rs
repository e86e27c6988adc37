//! The BCAST prefixes of every tracking client, as a radix tree: which
//! clients must hear of a changed key costs one walk down the key's bytes,
//! O(key length), however many prefixes are registered.
//!
//! Redis checks every write against every prefix of every BCAST client (a
//! client with 30k prefixes made 20k SETs take 14 s there); a tree is what
//! lets the proxy hold 100k prefixes without its other clients noticing.
//! How many it holds is bounded by `CLIENT TRACKING` (`check_room`), so
//! this arena, which keeps freed nodes for reuse, is bounded too.
//!
//! Nodes live in a `Vec` and point at each other by index (no `Rc`, no
//! `unsafe`); freed nodes are reused. Each node's edge label is the bytes
//! from its parent; a node holds the clients whose prefix ends exactly
//! there. Cost: about 80 bytes per node plus its label, and at most two
//! nodes per distinct prefix.

use mio::Token;

/// The root: the empty prefix, every key.
const ROOT: u32 = 0;

struct Node {
    /// The bytes from the parent to here.
    label: Box<[u8]>,
    /// Children, sorted by the first byte of their labels (distinct).
    children: Vec<u32>,
    /// Clients whose prefix ends here.
    tokens: Vec<Token>,
}

/// Prefix → clients, matched against keys in O(key length).
pub struct PrefixTree {
    nodes: Vec<Node>,
    free: Vec<u32>,
    /// (client, prefix) pairs held.
    len: usize,
}

impl Default for PrefixTree {
    fn default() -> Self {
        PrefixTree::new()
    }
}

impl PrefixTree {
    /// An empty tree.
    pub fn new() -> PrefixTree {
        PrefixTree {
            nodes: vec![Node {
                label: Box::default(),
                children: Vec::new(),
                tokens: Vec::new(),
            }],
            free: Vec::new(),
            len: 0,
        }
    }

    /// (client, prefix) pairs held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no client has a prefix.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Nodes in use, for tests of the tree's upkeep.
    #[cfg(test)]
    fn nodes_in_use(&self) -> usize {
        self.nodes.len() - self.free.len()
    }

    fn node(&self, id: u32) -> &Node {
        &self.nodes[id as usize]
    }

    fn node_mut(&mut self, id: u32) -> &mut Node {
        &mut self.nodes[id as usize]
    }

    /// The child of `id` whose label starts with `byte`: its place in the
    /// children list, or where it would go.
    fn child(&self, id: u32, byte: u8) -> Result<usize, usize> {
        let nodes = &self.nodes;
        self.node(id)
            .children
            .binary_search_by_key(&byte, |&c| nodes[c as usize].label[0])
    }

    fn alloc(&mut self, node: Node) -> u32 {
        match self.free.pop() {
            Some(id) => {
                self.nodes[id as usize] = node;
                id
            }
            None => {
                self.nodes.push(node);
                u32::try_from(self.nodes.len() - 1).unwrap_or(u32::MAX)
            }
        }
    }

    fn release(&mut self, id: u32) {
        let node = self.node_mut(id);
        node.label = Box::default();
        node.children = Vec::new();
        node.tokens = Vec::new();
        self.free.push(id);
    }

    /// Registers `token` for keys starting with `prefix` (once).
    pub fn insert(&mut self, prefix: &[u8], token: Token) {
        let mut id = ROOT;
        let mut rest = prefix;
        while let Some(&first) = rest.first() {
            match self.child(id, first) {
                Err(at) => {
                    let leaf = self.alloc(Node {
                        label: rest.into(),
                        children: Vec::new(),
                        tokens: Vec::new(),
                    });
                    self.node_mut(id).children.insert(at, leaf);
                    id = leaf;
                    rest = &[];
                }
                Ok(at) => {
                    let child = self.node(id).children[at];
                    let label = &self.node(child).label;
                    let common = label.iter().zip(rest).take_while(|(a, b)| a == b).count();
                    if common < label.len() {
                        // Split the edge: a new node for the shared part,
                        // the old child below it with the remainder.
                        let (shared, remainder) = label.split_at(common);
                        let (shared, remainder): (Box<[u8]>, Box<[u8]>) =
                            (shared.into(), remainder.into());
                        self.node_mut(child).label = remainder;
                        let middle = self.alloc(Node {
                            label: shared,
                            children: vec![child],
                            tokens: Vec::new(),
                        });
                        self.node_mut(id).children[at] = middle;
                        id = middle;
                    } else {
                        id = child;
                    }
                    rest = &rest[common..];
                }
            }
        }
        let tokens = &mut self.node_mut(id).tokens;
        if !tokens.contains(&token) {
            tokens.push(token);
            self.len += 1;
        }
    }

    /// Unregisters `token` for `prefix`; nodes left holding nothing go.
    pub fn remove(&mut self, prefix: &[u8], token: Token) {
        // The path: (node, its place in its parent's children).
        let mut path: Vec<(u32, usize)> = Vec::new();
        let mut id = ROOT;
        let mut rest = prefix;
        while let Some(&first) = rest.first() {
            let Ok(at) = self.child(id, first) else {
                return;
            };
            let child = self.node(id).children[at];
            let Some(after) = rest.strip_prefix(&*self.node(child).label) else {
                return;
            };
            path.push((id, at));
            id = child;
            rest = after;
        }
        let tokens = &mut self.node_mut(id).tokens;
        let Some(place) = tokens.iter().position(|t| *t == token) else {
            return;
        };
        tokens.swap_remove(place);
        self.len -= 1;
        // Tidy up from the bottom: drop empty leaves, and fold a node with
        // no clients and one child into that child.
        while id != ROOT {
            let Some((parent, at)) = path.pop() else {
                break;
            };
            let node = self.node(id);
            if !node.tokens.is_empty() {
                break;
            }
            match node.children.len() {
                0 => {
                    self.node_mut(parent).children.remove(at);
                    self.release(id);
                    id = parent;
                }
                1 => {
                    let only = node.children[0];
                    let mut label = node.label.to_vec();
                    label.extend_from_slice(&self.node(only).label);
                    self.node_mut(only).label = label.into();
                    self.node_mut(parent).children[at] = only;
                    self.release(id);
                    break;
                }
                _ => break,
            }
        }
    }

    /// Calls `found` for every client with a prefix of `key`, shortest
    /// prefix first. O(key length).
    pub fn matches(&self, key: &[u8], mut found: impl FnMut(Token)) {
        let mut id = ROOT;
        let mut rest = key;
        loop {
            for token in &self.node(id).tokens {
                found(*token);
            }
            let Some(&first) = rest.first() else {
                return;
            };
            let Ok(at) = self.child(id, first) else {
                return;
            };
            let child = self.node(id).children[at];
            match rest.strip_prefix(&*self.node(child).label) {
                Some(after) => {
                    id = child;
                    rest = after;
                }
                None => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matching(tree: &PrefixTree, key: &str) -> Vec<usize> {
        let mut found = Vec::new();
        tree.matches(key.as_bytes(), |t| found.push(t.0));
        found.sort_unstable();
        found
    }

    #[test]
    fn a_key_reaches_every_client_with_one_of_its_prefixes_and_no_other() {
        let mut tree = PrefixTree::new();
        tree.insert(b"user:", Token(1));
        tree.insert(b"user:1", Token(2));
        tree.insert(b"us", Token(3));
        tree.insert(b"", Token(4));
        tree.insert(b"order:", Token(1));
        tree.insert(b"user:", Token(1));
        assert_eq!(tree.len(), 5);
        assert_eq!(matching(&tree, "user:12"), [1, 2, 3, 4]);
        assert_eq!(matching(&tree, "user:2"), [1, 3, 4]);
        assert_eq!(matching(&tree, "use"), [3, 4]);
        assert_eq!(matching(&tree, "u"), [4]);
        assert_eq!(matching(&tree, "order:1"), [1, 4]);
        assert_eq!(matching(&tree, "ord"), [4]);
        tree.remove(b"", Token(4));
        tree.remove(b"us", Token(3));
        assert_eq!(matching(&tree, "user:12"), [1, 2]);
        tree.remove(b"user:", Token(9));
        tree.remove(b"nothing", Token(1));
        assert_eq!(matching(&tree, "user:2"), [1]);
    }

    #[test]
    fn removing_every_prefix_gives_every_node_back() {
        let mut tree = PrefixTree::new();
        let prefixes: Vec<String> = (0..2000)
            .map(|i| format!("p:{}:{}", i % 37, i))
            .chain(["p".to_owned(), "p:1".to_owned(), String::new()])
            .collect();
        for (i, p) in prefixes.iter().enumerate() {
            tree.insert(p.as_bytes(), Token(i % 3));
        }
        assert_eq!(matching(&tree, "p:5:5"), [1, 2, 2]);
        assert!(tree.nodes_in_use() <= 2 * prefixes.len() + 1);
        // In a different order than they came.
        for (i, p) in prefixes.iter().enumerate().rev() {
            tree.remove(p.as_bytes(), Token(i % 3));
        }
        assert!(tree.is_empty());
        assert_eq!(tree.nodes_in_use(), 1);
        assert_eq!(matching(&tree, "p:5:5"), Vec::<usize>::new());
    }
}
