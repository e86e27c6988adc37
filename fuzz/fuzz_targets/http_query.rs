//! The HTTP query decoding on arbitrary query strings: it must never panic,
//! and a key it returns is never empty nor longer than the cap.
#![no_main]

use libfuzzer_sys::fuzz_target;
use redis_proxy::http::query::find_key;

const MAX_KEY_BYTES: usize = 8192;

fuzz_target!(|data: &[u8]| {
    let query = String::from_utf8_lossy(data);
    if let Ok(key) = find_key(&query, MAX_KEY_BYTES) {
        assert!(!key.is_empty() && key.len() <= MAX_KEY_BYTES);
    }
});
