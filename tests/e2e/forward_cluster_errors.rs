//! Cluster mode's errors worded as Redis words them: a `SCAN` cursor no
//! master of the map can have is Redis's `-ERR invalid cursor`.

use crate::common::cluster::Cluster;
use crate::common::resp_wire::Wire;
use crate::common::Proxy;

#[test]
fn a_scan_cursor_no_master_can_have_is_an_invalid_cursor_as_at_redis() {
    let cluster = Cluster::start();
    let proxy = Proxy::start_at(
        &cluster.seeds(),
        &[("REDIS_MODE", "cluster"), ("RESP_PORT", "auto")],
    );
    proxy.wait_for_link("up");
    let mut direct = Wire::connect(cluster.nodes[0].addr());
    let mut through = Wire::connect(proxy.resp_addr());
    let invalid = direct.call_args(&["SCAN", "x"]);
    assert_eq!(String::from_utf8_lossy(&invalid), "-ERR invalid cursor\r\n");
    // Not a number: the node's own answer, passed on. A number whose low
    // bits name a master past the map's three (1023, 3, u64::MAX): the
    // proxy's answer, the same.
    for cursor in ["x", "1023", "3", "18446744073709551615"] {
        let reply = through.call_args(&["SCAN", cursor]);
        assert_eq!(
            String::from_utf8_lossy(&reply),
            String::from_utf8_lossy(&invalid),
            "SCAN {cursor}"
        );
    }
    // The connection goes on, and a real cursor scans.
    assert!(through.call_args(&["SCAN", "0"]).starts_with(b"*2\r\n"));
}
