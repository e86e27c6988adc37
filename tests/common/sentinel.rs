//! A throwaway Sentinel set: a master, a replica and three sentinels
//! watching them as `mymaster`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::redis_server::RedisServer;
use super::{eventually, free_port, TempDir};

/// The master set's name.
pub const MASTER: &str = "mymaster";

/// The data nodes, and the sentinels (killed on drop).
pub struct Sentinels {
    pub master: RedisServer,
    pub replica: RedisServer,
    sentinels: Vec<(Child, u16)>,
    password: Option<String>,
    dir: TempDir,
}

impl Drop for Sentinels {
    fn drop(&mut self) {
        for (child, _) in &mut self.sentinels {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Sentinels {
    /// Starts the master, its replica and three sentinels, and waits until
    /// the replica is in sync and every sentinel knows the other two.
    pub fn start() -> Sentinels {
        Sentinels::start_with_password(None)
    }

    /// [`Sentinels::start`], the sentinels asking for `password` (from
    /// clients and from each other).
    pub fn start_with_password(password: Option<&str>) -> Sentinels {
        let auth = password.map_or(String::new(), |pw| {
            format!("requirepass {pw}\nsentinel sentinel-pass {pw}\n")
        });
        let dir = TempDir::new("sentinel");
        let master = RedisServer::start();
        let master_port = master.port().to_string();
        let replica = RedisServer::start_with(&["--replicaof", "127.0.0.1", &master_port]);
        let sentinels = (0..3)
            .map(|i| {
                let port = free_port();
                let conf = dir.path().join(format!("sentinel-{i}.conf"));
                std::fs::write(
                    &conf,
                    format!(
                        "port {port}\nbind 127.0.0.1\n\
                         sentinel monitor {MASTER} 127.0.0.1 {master_port} 2\n\
                         sentinel down-after-milliseconds {MASTER} 1000\n\
                         sentinel failover-timeout {MASTER} 5000\n{auth}"
                    ),
                )
                .expect("write a sentinel config");
                (spawn_sentinel(&conf), port)
            })
            .collect();
        let set = Sentinels {
            master,
            replica,
            sentinels,
            password: password.map(str::to_owned),
            dir,
        };
        eventually("the replica to be in sync", || {
            let info: String = set.replica.try_cmd(&["INFO", "replication"])?;
            info.contains("master_link_status:up").then_some(())
        });
        for port in set.ports() {
            eventually("each sentinel to know the other two", || {
                let info: String =
                    sentinel_cmd(port, set.password.as_deref(), &["INFO", "sentinel"])?;
                info.contains("sentinels=3").then_some(())
            });
        }
        set
    }

    /// The sentinels' ports.
    /// A proxy in sentinel mode in front of this set (RESP on, `extra`
    /// settings too), once the replica has every key written so far
    /// (replication is asynchronous: a key missing after a failover would
    /// otherwise not be the proxy's fault), its link up.
    pub fn proxy(&self, extra: &[(&str, &str)]) -> super::Proxy {
        let acked: i64 = self.master.cmd(&["WAIT", "1", "10000"]);
        assert_eq!(acked, 1);
        let mut env = vec![
            ("REDIS_MODE", "sentinel"),
            ("REDIS_SENTINEL_MASTER", MASTER),
            ("RESP_PORT", "auto"),
        ];
        env.extend_from_slice(extra);
        let proxy = super::Proxy::start_at(&self.addresses(), &env);
        proxy.wait_for_link("up");
        proxy
    }

    /// `SENTINEL FAILOVER`, then waits until the sentinels name the
    /// replica and `proxy` has followed.
    pub fn fail_over(&self, proxy: &super::Proxy) {
        let _: String = self
            .cmd(&["SENTINEL", "FAILOVER", MASTER])
            .expect("SENTINEL FAILOVER");
        let new_port = self.replica.port();
        super::eventually("the sentinels to name the replica", || {
            (self.master_port() == Some(new_port)).then_some(())
        });
        super::eventually("the proxy to follow", || {
            proxy
                .log()
                .contains("the sentinels name a new master")
                .then_some(())
        });
    }

    /// `SENTINEL FAILOVER` back to the first master once the sentinels
    /// take it as a good replica again (retried while they answer
    /// NOGOODSLAVE or INPROG: they demote it seconds after a failover),
    /// then waits until they name it.
    pub fn fail_back(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self
            .cmd::<String>(&["SENTINEL", "FAILOVER", MASTER])
            .is_none()
        {
            assert!(
                Instant::now() < deadline,
                "the sentinels never accepted a failover back"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let port = self.master.port();
        super::eventually("the sentinels to name the first master again", || {
            (self.master_port() == Some(port)).then_some(())
        });
    }

    pub fn ports(&self) -> Vec<u16> {
        self.sentinels.iter().map(|(_, port)| *port).collect()
    }

    /// `127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3`, as REDIS_ADDRESS.
    pub fn addresses(&self) -> String {
        self.ports()
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The master's port as the first sentinel reports it now.
    pub fn master_port(&self) -> Option<u16> {
        let addr: Vec<String> = self.cmd(&["SENTINEL", "get-master-addr-by-name", MASTER])?;
        addr.get(1)?.parse().ok()
    }

    /// Runs a command on the first sentinel.
    pub fn cmd<T: redis::FromRedisValue>(&self, args: &[&str]) -> Option<T> {
        self.cmd_on(0, args)
    }

    /// Runs a command on sentinel `index` (`None` if it fails or does not
    /// answer within a second).
    pub fn cmd_on<T: redis::FromRedisValue>(&self, index: usize, args: &[&str]) -> Option<T> {
        sentinel_cmd(self.ports()[index], self.password.as_deref(), args)
    }

    /// The master's port as sentinel `index` reports it now.
    pub fn master_port_on(&self, index: usize) -> Option<u16> {
        let addr: Vec<String> =
            self.cmd_on(index, &["SENTINEL", "get-master-addr-by-name", MASTER])?;
        addr.get(1)?.parse().ok()
    }

    /// Kills sentinel `index` (SIGKILL): it misses what happens next.
    pub fn kill_sentinel(&mut self, index: usize) {
        let child = &mut self.sentinels[index].0;
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Starts sentinel `index` again from its config file, as it was when
    /// it was killed (a sentinel that missed a failover names the old
    /// master).
    pub fn restart_sentinel(&mut self, index: usize) {
        let conf = self.dir.path().join(format!("sentinel-{index}.conf"));
        self.sentinels[index].0 = spawn_sentinel(&conf);
    }

    /// Sentinel `index`'s process id.
    pub fn sentinel_pid(&self, index: usize) -> u32 {
        self.sentinels[index].0.id()
    }
}

/// A sentinel run from the config file `conf` (the caller kills it).
pub fn spawn_sentinel(conf: &std::path::Path) -> Child {
    Command::new("redis-server")
        .arg(conf)
        .arg("--sentinel")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server is installed")
}

/// The process id of the Redis at `server`, from `INFO server`.
pub fn redis_pid(server: &RedisServer) -> u32 {
    let info: String = server.cmd(&["INFO", "server"]);
    info.lines()
        .find_map(|line| line.strip_prefix("process_id:"))
        .and_then(|pid| pid.trim().parse().ok())
        .expect("process_id in INFO server")
}

/// A process stopped with SIGSTOP (it accepts TCP connections and never
/// answers: a hung server), continued with SIGCONT when dropped.
pub struct Paused(u32);

impl Paused {
    pub fn new(pid: u32) -> Paused {
        signal(pid, "STOP");
        Paused(pid)
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        signal(self.0, "CONT");
    }
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid} failed");
}

fn sentinel_cmd<T: redis::FromRedisValue>(
    port: u16,
    password: Option<&str>,
    args: &[&str],
) -> Option<T> {
    let auth = password.map_or(String::new(), |pw| format!(":{pw}@"));
    // Bounded: a test may have stopped this sentinel.
    let bound = Duration::from_secs(1);
    let mut conn = redis::Client::open(format!("redis://{auth}127.0.0.1:{port}"))
        .and_then(|c| c.get_connection_with_timeout(bound))
        .ok()?;
    conn.set_read_timeout(Some(bound)).ok()?;
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    cmd.query(&mut conn).ok()
}
