//! Posting on the bus from many streams at once.
//!
//! GStreamer's bus (1.22) queues messages in a `GstAtomicQueue`, whose writer, once it has its
//! slot, waits for every earlier writer to finish theirs, spinning on `sched_yield`. With more
//! streaming threads than cores (sixteen cameras on two), a writer preempted inside a push
//! leaves the others spinning for whole time slices, and the pipeline crawls (README: Many
//! cameras). So the `faceemotion` elements of one pipeline take turns to post, and wait for
//! their turn asleep.
//!
//! A bus sync handler runs inside the post, so a handler that blocks holds the turn: a turn is
//! waited for at most [`PATIENCE`], then the post goes ahead without it, so that a handler
//! waiting on something that waits on another stream cannot deadlock the pipeline. Turns are
//! per top-level pipeline (the bus whose queue is shared), striped over a few locks: pipelines
//! on the same stripe share turns, which costs them only the wait for each other's posts.

use std::cell::Cell;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;

/// The longest a post waits for its turn.
pub const PATIENCE: Duration = Duration::from_millis(100);

/// Turns, by the top-level pipeline's address; pipelines that share a stripe share turns.
const STRIPES: usize = 16;

struct Turn {
    busy: Mutex<bool>,
    freed: Condvar,
}

static TURNS: [Turn; STRIPES] = [const {
    Turn {
        busy: Mutex::new(false),
        freed: Condvar::new(),
    }
}; STRIPES];

thread_local! {
    /// Whether this thread holds a turn: a sync handler that makes an element post again on
    /// the same thread posts at once.
    static HOLDING: Cell<bool> = const { Cell::new(false) };
}

impl Turn {
    /// Waits for the turn, at most `patience`; whether it was had.
    fn take(&self, patience: Duration) -> bool {
        let deadline = Instant::now() + patience;
        let mut busy = self.busy.lock().unwrap_or_else(|e| e.into_inner());
        while *busy {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            busy = self.freed.wait_timeout(busy, left).unwrap_or_else(|e| e.into_inner()).0;
        }
        *busy = true;
        true
    }

    fn give_back(&self) {
        *self.busy.lock().unwrap_or_else(|e| e.into_inner()) = false;
        self.freed.notify_one();
    }
}

/// Posts `message` from `element`, in turn with the other `faceemotion` elements of its
/// top-level `pipeline` (the address its [`Phase`](super::phase::Phase) was taken in).
pub fn post(element: &impl IsA<gst::Element>, pipeline: usize, message: gst::Message) -> bool {
    if HOLDING.with(Cell::get) {
        return element.post_message(message).is_ok();
    }
    let turn = &TURNS[(pipeline >> 4) % STRIPES];
    if !turn.take(PATIENCE) {
        return element.post_message(message).is_ok();
    }
    struct Held<'a>(&'a Turn);
    impl Drop for Held<'_> {
        fn drop(&mut self) {
            HOLDING.with(|h| h.set(false));
            self.0.give_back();
        }
    }
    HOLDING.with(|h| h.set(true));
    let _held = Held(turn);
    element.post_message(message).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_turn_held_too_long_is_gone_past() {
        let turn = Turn {
            busy: Mutex::new(false),
            freed: Condvar::new(),
        };
        assert!(turn.take(PATIENCE));
        // Held by someone else (a sync handler that blocks): the next post gives up waiting.
        assert!(!turn.take(PATIENCE));
        turn.give_back();
        assert!(turn.take(PATIENCE));
        turn.give_back();
    }

    #[test]
    fn a_turn_given_back_wakes_the_next() {
        let turn = std::sync::Arc::new(Turn {
            busy: Mutex::new(false),
            freed: Condvar::new(),
        });
        assert!(turn.take(PATIENCE));
        let t = turn.clone();
        // Patient enough for any machine: the turn comes back whenever the waiter starts.
        let waiter = std::thread::spawn(move || t.take(Duration::from_secs(10)));
        turn.give_back();
        assert!(waiter.join().unwrap(), "the waiter did not get the turn");
        // It holds it now: nobody else gets it.
        assert!(!turn.take(Duration::from_millis(1)));
    }
}
