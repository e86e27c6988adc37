//! How long a raw connection's reads and writes may wait for Redis, by
//! whose requests it carries ([`Wait`]): the proxy's own are bounded by
//! REDIS_TIMEOUT_MS, clients' forwarded commands by FORWARD_TIMEOUT_MS,
//! which is off by default (docs/forwarding.md, "Timeouts").

use std::io::{self, ErrorKind};
use std::time::Duration;

use super::RawConn;

/// Whose requests a connection carries, which says how long its reads and
/// writes may wait for Redis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// The proxy's own (a handshake, the cache's reads, a PING before a
    /// blocking command): REDIS_TIMEOUT_MS.
    Own,
    /// Clients' forwarded commands: FORWARD_TIMEOUT_MS, none by default,
    /// as Redis's own clients wait as long as Redis takes (a script of
    /// another client's keeps Redis from answering anyone meanwhile, and a
    /// command failed by the proxy may still run).
    Forwarded,
}

impl RawConn {
    /// Bounds reads and writes for `wait`'s requests from now on: by
    /// REDIS_TIMEOUT_MS for the proxy's own, by FORWARD_TIMEOUT_MS (if
    /// set) for clients'. No system call when they are bounded so already.
    pub fn wait_for(&mut self, wait: Wait) -> io::Result<()> {
        let limit = match wait {
            Wait::Own => Some(self.timeout),
            Wait::Forwarded => self.forward_timeout,
        };
        self.wait = wait;
        self.set_reads(limit)?;
        self.set_writes(limit)
    }

    /// Lets reads wait as long as Redis takes (`true`: a blocking command
    /// or a subscription; writes keep their bound) or bounds reads and
    /// writes again as for clients' commands ([`Wait::Forwarded`]: the
    /// client goes on with the connection, or it goes back to the pool).
    pub fn wait_forever(&mut self, forever: bool) -> io::Result<()> {
        match forever {
            true => self.set_reads(None),
            false => self.wait_for(Wait::Forwarded),
        }
    }

    fn set_reads(&mut self, limit: Option<Duration>) -> io::Result<()> {
        if limit != self.reads {
            let set = self.stream.tcp_ref().set_read_timeout(limit);
            if set.is_err() {
                self.broken = true;
                return set;
            }
            self.reads = limit;
        }
        Ok(())
    }

    fn set_writes(&mut self, limit: Option<Duration>) -> io::Result<()> {
        if limit != self.writes {
            let set = self.stream.tcp_ref().set_write_timeout(limit);
            if set.is_err() {
                self.broken = true;
                return set;
            }
            self.writes = limit;
        }
        Ok(())
    }

    /// `err`, or, if it is a timeout (of `limit`), one of kind `TimedOut`
    /// naming the setting that bounds the wait, in the words the event
    /// loop's connections use: not the system's ("Resource temporarily
    /// unavailable").
    pub(super) fn timed_out(&self, err: io::Error, limit: Option<Duration>) -> io::Error {
        if !matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) {
            return err;
        }
        let setting = match self.wait {
            Wait::Own => "REDIS_TIMEOUT_MS",
            Wait::Forwarded => "FORWARD_TIMEOUT_MS",
        };
        let ms = limit.map_or(0, |limit| limit.as_millis());
        io::Error::new(
            ErrorKind::TimedOut,
            format!("no reply within {setting} ({ms} ms)"),
        )
    }
}
