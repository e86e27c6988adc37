//! Closing connections: one at a time (its tracking state and its place
//! in `CLIENT LIST` with it), those idle or lingering too long (the sweep),
//! and every one at shutdown. Apart from the loop's turn (`mod.rs`), which
//! calls it, to keep that file under 400 lines.

use std::sync::atomic::Ordering;
use std::time::Instant;

use mio::Token;

use super::super::conn::{Conn, State, LINGER};
use super::Loop;

impl Loop {
    pub(super) fn close(&mut self, token: Token) {
        if let Some(mut conn) = self.conns.remove(&token) {
            let _ = self.poll.registry().deregister(conn.transport.socket());
            self.live.store(self.conns.len(), Ordering::SeqCst);
            self.clients.closed(conn.session.id);
            for other in self.tracker.closed(&conn, token, &mut self.conns) {
                self.flush(other);
            }
        }
    }

    /// Closes connections idle past the timeout (none when it is zero, the
    /// default, as Redis's `timeout 0`: TCP keepalive finds dead peers),
    /// and closing ones that lingered too long. A read still at Redis is
    /// waited for (bounded by REDIS_TIMEOUT_MS; a forwarded command as long
    /// as Redis takes, unless FORWARD_TIMEOUT_MS is set); a client in Pub/Sub
    /// mode (at Redis, or on the proxy's invalidation channel) is never
    /// idle, as Redis's `timeout` spares its own subscribers: it only
    /// listens.
    pub(super) fn sweep(&mut self) {
        if std::mem::take(&mut self.accept_failed) {
            self.want_accept = true;
        }
        let now = Instant::now();
        for conn in self.conns.values_mut() {
            if std::mem::take(&mut conn.wrote) {
                conn.last_active = now;
            }
            self.clients.touch(conn.session.id, conn.last_active);
        }
        let limit = self.service.redis_timeout();
        for token in Conn::overdue_barriers(&mut self.conns, limit) {
            self.flush(token);
        }
        let idle = self.settings.idle_timeout;
        let expired: Vec<Token> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                !matches!(c.state, State::Waiting { .. })
                    && ((!idle.is_zero() && c.last_active.elapsed() >= idle && !c.in_pubsub())
                        || c.linger_since().is_some_and(|t| t.elapsed() >= LINGER))
            })
            .map(|(t, _)| *t)
            .collect();
        for token in expired {
            log::debug!("closing idle RESP connection");
            self.close(token);
        }
    }

    /// At shutdown: every connection answers what it has sent and closes;
    /// those waiting for Redis finish first.
    pub(super) fn close_for_shutdown(&mut self) {
        let now = Instant::now();
        let tokens: Vec<Token> = self.conns.keys().copied().collect();
        for token in tokens {
            if let Some(conn) = self.conns.get_mut(&token) {
                conn.close_gracefully(now);
            }
            self.service_conn(token);
        }
    }
}
