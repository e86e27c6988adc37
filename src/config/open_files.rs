//! MAX_CONNECTIONS against the open files limit. Every RESP connection is
//! a file descriptor; if the limit the process got (its soft limit, raised
//! to the hard one at start) cannot hold MAX_CONNECTIONS of them, clients
//! past the limit would not be told `-ERR max number of clients reached`:
//! accepting them fails, and they wait unanswered in the listen backlog.
//! So MAX_CONNECTIONS is lowered to fit, with a warning, as Redis lowers
//! `maxclients` to its open files limit less 32 ("maxclients has been
//! reduced ... to compensate for low ulimit").

use std::num::NonZeroUsize;

use super::Config;

/// Descriptors kept for the proxy's own use besides RESP clients: the
/// listeners, the poll and its waker, the Redis pool's connections, a few
/// HTTP connections (Redis keeps the same number, its
/// `CONFIG_MIN_RESERVED_FDS`). HTTP connections, blocking commands' and
/// subscriptions' Redis connections (DEDICATED_CONNECTIONS) come from the
/// same limit and are not reserved: a hard limit just above MAX_CONNECTIONS
/// leaves them little.
pub const RESERVED_FILES: u64 = 32;

impl Config {
    /// Fits MAX_CONNECTIONS (RESP on) within `open_files`, the process's
    /// open files limit: unchanged if it fits with [`RESERVED_FILES`] to
    /// spare (None), else lowered to the limit less those, and the warning
    /// to log returned. Err when the limit leaves no room for a single RESP
    /// connection.
    pub fn fit_open_files(&mut self, open_files: u64) -> Result<Option<String>, String> {
        if self.resp_addr.is_none() {
            return Ok(None);
        }
        let wanted = self.max_connections.get();
        let room = open_files.saturating_sub(RESERVED_FILES);
        if u64::try_from(wanted).is_ok_and(|wanted| wanted <= room) {
            return Ok(None);
        }
        let fits = usize::try_from(room)
            .ok()
            .and_then(NonZeroUsize::new)
            .ok_or_else(|| {
                format!(
                    "the open files limit ({open_files}) leaves no room for RESP connections \
                     (the proxy keeps {RESERVED_FILES} for itself): raise it (ulimit -n, \
                     systemd's LimitNOFILE, docker run --ulimit nofile=...)"
                )
            })?;
        self.max_connections = fits;
        Ok(Some(format!(
            "MAX_CONNECTIONS={wanted} needs at least {} open files, and the limit is {open_files}: \
             MAX_CONNECTIONS lowered to {fits}, as Redis lowers maxclients; to allow more, raise \
             the hard limit (ulimit -n, systemd's LimitNOFILE, docker run --ulimit nofile=...)",
            wanted as u64 + RESERVED_FILES
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(max_connections: usize, resp: bool) -> Config {
        let max = max_connections.to_string();
        Config::from_lookup(|name| match name {
            "MAX_CONNECTIONS" => Some(max.clone()),
            "RESP_PORT" => Some(if resp { "6380" } else { "off" }.to_owned()),
            _ => None,
        })
        .expect("valid")
    }

    #[test]
    fn a_limit_that_holds_max_connections_and_the_reserve_changes_nothing() {
        let mut config = with(10_000, true);
        assert_eq!(config.fit_open_files(10_032), Ok(None));
        assert_eq!(config.max_connections.get(), 10_000);
    }

    #[test]
    fn a_lower_limit_lowers_max_connections_as_redis_lowers_maxclients() {
        let mut config = with(10_000, true);
        let warning = config
            .fit_open_files(4096)
            .expect("room")
            .expect("a warning");
        assert_eq!(config.max_connections.get(), 4064);
        assert!(warning.contains("lowered to 4064"), "{warning}");
        assert!(warning.contains("10032"), "{warning}");
    }

    #[test]
    fn a_limit_with_no_room_is_refused_and_without_resp_nothing_is_checked() {
        let mut config = with(10_000, true);
        let err = config.fit_open_files(32).expect_err("no room");
        assert!(err.contains("no room for RESP connections"), "{err}");
        let mut http_only = with(10_000, false);
        assert_eq!(http_only.fit_open_files(32), Ok(None));
        assert_eq!(http_only.max_connections.get(), 10_000);
    }
}
