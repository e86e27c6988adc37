//! A response's body, and what an answer about a found value needs of it:
//! its bytes, its digest (the `ETag`) and whether it is text.
//!
//! A hit's small value is copied out of the cache, under its lock, into a
//! buffer the worker thread keeps for that ([`Lent`]) rather than into an
//! allocation of its own: no `malloc` and no `free` per hit.

use std::borrow::Cow;
use std::cell::Cell;

use crate::service::{Value, SHARED_ABOVE};

/// A response's bytes: made for it, or a found value. A value over 256
/// bytes is shared with the cache; a smaller one was copied out of it under
/// the lock (see [`Value`]), and is not copied again here.
pub enum Body {
    /// Bytes made for this response (JSON, metrics, the page).
    Made(Cow<'static, [u8]>),
    /// A cached value.
    Shared(Value),
    /// A small value's bytes, in the worker's spare buffer.
    Lent(Lent),
}

impl AsRef<[u8]> for Body {
    fn as_ref(&self) -> &[u8] {
        match self {
            Body::Made(bytes) => bytes,
            Body::Shared(value) => value.bytes(),
            Body::Lent(lent) => &lent.0,
        }
    }
}

thread_local! {
    /// The thread's spare buffer, while no response holds it.
    static SPARE: Cell<Option<Vec<u8>>> = const { Cell::new(None) };
}

/// Bytes in a buffer the thread lends to one response at a time: taken from
/// the thread's spare (made, of [`SHARED_ABOVE`] bytes, the first time),
/// and given back to whichever thread drops it. tiny_http drops a response
/// of up to 64 KiB on the worker that answered, once it has rendered it, so
/// each worker reuses one buffer; a response dropped elsewhere leaves its
/// buffer there, and the worker makes another.
pub struct Lent(Vec<u8>);

impl Lent {
    /// A copy of `bytes` (at most [`SHARED_ABOVE`] of them, so the buffer
    /// never grows) in this thread's spare buffer.
    #[inline]
    pub fn copy(bytes: &[u8]) -> Lent {
        let mut buffer = SPARE
            .take()
            .unwrap_or_else(|| Vec::with_capacity(SHARED_ABOVE));
        buffer.clear();
        buffer.extend_from_slice(bytes);
        Lent(buffer)
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        let buffer = std::mem::take(&mut self.0);
        if buffer.capacity() <= SHARED_ABOVE {
            // Not there any more while the thread exits: dropped instead.
            let _ = SPARE.try_with(|spare| spare.set(Some(buffer)));
        }
    }
}

/// What an answer about a found value needs of it. Implemented by the
/// cache's [`Value`] and by [`Held`], what a hit keeps of one.
pub trait Payload {
    /// The value's bytes.
    fn bytes(&self) -> &[u8];
    /// Its digest (see [`Value::digest`]), for the `ETag`.
    fn digest(&self) -> u64;
    /// Whether the bytes are UTF-8 (the content type).
    fn is_utf8(&self) -> bool;
    /// The body of a raw answer.
    fn into_body(self) -> Body;
}

impl Payload for Value {
    fn bytes(&self) -> &[u8] {
        Value::bytes(self)
    }

    fn digest(&self) -> u64 {
        Value::digest(self)
    }

    fn is_utf8(&self) -> bool {
        Value::is_utf8(self)
    }

    fn into_body(self) -> Body {
        Body::Shared(self)
    }
}

/// A found value as an HTTP answer holds it: a small value's bytes lent
/// (see [`Lent`]), a larger one shared, with the facts derived from them.
pub struct Held {
    body: Body,
    digest: u64,
    is_utf8: bool,
}

impl Held {
    /// What a hit keeps of `value`, made under the cache's lock: a copy of
    /// a small value in the thread's spare buffer, or a larger one's handle.
    #[inline]
    pub fn take(value: &Value) -> Held {
        let body = match value.bytes() {
            bytes if bytes.len() <= SHARED_ABOVE => Body::Lent(Lent::copy(bytes)),
            _ => Body::Shared(value.clone()),
        };
        Held {
            body,
            digest: value.digest(),
            is_utf8: value.is_utf8(),
        }
    }
}

impl From<Value> for Held {
    /// A value read from Redis, kept as it is.
    fn from(value: Value) -> Held {
        Held {
            digest: value.digest(),
            is_utf8: value.is_utf8(),
            body: Body::Shared(value),
        }
    }
}

impl Payload for Held {
    fn bytes(&self) -> &[u8] {
        self.body.as_ref()
    }

    fn digest(&self) -> u64 {
        self.digest
    }

    fn is_utf8(&self) -> bool {
        self.is_utf8
    }

    fn into_body(self) -> Body {
        self.body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether this thread's spare buffer is there (not lent), and where.
    fn spare() -> Option<*const u8> {
        let buffer = SPARE.take();
        let at = buffer.as_ref().map(|b| b.as_ptr());
        SPARE.set(buffer);
        at
    }

    #[test]
    fn a_hit_keeps_a_small_value_in_the_threads_spare_buffer_and_gives_it_back() {
        let small = Value::new(b"small");
        let held = Held::take(&small);
        assert_eq!(held.bytes(), b"small");
        assert_eq!((held.digest(), held.is_utf8()), (small.digest(), true));
        // Lent: the thread has no spare while the answer holds it.
        assert_eq!(spare(), None);
        let Body::Lent(lent) = held.into_body() else {
            panic!("a small value is lent");
        };
        let buffer = lent.0.as_ptr();
        drop(lent);
        assert_eq!(spare(), Some(buffer));
        // The next hit on this thread copies into that same buffer.
        let again = Held::take(&Value::new(&[0xff; SHARED_ABOVE]));
        assert!(!again.is_utf8());
        match &again.body {
            Body::Lent(lent) => assert_eq!(lent.0.as_ptr(), buffer),
            _ => panic!("a value of SHARED_ABOVE bytes is lent"),
        }
        assert_eq!(again.bytes(), &[0xff; SHARED_ABOVE][..]);
        let large = Value::new(&[b'x'; SHARED_ABOVE + 1]);
        assert!(matches!(Held::take(&large).body, Body::Shared(_)));
        assert_eq!(Held::from(large.clone()).bytes(), large.bytes());
    }
}
