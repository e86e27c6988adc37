//! Cluster mode: a redirection is followed only to a node of the slot map.
//! An error reply is text a script can write, so a `-MOVED` naming any
//! other host must not make the proxy connect (and log in) there.

use std::net::TcpListener;

use crate::common::cluster::Cluster;
use crate::common::resp_wire::Wire;
use crate::common::Proxy;

#[test]
fn a_script_written_moved_to_an_unknown_host_is_passed_on_not_followed() {
    let cluster = Cluster::start();
    let proxy = Proxy::start_at(
        &cluster.seeds(),
        &[("REDIS_MODE", "cluster"), ("RESP_PORT", "auto")],
    );
    proxy.wait_for_link("up");
    // A host that would see the proxy's connection (and its AUTH).
    let trap = TcpListener::bind("127.0.0.1:0").expect("a listener");
    trap.set_nonblocking(true).expect("non-blocking");
    let addr = trap.local_addr().expect("its address");
    let mut wire = Wire::connect(proxy.resp_addr());
    for kind in ["MOVED", "ASK"] {
        let script = format!("return redis.error_reply('{kind} 1 {addr}')");
        let reply = wire.call_args(&["EVAL", &script, "0"]);
        assert_eq!(
            String::from_utf8_lossy(&reply),
            format!("-{kind} 1 {addr}\r\n"),
            "the node's reply, passed on"
        );
        assert!(
            trap.accept().is_err(),
            "the proxy connected to {addr} after a {kind}"
        );
    }
    // The connection and the proxy go on.
    assert_eq!(wire.call_args(&["SET", "{t}k", "v"]), b"+OK\r\n");
}
