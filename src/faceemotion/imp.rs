//! The element: maps frames, drives the stream's analysis, masks and draws, writes metadata.

use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::subclass::prelude::*;

use super::frame::{self, Mapped};
use super::meta::{self, ModelNames};
use super::settings::{self, role_index, FrameSettings, Pipelining, Settings, ROLES};
use crate::analysis::{Analyzer, ModelConfig, NonFinite};
use crate::draw::Painter;
use crate::face::FrameTime;
use crate::image::{PixelFormat, YuvMatrix};
use crate::mask::Masker;
use crate::runtime::{self, ModelError, ModelRole};
use crate::stream::{FrameResult, Stream, StreamParams, Ticket};
use crate::timing::{self, FrameClock, LatenessGate, SinkQos, SinkReport, Stamp, WallClock};
use crate::tracker::{TrackEvent, TrackEventKind};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "faceemotion",
        gst::DebugColorFlags::empty(),
        Some("Face emotion and gender analysis"),
    )
});

struct State {
    stream: Stream,
    names: ModelNames,
    painter: Painter,
    masker: Masker,
    /// Memory for copies of frames held elsewhere that are drawn on.
    spare: frame::Spare,
    info: Option<gst_video::VideoInfo>,
    format: Option<PixelFormat>,
    yuv: YuvMatrix,
    /// Warnings and errors of the streaming thread, to be posted once the lock is released.
    outbox: Outbox,
    /// The settings generation each model role was last loaded (or refused) for.
    generations: [u64; 4],
    /// The `zones` generation the stream has.
    zones_generation: u64,
    /// With pipelining, the frame whose detection has started and whose classification waits
    /// for the next frame to arrive.
    pending: Option<Pending>,
    /// The frame being finished; its room is reused from frame to frame.
    result: FrameResult,
    /// Track events not yet posted and sent downstream.
    events: Vec<TrackEvent>,
    nonfinite: Vec<NonFinite>,
    /// An error from pushing a held frame ahead of an event: the next frame returns it.
    flow_error: Option<gst::FlowError>,
    /// The times of the frames, for frames that come without a duration or time.
    clock: FrameClock,
    /// Which live frames arrive too late to be analysed.
    lateness: LatenessGate,
    /// The time of day of the frames and events.
    wall: WallClock,
    /// The recording's start (Unix ns) from upstream's date tag (a file's creation date).
    tag_start: Option<u64>,
    /// This element's detector phase among the elements of its pipeline.
    _phase: super::phase::Phase,
}

/// Messages made while the state is locked, posted once it is not: a bus sync handler runs on
/// the posting thread, and one that calls into the element (a query, a property) must not find
/// the lock taken by its own thread.
#[derive(Default)]
struct Outbox {
    /// Warnings already posted, so that a persistent one is not repeated per frame.
    warned: Vec<String>,
    messages: Vec<gst::Message>,
}

impl Outbox {
    fn take(&mut self) -> Vec<gst::Message> {
        std::mem::take(&mut self.messages)
    }
}

/// A frame between [`Stream::begin`] and [`Stream::finish`].
struct Pending {
    frame: Mapped,
    format: PixelFormat,
    yuv: YuvMatrix,
    ticket: Ticket,
    /// The parameters the detection started with, so that both halves agree.
    params: StreamParams,
    /// The frame's time of day (Unix ns), when something tells it.
    unix: Option<u64>,
    /// Time spent on the frame so far.
    busy: Duration,
}

/// A frame ready to go downstream, with what the bus and downstream hear of it.
struct Finished {
    buffer: gst::Buffer,
    /// The frame's bus message, built with the faces at hand and posted with no lock held.
    message: Option<gst::Message>,
    /// Track events, each posted on the bus (unless messages are off) and sent downstream
    /// ahead of the buffer.
    tracks: Vec<gst::Structure>,
    post_tracks: bool,
    faces: usize,
    skipped: bool,
    busy: Duration,
    model: Duration,
    detector_runs: u64,
    faces_described: u64,
    emotion_classified: u64,
    gender_classified: u64,
}

impl Finished {
    /// A frame that goes downstream as it came.
    fn passed(buffer: gst::Buffer) -> Self {
        Self {
            buffer,
            message: None,
            tracks: Vec::new(),
            post_tracks: false,
            faces: 0,
            skipped: false,
            busy: Default::default(),
            model: Default::default(),
            detector_runs: 0,
            faces_described: 0,
            emotion_classified: 0,
            gender_classified: 0,
        }
    }
}

// Boxing the mapped frame would cost an allocation per frame; the value is moved once or twice.
#[allow(clippy::large_enum_variant)]
enum Begun {
    Started(Pending),
    /// Not analysable (a warning said why): goes downstream as it came.
    Passed(gst::Buffer),
}

/// What a frame adds to the counters once it has left.
struct Counts {
    faces: u64,
    skipped: u64,
    busy: Duration,
    model: Duration,
    detector_runs: u64,
    faces_described: u64,
    emotion_classified: u64,
    gender_classified: u64,
}

/// Counters since start, for the `stats` property.
#[derive(Debug, Default, Clone, Copy)]
struct Stats {
    frames: u64,
    faces: u64,
    people: u64,
    /// Of those, the first visits of their visitors, and the returns (recognition on).
    visitors: u64,
    returns: u64,
    skipped: u64,
    processing: Duration,
    model: Duration,
    detector_runs: u64,
    faces_described: u64,
    emotion_classified: u64,
    gender_classified: u64,
}

/// What the latency query told of upstream: live or not, and its minimum latency.
#[derive(Debug, Clone, Copy)]
struct Upstream {
    live: bool,
    latency: gst::ClockTime,
}

#[derive(Default)]
pub struct FaceEmotion {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
    stats: Mutex<Stats>,
    /// Upstream's liveness and latency, once asked (pipelining=auto does not hold frames of a
    /// live source; late frames of a live source are only tracked).
    upstream: Mutex<Option<Upstream>>,
    /// What a sink in time last reported (QoS) of a frame: how far behind the stream is, when
    /// upstream is not live.
    sink_qos: Mutex<SinkQos>,
    /// The top-level pipeline, from the detector phase taken at start: whose bus posts take turns.
    pipeline: std::sync::atomic::AtomicUsize,
    /// Set once a negotiation failure has been explained, so it is said once.
    negotiation_reported: Mutex<bool>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl FaceEmotion {
    fn load(&self, config: ModelConfig) -> Result<Analyzer, ModelError> {
        gst::debug!(CAT, imp = self, "loading models: {config:?}");
        let analyzer = Analyzer::new(config)?;
        gst::info!(
            CAT,
            imp = self,
            "models loaded: detector {:?} from {}",
            analyzer.detector_kind(),
            analyzer.config().detector.display()
        );
        Ok(analyzer)
    }

    fn names(analyzer: &Analyzer) -> ModelNames {
        let c = analyzer.config();
        ModelNames::new(&c.emotion, &c.gender)
    }

    /// A warning for the bus, once per message; takes only the outbox, so the streaming thread
    /// can call it while it borrows other parts of the state.
    fn warn_once(&self, out: &mut Outbox, msg: String, debug: &str) {
        gst::warning!(CAT, imp = self, "{msg}");
        if !out.warned.contains(&msg) {
            self.warn(out, gst::StreamError::Failed, &msg, debug);
            out.warned.push(msg);
        }
    }

    fn warn<T: gst::MessageErrorDomain>(&self, out: &mut Outbox, kind: T, msg: &str, debug: &str) {
        let m = gst::message::Warning::builder(kind, msg)
            .debug(debug)
            .src(&*self.obj())
            .build();
        out.messages.push(m);
    }

    fn post(&self, messages: Vec<gst::Message>) {
        for m in messages {
            self.post_one(m);
        }
    }

    /// Posts on the bus in turn with the other elements of the pipeline ([`super::post`]).
    fn post_one(&self, message: gst::Message) {
        let pipeline = self.pipeline.load(std::sync::atomic::Ordering::Relaxed);
        super::post::post(&*self.obj(), pipeline, message);
    }

    /// Loads again each model role whose properties were set since it was last loaded: each
    /// on its own, so that one bad path neither blocks the others nor hides them. A role that
    /// fails keeps its models and says why; a role that changes forgets the labels its old
    /// models gave.
    fn reload(&self, state: &mut State, generations: [u64; 4]) {
        let config = lock(&self.settings).model_config();
        for role in ROLES {
            let i = role_index(role);
            if state.generations[i] == generations[i] {
                continue;
            }
            state.generations[i] = generations[i];
            match state.stream.analyzer_mut().replace(role, &config) {
                Ok(()) => {
                    gst::info!(CAT, imp = self, "{role} model(s) now {}", config.describe(role));
                    state.stream.forget(role);
                    state.names = Self::names(state.stream.analyzer());
                }
                // A recording must not stop because of a typo made while it runs: keep the
                // models that work and say why the new ones were refused.
                Err(e) => {
                    let debug = format!(
                        "new {} setting refused; still using {}",
                        role.property(),
                        state.stream.analyzer().config().describe(role)
                    );
                    gst::warning!(CAT, imp = self, "{e}: {debug}");
                    self.warn(&mut state.outbox, gst::LibraryError::Settings, &e.to_string(), &debug);
                }
            }
        }
    }

    fn upstream(&self) -> Upstream {
        if let Some(u) = *lock(&self.upstream) {
            return u;
        }
        let mut q = gst::query::Latency::new();
        let u = if self.obj().sink_pad().peer_query(&mut q) {
            let (live, min, _) = q.result();
            Upstream { live, latency: min }
        } else {
            Upstream {
                live: false,
                latency: gst::ClockTime::ZERO,
            }
        };
        gst::info!(
            CAT,
            imp = self,
            "upstream is {}live (latency {}): pipelining=auto {} frames",
            if u.live { "" } else { "not " },
            u.latency,
            if u.live { "does not hold" } else { "holds" }
        );
        *lock(&self.upstream) = Some(u);
        u
    }

    /// The frame's time (stream time, running time, duration), with fallbacks for buffers
    /// without timestamps, and the running time of its timestamp when it has one.
    fn frame_time(&self, state: &mut State, buf: &gst::BufferRef) -> (FrameTime, Option<gst::ClockTime>) {
        let segment = self.obj().segment();
        let segment = segment.downcast_ref::<gst::ClockTime>();
        let pts = buf.pts();
        let running = pts.and_then(|p| segment.and_then(|s| s.to_running_time(p)));
        let frame_duration = state
            .info
            .as_ref()
            .map(|i| i.fps())
            .filter(|f| f.numer() > 0)
            .and_then(|f| gst::ClockTime::SECOND.mul_div_floor(f.denom() as u64, f.numer() as u64));
        let ns = |t: Option<gst::ClockTime>| t.map(|t| t.nseconds());
        let time = state.clock.next(Stamp {
            pts: ns(pts),
            stream: ns(pts.and_then(|p| segment.and_then(|s| s.to_stream_time(p)))),
            running: ns(running),
            duration: ns(buf.duration()),
            frame_duration: ns(frame_duration),
        });
        (time, running)
    }

    /// Whether a frame arrives so late (the element is behind) that it must only be tracked: a
    /// live source's against the clock ([`LatenessGate`]), another's against what the sinks
    /// that keep to the clock report ([`SinkQos`]; sinks with `sync=false` report nothing,
    /// so a file analysed as fast as it goes is analysed in full).
    fn is_late(
        &self,
        gate: &mut LatenessGate,
        up: Upstream,
        running: Option<gst::ClockTime>,
        per_frame: &FrameSettings,
        frame: u64,
    ) -> bool {
        let Some(budget) = per_frame.max_lateness else {
            return false;
        };
        if !up.live {
            return running.is_some_and(|rt| self.late_for_sinks(rt, budget, frame));
        }
        let obj = self.obj();
        let (Some(clock), Some(base), Some(rt)) = (obj.clock(), obj.base_time(), running) else {
            return false;
        };
        let now = clock.time().saturating_sub(base);
        let late = timing::lateness(now.nseconds(), rt.nseconds(), up.latency.nseconds());
        let skip = gate.is_late(late, budget, frame);
        gst::trace!(
            CAT,
            imp = self,
            "frame at running time {rt} arrives {late} ns late, {:?} ns at least (may be {budget} more, 0: a frame): {}",
            gate.floor(),
            if skip { "only tracked" } else { "analysed" }
        );
        skip
    }

    /// Whether a frame of a source that is not live, at running time `rt`, will reach the sinks
    /// in time more than `budget` late ([`SinkQos`]); remembers the frame for their reports.
    fn late_for_sinks(&self, rt: gst::ClockTime, budget: u64, frame: u64) -> bool {
        let mut qos = lock(&self.sink_qos);
        let skip = qos.is_late(rt.nseconds(), budget, frame);
        qos.begun(rt.nseconds(), skip);
        gst::trace!(
            CAT,
            imp = self,
            "frame at running time {rt}: the sink had reached {:?} ns (may be {budget} more, 0: a frame): {}",
            qos.reached(),
            if skip { "only tracked" } else { "analysed" }
        );
        skip
    }

    /// A frame's time of day, when something tells it: the buffer's reference timestamp (a
    /// camera's NTP time), else on a live source its capture time on the pipeline clock carried
    /// to the system clock, else the recording's start (`wall-clock-start`, or the file's
    /// creation date) plus its stream time.
    fn time_of_day(
        &self,
        state: &State,
        buf: &gst::BufferRef,
        up: Upstream,
        running: Option<gst::ClockTime>,
        per_frame: &FrameSettings,
        ts: u64,
    ) -> Option<u64> {
        if let Some(unix) = crate::walltime::unix_ns(buf) {
            return Some(unix);
        }
        let start = per_frame.wall_clock_start;
        if up.live && start.is_none() {
            let obj = self.obj();
            let (clock, base, rt) = (obj.clock()?, obj.base_time()?, running?);
            let system = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .ok()?
                .as_nanos() as u64;
            return timing::capture_unix(clock.time().nseconds(), base.nseconds(), rt.nseconds(), system);
        }
        start.or(state.tag_start).map(|s| s.saturating_add(ts))
    }

    /// Maps the frame for reading and starts its analysis (the detector, on the inference
    /// pool). It is mapped for writing only when it is drawn on or masked, at its finish: a
    /// frame the decoder still holds is then copied once it leaves, not held as a copy while
    /// the next one is analysed.
    fn begin_frame(
        &self,
        state: &mut State,
        per_frame: &FrameSettings,
        up: Upstream,
        buf: gst::Buffer,
    ) -> Result<Begun, gst::FlowError> {
        let started = std::time::Instant::now();
        let (time, running) = self.frame_time(state, &buf);
        let skip = self.is_late(&mut state.lateness, up, running, per_frame, time.duration);
        let unix = self.time_of_day(state, &buf, up, running, per_frame, time.ts);
        let (Some(info), Some(format)) = (state.info.as_ref(), state.format) else {
            return Err(gst::FlowError::NotNegotiated);
        };
        let frame = match Mapped::readable(buf, info) {
            Ok(f) => f,
            Err(_) => {
                let m = gst::message::Error::builder(gst::CoreError::Failed, "could not map the buffer")
                    .src(&*self.obj())
                    .build();
                state.outbox.messages.push(m);
                return Err(gst::FlowError::Error);
            }
        };
        let yuv = state.yuv;
        let params = per_frame.params;
        let ticket = match frame.view(format, yuv) {
            Ok(img) => state.stream.begin(&img, &params, time, skip).map_err(|e| e.to_string()),
            Err(e) => Err(format!("unusable frame: {e}")),
        };
        match ticket {
            Ok(ticket) => Ok(Begun::Started(Pending {
                frame,
                format,
                yuv,
                ticket,
                params,
                unix,
                busy: started.elapsed(),
            })),
            Err(msg) => {
                self.warn_once(&mut state.outbox, msg, "the frame was passed on unanalysed");
                Ok(Begun::Passed(frame.into_buffer()))
            }
        }
    }

    /// Waits for the frame's faces, classifies them, masks and draws, and attaches the metadata.
    /// Masks and draws on the frame. It is mapped for writing only now that the analysis has
    /// read it, and only when there is something to draw or mask (a frame without faces or
    /// zones is not copied). `drawing` is `None` for a frame that is only masked, else the
    /// zones to draw with the faces.
    fn paint(
        &self,
        state: &mut State,
        per_frame: &FrameSettings,
        frame: Mapped,
        (format, yuv): (PixelFormat, YuvMatrix),
        result: &FrameResult,
        drawing: Option<Option<&crate::zone::ZoneSet>>,
    ) -> gst::Buffer {
        let masking = per_frame.mask.is_on() && !result.masks.is_empty();
        let unmappable = |out: &mut Outbox| {
            let consequence = if masking {
                "it was passed on UNMASKED"
            } else {
                "the frame was not drawn on"
            };
            self.warn_once(out, "the frame could not be mapped for writing".into(), consequence);
        };
        let writable = match (frame, state.info.as_ref()) {
            (Mapped::Readable(f), Some(info)) => Mapped::writable(f.into_buffer(), info, &state.spare),
            (frame, _) => Ok(frame),
        };
        let mut frame = match writable {
            Ok(frame) => frame,
            Err(buf) => {
                unmappable(&mut state.outbox);
                return buf;
            }
        };
        match frame.view_mut(format, yuv) {
            Some(Ok(mut img)) => {
                if masking {
                    state.masker.mask(&mut img, &result.masks, &per_frame.mask);
                }
                if let Some(zones) = drawing {
                    if let Err(e) = state.painter.draw_with_zones(&mut img, &result.faces, zones) {
                        self.warn_once(&mut state.outbox, e.to_string(), "the overlay was not drawn");
                    }
                }
            }
            Some(Err(e)) => self.warn_once(&mut state.outbox, e.to_string(), "the frame was not drawn on"),
            None => unmappable(&mut state.outbox),
        }
        frame.into_buffer()
    }

    fn finish_frame(&self, state: &mut State, per_frame: &FrameSettings, p: Pending) -> Finished {
        let started = std::time::Instant::now();
        let Pending {
            frame,
            format,
            yuv,
            ticket,
            params,
            unix,
            busy,
        } = p;
        let unix = state.wall.frame(ticket.time().ts, unix);
        let mut result = std::mem::take(&mut state.result);
        let analysed = match frame.view(format, yuv) {
            Ok(img) => state.stream.finish(&img, &params, ticket, &mut result),
            Err(e) => {
                // The detector job, if any, still has to be collected.
                state.stream.abandon(ticket);
                result.faces.clear();
                result.masks.clear();
                Err(ModelError::Image(format!("unusable frame: {e}")))
            }
        };
        if let Err(e) = analysed {
            if matches!(e, ModelError::Worker(_)) {
                // The inference pool stopped: load the detector again on the next frame.
                state.generations[role_index(ModelRole::Detector)] = u64::MAX;
            }
            self.warn_once(
                &mut state.outbox,
                e.to_string(),
                "the faces known from earlier frames were carried on",
            );
        }
        state.stream.analyzer_mut().take_nonfinite(&mut state.nonfinite);
        for n in std::mem::take(&mut state.nonfinite) {
            let msg = format!(
                "the {} model {} gives NaN or infinite values: those answers are ignored (is it the model the {} property expects?)",
                n.role,
                n.path.display(),
                n.role.property()
            );
            self.warn_once(
                &mut state.outbox,
                msg,
                "no label is given where the model's answer is not a number",
            );
        }
        let zones = state.stream.zones().clone();
        let draw_zones = per_frame.draw_zones && !zones.is_empty();
        let wants_drawing = per_frame.draw && (!result.faces.is_empty() || draw_zones);
        let wants_mask = per_frame.mask.is_on() && !result.masks.is_empty();
        let (width, height) = frame.size();
        let mut buffer = if wants_drawing || wants_mask {
            let drawing = wants_drawing.then_some(draw_zones.then_some(&*zones));
            self.paint(state, per_frame, frame, (format, yuv), &result, drawing)
        } else {
            frame.into_buffer()
        };
        gst::log!(CAT, imp = self, "pts {:?}: {} faces", buffer.pts(), result.faces.len());
        for f in &result.faces {
            gst::trace!(CAT, imp = self, "face {:?}", f);
        }
        // Mapped for writing, the frame held the only reference, so this does not copy; mapped
        // for reading, a buffer the decoder still holds is copied shallowly (memory shared).
        if !result.faces.is_empty() {
            meta::add_face_metas(buffer.make_mut(), &result.faces, width, height, &state.names, &zones);
        }
        if let Some(unix) = unix {
            crate::walltime::attach(buffer.make_mut(), unix);
        }
        let message = per_frame.post_messages.then(|| {
            let segment = self.obj().segment();
            let segment = segment.downcast_ref::<gst::ClockTime>();
            let pts = buffer.pts();
            let s = meta::frame_message(
                &result.faces,
                &zones,
                pts,
                segment.and_then(|s| s.to_stream_time(pts?)),
                segment.and_then(|s| s.to_running_time(pts?)),
                unix,
            );
            gst::message::Element::builder(s).src(&*self.obj()).build()
        });
        state.stream.take_events(&mut state.events);
        let tracks = self.track_structures(&mut state.events, &state.wall);
        let n_faces = result.faces.len();
        state.result = result;
        let (detector_work, waited) = state.stream.analyzer_mut().take_detector_times();
        let classified = state.stream.take_classified();
        Finished {
            buffer,
            message,
            tracks,
            post_tracks: per_frame.post_messages,
            faces: n_faces,
            skipped: ticket.skipped(),
            busy: (busy + started.elapsed()).saturating_sub(waited) + detector_work,
            model: state.stream.analyzer_mut().take_model_time(),
            detector_runs: state.stream.analyzer_mut().take_detector_runs(),
            faces_described: state.stream.analyzer_mut().take_described_faces(),
            emotion_classified: classified.0,
            gender_classified: classified.1,
        }
    }

    /// The track events as structures, counting the people who appeared; empties `events`.
    fn track_structures(&self, events: &mut Vec<TrackEvent>, wall: &WallClock) -> Vec<gst::Structure> {
        if events.is_empty() {
            return Vec::new();
        }
        let appeared = || events.iter().filter(|e| e.kind == TrackEventKind::Appeared);
        {
            let mut stats = lock(&self.stats);
            stats.people += appeared().count() as u64;
            let visits = || appeared().filter_map(|e| e.visit);
            // A track that goes on with an open visit is neither someone new nor a return.
            let visits = || visits().filter(|v| !v.continued);
            stats.visitors += visits().filter(|v| !v.returning()).count() as u64;
            stats.returns += visits().filter(|v| v.returning()).count() as u64;
        }
        for e in events.iter() {
            gst::debug!(CAT, imp = self, "person {} {}: {:?}", e.id, e.kind.name(), e.person);
        }
        events.drain(..).map(|e| meta::track_event(&e, wall)).collect()
    }

    /// Posts and sends downstream the track events; returns false if downstream refused them.
    fn send_tracks(&self, tracks: Vec<gst::Structure>, post: bool) {
        for s in tracks {
            if post {
                let m = gst::message::Element::builder(s.clone()).src(&*self.obj()).build();
                self.post_one(m);
            }
            // Downstream elements that do not know the event pass it on or drop it; neither is
            // an error for the video.
            let _ = self.obj().src_pad().push_event(gst::event::CustomDownstream::new(s));
        }
    }

    /// Posts the frame's messages and sends its track events (ahead of the buffer); returns the
    /// buffer to push and what to count once it has left.
    fn announce(&self, f: Finished) -> (gst::Buffer, Counts) {
        if let Some(m) = f.message {
            self.post_one(m);
        }
        self.send_tracks(f.tracks, f.post_tracks);
        let counts = Counts {
            faces: f.faces as u64,
            skipped: f.skipped as u64,
            busy: f.busy,
            model: f.model,
            detector_runs: f.detector_runs,
            faces_described: f.faces_described,
            emotion_classified: f.emotion_classified,
            gender_classified: f.gender_classified,
        };
        (f.buffer, counts)
    }

    /// Counts a frame that left the element.
    fn count(&self, c: Counts) {
        let mut st = lock(&self.stats);
        st.frames += 1;
        st.faces += c.faces;
        st.skipped += c.skipped;
        st.model += c.model;
        st.processing += c.busy;
        st.detector_runs += c.detector_runs;
        st.faces_described += c.faces_described;
        st.emotion_classified += c.emotion_classified;
        st.gender_classified += c.gender_classified;
    }

    /// Finishes the held frame, if any, and sends it downstream.
    fn drain(&self) -> Result<gst::FlowSuccess, gst::FlowError> {
        let per_frame = lock(&self.settings).per_frame();
        let (finished, outbox) = {
            let mut guard = lock(&self.state);
            let Some(state) = guard.as_mut() else {
                return Ok(gst::FlowSuccess::Ok);
            };
            match state.pending.take() {
                Some(p) => (self.finish_frame(state, &per_frame, p), state.outbox.take()),
                None => return Ok(gst::FlowSuccess::Ok),
            }
        };
        gst::debug!(CAT, imp = self, "pushing the held frame");
        let (buf, counts) = self.announce(finished);
        let pushed = self.obj().src_pad().push(buf);
        if pushed.is_ok() {
            self.count(counts);
        }
        self.post(outbox);
        pushed
    }

    /// A recording's creation date (a container's `datetime` tag, in UTC) is the time of day of
    /// its start, unless `wall-clock-start` says otherwise.
    fn take_date(&self, tags: &gst::TagListRef) {
        let Some(date) = tags.get::<gst::tags::DateTime>() else {
            return;
        };
        let date = date.get();
        let Ok(g) = date.to_g_date_time() else { return };
        let unix = g
            .to_unix()
            .checked_mul(1_000_000_000)
            .and_then(|s| s.checked_add(g.microsecond() as i64 * 1000));
        if let (Some(unix), Some(state)) = (unix.and_then(|u| u64::try_from(u).ok()), lock(&self.state).as_mut()) {
            gst::info!(
                CAT,
                imp = self,
                "the recording started at {} (its date tag)",
                crate::schema::utc(unix)
            );
            state.tag_start = Some(unix);
        }
    }

    /// Ends every open track (the stream ended): their `left` events go out now.
    fn end_tracks(&self) {
        let (tracks, post) = {
            let mut guard = lock(&self.state);
            let Some(state) = guard.as_mut() else {
                return;
            };
            state.stream.end();
            state.stream.take_events(&mut state.events);
            (
                self.track_structures(&mut state.events, &state.wall),
                lock(&self.settings).post_messages,
            )
        };
        self.send_tracks(tracks, post);
    }
}

#[glib::object_subclass]
impl ObjectSubclass for FaceEmotion {
    const NAME: &'static str = "GstFaceEmotion";
    type Type = super::FaceEmotion;
    type ParentType = gst_video::VideoFilter;
}

impl ObjectImpl for FaceEmotion {
    fn constructed(&self) {
        self.parent_constructed();
        // GstVideoFilter turns on the base class's QoS, which drops the frames a sink reported
        // late before the element sees them: not counted, not tracked, not masked. Late frames
        // are the element's to handle (only tracked); `qos=true` brings the dropping back.
        self.obj().set_qos(false);
    }

    fn properties() -> &'static [glib::ParamSpec] {
        settings::properties()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let set = lock(&self.settings).set(pspec.name(), value);
        match set {
            Ok(_) => gst::debug!(CAT, imp = self, "{} set to {:?}", pspec.name(), value),
            // A property cannot refuse a value: the element says why and keeps the old one.
            Err(why) => gst::element_imp_warning!(
                self,
                gst::LibraryError::Settings,
                ("{}", why),
                ["the setting keeps its value"]
            ),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        if pspec.name() == "stats" {
            let st = *lock(&self.stats);
            return gst::Structure::builder("faceemotion-stats")
                .field("frames", st.frames)
                .field("faces", st.faces)
                .field("people", st.people)
                .field("visitors", st.visitors)
                .field("returns", st.returns)
                .field("skipped", st.skipped)
                .field("processing-time", st.processing.as_nanos() as u64)
                .field("model-time", st.model.as_nanos() as u64)
                .field("detector-runs", st.detector_runs)
                .field("faces-described", st.faces_described)
                .field("emotion-classified", st.emotion_classified)
                .field("gender-classified", st.gender_classified)
                .build()
                .to_value();
        }
        lock(&self.settings).get(pspec.name())
    }
}

impl GstObjectImpl for FaceEmotion {}

impl ElementImpl for FaceEmotion {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Face emotion and gender",
                "Filter/Analyzer/Video",
                "Finds and tracks faces, classifies emotion (FER-2013 classes), gender and age per person, \
                 attaches them as GstVideoRegionOfInterestMeta, reports people appearing and leaving, and \
                 draws or masks the faces",
                "faceemotion developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst_video::VideoCapsBuilder::new()
                .format_list(frame::FORMATS.iter().map(|(v, _)| *v))
                .build();
            vec![
                gst::PadTemplate::new("src", gst::PadDirection::Src, gst::PadPresence::Always, &caps).unwrap(),
                gst::PadTemplate::new("sink", gst::PadDirection::Sink, gst::PadPresence::Always, &caps).unwrap(),
            ]
        });
        TEMPLATES.as_ref()
    }
}

impl BaseTransformImpl for FaceEmotion {
    const MODE: gst_base::subclass::BaseTransformMode = gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    /// With pipelining, a frame stays in the element while the next one is analysed: one
    /// buffer more than downstream asks for. A decoder with a fixed number of output buffers
    /// (a v4l2 m2m decoder) sizes its pool from this answer, and without the extra one it would
    /// wait for a buffer the element only gives back when the next frame comes. When nobody
    /// downstream answers (fakesink, appsink), the element answers for itself.
    fn propose_allocation(
        &self,
        decide_query: Option<&gst::query::Allocation>,
        query: &mut gst::query::Allocation,
    ) -> Result<(), gst::LoggableError> {
        let answered = self.parent_propose_allocation(decide_query, query);
        let held = u32::from(lock(&self.settings).pipelining != Pipelining::Off);
        if held == 0 {
            return answered;
        }
        let pools: Vec<_> = query.allocation_pools().collect();
        if pools.is_empty() {
            let size = query
                .caps()
                .and_then(|c| gst_video::VideoInfo::from_caps(c).ok())
                .map_or(0, |i| i.size() as u32);
            query.add_allocation_pool(None::<&gst::BufferPool>, size, held, 0);
        }
        for (i, (pool, size, min, max)) in pools.into_iter().enumerate() {
            let max = if max == 0 { 0 } else { max.saturating_add(held) };
            query.set_nth_allocation_pool(i as u32, pool.as_ref(), size, min.saturating_add(held), max);
        }
        gst::debug!(
            CAT,
            imp = self,
            "allocation: {} buffer(s) more for the held frame",
            held
        );
        Ok(())
    }

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let (config, generations, refused) = {
            let s = lock(&self.settings);
            (s.model_config(), s.generations, s.refused.values().next().cloned())
        };
        if let Some(why) = refused {
            return Err(gst::error_msg!(gst::LibraryError::Settings, ("{}", why)));
        }
        if let (Some(asked), Some(loaded)) = (config.ort_library.as_ref(), runtime::loaded_library()) {
            let asked = std::path::absolute(asked).unwrap_or_else(|_| asked.into());
            if asked != loaded {
                gst::element_imp_warning!(
                    self,
                    gst::LibraryError::Settings,
                    (
                        "ort-library {} is ignored: this process already loaded ONNX Runtime from {}, and a \
                         process can hold only one",
                        asked.display(),
                        loaded.display()
                    ),
                    ["set ort-library (or ORT_DYLIB_PATH) before the first faceemotion of the process starts"]
                );
            }
        }
        if let Some(workers) = crate::analysis::pool_workers() {
            if config.threads != 0 && config.threads != workers {
                gst::element_imp_warning!(
                    self,
                    gst::LibraryError::Settings,
                    (
                        "threads={} is ignored: this process's inference pool, which every faceemotion shares, \
                         already runs {} workers",
                        config.threads,
                        workers
                    ),
                    ["set threads on the first faceemotion of the process to start"]
                );
            }
        }
        let analyzer = self.load(config).map_err(|e| {
            let kind = match e {
                ModelError::Runtime(_) => gst::LibraryError::Init,
                ModelError::NotFound { .. } | ModelError::NotAFile { .. } => gst::LibraryError::Settings,
                _ => gst::LibraryError::Failed,
            };
            gst::error_msg!(kind, ("{}", e))
        })?;
        *lock(&self.stats) = Stats::default();
        let phase = super::phase::take(self.obj().upcast_ref());
        self.pipeline
            .store(phase.pipeline(), std::sync::atomic::Ordering::Relaxed);
        let mut stream = Stream::new(analyzer);
        stream.set_phase(phase.index);
        gst::debug!(CAT, imp = self, "detector phase {} in its pipeline", phase.index);
        *lock(&self.state) = Some(State {
            names: Self::names(stream.analyzer()),
            stream,
            painter: Painter::new(),
            masker: Masker::new(),
            spare: frame::Spare::default(),
            info: None,
            format: None,
            yuv: YuvMatrix::BT601,
            outbox: Outbox::default(),
            generations,
            zones_generation: u64::MAX,
            pending: None,
            result: FrameResult::default(),
            events: Vec::new(),
            nonfinite: Vec::new(),
            flow_error: None,
            clock: FrameClock::default(),
            lateness: LatenessGate::default(),
            wall: WallClock::default(),
            tag_start: None,
            _phase: phase,
        });
        *lock(&self.upstream) = None;
        lock(&self.sink_qos).reset();
        *lock(&self.negotiation_reported) = false;
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        // Stopped without an EOS: the open tracks still end, on the bus at least.
        let state = lock(&self.state).take();
        if let Some(mut state) = state {
            if let Some(p) = state.pending.take() {
                state.stream.abandon(p.ticket);
            }
            state.stream.end();
            state.stream.take_events(&mut state.events);
            if lock(&self.settings).post_messages {
                for s in self.track_structures(&mut state.events, &state.wall) {
                    let m = gst::message::Element::builder(s).src(&*self.obj()).build();
                    self.post_one(m);
                }
            }
        }
        Ok(())
    }

    fn src_event(&self, event: gst::Event) -> bool {
        if let gst::EventView::Qos(q) = event.view() {
            let (kind, _, diff, timestamp) = q.get();
            // A throttling sink asks for fewer frames, not for catching up: that goes upstream.
            // With `qos=true` the base class drops late frames, as GStreamer's filters do.
            let max_lateness = lock(&self.settings).max_lateness_ms;
            let absorbing =
                kind != gst::QOSType::Throttle && max_lateness >= 0 && !self.obj().is_qos() && !self.upstream().live;
            let timestamp = timestamp.filter(|_| absorbing);
            if let Some(timestamp) = timestamp {
                let report = SinkReport {
                    timestamp: timestamp.nseconds(),
                    diff,
                };
                if !lock(&self.sink_qos).report(report) {
                    gst::log!(CAT, imp = self, "{report:?}: kept here, the element catches up itself");
                    return true;
                }
                gst::debug!(
                    CAT,
                    imp = self,
                    "{report:?}: still behind while only tracking, passed upstream"
                );
            }
        }
        self.parent_src_event(event)
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        match event.view() {
            gst::EventView::FlushStop(_) => {
                // After a seek the faces on screen are not those the tracker knows, and a held
                // frame belongs to the flushed data. The tracks' `left` events go out with the
                // next frame.
                if let Some(state) = lock(&self.state).as_mut() {
                    if let Some(p) = state.pending.take() {
                        state.stream.abandon(p.ticket);
                    }
                    state.stream.restart();
                    state.stream.take_events(&mut state.events);
                    state.flow_error = None;
                    state.clock.reset();
                    state.lateness.reset();
                }
                lock(&self.sink_qos).reset();
            }
            // A held frame came before this event (EOS, caps, segment, ...): it goes first.
            _ if event.is_serialized() => {
                if let Err(e) = self.drain() {
                    if e != gst::FlowError::Flushing {
                        gst::element_imp_warning!(
                            self,
                            gst::StreamError::Failed,
                            ("the held frame could not be pushed before {:?}: {:?}", event.type_(), e),
                            ["downstream refused it; the next frame returns the same error"]
                        );
                    }
                    if let Some(state) = lock(&self.state).as_mut() {
                        state.flow_error = Some(e);
                    }
                }
                match event.view() {
                    gst::EventView::Eos(_) => self.end_tracks(),
                    gst::EventView::Tag(t) => self.take_date(t.tag()),
                    _ => {}
                }
            }
            _ => {}
        }
        self.parent_sink_event(event)
    }

    fn query(&self, direction: gst::PadDirection, query: &mut gst::QueryRef) -> bool {
        if direction == gst::PadDirection::Sink {
            if let gst::QueryViewMut::Drain(_) = query.view_mut() {
                let _ = self.drain();
            }
        }
        let ok = BaseTransformImplExt::parent_query(self, direction, query);
        if direction == gst::PadDirection::Sink {
            if let gst::QueryViewMut::AcceptCaps(q) = query.view_mut() {
                if !q.result() {
                    self.explain_refused_caps(q.caps());
                }
            }
        }
        if direction == gst::PadDirection::Src && ok {
            if let gst::QueryViewMut::Latency(q) = query.view_mut() {
                let (live, min, max) = q.result();
                *lock(&self.upstream) = Some(Upstream { live, latency: min });
                let pipelining = lock(&self.settings).pipelining;
                if live && pipelining == Pipelining::On {
                    // A held frame leaves when the next one arrives: one frame duration more.
                    let fps = lock(&self.state)
                        .as_ref()
                        .and_then(|s| s.info.as_ref().map(|i| i.fps()));
                    let frame = fps
                        .filter(|f| f.numer() > 0)
                        .and_then(|f| gst::ClockTime::SECOND.mul_div_ceil(f.denom() as u64, f.numer() as u64))
                        .unwrap_or(gst::ClockTime::ZERO);
                    q.set(live, min + frame, max.map(|m| m + frame));
                }
            }
        }
        ok
    }

    fn generate_output(&self) -> Result<gst_base::subclass::base_transform::GenerateOutputSuccess, gst::FlowError> {
        use gst_base::subclass::base_transform::GenerateOutputSuccess as Out;
        let Some(buf) = self.take_queued_buffer() else {
            return Ok(Out::NoOutput);
        };
        let per_frame = lock(&self.settings).per_frame();
        let up = self.upstream();
        let pipelined = match per_frame.pipelining {
            Pipelining::On => true,
            Pipelining::Off => false,
            Pipelining::Auto => !up.live,
        };
        // At most two frames leave per call: the held one, then this one (or, with pipelining,
        // the held one and this one stays).
        let (mut first, mut second) = (None, None);
        let (begun, outbox) = {
            let mut guard = lock(&self.state);
            let state = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
            if let Some(e) = state.flow_error.take() {
                return Err(e);
            }
            let reload = state.generations != per_frame.generations;
            if reload || !pipelined {
                if let Some(p) = state.pending.take() {
                    first = Some(self.finish_frame(state, &per_frame, p));
                }
            }
            if reload {
                self.reload(state, per_frame.generations);
            }
            if state.zones_generation != per_frame.zones_generation {
                let set = lock(&self.settings).zones.clone();
                state.stream.set_zones(set);
                state.zones_generation = per_frame.zones_generation;
            }
            let begun = self.begin_frame(state, &per_frame, up, buf).map(|b| match b {
                Begun::Started(p) if pipelined => {
                    if let Some(prev) = state.pending.replace(p) {
                        second = Some(self.finish_frame(state, &per_frame, prev));
                    }
                }
                Begun::Started(p) => second = Some(self.finish_frame(state, &per_frame, p)),
                Begun::Passed(b) => {
                    if let Some(prev) = state.pending.take() {
                        first = Some(self.finish_frame(state, &per_frame, prev));
                    }
                    second = Some(Finished::passed(b));
                }
            });
            (begun, state.outbox.take())
        };
        // Bus messages and pushes happen with no lock held: an application may act on them. A
        // frame is counted once it leaves: if the first push fails, the second never goes.
        // Both are pushed here, so that the warnings, posted last, find no frame of this call
        // still in the element (a sync handler may call into it, even drain it).
        let pushed = begun.and_then(|()| {
            for f in [first, second].into_iter().flatten() {
                let (buf, counts) = self.announce(f);
                self.obj().src_pad().push(buf)?;
                self.count(counts);
            }
            Ok(Out::NoOutput)
        });
        self.post(outbox);
        pushed
    }
}

impl FaceEmotion {
    /// Upstream offered raw video the element cannot take: an error that says which formats it
    /// takes and what to do, instead of a bare not-negotiated. Only for system-memory raw video
    /// (other memory is tried by hardware decoders before they fall back to it), and once.
    fn explain_refused_caps(&self, caps: &gst::CapsRef) {
        let Some(s) = caps.structure(0) else { return };
        let sysmem = caps
            .features(0)
            .is_none_or(|f| f.is_any() || f.contains("memory:SystemMemory") || f.is_empty());
        if s.name() != "video/x-raw" || !sysmem {
            return;
        }
        let Ok(format) = s.get::<&str>("format") else { return };
        if frame::pixel_format(gst_video::VideoFormat::from_string(format)).is_some() {
            return;
        }
        let mut reported = lock(&self.negotiation_reported);
        if *reported {
            return;
        }
        *reported = true;
        gst::element_imp_error!(
            self,
            gst::CoreError::Negotiation,
            (
                "faceemotion cannot take {} video; it takes {}. Put videoconvert in front of it (e.g. \
                 decodebin ! videoconvert ! faceemotion)",
                format,
                frame::format_names()
            ),
            ["refused caps: {}", caps]
        );
    }
}

impl VideoFilterImpl for FaceEmotion {
    fn set_info(
        &self,
        incaps: &gst::Caps,
        in_info: &gst_video::VideoInfo,
        _outcaps: &gst::Caps,
        _out_info: &gst_video::VideoInfo,
    ) -> Result<(), gst::LoggableError> {
        let format = frame::pixel_format(in_info.format())
            .ok_or_else(|| gst::loggable_error!(CAT, "unsupported format {:?} in {}", in_info.format(), incaps))?;
        let yuv = frame::yuv_matrix(in_info);
        gst::info!(
            CAT,
            imp = self,
            "negotiated {}x{} {:?}, YUV matrix {:?}",
            in_info.width(),
            in_info.height(),
            format,
            yuv
        );
        let mut guard = lock(&self.state);
        let state = guard
            .as_mut()
            .ok_or_else(|| gst::loggable_error!(CAT, "caps set before start"))?;
        let same_picture = state
            .info
            .as_ref()
            .is_some_and(|i| i.width() == in_info.width() && i.height() == in_info.height())
            && state.format == Some(format);
        state.info = Some(in_info.clone());
        if !same_picture {
            // Boxes of another size or picture mean nothing to the tracker: its people leave.
            state.stream.restart();
            state.stream.take_events(&mut state.events);
        }
        state.format = Some(format);
        state.yuv = yuv;
        Ok(())
    }
}
