//! WAIT and WAITAOF through the proxy (docs/forwarding.md, "Blocking
//! commands").
//!
//! Redis answers WAIT about the connection it runs on: the replication
//! offset after that connection's last command (`c->woff`; Redis 7.0 moves
//! it after every command, 7.2 and later only after one that propagated
//! something). Through the proxy, WAIT runs on a dedicated connection
//! (`resp/dedicated.rs`), not the one that carried the client's writes (the
//! event loop's, or a pooled one): a pooled connection last used before
//! those writes would answer at once that they had reached replicas that
//! never saw them.
//!
//! So on that connection the proxy first sends `PUBLISH __redis-proxy:wait
//! ""`. Outside cluster mode Redis propagates every PUBLISH to its replicas
//! (`forceCommandPropagation(c, PROPAGATE_REPL)` in `publishCommand`, 7.0
//! to 8.0), so the connection's offset becomes the master's current one,
//! which covers every write the client was answered before it (other
//! clients' too: WAIT may wait for more, never for less). No one
//! subscribes to that channel; replicas pass the empty message on to their
//! own subscribers of it, if any.
//!
//! In cluster mode PUBLISH goes over the cluster bus, not to replicas, and
//! the client's writes went to the masters of their slots, of which one
//! connection's WAIT sees one: WAIT and WAITAOF are refused there. Inside
//! MULTI they are refused too (`route.rs`): queued on the transaction's
//! connection, nothing can go before them.

use crate::service::{ReadError, Service};

use super::{Batch, Client, Held};

/// The channel the proxy publishes to before a client's WAIT or WAITAOF;
/// the proxy's Redis user needs `+publish &__redis-proxy:wait`.
const CHANNEL: &str = "__redis-proxy:wait";

/// `PUBLISH __redis-proxy:wait ""`, encoded.
const PUBLISH: &[u8] = b"*3\r\n$7\r\nPUBLISH\r\n$18\r\n__redis-proxy:wait\r\n$0\r\n\r\n";

/// What a client's WAIT or WAITAOF answers inside MULTI: queued on the
/// transaction's connection, it would answer about that connection's last
/// propagated command (Redis 7.2 and later), which may precede the client's
/// writes; Redis does not block there, so no PUBLISH can go before it.
pub(super) const IN_MULTI: &str =
    "ERR WAIT and WAITAOF inside MULTI are not supported through the proxy: \
     their answer would concern the transaction's connection, not the client's earlier writes \
     (send them after EXEC)";

/// What a client's WAIT or WAITAOF answers in cluster mode.
const IN_CLUSTER: &str =
    "ERR WAIT and WAITAOF are not supported through the proxy in cluster mode: \
     the client's writes went to the masters of their slots, and a WAIT at one master \
     would not cover them";

impl Service {
    /// Before blocking `batch` runs on `held` for `client`: for WAIT and
    /// WAITAOF, makes the connection's replication offset cover the
    /// client's earlier writes (see the module docs). Ok: run the batch on
    /// the connection. Err: the reply to answer instead, and the
    /// connection if it is still sound.
    pub fn cover_writes(
        &self,
        batch: &Batch,
        client: Client,
        mut held: Held,
    ) -> Result<Held, (Vec<u8>, Option<Held>)> {
        if !waits(batch) {
            return Ok(held);
        }
        if self.backend.is_cluster() {
            return Err((error_reply("", IN_CLUSTER), Some(held)));
        }
        let Some(conn) = held.0.as_deref_mut() else {
            return Ok(held);
        };
        let mut reply = Vec::new();
        let sent = self
            .backend
            .forward_on(conn, (client.resp3, client.db), PUBLISH, 1, &mut reply);
        match sent {
            Err(err) => {
                let why = ReadError::from(err.error);
                Err((error_reply("ERR ", &why.to_string()), None))
            }
            Ok(()) if reply.first() == Some(&b'-') => Err((refused(&reply), Some(held))),
            Ok(()) => Ok(held),
        }
    }
}

/// Whether `batch` is one WAIT or WAITAOF.
fn waits(batch: &Batch) -> bool {
    if batch.len() != 1 {
        return false;
    }
    let mut argv = Vec::new();
    batch.argv(0, &mut argv);
    argv.first().is_some_and(|name| {
        name.eq_ignore_ascii_case(b"wait") || name.eq_ignore_ascii_case(b"waitaof")
    })
}

/// Whether the command named `name` (lower case, as Redis's table has
/// it) is WAIT or WAITAOF.
pub(super) fn is_wait(name: &str) -> bool {
    name == "wait" || name == "waitaof"
}

/// The client's reply when Redis answered the PUBLISH with `error`: its
/// code kept, what the proxy did, and Redis's words.
fn refused(error: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(error);
    let text = text.trim_start_matches('-').trim_end();
    let (code, words) = text.split_once(' ').unwrap_or((text, ""));
    let needs = match code {
        "NOPERM" => format!(
            ", which the proxy's Redis user may not do (it needs the ACL rules +publish &{CHANNEL})"
        ),
        _ => String::new(),
    };
    let message = format!(
        "WAIT and WAITAOF through the proxy first PUBLISH to {CHANNEL} on their connection, \
         so that the answer covers the client's earlier writes{needs}; Redis answered it: {words}"
    );
    error_reply(&format!("{code} "), &message)
}

fn error_reply(code: &str, message: &str) -> Vec<u8> {
    let mut reply = Vec::with_capacity(code.len() + message.len() + 3);
    reply.push(b'-');
    reply.extend_from_slice(code.as_bytes());
    reply.extend_from_slice(message.as_bytes());
    reply.extend_from_slice(b"\r\n");
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_publish_is_the_encoding_of_its_arguments() {
        let mut encoded = Vec::new();
        crate::backend::raw::encode(&[b"PUBLISH", CHANNEL.as_bytes(), b""], &mut encoded);
        assert_eq!(encoded, PUBLISH);
    }

    #[test]
    fn only_wait_and_waitaof_are_covered() {
        for (argv, covered) in [
            (&[&b"WAIT"[..], b"1", b"0"][..], true),
            (&[b"waitaof", b"0", b"1", b"0"], true),
            (&[b"BLPOP", b"k", b"0"], false),
            (&[b"WAITX"], false),
        ] {
            let mut batch = Batch::default();
            batch.push(argv, false);
            assert_eq!(waits(&batch), covered, "{argv:?}");
        }
    }

    #[test]
    fn a_refusal_keeps_its_code_and_names_the_acl_rules_for_noperm() {
        let noperm = b"-NOPERM this user has no permissions to run the 'publish' command\r\n";
        let reply = String::from_utf8(refused(noperm)).expect("utf-8");
        assert!(reply.starts_with("-NOPERM WAIT and WAITAOF"), "{reply}");
        assert!(reply.contains("+publish &__redis-proxy:wait"), "{reply}");
        assert!(
            reply.ends_with("to run the 'publish' command\r\n"),
            "{reply}"
        );
        assert_eq!(reply.matches("\r\n").count(), 1, "{reply}");
        let busy = String::from_utf8(refused(b"-BUSY Redis is busy\r\n")).expect("utf-8");
        assert!(busy.starts_with("-BUSY WAIT"), "{busy}");
        assert!(!busy.contains("ACL"), "{busy}");
    }
}
