//! Emotion and gender classifiers, each run once per frame on all faces as one batch.

use std::path::Path;

use std::sync::Arc;

use crate::face::{EmotionScores, GenderScores};
use crate::registry::{self, Shared};
use crate::runtime::{Model, ModelError, ModelRole};

pub use crate::face::EMOTIONS;

/// What a classifier wants to see of a face.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CropKind {
    /// 64x64 grey, scaled to -1..1 (mini-Xception).
    Grey64,
    /// 112x112 RGB, 0..255 (face-api.js).
    Rgb112,
}

impl CropKind {
    pub fn size(self) -> usize {
        match self {
            CropKind::Grey64 => 64,
            CropKind::Rgb112 => 112,
        }
    }
    fn channels(self) -> usize {
        match self {
            CropKind::Grey64 => 1,
            CropKind::Rgb112 => 3,
        }
    }
    fn expected_shape(self) -> [i64; 3] {
        let n = self.size() as i64;
        [n, n, self.channels() as i64]
    }
    /// Values of one face's input.
    pub fn input_len(self) -> usize {
        self.size() * self.size() * self.channels()
    }

    /// Appends one grey 64x64 face to a Grey64 batch.
    pub fn push_grey(grey: &[u8], batch: &mut Batch) {
        batch.grey.extend(grey.iter().map(|&g| (g as f32 / 255.0 - 0.5) * 2.0));
    }

    /// Appends one face (an RGB crop of `size()` squared pixels) to a batch as model input.
    pub fn push_input(self, rgb: &[u8], batch: &mut Batch) {
        match self {
            CropKind::Grey64 => batch.grey.extend(rgb.chunks_exact(3).map(|p| {
                // OpenCV's BGR2GRAY weights, then the (g / 255 - 0.5) * 2 the model was trained with.
                let g = 0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32;
                (g / 255.0 - 0.5) * 2.0
            })),
            // The network takes the 0..255 values as they are: the floats are made on the
            // pool's worker, straight into the session's input.
            CropKind::Rgb112 => batch.rgb.extend_from_slice(rgb),
        }
    }
}

/// One network's faces, waiting for the pool: the 112 RGB crops in 8 bits (a quarter of the
/// floats' memory, and the same values), the 64 grey ones in floats (a grey computed in floats
/// from a 64 RGB crop, which 8 bits would round; under half an RGB crop's bytes even so).
#[derive(Debug, Default, Clone)]
pub struct Batch {
    rgb: Vec<u8>,
    grey: Vec<f32>,
}

impl Batch {
    pub fn clear(&mut self) {
        self.rgb.clear();
        self.grey.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.rgb.is_empty() && self.grey.is_empty()
    }

    /// Input values held for a network taking `kind`.
    fn len(&self, kind: CropKind) -> usize {
        match kind {
            CropKind::Grey64 => self.grey.len(),
            CropKind::Rgb112 => self.rgb.len(),
        }
    }

    /// Appends the input values `range` of a network taking `kind` to `out`, as floats.
    fn fill(&self, kind: CropKind, range: std::ops::Range<usize>, out: &mut Vec<f32>) {
        match kind {
            CropKind::Grey64 => out.extend_from_slice(&self.grey[range]),
            CropKind::Rgb112 => out.extend(self.rgb[range].iter().map(|&v| v as f32)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EmotionKind {
    /// mini-Xception (fer): `predictions` already in FER order.
    MiniXception,
    /// face-api.js: `expressions` in order neutral, happy, sad, angry, fearful, disgusted, surprised.
    FaceApi,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GenderKind {
    /// face-api.js age/gender: `gender` [male, female] and `age`.
    FaceApi,
    /// human-models mini-Xception: `probs` [female, male].
    Hm,
}

/// Index into the FER order of each face-api.js expression output.
const FACEAPI_TO_FER: [usize; 7] = [6, 3, 4, 0, 2, 1, 5];

fn check_input(model: &Model) -> Result<CropKind, ModelError> {
    let shape = model.input_shape(0);
    for kind in [CropKind::Grey64, CropKind::Rgb112] {
        if shape.len() == 4 && shape[1..] == kind.expected_shape() {
            return Ok(kind);
        }
    }
    Err(model.contract_error(format!(
        "input is {}, expected [N,64,64,1] or [N,112,112,3]",
        model.describe_inputs()
    )))
}

/// What a classifier network wants to see, learnt at load: the part both classifiers share.
#[derive(Debug, Clone, Copy)]
struct NetInfo {
    crop: CropKind,
    /// Faces one run may take: 1 for a model whose input batch is fixed at one, which then runs
    /// once per face.
    max_batch: usize,
}

/// What a classifier's runs counted, for the stream that asked.
#[derive(Debug, Default, Clone, Copy)]
pub struct NetStats {
    /// Time inside the model.
    pub busy: std::time::Duration,
    /// Faces whose answer was NaN or infinite (and so given none).
    pub nonfinite: usize,
}

/// Works out what the model wants to see, and checks every output it is read by (`outputs`:
/// name, values per face, what they mean) on one face and on a batch of two, so that a model
/// giving a fixed number of answers whatever the batch is refused here.
fn check_net(
    model: &mut Model,
    outputs: impl FnOnce(&Model) -> Vec<(&'static str, usize, &'static str)>,
) -> Result<NetInfo, ModelError> {
    let crop = check_input(model)?;
    let max_batch = if model.input_shape(0).first() == Some(&1) {
        1
    } else {
        usize::MAX
    };
    let (n, c) = (crop.size(), crop.channels());
    let wanted = outputs(model);
    let batches: &[usize] = if max_batch == 1 { &[1] } else { &[1, 2] };
    for &b in batches {
        let probed = model.probe([b, n, n, c])?;
        for &(name, per_face, meaning) in &wanted {
            model.check_output(&probed, name, b, per_face, meaning)?;
        }
    }
    Ok(NetInfo { crop, max_batch })
}

/// Runs a network on a batch, in as many runs as its batch limit needs, on a session leased
/// from the shared model, handing each run's outputs and number of faces to `read`.
fn run_net<T>(
    shared: &Shared<T>,
    info: NetInfo,
    batch: &Batch,
    stats: &mut NetStats,
    mut read: impl FnMut(&ort::session::SessionOutputs, usize) -> Result<(), ort::Error>,
) -> Result<(), ModelError> {
    let (n, c) = (info.crop.size(), info.crop.channels());
    let per_face = info.crop.input_len();
    let (role, path) = (shared.role, &shared.path);
    let run_err = |e: ort::Error| ModelError::Run {
        role,
        path: path.clone(),
        reason: e.to_string(),
    };
    let mut model = shared.lease()?;
    let mut result = Ok(());
    let total = batch.len(info.crop) / per_face;
    let step = info.max_batch.min(total).max(1);
    for start in (0..total).step_by(step) {
        let faces = step.min(total - start);
        let range = start * per_face..(start + faces) * per_face;
        let ran = model
            .run_filled(|staging| batch.fill(info.crop, range, staging), [faces, n, n, c])
            .and_then(|outputs| read(&outputs, faces));
        if let Err(e) = ran {
            result = Err(run_err(e));
            break;
        }
    }
    stats.busy += model.take_busy();
    result
}

/// Output values of a run that are fewer than the faces need (a model whose output size
/// changes at run time): an error, never an index out of bounds.
fn short_output(name: &str, got: usize, want: usize) -> ort::Error {
    ort::Error::new(format!("output `{name}` gave {got} values, {want} expected"))
}

#[derive(Debug)]
pub struct EmotionInfo {
    net: NetInfo,
    kind: EmotionKind,
}

/// An emotion network, shared by every stream that uses it ([`crate::registry`]).
#[derive(Clone)]
pub struct EmotionClassifier {
    shared: Arc<Shared<EmotionInfo>>,
}

impl EmotionClassifier {
    pub fn load(path: &Path, group: &str, ort_library: Option<&str>) -> Result<Self, ModelError> {
        let shared = registry::get(ModelRole::Emotion, path, group, ort_library, |model| {
            let kind = match (
                check_input(model).ok(),
                model.has_output("predictions"),
                model.has_output("expressions"),
            ) {
                (Some(CropKind::Grey64), true, _) => EmotionKind::MiniXception,
                (Some(CropKind::Rgb112), _, true) => EmotionKind::FaceApi,
                _ => {
                    check_input(model)?;
                    return Err(model.contract_error(
                        "expected mini-Xception (64x64 grey input, output `predictions`) or face-api.js expression \
                         (112x112 RGB input, output `expressions`)",
                    ));
                }
            };
            let net = check_net(model, |_| match kind {
                EmotionKind::MiniXception => vec![("predictions", 7, "the 7 class probabilities")],
                EmotionKind::FaceApi => vec![("expressions", 7, "the 7 class probabilities")],
            })?;
            Ok(EmotionInfo { net, kind })
        })?;
        Ok(Self { shared })
    }

    pub fn crop_kind(&self) -> CropKind {
        self.shared.info.net.crop
    }

    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Scores for each face of `batch` (built with [`CropKind::push_input`]), in the FER order;
    /// `None` for a face whose answer was not finite.
    pub fn classify(
        &self,
        batch: &Batch,
        out: &mut Vec<Option<EmotionScores>>,
        stats: &mut NetStats,
    ) -> Result<(), ModelError> {
        out.clear();
        if batch.is_empty() {
            return Ok(());
        }
        let info = &self.shared.info;
        let kind = info.kind;
        let name = if kind == EmotionKind::MiniXception {
            "predictions"
        } else {
            "expressions"
        };
        let mut nonfinite = 0;
        let ran = run_net(&self.shared, info.net, batch, stats, |o, faces| {
            let (_, probs) = o[name].try_extract_tensor::<f32>()?;
            if probs.len() < faces * 7 {
                return Err(short_output(name, probs.len(), faces * 7));
            }
            for p in probs.chunks_exact(7).take(faces) {
                let mut s = [0.0; 7];
                match kind {
                    EmotionKind::MiniXception => s.copy_from_slice(p),
                    EmotionKind::FaceApi => {
                        for (i, &fer) in FACEAPI_TO_FER.iter().enumerate() {
                            s[fer] = p[i];
                        }
                    }
                }
                let s = EmotionScores(s);
                if s.is_finite() {
                    out.push(Some(s));
                } else {
                    nonfinite += 1;
                    out.push(None);
                }
            }
            Ok(())
        });
        stats.nonfinite += nonfinite;
        ran
    }
}

#[derive(Debug)]
pub struct GenderInfo {
    net: NetInfo,
    kind: GenderKind,
    has_age: bool,
}

/// A gender (and age) network, shared by every stream that uses it ([`crate::registry`]).
#[derive(Clone)]
pub struct GenderClassifier {
    shared: Arc<Shared<GenderInfo>>,
}

impl GenderClassifier {
    pub fn load(path: &Path, group: &str, ort_library: Option<&str>) -> Result<Self, ModelError> {
        let shared = registry::get(ModelRole::Gender, path, group, ort_library, |model| {
            let kind = match (
                check_input(model).ok(),
                model.has_output("gender"),
                model.has_output("probs"),
            ) {
                (Some(CropKind::Rgb112), true, _) => GenderKind::FaceApi,
                (Some(CropKind::Grey64), _, true) => GenderKind::Hm,
                _ => {
                    check_input(model)?;
                    return Err(model.contract_error(
                        "expected face-api.js age/gender (112x112 RGB input, output `gender`) or human-models gender \
                         (64x64 grey input, output `probs`)",
                    ));
                }
            };
            let has_age = kind == GenderKind::FaceApi && model.has_output("age");
            let net = check_net(model, |_| match kind {
                GenderKind::FaceApi if has_age => vec![
                    ("gender", 2, "male and female probabilities"),
                    ("age", 1, "the age in years"),
                ],
                GenderKind::FaceApi => vec![("gender", 2, "male and female probabilities")],
                GenderKind::Hm => vec![("probs", 2, "female and male probabilities")],
            })?;
            Ok(GenderInfo { net, kind, has_age })
        })?;
        Ok(Self { shared })
    }

    pub fn crop_kind(&self) -> CropKind {
        self.shared.info.net.crop
    }

    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Gender (and age) for each face of `batch`; `None` for a face whose answer was not finite.
    pub fn classify(
        &self,
        batch: &Batch,
        out: &mut Vec<Option<GenderScores>>,
        stats: &mut NetStats,
    ) -> Result<(), ModelError> {
        out.clear();
        if batch.is_empty() {
            return Ok(());
        }
        let info = &self.shared.info;
        let (kind, has_age) = (info.kind, info.has_age);
        let mut nonfinite = 0;
        let ran = run_net(&self.shared, info.net, batch, stats, |o, faces| {
            let (name, female_at) = match kind {
                GenderKind::FaceApi => ("gender", 1),
                GenderKind::Hm => ("probs", 0),
            };
            let (_, g) = o[name].try_extract_tensor::<f32>()?;
            if g.len() < faces * 2 {
                return Err(short_output(name, g.len(), faces * 2));
            }
            let ages = if has_age {
                let (_, a) = o["age"].try_extract_tensor::<f32>()?;
                if a.len() < faces {
                    return Err(short_output("age", a.len(), faces));
                }
                Some(a)
            } else {
                None
            };
            for (i, p) in g.chunks_exact(2).take(faces).enumerate() {
                let s = GenderScores::new(p[female_at], ages.map(|a| a[i]));
                if s.is_finite() {
                    out.push(Some(s));
                } else {
                    nonfinite += 1;
                    out.push(None);
                }
            }
            Ok(())
        });
        stats.nonfinite += nonfinite;
        ran
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faceapi_order_maps_to_fer_order() {
        // neutral, happy, sad, angry, fearful, disgusted, surprised
        let names = ["neutral", "happy", "sad", "angry", "fear", "disgust", "surprise"];
        for (i, n) in names.iter().enumerate() {
            assert_eq!(EMOTIONS[FACEAPI_TO_FER[i]], *n);
        }
    }

    #[test]
    fn grey_input_uses_bgr2gray_weights_and_scaling() {
        let mut batch = Batch::default();
        CropKind::Grey64.push_input(&[255, 255, 255, 0, 0, 0, 255, 0, 0], &mut batch);
        let grey = &batch.grey;
        assert!((grey[0] - 1.0).abs() < 1e-5);
        assert!((grey[1] + 1.0).abs() < 1e-5);
        assert!((grey[2] - ((0.299 - 0.5) * 2.0)).abs() < 1e-5);
    }

    #[test]
    fn an_rgb_batch_waits_in_8_bits_and_reaches_the_model_as_the_same_values() {
        let crop: Vec<u8> = (0..CropKind::Rgb112.input_len()).map(|i| (i * 7 % 256) as u8).collect();
        let mut batch = Batch::default();
        CropKind::Rgb112.push_input(&crop, &mut batch);
        CropKind::Rgb112.push_input(&crop, &mut batch);
        assert_eq!(batch.len(CropKind::Rgb112), 2 * crop.len());
        let mut floats = Vec::new();
        let per_face = CropKind::Rgb112.input_len();
        batch.fill(CropKind::Rgb112, per_face..2 * per_face, &mut floats);
        assert!(floats.iter().zip(&crop).all(|(&f, &v)| f == v as f32));
        batch.clear();
        assert!(batch.is_empty());
    }
}
