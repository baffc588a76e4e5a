//! Frame times and lateness, from what a stream's buffers say about themselves.
//!
//! GStreamer-free: the element reads timestamps, the segment and the clock, and this module
//! decides what a frame's time is when a buffer lacks one, and whether a live frame arrives so
//! late that the analysis is behind.

use crate::face::FrameTime;

/// A frame duration to assume when neither the buffer nor the caps give one.
pub const FALLBACK_FRAME_NS: u64 = 33_333_333;

/// What a buffer says of its time, in nanoseconds; any of it may be missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stamp {
    /// The buffer's timestamp (PTS).
    pub pts: Option<u64>,
    /// Its stream time (the position in the recording).
    pub stream: Option<u64>,
    /// Its running time (the clock that only goes forward).
    pub running: Option<u64>,
    /// The buffer's own duration.
    pub duration: Option<u64>,
    /// One frame at the negotiated frame rate.
    pub frame_duration: Option<u64>,
}

/// The times of a stream's frames: each frame's from its buffer, with what is missing taken
/// from the frame before (one frame duration after it).
#[derive(Debug, Clone, Default)]
pub struct FrameClock {
    last: Option<FrameTime>,
}

impl FrameClock {
    /// The time of the next frame.
    pub fn next(&mut self, s: Stamp) -> FrameTime {
        let last = self.last;
        let ts = s.stream.or(s.pts);
        let clock = s.running.or(s.pts);
        let duration = s
            .duration
            .or(s.frame_duration)
            .or_else(|| clock?.checked_sub(last?.clock))
            .filter(|&d| d > 0)
            .unwrap_or(FALLBACK_FRAME_NS);
        let after = |f: fn(&FrameTime) -> u64| last.map_or(0, |l| f(&l).saturating_add(l.duration));
        let time = FrameTime {
            ts: ts.unwrap_or_else(|| after(|l| l.ts)),
            // The clock never goes back: a frame stamped before the last one is placed after it.
            clock: clock
                .filter(|&c| last.is_none_or(|l| c >= l.clock))
                .unwrap_or_else(|| after(|l| l.clock)),
            duration,
        };
        self.last = Some(time);
        time
    }

    /// Forgets the last frame (a flush: times start again).
    pub fn reset(&mut self) {
        self.last = None;
    }
}

/// How late a live frame arrives: the clock's running time now against the frame's running
/// time plus the latency upstream reported (ns); 0 for a frame on time or early.
pub fn lateness(now: u64, frame_running: u64, upstream_latency: u64) -> u64 {
    now.saturating_sub(frame_running.saturating_add(upstream_latency))
}

/// Decides which live frames arrive so late that the analysis is behind.
///
/// Lateness counts from the least lateness seen since the start (or the last [`reset`]): a
/// delay every frame has (the pipeline starting, a stage upstream that does not report its
/// latency) is not a backlog, so the first frame is always analysed and a constantly late
/// stream is analysed in full, while a growing delay is still caught.
///
/// [`reset`]: LatenessGate::reset
#[derive(Debug, Clone, Default)]
pub struct LatenessGate {
    floor: Option<u64>,
}

impl LatenessGate {
    /// Whether a frame arriving `lateness` ns late is later than `budget` ns beyond the least
    /// lateness seen (a `budget` of 0 means one frame, `frame` ns).
    pub fn is_late(&mut self, lateness: u64, budget: u64, frame: u64) -> bool {
        let least = *self.floor.insert(self.floor.map_or(lateness, |f| f.min(lateness)));
        let budget = if budget == 0 { frame } else { budget };
        lateness - least > budget
    }

    /// The least lateness seen so far.
    pub fn floor(&self) -> Option<u64> {
        self.floor
    }

    pub fn reset(&mut self) {
        self.floor = None;
    }
}

/// The time of day of a stream's frames, in ns since the Unix epoch (UTC): from each frame
/// whose time of day something tells (a reference timestamp from the camera, the capture time
/// on a live source, the recording's start plus the frame's stream time), carried to frames
/// and events that have only a stream time.
#[derive(Debug, Clone, Default)]
pub struct WallClock {
    /// Unix time minus stream time, from the latest frame whose time of day was known.
    offset: Option<i128>,
}

impl WallClock {
    /// The time of day of the frame at stream time `ts`, `known` if something told it.
    pub fn frame(&mut self, ts: u64, known: Option<u64>) -> Option<u64> {
        if let Some(unix) = known {
            self.offset = Some(unix as i128 - ts as i128);
        }
        self.at(ts)
    }

    /// The time of day of stream time `ts`, once any frame's was known.
    pub fn at(&self, ts: u64) -> Option<u64> {
        self.offset.and_then(|o| u64::try_from(ts as i128 + o).ok())
    }

    pub fn reset(&mut self) {
        self.offset = None;
    }
}

/// The time of day (Unix ns) at which a live frame was captured: its capture time on the
/// pipeline clock (`base_time` + running time), carried over to the system clock by the
/// distance of both from now.
pub fn capture_unix(clock_now: u64, base_time: u64, frame_running: u64, system_now: u64) -> Option<u64> {
    let captured = base_time.checked_add(frame_running)?;
    system_now.checked_sub(clock_now.saturating_sub(captured))
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: u64 = 40_000_000;

    #[test]
    fn times_come_from_the_buffer_when_it_has_them() {
        let mut c = FrameClock::default();
        let t = c.next(Stamp {
            pts: Some(5 * F),
            stream: Some(2 * F),
            running: Some(7 * F),
            duration: Some(F),
            frame_duration: Some(F / 2),
        });
        assert_eq!(
            t,
            FrameTime {
                ts: 2 * F,
                clock: 7 * F,
                duration: F
            }
        );
    }

    #[test]
    fn missing_times_follow_the_last_frame() {
        let mut c = FrameClock::default();
        // No timestamps at all: frames one fallback duration apart from 0.
        let a = c.next(Stamp::default());
        let b = c.next(Stamp::default());
        assert_eq!((a.ts, a.clock, a.duration), (0, 0, FALLBACK_FRAME_NS));
        assert_eq!((b.ts, b.clock), (FALLBACK_FRAME_NS, FALLBACK_FRAME_NS));
        // The frame rate gives the duration; without it, the gap to the last frame does.
        let d = c.next(Stamp {
            pts: Some(10 * F),
            frame_duration: Some(F),
            ..Stamp::default()
        });
        assert_eq!(d.duration, F);
        let e = c.next(Stamp {
            pts: Some(12 * F),
            ..Stamp::default()
        });
        assert_eq!(e.duration, 2 * F);
        c.reset();
        assert_eq!(c.next(Stamp::default()).clock, 0);
    }

    #[test]
    fn the_clock_never_goes_back() {
        let mut c = FrameClock::default();
        c.next(Stamp {
            running: Some(10 * F),
            duration: Some(F),
            ..Stamp::default()
        });
        let t = c.next(Stamp {
            running: Some(3 * F),
            duration: Some(F),
            ..Stamp::default()
        });
        assert_eq!(t.clock, 11 * F, "placed one frame after the last");
        // A stream time may jump back (a new file): reported as it is.
        let u = c.next(Stamp {
            stream: Some(0),
            running: Some(12 * F),
            ..Stamp::default()
        });
        assert_eq!((u.ts, u.clock), (0, 12 * F));
    }

    #[test]
    fn the_time_of_day_follows_the_frames_that_tell_it() {
        let mut w = WallClock::default();
        assert_eq!(w.frame(0, None), None, "nothing known yet");
        assert_eq!(w.frame(2 * F, Some(1_000 * F)), Some(1_000 * F));
        // Frames and events without a time of day of their own follow the last that had one.
        assert_eq!(w.frame(3 * F, None), Some(1_001 * F));
        assert_eq!(w.at(F), Some(999 * F));
        // A newer reference moves it (a camera clock corrected).
        assert_eq!(w.frame(4 * F, Some(2_000 * F)), Some(2_000 * F));
        w.reset();
        assert_eq!(w.at(F), None);
    }

    #[test]
    fn capture_time_is_carried_to_the_system_clock() {
        // Captured at clock 10 s (base 4 s + running 6 s), now 10.5 s on the clock, and the
        // system clock says 1000 s: captured at 999.5 s.
        let s = 1_000_000_000;
        assert_eq!(
            capture_unix(10 * s + s / 2, 4 * s, 6 * s, 1000 * s),
            Some(999 * s + s / 2)
        );
        assert_eq!(capture_unix(1, u64::MAX, 1, 5), None);
    }

    #[test]
    fn lateness_saturates() {
        assert_eq!(lateness(100, 40, 20), 40);
        assert_eq!(lateness(10, 40, 20), 0);
        assert_eq!(lateness(10, u64::MAX, 1), 0);
    }

    #[test]
    fn a_constant_delay_is_no_backlog_but_a_growing_one_is() {
        let mut g = LatenessGate::default();
        // Every frame 200 ms late: the first sets the floor, none is late.
        for _ in 0..10 {
            assert!(!g.is_late(200_000_000, 0, F));
        }
        // Then the delay grows by 30 ms a frame: late once it exceeds one frame (40 ms) beyond 200.
        let late: Vec<bool> = (1..=3).map(|k| g.is_late(200_000_000 + k * 30_000_000, 0, F)).collect();
        assert_eq!(late, [false, true, true]);
        // An explicit budget replaces the frame duration.
        assert!(!g.is_late(200_000_000 + 90_000_000, 100_000_000, F));
        // A frame earlier than the floor lowers it.
        assert!(!g.is_late(50_000_000, 0, F));
        assert_eq!(g.floor(), Some(50_000_000));
        g.reset();
        assert_eq!(g.floor(), None);
        assert!(
            !g.is_late(10_000_000_000, 0, F),
            "the first frame after a reset is never late"
        );
    }
}
