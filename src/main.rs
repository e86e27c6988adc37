//! The `redis-proxy` binary: flags, logging, configuration, signals; the
//! proxy itself is [`Proxy`].

use std::process::ExitCode;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use redis_proxy::config::{help_text, Config};
use redis_proxy::Proxy;

fn main() -> ExitCode {
    if let Some(arg) = std::env::args().nth(1) {
        if arg == "--help" || arg == "-h" {
            print!("{}", help_text());
            return ExitCode::SUCCESS;
        }
        eprintln!("redis-proxy: unknown argument {arg:?}; see --help");
        return ExitCode::from(2);
    }
    // Read .env before the logger starts, so RUST_LOG may come from it.
    let config = Config::from_env();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let config = match config {
        Ok(config) => config,
        Err(err) => {
            eprintln!("redis-proxy: {err}");
            return ExitCode::from(2);
        }
    };
    let mut signals = match Signals::new([SIGTERM, SIGINT]) {
        Ok(signals) => signals,
        Err(err) => {
            eprintln!("redis-proxy: cannot handle signals: {err}");
            return ExitCode::FAILURE;
        }
    };
    // Every connection is a file descriptor; the default soft limit (often
    // 1024) would cap connections far below what the machine allows.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => log::debug!("open files limit: {limit}"),
        Err(err) => log::warn!("could not raise the open files limit: {err}"),
    }
    let proxy = match Proxy::start(&config) {
        Ok(proxy) => proxy,
        Err(err) => {
            eprintln!("redis-proxy: cannot start: {err}");
            return ExitCode::FAILURE;
        }
    };
    log::info!(
        "redis-proxy listening on http://{} ({})",
        proxy.http_addr(),
        config.describe()
    );
    let Some(signal) = signals.forever().next() else {
        return ExitCode::FAILURE;
    };
    log::info!(
        "signal {signal}: draining requests in flight (up to {:?}; a second signal exits at once)",
        config.shutdown_timeout
    );
    std::thread::spawn(move || {
        if let Some(second) = signals.forever().next() {
            log::warn!("signal {second} again: exiting without draining");
            std::process::exit(128 + second);
        }
    });
    if proxy.shutdown(config.shutdown_timeout) {
        log::info!("drained; exiting");
        ExitCode::SUCCESS
    } else {
        log::warn!(
            "requests still in flight after {:?}; exiting",
            config.shutdown_timeout
        );
        ExitCode::FAILURE
    }
}
