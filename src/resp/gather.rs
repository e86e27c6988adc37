//! Several clients' forwarded batches sent together by one worker, as
//! twemproxy pipelines many clients' commands onto one Redis connection:
//! one write and one read for all of them instead of a round trip each.
//!
//! Only batches on pooled connections, of the same protocol and database,
//! with no transaction in them, are gathered; the replies come back in
//! request order and are split between the clients by counting replies.

use std::sync::mpsc::Receiver;

use mio::Token;

use crate::backend::raw::frame::Framer;
use crate::service::{Batch, Client, Lane, Service};

use super::cmd::forward;
use super::workers::{Forward, Job, Work};

/// Most clients' batches one worker sends together.
pub const GATHER: usize = 32;

/// Whether `job` may be sent together with others like it, and with whom:
/// its client's protocol and database.
pub fn gatherable(job: &Job) -> Option<(bool, i64)> {
    match &job.work {
        Work::Forward(forward)
            if matches!(forward.lane, Lane::Pooled) && forward.exec.is_none() =>
        {
            Some((forward.client.resp3, forward.client.db))
        }
        _ => None,
    }
}

/// Sends gathered jobs (all [`gatherable`] alike) as one batch: each
/// job's token and replies.
pub fn run(jobs: Vec<Job>, service: &Service) -> Vec<(Token, Vec<u8>)> {
    let mut combined = Batch::default();
    let mut counts = Vec::with_capacity(jobs.len());
    let mut client = None;
    for job in &jobs {
        if let Work::Forward(forward) = &job.work {
            let Forward {
                batch, client: c, ..
            } = &**forward;
            combined.append(batch);
            counts.push((job.token, batch.len()));
            client = Some(*c);
        }
    }
    let client = client.unwrap_or(Client {
        resp3: false,
        db: 0,
        dedicated: false,
    });
    let ran = forward(&combined, client, Lane::Pooled, None, service);
    split(&ran.replies, &counts)
}

/// Splits `out` (one reply per request, in order) by each job's count.
fn split(out: &[u8], counts: &[(Token, usize)]) -> Vec<(Token, Vec<u8>)> {
    let mut framer = Framer::default();
    let mut at = 0;
    counts
        .iter()
        .map(|&(token, count)| {
            let start = at;
            for _ in 0..count {
                match framer.next(&out[at..]) {
                    Ok(Some(len)) => at += len,
                    _ => break,
                }
            }
            (token, out[start..at].to_vec())
        })
        .collect()
}

/// Takes the jobs queued behind `first` that can be sent with it: the
/// single job to run as it is (if nothing joined it), the gathered ones,
/// and a job taken that could not join (run after them).
pub fn take(first: Job, queue: &Receiver<Job>) -> (Option<Job>, Vec<Job>, Option<Job>) {
    let Some(key) = gatherable(&first) else {
        return (Some(first), Vec::new(), None);
    };
    let mut group = vec![first];
    let mut other = None;
    while group.len() < GATHER {
        match queue.try_recv() {
            Ok(job) if gatherable(&job) == Some(key) => group.push(job),
            Ok(job) => {
                other = Some(job);
                break;
            }
            Err(_) => break,
        }
    }
    if group.len() == 1 {
        return (group.pop(), Vec::new(), other);
    }
    (None, group, other)
}

/// [`run`], turning a panic into an error reply for each client.
pub fn run_guarded(jobs: Vec<Job>, service: &Service) -> Vec<(Token, Vec<u8>)> {
    // One error per request of each client, should it come to that.
    let tokens: Vec<(Token, usize)> = jobs
        .iter()
        .map(|job| match &job.work {
            Work::Forward(forward) => (job.token, forward.batch.len()),
            Work::Fetch(_) => (job.token, 1),
        })
        .collect();
    crate::metrics::serve_on_this_thread(crate::metrics::FrontEnd::Resp);
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(jobs, service))) {
        Ok(replies) => replies,
        Err(_) => {
            log::error!("a RESP worker panicked; answered -ERR internal error");
            tokens
                .into_iter()
                .map(|(token, requests)| (token, b"-ERR internal error\r\n".repeat(requests)))
                .collect()
        }
    }
}
