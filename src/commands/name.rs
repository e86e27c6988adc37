//! A short command name as one number, so that the RESP port's checks of
//! every request's name (is it one the proxy answers, does CACHE_COMMANDS
//! name it) compare integers instead of lower-casing, then comparing or
//! hashing the bytes once for each candidate.

/// Longest name packed: its bytes and its length fill a `u128`.
pub const PACKED_MAX: usize = 15;

/// `name` lower-cased (ASCII) and packed into a `u128`: its bytes
/// little-endian, its length in the top byte (so `get` and `get\0`
/// differ). None when longer than [`PACKED_MAX`]: no packed name is such.
pub fn packed(name: &[u8]) -> Option<u128> {
    if name.len() > PACKED_MAX {
        return None;
    }
    let mut buf = [0u8; 16];
    buf.get_mut(..name.len())?.copy_from_slice(name);
    buf[PACKED_MAX] = name.len() as u8;
    buf.make_ascii_lowercase();
    Some(u128::from_le_bytes(buf))
}

/// [`packed`] of a name known when compiling (in lower case); a longer
/// one does not compile.
pub const fn packed_const(name: &str) -> u128 {
    let bytes = name.as_bytes();
    assert!(
        bytes.len() <= PACKED_MAX,
        "a packed name has 15 bytes at most"
    );
    let mut buf = [0u8; 16];
    let mut i = 0;
    while i < bytes.len() {
        buf[i] = bytes[i].to_ascii_lowercase();
        i += 1;
    }
    buf[PACKED_MAX] = bytes.len() as u8;
    u128::from_le_bytes(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_pack_by_their_lower_case_bytes_and_length() {
        assert_eq!(packed(b"HSET"), packed(b"hset"));
        assert_eq!(packed(b"GeT"), Some(packed_const("get")));
        assert_ne!(packed(b"get"), packed(b"get\0"));
        assert_ne!(packed(b"get"), packed(b"gets"));
        assert_eq!(packed(b""), Some(packed_const("")));
        assert_eq!(packed(b"unsubscribe"), Some(packed_const("unsubscribe")));
        assert_eq!(
            packed(b"abcdefghijklmno"),
            Some(packed_const("abcdefghijklmno"))
        );
        assert_eq!(packed(b"abcdefghijklmnop"), None);
        assert_eq!(packed(&[b'x'; 300]), None);
    }
}
