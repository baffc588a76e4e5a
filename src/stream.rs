//! One video stream's analysis: the models, the tracker with each person's estimates, and the
//! frame count, behind a small API that the element drives frame by frame.
//!
//! A frame is begun (the detector starts on it, on its own thread) and later finished (the
//! tracker moves or matches the faces, the faces that are due are classified, each person's
//! estimates take the answers). Beginning frame N+1 before finishing frame N lets the detector
//! work on N+1 while the classifiers work on N; frames are finished in the order they were begun.

use crate::analysis::{Analyzer, Answer, Look, Params};
use crate::face::FrameTime;
use crate::face::{BBox, Face};
use crate::image::ImageView;
use crate::person::Smoothing;
use crate::runtime::{ModelError, ModelRole};
use crate::tracker::{GenderSchedule, TrackEvent, TrackEventKind, Tracker, TrackerSettings};
use crate::visitor::{ReidSettings, Visits};
use crate::zone::{Presence, ZoneChange, ZoneSet};

/// What a video stream's analysis is asked to do, frame by frame: how a frame becomes faces,
/// how often each model runs, how faces are tracked and how answers become a person's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StreamParams {
    pub analysis: Params,
    /// Run the detector on every Nth frame, tracking faces in between.
    pub inference_interval: u32,
    /// Classify a tracked face every Mth frame, keeping its labels in between.
    pub reclassify_interval: u32,
    /// Run the gender and age model on a tracked face every Nth frame (they do not change for a
    /// person); 0: a [`GenderSchedule::Taper`] from `reclassify_interval` (with smoothing off,
    /// where each frame reports its own answer, every `reclassify_interval` frames).
    pub gender_interval: u32,
    pub tracking: TrackerSettings,
    pub smoothing: Smoothing,
    /// Visitor recognition (it also needs a descriptor model loaded).
    pub reid: ReidSettings,
    /// Frames a face must be inside (outside) a zone to have entered (left) it.
    pub zone_inertia: u32,
}

impl Default for StreamParams {
    fn default() -> Self {
        Self {
            analysis: Params::default(),
            inference_interval: 1,
            reclassify_interval: 1,
            gender_interval: 0,
            tracking: TrackerSettings::default(),
            smoothing: Smoothing::default(),
            reid: ReidSettings::default(),
            zone_inertia: crate::zone::DEFAULT_INERTIA,
        }
    }
}

impl StreamParams {
    /// When a tracked face's gender and age are due.
    pub fn gender_schedule(&self) -> GenderSchedule {
        match self.gender_interval {
            0 if self.smoothing.is_on() => GenderSchedule::Taper(self.reclassify_interval),
            0 => GenderSchedule::Every(self.reclassify_interval),
            n => GenderSchedule::Every(n),
        }
    }
}

/// Detections start from what the tracker knew this many frames back (see [`Stream::looks`]).
const LOOK_BACK: u64 = 2;

/// What the tracker knew after one finished frame.
#[derive(Debug, Default)]
struct LookBack {
    frame: Option<u64>,
    /// The tracker's next id then: tracks from it on are not in the lists.
    next_id: u64,
    known: Vec<BBox>,
    refind: Vec<(u64, BBox)>,
}

/// What [`Stream::begin`] started for a frame, to be given to [`Stream::finish`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    /// The detector job of this frame; `None` on frames where the tracker alone moves the faces.
    detection: Option<u64>,
    /// Whether the classifiers may run on this frame (not on a frame skipped for being late).
    classify: bool,
    time: FrameTime,
    /// The frame's number since the `Stream` was made (a restart does not reset it).
    frame: u64,
    /// Tracks from this id on were not known to the frame's detection when it started.
    unseen_from: u64,
}

impl Ticket {
    /// When the frame is.
    pub fn time(&self) -> FrameTime {
        self.time
    }

    /// Whether the frame is analysed (detector or classifiers) rather than only tracked.
    pub fn skipped(&self) -> bool {
        !self.classify
    }
}

/// A finished frame: the faces to report and the boxes a privacy mask must cover.
#[derive(Debug, Default)]
pub struct FrameResult {
    /// Faces seen by the latest detection round, with each person's labels.
    pub faces: Vec<Face>,
    /// Every face the tracker knows on the frame, including those the detector skipped or
    /// briefly missed.
    pub masks: Vec<BBox>,
}

pub struct Stream {
    analyzer: Analyzer,
    tracker: Tracker,
    /// Frames since the detector last ran; `None` before the first.
    since_detection: Option<u32>,
    /// Which faces are due for each classifier, and their answers: kept between frames so that
    /// their room is reused.
    emotion_due: Vec<bool>,
    gender_due: Vec<bool>,
    answers: Vec<Answer>,
    /// The smoothing of the last finished frame, for the summaries of tracks that end between
    /// frames.
    smoothing: Smoothing,
    /// This stream's place among the streams analysed together (see [`set_phase`]), so that
    /// with an inference interval their detector frames fall on different frames and the load
    /// is even.
    ///
    /// [`set_phase`]: Stream::set_phase
    phase: u32,
    /// What the tracker knew after each of the last two finished frames, for the detection of
    /// the frame two later: every face, and the small ones to look for again in cells (where
    /// they are expected two frames on). Two frames back whether or not a frame is held
    /// (pipelining), so that the search, and so the results, are the same in every mode.
    looks: [LookBack; LOOK_BACK as usize],
    /// Frames begun since the `Stream` was made.
    begun: u64,
    /// Per detector job in flight, the tracks it does not look for; and lists to reuse.
    unlooked: Vec<(u64, Vec<u64>)>,
    spare_ids: Vec<Vec<u64>>,
    /// Who each track is (see [`crate::visitor`]).
    visits: Visits,
    /// Track events, with their visits, not yet taken.
    events: Vec<TrackEvent>,
    /// Faces of the frame to describe (index into the frame's faces, whether it is appearing).
    to_describe: Vec<(usize, bool)>,
    /// Visitors on the frame, for the recognition of one appearing.
    present: Vec<u64>,
    /// Running time the gallery was last pruned of visitors past their window.
    pruned_at: u64,
    /// Which zones each track is in; entries and exits of this frame; those of tracks that do
    /// not count as people yet, held until they do (and dropped if they never do); events
    /// being put in order; ids no longer tracked.
    zones: Presence,
    zone_changes: Vec<(u64, ZoneChange)>,
    held: Vec<(u64, ZoneChange)>,
    reorder: Vec<TrackEvent>,
    gone: Vec<u64>,
    /// Faces given to the emotion model(s), and to the gender and age model(s), since
    /// [`take_classified`](Self::take_classified).
    classified: (u64, u64),
}

impl Stream {
    pub fn new(analyzer: Analyzer) -> Self {
        Self {
            analyzer,
            tracker: Tracker::new(),
            since_detection: None,
            emotion_due: Vec::new(),
            gender_due: Vec::new(),
            answers: Vec::new(),
            smoothing: Smoothing::default(),
            phase: 0,
            looks: Default::default(),
            begun: 0,
            unlooked: Vec::new(),
            spare_ids: Vec::new(),
            visits: Visits::default(),
            events: Vec::new(),
            to_describe: Vec::new(),
            present: Vec::new(),
            pruned_at: 0,
            zones: Presence::default(),
            zone_changes: Vec::new(),
            held: Vec::new(),
            reorder: Vec::new(),
            gone: Vec::new(),
            classified: (0, 0),
        }
    }

    /// Faces given to the emotion model(s), and to the gender and age model(s), since the last
    /// call.
    pub fn take_classified(&mut self) -> (u64, u64) {
        std::mem::take(&mut self.classified)
    }

    /// The zones in force.
    pub fn zones(&self) -> &std::sync::Arc<ZoneSet> {
        self.zones.set()
    }

    /// New zones, from the next frame: stays in zones that are gone end now.
    pub fn set_zones(&mut self, set: std::sync::Arc<ZoneSet>) {
        let mut changes = std::mem::take(&mut self.zone_changes);
        changes.clear();
        self.zones.replace(set, &mut changes);
        self.zone_changes = changes;
        self.emit_zone_changes();
    }

    /// With an inference interval of N, the stream's detector runs on the frames where the
    /// count since its first is `phase` modulo N (its first frame is always detected).
    pub fn set_phase(&mut self, phase: u32) {
        self.phase = phase;
    }

    pub fn analyzer(&self) -> &Analyzer {
        &self.analyzer
    }

    pub fn analyzer_mut(&mut self) -> &mut Analyzer {
        &mut self.analyzer
    }

    /// Starts a frame at `time`: the detector, when the frame is due for it. A `skip`ped frame
    /// (the stream is running late) is only tracked: no detector, no classifiers.
    pub fn begin(
        &mut self,
        img: &ImageView,
        params: &StreamParams,
        time: FrameTime,
        skip: bool,
    ) -> Result<Ticket, ModelError> {
        let due = self
            .since_detection
            .is_none_or(|n| n + 1 >= params.inference_interval.max(1));
        let frame = self.begun;
        // The latest finished frame at least two back: that one in every mode (a frame that
        // was dropped leaves an older one).
        let back = frame.checked_sub(LOOK_BACK).and_then(|f| {
            self.looks
                .iter()
                .filter(|l| l.frame.is_some_and(|g| g <= f))
                .max_by_key(|l| l.frame)
        });
        let unseen_from = back.map_or(0, |l| l.next_id);
        let detection = if due && !skip {
            let look = Look {
                now: time.clock,
                known: back.map_or(&[][..], |l| &l.known),
                refind: back.map_or(&[][..], |l| &l.refind),
                alternate: params.inference_interval <= 1,
            };
            let mut ids = self.spare_ids.pop().unwrap_or_default();
            match self.analyzer.submit_detection(img, &params.analysis, &look, &mut ids) {
                Ok(seq) => {
                    self.unlooked.push((seq, ids));
                    Some(seq)
                }
                Err(e) => {
                    self.spare_ids.push(ids);
                    return Err(e);
                }
            }
        } else {
            None
        };
        self.since_detection = match (detection, self.since_detection) {
            // After the first detection, each stream's next comes at its own phase.
            (Some(_), None) => Some(self.phase % params.inference_interval.max(1)),
            (Some(_), Some(_)) => Some(0),
            (None, n) => n.map(|n| n.saturating_add(1)),
        };
        self.begun += 1;
        Ok(Ticket {
            detection,
            classify: !skip,
            time,
            frame,
            unseen_from,
        })
    }

    /// Finishes a begun frame into `out`. On a model error the faces are still those the
    /// tracker knows (moved on, with their last labels), so that no mask is lost, and the error
    /// is returned.
    pub fn finish(
        &mut self,
        img: &ImageView,
        params: &StreamParams,
        ticket: Ticket,
        out: &mut FrameResult,
    ) -> Result<(), ModelError> {
        out.faces.clear();
        out.masks.clear();
        self.smoothing = params.smoothing;
        self.tracker.settings = params.tracking;
        let mut result = Ok(());
        let unlooked = ticket.detection.and_then(|seq| self.take_unlooked(seq));
        let detected = match ticket.detection {
            Some(seq) => match self.analyzer.wait_detection(seq, &params.analysis) {
                Ok(dets) => {
                    let unlooked = unlooked.as_deref().unwrap_or(&[]);
                    self.tracker
                        .update_looked(dets, ticket.time, params.smoothing, unlooked, ticket.unseen_from);
                    true
                }
                Err(e) => {
                    result = Err(e);
                    false
                }
            },
            None => false,
        };
        if !detected {
            self.tracker.predict(img.width as f32, img.height as f32);
        }
        self.tracker.faces_into(&mut out.faces);
        self.tracker.known_boxes_into(&mut out.masks);
        let slot = &mut self.looks[(ticket.frame % LOOK_BACK) as usize];
        slot.frame = Some(ticket.frame);
        slot.next_id = self.tracker.next_id();
        slot.known.clear();
        slot.refind.clear();
        // Only the automatic search looks at them.
        if params.analysis.search == crate::scan::Search::Auto {
            self.tracker.expected_boxes_into(LOOK_BACK as u32, &mut slot.known);
            let size = self.analyzer.detector_kind().input_size();
            let reach = crate::scan::whole_frame_reach(img.width, img.height, size) * 1.25;
            self.tracker.refind_into(reach, LOOK_BACK as u32, &mut slot.refind);
        }
        let gender = params.gender_schedule();
        let (mut emotion_due, mut gender_due) = (
            std::mem::take(&mut self.emotion_due),
            std::mem::take(&mut self.gender_due),
        );
        self.tracker
            .due_into(params.reclassify_interval, gender, &mut emotion_due, &mut gender_due);
        if !ticket.classify || !self.analyzer.has_emotion() {
            emotion_due.iter_mut().for_each(|d| *d = false);
        }
        if !ticket.classify || !self.analyzer.has_gender() {
            gender_due.iter_mut().for_each(|d| *d = false);
        }
        if detected && params.inference_interval > 1 {
            // Spread the work: a detector frame classifies only new faces, and known faces
            // that are due wait one frame, so that no frame carries both loads.
            for ((e, g), never) in emotion_due
                .iter_mut()
                .zip(gender_due.iter_mut())
                .zip(self.tracker.never_classified())
            {
                *e &= never.0;
                *g &= never.1;
            }
        }
        self.answers.clear();
        if emotion_due.iter().chain(&gender_due).any(|&d| d) {
            let classified = self.analyzer.classify(
                img,
                &out.faces,
                Some(&emotion_due),
                Some(&gender_due),
                &params.analysis,
                &mut self.answers,
            );
            if let Err(e) = classified {
                // No answers: the faces keep their labels and are due again next frame.
                emotion_due.iter_mut().for_each(|d| *d = false);
                gender_due.iter_mut().for_each(|d| *d = false);
                self.answers.clear();
                result = result.and(Err(e));
            }
        }
        if let Some(ids) = unlooked {
            self.spare_ids.push(ids);
        }
        let asked = |due: &[bool]| due.iter().filter(|&&d| d).count() as u64;
        self.classified.0 += asked(&emotion_due);
        self.classified.1 += asked(&gender_due);
        self.tracker.finish_frame(
            &mut out.faces,
            &emotion_due,
            &gender_due,
            &self.answers,
            ticket.time,
            params.smoothing,
        );
        (self.emotion_due, self.gender_due) = (emotion_due, gender_due);
        let recognised = self.recognise(img, params, ticket, out);
        self.follow_zones(img, params, ticket, out);
        result.and(recognised)
    }

    /// Which zones the frame's faces are in, and the entries and exits it makes.
    fn follow_zones(&mut self, img: &ImageView, params: &StreamParams, ticket: Ticket, out: &mut FrameResult) {
        let mut changes = std::mem::take(&mut self.zone_changes);
        changes.clear();
        self.zones.update(
            &mut out.faces,
            img.width as f32,
            img.height as f32,
            ticket.time,
            params.zone_inertia,
            &mut changes,
        );
        self.zone_changes = changes;
        self.emit_zone_changes();
        // Tracks that ended without counting as people: their zones and held events go.
        let mut gone = std::mem::take(&mut self.gone);
        self.zones.tracks_into(&mut gone);
        gone.retain(|&id| !self.tracker.has(id));
        for &id in &gone {
            let mut dropped = std::mem::take(&mut self.zone_changes);
            dropped.clear();
            self.zones.end(id, &mut dropped);
            self.zone_changes = dropped;
            self.held.retain(|h| h.0 != id);
        }
        self.gone = gone;
    }

    /// Turns `zone_changes` into events: those of people now, with those held for them; the
    /// others held until their track counts as a person.
    fn emit_zone_changes(&mut self) {
        for (id, change) in self.zone_changes.drain(..) {
            self.held.push((id, change));
        }
        let mut i = 0;
        while i < self.held.len() {
            let id = self.held[i].0;
            if self.tracker.is_announced(id) {
                let (id, change) = self.held.remove(i);
                let visit = self.visits.get(id).map(|t| crate::face::Visit {
                    visitor: t.identity.visitor,
                    number: t.identity.visit,
                    continued: t.identity.continued,
                });
                self.events.push(TrackEvent {
                    kind: TrackEventKind::Zone,
                    id,
                    person: Default::default(),
                    visit,
                    zone: Some(change),
                    zone_times: Default::default(),
                });
            } else {
                i += 1;
            }
        }
    }

    /// The visits of the frame's track events: who each track counting as a person on this
    /// frame is (from a descriptor of this frame, taken before any mask), further views of
    /// known tracks, and which visit each ended track was.
    fn recognise(
        &mut self,
        img: &ImageView,
        params: &StreamParams,
        ticket: Ticket,
        out: &mut FrameResult,
    ) -> Result<(), ModelError> {
        let start = self.events.len();
        self.tracker.take_events(&mut self.events);
        let now = ticket.time.clock;
        self.settle_ended(start, now);
        let reid = params.reid;
        if !reid.is_on() || !self.analyzer.has_descriptor() {
            return Ok(());
        }
        if now.saturating_sub(self.pruned_at) >= crate::visitor::VIEW_SPACING_NS {
            self.visits.gallery.prune(now, reid.window);
            self.pruned_at = now;
        }
        self.to_describe.clear();
        for (i, f) in out.faces.iter().enumerate() {
            let appearing = self.events[start..]
                .iter()
                .any(|e| e.kind == TrackEventKind::Appeared && e.id == f.id);
            let due = appearing
                || (ticket.classify && self.visits.view_due(f.id, &crate::visitor::View::of(&f.detection), now));
            if due {
                self.to_describe.push((i, appearing));
            }
        }
        if self.to_describe.is_empty() {
            return Ok(());
        }
        let faces = &out.faces;
        let min = crate::visitor::MIN_SIDE;
        let big = |d: &crate::face::Detection| d.bbox.side() >= min;
        let wanted = self
            .to_describe
            .iter()
            .map(|&(i, _)| &faces[i].detection)
            .filter(|d| big(d));
        let (descriptors, finite, result) = match self.analyzer.describe(img, wanted) {
            Ok((d, f)) => (d, f, Ok(())),
            Err(e) => (&[][..], &[][..], Err(e)),
        };
        let dims = if finite.is_empty() {
            0
        } else {
            descriptors.len() / finite.len()
        };
        let mut k = 0;
        for &(i, appearing) in &self.to_describe {
            let d = &out.faces[i].detection;
            let descriptor = if big(d) {
                let this = finite
                    .get(k)
                    .copied()
                    .unwrap_or(false)
                    .then(|| &descriptors[k * dims..(k + 1) * dims]);
                k += 1;
                this
            } else {
                None
            };
            let view = crate::visitor::View::of(d);
            let id = out.faces[i].id;
            if !appearing {
                if let Some(desc) = descriptor {
                    self.visits.add_view(id, desc, view, now);
                }
                continue;
            }
            self.present.clear();
            self.present.extend(
                out.faces
                    .iter()
                    .filter(|f| f.visitor != 0 && f.id != id)
                    .map(|f| f.visitor),
            );
            let identity = self.visits.begin(id, descriptor, view, now, &reid, &self.present);
            let summary = self
                .tracker
                .identify(id, identity.visitor, identity.prior, params.smoothing);
            let face = &mut out.faces[i];
            face.visitor = identity.visitor;
            if let Some(s) = summary {
                face.gender = s.gender;
                if let Some(e) = self.events[start..]
                    .iter_mut()
                    .find(|e| e.kind == TrackEventKind::Appeared && e.id == id)
                {
                    e.person = s;
                    e.visit = Some(crate::face::Visit {
                        visitor: identity.visitor,
                        number: identity.visit,
                        continued: identity.continued,
                    });
                }
            }
        }
        self.analyzer.wipe_descriptors();
        result
    }

    /// Ends the visits and the zone stays of the tracks that left among `self.events[start..]`:
    /// each one's zone exits go just before its `left` event, which carries its time per zone.
    fn settle_ended(&mut self, start: usize, now: u64) {
        let mut tail = std::mem::take(&mut self.reorder);
        tail.clear();
        tail.extend(self.events.drain(start..));
        for mut e in tail.drain(..) {
            if e.kind == TrackEventKind::Left {
                if let Some(identity) = self.visits.end(e.id, now, &e.person.evidence) {
                    e.visit = Some(crate::face::Visit {
                        visitor: identity.visitor,
                        number: identity.visit,
                        continued: identity.continued,
                    });
                }
                let mut exits = std::mem::take(&mut self.zone_changes);
                exits.clear();
                e.zone_times = self.zones.end(e.id, &mut exits);
                for (id, change) in exits.drain(..) {
                    self.events.push(TrackEvent {
                        kind: TrackEventKind::Zone,
                        id,
                        person: Default::default(),
                        visit: e.visit,
                        zone: Some(change),
                        zone_times: Default::default(),
                    });
                }
                self.zone_changes = exits;
            }
            self.events.push(e);
        }
        self.reorder = tail;
    }

    /// Gives up on a begun frame (dropped by a flush): its detector job, if any, is collected
    /// so that no answer is left waiting.
    pub fn abandon(&mut self, ticket: Ticket) {
        if let Some(seq) = ticket.detection {
            if let Some(ids) = self.take_unlooked(seq) {
                self.spare_ids.push(ids);
            }
            self.analyzer.abandon_detection(seq);
        }
    }

    /// The tracks detector job `seq` did not look for.
    fn take_unlooked(&mut self, seq: u64) -> Option<Vec<u64>> {
        let i = self.unlooked.iter().position(|(s, _)| *s == seq)?;
        Some(self.unlooked.swap_remove(i).1)
    }

    /// Starts over (a flush, or a change of picture size or format): every track ends, with a
    /// `left` event, and the next frame is detected.
    /// The visitors are forgotten.
    pub fn restart(&mut self) {
        self.end_tracks();
        self.since_detection = None;
        self.analyzer.restart_scan();
        self.looks.iter_mut().for_each(|l| l.frame = None);
    }

    /// The stream ended: every open track ends, so that the last people are counted, and the
    /// visitors are forgotten.
    pub fn end(&mut self) {
        self.end_tracks();
        self.looks.iter_mut().for_each(|l| l.frame = None);
    }

    fn end_tracks(&mut self) {
        self.tracker.end_all(self.smoothing);
        let start = self.events.len();
        self.tracker.take_events(&mut self.events);
        // The gallery is forgotten next: the time a visit ends at does not matter.
        self.settle_ended(start, self.pruned_at);
        self.visits.clear();
        // Tracks that never counted as people leave no zone events.
        let mut gone = std::mem::take(&mut self.gone);
        self.zones.tracks_into(&mut gone);
        let mut dropped = std::mem::take(&mut self.zone_changes);
        for &id in &gone {
            dropped.clear();
            self.zones.end(id, &mut dropped);
        }
        dropped.clear();
        (self.gone, self.zone_changes) = (gone, dropped);
        self.held.clear();
    }

    /// The tracks' events since the last call, appended to `out`.
    pub fn take_events(&mut self, out: &mut Vec<TrackEvent>) {
        self.tracker.take_events(&mut self.events);
        out.append(&mut self.events);
    }

    /// Visitors remembered now, and descriptors held (for the stats and the tests).
    pub fn visitors(&self) -> (usize, usize) {
        (self.visits.gallery.len(), self.visits.gallery.descriptors())
    }

    /// Forgets what every person got from the models of `role` (they changed or were switched
    /// off), so that no label of a model that is gone stays on a face.
    pub fn forget(&mut self, role: ModelRole) {
        match role {
            ModelRole::Emotion => self.tracker.forget_emotion(),
            ModelRole::Gender => {
                self.tracker.forget_gender();
                self.visits.gallery.forget_evidence();
            }
            // Switched off: who each track was goes with the gallery, so that no visitor id
            // is given for a face that is no longer recognised. Changed: the visitors stay,
            // their descriptors (of another model's space) go.
            ModelRole::Descriptor if !self.analyzer.has_descriptor() => {
                self.tracker.clear_visitors();
                self.visits.clear();
            }
            ModelRole::Descriptor => self.visits.forget_descriptors(),
            ModelRole::Detector => {}
        }
    }
}
