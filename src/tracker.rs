//! A light IoU tracker: gives each face a stable id, carries faces across frames where the
//! detector does not run (moving them at their measured speed) or briefly misses them, says
//! which faces are due for classification, keeps each person's estimates, and reports when a
//! person appears and leaves.

use crate::face::{BBox, Detection, EmotionScores, Face, FrameTime, GenderScores, Pass, Visit};
use crate::person::{Evidence, Person, PersonSummary, Smoothing};
use crate::zone::{ZoneChange, ZoneTimes};

/// Detections overlapping a track's box by more than this continue it.
pub const MATCH_IOU: f32 = 0.3;

/// A detection that does not overlap a track's box by [`MATCH_IOU`] still continues it when
/// its centre is within this share of the box's side and its size within [`NEAR_SIZE`]: a small
/// face moving fast (a shopper crossing a wide view moves by a third of a 40 px face a frame)
/// overlaps little with where it was, though it is plainly the same face.
pub const NEAR_CENTRE: f32 = 0.9;
pub const NEAR_SIZE: f32 = 1.6;

/// When a tracked face's gender and age model runs.
///
/// A person's gender and age do not change while they are in view, and the answers of
/// consecutive frames are nearly the same picture's: after a few of them one more adds little
/// to the person's average, while the model is the costliest of the classifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GenderSchedule {
    /// Every `n`th frame (at least every frame).
    Every(u32),
    /// Every `n`th frame for a track's first [`TAPER_AFTER`] answers; then the gap doubles after each answer, up to
    /// [`TAPER_MAX`] frames (or `n`, if larger); and at once when the detector's box has grown by
    /// [`TAPER_GROWTH`] over the largest one asked before (the person came closer: a better
    /// view, whose answers weigh more).
    Taper(u32),
}

/// Answers a person gets at the full rate before [`GenderSchedule::Taper`] spaces them out.
pub const TAPER_AFTER: u32 = 8;
/// The largest gap between two answers of a tapered schedule, in frames. Answers count alike,
/// not by the gap they stand for (one noisy answer standing for many frames moves the average
/// of a face the model finds hard across the label margin); a short largest gap keeps the
/// answers of a long track spread over all of it, so that its first frames do not outweigh the
/// rest.
pub const TAPER_MAX: u32 = 10;
/// A face this many times larger than at its last answer is answered again at once.
pub const TAPER_GROWTH: f32 = 1.25;

impl GenderSchedule {
    /// Frames between answers after a person's `answers` answers.
    pub fn gap(&self, answers: u32) -> u32 {
        match *self {
            GenderSchedule::Every(n) => n.max(1),
            GenderSchedule::Taper(n) => {
                let n = n.max(1);
                let doublings = answers.saturating_sub(TAPER_AFTER - 1).min(31);
                n.saturating_mul(1 << doublings).min(TAPER_MAX.max(n))
            }
        }
    }
}

/// How close a detection is to a box that it does not overlap enough, as a matching score below
/// [`MATCH_IOU`] (so that overlapping pairs are matched first); `None`: too far or too unlike.
fn nearness(track: &BBox, d: &BBox) -> Option<f32> {
    let (ts, ds) = (track.side(), d.side());
    if !(ts > 0.0 && ds > 0.0) || ts.max(ds) > NEAR_SIZE * ts.min(ds) {
        return None;
    }
    let ((tx, ty), (dx, dy)) = (track.center(), d.center());
    let dist = ((tx - dx).powi(2) + (ty - dy).powi(2)).sqrt() / ts;
    (dist < NEAR_CENTRE).then(|| MATCH_IOU * (1.0 - dist / NEAR_CENTRE))
}

/// How long a face the detector no longer finds keeps its track (and id), by default.
pub const DEFAULT_TIMEOUT_NS: u64 = 1_000_000_000;

/// How long a track must be reported before it counts as a person (its `appeared` event), by
/// default: long enough that a pattern the detector takes for a face on a few frames (a badge,
/// a poster in passing) is not counted as somebody.
pub const DEFAULT_MIN_PRESENCE_NS: u64 = 300_000_000;

/// How tracks start, last and count as people.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackerSettings {
    /// A face the detector misses keeps its track this long (ns of running time) after it was
    /// last seen; checked on detection frames.
    pub timeout: u64,
    /// A track counts as a person, with events, once it has been reported this long (ns).
    pub min_presence: u64,
}

impl Default for TrackerSettings {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT_NS,
            min_presence: DEFAULT_MIN_PRESENCE_NS,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackEventKind {
    Appeared,
    Left,
    /// The person entered or left a zone (`TrackEvent::zone` says which and when).
    Zone,
}

impl TrackEventKind {
    pub fn name(self) -> &'static str {
        match self {
            TrackEventKind::Appeared => "appeared",
            TrackEventKind::Left => "left",
            TrackEventKind::Zone => "zone",
        }
    }
}

/// A person appearing (their first frame), leaving (their track ended: not seen for the
/// timeout, the stream ended, or it was restarted), or entering or leaving a zone.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackEvent {
    pub kind: TrackEventKind,
    pub id: u64,
    pub person: PersonSummary,
    /// Which visit of which visitor the track is; `None` with recognition off.
    pub visit: Option<Visit>,
    /// Of a zone event: which zone, in or out, when.
    pub zone: Option<ZoneChange>,
    /// Of a `left` event: the person's time in each zone.
    pub zone_times: ZoneTimes,
}

#[derive(Debug, Clone)]
struct Track {
    /// The box now (moved between detections), id and reported labels.
    face: Face,
    /// The box the detector last gave.
    seen_box: BBox,
    /// Box change per frame.
    velocity: [f32; 4],
    /// Detections matched to this track, its first included.
    hits: u32,
    /// Frames since the detector last saw this face (0: seen on the latest detection frame).
    frames_since_seen: u32,
    /// Missed by the latest detection round.
    missed: bool,
    /// Clock time of the last detection that saw this face.
    seen_at: u64,
    /// Whether the track has counted as a person (its `appeared` event is out).
    announced: bool,
    /// Frames since the face's emotion was last classified; `None` when it never was.
    since_classified: Option<u32>,
    /// The same for gender and age.
    since_gender: Option<u32>,
    /// Gender and age answers this track got, and the largest detector box (larger side) asked.
    gender_answers: u32,
    gender_side: f32,
    person: Person,
}

impl Track {
    /// Moves the face `frames` frames along at its speed.
    /// Where the face is expected `frames` frames on, at its speed.
    fn expected_box(&self, frames: f32) -> BBox {
        let mut v = self.face.bbox().as_array();
        for (vk, dk) in v.iter_mut().zip(self.velocity) {
            *vk += dk * frames;
        }
        BBox::from_array(v)
    }

    fn carry(&mut self, frames: f32) {
        self.face.detection.bbox = self.expected_box(frames);
        for kp in &mut self.face.detection.keypoints {
            kp.0 += (self.velocity[0] + self.velocity[2]) / 2.0 * frames;
            kp.1 += (self.velocity[1] + self.velocity[3]) / 2.0 * frames;
        }
    }

    /// Reported: seen by the latest detection round, and not pushed off the frame.
    fn visible(&self) -> bool {
        !self.missed && self.face.bbox().area() > 0.0
    }
}

#[derive(Debug)]
pub struct Tracker {
    tracks: Vec<Track>,
    next_id: u64,
    pub settings: TrackerSettings,
    events: Vec<TrackEvent>,
    /// Matching scratch, kept so that steady state allocates nothing: candidate pairs
    /// (IoU, track, detection) and which tracks and detections are taken.
    pairs: Vec<(f32, usize, usize)>,
    track_used: Vec<bool>,
    det_used: Vec<bool>,
    /// Scratch of [`refind_into`](Self::refind_into).
    order: Vec<(u64, usize)>,
}

impl Default for Tracker {
    fn default() -> Self {
        Self::new()
    }
}

impl Tracker {
    pub fn new() -> Self {
        Self {
            tracks: Vec::new(),
            next_id: 1,
            settings: TrackerSettings::default(),
            events: Vec::new(),
            pairs: Vec::new(),
            track_used: Vec::new(),
            det_used: Vec::new(),
            order: Vec::new(),
        }
    }

    /// Ends every track (a `left` event each): the stream ended or starts over. Ids keep
    /// counting, so that an id names one person in the whole stream.
    pub fn end_all(&mut self, smoothing: Smoothing) {
        for t in self.tracks.drain(..) {
            if t.announced {
                self.events.push(TrackEvent {
                    kind: TrackEventKind::Left,
                    id: t.face.id,
                    person: t.person.summary(smoothing),
                    visit: None,
                    zone: None,
                    zone_times: ZoneTimes::default(),
                });
            }
        }
    }

    /// Moves the events since the last call to `out`.
    pub fn take_events(&mut self, out: &mut Vec<TrackEvent>) {
        out.append(&mut self.events);
    }

    /// A frame the detector ran on: continue, start and end tracks.
    pub fn update(&mut self, detections: &[Detection], now: FrameTime, smoothing: Smoothing) {
        self.update_looked(detections, now, smoothing, &[], u64::MAX);
    }

    /// [`update`](Self::update), where the tracks `unlooked` (ids) were not looked for on this
    /// frame (small faces whose cell comes on the next detector frame, or beyond what the cells
    /// held): unmatched, they
    /// are not missed but carried on at their speed, as on a frame the detector skipped. So are
    /// the tracks from `unseen_from` on (ids the detection did not know of when it started)
    /// that a tile or a cell found last: no cell looked for them, and a tile only if it was
    /// scanned (a false face a tile found once is carried a frame more before it is missed).
    pub fn update_looked(
        &mut self,
        detections: &[Detection],
        now: FrameTime,
        smoothing: Smoothing,
        unlooked: &[u64],
        unseen_from: u64,
    ) {
        for t in &mut self.tracks {
            t.frames_since_seen += 1;
            t.since_classified = t.since_classified.map(|n| n + 1);
            t.since_gender = t.since_gender.map(|n| n + 1);
        }
        // Greedy matching, best overlap first: enough for faces, which rarely cross. A track
        // matches where its face is expected now, or where it was last seen (a face that
        // stopped moving while the detector missed it).
        let mut pairs = std::mem::take(&mut self.pairs);
        pairs.clear();
        for (ti, t) in self.tracks.iter().enumerate() {
            for (di, d) in detections.iter().enumerate() {
                let iou = t.face.bbox().iou(&d.bbox).max(t.seen_box.iou(&d.bbox));
                if iou > MATCH_IOU {
                    pairs.push((iou, ti, di));
                } else if let Some(near) = [nearness(&t.face.bbox(), &d.bbox), nearness(&t.seen_box, &d.bbox)]
                    .into_iter()
                    .flatten()
                    .reduce(f32::max)
                {
                    pairs.push((near, ti, di));
                }
            }
        }
        // Ties go to the earlier track and detection (an unstable sort does not allocate).
        pairs.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        let (mut track_used, mut det_used) = (std::mem::take(&mut self.track_used), std::mem::take(&mut self.det_used));
        track_used.clear();
        track_used.resize(self.tracks.len(), false);
        det_used.clear();
        det_used.resize(detections.len(), false);
        for &(_, ti, di) in &pairs {
            if track_used[ti] || det_used[di] {
                continue;
            }
            track_used[ti] = true;
            det_used[di] = true;
            let t = &mut self.tracks[ti];
            let d = detections[di];
            // Measured over the frames since the face was last seen: what the detector says
            // now against what it said then, whatever the prediction did in between. Boxes from
            // inputs of different scales (the whole frame, a tile, a cell) differ in size by a
            // few pixels for a face that did not grow: between them only the centre's motion
            // counts.
            let n = t.frames_since_seen.max(1) as f32;
            let (then, now_box) = (t.seen_box.as_array(), d.bbox.as_array());
            let mut measured = [0.0f32; 4];
            for k in 0..4 {
                measured[k] = (now_box[k] - then[k]) / n;
            }
            if d.pass != t.face.detection.pass {
                // Only the centre's motion is measured between passes; the size is not.
                let (mx, my) = ((measured[0] + measured[2]) / 2.0, (measured[1] + measured[3]) / 2.0);
                measured = [mx, my, mx, my];
            }
            for (v, m) in t.velocity.iter_mut().zip(measured) {
                *v = if t.hits == 1 { m } else { 0.5 * *v + 0.5 * m };
            }
            t.face.detection = d;
            t.seen_box = d.bbox;
            t.hits += 1;
            t.frames_since_seen = 0;
            t.missed = false;
            t.seen_at = now.clock;
        }
        for (ti, t) in self.tracks.iter_mut().enumerate() {
            if track_used[ti] {
                continue;
            }
            let unseen = t.face.id >= unseen_from && t.face.detection.pass != Pass::Whole;
            if unseen || unlooked.contains(&t.face.id) {
                t.carry(1.0);
            } else {
                t.missed = true;
            }
        }
        let timeout = self.settings.timeout;
        let events = &mut self.events;
        self.tracks.retain(|t| {
            let keep = !t.missed || now.clock.saturating_sub(t.seen_at) <= timeout;
            if !keep && t.announced {
                events.push(TrackEvent {
                    kind: TrackEventKind::Left,
                    id: t.face.id,
                    person: t.person.summary(smoothing),
                    visit: None,
                    zone: None,
                    zone_times: ZoneTimes::default(),
                });
            }
            keep
        });
        for (di, &d) in detections.iter().enumerate() {
            if !det_used[di] {
                let id = self.next_id;
                self.next_id += 1;
                let mut face = Face::new(d);
                face.id = id;
                self.tracks.push(Track {
                    face,
                    seen_box: d.bbox,
                    velocity: [0.0; 4],
                    hits: 1,
                    frames_since_seen: 0,
                    missed: false,
                    seen_at: now.clock,
                    announced: false,
                    since_classified: None,
                    since_gender: None,
                    gender_answers: 0,
                    gender_side: 0.0,
                    person: Person::default(),
                });
            }
        }
        (self.pairs, self.track_used, self.det_used) = (pairs, track_used, det_used);
    }

    /// A frame the detector skipped: move each face along at its speed.
    pub fn predict(&mut self, width: f32, height: f32) {
        for t in &mut self.tracks {
            t.carry(1.0);
            t.face.detection.bbox = t.face.detection.bbox.clip(width, height);
            t.frames_since_seen += 1;
            t.since_classified = t.since_classified.map(|n| n + 1);
            t.since_gender = t.since_gender.map(|n| n + 1);
        }
    }

    /// The faces to report: those the latest detection round saw, with the person's labels.
    pub fn faces(&self) -> Vec<Face> {
        let mut faces = Vec::new();
        self.faces_into(&mut faces);
        faces
    }

    /// [`faces`](Self::faces), appended to `out`.
    pub fn faces_into(&self, out: &mut Vec<Face>) {
        out.extend(self.visible().map(|t| t.face.clone()));
    }

    /// [`known_boxes_into`](Self::known_boxes_into), each box moved on at its speed to where it
    /// is expected `ahead` frames later.
    pub fn expected_boxes_into(&self, ahead: u32, out: &mut Vec<BBox>) {
        out.extend(
            self.tracks
                .iter()
                .filter(|t| t.face.bbox().area() > 0.0)
                .map(|t| t.expected_box(ahead as f32)),
        );
    }

    /// Every face the tracker knows on this frame, reported or not (missed by the latest
    /// detection round but not yet timed out): what a privacy mask must cover. Appended to `out`.
    pub fn known_boxes_into(&self, out: &mut Vec<BBox>) {
        out.extend(self.tracks.iter().map(|t| t.face.bbox()).filter(|b| b.area() > 0.0));
    }

    /// Faces to look for again in cells on a frame `ahead` frames after the last one tracked,
    /// where they are expected then: those a tile or a cell found last, and those smaller than
    /// `reach` (what the whole frame shows) that every pass missed; the longest unseen first,
    /// so that more faces than the cells hold take turns. Replaces the contents of `out`.
    pub fn refind_into(&mut self, reach: f32, ahead: u32, out: &mut Vec<(u64, BBox)>) {
        let mut order = std::mem::take(&mut self.order);
        order.clear();
        order.extend(self.tracks.iter().enumerate().filter_map(|(i, t)| {
            let b = t.face.bbox();
            let small = b.side() < reach;
            let not_whole = t.face.detection.pass != Pass::Whole;
            // A large face that only a tile found (one the whole frame misses, such as a face
            // half turned) is looked for again too: the tile comes back only seconds later.
            let needs = (small && t.missed) || not_whole;
            (needs && b.area() > 0.0).then_some((t.seen_at, i))
        }));
        order.sort_unstable();
        out.clear();
        out.extend(order.iter().map(|&(_, i)| {
            let t = &self.tracks[i];
            (t.face.id, t.expected_box(ahead as f32))
        }));
        self.order = order;
    }

    /// For each face, in the order of [`faces`](Self::faces): whether its emotion, and whether
    /// its gender, are due: never classified, or not for `emotion_interval` frames or more (for
    /// gender, as the schedule says).
    /// The element uses [`due_into`](Self::due_into); this pairwise form reads better in tests.
    #[cfg(test)]
    pub fn due(&self, emotion_interval: u32, gender: GenderSchedule) -> Vec<(bool, bool)> {
        let (mut e, mut g) = (Vec::new(), Vec::new());
        self.due_into(emotion_interval, gender, &mut e, &mut g);
        e.into_iter().zip(g).collect()
    }

    /// [`due`](Self::due) as two lists, emotion and gender, replacing their contents.
    pub fn due_into(
        &self,
        emotion_interval: u32,
        schedule: GenderSchedule,
        emotion: &mut Vec<bool>,
        gender: &mut Vec<bool>,
    ) {
        let due = |since: Option<u32>, interval: u32| since.is_none_or(|n| n >= interval.max(1));
        emotion.clear();
        gender.clear();
        for t in self.visible() {
            emotion.push(due(t.since_classified, emotion_interval));
            // The detector's own box, not one carried at the face's speed: growth that was only
            // extrapolated is no better view.
            let grown = matches!(schedule, GenderSchedule::Taper(_))
                && t.gender_answers > 0
                && t.seen_box.side() >= TAPER_GROWTH * t.gender_side;
            gender.push(grown || due(t.since_gender, schedule.gap(t.gender_answers)));
        }
    }

    /// For each face, in the order of [`faces`](Self::faces): whether its emotion, and whether
    /// its gender, were never classified.
    pub fn never_classified(&self) -> impl Iterator<Item = (bool, bool)> + '_ {
        self.visible()
            .map(|t| (t.since_classified.is_none(), t.since_gender.is_none()))
    }

    /// Ends a frame. `faces` are [`faces`](Self::faces) of this frame; those whose emotion, or
    /// gender, is set in `emotion` (`gender`) were just classified, and their answers are in
    /// `answers`, one per face, `None` where the model gave none. Each person's estimates take
    /// the new answers, every face's labels become the person's, and each reported person's
    /// time is counted.
    pub fn finish_frame(
        &mut self,
        faces: &mut [Face],
        emotion: &[bool],
        gender: &[bool],
        answers: &[(Option<EmotionScores>, Option<GenderScores>)],
        now: FrameTime,
        smoothing: Smoothing,
    ) {
        let visible = self.tracks.iter_mut().filter(|t| t.visible());
        for (i, (t, face)) in visible.zip(faces.iter_mut()).enumerate() {
            let side = t.face.bbox().side();
            let answer = answers.get(i).copied().unwrap_or((None, None));
            if emotion.get(i).copied().unwrap_or(false) {
                t.since_classified = Some(0);
                if let Some(e) = answer.0 {
                    t.person.observe_emotion(e, now.clock, smoothing);
                }
            }
            if gender.get(i).copied().unwrap_or(false) {
                t.since_gender = Some(0);
                // The largest view asked so far, answered or not: a face that went away and came
                // back, or whose box differs a little between detector passes, is not asked
                // again for a view it already had.
                t.gender_side = t.gender_side.max(t.seen_box.side());
                if let Some(g) = answer.1 {
                    t.person.observe_gender(g, side, t.face.detection.score);
                    t.gender_answers = t.gender_answers.saturating_add(1);
                }
            }
            t.face.emotion = t.person.emotion(smoothing);
            t.face.emotion_raw = t.person.emotion_raw();
            t.face.gender = t.person.gender(smoothing);
            (face.emotion, face.emotion_raw, face.gender) = (t.face.emotion, t.face.emotion_raw, t.face.gender);
            t.person.count_frame(now, t.face.emotion.map(|e| e.best()));
            if !t.announced && t.person.presence() >= self.settings.min_presence {
                t.announced = true;
                self.events.push(TrackEvent {
                    kind: TrackEventKind::Appeared,
                    id: t.face.id,
                    person: t.person.summary(smoothing),
                    visit: None,
                    zone: None,
                    zone_times: ZoneTimes::default(),
                });
            }
        }
    }

    /// The id the next new track gets: every track known now has a smaller one.
    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    /// Whether track `id` is tracked now.
    pub fn has(&self, id: u64) -> bool {
        self.tracks.iter().any(|t| t.face.id == id)
    }

    /// Whether track `id` is tracked and counts as a person (its `appeared` event is out).
    pub fn is_announced(&self, id: u64) -> bool {
        self.tracks.iter().any(|t| t.face.id == id && t.announced)
    }

    /// Track `id` is visitor `visitor`, whose earlier visits gave `prior`: its faces carry the
    /// visitor's id and its gender and age start from that evidence. Returns the person's
    /// summary as it then stands, `None` for a track that is gone.
    pub fn identify(&mut self, id: u64, visitor: u64, prior: Evidence, smoothing: Smoothing) -> Option<PersonSummary> {
        let t = self.tracks.iter_mut().find(|t| t.face.id == id)?;
        t.face.visitor = visitor;
        if prior.female_weight > 0.0 || prior.age_weight > 0.0 {
            t.person.seed(prior);
            t.face.gender = t.person.gender(smoothing);
        }
        Some(t.person.summary(smoothing))
    }

    /// Forgets which visitor each track is (recognition was switched off): no face carries a
    /// visitor id that nothing stands behind any more.
    pub fn clear_visitors(&mut self) {
        for t in &mut self.tracks {
            t.face.visitor = 0;
        }
    }

    /// Forgets every person's emotion (its model changed or was switched off); each face is
    /// due for the new model at once.
    pub fn forget_emotion(&mut self) {
        for t in &mut self.tracks {
            t.person.forget_emotion();
            t.face.emotion = None;
            t.face.emotion_raw = None;
            t.since_classified = None;
        }
    }

    /// The same for gender and age.
    pub fn forget_gender(&mut self) {
        for t in &mut self.tracks {
            t.person.forget_gender();
            t.face.gender = None;
            t.since_gender = None;
            t.gender_answers = 0;
            t.gender_side = 0.0;
        }
    }

    fn visible(&self) -> impl Iterator<Item = &Track> {
        self.tracks.iter().filter(|t| t.visible())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: u64 = 40_000_000;

    fn at(frame: u64) -> FrameTime {
        FrameTime {
            ts: frame * FRAME,
            clock: frame * FRAME,
            duration: FRAME,
        }
    }

    fn det(x: f32, y: f32, s: f32) -> Detection {
        Detection {
            bbox: BBox {
                x1: x,
                y1: y,
                x2: x + s,
                y2: y + s,
            },
            score: 0.9,
            keypoints: [(x, y); 6],
            ..Default::default()
        }
    }

    /// Ends a frame with no classification, as the analysis does on every frame.
    fn finish(t: &mut Tracker, frame: u64) {
        let mut faces = t.faces();
        t.finish_frame(&mut faces, &[], &[], &[], at(frame), Smoothing::default());
    }

    #[test]
    fn a_track_the_detection_did_not_know_of_is_carried_not_missed() {
        let tile = |x: f32| Detection {
            pass: Pass::Tile,
            ..det(x, 0.0, 30.0)
        };
        // Found by a tile on frame 0 (track 1), then not found on frame 1 by a detection that
        // started before track 1 existed (unseen from id 1): carried, still reported.
        let mut t = Tracker::new();
        t.update_looked(&[tile(0.0)], at(0), Smoothing::default(), &[], 1);
        t.update_looked(&[], at(1), Smoothing::default(), &[], 1);
        assert!(!t.tracks[0].missed);
        assert_eq!(t.faces().len(), 1);
        // A detection that knew of it and did not find it: missed.
        t.update_looked(&[], at(2), Smoothing::default(), &[], 2);
        assert!(t.tracks[0].missed);
        // One the whole frame found is missed whenever the whole frame misses it.
        let mut t = Tracker::new();
        t.update_looked(&[det(0.0, 0.0, 100.0)], at(0), Smoothing::default(), &[], 1);
        t.update_looked(&[], at(1), Smoothing::default(), &[], 1);
        assert!(t.tracks[0].missed);
    }

    #[test]
    fn ids_stay_with_moving_faces_and_new_faces_get_new_ids() {
        let mut t = Tracker::new();
        t.update(
            &[det(0.0, 0.0, 100.0), det(500.0, 0.0, 100.0)],
            at(0),
            Smoothing::default(),
        );
        let ids: Vec<u64> = t.faces().iter().map(|f| f.id).collect();
        assert_eq!(ids, vec![1, 2]);
        // Both move 20 px right; a third face appears.
        t.update(
            &[det(520.0, 0.0, 100.0), det(20.0, 0.0, 100.0), det(900.0, 900.0, 50.0)],
            at(1),
            Smoothing::default(),
        );
        let mut got: Vec<(u64, f32)> = t.faces().iter().map(|f| (f.id, f.bbox().x1)).collect();
        got.sort_by_key(|g| g.0);
        assert_eq!(got, vec![(1, 20.0), (2, 520.0), (3, 900.0)]);
    }

    /// A face moving at a constant speed, the detector running every `interval` frames: once
    /// the speed is measured, the tracker's box is where the face is on every frame, detector
    /// frame or not, and the speed it uses neither grows nor is scaled by the interval.
    #[test]
    fn constant_velocity_is_followed_without_bias_at_every_interval() {
        let speed = [3.0f32, -1.5, 3.0, -1.5];
        for interval in 1..=6u64 {
            let mut t = Tracker::new();
            let truth = |f: u64| det(100.0 + speed[0] * f as f32, 400.0 + speed[1] * f as f32, 120.0);
            for f in 0..120u64 {
                if f % interval == 0 {
                    t.update(&[truth(f)], at(f), Smoothing::default());
                } else {
                    t.predict(10_000.0, 10_000.0);
                }
                finish(&mut t, f);
                if f >= 3 * interval {
                    let got = t.faces()[0].bbox();
                    let want = truth(f).bbox;
                    assert!(
                        (got.x1 - want.x1).abs() < 0.01 && (got.y1 - want.y1).abs() < 0.01,
                        "interval {interval}, frame {f}: {got:?} for {want:?}"
                    );
                }
            }
            let v = t.tracks[0].velocity;
            for k in 0..4 {
                assert!((v[k] - speed[k]).abs() < 1e-3, "interval {interval}: velocity {v:?}");
            }
        }
    }

    #[test]
    fn predict_moves_faces_between_detections_and_stops_at_the_edge() {
        let mut t = Tracker::new();
        t.update(&[det(0.0, 0.0, 100.0)], at(0), Smoothing::default());
        t.update(&[det(30.0, 0.0, 100.0)], at(1), Smoothing::default());
        t.predict(1000.0, 1000.0);
        assert_eq!(t.faces()[0].bbox().x1, 60.0);
        for _ in 0..100 {
            t.predict(1000.0, 1000.0);
        }
        assert!(t.faces().iter().all(|f| f.bbox().x2 <= 1000.0));
    }

    #[test]
    fn a_missed_face_keeps_its_id_until_the_timeout() {
        let mut t = Tracker::new();
        t.settings.timeout = 5 * FRAME;
        t.settings.min_presence = 0;
        t.update(&[det(0.0, 0.0, 100.0)], at(0), Smoothing::default());
        finish(&mut t, 0);
        // Missed for four frames: hidden, but known (a mask still covers it).
        for f in 1..5 {
            t.update(&[], at(f), Smoothing::default());
            finish(&mut t, f);
            assert!(t.faces().is_empty());
            let mut known = Vec::new();
            t.known_boxes_into(&mut known);
            assert_eq!(known.len(), 1);
        }
        t.update(&[det(2.0, 0.0, 100.0)], at(5), Smoothing::default());
        finish(&mut t, 5);
        assert_eq!(t.faces()[0].id, 1);
        // Gone for longer than the timeout: the track ends and a new one starts.
        for f in 6..12 {
            t.update(&[], at(f), Smoothing::default());
        }
        t.update(&[det(2.0, 0.0, 100.0)], at(12), Smoothing::default());
        finish(&mut t, 12);
        assert_eq!(t.faces()[0].id, 2);
        let mut events = Vec::new();
        t.take_events(&mut events);
        let kinds: Vec<(TrackEventKind, u64)> = events.iter().map(|e| (e.kind, e.id)).collect();
        assert_eq!(
            kinds,
            vec![
                (TrackEventKind::Appeared, 1),
                (TrackEventKind::Left, 1),
                (TrackEventKind::Appeared, 2)
            ]
        );
        let left = events[1].person;
        assert_eq!((left.first, left.last, left.frames), (0, 5 * FRAME, 2));
        assert_eq!(left.duration, 6 * FRAME);
        t.end_all(Smoothing::default());
        t.take_events(&mut events);
        assert_eq!(events.last().map(|e| (e.kind, e.id)), Some((TrackEventKind::Left, 2)));
    }

    #[test]
    fn a_track_counts_as_a_person_once_present_long_enough() {
        let mut t = Tracker::new();
        t.settings.min_presence = 4 * FRAME;
        t.settings.timeout = 0;
        let mut events = Vec::new();
        // A false face for three frames, then a real one for ten.
        for f in 0..3 {
            t.update(&[det(0.0, 0.0, 50.0)], at(f), Smoothing::default());
            finish(&mut t, f);
        }
        for f in 3..13 {
            t.update(&[det(500.0, 0.0, 100.0)], at(f), Smoothing::default());
            finish(&mut t, f);
            t.take_events(&mut events);
            let appeared = events.iter().any(|e| e.kind == TrackEventKind::Appeared);
            assert_eq!(appeared, f >= 6, "frame {f}: {events:?}");
        }
        t.end_all(Smoothing::default());
        t.take_events(&mut events);
        let people: Vec<(TrackEventKind, u64, u64)> = events.iter().map(|e| (e.kind, e.id, e.person.first)).collect();
        assert_eq!(
            people,
            vec![
                (TrackEventKind::Appeared, 2, 3 * FRAME),
                (TrackEventKind::Left, 2, 3 * FRAME)
            ],
            "the false face is no person; the real one appeared on its first frame"
        );
    }

    #[test]
    fn classification_is_due_for_new_faces_and_after_the_interval() {
        let mut t = Tracker::new();
        t.update(&[det(0.0, 0.0, 100.0)], at(0), Smoothing::default());
        assert_eq!(t.due(3, GenderSchedule::Every(10)), vec![(true, true)]);
        let mut faces = t.faces();
        t.finish_frame(&mut faces, &[true], &[true], &[], at(0), Smoothing::default());
        t.predict(1000.0, 1000.0);
        assert_eq!(t.due(3, GenderSchedule::Every(10)), vec![(false, false)]);
        t.predict(1000.0, 1000.0);
        t.predict(1000.0, 1000.0);
        // Emotion is due again after 3 frames, gender only after 10.
        assert_eq!(t.due(3, GenderSchedule::Every(10)), vec![(true, false)]);
        assert_eq!(t.due(1, GenderSchedule::Every(1)), vec![(true, true)]);
        assert_eq!(t.never_classified().collect::<Vec<_>>(), vec![(false, false)]);
        t.forget_gender();
        assert_eq!(t.due(3, GenderSchedule::Every(10)), vec![(true, true)]);
    }

    #[test]
    fn a_tapered_gender_schedule_spaces_answers_out_and_answers_a_grown_face_at_once() {
        let s = GenderSchedule::Taper(1);
        let gaps: Vec<u32> = (0..14).map(|n| s.gap(n)).collect();
        assert_eq!(gaps, [1, 1, 1, 1, 1, 1, 1, 1, 2, 4, 8, 10, 10, 10]);
        assert_eq!(GenderSchedule::Taper(3).gap(0), 3);
        assert_eq!(GenderSchedule::Taper(3).gap(u32::MAX), 10);
        assert_eq!(
            GenderSchedule::Taper(100).gap(20),
            100,
            "an interval above the cap stays"
        );
        assert_eq!(GenderSchedule::Every(0).gap(50), 1);

        // A still face: answered on frames 0-7, then 9, 13, 21, 31, 41...
        let mut t = Tracker::new();
        let mut answered = Vec::new();
        for frame in 0..100u64 {
            t.update(&[det(0.0, 0.0, 100.0)], at(frame), Smoothing::default());
            let due = t.due(1, s);
            let gender: Vec<bool> = due.iter().map(|d| d.1).collect();
            if gender[0] {
                answered.push(frame);
            }
            let mut faces = t.faces();
            let answers = [(None, Some(GenderScores::new(0.9, Some(30.0))))];
            t.finish_frame(&mut faces, &[true], &gender, &answers, at(frame), Smoothing::default());
        }
        assert_eq!(
            answered,
            [0, 1, 2, 3, 4, 5, 6, 7, 9, 13, 21, 31, 41, 51, 61, 71, 81, 91]
        );
        assert!(
            !t.due(1, s)[0].1 && t.due(1, GenderSchedule::Every(1))[0].1,
            "8 frames after the last answer the taper waits where the fixed schedule asks"
        );

        // The person comes closer: a face a quarter larger is answered on the next frame.
        let answer = [(None, Some(GenderScores::new(0.9, Some(30.0))))];
        t.update(&[det(0.0, 0.0, 130.0)], at(100), Smoothing::default());
        assert!(t.due(1, s)[0].1);
        let mut faces = t.faces();
        t.finish_frame(&mut faces, &[true], &[true], &answer, at(100), Smoothing::default());
        t.update(&[det(0.0, 0.0, 130.0)], at(101), Smoothing::default());
        assert!(!t.due(1, s)[0].1);
        // Closer still, and the model gives no answer: asked once, not again on every frame.
        t.update(&[det(0.0, 0.0, 170.0)], at(102), Smoothing::default());
        assert!(t.due(1, s)[0].1);
        let mut faces = t.faces();
        t.finish_frame(
            &mut faces,
            &[true],
            &[true],
            &[(None, None)],
            at(102),
            Smoothing::default(),
        );
        t.update(&[det(0.0, 0.0, 170.0)], at(103), Smoothing::default());
        assert!(!t.due(1, s)[0].1, "a view already asked");
        // Further away, asked there when its gap is over; closer again to a view larger than
        // that one but no larger than the largest asked: not asked again.
        let mut asked_far = false;
        for frame in 104..120 {
            t.update(&[det(0.0, 0.0, 120.0)], at(frame), Smoothing::default());
            let due = t.due(1, s)[0].1;
            asked_far |= due;
            let mut faces = t.faces();
            t.finish_frame(&mut faces, &[true], &[due], &answer, at(frame), Smoothing::default());
        }
        assert!(asked_far, "the gap ran out while the face was further away");
        t.update(&[det(0.0, 0.0, 165.0)], at(120), Smoothing::default());
        assert!(!t.due(1, s)[0].1, "no larger than the largest view asked");
        // Forgetting the model's answers starts the schedule again.
        t.forget_gender();
        assert!(t.due(1, s)[0].1);
    }

    #[test]
    fn faces_carry_the_persons_labels() {
        let mut t = Tracker::new();
        let s = Smoothing::default();
        let g = |female| GenderScores::new(female, Some(30.0));
        for (f, female) in [(0u64, 0.8), (1, 0.45), (2, 0.7)] {
            t.update(&[det(0.0, 0.0, 150.0)], at(f), s);
            let mut faces = t.faces();
            t.finish_frame(&mut faces, &[false], &[true], &[(None, Some(g(female)))], at(f), s);
            assert_eq!(
                faces[0].gender.unwrap().gender(),
                crate::face::Gender::Female,
                "frame {f}"
            );
        }
        t.forget_gender();
        assert!(t.faces()[0].gender.is_none());
    }
}
