//! Frame times and lateness, from what a stream's buffers say about themselves.
//!
//! GStreamer-free: the element reads timestamps, the segment and the clock, and this module
//! decides what a frame's time is when a buffer lacks one, and whether a frame arrives so late
//! (a live one against the clock, any against what a sink in time reports) that the analysis is
//! behind.

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

/// The lateness allowed (`max-lateness`, ns): 0 means one frame, `frame` ns.
fn budget_or_frame(budget: u64, frame: u64) -> u64 {
    if budget == 0 {
        frame
    } else {
        budget
    }
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
        lateness - least > budget_or_frame(budget, frame)
    }

    /// The least lateness seen so far.
    pub fn floor(&self) -> Option<u64> {
        self.floor
    }

    pub fn reset(&mut self) {
        self.floor = None;
    }
}

/// What a sink that keeps to the clock last said of a frame (a QoS event): that frame's running
/// time and how late it reached the sink (ns; negative: early). A non-live stream played in
/// time (`sync=true`) has no capture time to be late against: this is how it learns that the
/// analysis is behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SinkReport {
    pub timestamp: u64,
    pub diff: i64,
}

impl SinkReport {
    /// The running time the sink had reached: a frame stamped before it is shown late.
    pub fn reached(&self) -> u64 {
        self.timestamp.saturating_add_signed(self.diff)
    }
}

/// A frame only tracked that reaches its sink later than this (ns), and later than the tracked
/// frame reported just before it, means tracking alone does not catch up: the sink's report goes
/// on upstream, for the decoder to drop frames. Below it, bursts of work (every face new at
/// once, on many streams) are caught up on without a frame lost, where a decoder told of a
/// lateness drops every frame up to twice that far ahead (GStreamer's video decoder base class).
pub const STILL_BEHIND_NS: i64 = 4_000_000_000;

/// Frames remembered for [`SinkQos::report`]: more than are in flight between the element and
/// its sinks (a `queue` of its default second at 60 frames/s holds 60).
const RECENT: usize = 128;

/// A non-live stream's lateness as the sinks report it, and what the element does about it:
/// frames the sinks would show late are only tracked, so the stream catches up with every frame
/// kept, rather than the decoder upstream dropping frames (what a late report passed upstream
/// makes it do). With several sinks (a `tee`), the latest report counts.
#[derive(Debug, Clone)]
pub struct SinkQos {
    report: Option<SinkReport>,
    /// The latest frames begun: running time, and whether only tracked.
    recent: [(u64, bool); RECENT],
    next: usize,
    len: usize,
    /// The lateness of the last report, when it was of a frame only tracked (cleared by a
    /// report of an analysed frame or of one on time: a run of tracked frames starts afresh).
    tracked_diff: Option<i64>,
}

impl Default for SinkQos {
    fn default() -> Self {
        Self {
            report: None,
            recent: [(0, false); RECENT],
            next: 0,
            len: 0,
            tracked_diff: None,
        }
    }
}

impl SinkQos {
    /// A frame at running time `running` begun, `tracked` only or analysed.
    pub fn begun(&mut self, running: u64, tracked: bool) {
        self.recent[self.next] = (running, tracked);
        self.next = (self.next + 1) % RECENT;
        self.len = (self.len + 1).min(RECENT);
    }

    /// Whether the frame at `running` was only tracked, if it is remembered (the newest of
    /// that time, should a time come twice).
    fn tracked(&self, running: u64) -> Option<bool> {
        (1..=self.len)
            .map(|back| self.recent[(self.next + RECENT - back) % RECENT])
            .find(|&(t, _)| t == running)
            .map(|(_, tracked)| tracked)
    }

    /// Takes a sink's report; whether it goes on upstream. A decoder that hears of a late
    /// frame drops the frames of twice the lateness ahead, so a report goes on only when
    /// tracking alone does not catch up: the frame was only tracked (or is not remembered), is
    /// more than [`STILL_BEHIND_NS`] late, and later than the tracked frame reported just
    /// before it (a stream catching up on a backlog gets less late from frame to frame). A
    /// report of a frame on time, or of a late analysed frame (the next frames are tracked
    /// instead), stays here.
    pub fn report(&mut self, report: SinkReport) -> bool {
        self.report = Some(report);
        let tracked = self.tracked(report.timestamp).unwrap_or(true);
        if !tracked || report.diff <= 0 {
            self.tracked_diff = None;
            return false;
        }
        let before = self.tracked_diff.replace(report.diff);
        report.diff > STILL_BEHIND_NS && before.is_some_and(|b| report.diff > b)
    }

    /// Whether a frame at running time `running` will reach the sink more than `budget` ns
    /// (0: one frame, `frame` ns) after its time. Reports say where the sink was, and frames go
    /// on from there, so a stream is tracked only while it is behind: a frame only tracked
    /// reaches the sink early, the next report says so, and analysis resumes.
    pub fn is_late(&self, running: u64, budget: u64, frame: u64) -> bool {
        let Some(report) = self.report else {
            return false;
        };
        report.reached() > running.saturating_add(budget_or_frame(budget, frame))
    }

    pub fn reached(&self) -> Option<u64> {
        self.report.map(|r| r.reached())
    }

    pub fn reset(&mut self) {
        *self = Self::default();
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
    fn a_sink_report_skips_only_frames_later_than_the_budget() {
        const F: u64 = 40_000_000;
        let mut qos = SinkQos::default();
        assert!(!qos.is_late(0, 0, F), "no report: nothing is late");
        // The sink showed the frame at 1 s three frames late: it had reached 1.12 s.
        let late = SinkReport {
            timestamp: 1_000_000_000,
            diff: 3 * F as i64,
        };
        assert_eq!(late.reached(), 1_120_000_000);
        qos.report(late);
        // A frame one frame after the judged one is two frames behind: skipped with the budget
        // of one frame, analysed with a budget of 100 ms.
        assert!(qos.is_late(1_000_000_000 + F, 0, F));
        assert!(!qos.is_late(1_000_000_000 + F, 100_000_000, F));
        // Frames the sink has not reached yet (or reached within a frame) are analysed.
        assert!(!qos.is_late(1_080_000_000, 0, F));
        assert!(!qos.is_late(2_000_000_000, 0, F));
        // Early frames: never late, even at the start of the running time.
        qos.report(SinkReport {
            timestamp: 0,
            diff: -(F as i64),
        });
        assert!(!qos.is_late(0, 0, F));
        qos.reset();
        assert_eq!(qos.reached(), None);
    }

    #[test]
    fn a_late_report_goes_upstream_only_when_tracking_does_not_catch_up() {
        const F: u64 = 40_000_000;
        let mut qos = SinkQos::default();
        for i in 0..200u64 {
            qos.begun(i * F, i % 2 == 1);
        }
        let late = |frame: u64, diff: i64| SinkReport {
            timestamp: frame * F,
            diff,
        };
        const BEHIND: i64 = STILL_BEHIND_NS;
        // Frame 198 was analysed: its lateness, however large, is the element's to catch up on.
        assert!(!qos.report(late(198, 5 * BEHIND)));
        // Frames 195, 197 and 199 were only tracked. A first one very late: nothing to compare
        // with yet (the burst that made it late may be over).
        assert!(!qos.report(late(195, BEHIND + 1)));
        // Later still on the next tracked frame: tracking does not catch up, upstream must drop.
        assert!(qos.report(late(197, BEHIND + 2)));
        // Less late than before: catching up, however late.
        assert!(!qos.report(late(199, BEHIND + 1)));
        // A report of an analysed frame or of one on time ends the run of tracked frames: the
        // next very late tracked frame is compared with nothing.
        assert!(!qos.report(late(198, 1)));
        assert!(!qos.report(late(199, BEHIND + 5)));
        assert!(qos.report(late(199, BEHIND + 6)));
        assert!(!qos.report(late(199, -1)));
        assert!(!qos.report(late(199, BEHIND + 7)));
        // A frame this element no longer remembers counts as tracked: only a backlog that grows
        // past STILL_BEHIND_NS goes upstream, never a little lateness.
        assert!(!qos.report(late(2, 1)));
        assert!(!qos.report(late(2, 2)));
        assert!(qos.report(late(3, BEHIND + 1)));
    }

    #[test]
    fn the_newest_frame_of_a_time_counts() {
        let mut qos = SinkQos::default();
        qos.begun(5, false);
        qos.begun(5, true);
        let late = SinkReport {
            timestamp: 5,
            diff: STILL_BEHIND_NS + 1,
        };
        assert!(!qos.report(late));
        assert!(qos.report(SinkReport {
            diff: STILL_BEHIND_NS + 2,
            ..late
        }));
        // Frames wrap around the ring: the oldest are forgotten.
        let mut qos = SinkQos::default();
        for t in 0..(RECENT as u64 + 10) {
            qos.begun(t, false);
        }
        assert_eq!(qos.tracked(9), None);
        assert_eq!(qos.tracked(10), Some(false));
        assert_eq!(qos.tracked(RECENT as u64 + 9), Some(false));
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
