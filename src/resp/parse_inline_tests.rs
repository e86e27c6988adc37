//! Unit tests of the inline splitter: each rule of `sdssplitargs`, with
//! the answers redis-server 7.0 gave for the same lines.

use super::*;

/// The arguments of `line`, or `Unbalanced`.
fn words(line: &[u8]) -> Result<Vec<Vec<u8>>, Unbalanced> {
    let mut line = line.to_vec();
    let mut args = Vec::new();
    split(&mut line, &mut args)?;
    Ok(args.into_iter().map(|r| line[r].to_vec()).collect())
}

fn ok(line: &[u8]) -> Vec<Vec<u8>> {
    words(line).expect("balanced")
}

fn owned(args: &[&[u8]]) -> Vec<Vec<u8>> {
    args.iter().map(|a| a.to_vec()).collect()
}

#[test]
fn plain_words_split_on_whitespace_as_c_isspace_says() {
    assert_eq!(ok(b"GET k"), owned(&[b"GET", b"k"]));
    assert_eq!(ok(b"  SET\t a  b "), owned(&[b"SET", b"a", b"b"]));
    assert!(ok(b"").is_empty());
    assert!(ok(b" \t\x0b\x0c\r ").is_empty());
    // \v and \f are skipped between words but kept inside one.
    assert_eq!(ok(b"\x0bSET a\x0cb"), owned(&[b"SET", b"a\x0cb"]));
    assert_eq!(ok(b"SET a\x0bb c"), owned(&[b"SET", b"a\x0bb", b"c"]));
    // A \r inside the line ends a word.
    assert_eq!(ok(b"SET a b\rc"), owned(&[b"SET", b"a", b"b", b"c"]));
    // A backslash outside quotes is a plain byte.
    assert_eq!(ok(b"SET a\\n b"), owned(&[b"SET", b"a\\n", b"b"]));
}

#[test]
fn a_plain_line_is_left_as_it_is() {
    let mut line = b"  GET   key ".to_vec();
    let mut args = Vec::new();
    split(&mut line, &mut args).expect("balanced");
    assert_eq!(args, vec![2..5, 8..11]);
    assert_eq!(line, b"  GET   key ");
}

#[test]
fn double_quotes_hold_whitespace_and_may_be_empty() {
    assert_eq!(ok(b"SET qk \"v\""), owned(&[b"SET", b"qk", b"v"]));
    assert_eq!(ok(b"SET a \"b c\""), owned(&[b"SET", b"a", b"b c"]));
    assert_eq!(ok(b"SET a \"\""), owned(&[b"SET", b"a", b""]));
    assert_eq!(ok(b"\"\""), owned(&[b""]));
    assert_eq!(ok(b"SET a \"b\rc\""), owned(&[b"SET", b"a", b"b\rc"]));
}

#[test]
fn double_quotes_take_hex_and_control_escapes() {
    assert_eq!(ok(b"SET qk2 \"a\\x41\\n\"")[2], b"aA\n");
    assert_eq!(ok(b"\"\\xff\\x00\\xAb\"")[0], b"\xff\x00\xab");
    assert_eq!(ok(b"\"\\n\\r\\t\\b\\a\"")[0], b"\n\r\t\x08\x07");
    // Any other escaped byte is taken as it is.
    assert_eq!(ok(b"\"\\q\\\\\\\"\\'\"")[0], b"q\\\"'");
    // \x without two hex digits is just an escaped x.
    assert_eq!(ok(b"\"\\xZZ\\x4\"")[0], b"xZZx4");
    assert_eq!(ok(b"\"\\x4g\"")[0], b"x4g");
}

#[test]
fn single_quotes_know_only_the_escaped_quote() {
    assert_eq!(ok(b"SET a 'it\\'s \\n'")[2], b"it's \\n");
    assert_eq!(ok(b"''"), owned(&[b""]));
    assert_eq!(ok(b"'a\"b'")[0], b"a\"b");
    assert_eq!(ok(b"\"a'b\"")[0], b"a'b");
}

#[test]
fn a_quote_inside_a_word_opens_a_quoted_part() {
    assert_eq!(ok(b"SET a x\"y z\""), owned(&[b"SET", b"a", b"xy z"]));
    assert_eq!(ok(b"a'b c'"), owned(&[b"ab c"]));
}

#[test]
fn a_closing_quote_is_followed_by_whitespace_or_the_end() {
    assert_eq!(ok(b"SET a \"b\"\tc"), owned(&[b"SET", b"a", b"b", b"c"]));
    assert_eq!(ok(b"SET a \"b\"\x0bc"), owned(&[b"SET", b"a", b"b", b"c"]));
    assert_eq!(ok(b"SET a \"b\"\rc"), owned(&[b"SET", b"a", b"b", b"c"]));
    for bad in [
        &b"SET a \"x\"y"[..],
        b"SET a 'x'y",
        b"SET a \"b\"'c'",
        b"\"a\"\"b\"",
    ] {
        assert_eq!(words(bad), Err(Unbalanced), "{:?}", bad.escape_ascii());
    }
}

#[test]
fn a_quote_left_open_is_unbalanced() {
    for bad in [
        &b"SET a 'unterminated"[..],
        b"SET a \"unterminated",
        b"\"",
        b"'",
        b"x\"",
        // The escaped quote does not close it; nor does a backslash at
        // the end.
        b"SET a \"x\\\"",
        b"SET a 'x\\'",
        b"SET a \"x\\",
        b"SET a \"\\x4",
    ] {
        assert_eq!(words(bad), Err(Unbalanced), "{:?}", bad.escape_ascii());
    }
}

#[test]
fn a_quoted_line_is_rewritten_in_place_as_plain_words() {
    let mut line = b"  \"RESET\"   ".to_vec();
    let mut args = Vec::new();
    split(&mut line, &mut args).expect("balanced");
    assert_eq!(args, vec![0..5]);
    assert_eq!(line, b"RESET       ");
    let mut line = b"SET  \"a b\" 'c'".to_vec();
    let mut args = Vec::new();
    split(&mut line, &mut args).expect("balanced");
    assert_eq!(args, vec![0..3, 4..7, 8..9]);
    assert_eq!(line, b"SET a b c     ");
}
