//! The element's properties: their specs, the settings they write, and what each frame reads.

use std::path::PathBuf;
use std::sync::LazyLock;

use gst::glib;
use gst::prelude::*;

use crate::analysis::{ModelConfig, Params};
use crate::mask::{MaskKind, MaskStyle};
use crate::person::Smoothing;
use crate::runtime::{
    self, ModelRole, DESCRIPTOR_MODEL, EMOTION_MODEL, FULL_RANGE_MODEL, GENDER_MODEL, SHORT_RANGE_MODEL,
};
use crate::stream::StreamParams;
use crate::tracker::TrackerSettings;
use crate::visitor::{self, ReidSettings};
use crate::zone::{self, ZoneSet};

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

#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstFaceEmotionBlur")]
pub enum Blur {
    #[enum_value(name = "None: faces are not masked", nick = "none")]
    None = 0,
    #[enum_value(name = "Gaussian blur of each face", nick = "gaussian")]
    Gaussian = 1,
    #[enum_value(name = "Pixelate each face into blocks", nick = "pixelate")]
    Pixelate = 2,
    #[enum_value(name = "Fill each face with opaque black", nick = "solid")]
    Solid = 3,
}

impl Blur {
    fn kind(self) -> MaskKind {
        match self {
            Blur::None => MaskKind::None,
            Blur::Gaussian => MaskKind::Gaussian,
            Blur::Pixelate => MaskKind::Pixelate,
            Blur::Solid => MaskKind::Solid,
        }
    }
}

const DEFAULT_THRESHOLD: f64 = 0.6;
const DEFAULT_MAX_FACES: u32 = 64;
const DEFAULT_CROP_SCALE: f64 = 1.3;
const DEFAULT_SMOOTHING_MS: u32 = 500;
const DEFAULT_TRACK_TIMEOUT_MS: u32 = 1000;
const DEFAULT_MIN_PRESENCE_MS: u32 = 300;
const DEFAULT_BLUR_STRENGTH: f64 = 0.3;
const DEFAULT_BLUR_PADDING: f64 = 0.25;
const DEFAULT_REID_WINDOW_S: u32 = (visitor::DEFAULT_WINDOW_NS / 1_000_000_000) as u32;

/// The model roles that are loaded apart: a change of one reloads only that one.
pub const ROLES: [ModelRole; 4] = [
    ModelRole::Detector,
    ModelRole::Emotion,
    ModelRole::Gender,
    ModelRole::Descriptor,
];

pub fn role_index(role: ModelRole) -> usize {
    match role {
        ModelRole::Detector => 0,
        ModelRole::Emotion => 1,
        ModelRole::Gender => 2,
        ModelRole::Descriptor => 3,
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub detector: DetectorChoice,
    pub detector_model: Option<String>,
    pub emotion_model: Option<String>,
    pub emotion_model_2: Option<String>,
    pub gender_model: Option<String>,
    pub gender_model_2: Option<String>,
    pub descriptor_model: Option<String>,
    /// Seconds a visitor is remembered; 0: no recognition.
    pub reid_window_s: u32,
    pub reid_threshold: f64,
    pub ort_library: Option<String>,
    pub model_instance_id: Option<String>,
    pub threads: u32,
    pub threshold: f64,
    pub min_face_size: u32,
    pub max_faces: u32,
    pub crop_scale: f64,
    pub tiles: u32,
    pub inference_interval: u32,
    pub reclassify_interval: u32,
    pub gender_interval: u32,
    pub smoothing_ms: u32,
    pub track_timeout_ms: u32,
    pub min_presence_ms: u32,
    pub draw: bool,
    pub post_messages: bool,
    pub pipelining: Pipelining,
    pub blur: Blur,
    pub blur_strength: f64,
    pub blur_padding: f64,
    pub max_lateness_ms: i64,
    /// `zones` as given, and parsed (see [`crate::zone`]); bumped generation on each change.
    pub zones_text: Option<String>,
    pub zones: std::sync::Arc<ZoneSet>,
    pub zones_generation: u64,
    pub zone_inertia: u32,
    pub draw_zones: bool,
    /// `wall-clock-start` as given, and as Unix ns once parsed.
    pub wall_clock_start: Option<String>,
    pub wall_clock_start_ns: Option<u64>,
    /// Why the last value given to a property was refused, by property, for `start` to fail
    /// with (a later good value of another property does not hide it).
    pub refused: std::collections::BTreeMap<&'static str, String>,
    /// Bumped by every set of a property that needs that role's model loaded again (even to the
    /// same value: a file replaced on disk is read again), so the streaming thread notices with
    /// one comparison per role.
    pub generations: [u64; 4],
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            detector: DetectorChoice::FullRange,
            detector_model: None,
            emotion_model: Some(default_path(EMOTION_MODEL)),
            emotion_model_2: None,
            gender_model: Some(default_path(GENDER_MODEL)),
            gender_model_2: None,
            descriptor_model: Some(default_path(DESCRIPTOR_MODEL)),
            zones_text: None,
            zones: Default::default(),
            zones_generation: 0,
            zone_inertia: zone::DEFAULT_INERTIA,
            draw_zones: true,
            reid_window_s: DEFAULT_REID_WINDOW_S,
            reid_threshold: visitor::DEFAULT_THRESHOLD as f64,
            ort_library: None,
            model_instance_id: None,
            threads: 0,
            threshold: DEFAULT_THRESHOLD,
            min_face_size: 0,
            max_faces: DEFAULT_MAX_FACES,
            crop_scale: DEFAULT_CROP_SCALE,
            tiles: 0,
            inference_interval: 1,
            reclassify_interval: 1,
            gender_interval: 0,
            smoothing_ms: DEFAULT_SMOOTHING_MS,
            track_timeout_ms: DEFAULT_TRACK_TIMEOUT_MS,
            min_presence_ms: DEFAULT_MIN_PRESENCE_MS,
            draw: true,
            post_messages: true,
            pipelining: Pipelining::Auto,
            blur: Blur::None,
            blur_strength: DEFAULT_BLUR_STRENGTH,
            blur_padding: DEFAULT_BLUR_PADDING,
            max_lateness_ms: 0,
            wall_clock_start: None,
            wall_clock_start_ns: None,
            refused: Default::default(),
            generations: [0; 4],
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
pub struct FrameSettings {
    pub params: StreamParams,
    pub draw: bool,
    pub post_messages: bool,
    pub pipelining: Pipelining,
    pub mask: MaskStyle,
    /// How late (ns) a frame of a live source may be before it is only tracked; `None`: never.
    /// `Some(0)`: one frame duration.
    pub max_lateness: Option<u64>,
    /// The time of day (Unix ns) of stream time 0, when the user gave it.
    pub wall_clock_start: Option<u64>,
    pub generations: [u64; 4],
    /// Changes when `zones` does: the element then takes the new set from the settings.
    pub zones_generation: u64,
    pub draw_zones: bool,
}

impl Settings {
    pub fn per_frame(&self) -> FrameSettings {
        FrameSettings {
            params: self.params(),
            draw: self.draw,
            post_messages: self.post_messages,
            pipelining: self.pipelining,
            mask: MaskStyle {
                kind: self.blur.kind(),
                strength: self.blur_strength as f32,
                padding: self.blur_padding as f32,
            },
            max_lateness: u64::try_from(self.max_lateness_ms).ok().map(|ms| ms * 1_000_000),
            wall_clock_start: self.wall_clock_start_ns,
            generations: self.generations,
            zones_generation: self.zones_generation,
            draw_zones: self.draw_zones,
        }
    }

    pub fn model_config(&self) -> ModelConfig {
        let detector = non_empty(&self.detector_model).unwrap_or_else(|| {
            runtime::default_model_path(match self.detector {
                DetectorChoice::FullRange => FULL_RANGE_MODEL,
                DetectorChoice::ShortRange => SHORT_RANGE_MODEL,
            })
        });
        ModelConfig {
            detector,
            emotion: [&self.emotion_model, &self.emotion_model_2]
                .into_iter()
                .filter_map(non_empty)
                .collect(),
            gender: [&self.gender_model, &self.gender_model_2]
                .into_iter()
                .filter_map(non_empty)
                .collect(),
            descriptor: non_empty(&self.descriptor_model).filter(|_| self.reid_window_s > 0),
            threads: self.threads as usize,
            ort_library: self.ort_library.clone().filter(|s| !s.is_empty()),
            group: self.model_instance_id.clone().unwrap_or_default(),
        }
    }

    fn params(&self) -> StreamParams {
        StreamParams {
            analysis: Params {
                threshold: self.threshold as f32,
                min_face_size: self.min_face_size,
                max_faces: self.max_faces as usize,
                crop_scale: self.crop_scale as f32,
                search: crate::scan::Search::from_tiles(self.tiles),
            },
            inference_interval: self.inference_interval,
            reclassify_interval: self.reclassify_interval,
            gender_interval: self.gender_interval,
            tracking: TrackerSettings {
                timeout: self.track_timeout_ms as u64 * 1_000_000,
                min_presence: self.min_presence_ms as u64 * 1_000_000,
            },
            smoothing: Smoothing {
                emotion_ms: self.smoothing_ms as f32,
            },
            zone_inertia: self.zone_inertia,
            reid: ReidSettings {
                window: self.reid_window_s as u64 * 1_000_000_000,
                threshold: self.reid_threshold as f32,
            },
        }
    }

    /// Sets a property by name; returns the model roles it changes, or why the value was
    /// refused (the setting then keeps its value).
    pub fn set(&mut self, name: &str, value: &glib::Value) -> Result<&'static [ModelRole], String> {
        let v = value;
        const NONE: &[ModelRole] = &[];
        // Recognition switched on or off loads or unloads the descriptor; a new window does not.
        let was_on = self.reid_window_s > 0;
        match name {
            "wall-clock-start" => {
                let text: Option<String> = v.get().expect("type checked upstream");
                let text = text.filter(|t| !t.trim().is_empty());
                let parsed = match &text {
                    None => None,
                    Some(t) => match crate::schema::parse_time_of_day(t) {
                        Some(ns) => Some(ns),
                        None => {
                            let why = format!(
                                "wall-clock-start={t:?} is not a time of day: give RFC 3339 \
                                 (2026-12-01T09:00:00+01:00, 2026-12-01T08:00:00Z) or local time (2026-12-01T09:00:00)"
                            );
                            self.refused.insert("wall-clock-start", why.clone());
                            return Err(why);
                        }
                    },
                };
                self.wall_clock_start_ns = parsed;
                self.wall_clock_start = text;
                self.refused.remove("wall-clock-start");
            }
            "zones" => {
                let text: Option<String> = v.get().expect("type checked upstream");
                match zone::parse(text.as_deref().unwrap_or("")) {
                    Ok(set) => {
                        self.zones = std::sync::Arc::new(set);
                        self.zones_text = text;
                        self.zones_generation += 1;
                        self.refused.remove("zones");
                    }
                    Err(e) => {
                        let why = format!("{e}; the zones stay as they were");
                        self.refused.insert("zones", why.clone());
                        return Err(why);
                    }
                }
            }
            "zone-inertia" => self.zone_inertia = v.get().expect("type checked upstream"),
            "draw-zones" => self.draw_zones = v.get().expect("type checked upstream"),
            "detector" => self.detector = v.get().expect("type checked upstream"),
            "detector-model" => self.detector_model = v.get().expect("type checked upstream"),
            "emotion-model" => self.emotion_model = v.get().expect("type checked upstream"),
            "emotion-model-2" => self.emotion_model_2 = v.get().expect("type checked upstream"),
            "gender-model" => self.gender_model = v.get().expect("type checked upstream"),
            "gender-model-2" => self.gender_model_2 = v.get().expect("type checked upstream"),
            "descriptor-model" => self.descriptor_model = v.get().expect("type checked upstream"),
            "reid-window" => self.reid_window_s = v.get().expect("type checked upstream"),
            "reid-threshold" => self.reid_threshold = v.get().expect("type checked upstream"),
            "ort-library" => self.ort_library = v.get().expect("type checked upstream"),
            "model-instance-id" => self.model_instance_id = v.get().expect("type checked upstream"),
            "threads" => self.threads = v.get().expect("type checked upstream"),
            "threshold" => self.threshold = v.get().expect("type checked upstream"),
            "min-face-size" => self.min_face_size = v.get().expect("type checked upstream"),
            "max-faces" => self.max_faces = v.get().expect("type checked upstream"),
            "crop-scale" => self.crop_scale = v.get().expect("type checked upstream"),
            "tiles" => self.tiles = v.get().expect("type checked upstream"),
            "inference-interval" => self.inference_interval = v.get().expect("type checked upstream"),
            "reclassify-interval" => self.reclassify_interval = v.get().expect("type checked upstream"),
            "gender-interval" => self.gender_interval = v.get().expect("type checked upstream"),
            "smoothing" => self.smoothing_ms = v.get().expect("type checked upstream"),
            "track-timeout" => self.track_timeout_ms = v.get().expect("type checked upstream"),
            "min-presence" => self.min_presence_ms = v.get().expect("type checked upstream"),
            "draw" => self.draw = v.get().expect("type checked upstream"),
            "post-messages" => self.post_messages = v.get().expect("type checked upstream"),
            "pipelining" => self.pipelining = v.get().expect("type checked upstream"),
            "blur" => self.blur = v.get().expect("type checked upstream"),
            "blur-strength" => self.blur_strength = v.get().expect("type checked upstream"),
            "blur-padding" => self.blur_padding = v.get().expect("type checked upstream"),
            "max-lateness" => self.max_lateness_ms = v.get().expect("type checked upstream"),
            other => unreachable!("unknown property {other}"),
        }
        let roles: &'static [ModelRole] = match name {
            "detector" | "detector-model" => &[ModelRole::Detector],
            "emotion-model" | "emotion-model-2" => &[ModelRole::Emotion],
            "gender-model" | "gender-model-2" => &[ModelRole::Gender],
            "descriptor-model" => &[ModelRole::Descriptor],
            "reid-window" if was_on != (self.reid_window_s > 0) => &[ModelRole::Descriptor],
            "model-instance-id" => &ROLES,
            _ => NONE,
        };
        for r in roles {
            self.generations[role_index(*r)] += 1;
        }
        Ok(roles)
    }

    pub fn get(&self, name: &str) -> glib::Value {
        match name {
            "detector" => self.detector.to_value(),
            "detector-model" => self.detector_model.to_value(),
            "emotion-model" => self.emotion_model.to_value(),
            "emotion-model-2" => self.emotion_model_2.to_value(),
            "gender-model" => self.gender_model.to_value(),
            "gender-model-2" => self.gender_model_2.to_value(),
            "descriptor-model" => self.descriptor_model.to_value(),
            "zones" => self.zones_text.to_value(),
            "zone-inertia" => self.zone_inertia.to_value(),
            "draw-zones" => self.draw_zones.to_value(),
            "reid-window" => self.reid_window_s.to_value(),
            "reid-threshold" => self.reid_threshold.to_value(),
            "ort-library" => self.ort_library.to_value(),
            "model-instance-id" => self.model_instance_id.to_value(),
            "threads" => self.threads.to_value(),
            "threshold" => self.threshold.to_value(),
            "min-face-size" => self.min_face_size.to_value(),
            "max-faces" => self.max_faces.to_value(),
            "crop-scale" => self.crop_scale.to_value(),
            "tiles" => self.tiles.to_value(),
            "inference-interval" => self.inference_interval.to_value(),
            "reclassify-interval" => self.reclassify_interval.to_value(),
            "gender-interval" => self.gender_interval.to_value(),
            "smoothing" => self.smoothing_ms.to_value(),
            "track-timeout" => self.track_timeout_ms.to_value(),
            "min-presence" => self.min_presence_ms.to_value(),
            "draw" => self.draw.to_value(),
            "post-messages" => self.post_messages.to_value(),
            "pipelining" => self.pipelining.to_value(),
            "blur" => self.blur.to_value(),
            "blur-strength" => self.blur_strength.to_value(),
            "blur-padding" => self.blur_padding.to_value(),
            "max-lateness" => self.max_lateness_ms.to_value(),
            "wall-clock-start" => self.wall_clock_start.to_value(),
            other => unreachable!("unknown property {other}"),
        }
    }
}

pub fn properties() -> &'static [glib::ParamSpec] {
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
            glib::ParamSpecString::builder("emotion-model-2")
                .nick("Second emotion model")
                .blurb(&format!(
                    "A second emotion ONNX file run on every face, its class probabilities averaged with the \
                     first's (the ensemble of the method this element comes from; e.g. {}); empty: one model",
                    installed("faceapi_expression.onnx")
                ))
                .mutable_playing()
                .build(),
            glib::ParamSpecString::builder("gender-model")
                .nick("Gender model")
                .blurb("Gender ONNX file: face-api.js age/gender (also gives age) or human-models gender; empty: no gender")
                .default_value(Some(installed(GENDER_MODEL).as_str()))
                .mutable_playing()
                .build(),
            glib::ParamSpecString::builder("gender-model-2")
                .nick("Second gender model")
                .blurb(&format!(
                    "A second gender ONNX file run on every face, its female probability averaged with the \
                     first's (e.g. {}); empty: one model",
                    installed("hm_gender.onnx")
                ))
                .mutable_playing()
                .build(),
            glib::ParamSpecString::builder("descriptor-model")
                .nick("Face descriptor model")
                .blurb(
                    "Face descriptor ONNX file for visitor recognition (input [N,S,S,3] RGB, output \
                     `descriptor`): a person who leaves and comes back within reid-window is the same \
                     visitor. Descriptors stay in the element's memory; empty: no recognition",
                )
                .default_value(Some(installed(DESCRIPTOR_MODEL).as_str()))
                .mutable_playing()
                .build(),
            glib::ParamSpecUInt::builder("reid-window")
                .nick("Recognition window (s)")
                .blurb(
                    "A visitor is known again for this many seconds after their last visit, then forgotten \
                     (and all of them at a flush and at the end of the stream); 0: no recognition, no \
                     descriptor loaded or run, no visitor fields",
                )
                .maximum(86_400)
                .default_value(DEFAULT_REID_WINDOW_S)
                .mutable_playing()
                .build(),
            glib::ParamSpecDouble::builder("reid-threshold")
                .nick("Recognition threshold")
                .blurb(
                    "Cosine distance between two face descriptors below which they are one person: lower \
                     takes fewer strangers for a returning visitor and misses more returns (README: the \
                     measured distances)",
                )
                .minimum(0.0)
                .maximum(2.0)
                .default_value(visitor::DEFAULT_THRESHOLD as f64)
                .mutable_playing()
                .build(),
            glib::ParamSpecString::builder("zones")
                .nick("Zones")
                .blurb(
                    "Named zones of the frame, as fractions of it (0..1): 'name:x,y x,y x,y ...;name2:...', \
                     e.g. 'till:0.6,0.5 1,0.5 1,1 0.6,1;door:0,0 0.2,0 0.2,1 0,1'; at most 32, any simple \
                     polygon, overlaps allowed. A face is in a zone when its box's centre is; entering and \
                     leaving post faceemotion-zone messages, and a person's left event gives seconds per zone",
                )
                .mutable_playing()
                .build(),
            glib::ParamSpecUInt::builder("zone-inertia")
                .nick("Zone inertia (frames)")
                .blurb(
                    "Frames in a row a face must be inside (outside) a zone before it has entered (left) it, \
                     so that a box jittering on an edge does not flap; the event still gives the first of \
                     them",
                )
                .minimum(1)
                .maximum(1000)
                .default_value(zone::DEFAULT_INERTIA)
                .mutable_playing()
                .build(),
            glib::ParamSpecBoolean::builder("draw-zones")
                .nick("Draw zones")
                .blurb("With draw on: outline and name each zone, and name a face's zone in its label")
                .default_value(true)
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
                .blurb(
                    "Workers of the process's inference pool, which runs the models of every faceemotion of \
                     the process; 0: one per CPU core. Read when the first element of the process starts",
                )
                .maximum(64)
                .default_value(0)
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("model-instance-id")
                .nick("Model instance id")
                .blurb(
                    "Elements of a process that use the same model files share one loaded copy of each (as \
                     DL Streamer's model-instance-id). Empty: share with every element; a name: share only \
                     with elements of that name (a name of its own: a copy of its own)",
                )
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
                .blurb(
                    "The smallest face to find, in pixels of the frame (its box's larger side): the search \
                     goes down to this size (tiles=0), and smaller faces are ignored. 0: automatic, 3 % of \
                     the frame's height (32 px at 1080p, 21 at 720p, 64 at 4K), none ignored",
                )
                .maximum(16384)
                .default_value(0)
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
                    "Where the detector looks. 0: automatic, down to min-face-size: the whole frame on every \
                     frame, at most one tile of a finer grid (where something moves first, where the picture \
                     changed since its scan at most every 0.5 s, each every 10 s; the whole grid on the first \
                     frame), and the small faces already known looked for again where they are expected, four \
                     to a detector run, each every other frame. 1: the whole frame only (faces of about 7 % \
                     of its larger side and up). N: the whole frame and every tile of an N-column grid on \
                     every frame, one detector run each",
                )
                .maximum(8)
                .default_value(0)
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
                     for a person, and that model costs most of the classification time; 0 (auto): \
                     every reclassify-interval frames for a track's first 8 answers, then half as often \
                     after each answer down to every 10th frame (or every reclassify-interval frames, if \
                     longer), and without waiting when the face has grown by a quarter over its largest \
                     view asked (with smoothing=0, where each frame shows its own answer: as \
                     reclassify-interval)",
                )
                .maximum(100_000)
                .default_value(0)
                .mutable_playing()
                .build(),
            glib::ParamSpecUInt::builder("smoothing")
                .nick("Smoothing (ms)")
                .blurb(
                    "Per-person results: each tracked person's emotion probabilities are averaged over \
                     about this many milliseconds (an exponential moving average), and their gender and age \
                     over the whole track, weighted by the model's confidence and the face's size. \
                     0: each frame's own results",
                )
                .maximum(600_000)
                .default_value(DEFAULT_SMOOTHING_MS)
                .mutable_playing()
                .build(),
            glib::ParamSpecUInt::builder("track-timeout")
                .nick("Track timeout (ms)")
                .blurb(
                    "A face the detector no longer finds (a turned head, someone passing in front) keeps \
                     its id, and stays masked, for this many milliseconds of stream time; then its person \
                     has left",
                )
                .maximum(3_600_000)
                .default_value(DEFAULT_TRACK_TIMEOUT_MS)
                .mutable_playing()
                .build(),
            glib::ParamSpecUInt::builder("min-presence")
                .nick("Minimum presence (ms)")
                .blurb(
                    "A tracked face counts as a person (a 'faceemotion-track' appeared event, counted in \
                     stats) once it has been seen this many milliseconds, so that something the detector \
                     takes for a face on a few frames is not counted; the event still gives the first frame",
                )
                .maximum(600_000)
                .default_value(DEFAULT_MIN_PRESENCE_MS)
                .mutable_playing()
                .build(),
            glib::ParamSpecBoolean::builder("draw")
                .nick("Draw overlay")
                .blurb("Draw a box and a label on each face")
                .default_value(true)
                .mutable_playing()
                .build(),
            glib::ParamSpecEnum::builder_with_default("blur", Blur::None)
                .nick("Privacy mask")
                .blurb(
                    "Mask every face the tracker knows on each frame (also where the detector skipped or \
                     briefly missed it), before the overlay is drawn; with draw=false the picture is only \
                     anonymised",
                )
                .mutable_playing()
                .build(),
            glib::ParamSpecDouble::builder("blur-strength")
                .nick("Mask strength")
                .blurb("Gaussian sigma, or pixel block side, as a share of the face box's larger side")
                .minimum(0.01)
                .maximum(1.0)
                .default_value(DEFAULT_BLUR_STRENGTH)
                .mutable_playing()
                .build(),
            glib::ParamSpecDouble::builder("blur-padding")
                .nick("Mask padding")
                .blurb("The masked box is the face box grown on every side by this share of its larger side (hair, ears, chin)")
                .minimum(0.0)
                .maximum(2.0)
                .default_value(DEFAULT_BLUR_PADDING)
                .mutable_playing()
                .build(),
            glib::ParamSpecInt64::builder("max-lateness")
                .nick("Maximum lateness (ms)")
                .blurb(
                    "Live sources only: a frame that arrives this much later than the least lateness seen \
                     since the start or a flush (the element is behind) is not analysed, only tracked, so that latency cannot grow: the \
                     tracker still moves, reports and masks the known faces. 0: one frame duration; -1: \
                     analyse every frame however late",
                )
                .minimum(-1)
                .maximum(60_000)
                .default_value(0)
                .mutable_playing()
                .build(),
            glib::ParamSpecString::builder("wall-clock-start")
                .nick("Wall-clock start")
                .blurb(
                    "The time of day of the stream's start (stream time 0), for recordings: RFC 3339 \
                     (2026-12-01T09:00:00+01:00) or local time (2026-12-01T09:00:00). Empty: the camera's \
                     reference timestamps, the clock for live sources, or the file's creation date. Records, \
                     messages and events carry each frame's time of day as utc",
                )
                .mutable_playing()
                .build(),
            glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                .nick("Statistics")
                .blurb(
                    "Since start: frames, faces, people (tracks counted as people), visitors and returns \
                     (of those people, first visits and visits of a visitor seen before), skipped (late frames only \
                     tracked), processing-time (ns of work in the element, on all its threads, waiting \
                     excluded), model-time (ns of that inside ONNX Runtime), detector-runs (the whole \
                     frame, tiles and mosaics of known faces), faces-described (faces given to the \
                     descriptor of visitor recognition), emotion-classified and gender-classified (faces given \
                     to the emotion model(s) and to the gender and age model(s))",
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
                .blurb(
                    "Post a 'faceemotion' element message with the faces of each frame, and a \
                     'faceemotion-track' message when a person appears or leaves, on the bus",
                )
                .default_value(true)
                .mutable_playing()
                .build(),
        ]
    });
    PROPERTIES.as_ref()
}
