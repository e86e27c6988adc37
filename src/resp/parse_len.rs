//! The length lines of a request (`*N`, `$N`), read as Redis reads them:
//! a one-pass fast path for the usual line, and the general rules. Apart
//! from the parser (`parse.rs`), which had grown past 400 lines.

/// The common case of a bulk length line, read in one pass: digits only
/// (at most 18) from `from`, then CRLF, all arrived: the number and where
/// its `\r` is. Anything else (a sign, another byte, the line not all
/// there, a number `usize` cannot hold) is `None`, for the general path to
/// decide. Summed in a `u64` (18 digits fit), not a `usize`: on a 32-bit
/// target a length past `u32::MAX` would otherwise wrap to a small one.
pub(super) fn digits_line(buf: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut n = 0u64;
    for (i, &byte) in buf.get(from..)?.iter().enumerate().take(19) {
        match byte {
            b'0'..=b'9' if i < 18 => n = n * 10 + u64::from(byte - b'0'),
            // A leading zero (`$05`) is the general path's: Redis refuses it.
            b'\r' if i > 0 && buf.get(from + i + 1) == Some(&b'\n') => {
                if i > 1 && buf[from] == b'0' {
                    return None;
                }
                return Some((usize::try_from(n).ok()?, from + i));
            }
            _ => return None,
        }
    }
    None
}

/// A decimal length between `min` and `max`, as Redis reads them
/// (`string2ll`): optional `-`, digits only, no `+`, no spaces, no leading
/// zero (`0` alone, but not `05` or `-0`).
pub(super) fn parse_len(digits: &[u8], min: i64, max: i64) -> Option<i64> {
    let (negative, digits) = match digits.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, digits),
    };
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if digits[0] == b'0' && (digits.len() > 1 || negative) {
        return None;
    }
    let magnitude = digits
        .iter()
        .fold(0i64, |n, d| n * 10 + i64::from(d - b'0'));
    let n = if negative { -magnitude } else { magnitude };
    (min..=max).contains(&n).then_some(n)
}
