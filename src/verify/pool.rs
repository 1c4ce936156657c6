//! The parse pool: the CPU work of verification (parsing a page, finding the link, extracting
//! the entry — a millisecond or more for a real article) on threads of its own, one per core.
//!
//! Why not `spawn_blocking` behind a semaphore (what this replaced): between two pages, a freed
//! permit had to wake a waiting task on the async runtime, which then handed the next page to a
//! blocking thread — two thread hand-offs, each waiting for a core that the parses themselves
//! were holding, so the parsers sat idle between pages. Here a parse thread that finishes a
//! page takes the next one from the queue at once: draining 40 KB articles went from ~940 to
//! ~1,500 pages/s on two cores (`ARTICLE=1 bash benches/e2e_verify.sh`). The queue holds only
//! pages whose jobs are in flight (each caller waits for its answer), so it is bounded by the
//! worker's `concurrency`, and at most one tree per thread is alive at a time.
//!
//! The threads run ten steps nicer than the process (on Linux): when the HTTP side has a
//! request to answer, it gets the core first, so receiving stays responsive while verification
//! uses whatever CPU is left — issue 15's "priorities" option, measured with
//! `ARTICLE=1 bash benches/webmention_accept.sh` (p99 25–27 ms at normal priority, 21–23 ms
//! nicer, and a third more accepts per second).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

type Task = Box<dyn FnOnce() + Send>;

/// A fixed set of parse threads fed from one queue; dropping the pool ends them.
pub struct ParsePool {
    queue: Sender<Task>,
}

/// The work did not finish: it panicked (a bug, reported as a transient failure, so the job is
/// retried rather than lost) or the pool is gone.
#[derive(Debug, thiserror::Error)]
#[error("parsing did not finish: {0}")]
pub struct Unfinished(&'static str);

impl ParsePool {
    /// `threads` parse threads (at least one).
    pub fn new(threads: usize) -> ParsePool {
        let (sender, receiver) = channel::<Task>();
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..threads.max(1) {
            let receiver = receiver.clone();
            // Linux shows a thread's first 15 bytes of name: all of this one.
            let spawned = std::thread::Builder::new()
                .name("backfeed-parse".into())
                .spawn(move || parse_thread(&receiver));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start a parse thread");
            }
        }
        ParsePool { queue: sender }
    }

    /// One per core.
    pub fn per_core() -> ParsePool {
        ParsePool::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    }

    /// Runs `work` on a parse thread and waits for its result without blocking the runtime.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Unfinished> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let task: Task = Box::new(move || {
            let _ = answer.send(catch_unwind(AssertUnwindSafe(work)));
        });
        self.queue
            .send(task)
            .map_err(|_| Unfinished("no parse thread is running"))?;
        match answered.await {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(_)) => Err(Unfinished("the parser panicked")),
            Err(_) => Err(Unfinished("the parse thread ended")),
        }
    }
}

fn parse_thread(receiver: &Mutex<Receiver<Task>>) {
    lower_priority();
    loop {
        // The lock is held only while waiting for the next task, never while running one.
        let next = match receiver.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        match next {
            Ok(task) => task(),
            Err(_) => return, // the pool was dropped
        }
    }
}

/// Ten steps nicer than it was, for the calling thread only: on Linux `nice` (setpriority with
/// `PRIO_PROCESS, 0`) applies to the calling thread, not the whole process. Elsewhere, or if
/// refused, parsing runs at the process's priority.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: nice takes no pointers; a failure only leaves the priority as it was.
    unsafe {
        libc::nice(10);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_work_and_survives_a_panic() {
        let pool = ParsePool::new(2);
        assert_eq!(pool.run(|| 6 * 7).await.unwrap(), 42);
        let failed = pool.run(|| -> u8 { panic!("bad page") }).await;
        assert!(failed.is_err());
        // Both threads still take work after one task panicked.
        let answers = futures_util::future::join_all((0..8).map(|i| pool.run(move || i * 2))).await;
        let answers: Vec<i32> = answers.into_iter().map(Result::unwrap).collect();
        assert_eq!(answers, (0..8).map(|i| i * 2).collect::<Vec<_>>());
    }

    /// The parse threads yield to the rest of the process: nice 10, read back from /proc.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn parse_threads_run_at_lower_priority() {
        let pool = ParsePool::new(1);
        let tid = pool
            .run(|| unsafe { libc::syscall(libc::SYS_gettid) })
            .await
            .unwrap();
        let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap();
        // Fields after the parenthesized name: state is field 3, nice is field 19.
        let after_name = &stat[stat.rfind(')').unwrap() + 2..];
        let nice: i32 = after_name.split(' ').nth(16).unwrap().parse().unwrap();
        let own = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
        let own_nice: i32 = own[own.rfind(')').unwrap() + 2..]
            .split(' ')
            .nth(16)
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(nice, (own_nice + 10).min(19), "{stat}");
    }
}
