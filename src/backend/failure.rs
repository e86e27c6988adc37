//! What a failed command means: an error reply from Redis (passed on, the
//! connection still in step), or a failure of the connection (retired).

use std::time::Duration;

use super::{BackendConnection, BackendError};

/// Error replies that mean the data cannot be reached now, not that the
/// request was wrong: a cluster that is down or mid-failover, or a slot
/// still moving after the cluster client's own redirections and retries
/// ran out (MOVED, ASK: seen under load while slots migrate).
const UNAVAILABLE_CODES: &[&str] = &[
    "CLUSTERDOWN",
    "TRYAGAIN",
    "MASTERDOWN",
    "LOADING",
    "MOVED",
    "ASK",
];

/// Maps a failed command to our error, and marks the connection for
/// retirement unless Redis itself answered (an error reply leaves the
/// connection in step). A timeout (of `timeout`, REDIS_TIMEOUT_MS) is
/// worded as the forwarded commands' are, naming the setting, not with
/// the system's text ("Resource temporarily unavailable").
pub(super) fn retire_on_failure(
    pooled: &mut BackendConnection,
    err: redis::RedisError,
    timeout: Duration,
) -> BackendError {
    if let Some(err) = reply_error(&err) {
        return err;
    }
    pooled.broken = true;
    if err.is_timeout() {
        BackendError::Timeout(format!(
            "no reply within REDIS_TIMEOUT_MS ({} ms)",
            timeout.as_millis()
        ))
    } else {
        BackendError::Unavailable(err.to_string())
    }
}

/// An error reply from Redis as our error, `None` if `err` is not one: a
/// cluster that is down or mid-failover is unavailable, anything else (such
/// as WRONGTYPE) is passed on as Redis worded it.
pub(super) fn reply_error(err: &redis::RedisError) -> Option<BackendError> {
    let code = err.code()?;
    if UNAVAILABLE_CODES.contains(&code) {
        return Some(BackendError::Unavailable(err.to_string()));
    }
    let message = match err.detail() {
        Some(detail) => format!("{code} {detail}"),
        None => code.to_owned(),
    };
    Some(BackendError::Reply(message))
}
