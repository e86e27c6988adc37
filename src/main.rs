//! The `redis-proxy` binary: flags, logging, configuration, signals; the
//! proxy itself is [`Proxy`].

use std::process::ExitCode;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use redis_proxy::config::{help_text, Config};
use redis_proxy::Proxy;

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(failure) => {
            // Said once: as a log line when the log shows errors, else (an
            // unknown argument, before the logger starts; RUST_LOG=off)
            // plainly on stderr. Both used to be printed.
            if log::log_enabled!(log::Level::Error) {
                log::error!("{}", failure.message);
            } else {
                eprintln!("redis-proxy: {}", failure.message);
            }
            failure.code
        }
    }
}

/// Why the binary stops before serving: the message, and the exit code (2
/// for a usage or configuration error, 1 for anything else).
struct Failure {
    message: String,
    code: ExitCode,
}

impl Failure {
    fn usage(message: String) -> Failure {
        Failure {
            message,
            code: ExitCode::from(2),
        }
    }

    fn other(message: String) -> Failure {
        Failure {
            message,
            code: ExitCode::FAILURE,
        }
    }
}

fn run() -> Result<ExitCode, Failure> {
    if let Some(arg) = std::env::args().nth(1) {
        if arg == "--help" || arg == "-h" {
            print!("{}", help_text());
            return Ok(ExitCode::SUCCESS);
        }
        return Err(Failure::usage(format!(
            "unknown argument {arg:?}; see --help"
        )));
    }
    // Read .env before the logger starts, so RUST_LOG may come from it; say
    // what was wrong with it once the logger is up.
    let dotenv_warning = Config::load_dotenv();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    if let Some(warning) = dotenv_warning {
        log::warn!("{warning}");
    }
    let mut config = Config::from_env().map_err(|err| Failure::usage(err.to_string()))?;
    for note in &config.deprecations {
        log::warn!("{note}");
    }
    let mut signals = Signals::new([SIGTERM, SIGINT])
        .map_err(|err| Failure::other(format!("cannot handle signals: {err}")))?;
    // Every connection is a file descriptor; the default soft limit (often
    // 1024) would cap connections far below what the machine allows.
    let open_files = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => Some(limit),
        Err(err) => {
            log::warn!("could not raise the open files limit: {err}");
            rlimit::getrlimit(rlimit::Resource::NOFILE)
                .ok()
                .map(|(soft, _)| soft)
        }
    };
    if let Some(limit) = open_files {
        log::debug!("open files limit: {limit}");
        // MAX_CONNECTIONS must fit in it, as Redis's maxclients does.
        if let Some(warning) = config.fit_open_files(limit).map_err(Failure::other)? {
            log::warn!("{warning}");
        }
    }
    let proxy = Proxy::start(&config).map_err(|err| match err.is_configuration() {
        true => Failure::usage(format!("cannot start: {err}")),
        false => Failure::other(format!("cannot start: {err}")),
    })?;
    // The addresses bound, not the ones asked for: with port 0 this line is
    // where the ports the kernel picked can be read.
    let tls = config.tls.is_some();
    let resp = proxy.resp_addr().map_or(String::new(), |addr| {
        format!(" and {}://{addr}", if tls { "rediss" } else { "redis" })
    });
    log::info!(
        "redis-proxy listening on {}://{}{resp} ({})",
        if tls { "https" } else { "http" },
        proxy.http_addr(),
        config.describe()
    );
    let Some(signal) = signals.forever().next() else {
        return Ok(ExitCode::FAILURE);
    };
    log::info!(
        "signal {signal}: draining requests in flight (up to {:?}; a second signal exits at once)",
        config.shutdown_timeout
    );
    // Out of threads (the process's task limit reached), the drain still
    // runs; only a second signal cannot cut it short.
    let second_signal = std::thread::Builder::new()
        .name("second-signal".to_owned())
        .spawn(move || {
            if let Some(second) = signals.forever().next() {
                log::warn!("signal {second} again: exiting without draining");
                std::process::exit(128 + second);
            }
        });
    if let Err(err) = second_signal {
        log::warn!("no thread to wait for a second signal ({err}): draining without it");
    }
    if proxy.shutdown(config.shutdown_timeout) {
        log::info!("drained; exiting");
        Ok(ExitCode::SUCCESS)
    } else {
        log::warn!(
            "requests still in flight after {:?}; exiting",
            config.shutdown_timeout
        );
        Ok(ExitCode::FAILURE)
    }
}
