//! The element: maps frames, calls the analysis core and the painter, writes metadata.

use std::path::PathBuf;
use std::sync::{LazyLock, Mutex};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::prelude::*;
use gst_video::subclass::prelude::*;

use crate::analysis::{Analyzer, Face, ModelConfig, Params, Ticket};
use crate::classifier::EMOTIONS;
use crate::draw::Painter;
use crate::image::{ImageView, ImageViewMut, PixelFormat, YuvMatrix};
use crate::runtime;
use crate::tracker::Tracker;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "faceemotion",
        gst::DebugColorFlags::empty(),
        Some("Face emotion and gender analysis"),
    )
});

use crate::runtime::{EMOTION_MODEL, FULL_RANGE_MODEL, GENDER_MODEL, SHORT_RANGE_MODEL};

const FORMATS: [(gst_video::VideoFormat, PixelFormat); 17] = {
    use gst_video::VideoFormat as V;
    use PixelFormat as P;
    [
        (V::Yuy2, P::Yuy2),
        (V::Uyvy, P::Uyvy),
        (V::I420, P::I420),
        (V::Yv12, P::Yv12),
        (V::Nv12, P::Nv12),
        (V::Nv21, P::Nv21),
        (V::Rgb, P::Rgb),
        (V::Bgr, P::Bgr),
        (V::Rgba, P::Rgba),
        (V::Bgra, P::Bgra),
        (V::Rgbx, P::Rgbx),
        (V::Bgrx, P::Bgrx),
        (V::Xrgb, P::Xrgb),
        (V::Xbgr, P::Xbgr),
        (V::Argb, P::Argb),
        (V::Abgr, P::Abgr),
        (V::Gray8, P::Gray8),
    ]
};

fn pixel_format(f: gst_video::VideoFormat) -> Option<PixelFormat> {
    FORMATS.iter().find(|(v, _)| *v == f).map(|(_, p)| *p)
}

#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstFaceEmotionDetector")]
pub enum DetectorChoice {
    #[enum_value(name = "Full range: faces near and far (192x192 input)", nick = "full-range")]
    FullRange = 0,
    #[enum_value(
        name = "Short range: faces within about 2 m, faster (128x128 input)",
        nick = "short-range"
    )]
    ShortRange = 1,
}

#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstFaceEmotionPipelining")]
pub enum Pipelining {
    #[enum_value(name = "Auto: on, unless the source is live", nick = "auto")]
    Auto = 0,
    #[enum_value(
        name = "On: the detector looks at the next frame while the classifiers work on this one (holds one frame)",
        nick = "on"
    )]
    On = 1,
    #[enum_value(name = "Off: each frame analysed on its own, for the lowest latency", nick = "off")]
    Off = 2,
}

const DEFAULT_THRESHOLD: f64 = 0.6;
const DEFAULT_MIN_FACE_SIZE: u32 = 0;
const DEFAULT_MAX_FACES: u32 = 64;
const DEFAULT_CROP_SCALE: f64 = 1.3;

#[derive(Debug, Clone)]
struct Settings {
    detector: DetectorChoice,
    detector_model: Option<String>,
    emotion_model: Option<String>,
    gender_model: Option<String>,
    ort_library: Option<String>,
    threads: u32,
    threshold: f64,
    min_face_size: u32,
    max_faces: u32,
    crop_scale: f64,
    tiles: u32,
    inference_interval: u32,
    reclassify_interval: u32,
    gender_interval: u32,
    draw: bool,
    post_messages: bool,
    pipelining: Pipelining,
    /// Bumped by every property that needs the models loaded again, so the streaming thread
    /// notices a change with one comparison instead of rebuilding the model paths every frame.
    models_generation: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            detector: DetectorChoice::FullRange,
            detector_model: None,
            emotion_model: Some(default_path(EMOTION_MODEL)),
            gender_model: Some(default_path(GENDER_MODEL)),
            ort_library: None,
            threads: 0,
            threshold: DEFAULT_THRESHOLD,
            min_face_size: DEFAULT_MIN_FACE_SIZE,
            max_faces: DEFAULT_MAX_FACES,
            crop_scale: DEFAULT_CROP_SCALE,
            tiles: 1,
            inference_interval: 1,
            reclassify_interval: 1,
            gender_interval: 0,
            draw: true,
            post_messages: true,
            pipelining: Pipelining::Auto,
            models_generation: 0,
        }
    }
}

fn default_path(file: &str) -> String {
    runtime::default_model_path(file).to_string_lossy().into_owned()
}

fn non_empty(s: &Option<String>) -> Option<PathBuf> {
    s.as_ref().filter(|s| !s.is_empty()).map(PathBuf::from)
}

/// What each frame reads of the settings: copied once per frame, without allocating.
#[derive(Debug, Clone, Copy)]
struct FrameSettings {
    params: Params,
    draw: bool,
    post_messages: bool,
    pipelining: Pipelining,
    models_generation: u64,
}

impl Settings {
    fn per_frame(&self) -> FrameSettings {
        FrameSettings {
            params: self.params(),
            draw: self.draw,
            post_messages: self.post_messages,
            pipelining: self.pipelining,
            models_generation: self.models_generation,
        }
    }

    fn model_config(&self) -> ModelConfig {
        let detector = non_empty(&self.detector_model).unwrap_or_else(|| {
            runtime::default_model_path(match self.detector {
                DetectorChoice::FullRange => FULL_RANGE_MODEL,
                DetectorChoice::ShortRange => SHORT_RANGE_MODEL,
            })
        });
        ModelConfig {
            detector,
            emotion: non_empty(&self.emotion_model),
            gender: non_empty(&self.gender_model),
            threads: self.threads as usize,
            ort_library: self.ort_library.clone().filter(|s| !s.is_empty()),
        }
    }

    fn params(&self) -> Params {
        Params {
            threshold: self.threshold as f32,
            min_face_size: self.min_face_size,
            max_faces: self.max_faces as usize,
            crop_scale: self.crop_scale as f32,
            tiles: self.tiles,
            inference_interval: self.inference_interval,
            reclassify_interval: self.reclassify_interval,
            gender_interval: self.gender_interval,
        }
    }
}

struct State {
    analyzer: Analyzer,
    painter: Painter,
    info: Option<gst_video::VideoInfo>,
    format: Option<PixelFormat>,
    yuv: YuvMatrix,
    /// Last analysis error reported as a warning, so a persistent one is not repeated per frame.
    last_warning: Option<String>,
    /// The settings generation the models were last loaded (or refused) for.
    models_generation: u64,
    tracker: Tracker,
    /// Frames seen since start, the last caps change or the last flush.
    frame_index: u64,
    /// With pipelining, the frame whose detection has started and whose classification waits
    /// for the next frame to arrive.
    pending: Option<Pending>,
    /// The faces of the frame being finished; its room is reused from frame to frame.
    faces: Vec<Face>,
}

/// A frame mapped for the analysis: for writing when the overlay is drawn, else for reading,
/// so that a frame the decoder still holds (a reference picture) is not copied just to be
/// looked at; the metadata then goes on a new buffer that shares the frame's memory.
enum Mapped {
    Writable(gst_video::VideoFrame<gst_video::video_frame::Writable>),
    Readable(gst_video::VideoFrame<gst_video::video_frame::Readable>),
}

impl Mapped {
    fn map(buf: gst::Buffer, info: &gst_video::VideoInfo, draw: bool) -> Result<Self, gst::Buffer> {
        if draw {
            let mut buf = buf;
            // Copies only if another element still holds a reference (what in-place transforms do).
            buf.make_mut();
            gst_video::VideoFrame::from_buffer_writable(buf, info).map(Mapped::Writable)
        } else {
            gst_video::VideoFrame::from_buffer_readable(buf, info).map(Mapped::Readable)
        }
    }

    fn into_buffer(self) -> gst::Buffer {
        match self {
            Mapped::Writable(f) => f.into_buffer(),
            Mapped::Readable(f) => f.into_buffer(),
        }
    }

    fn size(&self) -> (u32, u32) {
        match self {
            Mapped::Writable(f) => (f.width(), f.height()),
            Mapped::Readable(f) => (f.width(), f.height()),
        }
    }
}

/// A frame between [`Analyzer::begin`] and [`Analyzer::finish`].
struct Pending {
    frame: Mapped,
    format: PixelFormat,
    yuv: YuvMatrix,
    ticket: Ticket,
    /// The parameters the detection started with, so that both halves agree.
    params: Params,
    /// Time spent on the frame so far.
    busy: std::time::Duration,
}

/// A frame ready to go downstream, with what the bus message and the counters need.
struct Finished {
    buffer: gst::Buffer,
    /// The frame's bus message, built with the faces at hand and posted with no lock held.
    message: Option<gst::Message>,
    faces: usize,
    busy: std::time::Duration,
    model: std::time::Duration,
}

// Boxing the mapped frame would cost an allocation per frame; the value is moved once or twice.
#[allow(clippy::large_enum_variant)]
enum Begun {
    Started(Pending),
    /// Not analysable (a warning said why): goes downstream as it came.
    Passed(gst::Buffer),
}

/// Counters since start, for the `stats` property.
#[derive(Debug, Default, Clone, Copy)]
struct Stats {
    frames: u64,
    faces: u64,
    processing: std::time::Duration,
    model: std::time::Duration,
}

#[derive(Default)]
pub struct FaceEmotion {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
    stats: Mutex<Stats>,
    /// Whether upstream is live, once asked (pipelining=auto does not hold frames of a live source).
    live: Mutex<Option<bool>>,
}

impl FaceEmotion {
    fn load(&self, config: ModelConfig) -> Result<Analyzer, runtime::ModelError> {
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

    /// Takes only the last warning, so the streaming thread can call it while it borrows other
    /// parts of the state.
    fn warn_once(&self, last_warning: &mut Option<String>, msg: String) {
        gst::warning!(CAT, imp = self, "{msg}");
        if last_warning.as_deref() != Some(msg.as_str()) {
            gst::element_imp_warning!(
                self,
                gst::StreamError::Failed,
                ("{msg}"),
                ["the frame was passed on unanalysed"]
            );
            *last_warning = Some(msg);
        }
    }

    /// The `faceemotion` element message of a frame.
    fn message(&self, buf: &gst::BufferRef, faces: &[Face]) -> gst::Message {
        let segment = self.obj().segment();
        let segment = segment.downcast_ref::<gst::ClockTime>();
        let pts = buf.pts();
        let stream_time = segment.and_then(|s| s.to_stream_time(pts?));
        let running_time = segment.and_then(|s| s.to_running_time(pts?));
        let list = gst::List::new(faces.iter().map(|f| {
            let b = f.bbox();
            let mut s = gst::Structure::builder("face")
                .field("x", b.x1.round() as i32)
                .field("y", b.y1.round() as i32)
                .field("width", b.width().round() as i32)
                .field("height", b.height().round() as i32)
                .field("confidence", f.detection.score as f64)
                .build();
            if f.id != 0 {
                s.set("id", f.id);
            }
            if let Some(e) = &f.emotion {
                s.set("emotion", e.label());
                s.set("emotion-confidence", e.confidence() as f64);
            }
            if let Some(g) = &f.gender {
                s.set("gender", g.gender().label());
                s.set("gender-confidence", g.confidence() as f64);
                if let Some(age) = g.age {
                    s.set("age", age as f64);
                }
            }
            s.to_send_value()
        }));
        let s = gst::Structure::builder("faceemotion")
            .field("timestamp", pts)
            .field("stream-time", stream_time)
            .field("running-time", running_time)
            .field("faces", list)
            .build();
        gst::message::Element::builder(s).src(&*self.obj()).build()
    }
}

fn add_meta(buf: &mut gst::BufferRef, faces: &[Face], width: u32, height: u32, config: &ModelConfig) {
    if faces.is_empty() {
        return;
    }
    fn model_name(p: &Option<PathBuf>) -> &str {
        p.as_ref().and_then(|p| p.file_stem()?.to_str()).unwrap_or("")
    }
    let (emotion_model, gender_model) = (model_name(&config.emotion), model_name(&config.gender));
    let (w, h) = (width as f32, height as f32);
    for (i, f) in faces.iter().enumerate() {
        let b = f.bbox();
        let (x, y) = (b.x1.round().max(0.0) as u32, b.y1.round().max(0.0) as u32);
        let rw = (b.x2.round() as u32).min(width).saturating_sub(x);
        let rh = (b.y2.round() as u32).min(height).saturating_sub(y);
        let mut meta = gst_video::VideoRegionOfInterestMeta::add(buf, "face", (x, y, rw, rh));
        // The tracker's id, stable across frames (DL Streamer's object id).
        meta.set_id(if f.id != 0 { f.id as i32 } else { i as i32 });
        meta.add_param(
            gst::Structure::builder("detection")
                .field("x_min", (b.x1 / w) as f64)
                .field("y_min", (b.y1 / h) as f64)
                .field("x_max", (b.x2 / w) as f64)
                .field("y_max", (b.y2 / h) as f64)
                .field("confidence", f.detection.score as f64)
                .field("label_id", 0i32)
                .field("label", "face")
                .field("object_id", f.id as i32)
                .build(),
        );
        if let Some(e) = &f.emotion {
            let mut s = gst::Structure::builder("emotion")
                .field("label", e.label())
                .field("label_id", e.best() as i32)
                .field("confidence", e.confidence() as f64)
                .field("model_name", emotion_model)
                .build();
            for (name, p) in EMOTIONS.iter().zip(e.0) {
                s.set(*name, p as f64);
            }
            meta.add_param(s);
        }
        if let Some(g) = &f.gender {
            meta.add_param(
                gst::Structure::builder("gender")
                    .field("label", g.gender().label())
                    .field("label_id", g.gender() as i32)
                    .field("confidence", g.confidence() as f64)
                    .field("model_name", gender_model)
                    .build(),
            );
            if let Some(age) = g.age {
                meta.add_param(
                    gst::Structure::builder("age")
                        .field("label", format!("{:.0}", age))
                        .field("age", age as f64)
                        .field("model_name", gender_model)
                        .build(),
                );
            }
        }
    }
}

#[glib::object_subclass]
impl ObjectSubclass for FaceEmotion {
    const NAME: &'static str = "GstFaceEmotion";
    type Type = super::FaceEmotion;
    type ParentType = gst_video::VideoFilter;
}

impl ObjectImpl for FaceEmotion {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let installed = |f: &str| runtime::default_model_path(f).display().to_string();
            vec![
                glib::ParamSpecEnum::builder_with_default("detector", DetectorChoice::FullRange)
                    .nick("Detector")
                    .blurb("Which shipped face detector to use when detector-model is empty")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("detector-model")
                    .nick("Detector model")
                    .blurb(&format!(
                        "BlazeFace ONNX file (full or short range, told apart by its input size); empty: the \
                         installed model chosen by 'detector' ({})",
                        installed(FULL_RANGE_MODEL)
                    ))
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("emotion-model")
                    .nick("Emotion model")
                    .blurb("Emotion ONNX file: mini-Xception (FER-2013) or face-api.js expression; empty: no emotion")
                    .default_value(Some(installed(EMOTION_MODEL).as_str()))
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("gender-model")
                    .nick("Gender model")
                    .blurb("Gender ONNX file: face-api.js age/gender (also gives age) or human-models gender; empty: no gender")
                    .default_value(Some(installed(GENDER_MODEL).as_str()))
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("ort-library")
                    .nick("ONNX Runtime library")
                    .blurb(&format!(
                        "Path of libonnxruntime.so.{}; empty: ${} or {}. Read when the first element of the \
                         process starts: one runtime is shared by all",
                        runtime::ORT_VERSION,
                        runtime::ORT_LIBRARY_ENV,
                        runtime::default_library_path().display()
                    ))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("threads")
                    .nick("Inference threads")
                    .blurb("Threads each model may use per run; 0: automatic (the detector one, which is as fast as more, the classifiers one per CPU core)")
                    .maximum(64)
                    .default_value(0)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("threshold")
                    .nick("Detection threshold")
                    .blurb("Minimum face detection score; lower finds more faces and more false ones")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_THRESHOLD)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("min-face-size")
                    .nick("Minimum face size")
                    .blurb("Faces whose larger side is smaller than this many pixels are ignored")
                    .maximum(16384)
                    .default_value(DEFAULT_MIN_FACE_SIZE)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("max-faces")
                    .nick("Maximum faces")
                    .blurb("At most this many faces per frame, the most certain ones, are kept")
                    .minimum(1)
                    .maximum(1024)
                    .default_value(DEFAULT_MAX_FACES)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("crop-scale")
                    .nick("Crop scale")
                    .blurb("Side of the square the classifiers see, as a multiple of the face box's larger side")
                    .minimum(1.0)
                    .maximum(3.0)
                    .default_value(DEFAULT_CROP_SCALE)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("tiles")
                    .nick("Detection tiles")
                    .blurb(
                        "Also run the detector on a grid of this many overlapping tile columns (rows to keep \
                         them square), to find faces too small for one pass over the whole frame; each tile \
                         costs one more detector run. 1: whole frame only",
                    )
                    .minimum(1)
                    .maximum(8)
                    .default_value(1)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("inference-interval")
                    .nick("Inference interval")
                    .blurb(
                        "Run the face detector on every Nth frame; in between, faces are carried along by \
                         the tracker (which also gives each face a stable id)",
                    )
                    .minimum(1)
                    .maximum(1000)
                    .default_value(1)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("reclassify-interval")
                    .nick("Reclassify interval")
                    .blurb("Classify a tracked face every Mth frame, keeping its last labels in between")
                    .minimum(1)
                    .maximum(1000)
                    .default_value(1)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("gender-interval")
                    .nick("Gender interval")
                    .blurb(
                        "Run the gender and age model on a tracked face every Nth frame: they do not change \
                         for a person, and that model costs most of the classification time; 0: as \
                         reclassify-interval",
                    )
                    .maximum(100_000)
                    .default_value(0)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("draw")
                    .nick("Draw overlay")
                    .blurb("Draw a box and a label on each face")
                    .default_value(true)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb(
                        "Since start: frames, faces, processing-time (ns of work in the element, on all its \
                         threads, waiting excluded) and model-time (ns of that inside ONNX Runtime)",
                    )
                    .read_only()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("pipelining", Pipelining::Auto)
                    .nick("Pipelining")
                    .blurb(
                        "Overlap frames: the detector looks at the next frame while the classifiers work on \
                         this one, for more frames per second, at the cost of holding one frame (one frame \
                         more latency). auto: on unless the source is live",
                    )
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("post-messages")
                    .nick("Post messages")
                    .blurb("Post a 'faceemotion' element message with the faces of each frame on the bus")
                    .default_value(true)
                    .mutable_playing()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings.lock().unwrap_or_else(|e| e.into_inner());
        match pspec.name() {
            "detector" => s.detector = value.get().expect("type checked upstream"),
            "detector-model" => s.detector_model = value.get().expect("type checked upstream"),
            "emotion-model" => s.emotion_model = value.get().expect("type checked upstream"),
            "gender-model" => s.gender_model = value.get().expect("type checked upstream"),
            "ort-library" => s.ort_library = value.get().expect("type checked upstream"),
            "threads" => s.threads = value.get().expect("type checked upstream"),
            "threshold" => s.threshold = value.get().expect("type checked upstream"),
            "min-face-size" => s.min_face_size = value.get().expect("type checked upstream"),
            "max-faces" => s.max_faces = value.get().expect("type checked upstream"),
            "crop-scale" => s.crop_scale = value.get().expect("type checked upstream"),
            "tiles" => s.tiles = value.get().expect("type checked upstream"),
            "inference-interval" => s.inference_interval = value.get().expect("type checked upstream"),
            "reclassify-interval" => s.reclassify_interval = value.get().expect("type checked upstream"),
            "gender-interval" => s.gender_interval = value.get().expect("type checked upstream"),
            "draw" => s.draw = value.get().expect("type checked upstream"),
            "post-messages" => s.post_messages = value.get().expect("type checked upstream"),
            "pipelining" => s.pipelining = value.get().expect("type checked upstream"),
            other => unreachable!("unknown property {other}"),
        }
        if matches!(
            pspec.name(),
            "detector" | "detector-model" | "emotion-model" | "gender-model" | "ort-library" | "threads"
        ) {
            s.models_generation += 1;
        }
        gst::debug!(CAT, imp = self, "{} set to {:?}", pspec.name(), value);
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.lock().unwrap_or_else(|e| e.into_inner());
        match pspec.name() {
            "detector" => s.detector.to_value(),
            "detector-model" => s.detector_model.to_value(),
            "emotion-model" => s.emotion_model.to_value(),
            "gender-model" => s.gender_model.to_value(),
            "ort-library" => s.ort_library.to_value(),
            "threads" => s.threads.to_value(),
            "threshold" => s.threshold.to_value(),
            "min-face-size" => s.min_face_size.to_value(),
            "max-faces" => s.max_faces.to_value(),
            "crop-scale" => s.crop_scale.to_value(),
            "tiles" => s.tiles.to_value(),
            "inference-interval" => s.inference_interval.to_value(),
            "reclassify-interval" => s.reclassify_interval.to_value(),
            "gender-interval" => s.gender_interval.to_value(),
            "draw" => s.draw.to_value(),
            "post-messages" => s.post_messages.to_value(),
            "pipelining" => s.pipelining.to_value(),
            "stats" => {
                let st = *self.stats.lock().unwrap_or_else(|e| e.into_inner());
                gst::Structure::builder("faceemotion-stats")
                    .field("frames", st.frames)
                    .field("faces", st.faces)
                    .field("processing-time", st.processing.as_nanos() as u64)
                    .field("model-time", st.model.as_nanos() as u64)
                    .build()
                    .to_value()
            }
            other => unreachable!("unknown property {other}"),
        }
    }
}

impl GstObjectImpl for FaceEmotion {}

impl ElementImpl for FaceEmotion {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Face emotion and gender",
                "Filter/Analyzer/Video",
                "Finds faces, classifies emotion (FER-2013 classes) and gender, attaches them as \
                 GstVideoRegionOfInterestMeta and draws them",
                "faceemotion developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst_video::VideoCapsBuilder::new()
                .format_list(FORMATS.iter().map(|(v, _)| *v))
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

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let (config, generation) = {
            let s = self.settings.lock().unwrap_or_else(|e| e.into_inner());
            (s.model_config(), s.models_generation)
        };
        let analyzer = self.load(config).map_err(|e| {
            let kind = match e {
                runtime::ModelError::Runtime(_) => gst::LibraryError::Init,
                runtime::ModelError::NotFound { .. } => gst::LibraryError::Settings,
                _ => gst::LibraryError::Failed,
            };
            gst::error_msg!(kind, ("{}", e))
        })?;
        *self.stats.lock().unwrap_or_else(|e| e.into_inner()) = Stats::default();
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = Some(State {
            analyzer,
            painter: Painter::new(),
            info: None,
            format: None,
            yuv: YuvMatrix::BT601,
            last_warning: None,
            models_generation: generation,
            tracker: Tracker::new(),
            frame_index: 0,
            pending: None,
            faces: Vec::new(),
        });
        *self.live.lock().unwrap_or_else(|e| e.into_inner()) = None;
        Ok(())
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        match event.view() {
            gst::EventView::FlushStop(_) => {
                // After a seek the faces on screen are not those the tracker knows, and a held
                // frame belongs to the flushed data.
                if let Some(state) = self.state.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
                    state.tracker.reset();
                    state.frame_index = 0;
                    if let Some(p) = state.pending.take() {
                        state.analyzer.abandon(p.ticket);
                    }
                }
            }
            // A held frame came before this event (EOS, caps, segment, ...): it goes first.
            _ if event.is_serialized() => {
                if let Err(e) = self.drain() {
                    gst::debug!(
                        CAT,
                        imp = self,
                        "held frame not pushed before {:?}: {e:?}",
                        event.type_()
                    );
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
        if direction == gst::PadDirection::Src && ok {
            if let gst::QueryViewMut::Latency(q) = query.view_mut() {
                let (live, min, max) = q.result();
                *self.live.lock().unwrap_or_else(|e| e.into_inner()) = Some(live);
                let pipelining = self.settings.lock().unwrap_or_else(|e| e.into_inner()).pipelining;
                if live && pipelining == Pipelining::On {
                    // A held frame leaves when the next one arrives: one frame duration more.
                    let fps = self
                        .state
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
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

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = None;
        Ok(())
    }

    fn generate_output(&self) -> Result<gst_base::subclass::base_transform::GenerateOutputSuccess, gst::FlowError> {
        use gst_base::subclass::base_transform::GenerateOutputSuccess as Out;
        let Some(buf) = self.take_queued_buffer() else {
            return Ok(Out::NoOutput);
        };
        let per_frame = self.settings.lock().unwrap_or_else(|e| e.into_inner()).per_frame();
        let pipelined = match per_frame.pipelining {
            Pipelining::On => true,
            Pipelining::Off => false,
            Pipelining::Auto => !self.upstream_live(),
        };
        // At most two frames leave per call: the held one, then this one (or, with pipelining,
        // the held one and this one stays).
        let (mut first, mut second) = (None, None);
        {
            let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let state = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
            let reload = state.models_generation != per_frame.models_generation;
            if reload || !pipelined {
                if let Some(p) = state.pending.take() {
                    first = Some(self.finish_frame(state, &per_frame, p));
                }
            }
            if reload {
                self.reload(state, per_frame.models_generation);
            }
            match self.begin_frame(state, &per_frame.params, per_frame.draw, buf)? {
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
                    second = Some(Finished {
                        buffer: b,
                        message: None,
                        faces: 0,
                        busy: Default::default(),
                        model: Default::default(),
                    });
                }
            }
        }
        // Bus messages and pushes happen with no lock held: an application may act on them.
        let mut out = [first, second].into_iter().flatten().map(|f| self.account(f));
        match (out.next(), out.next()) {
            (Some(a), Some(b)) => {
                self.obj().src_pad().push(a)?;
                Ok(Out::Buffer(b))
            }
            (Some(a), None) => Ok(Out::Buffer(a)),
            _ => Ok(Out::NoOutput),
        }
    }
}

impl FaceEmotion {
    fn upstream_live(&self) -> bool {
        if let Some(live) = *self.live.lock().unwrap_or_else(|e| e.into_inner()) {
            return live;
        }
        let mut q = gst::query::Latency::new();
        let live = self.obj().sink_pad().peer_query(&mut q) && q.result().0;
        gst::info!(
            CAT,
            imp = self,
            "upstream is {}live: pipelining=auto {} frames",
            if live { "" } else { "not " },
            if live { "does not hold" } else { "holds" }
        );
        *self.live.lock().unwrap_or_else(|e| e.into_inner()) = Some(live);
        live
    }

    /// Finishes the held frame, if any, and sends it downstream.
    fn drain(&self) -> Result<gst::FlowSuccess, gst::FlowError> {
        let per_frame = self.settings.lock().unwrap_or_else(|e| e.into_inner()).per_frame();
        let finished = {
            let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let Some(state) = guard.as_mut() else {
                return Ok(gst::FlowSuccess::Ok);
            };
            match state.pending.take() {
                Some(p) => self.finish_frame(state, &per_frame, p),
                None => return Ok(gst::FlowSuccess::Ok),
            }
        };
        gst::debug!(CAT, imp = self, "pushing the held frame");
        let buf = self.account(finished);
        self.obj().src_pad().push(buf)
    }

    fn reload(&self, state: &mut State, generation: u64) {
        state.models_generation = generation;
        let config = self.settings.lock().unwrap_or_else(|e| e.into_inner()).model_config();
        if *state.analyzer.config() != config {
            gst::info!(CAT, imp = self, "model settings changed, reloading");
            match self.load(config) {
                Ok(a) => state.analyzer = a,
                // A recording must not stop because of a typo made while it runs: keep the
                // models that work, say why the new ones were refused, and try again only
                // when the settings change again.
                Err(e) => gst::element_imp_warning!(
                    self,
                    gst::LibraryError::Settings,
                    ("{}", e),
                    ["new model settings refused, still using {:?}", state.analyzer.config()]
                ),
            }
        }
    }

    /// Maps the frame (for writing when `draw`) and starts its analysis (the detector, on its
    /// own thread).
    fn begin_frame(
        &self,
        state: &mut State,
        params: &Params,
        draw: bool,
        buf: gst::Buffer,
    ) -> Result<Begun, gst::FlowError> {
        let started = std::time::Instant::now();
        let (Some(info), Some(format)) = (state.info.as_ref(), state.format) else {
            return Err(gst::FlowError::NotNegotiated);
        };
        let frame = Mapped::map(buf, info, draw).map_err(|_| {
            gst::element_imp_error!(self, gst::CoreError::Failed, ["could not map the buffer"]);
            gst::FlowError::Error
        })?;
        let frame_index = state.frame_index;
        state.frame_index += 1;
        let yuv = state.yuv;
        let ticket = match view_of(&frame, format, yuv) {
            Ok(img) => state
                .analyzer
                .begin(&img, params, frame_index)
                .map_err(|e| e.to_string()),
            Err(e) => Err(format!("unusable frame: {e}")),
        };
        match ticket {
            Ok(ticket) => Ok(Begun::Started(Pending {
                frame,
                format,
                yuv,
                ticket,
                params: *params,
                busy: started.elapsed(),
            })),
            Err(msg) => {
                self.warn_once(&mut state.last_warning, msg);
                Ok(Begun::Passed(frame.into_buffer()))
            }
        }
    }

    /// Waits for the frame's faces, classifies them, draws, and attaches the metadata.
    fn finish_frame(&self, state: &mut State, per_frame: &FrameSettings, p: Pending) -> Finished {
        let started = std::time::Instant::now();
        let Pending {
            mut frame,
            format,
            yuv,
            ticket,
            params,
            busy,
        } = p;
        // `finish` replaces its contents; the error paths below empty it.
        let mut faces = std::mem::take(&mut state.faces);
        let analysed = match view_of(&frame, format, yuv) {
            Ok(img) => state
                .analyzer
                .finish(&img, &params, &mut state.tracker, ticket, &mut faces)
                .map_err(|e| e.to_string()),
            Err(e) => {
                // The detector job, if any, still has to be collected.
                state.analyzer.abandon(ticket);
                Err(format!("unusable frame: {e}"))
            }
        };
        if let Err(msg) = analysed {
            self.warn_once(&mut state.last_warning, msg);
            faces.clear();
        }
        // Mapped for writing only when the overlay was wanted as the frame came in.
        if let Mapped::Writable(f) = &mut frame {
            if per_frame.draw && !faces.is_empty() {
                let drawn = image_of(f, format, yuv)
                    .map_err(|e| e.to_string())
                    .and_then(|mut img| state.painter.draw(&mut img, &faces).map_err(|e| e.to_string()));
                if let Err(msg) = drawn {
                    self.warn_once(&mut state.last_warning, msg);
                }
            }
        }
        let (width, height) = frame.size();
        let mut buffer = frame.into_buffer();
        gst::log!(CAT, imp = self, "pts {:?}: {} faces", buffer.pts(), faces.len());
        for f in &faces {
            gst::trace!(CAT, imp = self, "face {:?}", f);
        }
        // Mapped for writing, the frame held the only reference, so this does not copy; mapped
        // for reading, a buffer the decoder still holds is copied shallowly (memory shared).
        add_meta(buffer.make_mut(), &faces, width, height, state.analyzer.config());
        let message = per_frame.post_messages.then(|| self.message(&buffer, &faces));
        let n_faces = faces.len();
        state.faces = faces;
        let (detector_work, waited) = state.analyzer.take_detector_times();
        Finished {
            buffer,
            message,
            faces: n_faces,
            busy: (busy + started.elapsed()).saturating_sub(waited) + detector_work,
            model: state.analyzer.take_model_time(),
        }
    }

    /// Posts the frame's message and counts it; returns the buffer to push.
    fn account(&self, f: Finished) -> gst::Buffer {
        if let Some(m) = f.message {
            let _ = self.obj().post_message(m);
        }
        let mut st = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        st.frames += 1;
        st.faces += f.faces as u64;
        st.model += f.model;
        st.processing += f.busy;
        f.buffer
    }
}

/// GStreamer's index of the core's plane `i`: GStreamer lists YV12 planes as Y, V, U, the core
/// wants Y, U, V.
fn gst_plane(format: PixelFormat, i: usize) -> u32 {
    match (format, i) {
        (PixelFormat::Yv12, 1) => 2,
        (PixelFormat::Yv12, 2) => 1,
        _ => i as u32,
    }
}

/// The strides of the frame's planes, in the core's plane order.
fn plane_strides<T>(frame: &gst_video::VideoFrame<T>, format: PixelFormat) -> [usize; 3] {
    let mut strides = [0usize; 3];
    for (i, s) in strides.iter_mut().enumerate().take(format.n_planes()) {
        *s = frame.plane_stride()[gst_plane(format, i) as usize] as usize;
    }
    strides
}

/// The core's read-only view of a mapped frame.
fn view_of(frame: &Mapped, format: PixelFormat, yuv: YuvMatrix) -> Result<ImageView<'_>, crate::image::ImageError> {
    fn planes<T>(
        frame: &gst_video::VideoFrame<T>,
        format: PixelFormat,
        yuv: YuvMatrix,
    ) -> Result<ImageView<'_>, crate::image::ImageError> {
        let (w, h) = (frame.width() as usize, frame.height() as usize);
        let n = format.n_planes();
        let strides = plane_strides(frame, format);
        let mut planes: [&[u8]; 3] = [&[]; 3];
        for (i, plane) in planes.iter_mut().enumerate().take(n) {
            *plane = frame
                .plane_data(gst_plane(format, i))
                .map_err(|_| crate::image::ImageError::Plane(i))?;
        }
        ImageView::new(format, w, h, &planes[..n], &strides[..n], yuv)
    }
    match frame {
        Mapped::Writable(f) => planes(f, format, yuv),
        Mapped::Readable(f) => planes(f, format, yuv),
    }
}

/// The core's writable view of a frame mapped for writing.
fn image_of(
    frame: &mut gst_video::VideoFrame<gst_video::video_frame::Writable>,
    format: PixelFormat,
    yuv: YuvMatrix,
) -> Result<ImageViewMut<'_>, crate::image::ImageError> {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let n = format.n_planes();
    let strides = plane_strides(frame, format);
    let mut planes: [&mut [u8]; 3] = Default::default();
    for (i, plane) in planes.iter_mut().enumerate().take(n) {
        let p = frame
            .plane_data_mut(gst_plane(format, i))
            .map_err(|_| crate::image::ImageError::Plane(i))?;
        // SAFETY: each plane slice covers its own region of the mapped buffer, and they live no
        // longer than the borrow of `frame`, which stays mapped meanwhile.
        *plane = unsafe { std::slice::from_raw_parts_mut(p.as_mut_ptr(), p.len()) };
    }
    ImageViewMut::new(format, w, h, planes.into_iter().take(n), &strides[..n], yuv)
}

impl VideoFilterImpl for FaceEmotion {
    fn set_info(
        &self,
        incaps: &gst::Caps,
        in_info: &gst_video::VideoInfo,
        _outcaps: &gst::Caps,
        _out_info: &gst_video::VideoInfo,
    ) -> Result<(), gst::LoggableError> {
        let format = pixel_format(in_info.format())
            .ok_or_else(|| gst::loggable_error!(CAT, "unsupported format {:?} in {}", in_info.format(), incaps))?;
        let c = in_info.colorimetry();
        let (kr, kb) = c.matrix().kr_kb().unwrap_or(if in_info.height() >= 720 {
            (0.2126, 0.0722)
        } else {
            (0.299, 0.114)
        });
        let yuv = YuvMatrix {
            kr: kr as f32,
            kb: kb as f32,
            full_range: c.range() == gst_video::VideoColorRange::Range0_255,
        };
        gst::info!(
            CAT,
            imp = self,
            "negotiated {}x{} {:?}, YUV matrix {:?}",
            in_info.width(),
            in_info.height(),
            format,
            yuv
        );
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let state = guard
            .as_mut()
            .ok_or_else(|| gst::loggable_error!(CAT, "caps set before start"))?;
        state.info = Some(in_info.clone());
        // Boxes of another size or picture mean nothing to the tracker.
        state.tracker.reset();
        state.frame_index = 0;
        state.format = Some(format);
        state.yuv = yuv;
        Ok(())
    }
}
