//! A Lua script that keeps Redis busy for a while, sent straight to Redis
//! by a client of its own (not through the proxy), as another application
//! sharing the Redis would: meanwhile Redis answers nobody. Known to be
//! running by what it writes to Redis's log as it starts (Redis's log is
//! written at once, while nothing else of Redis can be asked), not by the
//! clock.

use std::time::Duration;

use super::resp_wire::Wire;
use super::{eventually, RedisServer, TempDir};

/// A busy loop of `ARGV[2]` ms that first logs `ARGV[1]`.
const SCRIPT: &str = "redis.log(redis.LOG_WARNING, ARGV[1]) \
    local t = redis.call('TIME') \
    while true do \
        local n = redis.call('TIME') \
        if (n[1] - t[1]) * 1000000 + n[2] - t[2] > tonumber(ARGV[2]) * 1000 then \
            return 'done' \
        end \
    end";

/// A redis-server whose log goes to a file, for [`Busy`] to watch.
pub struct LoggedRedis {
    pub redis: RedisServer,
    dir: TempDir,
}

impl LoggedRedis {
    pub fn start() -> LoggedRedis {
        let dir = TempDir::new("busy");
        let log = dir.path().join("redis.log");
        let redis = RedisServer::start_with(&["--logfile", &log.to_string_lossy()]);
        LoggedRedis { redis, dir }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }

    /// Starts a script that keeps Redis busy for `lasting`, and returns
    /// once Redis runs it.
    pub fn busy_for(&self, lasting: Duration) -> Busy {
        let marker = format!("busy-script-{}", super::free_port());
        let mut wire = Wire::connect(self.redis.addr());
        let ms = lasting.as_millis().to_string();
        wire.send(&super::resp_command(&[
            b"EVAL",
            SCRIPT.as_bytes(),
            b"0",
            marker.as_bytes(),
            ms.as_bytes(),
        ]));
        eventually("the busy script to start at Redis", || {
            self.log().contains(&marker).then_some(())
        });
        Busy(wire)
    }
}

/// A busy script running at Redis; [`Busy::finish`] waits for its end.
pub struct Busy(Wire);

impl Busy {
    /// Waits for the script's reply: Redis is free again.
    pub fn finish(mut self) {
        assert_eq!(self.0.reply(), b"$4\r\ndone\r\n");
    }
}
