use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError}; // redis-proxy patch 24
use std::thread;
use std::time::Duration;

use super::refused_threads::RefusedThreads; // redis-proxy patch 24

/// Manages a collection of threads.
///
/// A new thread is created every time all the existing threads are full.
/// Any idle thread will automatically die after a few seconds.
pub struct TaskPool {
    sharing: Arc<Sharing>,
    // redis-proxy patch 24: threads the OS refused, warned about rarely.
    refused: RefusedThreads,
}

struct Sharing {
    // list of the tasks to be done by worker threads
    todo: Mutex<VecDeque<Box<dyn FnMut() + Send>>>,

    // condvar that will be notified whenever a task is added to `todo`
    condvar: Condvar,

    // number of total worker threads running
    active_tasks: AtomicUsize,

    // number of idle worker threads
    waiting_tasks: AtomicUsize,
}

/// Minimum number of active threads.
static MIN_THREADS: usize = 4;

struct Registration<'a> {
    nb: &'a AtomicUsize,
}

impl<'a> Registration<'a> {
    fn new(nb: &'a AtomicUsize) -> Registration<'a> {
        nb.fetch_add(1, Ordering::Release);
        Registration { nb }
    }
}

impl<'a> Drop for Registration<'a> {
    fn drop(&mut self) {
        self.nb.fetch_sub(1, Ordering::Release);
    }
}

impl TaskPool {
    pub fn new() -> TaskPool {
        let pool = TaskPool {
            sharing: Arc::new(Sharing {
                todo: Mutex::new(VecDeque::new()),
                condvar: Condvar::new(),
                active_tasks: AtomicUsize::new(0),
                waiting_tasks: AtomicUsize::new(0),
            }),
            refused: RefusedThreads::new(), // redis-proxy patch 24
        };

        for _ in 0..MIN_THREADS {
            pool.add_thread(None)
        }

        pool
    }

    /// Executes a function in a thread.
    /// If no thread is available, spawns a new one.
    pub fn spawn(&self, code: Box<dyn FnMut() + Send>) {
        // redis-proxy patch 24: nothing panics under this lock any more; were
        // it poisoned all the same, the queue is still whole: go on with it.
        let mut queue = self
            .sharing
            .todo
            .lock()
            .unwrap_or_else(PoisonError::into_inner);

        // redis-proxy patch 1: tasks already queued are each owed one of the idle
        // threads, so only an idle thread beyond those is free for this task.
        if self.sharing.waiting_tasks.load(Ordering::Acquire) <= queue.len() {
            self.add_thread(Some(code));
        } else {
            queue.push_back(code);
            self.sharing.condvar.notify_one();
        }
    }

    fn add_thread(&self, initial_fn: Option<Box<dyn FnMut() + Send>>) {
        let sharing = self.sharing.clone();
        let for_client = initial_fn.is_some(); // redis-proxy patch 24

        // redis-proxy patch 24: a thread the OS refuses (RLIMIT_NPROC, TasksMax,
        // pids.max, threads-max) is no panic. `thread::spawn` panicked here, in
        // the accept thread and under the `todo` lock: the poisoned lock then
        // killed every pool thread and nothing was accepted again. The closure
        // is dropped instead, and with it the task's client: closed at once.
        // Queuing it would leave it waiting on a busy thread, which a
        // connection holds for as long as it stays open.
        let spawned = thread::Builder::new().spawn(move || {
            let sharing = sharing;
            let _active_guard = Registration::new(&sharing.active_tasks);

            if let Some(mut f) = initial_fn {
                f();
            }

            loop {
                let mut task: Box<dyn FnMut() + Send> = {
                    // redis-proxy patch 24: not poisoned (see `spawn`).
                    let mut todo = sharing.todo.lock().unwrap_or_else(PoisonError::into_inner);

                    let task;
                    loop {
                        if let Some(poped_task) = todo.pop_front() {
                            task = poped_task;
                            break;
                        }
                        let _waiting_guard = Registration::new(&sharing.waiting_tasks);

                        let received =
                            if sharing.active_tasks.load(Ordering::Acquire) <= MIN_THREADS {
                                todo = sharing
                                    .condvar
                                    .wait(todo)
                                    .unwrap_or_else(PoisonError::into_inner); // redis-proxy patch 24
                                true
                            } else {
                                let (new_lock, waitres) = sharing
                                    .condvar
                                    .wait_timeout(todo, Duration::from_millis(5000))
                                    .unwrap_or_else(PoisonError::into_inner); // redis-proxy patch 24
                                todo = new_lock;
                                !waitres.timed_out()
                            };

                        if !received && todo.is_empty() {
                            return;
                        }
                    }

                    task
                };

                task();
            }
        });
        // redis-proxy patch 24: warned about, rate-limited, when a client
        // is closed; the pool's first threads are only a head start.
        if let Err(e) = spawned {
            if for_client {
                self.refused.refused(&e);
            } else {
                log::warn!("Could not start a pool thread: {}", e);
            }
        }
    }
}

impl Drop for TaskPool {
    fn drop(&mut self) {
        self.sharing
            .active_tasks
            .store(999_999_999, Ordering::Release);
        self.sharing.condvar.notify_all();
    }
}
