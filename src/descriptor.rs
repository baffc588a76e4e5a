//! The face descriptor: a network that maps a face to a unit vector, close for two views of one
//! person and far for two people (`models/hm_faceres.onnx`, see models/README.md), and the crop
//! it wants: a square around the face, turned so that the eyes are level.
//!
//! Descriptors are for telling a returning visitor from a new one (`visitor.rs`); they stay in
//! the memory of the stream that made them.

use std::path::Path;
use std::sync::Arc;

use crate::classifier::NetStats;
use crate::face::Detection;
use crate::image::ImageView;
use crate::registry::{self, Shared};
use crate::resample::{Border, RectF, Resampler};
use crate::runtime::{ModelError, ModelRole};

/// Side of the descriptor's crop as a multiple of the box's larger side: the whole head, which
/// separated people best among the crops measured (models/README.md).
pub const CROP_SCALE: f32 = 1.4;

/// Below this roll (radians) the crop is not turned: a resample fewer, the same descriptor.
const LEVEL_ENOUGH: f32 = 0.03;

#[derive(Debug)]
pub struct DescriberInfo {
    /// Side of the square RGB input.
    side: usize,
    /// Values of one descriptor.
    dims: usize,
    /// Faces one run may take (1 for a model fixed at one).
    max_batch: usize,
}

/// A descriptor network, shared by every stream that uses it ([`crate::registry`]).
#[derive(Clone)]
pub struct Describer {
    shared: Arc<Shared<DescriberInfo>>,
}

impl Describer {
    /// Loads and checks a descriptor model: input `[N,S,S,3]` RGB 0..255, output `descriptor`
    /// `[N,D]`, finite on a blank picture, one descriptor per face of a batch.
    pub fn load(path: &Path, group: &str, ort_library: Option<&str>) -> Result<Self, ModelError> {
        let shared = registry::get(ModelRole::Descriptor, path, group, ort_library, |model| {
            let shape = model.input_shape(0);
            let side = match shape.as_slice() {
                [_, h, w, 3] if h == w && (64..=512).contains(h) => *h as usize,
                _ => {
                    return Err(model.contract_error(format!(
                        "input is {}, expected [N,S,S,3] (a square RGB face, such as [N,224,224,3])",
                        model.describe_inputs()
                    )))
                }
            };
            if !model.has_output("descriptor") {
                return Err(model.contract_error("it has no output `descriptor` (the face's descriptor vector)"));
            }
            let probed = model.probe([1, side, side, 3])?;
            let dims = probed
                .iter()
                .find(|p| p.name == "descriptor")
                .and_then(|p| p.len)
                .unwrap_or(0);
            if dims < 16 {
                return Err(model.contract_error(format!(
                    "output `descriptor` gave {dims} values for one face; a descriptor has at least 16"
                )));
            }
            model.check_output(&probed, "descriptor", 1, dims, "the face's descriptor vector")?;
            let max_batch = if shape[0] == 1 { 1 } else { usize::MAX };
            if max_batch > 1 {
                let probed = model.probe([2, side, side, 3])?;
                model.check_output(&probed, "descriptor", 2, dims, "the face's descriptor vector")?;
            }
            Ok(DescriberInfo { side, dims, max_batch })
        })?;
        Ok(Self { shared })
    }

    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Side of the square crop the model sees.
    pub fn side(&self) -> usize {
        self.shared.info.side
    }

    pub fn dims(&self) -> usize {
        self.shared.info.dims
    }

    /// Values of one face's input.
    pub fn input_len(&self) -> usize {
        self.side() * self.side() * 3
    }

    /// Descriptors of each face of `batch` (8-bit RGB crops of [`side`](Self::side) squared,
    /// made the model's floats 0..255 in the session's own input buffer), unit length, `dims`
    /// values each, in `out`; `finite[i]` says whether face i got one (a model answering NaN
    /// gives none).
    pub fn describe(
        &self,
        batch: &[u8],
        out: &mut Vec<f32>,
        finite: &mut Vec<bool>,
        stats: &mut NetStats,
    ) -> Result<(), ModelError> {
        out.clear();
        finite.clear();
        let info = &self.shared.info;
        let per_face = self.input_len();
        if batch.is_empty() {
            return Ok(());
        }
        let (role, path) = (self.shared.role, &self.shared.path);
        let mut model = self.shared.lease()?;
        let mut result = Ok(());
        let per_run = per_face * info.max_batch.min(batch.len() / per_face).max(1);
        for chunk in batch.chunks(per_run) {
            let faces = chunk.len() / per_face;
            let fill = |buf: &mut Vec<f32>| buf.extend(chunk.iter().map(|&v| v as f32));
            let ran = model.run_filled(fill, [faces, info.side, info.side, 3]).and_then(|o| {
                let (_, d) = o["descriptor"].try_extract_tensor::<f32>()?;
                if d.len() < faces * info.dims {
                    return Err(ort::Error::new(format!(
                        "output `descriptor` gave {} values, {} expected",
                        d.len(),
                        faces * info.dims
                    )));
                }
                for v in d.chunks_exact(info.dims).take(faces) {
                    let start = out.len();
                    out.extend_from_slice(v);
                    let ok = normalise(&mut out[start..]);
                    if !ok {
                        stats.nonfinite += 1;
                    }
                    finite.push(ok);
                }
                Ok(())
            });
            if let Err(e) = ran {
                result = Err(ModelError::Run {
                    role,
                    path: path.clone(),
                    reason: e.to_string(),
                });
                break;
            }
        }
        stats.busy += model.take_busy();
        // The session is shared by the process and outlives the stream: the faces it was given
        // do not stay in its input buffer.
        model.wipe_staging();
        if result.is_err() {
            out.clear();
            finite.clear();
        }
        result
    }
}

/// Scales `v` to unit length; false (and `v` zeroed) when it has no length or is not finite.
pub fn normalise(v: &mut [f32]) -> bool {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if !norm.is_finite() || norm < 1e-12 {
        v.iter_mut().for_each(|x| *x = 0.0);
        return false;
    }
    v.iter_mut().for_each(|x| *x /= norm);
    true
}

/// Cosine distance of two unit vectors: 0 for the same direction, 1 for perpendicular.
pub fn distance(a: &[f32], b: &[f32]) -> f32 {
    1.0 - a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>()
}

/// The descriptor's square: centre, side, and the eyes' roll (radians), from the box and the
/// detector's eye keypoints (the subject's right eye first).
pub fn square(d: &Detection) -> (f32, f32, f32, f32) {
    let (cx, cy) = d.bbox.center();
    let side = d.bbox.side() * CROP_SCALE;
    let (r, l) = (d.keypoints[0], d.keypoints[1]);
    let (dx, dy) = (l.0 - r.0, l.1 - r.1);
    let angle = if dx.is_finite() && dy.is_finite() && (dx != 0.0 || dy != 0.0) {
        dy.atan2(dx)
    } else {
        0.0
    };
    // A face upside down or on its side is not what the network was trained on either way;
    // turning it by more than a right angle would only make the crop worse.
    let angle = angle.clamp(-std::f32::consts::FRAC_PI_2, std::f32::consts::FRAC_PI_2);
    (cx, cy, side, angle)
}

/// How much a view is worth for a descriptor: large and frontal (the nose between the eyes)
/// faces first, the detector's certainty beside.
pub fn view_quality(d: &Detection) -> f32 {
    let side = d.bbox.side();
    let (r, l, nose) = (d.keypoints[0], d.keypoints[1], d.keypoints[2]);
    let eyes = ((l.0 - r.0).powi(2) + (l.1 - r.1).powi(2)).sqrt().max(1.0);
    let mid = ((l.0 + r.0) / 2.0, (l.1 + r.1) / 2.0);
    // How far the nose is off the line between the eyes' midpoint, in eye distances: 0 frontal,
    // about 0.5 and more for a head turned well away.
    let off = ((nose.0 - mid.0).powi(2)).sqrt() / eyes;
    let frontal = (1.0 - off).clamp(0.1, 1.0);
    let q = side * frontal * d.score.clamp(0.05, 1.0);
    if q.is_finite() {
        q
    } else {
        0.0
    }
}

/// Cuts the descriptor's crops out of frames: the square around the face resampled once
/// (axis-aligned, large enough to hold the turned square), then turned bilinearly into the batch.
#[derive(Default)]
pub struct Aligner {
    resampler: Resampler,
    /// The axis-aligned square around the turned one.
    around: Vec<u8>,
}

impl Aligner {
    /// Zeroes the pixels kept for their room.
    pub fn wipe(&mut self) {
        crate::runtime::wipe(&mut self.around);
    }

    /// Appends face `d`'s `side` x `side` RGB crop from `img` to `batch` (8 bits: a quarter of
    /// the floats' memory while the job waits for the pool). On an error `batch` is as it was.
    pub fn push(&mut self, img: &ImageView, d: &Detection, side: usize, batch: &mut Vec<u8>) -> Result<(), ModelError> {
        let at = batch.len();
        batch.resize(at + side * side * 3, 0);
        let pushed = self.crop_into(img, d, side, &mut batch[at..]);
        if pushed.is_err() {
            batch.truncate(at);
        }
        pushed
    }

    fn crop_into(&mut self, img: &ImageView, d: &Detection, side: usize, crop: &mut [u8]) -> Result<(), ModelError> {
        let image_err = |e: crate::resample::ResampleError| ModelError::Image(e.to_string());
        let (cx, cy, square_side, angle) = square(d);
        if angle.abs() < LEVEL_ENOUGH {
            let region = RectF {
                x: cx - square_side / 2.0,
                y: cy - square_side / 2.0,
                w: square_side,
                h: square_side,
            };
            self.resampler
                .resample(img, region, side, side, Border::Replicate, crop)
                .map_err(image_err)?;
        } else {
            let (s, c) = angle.sin_cos();
            let reach = c.abs() + s.abs();
            let n = ((side as f32) * reach).ceil() as usize;
            let around_side = square_side * n as f32 / side as f32;
            self.around.resize(n * n * 3, 0);
            let region = RectF {
                x: cx - around_side / 2.0,
                y: cy - around_side / 2.0,
                w: around_side,
                h: around_side,
            };
            self.resampler
                .resample(img, region, n, n, Border::Replicate, &mut self.around)
                .map_err(image_err)?;
            turn(&self.around, n, side, angle, crop);
        }
        Ok(())
    }
}

/// Samples the `side` square turned by `angle` out of the `n` x `n` RGB image `around`, both
/// centred on the same point and at the same scale: output pixel (u, v) is the source at the
/// centre plus the offset (u, v) from the centre turned by `angle`.
fn turn(around: &[u8], n: usize, side: usize, angle: f32, out: &mut [u8]) {
    let (s, c) = angle.sin_cos();
    let half_out = side as f32 / 2.0;
    let half_in = n as f32 / 2.0;
    let max = (n - 1) as f32;
    for v in 0..side {
        let dv = v as f32 + 0.5 - half_out;
        for u in 0..side {
            let du = u as f32 + 0.5 - half_out;
            // Pixel centres at +0.5: back to sample coordinates.
            let x = (half_in + c * du - s * dv - 0.5).clamp(0.0, max);
            let y = (half_in + s * du + c * dv - 0.5).clamp(0.0, max);
            let (x0, y0) = (x.floor() as usize, y.floor() as usize);
            let (x1, y1) = ((x0 + 1).min(n - 1), (y0 + 1).min(n - 1));
            let (fx, fy) = (x - x0 as f32, y - y0 as f32);
            let o = (v * side + u) * 3;
            for k in 0..3 {
                let p = |xx: usize, yy: usize| around[(yy * n + xx) * 3 + k] as f32;
                let top = p(x0, y0) + (p(x1, y0) - p(x0, y0)) * fx;
                let bottom = p(x0, y1) + (p(x1, y1) - p(x0, y1)) * fx;
                out[o + k] = (top + (bottom - top) * fy).round().clamp(0.0, 255.0) as u8;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::face::{BBox, Pass};

    fn det(kp_r: (f32, f32), kp_l: (f32, f32)) -> Detection {
        Detection {
            bbox: BBox {
                x1: 100.0,
                y1: 100.0,
                x2: 200.0,
                y2: 200.0,
            },
            score: 0.9,
            keypoints: [
                kp_r,
                kp_l,
                (150.0, 150.0),
                (150.0, 180.0),
                (110.0, 140.0),
                (190.0, 140.0),
            ],
            pass: Pass::Whole,
        }
    }

    #[test]
    fn the_square_is_levelled_on_the_eyes() {
        let (cx, cy, side, a) = square(&det((130.0, 130.0), (170.0, 130.0)));
        assert_eq!((cx, cy), (150.0, 150.0));
        assert!((side - 140.0).abs() < 1e-4);
        assert!(a.abs() < 1e-6);
        // The subject's left eye lower in the picture: the head leans; the crop turns with it.
        let (.., a) = square(&det((130.0, 130.0), (170.0, 170.0)));
        assert!((a - std::f32::consts::FRAC_PI_4).abs() < 1e-5);
        // Keypoints that say nothing give an upright crop.
        let (.., a) = square(&det((f32::NAN, 1.0), (2.0, 1.0)));
        assert_eq!(a, 0.0);
    }

    #[test]
    fn turning_by_nothing_copies_and_by_a_right_angle_rotates() {
        // A 4x4 picture whose pixels say where they are.
        let n = 4;
        let mut img = vec![0u8; n * n * 3];
        for y in 0..n {
            for x in 0..n {
                img[(y * n + x) * 3] = (x * 10) as u8;
                img[(y * n + x) * 3 + 1] = (y * 10) as u8;
            }
        }
        let mut out = vec![0u8; n * n * 3];
        turn(&img, n, n, 0.0, &mut out);
        assert_eq!(out, img);
        turn(&img, n, n, std::f32::consts::FRAC_PI_2, &mut out);
        // Output (u, v) samples the source at (centre - dv, centre + du): x = n-1-v, y = u.
        for v in 0..n {
            for u in 0..n {
                let o = (v * n + u) * 3;
                assert_eq!(
                    (out[o], out[o + 1]),
                    (((n - 1 - v) * 10) as u8, (u * 10) as u8),
                    "{u},{v}"
                );
            }
        }
    }

    #[test]
    fn descriptors_are_unit_and_distances_cosine() {
        let mut a = vec![3.0, 4.0];
        assert!(normalise(&mut a));
        assert!((a[0] - 0.6).abs() < 1e-6);
        let mut z = vec![0.0, 0.0];
        assert!(!normalise(&mut z));
        let mut n = vec![f32::NAN, 1.0];
        assert!(!normalise(&mut n));
        assert_eq!(n, vec![0.0, 0.0]);
        assert!(distance(&a, &a).abs() < 1e-6);
        assert!((distance(&[1.0, 0.0], &[0.0, 1.0]) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn frontal_large_faces_are_the_better_views() {
        let frontal = det((130.0, 130.0), (170.0, 130.0));
        let mut turned = frontal;
        turned.keypoints[2] = (168.0, 150.0);
        assert!(view_quality(&frontal) > view_quality(&turned));
        let mut small = frontal;
        small.bbox = BBox {
            x1: 100.0,
            y1: 100.0,
            x2: 140.0,
            y2: 140.0,
        };
        assert!(view_quality(&frontal) > view_quality(&small));
    }
}
