//! ONNX Runtime: where the shared library is, one environment per process, and model sessions.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ort::memory::{AllocationDevice, Allocator, AllocatorType, MemoryInfo, MemoryType};
use ort::session::{
    builder::GraphOptimizationLevel, HasSelectedOutputs, OutputSelector, RunOptions, Session, SessionOutputs,
};
use ort::value::{Shape, Tensor, TensorElementType, TensorRefMut};
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
/// INT8 (`models/quantize.py`, 7-bit weights so that CPUs without VNNI do not saturate): faster
/// than the fp32 network (how much depends on the CPU: models/README.md), with the same gender decisions
/// on 83 check faces and ages within 7 years.
pub const GENDER_MODEL: &str = "faceapi_age_gender_int8.onnx";
/// The face descriptor of visitor recognition (HSE faceres, models/README.md).
pub const DESCRIPTOR_MODEL: &str = "hm_faceres_int8.onnx";

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

/// The ONNX Runtime library this process loaded, if it loaded one.
pub fn loaded_library() -> Option<PathBuf> {
    RUNTIME
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .map(|l| l.path.clone())
}

/// What a model is for, to name it in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ModelRole {
    Detector,
    Emotion,
    Gender,
    /// The face descriptor of visitor recognition.
    Descriptor,
}

impl ModelRole {
    pub fn property(self) -> &'static str {
        match self {
            ModelRole::Detector => "detector-model",
            ModelRole::Emotion => "emotion-model",
            ModelRole::Gender => "gender-model",
            ModelRole::Descriptor => "descriptor-model",
        }
    }
}

impl std::fmt::Display for ModelRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ModelRole::Detector => "face detector",
            ModelRole::Emotion => "emotion",
            ModelRole::Gender => "gender",
            ModelRole::Descriptor => "face descriptor",
        })
    }
}

#[derive(Debug, Error, Clone)]
pub enum ModelError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("{role} model file {path} does not exist: set the {} property to an existing file (the shipped ones are in models/)", .role.property())]
    NotFound { role: ModelRole, path: PathBuf },
    #[error("{role} model path {path} is {what}, not a model file: set the {} property to an ONNX file (the shipped ones are in models/)", .role.property())]
    NotAFile {
        role: ModelRole,
        path: PathBuf,
        /// What the path is instead: "a directory", "a device", ...
        what: &'static str,
    },
    #[error("{role} model file {path} (the {} property) could not be loaded ({reason}); the file is damaged or not an ONNX model: re-copy it (models/README.md lists the sha256 of each)", .role.property())]
    Load {
        role: ModelRole,
        path: PathBuf,
        reason: String,
    },
    #[error("{role} model file {path} (the {} property) is not a supported {role} model: {reason} (models/README.md lists the supported models and their inputs and outputs)", .role.property())]
    Contract {
        role: ModelRole,
        path: PathBuf,
        reason: String,
    },
    #[error("could not prepare the model input from the frame: {0}")]
    Image(String),
    #[error("model inference stopped ({0}); set the detector-model property again to restart it")]
    Worker(String),
    #[error("{role} model {path} (the {} property) failed to run: {reason}", .role.property())]
    Run {
        role: ModelRole,
        path: PathBuf,
        reason: String,
    },
}

/// What one output of a model gave in [`Model::probe`].
#[derive(Debug, Clone)]
pub struct Probed {
    pub name: String,
    /// How many float values; `None`: not float32.
    pub len: Option<usize>,
    /// Whether every value was finite.
    pub finite: bool,
}

/// A model path must name an existing regular file; otherwise says what it is.
pub fn check_model_path(role: ModelRole, path: &Path) -> Result<(), ModelError> {
    use std::os::unix::fs::FileTypeExt;
    let path_buf = || path.to_path_buf();
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ModelError::NotFound { role, path: path_buf() })
        }
        Err(e) => {
            return Err(ModelError::Load {
                role,
                path: path_buf(),
                reason: format!("cannot read it: {e}"),
            })
        }
    };
    let t = meta.file_type();
    let what = if t.is_file() {
        return Ok(());
    } else if t.is_dir() {
        "a directory"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else if t.is_fifo() {
        "a pipe"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    };
    Err(ModelError::NotAFile {
        role,
        path: path_buf(),
        what,
    })
}

/// Input views kept at most: a few input buffers (the detector's circulate) times a few batch sizes.
const BOUND_INPUTS: usize = 16;

/// What a run needs besides the data, made once and reused, so that a run allocates nothing
/// in Rust (ort wraps every tensor it is given or returns in a new `Arc`) and ONNX Runtime
/// writes the outputs into tensors that already exist.
struct Bindings {
    /// Input tensors over the callers' buffers, by (address, shape). Fields drop in order:
    /// these views go before the session.
    inputs: Vec<(usize, [usize; 4], TensorRefMut<'static, f32>)>,
    /// Output tensors per batch size, written in place by each run.
    outputs: Vec<(usize, RunOptions<HasSelectedOutputs>)>,
    /// Off when running into the tensors made from the model's declared output shapes failed
    /// (a model that declares them wrongly); ONNX Runtime then allocates the outputs.
    preallocate: bool,
}

/// Zeroes all of a buffer's room, its length and the spare capacity beyond it (where a longer
/// content than the present one left its values): for buffers that held faces.
pub fn wipe<T: Copy + Default>(buf: &mut Vec<T>) {
    buf.fill(T::default());
    for x in buf.spare_capacity_mut() {
        x.write(T::default());
    }
}

/// A loaded model (one session) with its path and role, for errors that name them.
pub struct Model {
    bindings: Bindings,
    /// The input of [`run_filled`](Self::run_filled), kept so that its tensor stays bound.
    staging: Vec<f32>,
    pub session: Session,
    pub path: PathBuf,
    pub role: ModelRole,
    /// Time spent inside ONNX Runtime since the last [`Model::take_busy`]: the floor under
    /// which no amount of work around the model can go.
    busy: std::time::Duration,
}

/// What it takes to make more sessions of one model: the file's bytes, its weights prepacked
/// once for all of them, and what the first session learnt about it.
pub struct Source {
    env: ort::environment::Environment,
    bytes: Vec<u8>,
    prepacked: ort::session::builder::PrepackedWeights,
    /// Whether runs into tensors made from the model's declared outputs work (see [`Bindings`]).
    preallocate: std::sync::atomic::AtomicBool,
}

impl Source {
    /// Reads the model file and makes its first session (for the caller to check the model on).
    pub fn open(role: ModelRole, path: &Path, ort_library: Option<&str>) -> Result<(Self, Model), ModelError> {
        let (env, _) = environment(ort_library)?;
        check_model_path(role, path)?;
        let bytes = std::fs::read(path).map_err(|e| ModelError::Load {
            role,
            path: path.to_path_buf(),
            reason: format!("cannot read it: {e}"),
        })?;
        let source = Self {
            env,
            bytes,
            prepacked: ort::session::builder::PrepackedWeights::new(),
            preallocate: std::sync::atomic::AtomicBool::new(true),
        };
        let first = source.session(role, path)?;
        Ok((source, first))
    }

    /// A new session of the model. Each runs on one thread: the inference pool runs as many
    /// model runs at once as the machine has cores, so a run spreading over threads of its own
    /// would only take them from another.
    pub fn session(&self, role: ModelRole, path: &Path) -> Result<Model, ModelError> {
        let load = |reason: String| ModelError::Load {
            role,
            path: path.to_path_buf(),
            reason,
        };
        // ort's builder errors are not Send; turn them into text straight away.
        let mut builder = Session::builder(&self.env)
            .map_err(|e| load(e.to_string()))?
            // Spinning threads take the CPU from the decoder and the rest of the pipeline between
            // runs (on 2 cores, spinning classifier threads cut 1080p throughput from ~62 to ~37
            // frames/s), and a single-threaded session has none to spin anyway.
            .with_intra_op_spinning(false)
            .map_err(|e| load(e.to_string()))?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(|e| load(e.to_string()))?
            .with_intra_threads(1)
            .map_err(|e| load(e.to_string()))?
            .with_inter_threads(1)
            .map_err(|e| load(e.to_string()))?
            .with_prepacked_weights(&self.prepacked)
            .map_err(|e| load(e.to_string()))?;
        let session = builder
            .commit_from_memory(&self.bytes)
            .map_err(|e| load(e.to_string()))?;
        Ok(Model {
            bindings: Bindings {
                inputs: Vec::new(),
                outputs: Vec::new(),
                preallocate: self.preallocate.load(std::sync::atomic::Ordering::SeqCst),
            },
            staging: Vec::new(),
            session,
            path: path.to_path_buf(),
            role,
            busy: Default::default(),
        })
    }

    /// Takes what the first session learnt (after its checks) for the sessions made later.
    pub fn learn(&self, first: &Model) {
        self.preallocate
            .store(first.bindings.preallocate, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Model {
    /// One session of a model of its own (tests and tools; elements share theirs through
    /// [`crate::registry`]).
    pub fn load(role: ModelRole, path: &Path, ort_library: Option<&str>) -> Result<Self, ModelError> {
        Source::open(role, path, ort_library).map(|(_, m)| m)
    }

    /// Zeroes the staging buffer, all its room (a batch of face crops must not stay in a shared
    /// session, and a smaller batch after a larger one leaves the larger's tail beyond its length).
    pub fn wipe_staging(&mut self) {
        wipe(&mut self.staging);
    }

    /// Runs the model on the input `fill` makes (`shape`, batch first) in the session's own input
    /// buffer, whose bound tensor then serves every caller (the pool's workers run the batches
    /// of every stream): the 8-bit letterboxes and crops that waited for the pool become the
    /// model's floats only here.
    pub fn run_filled(
        &mut self,
        fill: impl FnOnce(&mut Vec<f32>),
        shape: [usize; 4],
    ) -> ort::Result<SessionOutputs<'_>> {
        self.staging.clear();
        fill(&mut self.staging);
        // The outputs borrow the session and its bindings, not the staging buffer.
        run_bound(
            &mut self.session,
            &mut self.bindings,
            &mut self.busy,
            &self.staging,
            shape,
        )
    }

    /// Runs the model on its one input, `data` of `shape` (batch first), adding the time it
    /// took to [`Model::take_busy`]'s account. Once a buffer and batch size have been seen,
    /// a run allocates nothing on this side.
    pub fn run(&mut self, data: &[f32], shape: [usize; 4]) -> ort::Result<SessionOutputs<'_>> {
        self.run_owned(data, shape)
    }

    fn run_owned(&mut self, data: &[f32], shape: [usize; 4]) -> ort::Result<SessionOutputs<'_>> {
        run_bound(&mut self.session, &mut self.bindings, &mut self.busy, data, shape)
    }

    /// Runs the model once on zeros of `shape`, so that a model that cannot run is refused at
    /// load, and one whose declared output shapes are wrong runs without tensors made from them.
    /// Returns what each output gave.
    pub fn probe(&mut self, shape: [usize; 4]) -> Result<Vec<Probed>, ModelError> {
        let zeros = vec![0.0f32; shape.iter().product()];
        let sizes = |out: &SessionOutputs| -> Vec<Probed> {
            out.iter()
                .map(|(name, v)| {
                    let data = v.try_extract_tensor::<f32>().ok().map(|(_, d)| d);
                    Probed {
                        name: name.to_string(),
                        len: data.map(|d| d.len()),
                        finite: data.is_none_or(|d| d.iter().all(|x| x.is_finite())),
                    }
                })
                .collect()
        };
        let first = self.run(&zeros, shape).map(|o| sizes(&o)).map_err(|e| e.to_string());
        let result = match first {
            Err(_) if !self.bindings.preallocate => {
                self.run(&zeros, shape).map(|o| sizes(&o)).map_err(|e| e.to_string())
            }
            r => r,
        };
        self.bindings.inputs.clear();
        self.busy = Default::default();
        result.map_err(|reason| ModelError::Run {
            role: self.role,
            path: self.path.clone(),
            reason,
        })
    }

    /// Checks at load that output `name` gives `per_item` float values per batch item for a
    /// batch of `batch` (from [`probe`](Self::probe)'s answer), so that a model of another
    /// shape is refused with its numbers rather than misread later.
    pub fn check_output(
        &self,
        probed: &[Probed],
        name: &str,
        batch: usize,
        per_item: usize,
        meaning: &str,
    ) -> Result<(), ModelError> {
        let Some(got) = probed.iter().find(|p| p.name == name) else {
            return Err(self.contract_error(format!("it has no output `{name}` ({meaning})")));
        };
        match got.len {
            None => Err(self.contract_error(format!("output `{name}` is not float32"))),
            Some(len) if len != batch * per_item => Err(self.contract_error(format!(
                "output `{name}` gave {len} values for a batch of {batch} (expected {}: {per_item} per item, {meaning})",
                batch * per_item
            ))),
            Some(_) if !got.finite => Err(self.contract_error(format!(
                "output `{name}` gives NaN or infinite values on a blank picture"
            ))),
            Some(_) => Ok(()),
        }
    }

    /// Whether runs write into tensors made once (for the tests).
    pub fn preallocates(&self) -> bool {
        self.bindings.preallocate
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

/// A run of `session` on `data` through the tensors of `bindings` (see [`Bindings`]), its time
/// added to `busy`. Apart from [`Model`] so that a session's own staging buffer can be the data.
fn run_bound<'s>(
    session: &'s mut Session,
    bindings: &'s mut Bindings,
    busy: &mut std::time::Duration,
    data: &[f32],
    shape: [usize; 4],
) -> ort::Result<SessionOutputs<'s>> {
    if data.len() != shape.iter().product::<usize>() {
        return Err(ort::Error::new(format!(
            "{} values for an input of shape {shape:?}",
            data.len()
        )));
    }
    let (key, batch) = (data.as_ptr() as usize, shape[0]);
    let inputs = &mut bindings.inputs;
    let i = match inputs.iter().position(|(p, s, _)| (*p, *s) == (key, shape)) {
        Some(i) => i,
        None => {
            if inputs.len() >= BOUND_INPUTS {
                inputs.remove(0);
            }
            let cpu = MemoryInfo::new(AllocationDevice::CPU, 0, AllocatorType::Device, MemoryType::Default)?;
            // SAFETY: ONNX Runtime reads a view's memory only while running, and a view runs
            // only when its address and whole shape (hence length, checked above) are those
            // of `data`, which is borrowed for the run. A view outlived by its buffer is only
            // dropped.
            let view =
                unsafe { TensorRefMut::<f32>::from_raw(cpu, data.as_ptr().cast_mut().cast(), Shape::from(shape)) }?;
            inputs.push((key, shape, view));
            inputs.len() - 1
        }
    };
    let t = std::time::Instant::now();
    let out = if bindings.preallocate {
        let o = match bindings.outputs.iter().position(|(b, _)| *b == batch) {
            Some(o) => o,
            None => {
                let options = output_tensors(session, batch)?;
                bindings.outputs.push((batch, options));
                bindings.outputs.len() - 1
            }
        };
        let out = session.run_with_options(ort::inputs![&*bindings.inputs[i].2], &bindings.outputs[o].1);
        if out.is_err() {
            // Next time without them; this run's error is reported as it is.
            bindings.preallocate = false;
        }
        out
    } else {
        session.run(ort::inputs![&*bindings.inputs[i].2])
    };
    *busy += t.elapsed();
    out
}

/// Run options whose outputs are tensors of the model's declared shapes, dynamic batch
/// dimension set to `batch`; outputs of another type or shape are left to ONNX Runtime.
fn output_tensors(session: &Session, batch: usize) -> ort::Result<RunOptions<HasSelectedOutputs>> {
    let mut selector = OutputSelector::default();
    for out in session.outputs() {
        let Some(dims) = out.dtype().tensor_shape() else {
            continue;
        };
        let dims: Vec<i64> = dims
            .iter()
            .enumerate()
            .map(|(k, &d)| if k == 0 && d < 0 { batch as i64 } else { d })
            .collect();
        if out.dtype().tensor_type() != Some(TensorElementType::Float32) || dims.iter().any(|&d| d <= 0) {
            continue;
        }
        selector = selector.preallocate(out.name(), Tensor::<f32>::new(&Allocator::default(), Shape::new(dims))?);
    }
    Ok(RunOptions::new()?.with_outputs(selector))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A smaller content after a larger one leaves the larger's tail beyond the length: a wipe
    /// zeroes that too, and keeps the room.
    #[test]
    fn a_wipe_zeroes_the_room_beyond_the_length() {
        let mut buf: Vec<u8> = vec![7; 1000];
        buf.clear();
        buf.extend_from_slice(&[9; 10]);
        let room = buf.capacity();
        wipe(&mut buf);
        assert_eq!((buf.len(), buf.capacity()), (10, room));
        // Every byte of the room was written by the wipe, so reading it all is sound.
        unsafe { buf.set_len(room) };
        assert!(buf.iter().all(|&b| b == 0));
    }

    /// Runs into tensors made once must give what ONNX Runtime's own outputs give, batch after
    /// batch, from the same and from different buffers.
    #[test]
    fn bound_runs_match_plain_runs() {
        let path = default_model_path(GENDER_MODEL);
        let mut model = Model::load(ModelRole::Gender, &path, None).unwrap();
        model.probe([1, 112, 112, 3]).unwrap();
        assert!(model.preallocates(), "the shipped model's declared outputs fit");
        let mut seed = 7u32;
        let mut noise = |n: usize| -> Vec<f32> {
            (0..n)
                .map(|_| {
                    seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (seed >> 24) as f32
                })
                .collect()
        };
        let (a, b) = (noise(3 * 112 * 112 * 3), noise(2 * 112 * 112 * 3));
        for (data, n) in [(&a, 3), (&b, 2), (&a, 3), (&b, 2)] {
            let shape = [n, 112, 112, 3];
            let bound: Vec<f32> = {
                let out = model.run(data, shape).unwrap();
                out["gender"].try_extract_tensor::<f32>().unwrap().1.to_vec()
            };
            let tensor = ort::value::TensorRef::from_array_view((shape, data.as_slice())).unwrap();
            let plain = model.session.run(ort::inputs![tensor]).unwrap();
            let plain = plain["gender"].try_extract_tensor::<f32>().unwrap().1.to_vec();
            assert_eq!(bound.len(), n * 2);
            assert_eq!(bound, plain);
        }
    }

    /// The same buffer read as another shape of the same batch (a model whose input shape is
    /// not the one it was first run with) must not run with the first shape's view.
    #[test]
    fn a_buffer_seen_with_another_shape_gets_its_own_view() {
        let path = default_model_path(EMOTION_MODEL);
        let mut model = Model::load(ModelRole::Emotion, &path, None).unwrap();
        let data = vec![0.5f32; 64 * 64 * 2];
        assert!(model.run(&data, [2, 64, 64, 1]).is_ok());
        // Same address, same batch, another shape: the model refuses it rather than reading
        // the first view's shape.
        let err = model.run(&data, [2, 32, 128, 1]).err();
        assert!(err.is_some());
        assert_eq!(
            model
                .bindings
                .inputs
                .iter()
                .filter(|(p, ..)| *p == data.as_ptr() as usize)
                .count(),
            2
        );
    }

    #[test]
    fn input_of_the_wrong_length_is_an_error() {
        let path = default_model_path(EMOTION_MODEL);
        let mut model = Model::load(ModelRole::Emotion, &path, None).unwrap();
        assert!(model.run(&[0.0; 100], [1, 64, 64, 1]).is_err());
    }
}
