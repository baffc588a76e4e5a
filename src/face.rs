//! The types every stage shares: boxes, detections, classifier scores and faces.
//!
//! They live here, apart from the stages that make them, so that data flows one way
//! (detector -> tracker -> per-person estimates -> element) without modules importing each other.

/// The FER-2013 classes, in the order of the mini-Xception output.
pub const EMOTIONS: [&str; 7] = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"];

/// The colour of each emotion (RGB, in the order of [`EMOTIONS`]), the same in the overlay and in
/// the report's charts, so that a colour means one emotion everywhere. Nothing else uses them.
pub const EMOTION_COLOURS: [[u8; 3]; 7] = [
    [230, 40, 40],   // angry: red
    [60, 170, 60],   // disgust: green
    [160, 70, 200],  // fear: purple
    [255, 210, 0],   // happy: yellow
    [40, 110, 230],  // sad: blue
    [255, 140, 0],   // surprise: orange
    [200, 200, 200], // neutral: light grey
];

/// When a frame was, in nanoseconds: its stream time (the position in the recording, what
/// events report), a clock that only goes forward (running time: what smoothing and timeouts
/// measure, continuous where stream time jumps, as across concatenated files), and its duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameTime {
    pub ts: u64,
    pub clock: u64,
    pub duration: u64,
}

/// Keypoint names in the order BlazeFace gives them (the person's right and left).
pub const KEYPOINTS: [&str; 6] = ["right_eye", "left_eye", "nose_tip", "mouth", "right_ear", "left_ear"];

/// Axis-aligned box in pixels: left, top, right, bottom.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct BBox {
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
}

impl BBox {
    pub fn width(&self) -> f32 {
        self.x2 - self.x1
    }
    pub fn height(&self) -> f32 {
        self.y2 - self.y1
    }
    pub fn area(&self) -> f32 {
        self.width().max(0.0) * self.height().max(0.0)
    }
    /// The larger side: how large a face is, whatever its shape.
    pub fn side(&self) -> f32 {
        self.width().max(self.height())
    }
    pub fn center(&self) -> (f32, f32) {
        ((self.x1 + self.x2) / 2.0, (self.y1 + self.y2) / 2.0)
    }
    pub fn iou(&self, o: &BBox) -> f32 {
        let i = BBox {
            x1: self.x1.max(o.x1),
            y1: self.y1.max(o.y1),
            x2: self.x2.min(o.x2),
            y2: self.y2.min(o.y2),
        };
        let inter = if i.x2 > i.x1 && i.y2 > i.y1 { i.area() } else { 0.0 };
        let union = self.area() + o.area() - inter;
        if union > 0.0 {
            inter / union
        } else {
            0.0
        }
    }
    /// Clipped to a `w` x `h` frame.
    pub fn clip(&self, w: f32, h: f32) -> BBox {
        BBox {
            x1: self.x1.clamp(0.0, w),
            y1: self.y1.clamp(0.0, h),
            x2: self.x2.clamp(0.0, w),
            y2: self.y2.clamp(0.0, h),
        }
    }
    /// Grown on every side by `share` of its larger side (a privacy mask's margin).
    pub fn padded(&self, share: f32) -> BBox {
        let m = self.side().max(0.0) * share;
        BBox {
            x1: self.x1 - m,
            y1: self.y1 - m,
            x2: self.x2 + m,
            y2: self.y2 + m,
        }
    }
    pub fn as_array(&self) -> [f32; 4] {
        [self.x1, self.y1, self.x2, self.y2]
    }
    pub fn from_array(v: [f32; 4]) -> BBox {
        BBox {
            x1: v[0],
            y1: v[1],
            x2: v[2],
            y2: v[3],
        }
    }
}

/// Which of the detector's inputs found a face: the whole frame (letterboxed), a tile of the
/// finer grid, or a cell around a face the tracker already knew (see `scan.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord)]
pub enum Pass {
    /// A cell of a mosaic: a face looked for again where the tracker expects it.
    Cell,
    Tile,
    #[default]
    Whole,
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Detection {
    pub bbox: BBox,
    pub score: f32,
    pub keypoints: [(f32, f32); 6],
    /// The widest input that found it (the whole frame before a tile before a cell).
    pub pass: Pass,
}

/// Class probabilities in the FER-2013 order of [`EMOTIONS`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EmotionScores(pub [f32; 7]);

impl EmotionScores {
    pub fn best(&self) -> usize {
        (0..7).max_by(|&a, &b| self.0[a].total_cmp(&self.0[b])).unwrap_or(6)
    }
    pub fn label(&self) -> &'static str {
        EMOTIONS[self.best()]
    }
    pub fn confidence(&self) -> f32 {
        self.0[self.best()]
    }
    pub fn is_finite(&self) -> bool {
        self.0.iter().all(|p| p.is_finite())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gender {
    Male = 0,
    Female = 1,
}

impl Gender {
    pub fn label(self) -> &'static str {
        match self {
            Gender::Male => "male",
            Gender::Female => "female",
        }
    }
    pub fn letter(self) -> &'static str {
        match self {
            Gender::Male => "M",
            Gender::Female => "F",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GenderScores {
    /// Probability that the face is female.
    pub female: f32,
    /// Age in years, when the model gives it.
    pub age: Option<f32>,
    /// The label: for one answer the side of 0.5 that `female` is on; for a person, the side
    /// their average last left by a margin (so that an average hovering at 0.5 does not flip it).
    pub label: Gender,
}

impl GenderScores {
    pub fn new(female: f32, age: Option<f32>) -> Self {
        Self {
            female,
            age,
            label: if female >= 0.5 { Gender::Female } else { Gender::Male },
        }
    }
    pub fn gender(&self) -> Gender {
        self.label
    }
    /// The probability of the label.
    pub fn confidence(&self) -> f32 {
        match self.label {
            Gender::Female => self.female,
            Gender::Male => 1.0 - self.female,
        }
    }
    pub fn is_finite(&self) -> bool {
        self.female.is_finite() && self.age.is_none_or(f32::is_finite)
    }
}

/// One face on one frame, as reported: where it is, who it is (the track id), and the person's
/// labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Face {
    pub detection: Detection,
    /// The person's emotion: smoothed over time (or this frame's, with smoothing off).
    pub emotion: Option<EmotionScores>,
    /// The person's gender and age: averaged over the track (or this frame's, with smoothing off).
    pub gender: Option<GenderScores>,
    /// The emotion model's latest answer for this face, unsmoothed.
    pub emotion_raw: Option<EmotionScores>,
    /// Stable identity across frames, given by the tracker; 0 when not tracked.
    pub id: u64,
    /// The visitor the track is (see `visitor.rs`); 0 when not known (recognition off, or the
    /// track does not count as a person yet).
    pub visitor: u64,
    /// The zones (bits, by index in the stream's zone set) the face is in (see `zone.rs`).
    pub zones: u32,
}

/// Which visit of which visitor a track is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Visit {
    pub visitor: u64,
    /// 1 for the visitor's first visit, 2 for their first return, ...
    pub number: u32,
    /// The track goes on with a visit another track began (the tracker lost the face, the
    /// gallery knew it again before the visit was over): neither a new visitor nor a return.
    pub continued: bool,
}

impl Visit {
    pub fn returning(&self) -> bool {
        self.number > 1
    }
}

impl Face {
    pub fn new(detection: Detection) -> Self {
        Self {
            detection,
            emotion: None,
            gender: None,
            emotion_raw: None,
            id: 0,
            visitor: 0,
            zones: 0,
        }
    }
    pub fn bbox(&self) -> BBox {
        self.detection.bbox
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_confidences() {
        let e = EmotionScores([0.0, 0.0, 0.1, 0.8, 0.05, 0.0, 0.05]);
        assert_eq!(e.label(), "happy");
        assert_eq!(e.confidence(), 0.8);
        let g = GenderScores::new(0.3, None);
        assert_eq!(g.gender(), Gender::Male);
        assert!((g.confidence() - 0.7).abs() < 1e-6);
        assert!(!EmotionScores([f32::NAN; 7]).is_finite());
    }

    #[test]
    fn padding_grows_by_the_larger_side() {
        let b = BBox {
            x1: 10.0,
            y1: 20.0,
            x2: 30.0,
            y2: 60.0,
        };
        assert_eq!(
            b.padded(0.25),
            BBox {
                x1: 0.0,
                y1: 10.0,
                x2: 40.0,
                y2: 70.0
            }
        );
    }
}
