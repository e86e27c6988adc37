//! Unit tests of the request parser: every form of request, in any
//! pieces, and the limits on hostile input.

use super::*;

/// The arguments of the request at the front of `buf`, parsed in a copy
/// (a quoted inline line is rewritten in place).
fn args(buf: &[u8]) -> Vec<Vec<u8>> {
    let mut buf = buf.to_vec();
    let request = super::parse(&mut buf).expect("valid").expect("complete");
    request
        .args
        .iter()
        .map(|r| buf[r.clone()].to_vec())
        .collect()
}

/// [`super::parse`] of a copy of `buf`.
fn parse(buf: &[u8]) -> Result<Option<Request>, ProtocolError> {
    super::parse(&mut buf.to_vec())
}

/// `parser.parse` of a copy of `buf`.
fn feed(parser: &mut Parser, buf: &[u8]) -> Result<Option<Request>, ProtocolError> {
    parser.parse(&mut buf.to_vec())
}

#[test]
fn arrays_of_bulk_strings() {
    let buf = b"*2\r\n$3\r\nGET\r\n$5\r\nhe\r\no\r\n";
    assert_eq!(args(buf), vec![&b"GET"[..], b"he\r\no"]);
    assert_eq!(parse(buf).expect("ok").expect("some").len, buf.len());
    assert_eq!(args(b"*1\r\n$0\r\n\r\n"), vec![&b""[..]]);
}

#[test]
fn a_recycled_list_takes_the_next_request() {
    let buf = b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n*3\r\n$5\r\nLPUSH\r\n$1\r\nl\r\n$1\r\nv\r\n";
    let mut parser = Parser::default();
    let first = feed(&mut parser, buf).expect("valid").expect("complete");
    assert_eq!(first.args, vec![8..11, 17..18]);
    let pointer = first.args.as_ptr();
    parser.recycle(first.args);
    let second = feed(&mut parser, &buf[first.len..])
        .expect("valid")
        .expect("complete");
    assert_eq!(second.args, vec![8..13, 19..20, 26..27]);
    assert_eq!(
        second.args.as_ptr(),
        pointer,
        "parsed into the recycled list"
    );
    // A huge request's list is not kept.
    parser.recycle(Vec::with_capacity(RECYCLED_ARGS + 1));
    assert_eq!(parser.args.capacity(), 0);
}

#[test]
fn inline_commands() {
    assert_eq!(args(b"PING\r\n"), vec![&b"PING"[..]]);
    assert_eq!(args(b"  GET   key \n"), vec![&b"GET"[..], b"key"]);
    assert!(args(b"\r\n").is_empty());
    // Quoted as Redis's sdssplitargs reads them (parse_inline.rs).
    assert_eq!(
        args(b"SET a \"b c\" 'd\\'e' \"\\x41\\n\"\r\n"),
        vec![&b"SET"[..], b"a", b"b c", b"d'e", b"A\n"]
    );
    assert_eq!(args(b"SET a \"\"\r\n"), vec![&b"SET"[..], b"a", b""]);
    // Only the line's own bytes are rewritten, and the request's length
    // is the written one.
    let mut buf = b"ECHO \"x y\"\r\nPING \"z\"\r\n".to_vec();
    let request = super::parse(&mut buf).expect("valid").expect("complete");
    assert_eq!(request.len, 12);
    assert_eq!(&buf[request.args[1].clone()], b"x y");
    assert_eq!(&buf[12..], b"PING \"z\"\r\n");
}

#[test]
fn unbalanced_inline_quotes_are_redis_s_protocol_error() {
    for bad in [
        &b"SET a 'unterminated\r\n"[..],
        b"SET a \"x\"y\r\n",
        b"SET a \"x\\\"\n",
    ] {
        let err = parse(bad).expect_err("unbalanced");
        assert_eq!(
            err.message(),
            b"ERR Protocol error: unbalanced quotes in request"
        );
    }
    // Not an error before the line is whole: a quote may close later.
    assert_eq!(parse(b"SET a \"b"), Ok(None));
}

#[test]
fn a_nul_before_the_newline_means_an_inline_line_never_ends() {
    // Redis looks for the `\n` with strchr, which stops at the NUL: it
    // waits for more until the line passes 64 KiB.
    assert_eq!(parse(b"SET a b\0 c\r\nPING\r\n"), Ok(None));
    let mut long = b"SET a b\0 c\r\n".to_vec();
    long.resize(MAX_LINE, b'x');
    assert_eq!(parse(&long), Ok(None));
    long.push(b'x');
    assert_eq!(
        parse(&long),
        Err(ProtocolError::new("too big inline request"))
    );
    // A NUL after the newline belongs to the next request.
    assert_eq!(args(b"PING\r\n\0"), vec![&b"PING"[..]]);
    // Resumed, the parser decides as a fresh one does.
    let wire = b"GET k\0\r\n";
    let mut parser = Parser::default();
    for end in 0..=wire.len() {
        assert_eq!(feed(&mut parser, &wire[..end]), Ok(None));
    }
}

#[test]
fn incomplete_until_the_last_byte() {
    let buf = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
    for cut in 0..buf.len() {
        assert_eq!(parse(&buf[..cut]), Ok(None), "cut at {cut}");
    }
    assert!(parse(buf).expect("ok").is_some());
}

#[test]
fn absurd_lengths_are_errors_not_allocations() {
    for bad in [
        &b"*99999999999\r\n"[..],
        b"*1048577\r\n",
        b"*1\r\n$99999999999\r\n",
        b"*1\r\n$536870913\r\n",
        b"*1\r\n$-1\r\n",
        b"*x\r\n",
        b"*1\r\n+OK\r\n",
        b"*1\r\n*1\r\n",
        b"*1\r\n$1\r\nab\r\n",
    ] {
        assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
    }
    // A large but legal declared length just waits for the bytes.
    assert_eq!(parse(b"*1\r\n$67108000\r\nabc"), Ok(None));
    assert_eq!(parse(b"*1048576\r\n"), Ok(None));
    // Beyond what the proxy takes in one request: refused at once.
    assert!(parse(b"*1\r\n$67108864\r\n").is_err());
    assert!(parse(b"*1\r\n$524288000\r\n").is_err());
    assert!(parse(b"*3\r\n$3\r\nGET\r\n$67000000\r\n").is_ok());
    let mut two_big = b"*3\r\n$4\r\nMGET\r\n$40000000\r\n".to_vec();
    two_big.extend(vec![b'a'; 40_000_000]);
    two_big.extend(b"\r\n$40000000\r\n");
    assert!(parse(&two_big).is_err());
}

#[test]
fn length_lines_in_any_form_and_any_pieces_parse_as_whole() {
    let requests: &[&[u8]] = &[
        b"*3\r\n$5\r\nLPUSH\r\n$19\r\nmylist:000000000042\r\n$3\r\nxxx\r\n",
        b"*3\r\n$3\r\nGET\r\n$1\r\nk\r\n$0\r\n\r\n",
        b"*-1\r\n",
        b"*0\r\n",
        // Refused, as Redis's string2ll refuses them: leading zeros, `-0`.
        b"*03\r\n$3\r\nGET\r\n$1\r\nk\r\n$0\r\n\r\n",
        b"*1\r\n$003\r\nGET\r\n",
        b"*2\r\n$-0\r\n\r\n$1\r\nk\r\n",
        b"*1\r\n$+1\r\nk\r\n",
        b"*1\r\n$1 \r\nk\r\n",
        b"*1\r\n$\r\n\r\n",
        b"*\r\n",
        b"*1\r\n$1234567890123456789\r\n",
        b"*1\r\n$1\rk\r\n",
    ];
    for wire in requests {
        let whole = parse(wire);
        for cut in 0..wire.len() {
            let mut parser = Parser::default();
            let first = feed(&mut parser, &wire[..cut]);
            let outcome = match first {
                Ok(None) => feed(&mut parser, wire),
                other => other,
            };
            assert_eq!(
                outcome,
                whole,
                "{:?} cut at {cut}",
                String::from_utf8_lossy(wire)
            );
        }
    }
    assert_eq!(args(requests[0])[1], b"mylist:000000000042");
    assert_eq!(args(requests[1]), vec![&b"GET"[..], b"k", b""]);
    for bad in &requests[4..] {
        assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn a_request_in_pieces_is_walked_once() {
    // A 100k-argument MGET arriving a few bytes at a time: the resumed
    // parser looks at each byte a bounded number of times.
    let mut wire = b"*100001\r\n$4\r\nMGET\r\n".to_vec();
    for i in 0..100_000 {
        let key = format!("k{i:06}");
        wire.extend(format!("${}\r\n{key}\r\n", key.len()).bytes());
    }
    let mut parser = Parser::default();
    let mut outcome = Ok(None);
    for end in (0..=wire.len()).step_by(7).chain([wire.len()]) {
        outcome = parser.parse(&mut wire[..end]);
        if !matches!(outcome, Ok(None)) {
            break;
        }
    }
    let request = outcome.expect("valid").expect("complete");
    assert_eq!(request.args.len(), 100_001);
    assert_eq!(request.len, wire.len());
}

#[test]
fn overlong_lines_are_errors() {
    let long = vec![b'a'; MAX_LINE + 1];
    assert!(parse(&long).is_err());
    assert_eq!(parse(&long[..MAX_LINE]), Ok(None));
    // As Redis: 64 KiB from the `*` or `$` without a line end is still
    // awaited; one byte more is refused.
    for head in [&b"*"[..], b"*1\r\n$"] {
        let mut line = head.to_vec();
        line.extend(std::iter::repeat_n(b'1', MAX_LINE - 1));
        assert_eq!(parse(&line), Ok(None));
        line.push(b'1');
        assert!(parse(&line).is_err());
    }
}

#[test]
fn a_byte_in_place_of_a_dollar_is_named_as_redis_names_it() {
    for (bad, got) in [
        (&b"*2\r\n$3\r\nGET\r\n*1\r\n$1\r\na\r\n"[..], b'*'),
        (b"*2\r\n$3\r\nGET\r\n:1\r\n", b':'),
        (b"*1\r\n\xff\r\n", b'\xff'),
    ] {
        let err = parse(bad).expect_err("not a bulk string");
        assert_eq!(err.got, Some(got));
        let mut expected = b"ERR Protocol error: expected '$', got '".to_vec();
        expected.extend([got, b'\'']);
        assert_eq!(err.message(), expected);
    }
    assert_eq!(
        parse(b"*1\r\n$x\r\n").map_err(|e| e.message()),
        Err(b"ERR Protocol error: invalid bulk length".to_vec())
    );
}

#[test]
fn a_byte_in_place_of_a_dollar_is_named_only_once_its_line_is_in() {
    // As Redis: the line's `\r` and one byte after it first.
    assert_eq!(parse(b"*1\r\nxabc"), Ok(None));
    assert_eq!(parse(b"*1\r\nxabc\r"), Ok(None));
    assert_eq!(parse(b"*1\r\nxabc\rz").map_err(|e| e.got), Err(Some(b'x')));
    // A NUL before the `\r` hides it (Redis's strchr): awaited until the
    // line passes 64 KiB, never named.
    for head in [&b"*1\r\n\0abc\r\n"[..], b"*1\r\nx\0\r\n"] {
        let mut line = head.to_vec();
        line.resize(4 + MAX_LINE, b'x');
        assert_eq!(parse(&line), Ok(None));
        line.push(b'x');
        assert_eq!(
            parse(&line),
            Err(ProtocolError::new("too big bulk count string"))
        );
    }
    // Resumed a byte at a time, the parser decides as a fresh one does.
    let wire = b"*1\r\nxy\r\n";
    let mut parser = Parser::default();
    for end in 0..wire.len() - 1 {
        assert_eq!(feed(&mut parser, &wire[..end]), Ok(None), "{end}");
    }
    assert!(feed(&mut parser, wire).is_err());
}

#[test]
fn a_request_past_the_parsers_limit_is_refused_once_declared() {
    let limit = 2 * 1024 * 1024;
    let mut parser = Parser::with_limit(limit);
    // A declared length past the limit: refused before any of it came.
    let over = format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${}\r\n", limit + 1);
    assert_eq!(
        feed(&mut parser, over.as_bytes()),
        Err(ProtocolError::new("invalid bulk length"))
    );
    // Arguments that fit one by one but not together.
    let half = limit / 2;
    let mut two = format!("*3\r\n$3\r\nSET\r\n${half}\r\n").into_bytes();
    two.extend(std::iter::repeat_n(b'k', half));
    two.extend_from_slice(format!("\r\n${half}\r\n").as_bytes());
    assert_eq!(
        feed(&mut parser, &two),
        Err(ProtocolError::new("request too large for the proxy"))
    );
    // The limit outlives the errors and requests that reset the parser.
    let mut fits = format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${}\r\n", limit - 64).into_bytes();
    fits.extend(std::iter::repeat_n(b'v', limit - 64));
    fits.extend_from_slice(b"\r\n");
    let request = feed(&mut parser, &fits).expect("valid").expect("whole");
    assert_eq!(request.len, fits.len());
    assert!(feed(&mut parser, over.as_bytes()).is_err());
    // The default is MAX_REQUEST.
    let mut default = Parser::default();
    let declared = format!("*2\r\n$3\r\nGET\r\n${}\r\n", MAX_REQUEST + 1);
    assert!(feed(&mut default, declared.as_bytes()).is_err());
    let declared = format!("*2\r\n$3\r\nGET\r\n${}\r\n", MAX_REQUEST / 2);
    assert_eq!(feed(&mut default, declared.as_bytes()), Ok(None));
}

#[test]
fn a_length_past_u32_max_is_never_read_as_a_small_one() {
    // 2^32 + 5: were the digits summed in a 32-bit usize, this would wrap
    // to 5 and "abcde" would be taken as the argument, the rest as the
    // next request.
    let past = b"*1\r\n$4294967301\r\nabcde\r\n*1\r\n$4\r\nPING\r\n";
    assert!(parse(past).is_err());
    let line = b"$4294967301\r\n";
    let expected = usize::try_from(4_294_967_301u64).ok().map(|n| (n, 11));
    assert_eq!(digits_line(line, 1), expected);
    // 18 digits at most on the fast path; more is the general path's.
    assert_eq!(
        digits_line(b"$999999999999999999\r\n", 1),
        usize::try_from(999_999_999_999_999_999u64)
            .ok()
            .map(|n| (n, 19))
    );
    assert_eq!(digits_line(b"$9999999999999999999\r\n", 1), None);
    assert!(parse(b"*1\r\n$9999999999999999999\r\n").is_err());
    assert!(parse(b"*1\r\n$99999999999999999999\r\n").is_err());
}

#[test]
fn a_rewritten_line_parsed_again_at_its_place_reads_as_first_parsed() {
    let mut parser = Parser::default();
    let mut buf = b"ECHO \"x y\" \"a\\nb\"\r\nPING\r\n".to_vec();
    let first = parser
        .parse_at(&mut buf, 7)
        .expect("parses")
        .expect("whole");
    let line = buf[..first.len].to_vec();
    let read = |request: &Request, bytes: &[u8]| -> Vec<Vec<u8>> {
        request
            .args
            .iter()
            .map(|r| bytes[r.clone()].to_vec())
            .collect()
    };
    let words = read(&first, &line);
    assert_eq!(words, [&b"ECHO"[..], b"x y", b"a\nb"]);
    // Left for a later turn: the same place again, the rewritten bytes.
    let again = parser
        .parse_at(&mut buf, 7)
        .expect("parses")
        .expect("whole");
    assert_eq!(read(&again, &buf), words);
    assert_eq!(again.len, first.len);
    // Consumed: the next place is parsed afresh.
    let next = parser
        .parse_at(&mut buf[first.len..], 7 + first.len as u64)
        .expect("parses")
        .expect("whole");
    assert_eq!(read(&next, &buf[first.len..]), [&b"PING"[..]]);
    // An unbalanced line's error is kept the same way.
    let mut bad = b"DEL \"k\\ngone\" \"\r\n".to_vec();
    assert!(parser.parse_at(&mut bad, 100).is_err());
    assert!(parser.parse_at(&mut bad, 100).is_err());
}

#[test]
fn a_length_with_a_leading_zero_is_refused_as_redis_refuses_it() {
    // Redis's string2ll takes `0` alone, never `05` nor `-0`.
    for bad in [&b"*01\r\n$4\r\nPING\r\n"[..], b"*-0\r\n", b"*00\r\n"] {
        let err = parse(bad).expect_err("refused");
        assert!(
            format!("{err:?}").contains("invalid multibulk length"),
            "{err:?}"
        );
    }
    for bad in [
        &b"*1\r\n$04\r\nPING\r\n"[..],
        b"*1\r\n$00\r\n\r\n",
        b"*1\r\n$-0\r\n",
    ] {
        let err = parse(bad).expect_err("refused");
        assert!(
            format!("{err:?}").contains("invalid bulk length"),
            "{err:?}"
        );
    }
    assert_eq!(digits_line(b"$05\r\n", 1), None);
    assert_eq!(digits_line(b"$0\r\n", 1), Some((0, 2)));
    assert!(parse(b"*1\r\n$0\r\n\r\n").is_ok());
    assert!(parse(b"*0\r\n").is_ok());
    assert!(parse(b"*10\r\n").is_ok());
}
