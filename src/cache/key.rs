//! Cache keys, stored inline in the node when short.
//!
//! A lookup is bound by memory latency: the table probe, the node, then the
//! key's bytes. A key on the heap costs one more cache miss per lookup than
//! a key inside the node, and one allocation per insert. Most Redis keys are
//! short (`user:1234:name`), so keys up to [`INLINE`] bytes live in the node.

use std::fmt;

/// Longest key kept inline; sized so a [`Key`] is 24 bytes, as a `Vec` is.
pub const INLINE: usize = 22;

/// A key's bytes: inline when short, boxed otherwise.
#[derive(Clone, PartialEq, Eq)]
pub enum Key {
    /// At most 22 (`INLINE`) bytes, the first `len` of `bytes`.
    Inline {
        /// How many of `bytes` are the key.
        len: u8,
        /// The key, zero-padded.
        bytes: [u8; INLINE],
    },
    /// A longer key.
    Heap(Box<[u8]>),
}

impl Key {
    /// Copies `bytes` into a key, allocating only when they are long.
    pub fn new(bytes: &[u8]) -> Key {
        if bytes.len() <= INLINE {
            let mut inline = [0u8; INLINE];
            inline[..bytes.len()].copy_from_slice(bytes);
            Key::Inline {
                // At most INLINE (22), so it fits a u8.
                len: bytes.len() as u8,
                bytes: inline,
            }
        } else {
            Key::Heap(bytes.into())
        }
    }

    /// The key's bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Key::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Key::Heap(bytes) => bytes,
        }
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({:?})", String::from_utf8_lossy(self.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_keys_are_inline_and_long_ones_boxed() {
        assert_eq!(std::mem::size_of::<Key>(), 24);
        for len in [0, 1, INLINE - 1, INLINE, INLINE + 1, 1000] {
            let bytes: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let key = Key::new(&bytes);
            assert_eq!(key.as_bytes(), &bytes[..]);
            assert_eq!(matches!(key, Key::Inline { .. }), len <= INLINE);
        }
    }
}
