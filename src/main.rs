//! The `redis-proxy` binary: flags, logging, configuration, then [`Proxy`].

use std::process::ExitCode;

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
    let config = Config::from_env();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let config = match config {
        Ok(config) => config,
        Err(err) => {
            eprintln!("redis-proxy: {err}");
            return ExitCode::from(2);
        }
    };
    match Proxy::start(&config) {
        Ok(proxy) => {
            log::info!(
                "redis-proxy listening on http://{} ({})",
                proxy.http_addr(),
                config.describe()
            );
            proxy.wait();
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("redis-proxy: cannot start: {err}");
            ExitCode::FAILURE
        }
    }
}
