//! Frame in, faces out: the models (shared by every stream of the process), detection and
//! classification as jobs of the process's inference pool, crops, and batched classification,
//! with the answers of an ensemble averaged.

use std::path::{Path, PathBuf};
use std::sync::{mpsc, OnceLock};
use std::time::Duration;

use crate::classifier::{Batch, CropKind, EmotionClassifier, GenderClassifier, NetStats};
use crate::descriptor::{Aligner, Describer};
use crate::detector::{self, letterbox_region, Detector, DetectorKind, Letterboxer, Prepared};
use crate::face::{BBox, Detection, EmotionScores, Face, GenderScores};
use crate::image::ImageView;
use crate::pool::{Gate, Pool, Task};
pub use crate::resample::crop_region;
use crate::resample::{Border, RectF, Resampler};
use crate::runtime::{ModelError, ModelRole};
use crate::scan::{self, Scanner, Search};

/// Which models to load and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelConfig {
    pub detector: PathBuf,
    /// Emotion models: none (no emotion), one, or two whose probabilities are averaged.
    pub emotion: Vec<PathBuf>,
    /// Gender models, the same way; the age comes from those that give it.
    pub gender: Vec<PathBuf>,
    /// The face descriptor of visitor recognition; `None`: recognition off, nothing loaded.
    pub descriptor: Option<PathBuf>,
    /// Workers of the process's inference pool, read when the pool starts (the first analysis
    /// of the process); 0: one per core.
    pub threads: usize,
    /// ONNX Runtime library; `None` uses `$ORT_DYLIB_PATH` or the installed one.
    pub ort_library: Option<String>,
    /// Which loaded models to share: "" every element's using the same files, else only those
    /// of the same group (DL Streamer's `model-instance-id`).
    pub group: String,
}

impl ModelConfig {
    /// The model files of `role`, for messages.
    pub fn describe(&self, role: ModelRole) -> String {
        match role {
            ModelRole::Detector => self.detector.display().to_string(),
            ModelRole::Emotion => format!("{:?}", self.emotion),
            ModelRole::Gender => format!("{:?}", self.gender),
            ModelRole::Descriptor => match &self.descriptor {
                Some(p) => p.display().to_string(),
                None => "none (recognition off)".into(),
            },
        }
    }
}

/// What the tracker knows when a frame's detection starts (two frames back, see
/// [`crate::stream`]): every face, where it expects it on the frame (whose own motion is no
/// reason to scan), and those the whole frame is too coarse for (track id and expected box), to
/// be looked for again in cells, most urgent first. Times in running
/// time (ns).
#[derive(Debug, Clone, Copy, Default)]
pub struct Look<'a> {
    pub now: u64,
    pub known: &'a [BBox],
    pub refind: &'a [(u64, BBox)],
    /// Whether a face too small for the whole frame looked for in a cell may wait for the
    /// detector frame after next: the detector runs on every frame (at a longer interval,
    /// waiting would leave a small face unlooked for twice the interval).
    pub alternate: bool,
}

/// How a frame becomes faces: per-frame knobs, cheap to change at any time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// Minimum detector score (0..1).
    pub threshold: f32,
    /// Faces whose box's larger side is below this many pixels are dropped.
    pub min_face_size: u32,
    /// At most this many faces, the highest scoring, are kept.
    pub max_faces: usize,
    /// Side of the classifier crop as a multiple of the larger box side.
    pub crop_scale: f32,
    /// Where the detector looks besides the whole frame (the `tiles` property).
    pub search: Search,
}

impl Default for Params {
    fn default() -> Self {
        Self {
            threshold: 0.6,
            min_face_size: 0,
            max_faces: 64,
            crop_scale: 1.3,
            search: Search::Auto,
        }
    }
}

/// One face's answers from the classifiers (averaged over an ensemble).
pub type Answer = (Option<EmotionScores>, Option<GenderScores>);

/// A model run for the process's inference pool: what it needs travels in it and comes back
/// with its answer, so that queuing one allocates nothing.
enum Work {
    Detect(DetectJob),
    Emotion(NetJob<EmotionClassifier, Option<EmotionScores>>),
    Gender(NetJob<GenderClassifier, Option<GenderScores>>),
    Describe(DescribeJob),
}

/// The descriptor network on a batch of faces: their descriptors, one after the other, and
/// whether each is one (finite).
struct DescribeJob {
    net: Describer,
    batch: Vec<u8>,
    out: Vec<f32>,
    finite: Vec<bool>,
    stats: NetStats,
    result: Result<(), ModelError>,
}

struct DetectJob {
    seq: u64,
    detector: Detector,
    prepared: Prepared,
    /// Where the faces go: a list handed back by an earlier answer, so none is allocated.
    dets: Vec<Detection>,
    scratch: detector::Scratch,
    result: Result<(), ModelError>,
    /// The whole job on the worker, model and decoding.
    work_time: Duration,
}

/// One classifier network of an ensemble on a batch of faces.
struct NetJob<C, O> {
    /// Which network of the ensemble.
    index: usize,
    net: C,
    batch: Batch,
    out: Vec<O>,
    stats: NetStats,
    result: Result<(), ModelError>,
}

impl Task for Work {
    fn run(&mut self) {
        match self {
            Work::Detect(j) => {
                let started = std::time::Instant::now();
                j.result = j.detector.infer(&j.prepared, &mut j.scratch, &mut j.dets);
                j.work_time = started.elapsed();
                j.prepared.release(USUAL_RUNS);
            }
            Work::Emotion(j) => j.result = j.net.classify(&j.batch, &mut j.out, &mut j.stats),
            Work::Gender(j) => j.result = j.net.classify(&j.batch, &mut j.out, &mut j.stats),
            Work::Describe(j) => j.result = j.net.describe(&j.batch, &mut j.out, &mut j.finite, &mut j.stats),
        }
    }

    fn failed(&mut self) {
        let e = Err(ModelError::Worker("a model run failed".into()));
        match self {
            Work::Detect(j) => {
                j.prepared.release(USUAL_RUNS);
                j.dets.clear();
                j.result = e;
            }
            Work::Emotion(j) => {
                j.out.clear();
                j.result = e;
            }
            Work::Gender(j) => {
                j.out.clear();
                j.result = e;
            }
            Work::Describe(j) => {
                j.out.clear();
                j.finite.clear();
                j.result = e;
            }
        }
    }
}

static POOL: OnceLock<&'static Pool<Work>> = OnceLock::new();

/// The process's inference pool, started with `threads` workers (0: one per core) by the first
/// stream to ask.
fn pool(threads: usize) -> &'static Pool<Work> {
    POOL.get_or_init(|| {
        let n = match threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        Pool::start(n, "faceemotion-inference")
    })
}

/// Workers of the process's inference pool, once it has started.
pub fn pool_workers() -> Option<usize> {
    POOL.get().map(|p| p.workers())
}

/// Faces to a descriptor job at most. Their crops (224x224 RGB each) wait for the pool in the
/// stream's memory, and at the start every stream sees all its faces appear at once; few frames
/// have more appearing faces than this, and each job beyond the first waits for the pool again.
const DESCRIBE_BATCH: usize = 4;

/// The most detector inputs a frame has outside a full search: the whole frame, a tile and the
/// mosaics of known faces. A frame with more (the whole grid of tiles) is a large job, let in by
/// [`large_jobs`].
const USUAL_RUNS: usize = 2 + scan::MAX_MOSAICS;

/// Room for the process's large detector jobs: two per worker keeps the workers fed.
fn large_jobs() -> &'static Gate {
    static GATE: OnceLock<Gate> = OnceLock::new();
    GATE.get_or_init(|| Gate::new(2 * pool_workers().unwrap_or(1).max(1)))
}

/// Detector jobs of a stream that can be waiting at once: two in use (pipelining), the rest is
/// slack. Classification jobs: one per network of the ensembles.
const JOBS_IN_FLIGHT: usize = 4;
const NETS_IN_FLIGHT: usize = 8;

/// The stream's detector: its jobs in the pool, answered (in any order) on its own channel.
struct DetectorJobs {
    detector: Detector,
    replies: mpsc::Receiver<Work>,
    reply_to: mpsc::SyncSender<Work>,
    next_seq: u64,
    /// Answers that came before the one waited for.
    early: Vec<DetectJob>,
    /// Inputs, face lists and scratch handed back by earlier answers, for the next frames (no
    /// allocation in steady state).
    spare: Vec<Prepared>,
    spare_dets: Vec<Vec<Detection>>,
    spare_scratch: Vec<detector::Scratch>,
    model_time: Duration,
    work_time: Duration,
    /// Time the caller spent blocked waiting for answers.
    waited: Duration,
    nonfinite: usize,
    /// Model runs asked for (inputs submitted) since the last look.
    runs: u64,
}

impl DetectorJobs {
    fn new(detector: Detector) -> Self {
        let (reply_to, replies) = mpsc::sync_channel(JOBS_IN_FLIGHT * 2);
        Self {
            detector,
            replies,
            reply_to,
            next_seq: 0,
            early: Vec::with_capacity(JOBS_IN_FLIGHT),
            spare: Vec::new(),
            spare_dets: Vec::new(),
            spare_scratch: Vec::new(),
            model_time: Duration::ZERO,
            work_time: Duration::ZERO,
            waited: Duration::ZERO,
            nonfinite: 0,
            runs: 0,
        }
    }

    fn submit(&mut self, pool: &Pool<Work>, prepared: Prepared) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.runs += prepared.runs() as u64;
        let job = DetectJob {
            seq,
            detector: self.detector.clone(),
            prepared,
            dets: self.spare_dets.pop().unwrap_or_default(),
            scratch: self.spare_scratch.pop().unwrap_or_default(),
            result: Ok(()),
            work_time: Duration::ZERO,
        };
        pool.submit(Work::Detect(job), &self.reply_to);
        seq
    }

    /// The answer to job `seq`, swapped into `dets`; answers to jobs given up on are collected.
    fn wait(&mut self, seq: u64, dets: &mut Vec<Detection>) -> Result<(), ModelError> {
        let mut job = loop {
            if let Some(i) = self.early.iter().position(|j| j.seq == seq) {
                break self.early.swap_remove(i);
            }
            let started = std::time::Instant::now();
            let got = self.replies.recv();
            self.waited += started.elapsed();
            match got {
                Ok(Work::Detect(j)) => self.early.push(j),
                Ok(_) => {}
                Err(_) => return Err(ModelError::Worker("the inference pool stopped".into())),
            }
        };
        self.spare.push(job.prepared);
        self.model_time += std::mem::take(&mut job.scratch.busy);
        self.nonfinite += std::mem::take(&mut job.scratch.nonfinite);
        self.work_time += job.work_time;
        std::mem::swap(dets, &mut job.dets);
        self.spare_dets.push(job.dets);
        self.spare_scratch.push(job.scratch);
        job.result
    }
}

/// A model that gave NaN or infinite values since the last look, and on how many faces (or
/// anchors, for the detector).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonFinite {
    pub role: ModelRole,
    pub path: PathBuf,
    pub count: usize,
}

pub struct Analyzer {
    config: ModelConfig,
    pool: &'static Pool<Work>,
    detector: DetectorJobs,
    letterboxer: Letterboxer,
    scanner: Scanner,
    /// The tiles and cells of the frame being prepared.
    tiles: Vec<RectF>,
    cells: Vec<RectF>,
    emotion: Vec<EmotionClassifier>,
    gender: Vec<GenderClassifier>,
    resampler: Resampler,
    shrink: crate::resample::GreyShrinker,
    crop_rgb: Vec<u8>,
    /// The faces to classify as each network takes them (see [`Batch`]), one batch per
    /// network: the emotion networks', then the gender networks'.
    batches: Vec<Batch>,
    /// Which faces went into the emotion and the gender batches.
    picked: [Vec<usize>; 2],
    emotion_out: Vec<Vec<Option<EmotionScores>>>,
    gender_out: Vec<Vec<Option<GenderScores>>>,
    /// What each network counted since the last look (emotion networks, then gender).
    net_stats: Vec<NetStats>,
    /// The classifiers' answers, on the stream's own channel.
    net_replies: mpsc::Receiver<Work>,
    net_reply_to: mpsc::SyncSender<Work>,
    /// The detector's latest faces.
    dets: Vec<Detection>,
    describer: Option<Describer>,
    aligner: Aligner,
    /// The descriptor's batch, outputs and counts, handed back by its last job; the frame's
    /// descriptors, gathered from its jobs.
    describe_batch: Vec<u8>,
    describe_out: Vec<f32>,
    describe_finite: Vec<bool>,
    descriptors: Vec<f32>,
    described: Vec<bool>,
    describe_stats: NetStats,
    /// Faces given to the descriptor since the last look.
    described_faces: u64,
}

fn load_all<T>(paths: &[PathBuf], mut load: impl FnMut(&Path) -> Result<T, ModelError>) -> Result<Vec<T>, ModelError> {
    paths.iter().map(|p| load(p)).collect()
}

impl Analyzer {
    /// Loads and checks every model; errors name the file and what is wrong with it.
    pub fn new(config: ModelConfig) -> Result<Self, ModelError> {
        let detector = DetectorJobs::new(Self::load_detector(&config)?);
        let emotion = Self::load_emotion(&config)?;
        let gender = Self::load_gender(&config)?;
        let describer = Self::load_describer(&config)?;
        let nets = emotion.len() + gender.len();
        let (net_reply_to, net_replies) = mpsc::sync_channel(NETS_IN_FLIGHT);
        Ok(Self {
            pool: pool(config.threads),
            config,
            detector,
            letterboxer: Letterboxer::default(),
            scanner: Scanner::default(),
            tiles: Vec::new(),
            cells: Vec::new(),
            emotion,
            gender,
            resampler: Resampler::new(),
            shrink: Default::default(),
            crop_rgb: Vec::new(),
            batches: vec![Batch::default(); nets],
            picked: [Vec::new(), Vec::new()],
            emotion_out: Vec::new(),
            gender_out: Vec::new(),
            net_stats: vec![NetStats::default(); nets],
            net_replies,
            net_reply_to,
            dets: Vec::new(),
            describer,
            aligner: Aligner::default(),
            describe_batch: Vec::new(),
            describe_out: Vec::new(),
            describe_finite: Vec::new(),
            descriptors: Vec::new(),
            described: Vec::new(),
            describe_stats: NetStats::default(),
            described_faces: 0,
        })
    }

    fn load_describer(config: &ModelConfig) -> Result<Option<Describer>, ModelError> {
        let lib = config.ort_library.as_deref();
        config
            .descriptor
            .as_deref()
            .map(|p| Describer::load(p, &config.group, lib))
            .transpose()
    }

    fn load_detector(config: &ModelConfig) -> Result<Detector, ModelError> {
        Detector::load(&config.detector, &config.group, config.ort_library.as_deref())
    }

    fn load_emotion(config: &ModelConfig) -> Result<Vec<EmotionClassifier>, ModelError> {
        let lib = config.ort_library.as_deref();
        load_all(&config.emotion, |p| EmotionClassifier::load(p, &config.group, lib))
    }

    fn load_gender(config: &ModelConfig) -> Result<Vec<GenderClassifier>, ModelError> {
        let lib = config.ort_library.as_deref();
        load_all(&config.gender, |p| GenderClassifier::load(p, &config.group, lib))
    }

    /// Loads the models of `role` from `config` (its paths for that role, and the thread count)
    /// in place of the current ones; on error the current ones stay. No emotion or gender paths:
    /// that classifier is off.
    pub fn replace(&mut self, role: ModelRole, config: &ModelConfig) -> Result<(), ModelError> {
        let mut next = ModelConfig {
            group: config.group.clone(),
            ..self.config.clone()
        };
        match role {
            ModelRole::Detector => {
                next.detector = config.detector.clone();
                // Jobs of the old model still out are collected by the element before a
                // reload; the new model answers on a channel of its own.
                let jobs = DetectorJobs::new(Self::load_detector(&next)?);
                self.detector = jobs;
            }
            ModelRole::Emotion => {
                next.emotion = config.emotion.clone();
                self.emotion = Self::load_emotion(&next)?;
            }
            ModelRole::Gender => {
                next.gender = config.gender.clone();
                self.gender = Self::load_gender(&next)?;
            }
            ModelRole::Descriptor => {
                next.descriptor = config.descriptor.clone();
                self.describer = Self::load_describer(&next)?;
            }
        }
        self.config = next;
        let nets = self.emotion.len() + self.gender.len();
        self.batches.resize(nets, Batch::default());
        self.net_stats = vec![NetStats::default(); nets];
        Ok(())
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    pub fn has_emotion(&self) -> bool {
        !self.emotion.is_empty()
    }

    pub fn has_gender(&self) -> bool {
        !self.gender.is_empty()
    }

    pub fn has_descriptor(&self) -> bool {
        self.describer.is_some()
    }

    /// Values of one descriptor (0 with recognition off).
    pub fn descriptor_dims(&self) -> usize {
        self.describer.as_ref().map_or(0, |d| d.dims())
    }

    /// Zeroes the descriptor's batches (face crops) and answers, all of their room, once the
    /// caller has taken what it needs: no face's crop or descriptor outlives its use in a buffer
    /// kept only for its room (a frame's jobs reuse one batch, and each leaves the one before's
    /// faces beyond its own length).
    pub fn wipe_descriptors(&mut self) {
        crate::runtime::wipe(&mut self.describe_batch);
        crate::runtime::wipe(&mut self.descriptors);
        crate::runtime::wipe(&mut self.describe_out);
        self.aligner.wipe();
    }

    /// Descriptors of `faces` (as pool jobs of at most [`DESCRIBE_BATCH`] faces, each waited
    /// for): for face i, `dims` values from
    /// `i * dims` of the returned slice, and whether it got one (big enough faces only are
    /// asked for by the caller; a model answering NaN gives none).
    pub fn describe<'a>(
        &mut self,
        img: &ImageView,
        faces: impl Iterator<Item = &'a Detection>,
    ) -> Result<(&[f32], &[bool]), ModelError> {
        self.descriptors.clear();
        self.described.clear();
        let Some(net) = self.describer.clone() else {
            return Ok((&[], &[]));
        };
        let side = net.side();
        let mut faces = faces.peekable();
        // A few faces to a job: the crops wait for the pool in the stream's memory, and a
        // frame where many faces appear at once would otherwise keep room for all of them.
        while faces.peek().is_some() {
            let mut batch = std::mem::take(&mut self.describe_batch);
            batch.clear();
            let mut n = 0;
            for d in faces.by_ref().take(DESCRIBE_BATCH) {
                if let Err(e) = self.aligner.push(img, d, side, &mut batch) {
                    self.describe_batch = batch;
                    self.descriptors.clear();
                    self.described.clear();
                    return Err(e);
                }
                n += 1;
            }
            self.described_faces += n;
            let job = DescribeJob {
                net: net.clone(),
                batch,
                out: std::mem::take(&mut self.describe_out),
                finite: std::mem::take(&mut self.describe_finite),
                stats: NetStats::default(),
                result: Ok(()),
            };
            self.pool.submit(Work::Describe(job), &self.net_reply_to);
            let result = loop {
                let reply = self
                    .net_replies
                    .recv()
                    .map_err(|_| ModelError::Worker("the inference pool stopped".into()))?;
                if let Work::Describe(j) = reply {
                    self.descriptors.extend_from_slice(&j.out);
                    self.described.extend_from_slice(&j.finite);
                    (self.describe_batch, self.describe_out, self.describe_finite) = (j.batch, j.out, j.finite);
                    self.describe_stats.busy += j.stats.busy;
                    self.describe_stats.nonfinite += j.stats.nonfinite;
                    break j.result;
                }
            };
            if let Err(e) = result {
                self.descriptors.clear();
                self.described.clear();
                return Err(e);
            }
        }
        Ok((&self.descriptors, &self.described))
    }

    /// Time spent inside the models (detector, classifiers) since the last call.
    pub fn take_model_time(&mut self) -> std::time::Duration {
        std::mem::take(&mut self.detector.model_time)
            + self
                .net_stats
                .iter_mut()
                .map(|s| std::mem::take(&mut s.busy))
                .sum::<Duration>()
            + std::mem::take(&mut self.describe_stats.busy)
    }

    /// Since the last call: the detector job's working time on the pool, and the time this thread spent
    /// waiting for it. Work done on the calling thread is its elapsed time less the waiting.
    pub fn take_detector_times(&mut self) -> (Duration, Duration) {
        (
            std::mem::take(&mut self.detector.work_time),
            std::mem::take(&mut self.detector.waited),
        )
    }

    /// Detector runs asked for since the last call (the whole frame, tiles and mosaics).
    pub fn take_detector_runs(&mut self) -> u64 {
        std::mem::take(&mut self.detector.runs)
    }

    /// Faces given to the descriptor since the last call.
    pub fn take_described_faces(&mut self) -> u64 {
        std::mem::take(&mut self.described_faces)
    }

    /// The models that gave NaN or infinite values since the last call, appended to `out`.
    /// Such answers are no answers: the face gets no label from that model, the anchor no face.
    pub fn take_nonfinite(&mut self, out: &mut Vec<NonFinite>) {
        let mut push = |role, path: &Path, count| {
            if count > 0 {
                out.push(NonFinite {
                    role,
                    path: path.to_path_buf(),
                    count,
                });
            }
        };
        let det = std::mem::take(&mut self.detector.nonfinite);
        push(ModelRole::Detector, self.detector.detector.path(), det);
        let ne = self.emotion.len();
        for (k, c) in self.emotion.iter().enumerate() {
            let n = std::mem::take(&mut self.net_stats[k].nonfinite);
            push(ModelRole::Emotion, c.path(), n);
        }
        for (k, c) in self.gender.iter().enumerate() {
            let n = std::mem::take(&mut self.net_stats[ne + k].nonfinite);
            push(ModelRole::Gender, c.path(), n);
        }
        if let Some(d) = &self.describer {
            let n = std::mem::take(&mut self.describe_stats.nonfinite);
            push(ModelRole::Descriptor, d.path(), n);
        }
    }

    pub fn detector_kind(&self) -> DetectorKind {
        self.detector.detector.kind()
    }

    /// Lays out the detector's inputs for `img` (the whole frame letterboxed, and the tiles and
    /// cells `params.search` asks for, see [`crate::scan`]) and queues the detector job on the pool;
    /// the answer is read with `wait_detection`.
    /// The ids of `look.refind` that this frame does not look for (looked for on the previous
    /// detector frame, or more than the cells hold) go to `unlooked`, for the tracker to carry.
    pub fn submit_detection(
        &mut self,
        img: &ImageView,
        params: &Params,
        look: &Look,
        unlooked: &mut Vec<u64>,
    ) -> Result<u64, ModelError> {
        let mut prepared = self.detector.spare.pop().unwrap_or_default();
        unlooked.clear();
        let laid = self.lay_out(img, params, look, &mut prepared, unlooked);
        if let Err(e) = laid {
            prepared.release(USUAL_RUNS);
            self.detector.spare.push(prepared);
            return Err(e);
        }
        Ok(self.detector.submit(self.pool, prepared))
    }

    fn lay_out(
        &mut self,
        img: &ImageView,
        params: &Params,
        look: &Look,
        out: &mut Prepared,
        unlooked: &mut Vec<u64>,
    ) -> Result<(), ModelError> {
        let size = self.detector_kind().input_size();
        let lb = &mut self.letterboxer;
        lb.whole(img, size, params.threshold, out)?;
        let (w, h) = (img.width, img.height);
        match params.search {
            Search::Whole => return Ok(()),
            Search::AllTiles(cols) => scan::grid_into(w, h, cols, &mut self.tiles),
            Search::Auto => {
                let cols = scan::columns_for(w, h, size, scan::min_face(params.min_face_size, h));
                self.scanner
                    .observe(lb.whole_rgb(), size, letterbox_region(w, h), look.known);
                self.scanner.tiles_into(w, h, cols, false, look.now, &mut self.tiles);
            }
        }
        // The automatic search's full pass (the first frame, after a flush): a large job now and
        // then, whose memory goes once it has run. With `tiles=N` every frame is that large: its
        // inputs keep their memory, and take no ticket (a stream would hold one on every frame).
        if params.search == Search::Auto && self.tiles.len() > 1 {
            out.ticket = Some(large_jobs().enter());
        }
        let tile_threshold = params.threshold.max(scan::TILE_THRESHOLD);
        for &t in &self.tiles {
            lb.region(img, t, crate::face::Pass::Tile, tile_threshold, out)?;
        }
        if params.search != Search::Auto {
            return Ok(());
        }
        // Known faces the whole frame is too coarse for: in a cell each, where they are much
        // larger than in a tile (which is there for faces not known yet).
        let most = scan::MAX_MOSAICS * scan::CELLS_PER_SIDE * scan::CELLS_PER_SIDE;
        let alternate = look.alternate.then(|| scan::whole_frame_reach(w, h, size));
        self.scanner
            .cells_into(look.refind, most, alternate, &mut self.cells, unlooked);
        let threshold = params.threshold.min(scan::CELL_THRESHOLD);
        lb.mosaics(img, &self.cells, scan::CELLS_PER_SIDE, threshold, out)
    }

    /// Forgets what the progressive scan knew: the next frame is searched in full.
    pub fn restart_scan(&mut self) {
        self.scanner.reset();
    }

    /// Waits for job `seq` and returns its faces, filtered and capped by `params`.
    pub fn wait_detection(&mut self, seq: u64, params: &Params) -> Result<&[Detection], ModelError> {
        let result = self.detector.wait(seq, &mut self.dets);
        if result.is_err() {
            self.dets.clear();
        }
        result?;
        let min = params.min_face_size as f32;
        self.dets.retain(|d| d.bbox.side() >= min.max(1.0));
        self.dets.truncate(params.max_faces);
        Ok(&self.dets)
    }

    /// Gives up on a detector job (its frame was dropped): waits for it, so that no answer is
    /// left waiting, and forgets it.
    pub fn abandon_detection(&mut self, seq: u64) {
        let _ = self.detector.wait(seq, &mut self.dets);
    }

    /// Detects faces on a still picture, filtered and capped by `params`, strongest first: with
    /// the automatic search, the whole frame and every tile of its grid.
    pub fn detect(&mut self, img: &ImageView, params: &Params) -> Result<Vec<Detection>, ModelError> {
        let mut still = *params;
        if still.search == Search::Auto {
            let size = self.detector_kind().input_size();
            let cols = scan::columns_for(
                img.width,
                img.height,
                size,
                scan::min_face(params.min_face_size, img.height),
            );
            still.search = if cols > 1 {
                Search::AllTiles(cols)
            } else {
                Search::Whole
            };
        }
        let seq = self.submit_detection(img, &still, &Look::default(), &mut Vec::new())?;
        Ok(self.wait_detection(seq, params)?.to_vec())
    }

    /// Classifies faces, each network in one batch: emotion on the faces `emotion` selects,
    /// gender (and age) on those `gender` selects; `None` selects every face. Each face's
    /// answers, averaged over the networks of an ensemble, replace the contents of `answers`
    /// (one per face; `None` where not selected or no network gave a finite answer).
    pub fn classify(
        &mut self,
        img: &ImageView,
        faces: &[Face],
        emotion: Option<&[bool]>,
        gender: Option<&[bool]>,
        params: &Params,
        answers: &mut Vec<Answer>,
    ) -> Result<(), ModelError> {
        answers.clear();
        answers.resize(faces.len(), (None, None));
        let pick = |w: Option<&[bool]>, i: usize| w.is_none_or(|w| w.get(i).copied().unwrap_or(false));
        let ne = self.emotion.len();
        for b in &mut self.batches {
            b.clear();
        }
        for p in &mut self.picked {
            p.clear();
        }
        // Whether the emotion networks, and the gender networks, need the 112 RGB crop.
        let rgb_wanted = [
            self.emotion.iter().any(|c| c.crop_kind() == CropKind::Rgb112),
            self.gender.iter().any(|c| c.crop_kind() == CropKind::Rgb112),
        ];
        for (i, face) in faces.iter().enumerate() {
            let wanted = [ne > 0 && pick(emotion, i), !self.gender.is_empty() && pick(gender, i)];
            if !wanted[0] && !wanted[1] {
                continue;
            }
            let rgb = (wanted[0] && rgb_wanted[0]) || (wanted[1] && rgb_wanted[1]);
            // One trip to the frame per face: the 112 RGB crop when a model wants it, and the
            // 64 grey crop derived from it (grey, then area resize, as the models were trained),
            // since resampling the frame's planes is what costs here, not the small crop.
            let n = if rgb { 112 } else { 64 };
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
            let kinds = self
                .emotion
                .iter()
                .map(|c| (0, c.crop_kind()))
                .chain(self.gender.iter().map(|c| (1, c.crop_kind())));
            for (k, (attr, kind)) in kinds.enumerate() {
                if !wanted[attr] {
                    continue;
                }
                let batch = &mut self.batches[k];
                match kind {
                    CropKind::Grey64 if n != 64 => {
                        CropKind::push_grey(self.shrink.grey(&self.crop_rgb, n, 64), batch);
                    }
                    _ => kind.push_input(&self.crop_rgb, batch),
                }
            }
            for (attr, p) in self.picked.iter_mut().enumerate() {
                if wanted[attr] {
                    p.push(i);
                }
            }
        }
        self.run_nets()?;
        for (j, &i) in self.picked[0].iter().enumerate() {
            answers[i].0 = average_emotion(self.emotion_out.iter().filter_map(|o| o.get(j).copied().flatten()));
        }
        for (j, &i) in self.picked[1].iter().enumerate() {
            answers[i].1 = average_gender(self.gender_out.iter().filter_map(|o| o.get(j).copied().flatten()));
        }
        Ok(())
    }

    /// Runs every network on its batch as a job of the pool (the networks at once, on as many
    /// workers as are free) and waits for their answers.
    fn run_nets(&mut self) -> Result<(), ModelError> {
        let ne = self.emotion.len();
        self.emotion_out.resize_with(ne, Vec::new);
        self.gender_out.resize_with(self.gender.len(), Vec::new);
        let mut out = 0;
        for (k, c) in self.emotion.iter().enumerate() {
            if self.batches[k].is_empty() {
                self.emotion_out[k].clear();
                continue;
            }
            let job = NetJob {
                index: k,
                net: c.clone(),
                batch: std::mem::take(&mut self.batches[k]),
                out: std::mem::take(&mut self.emotion_out[k]),
                stats: NetStats::default(),
                result: Ok(()),
            };
            self.pool.submit(Work::Emotion(job), &self.net_reply_to);
            out += 1;
        }
        for (k, c) in self.gender.iter().enumerate() {
            if self.batches[ne + k].is_empty() {
                self.gender_out[k].clear();
                continue;
            }
            let job = NetJob {
                index: k,
                net: c.clone(),
                batch: std::mem::take(&mut self.batches[ne + k]),
                out: std::mem::take(&mut self.gender_out[k]),
                stats: NetStats::default(),
                result: Ok(()),
            };
            self.pool.submit(Work::Gender(job), &self.net_reply_to);
            out += 1;
        }
        let mut result = Ok(());
        // Every job queued is waited for, so that no batch is left behind in the pool; a reply
        // of another kind (none is expected) is not one of them.
        let mut pending = out;
        while pending > 0 {
            let reply = self
                .net_replies
                .recv()
                .map_err(|_| ModelError::Worker("the inference pool stopped".into()))?;
            let (r, stats, at) = match reply {
                Work::Emotion(j) => {
                    (self.batches[j.index], self.emotion_out[j.index]) = (j.batch, j.out);
                    (j.result, j.stats, j.index)
                }
                Work::Gender(j) => {
                    (self.batches[ne + j.index], self.gender_out[j.index]) = (j.batch, j.out);
                    (j.result, j.stats, ne + j.index)
                }
                Work::Detect(_) | Work::Describe(_) => continue,
            };
            pending -= 1;
            if let Some(s) = self.net_stats.get_mut(at) {
                s.busy += stats.busy;
                s.nonfinite += stats.nonfinite;
            }
            result = result.and(r);
        }
        result
    }

    /// Detects and classifies every face of a still frame.
    pub fn analyze(&mut self, img: &ImageView, params: &Params) -> Result<Vec<Face>, ModelError> {
        let dets = self.detect(img, params)?;
        let mut faces: Vec<Face> = dets.into_iter().map(Face::new).collect();
        let mut answers = Vec::new();
        self.classify(img, &faces, None, None, params, &mut answers)?;
        for (f, (e, g)) in faces.iter_mut().zip(answers) {
            (f.emotion, f.emotion_raw, f.gender) = (e, e, g);
        }
        Ok(faces)
    }
}

/// The seed paper's ensemble: the mean of the networks' class probabilities.
fn average_emotion(answers: impl Iterator<Item = EmotionScores>) -> Option<EmotionScores> {
    let (mut sum, mut n) = ([0.0f32; 7], 0);
    for a in answers {
        for (s, p) in sum.iter_mut().zip(a.0) {
            *s += p;
        }
        n += 1;
    }
    (n > 0).then(|| EmotionScores(sum.map(|s| s / n as f32)))
}

/// The mean female probability of the networks, and the mean age of those that give one.
fn average_gender(answers: impl Iterator<Item = GenderScores>) -> Option<GenderScores> {
    let (mut female, mut n, mut age, mut na) = (0.0f32, 0, 0.0f32, 0);
    for a in answers {
        female += a.female;
        n += 1;
        if let Some(x) = a.age {
            age += x;
            na += 1;
        }
    }
    (n > 0).then(|| GenderScores::new(female / n as f32, (na > 0).then(|| age / na as f32)))
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

    #[test]
    fn ensembles_average_probabilities_and_ages() {
        let e = average_emotion(
            [
                EmotionScores([0.0, 0.0, 0.0, 0.8, 0.0, 0.0, 0.2]),
                EmotionScores([0.0, 0.0, 0.0, 0.4, 0.0, 0.0, 0.6]),
            ]
            .into_iter(),
        )
        .unwrap();
        assert!((e.0[3] - 0.6).abs() < 1e-6 && (e.0[6] - 0.4).abs() < 1e-6);
        let g = average_gender([GenderScores::new(0.4, Some(30.0)), GenderScores::new(0.9, None)].into_iter()).unwrap();
        assert!((g.female - 0.65).abs() < 1e-6);
        assert_eq!(g.age, Some(30.0));
        assert!(average_gender(std::iter::empty()).is_none());
    }
}
