//! One inference pool per process: a worker per core runs the model runs of every stream, the
//! detector's and the classifiers', in the order they were asked for, so that no stream waits
//! behind another's backlog and no instance starts threads of its own.
//!
//! A job is a value (no allocation to queue it: the queue keeps its room, and what a job needs
//! travels in it and comes back with its answer on the asking stream's own channel), so a
//! stream's results never mix with another's.

use std::collections::VecDeque;
use std::sync::mpsc::SyncSender;
use std::sync::{Condvar, Mutex};

/// Work a pool runs: it does its run in place and goes back to the stream that sent it.
pub trait Task: Send + 'static {
    fn run(&mut self);
    /// Called instead of finishing when the run panicked, so the stream gets an error back.
    fn failed(&mut self);
}

pub struct Pool<T: Task> {
    queue: Mutex<VecDeque<(T, SyncSender<T>)>>,
    ready: Condvar,
    workers: usize,
}

/// Jobs the queue has room for before it grows (16 streams with a few jobs each).
const QUEUE_ROOM: usize = 256;

impl<T: Task> Pool<T> {
    /// Starts a pool of `workers` threads, for the life of the process.
    pub fn start(workers: usize, name: &str) -> &'static Self {
        let pool: &'static Self = Box::leak(Box::new(Self {
            queue: Mutex::new(VecDeque::with_capacity(QUEUE_ROOM)),
            ready: Condvar::new(),
            workers: workers.max(1),
        }));
        for i in 0..pool.workers {
            let spawned = std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || pool.work());
            if spawned.is_err() && i == 0 {
                // Without a thread the jobs would wait for ever: run them where they are sent.
                return Box::leak(Box::new(Self {
                    queue: Mutex::new(VecDeque::new()),
                    ready: Condvar::new(),
                    workers: 0,
                }));
            }
        }
        pool
    }

    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Queues `task`; its answer comes on `reply` (the task itself, run).
    pub fn submit(&self, mut task: T, reply: &SyncSender<T>) {
        if self.workers == 0 {
            run_one(&mut task);
            let _ = reply.send(task);
            return;
        }
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_back((task, reply.clone()));
        self.ready.notify_one();
    }

    fn work(&self) {
        loop {
            let (mut task, reply) = {
                let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    if let Some(job) = q.pop_front() {
                        break job;
                    }
                    q = self.ready.wait(q).unwrap_or_else(|e| e.into_inner());
                }
            };
            run_one(&mut task);
            // A stream that went away no longer waits for its answer.
            let _ = reply.send(task);
        }
    }
}

/// Room for the few large jobs of the process (the detector's full search of a frame: the whole
/// grid of tiles at once, 16 inputs at 1080p). Streams that start together all search their
/// first frame in full; without a limit each would hold its inputs while they wait for the
/// workers, that much memory per stream at the start. A stream blocks here only until one such
/// job has been run: a ticket is held only by a job queued or running, and is given back before
/// its answer is sent. That holds while a worker never waits for a stream, as long as the
/// reply channels have room for every job a stream has in flight (a stream has at most two
/// detector jobs out).
pub struct Gate {
    free: Mutex<usize>,
    freed: Condvar,
}

/// One large job's room, given back when dropped (the job run, failed, or dropped unrun).
pub struct Ticket {
    gate: &'static Gate,
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ticket")
    }
}

impl Gate {
    pub const fn new(room: usize) -> Self {
        Self {
            free: Mutex::new(room),
            freed: Condvar::new(),
        }
    }

    /// Waits for room for one large job.
    pub fn enter(&'static self) -> Ticket {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free == 0 {
            free = self.freed.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= 1;
        Ticket { gate: self }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        *self.gate.free.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.gate.freed.notify_one();
    }
}

fn run_one<T: Task>(task: &mut T) {
    // A fault in a model's outputs must come back as an error to the stream that asked, not
    // end the worker and every stream's work with it.
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| task.run()));
    if ran.is_err() {
        task.failed();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Square {
        stream: usize,
        n: u64,
        panics: bool,
    }

    impl Task for Square {
        fn run(&mut self) {
            if self.panics {
                panic!("a model fault");
            }
            self.n *= self.n;
        }
        fn failed(&mut self) {
            self.n = 0;
        }
    }

    /// Never more tickets out than the room, and a ticket dropped on another thread lets the
    /// next one in.
    #[test]
    fn a_gate_lets_in_no_more_than_its_room() {
        static GATE: Gate = Gate::new(2);
        static OUT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        static MOST: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        use std::sync::atomic::Ordering::SeqCst;
        let threads: Vec<_> = (0..8)
            .map(|_| {
                std::thread::spawn(|| {
                    for _ in 0..50 {
                        let ticket = GATE.enter();
                        let now = OUT.fetch_add(1, SeqCst) + 1;
                        MOST.fetch_max(now, SeqCst);
                        std::thread::yield_now();
                        OUT.fetch_sub(1, SeqCst);
                        // Given back by another thread, as a worker gives back a stream's.
                        std::thread::spawn(move || drop(ticket)).join().unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(MOST.load(SeqCst) <= 2);
        assert_eq!(*GATE.free.lock().unwrap(), 2);
    }

    /// Many streams' jobs through a pool of 2: every answer goes to its own stream, in order,
    /// and a job that panics comes back failed without taking the workers with it.
    #[test]
    fn answers_go_back_to_their_stream_and_a_panic_is_an_answer() {
        let pool = Pool::<Square>::start(2, "test-pool");
        let streams: Vec<_> = (0..8).map(|_| std::sync::mpsc::sync_channel::<Square>(64)).collect();
        for round in 1..=20u64 {
            for (s, (tx, _)) in streams.iter().enumerate() {
                pool.submit(
                    Square {
                        stream: s,
                        n: round * 100 + s as u64,
                        panics: round == 7 && s == 3,
                    },
                    tx,
                );
            }
        }
        for (s, (_, rx)) in streams.iter().enumerate() {
            let mut got: Vec<u64> = (0..20)
                .map(|_| rx.recv().unwrap())
                .inspect(|t| assert_eq!(t.stream, s))
                .map(|t| t.n)
                .collect();
            got.sort_unstable();
            let mut want: Vec<u64> = (1..=20u64)
                .map(|r| {
                    if r == 7 && s == 3 {
                        0
                    } else {
                        (r * 100 + s as u64).pow(2)
                    }
                })
                .collect();
            want.sort_unstable();
            assert_eq!(got, want, "stream {s}");
        }
    }
}
