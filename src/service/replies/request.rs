//! A request's canonical bytes, the key its reply is cached under, and
//! CACHE_COMMANDS' names.

use std::cell::RefCell;
use std::collections::HashSet;

use crate::commands::{packed, MAX_NAME};

/// An argument shorter than this many bytes has its length in one byte;
/// a longer one has this byte, then its length in 4 (little-endian).
const LONG: u8 = u8::MAX;

/// Requests whose canonical bytes are no longer are encoded on the stack
/// for a lookup: no thread-local to reach, no capacity to check.
const ON_STACK: usize = 64;

/// How many canonical bytes request `args` has ([`encode`]).
pub(super) fn encoded_len(args: &[&[u8]]) -> usize {
    args.iter()
        .map(|a| a.len() + if a.len() < usize::from(LONG) { 1 } else { 5 })
        .sum()
}

/// The canonical bytes of request `args`: the command name lower-cased,
/// then each argument, each preceded by its length (one byte below 255,
/// else the byte 255 and 4 bytes, little-endian), so two requests that
/// differ in any argument, or only in how they split into arguments, never
/// share bytes, and a name's case does not matter (Redis's doesn't). Short
/// (`hgetall user:1`: 15 bytes), so that a reply's key is kept inline in
/// its node as often as can be (`cache/key.rs`).
pub(super) fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded_len(args));
    encode_into(args, &mut out);
    out
}

fn encode_into(args: &[&[u8]], out: &mut Vec<u8>) {
    out.clear();
    for (i, arg) in args.iter().enumerate() {
        match u8::try_from(arg.len()) {
            Ok(len) if len < LONG => out.push(len),
            _ => {
                out.push(LONG);
                // RESP_MAX_REQUEST_BYTES (512 MiB at most) bounds an argument.
                out.extend_from_slice(&(arg.len() as u32).to_le_bytes());
            }
        }
        let start = out.len();
        out.extend_from_slice(arg);
        if i == 0 {
            out[start..].make_ascii_lowercase();
        }
    }
}

thread_local! {
    /// Where a lookup encodes a request too long for the stack: reused,
    /// so a hit allocates nothing once the thread has seen a request as
    /// long.
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on the canonical bytes of `args` ([`encode`]): on the stack
/// when short, else in this thread's scratch buffer.
pub(super) fn with_encoded<T>(args: &[&[u8]], f: impl FnOnce(&[u8]) -> T) -> T {
    let len = encoded_len(args);
    if len <= ON_STACK {
        let mut buf = [0u8; ON_STACK];
        let mut at = 0;
        for arg in args {
            // Each argument is shorter than ON_STACK, so than LONG.
            buf[at] = arg.len() as u8;
            buf[at + 1..at + 1 + arg.len()].copy_from_slice(arg);
            at += 1 + arg.len();
        }
        if let Some(name) = args.first() {
            buf[1..1 + name.len()].make_ascii_lowercase();
        }
        return f(&buf[..len]);
    }
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut buf) => {
            encode_into(args, &mut buf);
            let result = f(&buf);
            // A huge request's buffer is not kept.
            if buf.capacity() > 1 << 16 {
                *buf = Vec::new();
            }
            result
        }
        // (Not reentrant: `f` never encodes; but never panic.)
        Err(_) => f(&encode(args)),
    })
}

/// CACHE_COMMANDS: the names of the commands whose replies are cached,
/// checked first and cheaply (a forwarded write pays one lookup of its
/// name packed into a number, [`packed`]), before the command table is
/// asked.
#[derive(Debug)]
pub struct CacheCommands {
    /// The names of at most [`PACKED_MAX`](crate::commands::PACKED_MAX)
    /// bytes, packed.
    short: PackedSet,
    /// The longer ones (`zrevrangebyscore`), in lower case.
    long: HashSet<Box<[u8]>, foldhash::fast::FixedState>,
}

impl Default for CacheCommands {
    fn default() -> CacheCommands {
        CacheCommands::new(&[])
    }
}

impl CacheCommands {
    /// The set of `names` (lower case).
    pub fn new(names: &[String]) -> CacheCommands {
        let mut short = Vec::new();
        let mut long = HashSet::default();
        for name in names {
            match packed(name.as_bytes()) {
                Some(key) => short.push(key),
                None => {
                    long.insert(name.as_bytes().into());
                }
            }
        }
        CacheCommands {
            short: PackedSet::new(&short),
            long,
        }
    }

    /// Whether request `args` names one of them (any case).
    pub fn names(&self, args: &[&[u8]]) -> bool {
        let Some(name) = args.first() else {
            return false;
        };
        if let Some(key) = packed(name) {
            return self.short.contains(key);
        }
        if self.long.is_empty() {
            return false;
        }
        let mut buf = [0u8; MAX_NAME];
        let Some(lower) = buf.get_mut(..name.len()) else {
            return false;
        };
        lower.copy_from_slice(name);
        lower.make_ascii_lowercase();
        self.long.contains(&*lower)
    }
}

/// A fixed set of packed names, in a table of open addressing probed from
/// a multiplicative hash of the name: a lookup is a multiply, a shift and
/// a compare or two (a seeded hasher and a `HashSet`'s probe cost about 60
/// instructions more on every request checked). Built once from the
/// settings, at least half its slots empty, so a probe ends at the first
/// empty slot after at most as many compares as there are names.
#[derive(Debug)]
struct PackedSet {
    /// A power of two of them, [`EMPTY`] or a name.
    slots: Box<[u128]>,
    /// 64 less the number of bits of a slot's index.
    shift: u32,
}

/// An empty slot: no packed name, whose top byte (its length) is at most
/// 15.
const EMPTY: u128 = u128::MAX;

impl PackedSet {
    fn new(names: &[u128]) -> PackedSet {
        let size = (names.len() * 2).next_power_of_two().max(2);
        let mut set = PackedSet {
            slots: vec![EMPTY; size].into_boxed_slice(),
            shift: 64 - size.trailing_zeros(),
        };
        for &name in names {
            let mut at = set.home(name);
            while set.slots[at] != EMPTY && set.slots[at] != name {
                at = (at + 1) & (size - 1);
            }
            set.slots[at] = name;
        }
        set
    }

    /// Where `name`'s probe starts: its two halves folded, then
    /// Fibonacci hashing (the top bits of a multiply by 2^64 / phi).
    #[inline]
    fn home(&self, name: u128) -> usize {
        let folded = name as u64 ^ (name >> 64) as u64;
        (folded.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> self.shift) as usize
    }

    #[inline]
    fn contains(&self, name: u128) -> bool {
        let mask = self.slots.len() - 1;
        let mut at = self.home(name);
        loop {
            match self.slots[at] {
                slot if slot == name => return true,
                EMPTY => return false,
                _ => at = (at + 1) & mask,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_differing_in_any_way_but_the_name_case_differ() {
        let a = encode(&[b"HGET", b"h", b"f"]);
        assert_eq!(a, encode(&[b"hget", b"h", b"f"]));
        assert_ne!(a, encode(&[b"hget", b"hf", b""]));
        assert_ne!(a, encode(&[b"hget", b"h", b"F"]));
        assert_eq!(with_encoded(&[b"HGET", b"h", b"f"], |r| r.to_vec()), a);
    }

    #[test]
    fn a_short_argument_has_a_one_byte_length() {
        assert_eq!(encode(&[b"HGETALL", b"myhash"]), b"\x07hgetall\x06myhash");
        assert_eq!(encoded_len(&[b"HGETALL", b"myhash"]), 15);
        // From 255 bytes on: the byte 255, then 4 bytes of length.
        for len in [254, 255, 256, 70_000] {
            let arg = vec![b'a'; len];
            let bytes = encode(&[b"get", &arg]);
            let head = match len {
                254 => vec![254],
                _ => [&[255][..], &(len as u32).to_le_bytes()].concat(),
            };
            assert_eq!(bytes, [&b"\x03get"[..], &head, &arg].concat());
            assert_eq!(bytes.len(), encoded_len(&[b"get", &arg]));
        }
    }

    #[test]
    fn the_stack_and_the_scratch_encode_alike() {
        let long = vec![b'X'; 300];
        let cases: [&[&[u8]]; 6] = [
            &[],
            &[b""],
            &[b"LRange", b"k", b"0", b"-1"],
            &[b"HGETALL", &long[..40]],
            &[b"HGETALL", &long[..63]],
            &[b"Hmget", &long, b"f"],
        ];
        for args in cases {
            assert_eq!(with_encoded(args, |r| r.to_vec()), encode(args), "{args:?}");
        }
        // A split between arguments is part of the bytes.
        assert_ne!(encode(&[b"get", b"ab", b""]), encode(&[b"get", b"a", b"b"]));
        let a254 = [b'a'; 254];
        let a255 = [b'a'; 255];
        assert_ne!(encode(&[b"get", &a255]), encode(&[b"get", &a254, b"a"]));
    }

    #[test]
    fn names_are_matched_in_any_case() {
        let names = CacheCommands::new(&["hgetall".to_owned()]);
        assert!(names.names(&[b"HGetAll", b"k"]));
        assert!(!names.names(&[b"hget", b"k"]));
        assert!(!names.names(&[]));
        assert!(!CacheCommands::default().names(&[b"hgetall"]));
        let names = CacheCommands::new(&["zrevrangebyscore".to_owned(), "get".to_owned()]);
        assert!(names.names(&[b"ZREVRANGEBYSCORE", b"k"]));
        assert!(names.names(&[b"Get", b"k"]));
        assert!(!names.names(&[b"zrevrangebyscorex"]));
        assert!(!names.names(&[b"get\0"]));
    }

    #[test]
    fn a_packed_set_holds_what_it_was_given_and_nothing_else() {
        // Every name of one to four letters: sets of each size, each
        // asked about all of them (collisions, wrapping probes and full
        // clusters included).
        let all: Vec<Vec<u8>> = (1..=4)
            .flat_map(|len| {
                (0..26usize.pow(len)).map(move |mut n| {
                    (0..len)
                        .map(|_| {
                            let b = b'a' + (n % 26) as u8;
                            n /= 26;
                            b
                        })
                        .collect()
                })
            })
            .step_by(97)
            .collect();
        let keys: Vec<u128> = all.iter().filter_map(|n| packed(n)).collect();
        for size in [0, 1, 2, 3, 7, 64, keys.len()] {
            let set = PackedSet::new(&keys[..size]);
            assert!(set.slots.iter().filter(|&&s| s == EMPTY).count() * 2 >= set.slots.len());
            for (i, &key) in keys.iter().enumerate() {
                assert_eq!(set.contains(key), i < size, "{size} {i}");
            }
            assert!(!set.contains(packed(b"").expect("short")));
        }
        // The same name twice takes one slot.
        let twice = PackedSet::new(&[keys[0], keys[0]]);
        assert_eq!(twice.slots.iter().filter(|&&s| s != EMPTY).count(), 1);
    }
}
