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
    // Built a byte at a time (no call to copy a few bytes), then every
    // byte lower-cased at once: bit 7 of each byte of `upper` says it is
    // an ASCII capital (at least `A`, not past `Z`, and not a byte of 128
    // or more), and its bit 5 is then set.
    const ONES: u128 = u128::MAX / 0xff;
    let bytes = name
        .iter()
        .rev()
        .fold(0u128, |packed, &b| packed << 8 | u128::from(b));
    let low = bytes & (ONES * 0x7f);
    let at_least_a = low + ONES * u128::from(0x80 - b'A');
    let past_z = low + ONES * u128::from(0x80 - b'Z' - 1);
    let upper = at_least_a & !past_z & !bytes & (ONES * 0x80);
    Some((bytes | upper >> 2) | (name.len() as u128) << (8 * PACKED_MAX))
}

/// `name`'s bytes as they are (not lower-cased) and its length packed
/// into a `u128`, as [`packed`] packs them: two names pack the same only
/// when they are the same bytes. For telling a request of the same name
/// as the last one with one comparison. None when longer than
/// [`PACKED_MAX`].
#[inline]
pub fn packed_exact(name: &[u8]) -> Option<u128> {
    if name.len() > PACKED_MAX {
        return None;
    }
    let length = (name.len() as u128) << (8 * PACKED_MAX);
    // Most names fit 64 bits, which are cheaper to shift than 128.
    if name.len() <= 8 {
        let bytes = name
            .iter()
            .rev()
            .fold(0u64, |packed, &b| packed << 8 | u64::from(b));
        return Some(u128::from(bytes) | length);
    }
    let bytes = name
        .iter()
        .rev()
        .fold(0u128, |packed, &b| packed << 8 | u128::from(b));
    Some(bytes | length)
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
        assert_eq!(packed_exact(b"get"), Some(packed_const("get")));
        assert_ne!(packed_exact(b"GET"), packed_exact(b"get"));
        assert_ne!(packed_exact(b"get"), packed_exact(b"get\0"));
        assert_eq!(packed_exact(b"abcdefghijklmnop"), None);
        for name in ["abcdefgh", "abcdefghi", "abcdefghijklmno"] {
            assert_eq!(packed_exact(name.as_bytes()), Some(packed_const(name)));
        }
        assert_eq!(packed(&[b'x'; 300]), None);
        // Only ASCII capitals change, as `make_ascii_lowercase` does.
        for b in 0..=255u8 {
            let name = [b'a', b, b'Z', 0xff];
            let mut lower = name;
            lower.make_ascii_lowercase();
            let mut expected = [0u8; 16];
            expected[..4].copy_from_slice(&lower);
            expected[PACKED_MAX] = 4;
            assert_eq!(
                packed(&name),
                Some(u128::from_le_bytes(expected)),
                "byte {b}"
            );
        }
    }
}
