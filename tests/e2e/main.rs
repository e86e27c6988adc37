//! End-to-end tests: each starts its own `redis-server` and the proxy (in
//! this process where nothing needs a process of its own: `InProcess`; the
//! real binary for start-up, signals, logs, /proc and exit codes: `Proxy`),
//! and talks to them over real sockets.

#[path = "../common/mod.rs"]
mod common;

mod auth;
mod browser;
mod cache_bytes;
mod cache_review;
mod cache_types;
mod cache_types_coherence;
mod cache_types_settings;
mod cached_replies;
mod client_tls;
mod client_tracking;
mod cluster;
mod cluster_moving;
mod coherence;
mod command_table;
mod concurrency;
mod config_cli;
mod conformance;
mod databases;
mod errors;
mod faults;
mod flow_control;
mod forward;
mod forward_blocking;
mod forward_bytes;
mod forward_cluster;
mod forward_cluster_errors;
mod forward_cluster_lanes;
mod forward_cluster_redirect;
mod forward_large;
mod forward_loop;
mod forward_metrics;
mod forward_pubsub;
mod forward_server;
mod forward_tracking;
mod forward_transactions;
mod forward_transactions_clients;
mod forward_transactions_state;
mod harness;
mod hostile;
mod http_accept;
mod http_framing;
mod http_framing_lines;
mod http_head_counts;
mod http_host;
mod http_types;
mod inline;
mod keepalive;
mod limits;
mod operations;
mod operators;
mod operators_cors;
mod operators_deploy;
mod operators_info;
mod pubsub_gate;
mod pubsub_invalidation;
mod quick_start;
mod read_through;
mod redis_ttl;
mod reply_bounds;
mod reset;
mod resp;
mod resp_bytes;
mod sentinel;
mod stale_if_error;
mod tls;
mod tracking_limits;
mod unannounced;
mod validators;
