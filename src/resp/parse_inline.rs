//! Splitting an inline command's line into arguments by the rules of
//! Redis's `sdssplitargs` (its `sds.c`), which Redis 7 applies to every
//! inline request, so `SET k "a b"` stores `a b` through the proxy as it
//! does at Redis:
//!
//! - Arguments are separated by whitespace (C's `isspace`: space, `\t`,
//!   `\n`, `\v`, `\f`, `\r`); an unquoted argument ends only at a space,
//!   `\t`, `\n` or `\r` (a `\v` or `\f` inside it is kept).
//! - A `"` or `'` anywhere in an argument opens a quoted part, which the
//!   same quote closes; `x"y z"` is the one argument `xy z`, and `""` is
//!   an empty argument.
//! - Inside double quotes: `\xHH` (two hex digits) is that byte; `\n`,
//!   `\r`, `\t`, `\b`, `\a` are those controls; a backslash before any
//!   other byte yields that byte (`\"`, `\\`, `\q` is `q`).
//! - Inside single quotes only `\'` is an escape; other backslashes are
//!   kept.
//! - A closing quote must be followed by whitespace or the end of the
//!   line, and every quote must be closed: otherwise the line is
//!   unbalanced, which Redis answers with a protocol error.

use std::ops::Range;

/// A line whose quotes do not balance (a quote left open, or a closing
/// quote followed by something other than whitespace).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unbalanced;

/// Splits `line` (an inline request without its line ending) into
/// arguments, pushed to `args` as ranges of `line`.
///
/// A line with no quote in it is only read: each argument is where it was
/// written. A line with quotes is rewritten in place, since an argument's
/// unquoted bytes are never more than its written ones: the arguments are
/// moved to the line's start, one space between each, and the rest of the
/// line is blanked with spaces. An argument with no whitespace or quote in
/// it therefore still reads the same in the rewritten line (a bare
/// `"RESET"` becomes `RESET`).
///
/// Returns whether the line was rewritten (it had quotes), which an
/// unbalanced line may be too, half-way: either way its bytes no longer
/// read as they were sent, so they must not be parsed again.
pub fn split(line: &mut [u8], args: &mut Vec<Range<usize>>) -> Result<bool, Unbalanced> {
    if !line.iter().any(|&b| b == b'"' || b == b'\'') {
        split_plain(line, args);
        return Ok(false);
    }
    split_quoted(line, args).map(|()| true)
}

/// C's `isspace` in the C locale: what separates arguments.
fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// What ends an unquoted argument (`\v` and `\f` do not).
fn ends_word(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}

/// A line with no quotes: the arguments are runs of bytes between
/// separators, left where they are.
fn split_plain(line: &[u8], args: &mut Vec<Range<usize>>) {
    let mut at = 0;
    loop {
        while line.get(at).is_some_and(|&b| is_space(b)) {
            at += 1;
        }
        if at == line.len() {
            return;
        }
        let start = at;
        while line.get(at).is_some_and(|&b| !ends_word(b)) {
            at += 1;
        }
        args.push(start..at);
    }
}

/// The state of the argument being read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Quote {
    None,
    Double,
    Single,
}

/// A line with quotes, rewritten in place (see [`split`]). `read` is the
/// next byte to read and `write` where the next output byte goes; every
/// output byte is made from at least one byte read, and arguments are
/// apart by at least one separator read, so `write <= read` throughout
/// and nothing is overwritten before it is read.
fn split_quoted(line: &mut [u8], args: &mut Vec<Range<usize>>) -> Result<(), Unbalanced> {
    let len = line.len();
    let first = args.len();
    let mut read = 0;
    let mut write = 0;
    loop {
        while read < len && is_space(line[read]) {
            read += 1;
        }
        if read == len {
            break;
        }
        if args.len() > first {
            line[write] = b' ';
            write += 1;
        }
        let start = write;
        let mut quote = Quote::None;
        loop {
            let Some(&byte) = line.get(read) else {
                // The end of the line ends an unquoted argument only.
                if quote != Quote::None {
                    return Err(Unbalanced);
                }
                break;
            };
            let (out, used) = match quote {
                Quote::None => match byte {
                    _ if ends_word(byte) => break,
                    b'"' => {
                        quote = Quote::Double;
                        (None, 1)
                    }
                    b'\'' => {
                        quote = Quote::Single;
                        (None, 1)
                    }
                    _ => (Some(byte), 1),
                },
                Quote::Double => match (byte, line.get(read + 1).copied()) {
                    (b'\\', Some(b'x')) => match hex_byte(line, read + 2) {
                        Some(value) => (Some(value), 4),
                        None => (Some(b'x'), 2),
                    },
                    (b'\\', Some(next)) => (Some(unescape(next)), 2),
                    (b'"', next) => {
                        closing(next)?;
                        read += 1;
                        break;
                    }
                    _ => (Some(byte), 1),
                },
                Quote::Single => match (byte, line.get(read + 1).copied()) {
                    (b'\\', Some(b'\'')) => (Some(b'\''), 2),
                    (b'\'', next) => {
                        closing(next)?;
                        read += 1;
                        break;
                    }
                    _ => (Some(byte), 1),
                },
            };
            read += used;
            if let Some(out) = out {
                line[write] = out;
                write += 1;
            }
        }
        args.push(start..write);
    }
    line[write..].fill(b' ');
    Ok(())
}

/// A closing quote is followed by whitespace or the end of the line.
fn closing(next: Option<u8>) -> Result<(), Unbalanced> {
    match next {
        Some(byte) if !is_space(byte) => Err(Unbalanced),
        _ => Ok(()),
    }
}

/// The byte a backslash before `byte` stands for inside double quotes.
fn unescape(byte: u8) -> u8 {
    match byte {
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'b' => b'\x08',
        b'a' => b'\x07',
        other => other,
    }
}

/// The byte written as two hex digits at `at` in `line`, if there are two.
fn hex_byte(line: &[u8], at: usize) -> Option<u8> {
    let digit = |i: usize| line.get(i).and_then(|&b| (b as char).to_digit(16));
    let (high, low) = (digit(at)?, digit(at + 1)?);
    u8::try_from(high * 16 + low).ok()
}

#[cfg(test)]
#[path = "parse_inline_tests.rs"]
mod tests;
