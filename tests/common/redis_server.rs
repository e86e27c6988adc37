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
    pub fn start_with(extra: &[&str]) -> RedisServer {
        RedisServer::start_on(free_port(), extra)
    }

    /// [`RedisServer::start_with`] on a port the caller picked.
    pub fn start_on(port: u16, extra: &[&str]) -> RedisServer {
        let mut server = RedisServer {
            child: None,
            port,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (apt-get install redis-server)");
        self.child = Some(child);
        let url = self.url();
        eventually("redis-server to answer PING", || {
            let client = redis::Client::open(url.as_str()).ok()?;
            let mut conn = client.get_connection().ok()?;
            match redis::cmd("PING").query::<String>(&mut conn) {
                Ok(_) => Some(()),
                // Up, and asking for the password it was started with.
                Err(err) if err.code() == Some("NOAUTH") => Some(()),
                Err(_) => None,
            }
        });
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
        let info: String = self.cmd(&["INFO", "commandstats"]);
        let prefix = format!("cmdstat_{}:calls=", command.to_lowercase());
        info.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .and_then(|rest| rest.split(',').next())
            .map_or(0, |n| n.parse().expect("calls is a number"))
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
        self.spawn();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
