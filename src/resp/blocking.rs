//! A blocking command's run on its dedicated connection (`dedicated.rs`
//! starts the thread): the connection the client holds or a new one, no
//! read timeout, the client's leaving or the proxy's shutdown shutting it
//! down, and a connection that ends under the command (Redis closed it,
//! or the proxy followed a failover) closing the client, as Redis's end
//! closes its own.

use crate::service::{log_held_ended, Batch, Client, Held, Lane, Service};

use super::cancel::Closer;
use super::cmd::{forward, Ran};
use super::fence::Start;

/// What a client whose blocking command the proxy's shutdown cut short is
/// told before it is closed (Redis, shut down, would close without a word).
const SHUTTING_DOWN: &str = "ERR proxy shutting down";

/// The blocking request's reply, the connection the client still holds
/// after it (a WATCH), if any, and whether the connection ended under the
/// command (the client is then closed: `DoneKind::Lost`). `start` ends
/// once the request is written to Redis (or could not be).
pub(super) fn run_blocking(
    service: &Service,
    batch: &Batch,
    (client, lane): (Client, Lane),
    cancel: &Closer,
    start: Start,
) -> (Vec<u8>, Option<Held>, bool) {
    let (held, keep) = match lane {
        Lane::Held(Some(held), keep) => (Ok(held), keep),
        Lane::Held(None, keep) => (service.hold(client, service.pin(batch)), keep),
        Lane::Pooled => (service.hold(client, service.pin(batch)), false),
    };
    let mut held = match held {
        Ok(held) => held,
        Err(message) => return (error_reply(&message), None, false),
    };
    let armed = held.closer().is_ok_and(|closer| cancel.arm(closer));
    if !armed || held.wait_forever(true).is_err() {
        let shutting_down = cancel.shutting_down();
        let why = if shutting_down {
            SHUTTING_DOWN
        } else {
            "ERR the client left"
        };
        return (error_reply(why), None, false);
    }
    let watch = service.watch_master(&held);
    // WAIT's cover (a PUBLISH first) is not the client's request: the
    // fence falls with the request's own write.
    let ran = match service.cover_writes(batch, client, held) {
        Ok(mut held) => {
            held.after_next_send(Some(cancel.after_send(start)));
            let mut ran = forward(batch, client, Lane::Held(Some(held), true), None, service);
            if let Some(held) = ran.held.as_mut() {
                // Nothing was written (refused here): the fence falls now.
                held.after_next_send(None);
            }
            ran
        }
        Err((replies, held)) => Ran {
            replies,
            held,
            ended: false,
            why: None,
        },
    };
    // The connection ended under the command: Redis closed it, or the
    // proxy followed a failover and shut it (the demoted master's
    // clients are killed by the sentinels, `CLIENT KILL TYPE normal`).
    let lost = ran.held.is_none() && (ran.ended || watch.changed());
    drop(watch);
    let (reply, held) = (ran.replies, ran.held);
    if !cancel.disarm() {
        // The client left, or the proxy is shutting down. A whole reply
        // (the connection came back with it) stands: the command ran.
        // Else the client is told of the shutdown, or (Redis read its end
        // while the command blocked) owed nothing: `Conn::deliver`.
        if held.is_some() {
            return (reply, None, false);
        }
        if cancel.shutting_down() {
            return (error_reply(SHUTTING_DOWN), None, false);
        }
        return (Vec::new(), None, false);
    }
    if lost {
        // The replies that came (none, for one command) and the client
        // is closed (`DoneKind::Lost`): no error of the proxy's.
        if let Some(why) = &ran.why {
            log_held_ended(why);
        }
        let reply = if ran.ended { reply } else { Vec::new() };
        return (reply, None, true);
    }
    match held {
        Some(mut held) if keep => match held.wait_forever(false) {
            Ok(()) => (reply, Some(held), false),
            Err(_) => (reply, None, false),
        },
        Some(held) => {
            service.release(held);
            (reply, None, false)
        }
        None => (reply, None, false),
    }
}

fn error_reply(message: &str) -> Vec<u8> {
    let mut reply = Vec::with_capacity(message.len() + 3);
    reply.push(b'-');
    reply.extend_from_slice(message.as_bytes());
    reply.extend_from_slice(b"\r\n");
    reply
}
