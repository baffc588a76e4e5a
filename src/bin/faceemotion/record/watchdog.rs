//! The stall watchdog: when data last came from the camera, and whether it has gone quiet.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the pad probe on the incoming stream records, read by the connection's loop.
#[derive(Clone)]
pub struct Watchdog {
    started: Instant,
    /// Milliseconds since `started` at the last buffer.
    last_data: Arc<AtomicU64>,
    buffers: Arc<AtomicU64>,
}

impl Watchdog {
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            last_data: Arc::new(AtomicU64::new(0)),
            buffers: Arc::new(AtomicU64::new(0)),
        }
    }

    /// A buffer came (called by the pad probe, on the streaming thread).
    pub fn data(&self) {
        self.last_data
            .store(self.started.elapsed().as_millis() as u64, Ordering::SeqCst);
        self.buffers.fetch_add(1, Ordering::SeqCst);
    }

    /// Counts from now, as if data had come: the recording branches have just started (their
    /// models loaded, which takes a while on a loaded machine), and the camera's first data
    /// is only now let through.
    pub fn rearm(&self) {
        self.last_data
            .store(self.started.elapsed().as_millis() as u64, Ordering::SeqCst);
    }

    /// How long no data has come. The probe may store a time later than the one this thread
    /// read as "now" (it runs on another thread between the two reads): that is no quiet at
    /// all, not a wrapped-around eternity that would be taken for a stalled camera.
    pub fn quiet(&self) -> Duration {
        let last = self.last_data.load(Ordering::SeqCst);
        let now = self.started.elapsed().as_millis() as u64;
        Duration::from_millis(quiet_ms(now, last))
    }

    /// Whether the stream has been quiet for longer than `limit`, counting from the start for a
    /// stream that never sent anything.
    pub fn stalled(&self, limit: Duration) -> bool {
        self.quiet() > limit && self.started.elapsed() > limit
    }

    pub fn got_data(&self) -> bool {
        self.buffers.load(Ordering::SeqCst) > 0
    }
}

/// Milliseconds between the last data and now, saturating at 0 when the data is the later.
fn quiet_ms(now: u64, last: u64) -> u64 {
    now.saturating_sub(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_stored_after_now_was_read_is_no_stall() {
        assert_eq!(quiet_ms(1000, 1001), 0);
        assert_eq!(quiet_ms(1000, 400), 600);
    }

    /// A probe storing as fast as it can on another thread, as a busy camera's data does,
    /// while the loop reads: the quiet the watchdog sees is never longer than the watchdog has
    /// existed. (With "now" read before the probe's time and an unchecked subtraction it
    /// wrapped to about 584 million years.) The bound is the watchdog's age, not a fixed few
    /// milliseconds: on a loaded machine the probe's thread can be descheduled for a while,
    /// and that is real quiet, not the bug.
    #[test]
    fn a_busy_probe_on_another_thread_is_never_a_stall() {
        let w = Watchdog::new();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let probe = {
            let (w, stop) = (w.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    w.data();
                }
            })
        };
        let until = Instant::now() + Duration::from_millis(300);
        let mut reads = 0u64;
        while Instant::now() < until {
            let quiet = w.quiet();
            let age = w.started.elapsed();
            assert!(
                quiet <= age,
                "quiet for {quiet:?}, longer than the watchdog's {age:?}, while data came"
            );
            reads += 1;
        }
        stop.store(true, Ordering::SeqCst);
        probe.join().unwrap();
        assert!(reads > 0 && w.got_data());
    }
}
