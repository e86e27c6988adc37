//! End-to-end tests: each starts its own `redis-server` and the real proxy
//! binary on free ports, and talks to them over real sockets.

#[path = "../common/mod.rs"]
mod common;

mod auth;
mod browser;
mod client_tls;
mod client_tracking;
mod cluster;
mod coherence;
mod concurrency;
mod config_cli;
mod conformance;
mod errors;
mod faults;
mod flow_control;
mod hostile;
mod keepalive;
mod operations;
mod read_through;
mod redis_ttl;
mod resp;
mod sentinel;
mod tls;
mod unannounced;
mod validators;
