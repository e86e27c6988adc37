//! The invalidation link: one dedicated connection to Redis, named
//! `redis-proxy-invalidation`, on which `CLIENT TRACKING ON BCAST` makes Redis
//! announce every key written by anyone (and a flush as a null) as a RESP3
//! push. BCAST, because per-connection tracking on pooled connections loses
//! invalidations when a pooled connection drops (redis/redis#11767), and idle
//! pooled connections never read their pushes.
//!
//! One thread per link connects, sets tracking up, reads, and applies what
//! it read itself: every read's keys under one lock of the cache, in
//! arrival order, before it reads again. It also watches the connection (a
//! PING each second, answered within REDIS_TIMEOUT_MS, or the link is lost)
//! and reconnects with backoff (100 ms doubling to 5 s).
//!
//! Why a raw connection ([`RawConn`]) rather than the redis crate's: under
//! a stream of writes every written key comes back as one push, and the
//! crate built a `Value` for each and handed it through a channel to a
//! second thread, which took the cache's lock once per push: some 15% of
//! the proxy's CPU under forwarded writes. Here the pushes are taken apart
//! in the read buffer (`raw::invalidations`).

use std::io::{self, ErrorKind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use super::raw::frame::Framer;
use super::raw::invalidations::{scan, Event};
use super::raw::{RawConn, TlsRoots};
use crate::config::{Config, Invalidation, RedisMode};
use crate::log_limit::LogLimiter;

/// The name operators find in `CLIENT LIST`.
pub const LINK_NAME: &str = "redis-proxy-invalidation";
/// How often the link checks Redis still answers.
const PING_EVERY: Duration = Duration::from_secs(1);
/// The link's read buffer: a read takes up to this much.
const READ_BUFFER: usize = 64 * 1024;
/// First and longest waits before reconnecting.
const BACKOFF_FIRST: Duration = Duration::from_millis(100);
const BACKOFF_MOST: Duration = Duration::from_secs(5);

/// What the link tells the cache. Implemented by the service; called from
/// the link's threads only.
pub trait InvalidationSink: Send + Sync {
    /// Tracking is on: Redis announces every write from now on.
    fn link_up(&self);
    /// The link is gone: writes may go unannounced until it is back.
    fn link_lost(&self);
    /// `INVALIDATION=auto` and Redis refused tracking: TTL only from now on.
    fn tracking_off(&self);
    /// These keys changed in Redis (all a read from the link brought, in
    /// the order Redis announced them).
    fn invalidate(&self, keys: &[&[u8]]);
    /// Redis was flushed: every key changed.
    fn flush(&self);
}

/// The running link (in cluster mode, the thread that keeps one per master).
/// Dropping it ends a standalone link within a second (a proxy started in a
/// test process leaves no thread behind connecting to a Redis that is gone);
/// the cluster and sentinel watchers run for as long as the process does.
pub struct InvalidationLink {
    _thread: thread::JoinHandle<()>,
    stop: Arc<AtomicBool>,
}

impl Drop for InvalidationLink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Why a link could not be set up.
enum SetupError {
    /// Redis answered with an error that says it will not track for us
    /// (too old, an ACL rule, a managed service that disables it): see
    /// [`refuses_tracking`].
    Refused(String),
    /// Redis answered with an error that a later try may not meet: busy
    /// with a script, loading, at its client limit, a password being
    /// rotated.
    Passing(String),
    /// Redis could not be reached or did not answer.
    Unreachable(String),
}

/// Whether `why`, an error Redis answered while the link was set up
/// ("Redis refused CLIENT: -NOPERM ..."), says it will not track for us
/// whenever asked: an ACL rule (`NOPERM`), a Redis without RESP3
/// (`NOPROTO`) or without the command (an unknown command or subcommand,
/// as Redis before 6.0 and services that rename or disable commands
/// answer). Anything else (`BUSY`, `LOADING`, `WRONGPASS`, `NOAUTH`, "max
/// number of clients reached", ...) may pass, and under
/// `INVALIDATION=auto` must not turn invalidation off for good: that
/// would serve every write not made through this proxy stale for
/// GLOBAL_CACHE_EXPIRY, until a restart.
fn refuses_tracking(why: &str) -> bool {
    let Some(at) = why.find(": -").or_else(|| why.find(": !")) else {
        return false;
    };
    let error = &why[at + 3..];
    let (code, message) = error.split_once(' ').unwrap_or((error, ""));
    let message = message.to_ascii_lowercase();
    match code {
        "NOPERM" | "NOPROTO" => true,
        "ERR" => [
            "unknown command",
            "unknown subcommand",
            "not allowed",
            "not supported",
            "disabled",
        ]
        .iter()
        .any(|lasting| message.contains(lasting)),
        _ => false,
    }
}

impl InvalidationLink {
    /// Starts the link for `config` (which must not say `INVALIDATION=off`),
    /// reporting to `sink`; in sentinel mode it follows `topology`; in
    /// cluster mode it keeps `linked` (the backend's) saying which masters
    /// it covers.
    pub fn spawn(
        config: &Config,
        sink: Arc<dyn InvalidationSink>,
        topology: Option<Arc<super::Topology>>,
        linked: Arc<super::Linked>,
    ) -> std::io::Result<InvalidationLink> {
        if let Some(topology) = topology {
            let follower = super::sentinel::spawn_link(config, topology, sink)?;
            return Ok(InvalidationLink {
                _thread: follower,
                stop: Arc::default(),
            });
        }
        if config.redis_mode == RedisMode::Cluster {
            let watcher = super::cluster::spawn_links(config, sink, linked)?;
            return Ok(InvalidationLink {
                _thread: watcher,
                stop: Arc::default(),
            });
        }
        let client = super::client(config, &config.redis_url, redis::ProtocolVersion::RESP3)
            .map_err(std::io::Error::other)?;
        let stop = Arc::new(AtomicBool::new(false));
        let settings = Settings::new(config, &client, Arc::clone(&stop))?;
        Ok(InvalidationLink {
            _thread: settings.spawn(sink)?,
            stop,
        })
    }
}

/// Starts a link to the Redis at `host:port` (the configured credentials
/// and TLS), reporting to `sink` until `stop`: one per cluster master, or
/// the sentinels' current master.
pub(super) fn spawn_link_to(
    config: &Config,
    (host, port): &(String, u16),
    sink: Arc<dyn InvalidationSink>,
    stop: &Arc<AtomicBool>,
) -> Result<(), String> {
    let mut url = config.redis_url.clone();
    url.set_host(Some(host)).map_err(|err| err.to_string())?;
    url.set_port(Some(*port))
        .map_err(|()| "not a port".to_owned())?;
    let client = super::client(config, &url, redis::ProtocolVersion::RESP3)
        .map_err(|err| err.to_string())?;
    Settings::new(config, &client, Arc::clone(stop))
        .and_then(|settings| settings.spawn(sink))
        .map(drop)
        .map_err(|err| err.to_string())
}

/// One link: which Redis, and how to run it.
pub(super) struct Settings {
    info: redis::ConnectionInfo,
    roots: TlsRoots,
    timeout: Duration,
    prefixes: Vec<Vec<u8>>,
    auto: bool,
    /// Set when the link is no longer wanted (its cluster master is gone):
    /// it ends within a second, reporting nothing more.
    stop: Arc<AtomicBool>,
}

impl Settings {
    /// A link to `client`'s Redis as `config` says, until `stop` is set.
    pub(super) fn new(
        config: &Config,
        client: &redis::Client,
        stop: Arc<AtomicBool>,
    ) -> io::Result<Settings> {
        Ok(Settings {
            info: client.get_connection_info().clone(),
            roots: super::tls_roots(config)?,
            timeout: config.redis_timeout,
            prefixes: config.invalidation_prefixes.clone(),
            auto: config.invalidation == Invalidation::Auto,
            stop,
        })
    }

    /// Starts the link's thread.
    pub(super) fn spawn(
        self,
        sink: Arc<dyn InvalidationSink>,
    ) -> std::io::Result<thread::JoinHandle<()>> {
        thread::Builder::new()
            .name("invalidation-link".to_owned())
            .spawn(move || self.run(&*sink))
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Connects, listens, reconnects, for as long as the process runs (or
    /// until `auto` meets a Redis that refuses tracking, or `stop`).
    fn run(&self, sink: &dyn InvalidationSink) {
        let warnings = LogLimiter::new(Duration::from_secs(5));
        let mut backoff = BACKOFF_FIRST;
        while !self.stopped() {
            match self.connect() {
                Ok(mut conn) => {
                    if self.stopped() {
                        return;
                    }
                    sink.link_up();
                    log::info!("invalidation link up: Redis announces every write");
                    backoff = BACKOFF_FIRST;
                    let why = self.listen(&mut conn, sink);
                    if self.stopped() {
                        return;
                    }
                    sink.link_lost();
                    let _ = warnings.warn(format_args!(
                        "invalidation link lost ({why}): cache dropped and bypassed until it is back"
                    ));
                }
                Err(SetupError::Refused(why)) if self.auto => {
                    log::warn!(
                        "Redis refused client tracking ({why}): INVALIDATION=auto falls back to off; entries live out GLOBAL_CACHE_EXPIRY"
                    );
                    sink.tracking_off();
                    return;
                }
                Err(SetupError::Refused(why)) => {
                    let _ = warnings.warn(format_args!(
                        "INVALIDATION=tracking but Redis refused it ({why}): cache bypassed; retrying"
                    ));
                }
                Err(SetupError::Passing(why)) => {
                    let _ = warnings.warn(format_args!(
                        "invalidation link not set up ({why}): cache bypassed; retrying"
                    ));
                }
                Err(SetupError::Unreachable(why)) => {
                    log::debug!("invalidation link: Redis unreachable: {why}");
                }
            }
            thread::sleep(backoff);
            backoff = (backoff * 2).min(BACKOFF_MOST);
        }
    }

    /// Opens the link's connection (RESP3) and turns tracking on.
    fn connect(&self) -> Result<RawConn, SetupError> {
        // A command Redis answered with an error: a refusal of tracking
        // (too old for HELLO 3, an ACL rule, a managed service), or a
        // state that may pass.
        let classify = |err: io::Error| match err.kind() {
            ErrorKind::PermissionDenied if refuses_tracking(&err.to_string()) => {
                SetupError::Refused(err.to_string())
            }
            ErrorKind::PermissionDenied => SetupError::Passing(err.to_string()),
            _ => SetupError::Unreachable(err.to_string()),
        };
        let mut conn =
            RawConn::open(&self.info, true, self.timeout, &self.roots).map_err(classify)?;
        conn.call(&[b"CLIENT", b"SETNAME", LINK_NAME.as_bytes()])
            .map_err(classify)?;
        let mut tracking: Vec<&[u8]> = vec![b"CLIENT", b"TRACKING", b"ON", b"BCAST"];
        for prefix in &self.prefixes {
            tracking.extend([b"PREFIX".as_slice(), prefix.as_slice()]);
        }
        conn.call(&tracking).map_err(classify)?;
        conn.read_timeout(self.wake_every()).map_err(classify)?;
        Ok(conn)
    }

    /// How long a read on the link may wait: it wakes at least this often
    /// to PING, to see whether the PING was answered in time, and to see
    /// whether it is still wanted.
    fn wake_every(&self) -> Duration {
        PING_EVERY.min(self.timeout).max(Duration::from_millis(1))
    }

    /// Reads the link and applies what it says until it fails, pinging
    /// every second; returns why it ended.
    fn listen(&self, conn: &mut RawConn, sink: &dyn InvalidationSink) -> String {
        // What was read and not yet taken apart is `input[..filled]`; the
        // buffer is kept (and grows only for a push longer than it), so a
        // read neither allocates nor clears memory.
        let mut input = vec![0; READ_BUFFER];
        let mut filled = 0;
        let mut framer = Framer::default();
        let mut ping = Vec::new();
        super::raw::encode(&[b"PING"], &mut ping);
        let mut pinged: Option<Instant> = None;
        let mut next_ping = Instant::now() + PING_EVERY;
        loop {
            if filled == input.len() {
                input.resize(input.len() * 2, 0);
            }
            match conn.read_some(&mut input[filled..]) {
                Ok(n) => filled += n,
                Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(err) => return err.to_string(),
            }
            let (mut answered, mut refused) = (false, None);
            let mut keys = Vec::new();
            let used = scan(&input[..filled], &mut framer, &mut |event| match event {
                Event::Key(key) => keys.push(key),
                Event::Flush => {
                    apply(sink, &mut keys);
                    sink.flush();
                }
                Event::Unexpected(push) => {
                    log::warn!(
                        "unexpected invalidation push: {:?}; flushing to stay safe",
                        String::from_utf8_lossy(push)
                    );
                    apply(sink, &mut keys);
                    sink.flush();
                }
                Event::Reply => answered = true,
                Event::Refused(text) => {
                    refused
                        .get_or_insert_with(|| String::from_utf8_lossy(text).trim_end().to_owned());
                }
            });
            apply(sink, &mut keys);
            match used {
                Ok(used) => {
                    input.copy_within(used..filled, 0);
                    filled -= used;
                    if filled == 0 && input.len() > READ_BUFFER {
                        input = vec![0; READ_BUFFER];
                    }
                }
                Err(err) => return format!("Redis sent what is not RESP ({})", err.0),
            }
            if let Some(why) = refused {
                return format!("Redis refused PING: {why}");
            }
            if answered {
                pinged = None;
            }
            if self.stopped() {
                return "no longer wanted".to_owned();
            }
            let now = Instant::now();
            match pinged {
                Some(at) if now.duration_since(at) > self.timeout => {
                    return format!("no answer to PING within {:?}", self.timeout);
                }
                None if now >= next_ping => {
                    if let Err(err) = conn.send(&ping) {
                        return err.to_string();
                    }
                    pinged = Some(now);
                    next_ping = now + PING_EVERY;
                }
                _ => {}
            }
        }
    }
}

/// Applies the keys gathered so far (under one lock of the cache) and
/// forgets them.
fn apply(sink: &dyn InvalidationSink, keys: &mut Vec<&[u8]>) {
    if !keys.is_empty() {
        sink.invalidate(keys);
        keys.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::refuses_tracking;

    #[test]
    fn lasting_refusals_are_told_from_passing_errors() {
        // Redis 7.0's and 5.0's own words, as RawConn::call reports them.
        for lasting in [
            "Redis refused CLIENT: -NOPERM this user has no permissions to run the 'client|tracking' command",
            "Redis refused HELLO: -NOPROTO unsupported protocol version",
            "Redis refused HELLO: -ERR unknown command `HELLO`, with args beginning with: `3`, ",
            "Redis refused CLIENT: -ERR unknown subcommand 'TRACKING'. Try CLIENT HELP.",
            "Redis refused CLIENT: -ERR command not allowed",
        ] {
            assert!(refuses_tracking(lasting), "{lasting}");
        }
        for passing in [
            "Redis refused HELLO: -BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.",
            "Redis refused HELLO: -LOADING Redis is loading the dataset in memory",
            "Redis refused HELLO: -WRONGPASS invalid username-password pair or user is disabled.",
            "Redis refused HELLO: -ERR max number of clients reached",
            "Redis refused CLIENT: -NOAUTH Authentication required.",
            "Redis refused SELECT: -ERR DB index is out of range",
            "connection refused",
        ] {
            assert!(!refuses_tracking(passing), "{passing}");
        }
    }
}
