//! The RESP worker pool: WORKERS threads that do the reads the event
//! loop hands over (a miss, or a hit when no place is free, and MGET) and
//! send its batches of forwarded commands (several clients' together:
//! `gather.rs`), so the loop itself never waits on Redis or on a place.

use std::io;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use mio::{Token, Waker};

use crate::service::Service;

use crate::service::{Batch, Client, Held, Lane, Queued};

use super::cmd::{fetch, forward, Answer, Fetch};
use super::fence::Fence;
use super::gather;
use super::reply::{Protocol, Replies};

/// Work for a worker, for the connection `token`.
pub struct Job {
    pub token: Token,
    pub work: Work,
    pub protocol: Protocol,
}

/// What a worker does.
pub enum Work {
    /// A read through the cache.
    Fetch(Fetch),
    /// Requests for Redis, sent as one batch.
    Forward(Box<Forward>),
}

/// A batch for Redis, for the client `client`, on `lane`; `exec`: what
/// the batch's EXEC runs.
pub struct Forward {
    pub batch: Batch,
    pub client: Client,
    pub lane: Lane,
    pub exec: Option<Queued>,
}

/// A worker's finished reply for the connection `token`, and the Redis
/// connection it holds after it, if any.
pub struct Done {
    pub token: Token,
    pub reply: Vec<u8>,
    pub held: Option<Held>,
    pub kind: DoneKind,
    /// A read the cache could not fill, with no reply yet: to send to
    /// Redis as a forwarded command ([`Answer::Resend`]).
    pub resend: Option<Batch>,
}

/// What a [`Done`] carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DoneKind {
    /// A read's reply.
    Fetched,
    /// A forwarded batch's replies; the connection the client holds after
    /// it, if any, comes back in `held`.
    Forwarded,
    /// What Redis sent on a client's subscription.
    Message,
    /// The subscription ended (the error to tell, if any): close.
    Ended,
    /// The subscription's connection ended under it (Redis closed it, or
    /// a failover moved the master; `reply`: the cause, for the log):
    /// close without a word, as Redis closes its own.
    LinkEnded,
    /// A forwarded batch whose Redis connection, the client's own (a
    /// blocking command's, a transaction's), ended under it: Redis closed
    /// it, or a failover moved the master. The replies that came, then
    /// close, as Redis closes the client's own connection.
    Lost,
}

/// Where the event loop puts jobs, knowing how many workers are free: idle
/// and owed no job already queued. The loop leads a key's fetch itself only
/// when one is, since a fetch it leads but no worker starts would make
/// every other reader of that key (HTTP included) wait behind jobs that
/// have nothing to do with it.
pub struct WorkQueue {
    jobs: Sender<Job>,
    free: Arc<AtomicIsize>,
}

impl WorkQueue {
    /// Queues `job`; false if the workers are gone.
    pub fn send(&self, job: Job) -> bool {
        self.free.fetch_sub(1, Ordering::AcqRel);
        self.jobs.send(job).is_ok()
    }

    /// Whether a job queued now is started at once.
    pub fn has_free_worker(&self) -> bool {
        self.free.load(Ordering::Acquire) > 0
    }
}

/// Starts `count` workers; jobs go in through the returned queue, replies
/// go to `done`, and `waker` wakes the loop for each. A job waits while
/// `fence` is up (another client's earlier blocking command or Pub/Sub
/// request not yet at Redis), at most REDIS_TIMEOUT_MS.
/// Fails if any worker cannot start, rather than leave connections waiting
/// for a worker that does not exist.
pub fn start(
    count: usize,
    service: &Arc<Service>,
    (waker, done_tx): (&Arc<Waker>, &Sender<Done>),
    fence: &Fence,
) -> io::Result<WorkQueue> {
    let (job_tx, job_rx) = mpsc::channel::<Job>();
    let free = Arc::new(AtomicIsize::new(
        isize::try_from(count).unwrap_or(isize::MAX),
    ));
    let job_rx = Arc::new(Mutex::new(job_rx));
    for i in 0..count {
        let (job_rx, done_tx) = (Arc::clone(&job_rx), done_tx.clone());
        let (service, waker) = (Arc::clone(service), Arc::clone(waker));
        let free = Arc::clone(&free);
        let fence = fence.clone();
        thread::Builder::new()
            .name(format!("resp-worker-{i}"))
            .spawn(move || loop {
                let (job, gathered, next) = {
                    let queue = job_rx.lock().unwrap_or_else(PoisonError::into_inner);
                    let Ok(job) = queue.recv() else {
                        return;
                    };
                    gather::take(job, &queue)
                };
                if !gathered.is_empty() {
                    fence.wait(service.redis_timeout());
                    let count = gathered.len();
                    for (token, reply) in gather::run_guarded(gathered, &service) {
                        let done = Done {
                            token,
                            reply,
                            held: None,
                            kind: DoneKind::Forwarded,
                            resend: None,
                        };
                        if done_tx.send(done).is_err() {
                            return;
                        }
                    }
                    free.fetch_add(
                        isize::try_from(count).unwrap_or(isize::MAX),
                        Ordering::AcqRel,
                    );
                    let _ = waker.wake();
                }
                for job in job.into_iter().chain(next) {
                    fence.wait(service.redis_timeout());
                    let token = job.token;
                    let kind = match job.work {
                        Work::Forward(..) => DoneKind::Forwarded,
                        Work::Fetch(..) => DoneKind::Fetched,
                    };
                    let (reply, held, resend, ended) = run_guarded(job, &service);
                    let kind = if ended { DoneKind::Lost } else { kind };
                    free.fetch_add(1, Ordering::AcqRel);
                    let done = Done {
                        token,
                        reply,
                        held,
                        kind,
                        resend,
                    };
                    if done_tx.send(done).is_err() {
                        return;
                    }
                    let _ = waker.wake();
                }
            })?;
    }
    let queue = WorkQueue { jobs: job_tx, free };
    Ok(queue)
}

/// Runs a job, turning a panic into an error reply: the connection goes on,
/// the panic is logged (by the panic hook and here), and the worker lives on
/// to take the next job, as a replaced worker would. Its reply, the Redis
/// connection the client holds after it, a read to forward instead of a
/// reply, and whether the client's own Redis connection ended under it
/// (`Ran::ended`).
fn run_guarded(job: Job, service: &Service) -> (Vec<u8>, Option<Held>, Option<Batch>, bool) {
    // For the `protocol` label of the hits and misses this job counts.
    crate::metrics::serve_on_this_thread(crate::metrics::FrontEnd::Resp);
    let protocol = job.protocol;
    // One reply per request, even from a panic: fewer would put the
    // client's later replies out of step.
    let requests = match &job.work {
        Work::Forward(forward) => forward.batch.len(),
        Work::Fetch(_) => 1,
    };
    let run = || match job.work {
        Work::Fetch(work) => match fetch(work, protocol, service) {
            Answer::Reply(reply) => (reply, None, None, false),
            Answer::Resend(batch) => (Vec::new(), None, Some(batch), false),
        },
        Work::Forward(job) => {
            let Forward {
                batch,
                client,
                lane,
                exec,
            } = *job;
            let ran = forward(&batch, client, lane, exec.as_ref(), service);
            if let (true, Some(why)) = (ran.ended, &ran.why) {
                crate::service::log_held_ended(why);
            }
            (ran.replies, ran.held, None, ran.ended)
        }
    };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        Ok(done) => done,
        Err(_) => {
            log::error!("a RESP worker panicked; answered -ERR internal error");
            let mut replies = Replies::new();
            replies.protocol = protocol;
            for _ in 0..requests {
                service.resp_answered(false, Duration::ZERO);
                replies.error("ERR internal error");
            }
            (replies.buf, None, None, false)
        }
    }
}
