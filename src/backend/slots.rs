//! Which master owns which hash slot, from `CLUSTER SLOTS`: what the
//! forwarder routes clients' commands by in cluster mode, and what the
//! invalidation watcher takes its list of masters from.
//!
//! Key hashing is the redis crate's (`cluster_routing::Slot::for_key`:
//! CRC16 of the key, or of its `{hash tag}`, modulo 16384). The crate keeps
//! its own slot map and its `CLUSTER SLOTS` parser private, and its public
//! `Slot` hides the slot's number, so the map here is keyed by `Slot`
//! itself: a table of 16384 entries built once per refresh.

use std::collections::HashMap;
use std::sync::Arc;

use redis::Value;

pub use redis::cluster_routing::Slot;

/// How many hash slots a cluster has.
const SLOTS: u16 = 16384;

/// A cluster node's address, as `CLUSTER SLOTS`, `-MOVED` and `-ASK` give it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Addr {
    pub host: String,
    pub port: u16,
}

impl Addr {
    /// Reads `host:port` (the address in a `-MOVED` or `-ASK` reply).
    pub fn parse(text: &str) -> Option<Addr> {
        let (host, port) = text.rsplit_once(':')?;
        Some(Addr {
            host: host.to_owned(),
            port: port.parse().ok()?,
        })
    }
}

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// The slot of `key`, hash tags honoured (the redis crate's hashing).
pub fn slot_of(key: &[u8]) -> Slot {
    Slot::for_key(key)
}

/// The masters and the slots each owns, at one moment.
#[derive(Debug)]
pub struct SlotMap {
    /// Every master owning a slot, sorted (shared: a request's route
    /// holds one without copying it).
    masters: Vec<Arc<Addr>>,
    /// Slot → index in `masters`; a slot no one serves is absent.
    owner: HashMap<Slot, usize, foldhash::fast::FixedState>,
    /// The master keyless commands go to: the owner of the lowest slot
    /// served, so one client's keyless commands keep their order.
    any: usize,
    /// Which of the router's maps this is (0 until the router installs
    /// it): a fill may be kept only if no other map replaced it while its
    /// reply was fetched (see `Router::generation`).
    pub(super) generation: u64,
}

impl SlotMap {
    /// Reads a `CLUSTER SLOTS` reply:
    /// `[[start, end, [host, port, id, ...], replicas...], ...]`.
    pub fn parse(reply: &Value) -> Result<SlotMap, String> {
        let ranges = ranges(reply)?;
        let mut masters: Vec<Arc<Addr>> =
            ranges.iter().map(|(_, _, m)| Arc::new(m.clone())).collect();
        masters.sort();
        masters.dedup();
        let mut owner = HashMap::with_capacity_and_hasher(usize::from(SLOTS), Default::default());
        let mut lowest: Option<(u16, usize)> = None;
        for (start, end, master) in &ranges {
            let index = masters
                .binary_search_by(|known| (**known).cmp(master))
                .unwrap_or_default();
            for slot in *start..=*end {
                if let Some(slot) = Slot::new(slot) {
                    owner.insert(slot, index);
                }
            }
            if lowest.is_none_or(|(low, _)| *start < low) {
                lowest = Some((*start, index));
            }
        }
        let Some((_, any)) = lowest else {
            return Err("the cluster has no slots assigned".to_owned());
        };
        Ok(SlotMap {
            masters,
            owner,
            any,
            generation: 0,
        })
    }

    /// Every master, sorted.
    pub fn masters(&self) -> &[Arc<Addr>] {
        &self.masters
    }

    /// The master owning `slot`, if one does.
    pub fn master(&self, slot: Slot) -> Option<&Arc<Addr>> {
        self.owner.get(&slot).map(|&index| &self.masters[index])
    }

    /// The master keyless commands go to.
    pub fn any(&self) -> &Arc<Addr> {
        &self.masters[self.any]
    }
}

/// The ranges of a `CLUSTER SLOTS` reply: start, end, master.
fn ranges(reply: &Value) -> Result<Vec<(u16, u16, Addr)>, String> {
    let Value::Array(ranges) = reply else {
        return Err(format!("CLUSTER SLOTS answered {reply:?}"));
    };
    let slot = |value: Option<&Value>| match value {
        Some(Value::Int(n)) => u16::try_from(*n).ok().filter(|n| *n < SLOTS),
        _ => None,
    };
    let mut out = Vec::with_capacity(ranges.len());
    for range in ranges {
        let Value::Array(fields) = range else {
            return Err(format!("CLUSTER SLOTS range is not an array: {range:?}"));
        };
        let (Some(start), Some(end)) = (slot(fields.first()), slot(fields.get(1))) else {
            return Err(format!("CLUSTER SLOTS range without its slots: {range:?}"));
        };
        let (host, port) = match fields.get(2) {
            Some(Value::Array(node)) => (node.first(), node.get(1)),
            _ => (None, None),
        };
        let host = match host {
            Some(Value::BulkString(bytes)) => String::from_utf8_lossy(bytes).into_owned(),
            Some(Value::SimpleString(text)) => text.clone(),
            _ => return Err(format!("CLUSTER SLOTS range without a master: {range:?}")),
        };
        let port = match port {
            Some(Value::Int(port)) => u16::try_from(*port).map_err(|err| err.to_string())?,
            _ => return Err(format!("CLUSTER SLOTS range without a port: {range:?}")),
        };
        out.push((start, end, Addr { host, port }));
    }
    Ok(out)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// One node of a `CLUSTER SLOTS` range, as Redis sends it.
    pub(in crate::backend) fn node(host: &str, port: i64) -> Value {
        Value::Array(vec![
            Value::BulkString(host.as_bytes().to_vec()),
            Value::Int(port),
            Value::BulkString(b"id".to_vec()),
        ])
    }

    fn range(start: i64, end: i64, master: Value) -> Value {
        Value::Array(vec![Value::Int(start), Value::Int(end), master])
    }

    #[test]
    fn each_slot_maps_to_the_first_node_of_its_range() {
        let map = SlotMap::parse(&Value::Array(vec![
            range(10923, 16383, node("10.0.0.3", 7002)),
            range(0, 5460, node("10.0.0.1", 7000)),
            range(5461, 10922, node("10.0.0.2", 7001)),
        ]))
        .expect("parses");
        assert_eq!(map.masters().len(), 3);
        let addr = |port| Addr {
            host: format!("10.0.0.{}", port - 6999),
            port,
        };
        // Redis: CLUSTER KEYSLOT foo = 12182, bar = 5061; {bar}x as bar.
        assert_eq!(map.master(slot_of(b"foo")), Some(&Arc::new(addr(7002))));
        assert_eq!(map.master(slot_of(b"bar")), Some(&Arc::new(addr(7000))));
        assert_eq!(slot_of(b"{bar}x"), slot_of(b"bar"));
        assert_eq!(slot_of(b"{}bar"), Slot::for_key(b"{}bar"));
        assert_ne!(slot_of(b"{}bar"), slot_of(b"bar"));
        assert_eq!(**map.any(), addr(7000));
        assert!(SlotMap::parse(&Value::Array(vec![])).is_err());
        assert!(SlotMap::parse(&Value::Int(1)).is_err());
    }

    #[test]
    fn addresses_parse_as_redirections_give_them() {
        assert_eq!(
            Addr::parse("127.0.0.1:7001"),
            Some(Addr {
                host: "127.0.0.1".to_owned(),
                port: 7001
            })
        );
        assert_eq!(Addr::parse("nohost"), None);
        assert_eq!(Addr::parse("h:99999"), None);
    }
}
