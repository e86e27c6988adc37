//! `CLIENT LIST`, `CLIENT INFO` and `CLIENT KILL`, about the proxy's own
//! clients (not Redis's: every client of the proxy shares a few Redis
//! connections), in Redis 7's words and line format. The figures Redis
//! gives about buffers (`qbuf`, `omem`, ...) are 0: the proxy keeps its
//! buffers per connection differently (see `conn.rs`), and no client
//! library reads them.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Instant;

use super::super::reply::{Protocol, Replies};
use super::connection::parse_integer;
use super::peers::Record;
use super::{Context, Outcome};

/// Which clients a `TYPE` names: the proxy has no masters or replicas.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Normal,
    Pubsub,
    Nobody,
}

fn kind(word: &[u8]) -> Option<Kind> {
    let is = |name: &[u8]| word.eq_ignore_ascii_case(name);
    if is(b"normal") {
        Some(Kind::Normal)
    } else if is(b"pubsub") {
        Some(Kind::Pubsub)
    } else if is(b"master") || is(b"replica") || is(b"slave") {
        Some(Kind::Nobody)
    } else {
        None
    }
}

fn of_kind(record: &Record, kind: Kind) -> bool {
    match kind {
        Kind::Normal => !record.subscribed,
        Kind::Pubsub => record.subscribed,
        Kind::Nobody => false,
    }
}

/// `CLIENT LIST [TYPE type] [ID id ...]`.
pub fn list(args: &[&[u8]], context: &mut Context<'_>) -> Outcome {
    let mut kind_filter = None;
    let mut ids: Option<Vec<u64>> = None;
    match args {
        [] => {}
        [option, word] if option.eq_ignore_ascii_case(b"type") => match kind(word) {
            Some(found) => kind_filter = Some(found),
            None => {
                return context.error(&format!(
                    "ERR Unknown client type '{}'",
                    String::from_utf8_lossy(word)
                ))
            }
        },
        [option, rest @ ..] if option.eq_ignore_ascii_case(b"id") && !rest.is_empty() => {
            let mut wanted = Vec::with_capacity(rest.len());
            for id in rest {
                match parse_integer(id) {
                    Some(id) if id > 0 => wanted.push(id.unsigned_abs()),
                    Some(_) => {}
                    None => return context.error("ERR Invalid client ID"),
                }
            }
            ids = Some(wanted);
        }
        _ => return context.error("ERR syntax error"),
    }
    let now = Instant::now();
    let mut text = String::new();
    for record in context.peers.clients.records() {
        if kind_filter.is_some_and(|kind| !of_kind(&record, kind))
            || ids.as_ref().is_some_and(|ids| !ids.contains(&record.id))
        {
            continue;
        }
        line(&mut text, &record, context.session.id, "client|list", now);
    }
    verbatim(context.replies, &text);
    Outcome::Ok
}

/// `CLIENT INFO`: the caller's own line.
pub fn info(context: &mut Context<'_>) -> Outcome {
    let id = context.session.id;
    let mut text = String::new();
    if let Some(record) = context
        .peers
        .clients
        .records()
        .into_iter()
        .find(|r| r.id == id)
    {
        line(&mut text, &record, id, "client|info", Instant::now());
    }
    verbatim(context.replies, &text);
    Outcome::Ok
}

/// One `CLIENT LIST` line, in Redis 7.2's field order.
fn line(out: &mut String, record: &Record, caller: u64, running: &str, now: Instant) {
    let addr = |addr: Option<SocketAddr>| addr.map(|a| a.to_string()).unwrap_or_default();
    let name = record
        .name
        .as_deref()
        .map(String::from_utf8_lossy)
        .unwrap_or_default();
    let mut flags = String::new();
    if record.subscribed {
        flags.push('P');
    }
    if record.redirect.is_some() {
        flags.push('t');
    }
    if flags.is_empty() {
        flags.push('N');
    }
    let cmd = if record.id == caller {
        running
    } else {
        record.cmd
    };
    let idle = if record.id == caller {
        0
    } else {
        now.saturating_duration_since(record.active).as_secs()
    };
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "id={} addr={} laddr={} fd={} name={name} age={} idle={idle} flags={flags} db={} sub={} psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={cmd} user=default redir={} resp={} lib-name={} lib-ver={}",
        record.id,
        addr(record.addr),
        addr(record.laddr),
        record.fd,
        now.saturating_duration_since(record.opened).as_secs(),
        record.db,
        u8::from(record.subscribed),
        record.redirect.unwrap_or(-1),
        record.resp,
        String::from_utf8_lossy(&record.lib_name),
        String::from_utf8_lossy(&record.lib_ver),
    );
}

/// Text as Redis sends `CLIENT LIST` and `INFO`: a bulk string in RESP2, a
/// verbatim string (`=`, `txt:`) in RESP3.
pub(super) fn verbatim(replies: &mut Replies, text: &str) {
    match replies.protocol {
        Protocol::Resp2 => replies.bulk(text.as_bytes()),
        Protocol::Resp3 => {
            let len = text.len() + 4;
            replies.buf.push(b'=');
            replies
                .buf
                .extend_from_slice(itoa::Buffer::new().format(len).as_bytes());
            replies.buf.extend_from_slice(b"\r\ntxt:");
            replies.buf.extend_from_slice(text.as_bytes());
            replies.buf.extend_from_slice(b"\r\n");
        }
    }
}

/// What `CLIENT KILL`'s filters select.
#[derive(Default)]
struct Filter<'a> {
    id: Option<u64>,
    kind: Option<Kind>,
    addr: Option<&'a [u8]>,
    laddr: Option<&'a [u8]>,
    max_age: Option<u64>,
    skip_me: bool,
}

impl Filter<'_> {
    fn selects(&self, record: &Record, caller: u64, now: Instant) -> bool {
        let text = |addr: Option<SocketAddr>| addr.map(|a| a.to_string()).unwrap_or_default();
        !(self.skip_me && record.id == caller)
            && self.id.is_none_or(|id| id == record.id)
            && self.kind.is_none_or(|kind| of_kind(record, kind))
            && self
                .addr
                .is_none_or(|addr| addr == text(record.addr).as_bytes())
            && self
                .laddr
                .is_none_or(|laddr| laddr == text(record.laddr).as_bytes())
            && self
                .max_age
                .is_none_or(|age| now.saturating_duration_since(record.opened).as_secs() > age)
    }
}

/// `CLIENT KILL ip:port` (+OK, or an error if no client has it; the caller
/// too) or `CLIENT KILL <filter> <value> ...` (how many were closed;
/// SKIPME YES by default). Others close once this turn of the loop is
/// over; the caller once its replies are written.
pub fn kill(args: &[&[u8]], context: &mut Context<'_>) -> Outcome {
    let mut filter = Filter {
        skip_me: true,
        ..Filter::default()
    };
    let old_form = args.len() == 1;
    if old_form {
        filter.addr = Some(args[0]);
        filter.skip_me = false;
    } else if let Err(message) = parse_filter(args, &mut filter) {
        return context.error(&message);
    }
    let caller = context.session.id;
    let now = Instant::now();
    let mut killed = 0i64;
    for record in context.peers.clients.records() {
        if !filter.selects(&record, caller, now) {
            continue;
        }
        killed += 1;
        if record.id == caller {
            context.session.quit = true;
        } else {
            context.peers.clients.kill(record.token);
        }
    }
    match (old_form, killed) {
        (true, 0) => context.error("ERR No such client"),
        (true, _) => context.ok(),
        (false, count) => {
            context.replies.integer(count);
            Outcome::Ok
        }
    }
}

/// Reads `CLIENT KILL`'s option pairs, with Redis's errors.
fn parse_filter<'a>(args: &[&'a [u8]], filter: &mut Filter<'a>) -> Result<(), String> {
    if args.is_empty() || args.len() % 2 != 0 {
        return Err("ERR syntax error".to_owned());
    }
    for pair in args.chunks(2) {
        let (option, value) = (pair[0], pair[1]);
        let is = |name: &[u8]| option.eq_ignore_ascii_case(name);
        if is(b"id") {
            match parse_integer(value) {
                Some(id) if id > 0 => filter.id = Some(id.unsigned_abs()),
                _ => return Err("ERR client-id should be greater than 0".to_owned()),
            }
        } else if is(b"type") {
            filter.kind = Some(kind(value).ok_or_else(|| {
                format!(
                    "ERR Unknown client type '{}'",
                    String::from_utf8_lossy(value)
                )
            })?);
        } else if is(b"addr") {
            filter.addr = Some(value);
        } else if is(b"laddr") {
            filter.laddr = Some(value);
        } else if is(b"user") {
            // The proxy knows one user, `default`, whom every client is.
            if value != b"default" {
                return Err(format!(
                    "ERR No such user '{}'",
                    String::from_utf8_lossy(value)
                ));
            }
        } else if is(b"skipme") {
            filter.skip_me = if value.eq_ignore_ascii_case(b"yes") {
                true
            } else if value.eq_ignore_ascii_case(b"no") {
                false
            } else {
                return Err("ERR syntax error".to_owned());
            };
        } else if is(b"maxage") {
            match parse_integer(value) {
                Some(age) if age >= 0 => filter.max_age = Some(age.unsigned_abs()),
                _ => return Err("ERR syntax error".to_owned()),
            }
        } else {
            return Err("ERR syntax error".to_owned());
        }
    }
    Ok(())
}
