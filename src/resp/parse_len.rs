//! The length lines of a request (`*N`, `$N`), read as Redis reads them:
//! a one-pass fast path for the usual line, and the general rules. Apart
//! from the parser (`parse.rs`), which had grown past 400 lines.

/// The common case of a bulk length line, read in one pass: digits only
/// (at most 18) from `from`, then CRLF, all arrived: the number and where
/// its `\r` is. Anything else (a sign, another byte, the line not all
/// there, a number `usize` cannot hold) is `None`, for the general path to
/// decide. Summed in a `u64` (18 digits fit), not a `usize`: on a 32-bit
/// target a length past `u32::MAX` would otherwise wrap to a small one.
///
/// It runs for every length line of every request (four times for a
/// SET): so a one-digit line is read at once, a longer one a digit per
/// step with one bounds check and one range check (a generic iterator
/// cost about twice the instructions), and it is always inlined into the
/// parser's loop (called, its result went through memory: some 15
/// instructions a line).
#[inline(always)]
pub(super) fn digits_line(buf: &[u8], from: usize) -> Option<(usize, usize)> {
    let line = buf.get(from..)?;
    // One digit, the usual count and the usual short argument's length.
    if let [digit @ b'0'..=b'9', b'\r', b'\n', ..] = line {
        return Some((usize::from(digit - b'0'), from + 1));
    }
    let mut n = 0u64;
    let mut digits = 0;
    while let Some(&byte) = line.get(digits) {
        let digit = byte.wrapping_sub(b'0');
        if digit > 9 {
            break;
        }
        if digits == 18 {
            return None;
        }
        n = n * 10 + u64::from(digit);
        digits += 1;
    }
    // A leading zero (`$05`) is the general path's: Redis refuses it.
    let leading_zero = digits > 1 && line[0] == b'0';
    if digits == 0 || leading_zero || line.get(digits..digits + 2) != Some(&b"\r\n"[..]) {
        return None;
    }
    Some((usize::try_from(n).ok()?, from + digits))
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
