//! A throwaway `redis-server` on a port of its own.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use super::{eventually, free_port};

/// A `redis-server` child process on its own port, killed on drop.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts a fresh server with persistence off.
    pub fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// Starts a fresh server with extra `--option value` arguments.
    ///
    /// redis-server cannot be asked for port 0 and say which it got, so a
    /// free port is picked first; if another process takes it before the
    /// server binds it, the server exits (or someone else's answers there)
    /// and another port is tried.
    pub fn start_with(extra: &[&str]) -> RedisServer {
        RedisServer::new(free_port(), false, extra)
    }

    /// [`RedisServer::start_with`], on `port` if it is still free when the
    /// server binds it, else on another: what a probed port that another
    /// process took meanwhile comes to.
    pub fn start_preferring(port: u16, extra: &[&str]) -> RedisServer {
        RedisServer::new(port, false, extra)
    }

    /// [`RedisServer::start_with`] on a port the caller picked.
    pub fn start_on(port: u16, extra: &[&str]) -> RedisServer {
        RedisServer::new(port, true, extra)
    }

    fn new(port: u16, fixed: bool, extra: &[&str]) -> RedisServer {
        let mut server = RedisServer {
            child: None,
            port,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        server.spawn(!fixed);
        server
    }

    /// Starts redis-server on `self.port` and waits until it answers there
    /// (it, not another process that has the port); on a clash, tries
    /// another port if it `may_move`.
    fn spawn(&mut self, may_move: bool) {
        eventually("redis-server to answer PING on a port of its own", || {
            let mut child = Command::new("redis-server")
                .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                // Its own dump file, never the working directory's: a
                // BGSAVE forwarded by a test must not seed later servers.
                .args(["--dir", &std::env::temp_dir().to_string_lossy()])
                .args(["--dbfilename", &self.dump_file()])
                .args(&self.extra)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server is installed (apt-get install redis-server)");
            let ours = eventually("redis-server to start or fail", || {
                if let Ok(Some(_)) = child.try_wait() {
                    return Some(false);
                }
                let pid = self.answering_pid()?;
                Some(pid == child.id())
            });
            if ours {
                self.child = Some(child);
                return Some(());
            }
            let _ = child.kill();
            let _ = child.wait();
            assert!(may_move, "port {} is taken by another process", self.port);
            self.port = free_port();
            None
        });
    }

    /// The process id of the redis-server answering on `self.port` (after
    /// AUTH with the `--requirepass` it was given, if any).
    fn answering_pid(&self) -> Option<u32> {
        let password = self
            .extra
            .windows(2)
            .find(|pair| pair[0] == "--requirepass")
            .map(|pair| pair[1].as_str());
        let url = match password {
            Some(password) => format!("redis://:{password}@127.0.0.1:{}", self.port),
            None => self.url(),
        };
        let mut conn = redis::Client::open(url).ok()?.get_connection().ok()?;
        let info: String = redis::cmd("INFO").arg("server").query(&mut conn).ok()?;
        info.lines()
            .find_map(|line| line.strip_prefix("process_id:"))
            .and_then(|pid| pid.trim().parse().ok())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its TCP address, for the relay.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// A direct connection, bypassing the proxy.
    pub fn conn(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .expect("connect to test redis")
    }

    pub fn set(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        let _: () = redis::cmd("SET")
            .arg(key.as_ref())
            .arg(value.as_ref())
            .query(&mut self.conn())
            .expect("SET");
    }

    /// Runs any command directly against this server.
    pub fn cmd<T: redis::FromRedisValue>(&self, args: &[&str]) -> T {
        self.try_cmd(args).expect("direct redis command")
    }

    /// [`RedisServer::cmd`], None if it fails.
    pub fn try_cmd<T: redis::FromRedisValue>(&self, args: &[&str]) -> Option<T> {
        let mut cmd = redis::cmd(args[0]);
        for arg in &args[1..] {
            cmd.arg(*arg);
        }
        let mut conn = redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .ok()?;
        cmd.query(&mut conn).ok()
    }

    /// The commands the proxy's Redis user needs (the README's ACL line):
    /// reads with their TTL, PING, and what the invalidation link sends.
    pub const PROXY_ACL: &'static [&'static str] = &[
        "+get",
        "+pttl",
        "+mget",
        "+exists",
        "+ping",
        "+hello",
        "+client|setname",
        "+client|tracking",
    ];

    /// [`RedisServer::PROXY_ACL`] less `rule`, for a user lacking it.
    pub fn proxy_acl_without(rule: &str) -> Vec<&'static str> {
        let rules: Vec<_> = Self::PROXY_ACL
            .iter()
            .copied()
            .filter(|r| *r != rule)
            .collect();
        assert!(
            rules.len() < Self::PROXY_ACL.len(),
            "{rule} is not in PROXY_ACL"
        );
        rules
    }

    /// Creates ACL user `name` with `password`, allowed every key and only
    /// `commands` (such as `+get`), and returns a `redis://` URL for it.
    /// `+client|setinfo`, which the redis crate sends on connect, is added
    /// where Redis knows it (7.2+).
    pub fn acl_user(&self, name: &str, password: &str, commands: &[&str]) -> String {
        let password_rule = format!(">{password}");
        let mut rules = vec![
            "ACL",
            "SETUSER",
            name,
            "on",
            &password_rule,
            "~*",
            "resetchannels",
            "-@all",
        ];
        rules.extend_from_slice(commands);
        let _: () = self.cmd(&rules);
        let _ = redis::cmd("ACL")
            .arg(&["SETUSER", name, "+client|setinfo"][..])
            .query::<()>(&mut self.conn());
        format!("redis://{name}:{password}@127.0.0.1:{}", self.port)
    }

    /// How many times Redis has run `command` (from `INFO commandstats`).
    pub fn calls(&self, command: &str) -> u64 {
        self.command_stat(command, "calls")
    }

    /// `stat` of `command` in `INFO commandstats` (such as
    /// `rejected_calls`, the calls an ACL refused, which `calls` does not
    /// count); 0 before its first call.
    pub fn command_stat(&self, command: &str, stat: &str) -> u64 {
        let info: String = self.cmd(&["INFO", "commandstats"]);
        super::info::command_stat(&info, command, stat)
    }

    /// False once [`RedisServer::stop`] killed it.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills the server (as a crash would) and waits for it to be gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn(false);
    }
}

impl RedisServer {
    /// The proxy's invalidation link's client id, from CLIENT LIST: for
    /// tests that kill the link with CLIENT KILL ID.
    #[allow(dead_code)] // Not every test binary kills the link.
    pub fn link_id(&self) -> String {
        let list: String = self.cmd(&["CLIENT", "LIST"]);
        list.lines()
            .find(|l| l.contains("name=redis-proxy-invalidation"))
            .and_then(|l| l.split_whitespace().find_map(|f| f.strip_prefix("id=")))
            .expect("the invalidation link in CLIENT LIST")
            .to_owned()
    }

    /// The dump file's name, unique to this process and port.
    fn dump_file(&self) -> String {
        format!("redis-proxy-test-{}-{}.rdb", std::process::id(), self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_file(std::env::temp_dir().join(self.dump_file()));
    }
}
