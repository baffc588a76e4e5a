//! ONNX Runtime: where the shared library is, one environment per process, and model sessions.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ort::session::{builder::GraphOptimizationLevel, Session};
use thiserror::Error;

/// Version of the ONNX Runtime library the `ort` crate was built for.
pub const ORT_VERSION: &str = "1.31.1";
/// Environment variable that overrides where the ONNX Runtime library is (ort's own name).
pub const ORT_LIBRARY_ENV: &str = "ORT_DYLIB_PATH";
/// Environment variable that overrides where the models and the runtime were installed.
pub const DATA_DIR_ENV: &str = "FACEEMOTION_DATA_DIR";
/// The command that installs the runtime library where the plugin looks by default.
pub const SETUP_COMMAND: &str = "scripts/setup.sh";

/// Folder holding `models/` and `onnxruntime/`: `$FACEEMOTION_DATA_DIR`, else the folder the
/// plugin was built from (set `FACEEMOTION_DATA_DIR` at build time for a packaged install).
pub fn data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os(DATA_DIR_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    PathBuf::from(option_env!("FACEEMOTION_DATA_DIR").unwrap_or(env!("CARGO_MANIFEST_DIR")))
}

/// Files of `models/` the element uses unless told otherwise.
pub const FULL_RANGE_MODEL: &str = "mp_face_detection_full_range.onnx";
pub const SHORT_RANGE_MODEL: &str = "mp_face_detection_short_range.onnx";
pub const EMOTION_MODEL: &str = "emotion_minixception_fer.onnx";
/// INT8 (`models/quantize.py`): 1.75x faster than the fp32 network, with the same gender decisions
/// on 83 check faces and ages within 4 years.
pub const GENDER_MODEL: &str = "faceapi_age_gender_int8.onnx";

pub fn default_model_path(file: &str) -> PathBuf {
    data_dir().join("models").join(file)
}

/// The library path used when neither the property nor the environment names one.
pub fn default_library_path() -> PathBuf {
    data_dir()
        .join("onnxruntime")
        .join(format!("libonnxruntime.so.{ORT_VERSION}"))
}

/// The library to load: the explicit path if given, else `$ORT_DYLIB_PATH`, else the default.
pub fn library_path(explicit: Option<&str>) -> PathBuf {
    if let Some(p) = explicit.filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    match std::env::var_os(ORT_LIBRARY_ENV).filter(|p| !p.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => default_library_path(),
    }
}

#[derive(Debug, Error, Clone)]
pub enum RuntimeError {
    #[error(
        "ONNX Runtime library not found at {path}: run `{SETUP_COMMAND}` in the faceemotion folder to install \
         libonnxruntime.so.{ORT_VERSION}, or set {ORT_LIBRARY_ENV} (or the ort-library property) to its path"
    )]
    NotFound { path: PathBuf },
    #[error(
        "could not load the ONNX Runtime library {path}: {reason}. It must be libonnxruntime.so.{ORT_VERSION} \
         (run `{SETUP_COMMAND}`, or set {ORT_LIBRARY_ENV} to the right file)"
    )]
    Load { path: PathBuf, reason: String },
}

struct Loaded {
    env: ort::environment::Environment,
    path: PathBuf,
}

static RUNTIME: Mutex<Option<Loaded>> = Mutex::new(None);

/// The process-wide ONNX Runtime environment, loaded on first use and shared by every element.
///
/// A failed load is not remembered, so fixing the path and starting again works. Once loaded,
/// later requests for another library path get the loaded one (a process can hold only one).
pub fn environment(explicit: Option<&str>) -> Result<(ort::environment::Environment, PathBuf), RuntimeError> {
    let mut guard = RUNTIME.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(l) = guard.as_ref() {
        return Ok((l.env.clone(), l.path.clone()));
    }
    let path = library_path(explicit);
    // ort resolves relative paths against the executable's folder; make them absolute first.
    let path = std::path::absolute(&path).unwrap_or(path);
    if !path.is_file() {
        return Err(RuntimeError::NotFound { path });
    }
    let load_err = |reason: String| RuntimeError::Load {
        path: path.clone(),
        reason,
    };
    let env = ort::init_from(&path)
        .map_err(|e| load_err(e.to_string()))?
        .with_name("faceemotion")
        .build()
        .map_err(|e| load_err(e.to_string()))?;
    *guard = Some(Loaded {
        env: env.clone(),
        path: path.clone(),
    });
    Ok((env, path))
}

/// What a model is for, to name it in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelRole {
    Detector,
    Emotion,
    Gender,
}

impl ModelRole {
    pub fn property(self) -> &'static str {
        match self {
            ModelRole::Detector => "detector-model",
            ModelRole::Emotion => "emotion-model",
            ModelRole::Gender => "gender-model",
        }
    }
}

impl std::fmt::Display for ModelRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ModelRole::Detector => "face detector",
            ModelRole::Emotion => "emotion",
            ModelRole::Gender => "gender",
        })
    }
}

#[derive(Debug, Error, Clone)]
pub enum ModelError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("{role} model file {path} does not exist: set the {} property to an existing file (the shipped ones are in models/)", .role.property())]
    NotFound { role: ModelRole, path: PathBuf },
    #[error("{role} model file {path} could not be loaded ({reason}); the file is damaged or not an ONNX model: re-copy it (models/README.md lists the sha256 of each)")]
    Load {
        role: ModelRole,
        path: PathBuf,
        reason: String,
    },
    #[error("{role} model file {path} is not a supported {role} model: {reason} (models/README.md lists the supported models and their inputs)")]
    Contract {
        role: ModelRole,
        path: PathBuf,
        reason: String,
    },
    #[error("could not prepare the model input from the frame: {0}")]
    Image(String),
    #[error("the detector thread stopped ({0}); restart the pipeline")]
    Worker(String),
    #[error("{role} model {path} failed to run: {reason}")]
    Run {
        role: ModelRole,
        path: PathBuf,
        reason: String,
    },
}

/// A loaded model with its path and role, for errors that name them.
pub struct Model {
    pub session: Session,
    pub path: PathBuf,
    pub role: ModelRole,
    /// Time spent inside ONNX Runtime since the last [`Model::take_busy`]: the floor under
    /// which no amount of work around the model can go.
    busy: std::time::Duration,
}

impl Model {
    pub fn load(role: ModelRole, path: &Path, threads: usize, ort_library: Option<&str>) -> Result<Self, ModelError> {
        let (env, _) = environment(ort_library)?;
        if !path.is_file() {
            return Err(ModelError::NotFound {
                role,
                path: path.to_path_buf(),
            });
        }
        let load = |reason: String| ModelError::Load {
            role,
            path: path.to_path_buf(),
            reason,
        };
        // ort's builder errors are not Send; turn them into text straight away.
        let mut builder = Session::builder(&env)
            .map_err(|e| load(e.to_string()))?
            // Spinning threads take the CPU from the decoder and the rest of the pipeline between
            // runs: on 2 cores, spinning classifier threads cut 1080p throughput from ~62 to ~37
            // frames/s (measured with the benchmark clip).
            .with_intra_op_spinning(false)
            .map_err(|e| load(e.to_string()))?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(|e| load(e.to_string()))?
            .with_intra_threads(threads)
            .map_err(|e| load(e.to_string()))?
            .with_inter_threads(1)
            .map_err(|e| load(e.to_string()))?;
        let session = builder.commit_from_file(path).map_err(|e| load(e.to_string()))?;
        Ok(Self {
            session,
            path: path.to_path_buf(),
            role,
            busy: Default::default(),
        })
    }

    /// Runs the model, adding the time it took to [`Model::take_busy`]'s account.
    pub fn run<'s, 'i, 'v: 'i, const N: usize>(
        &'s mut self,
        inputs: impl Into<ort::session::SessionInputs<'i, 'v, N>>,
    ) -> ort::Result<ort::session::SessionOutputs<'s>> {
        let t = std::time::Instant::now();
        let out = self.session.run(inputs);
        self.busy += t.elapsed();
        out
    }

    /// Time spent running the model since the last call.
    pub fn take_busy(&mut self) -> std::time::Duration {
        std::mem::take(&mut self.busy)
    }

    pub fn contract_error(&self, reason: impl Into<String>) -> ModelError {
        ModelError::Contract {
            role: self.role,
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    pub fn run_error(&self, reason: impl std::fmt::Display) -> ModelError {
        ModelError::Run {
            role: self.role,
            path: self.path.clone(),
            reason: reason.to_string(),
        }
    }

    /// Shape of input `i` with dynamic dimensions as -1.
    pub fn input_shape(&self, i: usize) -> Vec<i64> {
        self.session
            .inputs()
            .get(i)
            .and_then(|o| o.dtype().tensor_shape())
            .map(|s| s.to_vec())
            .unwrap_or_default()
    }

    pub fn input_name(&self, i: usize) -> String {
        self.session
            .inputs()
            .get(i)
            .map(|o| o.name().to_string())
            .unwrap_or_default()
    }

    pub fn has_output(&self, name: &str) -> bool {
        self.session.outputs().iter().any(|o| o.name() == name)
    }

    pub fn describe_inputs(&self) -> String {
        self.session
            .inputs()
            .iter()
            .map(|o| {
                format!(
                    "`{}` {:?}",
                    o.name(),
                    o.dtype().tensor_shape().map(|s| s.to_vec()).unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}
