//! Frame in, faces out: detection, crops, batched classification.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use crate::classifier::{CropKind, EmotionClassifier, EmotionScores, GenderClassifier, GenderScores};
use crate::detector::{BBox, Detection, Detector, DetectorKind, Letterboxer, Prepared};
use crate::image::ImageView;
use crate::resample::{Border, RectF, Resampler};
use crate::runtime::ModelError;
use crate::tracker::Tracker;

/// Which models to load and how; changing any of these means loading the models again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelConfig {
    pub detector: PathBuf,
    /// `None` skips emotion classification.
    pub emotion: Option<PathBuf>,
    /// `None` skips gender classification.
    pub gender: Option<PathBuf>,
    /// Intra-op threads per model; 0: automatic (the detector one, the classifiers one per core).
    pub threads: usize,
    /// ONNX Runtime library; `None` uses `$ORT_DYLIB_PATH` or the installed one.
    pub ort_library: Option<String>,
}

/// Per-frame knobs; cheap to change at any time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// Minimum detector score (0..1).
    pub threshold: f32,
    /// Faces whose box is narrower and lower than this many pixels are dropped.
    pub min_face_size: u32,
    /// At most this many faces, the highest scoring, are kept.
    pub max_faces: usize,
    /// Side of the classifier crop as a multiple of the larger box side.
    pub crop_scale: f32,
    /// Detector tile columns; 1 looks at the whole frame only.
    pub tiles: u32,
    /// Video only: run the detector on every Nth frame, tracking faces in between.
    pub inference_interval: u32,
    /// Video only: classify a tracked face every Mth frame, keeping its labels in between.
    pub reclassify_interval: u32,
    /// Video only: run the gender and age model on a tracked face every Nth frame (they do not
    /// change for a person); 0 follows `reclassify_interval`.
    pub gender_interval: u32,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            threshold: 0.6,
            min_face_size: 0,
            max_faces: 64,
            crop_scale: 1.3,
            tiles: 1,
            inference_interval: 1,
            reclassify_interval: 1,
            gender_interval: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Face {
    pub detection: Detection,
    pub emotion: Option<EmotionScores>,
    pub gender: Option<GenderScores>,
    /// Stable identity across frames, given by the tracker; 0 when not tracked.
    pub id: u64,
}

impl Face {
    pub fn bbox(&self) -> BBox {
        self.detection.bbox
    }
}

/// The square around a detection that the classifiers see.
pub fn crop_region(b: &BBox, scale: f32) -> RectF {
    let side = b.width().max(b.height()) * scale;
    let (cx, cy) = b.center();
    RectF {
        x: cx - side / 2.0,
        y: cy - side / 2.0,
        w: side,
        h: side,
    }
}

struct Job {
    seq: u64,
    prepared: Prepared,
    /// Where the faces go: a list handed back by an earlier answer, so none is allocated.
    dets: Vec<Detection>,
    threshold: f32,
}

struct Done {
    seq: u64,
    prepared: Prepared,
    dets: Vec<Detection>,
    result: Result<(), ModelError>,
    model_time: Duration,
    /// The whole job on the thread, model and decoding.
    work_time: Duration,
}

/// The detector on a thread of its own, so that it can look at the next frame while the
/// classifiers work on this one. Jobs are answered in the order they were given.
struct DetectorWorker {
    jobs: Option<mpsc::SyncSender<Job>>,
    done: mpsc::Receiver<Done>,
    thread: Option<std::thread::JoinHandle<()>>,
    kind: DetectorKind,
    next_seq: u64,
    /// Inputs and face lists handed back by the thread, for the next frames (no allocation in
    /// steady state).
    spare: Vec<Prepared>,
    spare_dets: Vec<Vec<Detection>>,
    model_time: Duration,
    work_time: Duration,
    /// Time the caller spent blocked waiting for answers.
    waited: Duration,
}

impl DetectorWorker {
    fn spawn(mut detector: Detector) -> Result<Self, ModelError> {
        // Bounded channels keep their slots for good (unbounded ones allocate as messages
        // come). At most two jobs are out at a time (a frame and, pipelined, the next), and an
        // abandoned frame's answer is collected before the next job, so neither ever fills.
        let (jobs, job_rx) = mpsc::sync_channel::<Job>(JOBS_IN_FLIGHT);
        let (done_tx, done) = mpsc::sync_channel::<Done>(JOBS_IN_FLIGHT);
        let kind = detector.kind();
        let thread = std::thread::Builder::new()
            .name("faceemotion-detector".into())
            .spawn(move || {
                for mut job in job_rx {
                    let started = std::time::Instant::now();
                    let result = detector.infer(&job.prepared, job.threshold, &mut job.dets);
                    let done = Done {
                        seq: job.seq,
                        prepared: job.prepared,
                        dets: job.dets,
                        result,
                        model_time: detector.take_model_time(),
                        work_time: started.elapsed(),
                    };
                    if done_tx.send(done).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| ModelError::Worker(e.to_string()))?;
        Ok(Self {
            jobs: Some(jobs),
            done,
            thread: Some(thread),
            kind,
            next_seq: 0,
            spare: Vec::new(),
            spare_dets: Vec::new(),
            model_time: Duration::ZERO,
            work_time: Duration::ZERO,
            waited: Duration::ZERO,
        })
    }

    fn submit(&mut self, prepared: Prepared, threshold: f32) -> Result<u64, ModelError> {
        let seq = self.next_seq;
        self.next_seq += 1;
        let job = Job {
            seq,
            prepared,
            dets: self.spare_dets.pop().unwrap_or_default(),
            threshold,
        };
        let sent = self.jobs.as_ref().map(|j| j.send(job));
        match sent {
            Some(Ok(())) => Ok(seq),
            _ => Err(ModelError::Worker("it no longer takes frames".into())),
        }
    }

    /// The answer to job `seq`, swapped into `dets`; answers to jobs given up on are skipped.
    fn wait(&mut self, seq: u64, dets: &mut Vec<Detection>) -> Result<(), ModelError> {
        loop {
            let started = std::time::Instant::now();
            let done = self.done.recv();
            self.waited += started.elapsed();
            let mut done = done.map_err(|_| ModelError::Worker("it ended without an answer".into()))?;
            self.spare.push(done.prepared);
            self.model_time += done.model_time;
            self.work_time += done.work_time;
            if done.seq == seq {
                std::mem::swap(dets, &mut done.dets);
            }
            self.spare_dets.push(done.dets);
            match done.seq.cmp(&seq) {
                std::cmp::Ordering::Less => continue,
                std::cmp::Ordering::Equal => return done.result,
                std::cmp::Ordering::Greater => {
                    return Err(ModelError::Worker(format!("the answer to frame job {seq} was lost")))
                }
            }
        }
    }
}

impl Drop for DetectorWorker {
    fn drop(&mut self) {
        // Closing the job channel ends the thread's loop.
        self.jobs.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Detector jobs that can be waiting at once: two in use (pipelining), the rest is slack.
const JOBS_IN_FLIGHT: usize = 4;

/// What [`Analyzer::begin`] started for a frame, to be given to [`Analyzer::finish`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    /// The detector job of this frame; `None` on frames where the tracker alone moves the faces.
    detection: Option<u64>,
}

pub struct Analyzer {
    config: ModelConfig,
    detector: DetectorWorker,
    letterboxer: Letterboxer,
    emotion: Option<EmotionClassifier>,
    gender: Option<GenderClassifier>,
    resampler: Resampler,
    shrink: crate::resample::GreyShrinker,
    crop_rgb: Vec<u8>,
    /// Model inputs of the faces to classify: emotion, gender.
    batches: [Vec<f32>; 2],
    /// Which faces went into each batch.
    picked: [Vec<usize>; 2],
    emotion_out: Vec<EmotionScores>,
    gender_out: Vec<GenderScores>,
    /// The detector's latest faces.
    dets: Vec<Detection>,
    /// Which faces of the frame are due for each classifier.
    emotion_due: Vec<bool>,
    gender_due: Vec<bool>,
}

impl Analyzer {
    /// Loads and checks every model; errors name the file and what is wrong with it.
    pub fn new(config: ModelConfig) -> Result<Self, ModelError> {
        let lib = config.ort_library.as_deref();
        // Measured here: BlazeFace runs no faster on two threads than on one, while the batched
        // classifiers gain about 1.5x. So in auto mode the detector leaves the other core to the
        // rest of the pipeline (the decoder, typically).
        let (det_threads, cls_threads) = match config.threads {
            0 => (1, std::thread::available_parallelism().map_or(1, |n| n.get())),
            n => (n, n),
        };
        let detector = DetectorWorker::spawn(Detector::load(&config.detector, det_threads, lib)?)?;
        let emotion = config
            .emotion
            .as_ref()
            .map(|p| EmotionClassifier::load(p, cls_threads, lib))
            .transpose()?;
        let gender = config
            .gender
            .as_ref()
            .map(|p| GenderClassifier::load(p, cls_threads, lib))
            .transpose()?;
        Ok(Self {
            config,
            detector,
            letterboxer: Letterboxer::default(),
            emotion,
            gender,
            resampler: Resampler::new(),
            shrink: Default::default(),
            crop_rgb: Vec::new(),
            batches: [Vec::new(), Vec::new()],
            picked: [Vec::new(), Vec::new()],
            emotion_out: Vec::new(),
            gender_out: Vec::new(),
            dets: Vec::new(),
            emotion_due: Vec::new(),
            gender_due: Vec::new(),
        })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// Time spent inside the models (detector, classifiers) since the last call.
    pub fn take_model_time(&mut self) -> std::time::Duration {
        std::mem::take(&mut self.detector.model_time)
            + self.emotion.as_mut().map(|c| c.take_model_time()).unwrap_or_default()
            + self.gender.as_mut().map(|c| c.take_model_time()).unwrap_or_default()
    }

    /// Since the last call: the detector thread's working time, and the time this thread spent
    /// waiting for it. Work done on the calling thread is its elapsed time less the waiting.
    pub fn take_detector_times(&mut self) -> (Duration, Duration) {
        (
            std::mem::take(&mut self.detector.work_time),
            std::mem::take(&mut self.detector.waited),
        )
    }

    pub fn detector_kind(&self) -> DetectorKind {
        self.detector.kind
    }

    /// Letterboxes `img` and gives it to the detector thread; the answer is read with `wait_detection`.
    fn submit_detection(&mut self, img: &ImageView, params: &Params) -> Result<u64, ModelError> {
        let mut prepared = self.detector.spare.pop().unwrap_or_default();
        let size = self.detector.kind.input_size();
        if let Err(e) = self.letterboxer.prepare(img, size, params.tiles, &mut prepared) {
            self.detector.spare.push(prepared);
            return Err(e);
        }
        self.detector.submit(prepared, params.threshold)
    }

    /// Waits for job `seq` and leaves its faces, filtered and capped by `params`, in `self.dets`.
    fn wait_detection(&mut self, seq: u64, params: &Params) -> Result<(), ModelError> {
        self.detector.wait(seq, &mut self.dets)?;
        let min = params.min_face_size as f32;
        self.dets
            .retain(|d| d.bbox.width().max(d.bbox.height()) >= min.max(1.0));
        self.dets.truncate(params.max_faces);
        Ok(())
    }

    /// Detects faces, filtered and capped by `params`, strongest first.
    pub fn detect(&mut self, img: &ImageView, params: &Params) -> Result<Vec<Detection>, ModelError> {
        let seq = self.submit_detection(img, params)?;
        self.wait_detection(seq, params)?;
        Ok(self.dets.clone())
    }

    /// Classifies faces, each model in one batch: emotion on the faces `emotion` selects, gender
    /// (and age) on those `gender` selects; `None` selects every face.
    pub fn classify(
        &mut self,
        img: &ImageView,
        faces: &mut [Face],
        emotion: Option<&[bool]>,
        gender: Option<&[bool]>,
        params: &Params,
    ) -> Result<(), ModelError> {
        let pick = |w: Option<&[bool]>, i: usize| w.is_none_or(|w| w.get(i).copied().unwrap_or(false));
        let emotion_kind = self.emotion.as_ref().map(|c| c.crop_kind());
        let gender_kind = self.gender.as_ref().map(|c| c.crop_kind());
        for b in &mut self.batches {
            b.clear();
        }
        for p in &mut self.picked {
            p.clear();
        }
        for (i, face) in faces.iter().enumerate() {
            let wants = [
                emotion_kind.filter(|_| pick(emotion, i)),
                gender_kind.filter(|_| pick(gender, i)),
            ];
            if wants.iter().all(Option::is_none) {
                continue;
            }
            // One trip to the frame per face: the 112 RGB crop when a model wants it, and the
            // 64 grey crop derived from it (grey, then area resize, as the models were trained),
            // since resampling the frame's planes is what costs here, not the small crop.
            let n = if wants.contains(&Some(CropKind::Rgb112)) {
                112
            } else {
                64
            };
            self.crop_rgb.resize(n * n * 3, 0);
            self.resampler
                .resample(
                    img,
                    crop_region(&face.bbox(), params.crop_scale),
                    n,
                    n,
                    Border::Replicate,
                    &mut self.crop_rgb,
                )
                .map_err(|e| ModelError::Image(e.to_string()))?;
            for (k, kind) in wants.into_iter().enumerate() {
                let Some(kind) = kind else { continue };
                let batch = &mut self.batches[k];
                match kind {
                    CropKind::Grey64 if n != 64 => {
                        CropKind::push_grey(self.shrink.grey(&self.crop_rgb, n, 64), batch);
                    }
                    _ => kind.push_input(&self.crop_rgb, batch),
                }
                self.picked[k].push(i);
            }
        }
        if let Some(c) = self.emotion.as_mut() {
            c.classify(&self.batches[0], &mut self.emotion_out)?;
            for (&i, e) in self.picked[0].iter().zip(&self.emotion_out) {
                faces[i].emotion = Some(*e);
            }
        }
        if let Some(c) = self.gender.as_mut() {
            c.classify(&self.batches[1], &mut self.gender_out)?;
            for (&i, g) in self.picked[1].iter().zip(&self.gender_out) {
                faces[i].gender = Some(*g);
            }
        }
        Ok(())
    }

    /// One frame of a video: detects (every `inference_interval` frames; in between the tracker
    /// moves the faces), classifies the faces that are due, and returns them with their ids.
    pub fn analyze_video(
        &mut self,
        img: &ImageView,
        params: &Params,
        tracker: &mut Tracker,
        frame_index: u64,
    ) -> Result<Vec<Face>, ModelError> {
        let ticket = self.begin(img, params, frame_index)?;
        let mut faces = Vec::new();
        self.finish(img, params, tracker, ticket, &mut faces)?;
        Ok(faces)
    }

    /// First half of [`Analyzer::analyze_video`]: starts the detector on the frame, when it is a
    /// detection frame, and returns at once. Calling `begin` for frame N+1 before `finish` for
    /// frame N lets the detector work on N+1 while the classifiers work on N: frames must be
    /// finished in the order they were begun.
    pub fn begin(&mut self, img: &ImageView, params: &Params, frame_index: u64) -> Result<Ticket, ModelError> {
        let detecting = frame_index % params.inference_interval.max(1) as u64 == 0;
        let detection = if detecting {
            Some(self.submit_detection(img, params)?)
        } else {
            None
        };
        Ok(Ticket { detection })
    }

    /// Second half of [`Analyzer::analyze_video`]: waits for the frame's faces, updates the
    /// tracker, classifies the faces that are due, and leaves them in `faces` (whose room is
    /// reused from frame to frame).
    pub fn finish(
        &mut self,
        img: &ImageView,
        params: &Params,
        tracker: &mut Tracker,
        ticket: Ticket,
        faces: &mut Vec<Face>,
    ) -> Result<(), ModelError> {
        faces.clear();
        let detecting = ticket.detection.is_some();
        if let Some(seq) = ticket.detection {
            self.wait_detection(seq, params)?;
            tracker.update(&self.dets);
        } else {
            tracker.predict(img.width as f32, img.height as f32);
        }
        tracker.faces_into(faces);
        let gender_interval = match params.gender_interval {
            0 => params.reclassify_interval,
            n => n,
        };
        let (mut emotion_due, mut gender_due) = (
            std::mem::take(&mut self.emotion_due),
            std::mem::take(&mut self.gender_due),
        );
        tracker.due_into(
            params.reclassify_interval,
            gender_interval,
            &mut emotion_due,
            &mut gender_due,
        );
        if detecting && params.inference_interval > 1 {
            // Spread the work: a detector frame classifies only new faces, and known faces
            // that are due wait one frame, so that no frame carries both loads.
            for ((e, g), never) in emotion_due
                .iter_mut()
                .zip(gender_due.iter_mut())
                .zip(tracker.never_classified())
            {
                *e &= never.0;
                *g &= never.1;
            }
        }
        let mut result = Ok(());
        if emotion_due.iter().chain(&gender_due).any(|&d| d) {
            result = self.classify(img, faces, Some(&emotion_due), Some(&gender_due), params);
            if result.is_ok() {
                tracker.store_labels(faces, &emotion_due, &gender_due);
            }
        }
        (self.emotion_due, self.gender_due) = (emotion_due, gender_due);
        result
    }

    /// Gives up on a begun frame (dropped by a flush): waits for its detector job, if any, so
    /// that no answer is left waiting, and forgets it.
    pub fn abandon(&mut self, ticket: Ticket) {
        if let Some(seq) = ticket.detection {
            let _ = self.detector.wait(seq, &mut self.dets);
        }
    }

    /// Detects and classifies every face of a still frame.
    pub fn analyze(&mut self, img: &ImageView, params: &Params) -> Result<Vec<Face>, ModelError> {
        let dets = self.detect(img, params)?;
        let mut faces: Vec<Face> = dets
            .into_iter()
            .map(|detection| Face {
                detection,
                emotion: None,
                gender: None,
                id: 0,
            })
            .collect();
        self.classify(img, &mut faces, None, None, params)?;
        Ok(faces)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_is_a_square_around_the_box_centre() {
        let b = BBox {
            x1: 100.0,
            y1: 50.0,
            x2: 200.0,
            y2: 130.0,
        };
        let r = crop_region(&b, 1.3);
        assert!((r.w - 130.0).abs() < 1e-4 && (r.h - 130.0).abs() < 1e-4);
        assert!((r.x - 85.0).abs() < 1e-4 && (r.y - 25.0).abs() < 1e-4);
    }
}
