//! Emotion and gender classifiers, each run once per frame on all faces as one batch.

use std::path::Path;

use crate::runtime::{Model, ModelError, ModelRole};

/// The FER-2013 classes, in the order of the mini-Xception output.
pub const EMOTIONS: [&str; 7] = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"];

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

    /// Appends one grey 64x64 face to a Grey64 batch.
    pub fn push_grey(grey: &[u8], batch: &mut Vec<f32>) {
        batch.extend(grey.iter().map(|&g| (g as f32 / 255.0 - 0.5) * 2.0));
    }

    /// Appends one face (an RGB crop of `size()` squared pixels) to a batch as model input.
    pub fn push_input(self, rgb: &[u8], batch: &mut Vec<f32>) {
        match self {
            CropKind::Grey64 => batch.extend(rgb.chunks_exact(3).map(|p| {
                // OpenCV's BGR2GRAY weights, then the (g / 255 - 0.5) * 2 the model was trained with.
                let g = 0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32;
                (g / 255.0 - 0.5) * 2.0
            })),
            CropKind::Rgb112 => batch.extend(rgb.iter().map(|&v| v as f32)),
        }
    }
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
}

impl GenderScores {
    pub fn gender(&self) -> Gender {
        if self.female >= 0.5 {
            Gender::Female
        } else {
            Gender::Male
        }
    }
    pub fn confidence(&self) -> f32 {
        self.female.max(1.0 - self.female)
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

/// A classifier network with what it wants to see: the part both classifiers share.
struct Net {
    model: Model,
    /// The model's path, apart from the model so errors can name it while the model is busy.
    path: std::path::PathBuf,
    crop: CropKind,
}

impl Net {
    fn load(role: ModelRole, path: &Path, threads: usize, ort_library: Option<&str>) -> Result<Self, ModelError> {
        let mut model = Model::load(role, path, threads, ort_library)?;
        let crop = check_input(&model)?;
        let (n, c) = (crop.size(), crop.channels());
        model.probe([1, n, n, c])?;
        Ok(Self {
            path: model.path.clone(),
            model,
            crop,
        })
    }

    /// Runs the network on a batch and hands its outputs to `read`.
    fn run<R>(
        &mut self,
        batch: &[f32],
        read: impl FnOnce(&ort::session::SessionOutputs) -> Result<R, ort::Error>,
    ) -> Result<R, ModelError> {
        let (n, c) = (self.crop.size(), self.crop.channels());
        let faces = batch.len() / (n * n * c);
        let (role, path) = (self.model.role, &self.path);
        let run_err = |e: ort::Error| ModelError::Run {
            role,
            path: path.clone(),
            reason: e.to_string(),
        };
        let outputs = self.model.run(batch, [faces, n, n, c]).map_err(run_err)?;
        read(&outputs).map_err(run_err)
    }
}

pub struct EmotionClassifier {
    net: Net,
    kind: EmotionKind,
}

impl EmotionClassifier {
    pub fn load(path: &Path, threads: usize, ort_library: Option<&str>) -> Result<Self, ModelError> {
        let net = Net::load(ModelRole::Emotion, path, threads, ort_library)?;
        let (crop, model) = (net.crop, &net.model);
        let kind =
            match (crop, model.has_output("predictions"), model.has_output("expressions")) {
                (CropKind::Grey64, true, _) => EmotionKind::MiniXception,
                (CropKind::Rgb112, _, true) => EmotionKind::FaceApi,
                _ => return Err(model.contract_error(
                    "expected mini-Xception (output `predictions`) or face-api.js expression (output `expressions`)",
                )),
            };
        Ok(Self { net, kind })
    }

    pub fn crop_kind(&self) -> CropKind {
        self.net.crop
    }

    /// Time spent inside the model since the last call.
    pub fn take_model_time(&mut self) -> std::time::Duration {
        self.net.model.take_busy()
    }

    /// Scores for each face of `batch` (built with [`CropKind::push_input`]).
    pub fn classify(&mut self, batch: &[f32], out: &mut Vec<EmotionScores>) -> Result<(), ModelError> {
        out.clear();
        if batch.is_empty() {
            return Ok(());
        }
        let kind = self.kind;
        let name = if kind == EmotionKind::MiniXception {
            "predictions"
        } else {
            "expressions"
        };
        self.net.run(batch, |o| {
            let (_, probs) = o[name].try_extract_tensor::<f32>()?;
            for p in probs.chunks_exact(7) {
                let mut s = [0.0; 7];
                match kind {
                    EmotionKind::MiniXception => s.copy_from_slice(p),
                    EmotionKind::FaceApi => {
                        for (i, &fer) in FACEAPI_TO_FER.iter().enumerate() {
                            s[fer] = p[i];
                        }
                    }
                }
                out.push(EmotionScores(s));
            }
            Ok(())
        })
    }
}

pub struct GenderClassifier {
    net: Net,
    kind: GenderKind,
}

impl GenderClassifier {
    pub fn load(path: &Path, threads: usize, ort_library: Option<&str>) -> Result<Self, ModelError> {
        let net = Net::load(ModelRole::Gender, path, threads, ort_library)?;
        let (crop, model) = (net.crop, &net.model);
        let kind = match (crop, model.has_output("gender"), model.has_output("probs")) {
            (CropKind::Rgb112, true, _) => GenderKind::FaceApi,
            (CropKind::Grey64, _, true) => GenderKind::Hm,
            _ => {
                return Err(model.contract_error(
                    "expected face-api.js age/gender (output `gender`) or human-models gender (output `probs`)",
                ))
            }
        };
        Ok(Self { net, kind })
    }

    pub fn crop_kind(&self) -> CropKind {
        self.net.crop
    }

    /// Time spent inside the model since the last call.
    pub fn take_model_time(&mut self) -> std::time::Duration {
        self.net.model.take_busy()
    }

    pub fn classify(&mut self, batch: &[f32], out: &mut Vec<GenderScores>) -> Result<(), ModelError> {
        out.clear();
        if batch.is_empty() {
            return Ok(());
        }
        let kind = self.kind;
        let has_age = self.net.model.has_output("age");
        self.net.run(batch, |o| {
            match kind {
                GenderKind::FaceApi => {
                    let (_, g) = o["gender"].try_extract_tensor::<f32>()?;
                    let ages = if has_age {
                        Some(o["age"].try_extract_tensor::<f32>()?.1)
                    } else {
                        None
                    };
                    for (i, p) in g.chunks_exact(2).enumerate() {
                        out.push(GenderScores {
                            female: p[1],
                            age: ages.map(|a| a[i]),
                        });
                    }
                }
                GenderKind::Hm => {
                    let (_, g) = o["probs"].try_extract_tensor::<f32>()?;
                    out.extend(g.chunks_exact(2).map(|p| GenderScores {
                        female: p[0],
                        age: None,
                    }));
                }
            }
            Ok(())
        })
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
        let mut batch = Vec::new();
        CropKind::Grey64.push_input(&[255, 255, 255, 0, 0, 0, 255, 0, 0], &mut batch);
        assert!((batch[0] - 1.0).abs() < 1e-5);
        assert!((batch[1] + 1.0).abs() < 1e-5);
        assert!((batch[2] - ((0.299 - 0.5) * 2.0)).abs() < 1e-5);
    }

    #[test]
    fn labels_and_confidences() {
        let e = EmotionScores([0.0, 0.0, 0.1, 0.8, 0.05, 0.0, 0.05]);
        assert_eq!(e.label(), "happy");
        assert_eq!(e.confidence(), 0.8);
        let g = GenderScores { female: 0.3, age: None };
        assert_eq!(g.gender(), Gender::Male);
        assert!((g.confidence() - 0.7).abs() < 1e-6);
    }
}
