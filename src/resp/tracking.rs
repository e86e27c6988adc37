//! `CLIENT TRACKING` for the proxy's own clients: which client read which
//! key, and the messages that tell them a key changed.
//!
//! The event loop owns one [`TrackingTable`] (no lock: only the loop
//! touches it). A read by a tracking client is recorded when the request is
//! executed, before its reply exists; a change that arrives while the reply
//! is still being fetched is sent after that reply (`Conn::push`), so a
//! client never caches a value whose invalidation it has already seen.

use std::collections::{HashMap, VecDeque};

use mio::Token;

use super::reply::Protocol;

/// How a client asked to be told (`CLIENT TRACKING ON ...`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrackingMode {
    /// Told of every key under `prefixes` (all keys when empty), whatever
    /// it read.
    pub bcast: bool,
    /// For `bcast`.
    pub prefixes: Vec<Vec<u8>>,
    /// Only reads after `CLIENT CACHING YES` are tracked.
    pub optin: bool,
    /// Reads after `CLIENT CACHING NO` are not tracked.
    pub optout: bool,
    /// Accepted: the proxy's clients never write.
    pub noloop: bool,
    /// Messages go to this connection (subscribed to
    /// `__redis__:invalidate`) instead of as pushes on this one.
    pub redirect: Option<u64>,
}

/// The channel RESP2 clients subscribe to for redirected messages.
pub const CHANNEL: &[u8] = b"__redis__:invalidate";

/// Who must be told what: per connection, the keys (`None`: everything).
pub type Deliveries = HashMap<Token, Option<Vec<Vec<u8>>>>;

/// Keys read by tracking clients (default mode) and the clients in
/// broadcast mode.
pub struct TrackingTable {
    keys: HashMap<Vec<u8>, Vec<Token>>,
    /// Keys in the order they were first tracked, for the bound.
    order: VecDeque<Vec<u8>>,
    max_keys: usize,
    bcast: HashMap<Token, Vec<Vec<u8>>>,
}

impl TrackingTable {
    /// An empty table remembering at most `max_keys` keys, as Redis's
    /// `tracking-table-max-keys`.
    pub fn new(max_keys: usize) -> TrackingTable {
        TrackingTable {
            keys: HashMap::new(),
            order: VecDeque::new(),
            max_keys: max_keys.max(1),
            bcast: HashMap::new(),
        }
    }

    /// Keys remembered now.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Remembers that `token` read `key`. When the table is over its bound,
    /// the oldest keys are dropped and their readers told, into `out`.
    pub fn track(&mut self, token: Token, key: Vec<u8>, out: &mut Deliveries) {
        match self.keys.get_mut(&key) {
            Some(readers) => {
                if !readers.contains(&token) {
                    readers.push(token);
                }
            }
            None => {
                self.order.push_back(key.clone());
                self.keys.insert(key, vec![token]);
            }
        }
        while self.keys.len() > self.max_keys {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(readers) = self.keys.remove(&oldest) {
                add(out, &readers, &oldest);
            }
        }
        // Keys invalidated (and so gone from `keys`) leave their place in
        // `order` behind; drop those places before they add up.
        if self.order.len() > 2 * self.max_keys {
            let keys = &self.keys;
            let mut seen = std::collections::HashSet::new();
            self.order
                .retain(|key| keys.contains_key(key) && seen.insert(key.clone()));
        }
    }

    /// Puts `token` in broadcast mode for `prefixes` (all keys when empty),
    /// or takes it out (`None`).
    pub fn set_bcast(&mut self, token: Token, prefixes: Option<Vec<Vec<u8>>>) {
        match prefixes {
            Some(prefixes) => {
                self.bcast.insert(token, prefixes);
            }
            None => {
                self.bcast.remove(&token);
            }
        }
    }

    /// Forgets `token` (closed, or tracking off). Its keys go when they
    /// change or age out.
    pub fn forget(&mut self, token: Token) {
        self.bcast.remove(&token);
    }

    /// These keys changed: who must be told. Default-mode entries are
    /// removed (a client reads again to be told again), as Redis does.
    pub fn changed(&mut self, keys: &[Vec<u8>]) -> Deliveries {
        let mut out = Deliveries::new();
        for key in keys {
            if let Some(readers) = self.keys.remove(key) {
                add(&mut out, &readers, key);
            }
            for (token, prefixes) in &self.bcast {
                if prefixes.is_empty() || prefixes.iter().any(|p| key.starts_with(p)) {
                    add(&mut out, &[*token], key);
                }
            }
        }
        out
    }

    /// Everything may have changed: the table is emptied.
    pub fn clear(&mut self) {
        self.keys.clear();
        self.order.clear();
    }
}

fn add(out: &mut Deliveries, readers: &[Token], key: &[u8]) {
    for token in readers {
        if let Some(keys) = out.entry(*token).or_insert_with(|| Some(Vec::new())) {
            keys.push(key.to_vec());
        }
    }
}

/// The keys (or `None`: everything) as an array, or the null that means
/// "flush everything".
fn keys_or_null(buf: &mut Vec<u8>, protocol: Protocol, keys: Option<&[Vec<u8>]>) {
    match keys {
        Some(keys) => {
            header(buf, b'*', keys.len());
            for key in keys {
                header(buf, b'$', key.len());
                buf.extend_from_slice(key);
                buf.extend_from_slice(b"\r\n");
            }
        }
        None if protocol == Protocol::Resp3 => buf.extend_from_slice(b"_\r\n"),
        None => buf.extend_from_slice(b"$-1\r\n"),
    }
}

fn header(buf: &mut Vec<u8>, tag: u8, len: usize) {
    buf.push(tag);
    buf.extend_from_slice(itoa::Buffer::new().format(len).as_bytes());
    buf.extend_from_slice(b"\r\n");
}

/// `>2 invalidate [keys]` on a RESP3 client's own connection.
pub fn invalidate_push(buf: &mut Vec<u8>, keys: Option<&[Vec<u8>]>) {
    buf.extend_from_slice(b">2\r\n$10\r\ninvalidate\r\n");
    keys_or_null(buf, Protocol::Resp3, keys);
}

/// The message a `REDIRECT` target gets on `__redis__:invalidate`: a Pub/Sub
/// message in RESP2, a push in RESP3.
pub fn redirect_message(buf: &mut Vec<u8>, protocol: Protocol, keys: Option<&[Vec<u8>]>) {
    match protocol {
        Protocol::Resp2 => buf.extend_from_slice(b"*3\r\n"),
        Protocol::Resp3 => buf.extend_from_slice(b">3\r\n"),
    }
    buf.extend_from_slice(b"$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n");
    keys_or_null(buf, protocol, keys);
}

/// `>2 tracking-redir-broken <id>`: the connection messages went to is gone.
pub fn redir_broken_push(buf: &mut Vec<u8>, id: u64) {
    buf.extend_from_slice(b">2\r\n$21\r\ntracking-redir-broken\r\n:");
    buf.extend_from_slice(itoa::Buffer::new().format(id).as_bytes());
    buf.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_are_told_once_and_forgotten_and_the_bound_tells_the_oldest() {
        let mut table = TrackingTable::new(2);
        let mut out = Deliveries::new();
        table.track(Token(1), b"a".to_vec(), &mut out);
        table.track(Token(2), b"a".to_vec(), &mut out);
        table.track(Token(1), b"b".to_vec(), &mut out);
        assert!(out.is_empty());
        table.track(Token(1), b"c".to_vec(), &mut out);
        // Over the bound: "a", the oldest, is dropped and both readers told.
        assert_eq!(out.len(), 2);
        assert_eq!(out[&Token(2)], Some(vec![b"a".to_vec()]));
        let told = table.changed(&[b"b".to_vec(), b"b".to_vec()]);
        assert_eq!(told[&Token(1)], Some(vec![b"b".to_vec()]));
        assert_eq!(table.len(), 1);
        table.set_bcast(Token(9), Some(vec![b"user:".to_vec()]));
        let told = table.changed(&[b"user:1".to_vec(), b"other".to_vec()]);
        assert_eq!(told[&Token(9)], Some(vec![b"user:1".to_vec()]));
    }

    #[test]
    fn messages_are_framed_as_redis_frames_them() {
        let mut buf = Vec::new();
        invalidate_push(&mut buf, Some(&[b"k".to_vec()]));
        assert_eq!(buf, b">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n");
        buf.clear();
        invalidate_push(&mut buf, None);
        assert_eq!(buf, b">2\r\n$10\r\ninvalidate\r\n_\r\n");
        buf.clear();
        redirect_message(&mut buf, Protocol::Resp2, Some(&[b"k".to_vec()]));
        assert_eq!(
            buf,
            b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*1\r\n$1\r\nk\r\n"
        );
    }
}
