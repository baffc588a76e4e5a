//! A light IoU tracker: gives each face a stable id, carries faces across frames where the
//! detector does not run (moving them at their last speed), and says which faces are due for
//! classification.

use crate::analysis::Face;
use crate::detector::{BBox, Detection};

/// Detections overlapping a track's box by more than this continue it.
pub const MATCH_IOU: f32 = 0.3;

#[derive(Debug, Clone)]
struct Track {
    face: Face,
    /// Box change per frame, from the last two detections.
    velocity: [f32; 4],
    /// Frames since the detector last saw this face (0: seen on the latest detection frame).
    frames_since_seen: u32,
    /// Detection rounds in a row that missed this face.
    misses: u32,
    /// Frames since the face's emotion was last classified; `None` when it never was.
    since_classified: Option<u32>,
    /// The same for gender and age.
    since_gender: Option<u32>,
}

impl Track {
    /// Reported: seen by the latest detection round, and not pushed off the frame.
    fn visible(&self) -> bool {
        self.misses == 0 && self.face.bbox().area() > 0.0
    }
}

fn boxes(b: &BBox) -> [f32; 4] {
    [b.x1, b.y1, b.x2, b.y2]
}

#[derive(Debug, Default)]
pub struct Tracker {
    tracks: Vec<Track>,
    next_id: u64,
    /// Detection rounds a face may be missed before its track (and id) is dropped.
    pub max_misses: u32,
    /// Matching scratch, kept so that steady state allocates nothing: candidate pairs
    /// (IoU, track, detection) and which tracks and detections are taken.
    pairs: Vec<(f32, usize, usize)>,
    track_used: Vec<bool>,
    det_used: Vec<bool>,
}

impl Tracker {
    pub fn new() -> Self {
        Self {
            next_id: 1,
            max_misses: 2,
            ..Self::default()
        }
    }

    pub fn reset(&mut self) {
        self.tracks.clear();
    }

    /// A frame the detector ran on: continue, start and end tracks.
    pub fn update(&mut self, detections: &[Detection]) {
        for t in &mut self.tracks {
            t.frames_since_seen += 1;
            t.since_classified = t.since_classified.map(|n| n + 1);
            t.since_gender = t.since_gender.map(|n| n + 1);
        }
        // Greedy matching, best overlap first: enough for faces, which rarely cross.
        let mut pairs = std::mem::take(&mut self.pairs);
        pairs.clear();
        for (ti, t) in self.tracks.iter().enumerate() {
            for (di, d) in detections.iter().enumerate() {
                let iou = t.face.bbox().iou(&d.bbox);
                if iou > MATCH_IOU {
                    pairs.push((iou, ti, di));
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
            let (old, new) = (boxes(&t.face.detection.bbox), boxes(&d.bbox));
            let n = t.frames_since_seen.max(1) as f32;
            // The old box was already moved by the velocity; correct the velocity by what is left.
            for k in 0..4 {
                t.velocity[k] = 0.5 * t.velocity[k] + 0.5 * (t.velocity[k] + (new[k] - old[k]) / n);
            }
            t.face.detection = d;
            t.frames_since_seen = 0;
            t.misses = 0;
        }
        for (ti, t) in self.tracks.iter_mut().enumerate() {
            if !track_used[ti] {
                t.misses += 1;
            }
        }
        let max = self.max_misses;
        self.tracks.retain(|t| t.misses <= max);
        for (di, &d) in detections.iter().enumerate() {
            if !det_used[di] {
                let id = self.next_id;
                self.next_id += 1;
                self.tracks.push(Track {
                    face: Face {
                        detection: d,
                        emotion: None,
                        gender: None,
                        id,
                    },
                    velocity: [0.0; 4],
                    frames_since_seen: 0,
                    misses: 0,
                    since_classified: None,
                    since_gender: None,
                });
            }
        }
        (self.pairs, self.track_used, self.det_used) = (pairs, track_used, det_used);
    }

    /// A frame the detector skipped: move each face along at its last speed.
    pub fn predict(&mut self, width: f32, height: f32) {
        for t in &mut self.tracks {
            let b = &mut t.face.detection.bbox;
            let mut v = boxes(b);
            for (vk, dk) in v.iter_mut().zip(t.velocity) {
                *vk += dk;
            }
            *b = BBox {
                x1: v[0],
                y1: v[1],
                x2: v[2],
                y2: v[3],
            }
            .clip(width, height);
            for kp in &mut t.face.detection.keypoints {
                kp.0 += (t.velocity[0] + t.velocity[2]) / 2.0;
                kp.1 += (t.velocity[1] + t.velocity[3]) / 2.0;
            }
            t.frames_since_seen += 1;
            t.since_classified = t.since_classified.map(|n| n + 1);
            t.since_gender = t.since_gender.map(|n| n + 1);
        }
    }

    /// The faces to report: those the latest detection round saw.
    pub fn faces(&self) -> Vec<Face> {
        let mut faces = Vec::new();
        self.faces_into(&mut faces);
        faces
    }

    /// [`faces`](Self::faces), appended to `out`.
    pub fn faces_into(&self, out: &mut Vec<Face>) {
        out.extend(self.visible().map(|t| t.face.clone()));
    }

    /// For each face, in the order of [`faces`](Self::faces): whether its emotion, and whether
    /// its gender, are due: never classified, or not for `emotion_interval` (`gender_interval`)
    /// frames or more.
    /// The element uses [`due_into`](Self::due_into); this pairwise form reads better in tests.
    #[cfg(test)]
    pub fn due(&self, emotion_interval: u32, gender_interval: u32) -> Vec<(bool, bool)> {
        let (mut e, mut g) = (Vec::new(), Vec::new());
        self.due_into(emotion_interval, gender_interval, &mut e, &mut g);
        e.into_iter().zip(g).collect()
    }

    /// [`due`](Self::due) as two lists, emotion and gender, replacing their contents.
    pub fn due_into(
        &self,
        emotion_interval: u32,
        gender_interval: u32,
        emotion: &mut Vec<bool>,
        gender: &mut Vec<bool>,
    ) {
        let due = |since: Option<u32>, interval: u32| since.is_none_or(|n| n >= interval.max(1));
        emotion.clear();
        gender.clear();
        for t in self.visible() {
            emotion.push(due(t.since_classified, emotion_interval));
            gender.push(due(t.since_gender, gender_interval));
        }
    }

    /// For each face, in the order of [`faces`](Self::faces): whether its emotion, and whether
    /// its gender, were never classified.
    pub fn never_classified(&self) -> impl Iterator<Item = (bool, bool)> + '_ {
        self.visible()
            .map(|t| (t.since_classified.is_none(), t.since_gender.is_none()))
    }

    /// Stores the labels of the faces (in the order of [`faces`](Self::faces)) whose emotion,
    /// or gender, was just classified.
    pub fn store_labels(&mut self, faces: &[Face], emotion: &[bool], gender: &[bool]) {
        let visible = self.tracks.iter_mut().filter(|t| t.visible());
        for (i, t) in visible.enumerate() {
            if emotion.get(i).copied().unwrap_or(false) {
                t.face.emotion = faces[i].emotion;
                t.since_classified = Some(0);
            }
            if gender.get(i).copied().unwrap_or(false) {
                t.face.gender = faces[i].gender;
                t.since_gender = Some(0);
            }
        }
    }

    fn visible(&self) -> impl Iterator<Item = &Track> {
        self.tracks.iter().filter(|t| t.visible())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        }
    }

    #[test]
    fn ids_stay_with_moving_faces_and_new_faces_get_new_ids() {
        let mut t = Tracker::new();
        t.update(&[det(0.0, 0.0, 100.0), det(500.0, 0.0, 100.0)]);
        let ids: Vec<u64> = t.faces().iter().map(|f| f.id).collect();
        assert_eq!(ids, vec![1, 2]);
        // Both move 20 px right; a third face appears.
        t.update(&[det(520.0, 0.0, 100.0), det(20.0, 0.0, 100.0), det(900.0, 900.0, 50.0)]);
        let mut got: Vec<(u64, f32)> = t.faces().iter().map(|f| (f.id, f.bbox().x1)).collect();
        got.sort_by_key(|g| g.0);
        assert_eq!(got, vec![(1, 20.0), (2, 520.0), (3, 900.0)]);
    }

    #[test]
    fn predict_moves_faces_between_detections() {
        let mut t = Tracker::new();
        t.update(&[det(0.0, 0.0, 100.0)]);
        t.update(&[det(30.0, 0.0, 100.0)]);
        t.predict(1000.0, 1000.0);
        let x = t.faces()[0].bbox().x1;
        assert!(x > 30.0 && x <= 60.0, "{x}");
        // Clipped at the frame edge.
        for _ in 0..100 {
            t.predict(1000.0, 1000.0);
        }
        assert!(t.faces().iter().all(|f| f.bbox().x2 <= 1000.0));
    }

    #[test]
    fn missed_faces_are_hidden_then_dropped_and_can_come_back_with_their_id() {
        let mut t = Tracker::new();
        t.update(&[det(0.0, 0.0, 100.0)]);
        t.update(&[]);
        assert!(t.faces().is_empty());
        t.update(&[det(2.0, 0.0, 100.0)]);
        assert_eq!(t.faces()[0].id, 1);
        for _ in 0..3 {
            t.update(&[]);
        }
        t.update(&[det(2.0, 0.0, 100.0)]);
        assert_eq!(t.faces()[0].id, 2);
    }

    #[test]
    fn classification_is_due_for_new_faces_and_after_the_interval() {
        let mut t = Tracker::new();
        t.update(&[det(0.0, 0.0, 100.0)]);
        assert_eq!(t.due(3, 10), vec![(true, true)]);
        let faces = t.faces();
        t.store_labels(&faces, &[true], &[true]);
        t.predict(1000.0, 1000.0);
        assert_eq!(t.due(3, 10), vec![(false, false)]);
        t.predict(1000.0, 1000.0);
        t.predict(1000.0, 1000.0);
        // Emotion is due again after 3 frames, gender only after 10.
        assert_eq!(t.due(3, 10), vec![(true, false)]);
        assert_eq!(t.due(1, 1), vec![(true, true)]);
        assert_eq!(t.never_classified().collect::<Vec<_>>(), vec![(false, false)]);
    }
}
