//! The RESP request parser on random input: any valid command stream, split
//! at random points as TCP may split it, parses to the same commands through
//! one resumable parser (as a connection uses it); and no input at all makes
//! it panic.

use proptest::prelude::*;
use redis_proxy::resp::parse::{parse, Parser};

/// One command and how it is written on the wire.
#[derive(Clone, Debug)]
enum Wire {
    Array(Vec<Vec<u8>>),
    Inline(Vec<Vec<u8>>),
    /// Inline, each argument quoted: in double quotes with escapes
    /// (`true`, as redis-cli's `sdscatrepr` writes them) or in single
    /// quotes with `\'` (`false`).
    Quoted(Vec<(Vec<u8>, bool)>),
}

impl Wire {
    fn args(&self) -> Vec<Vec<u8>> {
        match self {
            Wire::Array(args) | Wire::Inline(args) => args.clone(),
            Wire::Quoted(args) => args.iter().map(|(arg, _)| arg.clone()).collect(),
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Wire::Array(args) => {
                out.extend(format!("*{}\r\n", args.len()).bytes());
                for arg in args {
                    out.extend(format!("${}\r\n", arg.len()).bytes());
                    out.extend(arg);
                    out.extend(b"\r\n");
                }
            }
            Wire::Inline(args) => {
                for (i, arg) in args.iter().enumerate() {
                    if i > 0 {
                        out.push(b' ');
                    }
                    out.extend(arg);
                }
                out.extend(b"\r\n");
            }
            Wire::Quoted(args) => {
                for (arg, double) in args {
                    out.push(b' ');
                    match double {
                        true => quote_double(arg, out),
                        false => quote_single(arg, out),
                    }
                }
                out.extend(b"\r\n");
            }
        }
    }
}

/// `arg` in double quotes, every byte escaped one of the ways Redis reads.
fn quote_double(arg: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &byte in arg {
        match byte {
            b'"' | b'\\' => out.extend([b'\\', byte]),
            b'\n' => out.extend(b"\\n"),
            b'\r' => out.extend(b"\\r"),
            b'\t' => out.extend(b"\\t"),
            b'\x07' => out.extend(b"\\a"),
            b'\x08' => out.extend(b"\\b"),
            b' '..=b'~' => out.push(byte),
            _ => out.extend(format!("\\x{byte:02x}").bytes()),
        }
    }
    out.push(b'"');
}

/// `arg` in single quotes, only its quotes escaped.
fn quote_single(arg: &[u8], out: &mut Vec<u8>) {
    out.push(b'\'');
    for &byte in arg {
        match byte {
            b'\'' => out.extend(b"\\'"),
            _ => out.push(byte),
        }
    }
    out.push(b'\'');
}

fn wire() -> impl Strategy<Value = Wire> {
    let binary = proptest::collection::vec(any::<u8>(), 0..40);
    // Inline words: no whitespace, no quotes, and not starting with '*'.
    let word = proptest::collection::vec(b'!'..=b'~', 1..12).prop_filter(
        "plain inline words do not start with * nor hold quotes",
        |w| w[0] != b'*' && !w.contains(&b'"') && !w.contains(&b'\''),
    );
    // Quoted: any bytes in double quotes; in single quotes, any but a
    // backslash just before the closing quote (Redis would read `\'`)
    // and a NUL (which, unescaped, ends the line at Redis).
    let quoted = (proptest::collection::vec(any::<u8>(), 0..12), any::<bool>()).prop_filter(
        "single-quoted arguments hold no NUL or line end and do not end in a backslash",
        |(arg, double)| {
            *double || (!arg.ends_with(b"\\") && !arg.iter().any(|b| matches!(b, 0 | b'\n')))
        },
    );
    prop_oneof![
        proptest::collection::vec(binary, 1..6).prop_map(Wire::Array),
        proptest::collection::vec(word, 1..6).prop_map(Wire::Inline),
        proptest::collection::vec(quoted, 1..6).prop_map(Wire::Quoted),
    ]
}

/// Feeds `stream` in pieces cut at `cuts`, parsing as a connection does.
fn parse_in_pieces(stream: &[u8], cuts: &[usize]) -> Vec<Vec<Vec<u8>>> {
    let mut bounds: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
    bounds.push(stream.len());
    bounds.sort_unstable();
    let mut buffer = Vec::new();
    let mut parsed = Vec::new();
    let mut parser = Parser::default();
    let mut fed = 0;
    for bound in bounds {
        buffer.extend_from_slice(&stream[fed..bound]);
        fed = bound;
        while let Some(request) = parser.parse(&mut buffer).expect("valid stream") {
            parsed.push(
                request
                    .args
                    .iter()
                    .map(|r| buffer[r.clone()].to_vec())
                    .collect(),
            );
            buffer.drain(..request.len);
        }
    }
    assert!(buffer.is_empty(), "bytes left over");
    parsed
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn split_streams_parse_to_the_same_commands(
        commands in proptest::collection::vec(wire(), 1..20),
        cuts in proptest::collection::vec(any::<usize>(), 0..30),
    ) {
        let mut stream = Vec::new();
        for command in &commands {
            command.encode(&mut stream);
        }
        let expected: Vec<Vec<Vec<u8>>> = commands.iter().map(Wire::args).collect();
        prop_assert_eq!(parse_in_pieces(&stream, &cuts), expected);
    }

    #[test]
    fn no_input_makes_the_parser_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut parser = Parser::default();
        for end in 0..=bytes.len() {
            let one_shot = parse(&mut bytes[..end].to_vec());
            // Resumed byte by byte, it decides as a fresh parse does.
            prop_assert_eq!(parser.parse(&mut bytes[..end].to_vec()), one_shot.clone());
            if !matches!(one_shot, Ok(None)) {
                break;
            }
        }
    }

    #[test]
    fn resp_shaped_garbage_never_panics(
        parts in proptest::collection::vec(
            prop_oneof![
                Just(b"*".to_vec()), Just(b"$".to_vec()), Just(b"\r\n".to_vec()),
                Just(b"-1".to_vec()), Just(b"99999999999999999999".to_vec()),
                Just(b"0".to_vec()), Just(b"3".to_vec()), Just(b"abc".to_vec()),
                Just(b"\n".to_vec()), Just(b"\r".to_vec()),
            ],
            0..40,
        )
    ) {
        let mut bytes = parts.concat();
        let _ = parse(&mut bytes);
    }
}
