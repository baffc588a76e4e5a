//! What a track has learnt about its person: emotion smoothed over time, gender and age averaged
//! over the whole track, and how the person's time splits between the emotions.
//!
//! The classifiers answer per frame and their answers jitter: a face on the edge between two
//! classes flips its label from frame to frame, and face-api.js calls the same woman female on
//! one frame and male on the next. A person's gender and age do not change while they are in
//! view, so every answer is evidence towards one estimate; emotions do change, but on the scale
//! of a second, not of a frame. Smoothing measures time in nanoseconds of running time (the
//! clock that only goes forward, see [`FrameTime`]), so it does the
//! same at 10 and at 60 frames per second.

use crate::face::FrameTime;
use crate::face::{EmotionScores, Gender, GenderScores};

/// How per-frame answers become per-person ones.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Smoothing {
    /// Time constant of the emotion's exponential moving average, in milliseconds; 0: each
    /// frame's answer as it is, and gender and age too.
    pub emotion_ms: f32,
}

impl Smoothing {
    pub const OFF: Smoothing = Smoothing { emotion_ms: 0.0 };

    pub fn is_on(&self) -> bool {
        self.emotion_ms > 0.0
    }
}

impl Default for Smoothing {
    fn default() -> Self {
        Smoothing { emotion_ms: 500.0 }
    }
}

/// Side of the classifiers' input: a face smaller than this is enlarged to be seen, and its
/// answers carry less weight in the person's average.
const FULL_WEIGHT_SIDE: f32 = 112.0;

/// How far the person's average female probability must cross 0.5 to change their label.
/// Faces the gender model finds hard (it was trained on few like them) sit near 0.5 for a whole
/// track; without this margin their label would flip each time the average wanders across.
pub const GENDER_MARGIN: f32 = 0.05;

/// The weight of one answer in a person's gender and age: answers on faces the detector is sure
/// of and that are large enough for the classifier count most. The gender model's own
/// certainty is not used: it is not calibrated on faces unlike its training set, where it is
/// confidently wrong (a run of such answers would outweigh every other).
fn answer_weight(face_side: f32, detection_score: f32) -> f64 {
    let size = (face_side / FULL_WEIGHT_SIDE).clamp(0.1, 1.0);
    (size * detection_score.clamp(0.05, 1.0)) as f64
}

/// A person's summary at a moment of their track, as the track events report it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PersonSummary {
    /// Stream time of the first and of the last frame the person was reported on.
    pub first: u64,
    pub last: u64,
    /// Time present: from the start of the first frame to the end of the last.
    pub duration: u64,
    /// Frames the person was reported on.
    pub frames: u64,
    /// Share of the person's time in each emotion (FER order), by the label reported on each
    /// frame; `None` when the emotion was never known.
    pub emotion_share: Option<[f32; 7]>,
    /// The person's gender and age as last estimated.
    pub gender: Option<GenderScores>,
    /// This track's own gender and age answers (a returning visitor's earlier visits left
    /// out), for the visitor's estimate; never reported.
    pub evidence: Evidence,
}

impl PersonSummary {
    /// The emotion the person spent most time in.
    pub fn dominant_emotion(&self) -> Option<usize> {
        let share = self.emotion_share?;
        (0..7).max_by(|&a, &b| share[a].total_cmp(&share[b]))
    }
}

/// The gender and age answers behind an estimate: weighted sums of the probability female and
/// of the age, and their weights. A returning visitor's estimate starts from their earlier
/// visits' evidence.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Evidence {
    pub female_sum: f64,
    pub female_weight: f64,
    pub age_sum: f64,
    pub age_weight: f64,
}

impl Evidence {
    pub fn add(&mut self, other: &Evidence) {
        self.female_sum += other.female_sum;
        self.female_weight += other.female_weight;
        self.age_sum += other.age_sum;
        self.age_weight += other.age_weight;
    }

    fn plus(mut self, other: &Evidence) -> Evidence {
        self.add(other);
        self
    }
}

#[derive(Debug, Clone, Default)]
pub struct Person {
    emotion: Option<EmotionScores>,
    /// When `emotion` was last updated.
    emotion_at: u64,
    emotion_raw: Option<EmotionScores>,
    /// This track's gender and age answers, and what a returning visitor's earlier visits
    /// gave (counted in the estimate, not in `own`).
    own: Evidence,
    prior: Evidence,
    /// The latest answer, reported as it is with smoothing off.
    gender_raw: Option<GenderScores>,
    /// The person's gender label (see [`GENDER_MARGIN`]).
    gender_label: Option<Gender>,
    /// Time spent in each emotion label while reported, in ns.
    emotion_time: [u64; 7],
    /// Stream time of the first and last frame reported.
    first: Option<u64>,
    last: u64,
    /// Clock time of the start of the first frame and of the end of the last.
    first_clock: u64,
    end_clock: u64,
    frames: u64,
}

impl Person {
    /// A new answer of the emotion model(s), at running time `at` (`FrameTime::clock`).
    pub fn observe_emotion(&mut self, raw: EmotionScores, at: u64, smoothing: Smoothing) {
        self.emotion_raw = Some(raw);
        self.emotion = Some(match self.emotion {
            Some(prev) if smoothing.is_on() => {
                let dt_ms = at.saturating_sub(self.emotion_at) as f32 / 1e6;
                let alpha = 1.0 - (-dt_ms / smoothing.emotion_ms).exp();
                let mut p = prev.0;
                for (s, r) in p.iter_mut().zip(raw.0) {
                    *s += alpha * (r - *s);
                }
                EmotionScores(p)
            }
            _ => raw,
        });
        self.emotion_at = at;
    }

    /// A new answer of the gender (and age) model(s) on a face whose larger side is `face_side`
    /// and that the detector scored `detection_score`.
    pub fn observe_gender(&mut self, raw: GenderScores, face_side: f32, detection_score: f32) {
        self.gender_raw = Some(raw);
        let w = answer_weight(face_side, detection_score);
        self.own.female_sum += w * raw.female as f64;
        self.own.female_weight += w;
        if let Some(age) = raw.age {
            self.own.age_sum += w * age as f64;
            self.own.age_weight += w;
        }
        self.relabel();
    }

    /// The gender label after the evidence changed, moving only past the margin.
    fn relabel(&mut self) {
        let all = self.own.plus(&self.prior);
        if all.female_weight <= 0.0 {
            return;
        }
        let mean = (all.female_sum / all.female_weight) as f32;
        self.gender_label = Some(match self.gender_label {
            Some(Gender::Female) if mean < 0.5 - GENDER_MARGIN => Gender::Male,
            Some(Gender::Male) if mean >= 0.5 + GENDER_MARGIN => Gender::Female,
            Some(label) => label,
            None => GenderScores::new(mean, None).label,
        });
    }

    /// The evidence of this track's own answers.
    pub fn evidence(&self) -> Evidence {
        self.own
    }

    /// Starts the estimate from a returning visitor's earlier visits.
    pub fn seed(&mut self, prior: Evidence) {
        self.prior = prior;
        self.relabel();
    }

    /// The emotion to report.
    pub fn emotion(&self, smoothing: Smoothing) -> Option<EmotionScores> {
        if smoothing.is_on() {
            self.emotion
        } else {
            self.emotion_raw
        }
    }

    pub fn emotion_raw(&self) -> Option<EmotionScores> {
        self.emotion_raw
    }

    /// The gender and age to report.
    pub fn gender(&self, smoothing: Smoothing) -> Option<GenderScores> {
        let all = self.own.plus(&self.prior);
        if !smoothing.is_on() || all.female_weight <= 0.0 {
            return self.gender_raw;
        }
        let female = (all.female_sum / all.female_weight) as f32;
        Some(GenderScores {
            female,
            age: (all.age_weight > 0.0).then(|| (all.age_sum / all.age_weight) as f32),
            label: self.gender_label.unwrap_or(GenderScores::new(female, None).label),
        })
    }

    /// Forgets the emotion (its model was changed or switched off).
    pub fn forget_emotion(&mut self) {
        self.emotion = None;
        self.emotion_raw = None;
    }

    /// Forgets gender and age (their model was changed or switched off).
    pub fn forget_gender(&mut self) {
        self.gender_raw = None;
        self.gender_label = None;
        (self.own, self.prior) = (Evidence::default(), Evidence::default());
    }

    /// The person was reported on a frame, with the emotion label `emotion` (FER index) if known.
    pub fn count_frame(&mut self, at: FrameTime, emotion: Option<usize>) {
        if self.first.is_none() {
            self.first = Some(at.ts);
            self.first_clock = at.clock;
        }
        self.last = at.ts;
        self.end_clock = self.end_clock.max(at.clock + at.duration);
        self.frames += 1;
        if let Some(e) = emotion {
            self.emotion_time[e] += at.duration;
        }
    }

    /// Time present so far (ns).
    pub fn presence(&self) -> u64 {
        self.end_clock.saturating_sub(self.first_clock)
    }

    pub fn summary(&self, smoothing: Smoothing) -> PersonSummary {
        let first = self.first.unwrap_or(self.last);
        let total: u64 = self.emotion_time.iter().sum();
        PersonSummary {
            first,
            last: self.last,
            duration: self.presence(),
            frames: self.frames,
            emotion_share: (total > 0).then(|| self.emotion_time.map(|t| (t as f64 / total as f64) as f32)),
            gender: self.gender(smoothing),
            evidence: self.own,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn onehot(i: usize) -> EmotionScores {
        let mut p = [0.0; 7];
        p[i] = 1.0;
        EmotionScores(p)
    }

    #[test]
    fn the_emotion_average_follows_time_not_frames() {
        // The same 500 ms of a step from neutral to happy at 10 and at 60 frames per second end
        // at the same probability: 1 - e^-1 after one time constant.
        let s = Smoothing { emotion_ms: 500.0 };
        for fps in [10u64, 60] {
            let mut p = Person::default();
            p.observe_emotion(onehot(6), 0, s);
            let step = 1000 * MS / fps;
            for k in 1..=fps / 2 {
                p.observe_emotion(onehot(3), k * step, s);
            }
            let happy = p.emotion(s).unwrap().0[3];
            assert!((happy - (1.0 - (-1.0f32).exp())).abs() < 1e-3, "{fps} fps: {happy}");
            assert_eq!(p.emotion_raw().unwrap(), onehot(3));
        }
    }

    #[test]
    fn smoothing_off_reports_each_answer() {
        let mut p = Person::default();
        p.observe_emotion(onehot(6), 0, Smoothing::OFF);
        p.observe_emotion(onehot(3), MS, Smoothing::OFF);
        assert_eq!(p.emotion(Smoothing::OFF), Some(onehot(3)));
        p.observe_gender(GenderScores::new(0.9, Some(30.0)), 200.0, 0.9);
        p.observe_gender(GenderScores::new(0.4, Some(50.0)), 200.0, 0.9);
        assert_eq!(p.gender(Smoothing::OFF).unwrap().female, 0.4);
    }

    #[test]
    fn gender_and_age_converge_on_the_weighted_answers() {
        let s = Smoothing::default();
        let mut p = Person::default();
        // Answers on large, clearly detected faces outweigh those on small, doubtful ones.
        for _ in 0..10 {
            p.observe_gender(GenderScores::new(0.9, Some(30.0)), 200.0, 0.95);
            p.observe_gender(GenderScores::new(0.2, Some(60.0)), 30.0, 0.6);
        }
        let g = p.gender(s).unwrap();
        assert!(g.female > 0.75 && g.gender() == Gender::Female, "{g:?}");
        let age = g.age.unwrap();
        assert!((30.0..37.0).contains(&age), "{age}");
        p.forget_gender();
        assert!(p.gender(s).is_none());
    }

    #[test]
    fn an_average_hovering_at_one_half_keeps_its_label() {
        let s = Smoothing::default();
        let mut p = Person::default();
        let mut labels = Vec::new();
        for female in [0.53, 0.52, 0.32, 0.65, 0.6, 0.52, 0.4, 0.45, 0.55, 0.48] {
            p.observe_gender(GenderScores::new(female, None), 150.0, 0.9);
            labels.push(p.gender(s).unwrap().gender());
        }
        assert!(labels.iter().all(|&l| l == Gender::Female), "{labels:?}");
        // A clear majority still turns it.
        for _ in 0..10 {
            p.observe_gender(GenderScores::new(0.1, None), 150.0, 0.9);
        }
        assert_eq!(p.gender(s).unwrap().gender(), Gender::Male);
        assert!(p.gender(s).unwrap().confidence() > 0.5);
    }

    #[test]
    fn a_returning_visitor_starts_from_their_earlier_visits() {
        let s = Smoothing::default();
        let mut first = Person::default();
        for _ in 0..20 {
            first.observe_gender(GenderScores::new(0.9, Some(30.0)), 200.0, 0.95);
        }
        let mut again = Person::default();
        again.seed(first.evidence());
        assert_eq!(again.gender(s).unwrap().gender(), Gender::Female);
        // A few doubtful answers on the new visit do not overturn twenty good ones...
        for _ in 0..3 {
            again.observe_gender(GenderScores::new(0.3, Some(50.0)), 200.0, 0.95);
        }
        let g = again.gender(s).unwrap();
        assert_eq!(g.gender(), Gender::Female);
        assert!(g.age.unwrap() < 34.0, "{g:?}");
        // ...and only the visit's own answers are its evidence.
        assert!((again.evidence().female_weight - 3.0 * 0.95).abs() < 1e-6);
    }

    #[test]
    fn time_shares_and_duration() {
        let mut p = Person::default();
        // Stream time starts at 1 s; the clock runs on from 5 s.
        let at = |k: u64| FrameTime {
            ts: 1000 * MS + k * 40 * MS,
            clock: 5000 * MS + k * 40 * MS,
            duration: 40 * MS,
        };
        for k in 0..30 {
            p.count_frame(at(k), Some(if k < 20 { 3 } else { 6 }));
        }
        p.count_frame(at(30), None);
        let s = p.summary(Smoothing::default());
        assert_eq!((s.first, s.last, s.frames), (1000 * MS, 2200 * MS, 31));
        assert_eq!(s.duration, 31 * 40 * MS);
        let share = s.emotion_share.unwrap();
        assert!((share[3] - 2.0 / 3.0).abs() < 1e-6 && (share[6] - 1.0 / 3.0).abs() < 1e-6);
        assert_eq!(s.dominant_emotion(), Some(3));
    }
}
