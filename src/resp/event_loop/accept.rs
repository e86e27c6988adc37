//! Accepting clients: each registered with the poll and given a
//! connection, up to MAX_CONNECTIONS; beyond it, turned away as Redis
//! turns a client away at `maxclients`. Apart from the loop's turn
//! (`mod.rs`), which it is called from, because that file had grown past
//! 400 lines.

use std::io::ErrorKind;
use std::sync::atomic::Ordering;
use std::time::Duration;

use mio::net::TcpListener;
use mio::{Interest, Token};

use super::super::conn::Conn;
use super::super::execute::bound_parser;
use super::super::transport::Transport;
use super::{Loop, REJECTS_PER_TURN};

impl Loop {
    /// Accepts every client waiting. Polling is edge-triggered, so this
    /// runs until the listener has none left (or `REJECTS_PER_TURN` were
    /// turned away: then again on the next turn). At MAX_CONNECTIONS a
    /// client is told so and closed at once, as Redis does at `maxclients`,
    /// rather than left waiting unanswered in the backlog.
    pub(super) fn accept(&mut self, listener: &TcpListener) {
        let mut rejected = 0;
        while rejected < REJECTS_PER_TURN {
            match listener.accept() {
                Ok((stream, _)) if self.conns.len() >= self.settings.max_connections => {
                    self.reject(stream);
                    rejected += 1;
                }
                Ok((stream, addr)) => {
                    self.service.resp_connection_opened();
                    let laddr = stream.local_addr().ok();
                    let fd = i64::from(std::os::fd::AsRawFd::as_raw_fd(&stream));
                    let token = Token(self.next_token);
                    self.next_token += 1;
                    self.next_id += 1;
                    let _ = stream.set_nodelay(true);
                    keep_alive(&stream);
                    let interest = Interest::READABLE | Interest::WRITABLE;
                    let mut transport = match Transport::new(stream, self.settings.tls.as_ref()) {
                        Ok(transport) => transport,
                        Err(err) => {
                            log::warn!("cannot start TLS on a RESP connection: {err}");
                            continue;
                        }
                    };
                    let registry = self.poll.registry();
                    if let Err(err) = registry.register(transport.socket(), token, interest) {
                        log::warn!("cannot poll a RESP connection: {err}");
                        continue;
                    }
                    let mut conn = Conn::new(
                        transport,
                        self.next_id,
                        self.service.default_db(),
                        self.service.max_request_bytes(),
                    );
                    // Not authenticated yet: Redis's bounds for that.
                    bound_parser(&mut conn.parser, &conn.session, &self.service);
                    self.conns.insert(token, conn);
                    self.tracker.opened(self.next_id, token);
                    let db = self.service.default_db();
                    let (id, addr) = (self.next_id, Some(addr));
                    self.clients.opened(id, token, addr, laddr, fd, db);
                    self.live.store(self.conns.len(), Ordering::SeqCst);
                    // Data may already be waiting; edge-triggered polling
                    // reports it once, which registration may have missed.
                    self.service_conn(token);
                }
                Err(err) if err.kind() == ErrorKind::WouldBlock => {
                    self.want_accept = false;
                    return;
                }
                Err(_) if self.stopping.load(Ordering::SeqCst) => {
                    // The listener was shut for the shutdown under way.
                    self.want_accept = false;
                    return;
                }
                Err(err) => {
                    // Out of file descriptors and the like: the sweep tries
                    // again (at most SWEEP later); never give up.
                    self.accept_errors
                        .warn(format_args!("RESP accept failed, retrying: {err}"));
                    self.want_accept = false;
                    self.accept_failed = true;
                    return;
                }
            }
        }
        // More may wait: the next turn goes on.
        self.want_accept = true;
    }

    /// Turns away a client beyond MAX_CONNECTIONS (see
    /// `transport::turn_away`); over TLS it is only closed.
    fn reject(&mut self, stream: mio::net::TcpStream) {
        self.service.resp_connection_rejected();
        if self.settings.tls.is_none() {
            super::super::transport::turn_away(stream, &mut self.chunk);
        }
    }
}

/// Silence after which a client is probed, as Redis's `tcp-keepalive`
/// default (300 s); then `KEEPALIVE_PROBES` probes a third of it apart, as
/// Redis sets them (`anetKeepAlive`).
const KEEPALIVE_IDLE: Duration = Duration::from_secs(300);
const KEEPALIVE_PROBES: u32 = 3;

/// Turns TCP keepalive on for an accepted client, as Redis does: with
/// CLIENT_IDLE_TIMEOUT_SECS at 0 (never, the default) this is what finds a
/// peer that vanished (a host gone, a dropped NAT entry): the kernel probes
/// after `KEEPALIVE_IDLE` of silence and, after `KEEPALIVE_PROBES`
/// unanswered probes, fails the socket, and the read that reports it closes
/// the connection. A failure only loses that (Redis too goes on).
fn keep_alive(stream: &mio::net::TcpStream) {
    let params = socket2::TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_IDLE / 3)
        .with_retries(KEEPALIVE_PROBES);
    let _ = socket2::SockRef::from(stream).set_tcp_keepalive(&params);
}
