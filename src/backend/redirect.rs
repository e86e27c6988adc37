//! Redirections in a cluster node's error replies (`-MOVED`, `-ASK`), read
//! from the reply's bytes in one place for all who look: the forwarder
//! (`forward_cluster.rs`), which follows one only to a node a slot map
//! names a master, and never to the node that sent it; the cluster read
//! (`read_cluster.rs`); and the router, for which a `-MOVED` shows its map
//! stale (`router.rs`).

use super::slots::{Addr, Slot, SlotMap};

/// A redirection found in a reply.
pub(super) enum Redirect {
    Moved(Option<Slot>, Addr),
    Ask(Addr),
}

/// Whether `map` names `addr` a master.
pub(super) fn knows(map: &SlotMap, addr: &Addr) -> bool {
    map.masters().iter().any(|known| **known == *addr)
}

/// `-MOVED <slot> <host:port>` or `-ASK <slot> <host:port>`.
pub(super) fn redirection(reply: &[u8]) -> Option<Redirect> {
    let line = reply.strip_prefix(b"-")?.strip_suffix(b"\r\n")?;
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.split(' ');
    let kind = words.next()?;
    let slot = words.next()?;
    let addr = Addr::parse(words.next()?)?;
    match kind {
        "MOVED" => Some(Redirect::Moved(slot.parse().ok().and_then(Slot::new), addr)),
        "ASK" => Some(Redirect::Ask(addr)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirections_are_read_from_error_replies() {
        let addr = Addr {
            host: "127.0.0.1".to_owned(),
            port: 7001,
        };
        match redirection(b"-MOVED 3999 127.0.0.1:7001\r\n") {
            Some(Redirect::Moved(slot, to)) => {
                assert_eq!(slot, Slot::new(3999));
                assert_eq!(to, addr);
            }
            _ => panic!("a MOVED"),
        }
        assert!(matches!(
            redirection(b"-ASK 3999 127.0.0.1:7001\r\n"),
            Some(Redirect::Ask(to)) if to == addr
        ));
        assert!(redirection(b"-ERR MOVED 1 a:1\r\n").is_none());
        assert!(redirection(b"+MOVED 1 a:1\r\n").is_none());
        assert!(redirection(b"-MOVED 1\r\n").is_none());
        assert!(redirection(b"-MOVED nonsense\r\n").is_none());
        assert!(redirection(b"-WRONGTYPE Operation\r\n").is_none());
        assert!(redirection(b"$1\r\nv\r\n").is_none());
    }
}
