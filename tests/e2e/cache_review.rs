//! Review of issue #22's reply cache: each test here
//! is a bug found in review, seen failing before its fix.

use crate::common::resp_wire::Wire;
use crate::common::{Proxy, RedisServer};

const RESP: (&str, &str) = ("RESP_PORT", "auto");

/// A multi-key read's request is copied once per key (listed under each
/// key while it is fetched, and in each key's file once stored), so what
/// it costs the proxy grows with keys × request bytes: a SUNION of 2,500
/// keys (a 70 KB request, well under RESP_MAX_REQUEST_BYTES) would make
/// the proxy hold some 175 MB for one request. A read whose filing would
/// copy more than the per-item limit is forwarded, not cached: its cost
/// stays a few copies of the request.
#[test]
fn a_read_of_many_keys_costs_no_more_than_a_few_copies_of_it() {
    let redis = RedisServer::start();
    let proxy = Proxy::start(&redis, &[RESP]);
    let mut client = Wire::connect(proxy.resp.expect("RESP port"));
    assert_eq!(client.call_args(&["SUNION", "warm"]), b"*0\r\n");
    let keys: Vec<String> = (0..2500)
        .map(|i| format!("review22:sunion:key:{i:04}"))
        .collect();
    let mut args = vec!["SUNION"];
    args.extend(keys.iter().map(String::as_str));
    let before = proxy.peak_kib();
    assert_eq!(client.call_args(&args), b"*0\r\n");
    let grown = proxy.peak_kib().saturating_sub(before);
    assert!(
        grown < 48 * 1024,
        "one 70 KB request raised the proxy's peak memory by {grown} KiB"
    );
}
