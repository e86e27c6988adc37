//! The RESP request parser on arbitrary bytes: it must never panic,
//! whatever it accepts must stay inside the input, a strict prefix of a
//! complete request is never another complete request, and parsing the same
//! place again (after an inline line was unquoted in place) gives the same
//! outcome.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redis_proxy::resp::parse::{parse, Parser};

fuzz_target!(|data: &[u8]| {
    let mut buf = data.to_vec();
    let mut parser = Parser::default();
    let first = parser.parse_at(&mut buf, 0);
    assert_eq!(first, parser.parse_at(&mut buf, 0));
    // The parser may unquote an inline line in place: it gets copies.
    let whole = parse(&mut data.to_vec());
    if let Ok(Some(request)) = &whole {
        assert!(request.len <= data.len());
        for arg in &request.args {
            assert!(arg.start <= arg.end && arg.end <= request.len);
        }
        // Any strict prefix of a complete request is incomplete or an error,
        // never a different complete request.
        if request.len > 0 {
            if let Ok(Some(shorter)) = parse(&mut data[..request.len - 1].to_vec()) {
                assert!(shorter.len < request.len);
            }
        }
    }
});
