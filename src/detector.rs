//! MediaPipe BlazeFace face detection (full range and short range), decoded as MediaPipe does.

use std::path::Path;

use crate::face::{BBox, Detection, Pass};
use crate::image::ImageView;
use crate::resample::{Border, Placement, RectF, Resampler};
use std::sync::Arc;

use crate::registry::{self, Shared};
use crate::runtime::{Model, ModelError, ModelRole};

/// Boxes whose overlap with a stronger box exceeds this are merged into it.
pub const NMS_IOU: f32 = 0.3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetectorKind {
    /// 192x192 input, one 48x48 anchor grid: faces near and far (up to about 5 m).
    FullRange,
    /// 128x128 input, 16x16x2 + 8x8x6 anchors: faces within about 2 m, faster.
    ShortRange,
}

impl DetectorKind {
    pub fn input_size(self) -> usize {
        match self {
            DetectorKind::FullRange => 192,
            DetectorKind::ShortRange => 128,
        }
    }

    fn outputs(self) -> (&'static str, &'static str) {
        match self {
            DetectorKind::FullRange => ("reshaped_regressor_face_4", "reshaped_classifier_face_4"),
            DetectorKind::ShortRange => ("regressors", "classificators"),
        }
    }

    /// Anchor centres in normalised input coordinates, in the order of the model's outputs.
    pub fn anchors(self) -> Vec<[f32; 2]> {
        let grids: &[(usize, usize)] = match self {
            DetectorKind::FullRange => &[(48, 1)],
            DetectorKind::ShortRange => &[(16, 2), (8, 6)],
        };
        let mut a = Vec::new();
        for &(n, per_cell) in grids {
            for y in 0..n {
                for x in 0..n {
                    for _ in 0..per_cell {
                        a.push([(x as f32 + 0.5) / n as f32, (y as f32 + 0.5) / n as f32]);
                    }
                }
            }
        }
        a
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x.clamp(-80.0, 80.0)).exp())
}

/// Turns raw regressors (16 per anchor) and logits into detections in normalised input
/// coordinates (0..1 of the square input), keeping those scoring above `threshold`; appends
/// them to `out`. Returns how many anchors gave values that are not finite (NaN or infinite),
/// which are skipped: they are a model fault, not a face.
pub fn decode(
    regressors: &[f32],
    logits: &[f32],
    anchors: &[[f32; 2]],
    size: usize,
    threshold: f32,
    out: &mut Vec<Detection>,
) -> usize {
    let s = size as f32;
    let mut nonfinite = 0;
    for ((&logit, a), r) in logits.iter().zip(anchors).zip(regressors.chunks_exact(16)) {
        if !logit.is_finite() {
            nonfinite += 1;
            continue;
        }
        let score = sigmoid(logit);
        if score <= threshold {
            continue;
        }
        if !r.iter().all(|v| v.is_finite()) {
            nonfinite += 1;
            continue;
        }
        let (cx, cy) = (r[0] / s + a[0], r[1] / s + a[1]);
        let (w, h) = (r[2] / s, r[3] / s);
        let mut keypoints = [(0.0, 0.0); 6];
        for (k, kp) in keypoints.iter_mut().enumerate() {
            *kp = (r[4 + 2 * k] / s + a[0], r[5 + 2 * k] / s + a[1]);
        }
        out.push(Detection {
            bbox: BBox {
                x1: cx - w / 2.0,
                y1: cy - h / 2.0,
                x2: cx + w / 2.0,
                y2: cy + h / 2.0,
            },
            score,
            keypoints,
            pass: Pass::Whole,
        });
    }
    nonfinite
}

/// MediaPipe's weighted non-maximum suppression: the strongest box absorbs every box overlapping
/// it by more than `iou`, and the result is their score-weighted average (with the top score).
/// Appends the results to `out`; `dets` is left sorted, its absorbed boxes marked by a score of -1.
///
/// Of a cluster found by inputs of several passes, only the widest pass's boxes make the face
/// (the whole frame's before a tile's before a cell's): a face the whole frame finds keeps the box
/// and score it had before tiles and cells existed, so its crops, and labels, do not change.
/// Unless the face is small for the widest pass (below `reach`, what the whole frame shows) and
/// that pass is much less sure of it than a finer one ([`PASS_MARGIN`]): a face at the whole
/// frame's lower limit is found there with a box that can be half as large again, and the finer
/// input's box is the face. Large faces keep the whole frame's box whatever the scores: it is
/// the one privacy masks were measured with.
pub const PASS_MARGIN: f32 = 0.15;

pub fn weighted_nms(dets: &mut [Detection], iou: f32, reach: f32, out: &mut Vec<Detection>) {
    // Unstable (a stable sort allocates for long lists), with ties broken by position so that
    // the order is still the same on every run.
    dets.sort_unstable_by(|a, b| {
        (b.score.total_cmp(&a.score))
            .then(a.bbox.x1.total_cmp(&b.bbox.x1))
            .then(a.bbox.y1.total_cmp(&b.bbox.y1))
    });
    // Scores are probabilities, so a negative one can mark a box already absorbed, which keeps
    // this free of a per-frame "taken" list.
    let taken = |d: &Detection| d.score < 0.0;
    for i in 0..dets.len() {
        if taken(&dets[i]) {
            continue;
        }
        let top = dets[i];
        let member = |j: usize, d: &Detection| j == i || !taken(d) && top.bbox.iou(&d.bbox) > iou;
        // The surest box says how large the face is.
        let small = top.bbox.side() < reach;
        let pass = dets
            .iter()
            .enumerate()
            .skip(i)
            .filter(|(j, d)| member(*j, d) && (!small || d.score >= top.score - PASS_MARGIN))
            .map(|(_, d)| d.pass)
            .max()
            .unwrap_or(top.pass);
        let (mut sum, mut acc, mut score) = (0.0f32, [0.0f32; 16], 0.0f32);
        for (j, other) in dets.iter_mut().enumerate().skip(i) {
            if !member(j, other) {
                continue;
            }
            let d = *other;
            other.score = -1.0;
            if d.pass != pass {
                continue;
            }
            score = score.max(d.score);
            let vals = [d.bbox.x1, d.bbox.y1, d.bbox.x2, d.bbox.y2];
            for (k, v) in vals
                .iter()
                .chain(d.keypoints.iter().flat_map(|p| [&p.0, &p.1]))
                .enumerate()
            {
                acc[k] += v * d.score;
            }
            sum += d.score;
        }
        let m = acc.map(|v| v / sum);
        let mut keypoints = [(0.0, 0.0); 6];
        for (k, kp) in keypoints.iter_mut().enumerate() {
            *kp = (m[4 + 2 * k], m[5 + 2 * k]);
        }
        out.push(Detection {
            bbox: BBox {
                x1: m[0],
                y1: m[1],
                x2: m[2],
                y2: m[3],
            },
            score,
            keypoints,
            pass,
        });
    }
}

/// The square, centred on the frame, that the detector sees (the letterbox).
pub fn letterbox_region(width: usize, height: usize) -> RectF {
    let side = width.max(height) as f32;
    RectF {
        x: (width as f32 - side) / 2.0,
        y: (height as f32 - side) / 2.0,
        w: side,
        h: side,
    }
}

/// Maps a detection in normalised input coordinates back to frame pixels (not clipped).
pub fn to_frame(d: &Detection, placement: &Placement, size: usize) -> Detection {
    let s = size as f32;
    let p = |x: f32, y: f32| placement.to_frame(x * s, y * s);
    let (x1, y1) = p(d.bbox.x1, d.bbox.y1);
    let (x2, y2) = p(d.bbox.x2, d.bbox.y2);
    Detection {
        bbox: BBox { x1, y1, x2, y2 },
        score: d.score,
        keypoints: d.keypoints.map(|(x, y)| p(x, y)),
        pass: d.pass,
    }
}

/// A part of a detector input that shows a part of the frame: the whole input (the letterboxed
/// frame, or a tile), or one cell of a mosaic of known faces.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cell {
    /// The cell in input pixels: x, y, side.
    pub at: (usize, usize, usize),
    /// Where its pixels came from in the frame.
    pub placement: Placement,
}

/// One detector input: which cells it holds, what found faces are called, at what score.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub cells: std::ops::Range<usize>,
    pub pass: Pass,
    pub threshold: f32,
}

/// The detector's input for one frame: the letterboxed frame, then any tiles, then any mosaics
/// of known faces, already in the model's layout. Made on the streaming thread, run wherever the
/// model lives.
#[derive(Debug, Default)]
pub struct Prepared {
    /// One `size` x `size` x 3 input (8-bit RGB) after the other; the pool's worker turns each
    /// into the model's floats (a quarter of the memory while it waits).
    pub inputs: Vec<u8>,
    pub layouts: Vec<Layout>,
    pub cells: Vec<Cell>,
    pub size: usize,
    pub width: usize,
    pub height: usize,
    /// Room for a large job (a full search), given back once it has run.
    pub ticket: Option<crate::pool::Ticket>,
}

impl Prepared {
    /// Detector runs this frame needs.
    pub fn runs(&self) -> usize {
        self.layouts.len()
    }

    /// After a run: a large job gives back its room and the memory beyond `keep` inputs, so
    /// that a stream holds no more than its usual frames need between full searches.
    pub fn release(&mut self, keep: usize) {
        if self.ticket.take().is_some() {
            self.inputs.clear();
            self.layouts.clear();
            self.cells.clear();
            self.inputs.shrink_to(keep * self.size * self.size * 3);
        }
    }
}

/// Makes [`Prepared`] inputs from frames; owns the scratch images for it.
#[derive(Default)]
pub struct Letterboxer {
    resampler: Resampler,
    rgb: Vec<u8>,
    cell: Vec<u8>,
    regions: Vec<RectF>,
}

impl Letterboxer {
    /// Starts `out` for `img` with its whole-frame input, for a detector of input `size`.
    pub fn whole(
        &mut self,
        img: &ImageView,
        size: usize,
        threshold: f32,
        out: &mut Prepared,
    ) -> Result<(), ModelError> {
        out.inputs.clear();
        out.layouts.clear();
        out.cells.clear();
        (out.size, out.width, out.height) = (size, img.width, img.height);
        let region = letterbox_region(img.width, img.height);
        self.region(img, region, Pass::Whole, threshold, out)
    }

    /// The whole-frame input as 8-bit RGB, after [`whole`](Self::whole) (for motion).
    pub fn whole_rgb(&self) -> &[u8] {
        &self.rgb
    }

    /// Adds an input showing `region` of the frame (a tile).
    pub fn region(
        &mut self,
        img: &ImageView,
        region: RectF,
        pass: Pass,
        threshold: f32,
        out: &mut Prepared,
    ) -> Result<(), ModelError> {
        let size = out.size;
        self.rgb.resize(size * size * 3, 0);
        let placement = self
            .resampler
            .resample(img, region, size, size, Border::Black, &mut self.rgb)
            .map_err(|e| ModelError::Image(e.to_string()))?;
        out.inputs.extend_from_slice(&self.rgb);
        let first = out.cells.len();
        out.cells.push(Cell {
            at: (0, 0, size),
            placement,
        });
        out.layouts.push(Layout {
            cells: first..first + 1,
            pass,
            threshold,
        });
        Ok(())
    }

    /// Adds inputs holding `crops` of the frame, `per_side`² cells to an input, each crop
    /// resampled into its cell (black beyond the frame).
    pub fn mosaics(
        &mut self,
        img: &ImageView,
        crops: &[RectF],
        per_side: usize,
        threshold: f32,
        out: &mut Prepared,
    ) -> Result<(), ModelError> {
        let size = out.size;
        let side = size / per_side.max(1);
        self.cell.resize(side * side * 3, 0);
        for group in crops.chunks(per_side * per_side) {
            self.rgb.clear();
            self.rgb.resize(size * size * 3, 0);
            let first = out.cells.len();
            for (k, &crop) in group.iter().enumerate() {
                let (cx, cy) = ((k % per_side) * side, (k / per_side) * side);
                let mut placement = self
                    .resampler
                    .resample(img, crop, side, side, Border::Black, &mut self.cell)
                    .map_err(|e| ModelError::Image(e.to_string()))?;
                for row in 0..side {
                    let dst = ((cy + row) * size + cx) * 3;
                    self.rgb[dst..dst + side * 3].copy_from_slice(&self.cell[row * side * 3..(row + 1) * side * 3]);
                }
                placement.dst.0 += cx;
                placement.dst.1 += cy;
                out.cells.push(Cell {
                    at: (cx, cy, side),
                    placement,
                });
            }
            out.inputs.extend_from_slice(&self.rgb);
            out.layouts.push(Layout {
                cells: first..out.cells.len(),
                pass: Pass::Cell,
                threshold,
            });
        }
        Ok(())
    }

    /// Fills `out` with the inputs of the whole frame and, with `tiles` > 1, every tile of that
    /// many columns (what `tiles=N` asks for on every frame).
    pub fn prepare(
        &mut self,
        img: &ImageView,
        size: usize,
        tiles: u32,
        threshold: f32,
        out: &mut Prepared,
    ) -> Result<(), ModelError> {
        self.whole(img, size, threshold, out)?;
        crate::scan::grid_into(img.width, img.height, tiles, &mut self.regions);
        for i in 0..self.regions.len() {
            let r = self.regions[i];
            self.region(img, r, Pass::Tile, threshold, out)?;
        }
        Ok(())
    }
}

/// What a loaded BlazeFace model is: which one, and its anchors.
#[derive(Debug)]
pub struct DetectorInfo {
    pub kind: DetectorKind,
    anchors: Vec<[f32; 2]>,
}

/// A BlazeFace model, shared by every stream that uses it ([`crate::registry`]).
#[derive(Clone)]
pub struct Detector {
    shared: Arc<Shared<DetectorInfo>>,
}

/// What one detector job needs besides the model and its input, and what it counts; kept by
/// the stream and lent to each job, so that a run allocates nothing.
#[derive(Debug, Default)]
pub struct Scratch {
    raw: Vec<Detection>,
    /// Anchors with values that were not finite (skipped, not faces).
    pub nonfinite: usize,
    /// Time inside the model.
    pub busy: std::time::Duration,
}

impl Detector {
    /// Loads a BlazeFace model, or shares the one already loaded (by `group`); which model it is
    /// follows from its input size.
    pub fn load(path: &Path, group: &str, ort_library: Option<&str>) -> Result<Self, ModelError> {
        let shared = registry::get(ModelRole::Detector, path, group, ort_library, |model| {
            let shape = model.input_shape(0);
            let kind = match shape.as_slice() {
                [1 | -1, 192, 192, 3] => DetectorKind::FullRange,
                [1 | -1, 128, 128, 3] => DetectorKind::ShortRange,
                _ => {
                    return Err(model.contract_error(format!(
                        "input is {}, expected BlazeFace's [1,192,192,3] (full range) or [1,128,128,3] (short range)",
                        model.describe_inputs()
                    )))
                }
            };
            let (reg, cls) = kind.outputs();
            if !model.has_output(reg) || !model.has_output(cls) {
                return Err(model.contract_error(format!("outputs {reg} and {cls} are missing")));
            }
            let n = kind.input_size();
            let probed = model.probe([1, n, n, 3])?;
            let anchors = kind.anchors();
            model.check_output(&probed, reg, 1, anchors.len() * 16, "16 box values per anchor")?;
            model.check_output(&probed, cls, 1, anchors.len(), "one score per anchor")?;
            Ok(DetectorInfo { kind, anchors })
        })?;
        Ok(Self { shared })
    }

    pub fn kind(&self) -> DetectorKind {
        self.shared.info.kind
    }

    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Whether two handles share one loaded model.
    pub fn same_model(&self, other: &Detector) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// Runs the model on each input of `prepared` (the whole frame, then any tiles and mosaics
    /// of known faces, which find faces too small to be seen when the whole frame is squeezed
    /// into the input); faces in frame pixels, strongest first, replace the contents of `out`.
    pub fn infer(
        &self,
        prepared: &Prepared,
        scratch: &mut Scratch,
        out: &mut Vec<Detection>,
    ) -> Result<(), ModelError> {
        out.clear();
        let n = self.kind().input_size();
        let contract = |reason: String| ModelError::Contract {
            role: ModelRole::Detector,
            path: self.shared.path.clone(),
            reason,
        };
        if prepared.size != n {
            return Err(contract(format!("prepared for a {0}x{0} input", prepared.size)));
        }
        let mut model = self.shared.lease()?;
        let mut raw = std::mem::take(&mut scratch.raw);
        raw.clear();
        let mut result = Ok(());
        for (input, layout) in prepared.inputs.chunks_exact(n * n * 3).zip(&prepared.layouts) {
            let cells = &prepared.cells[layout.cells.clone()];
            result = self.infer_one(&mut model, input, cells, layout, &mut raw, scratch);
            if result.is_err() {
                break;
            }
        }
        scratch.busy += model.take_busy();
        let (w, h) = (prepared.width as f32, prepared.height as f32);
        if result.is_ok() {
            let reach = crate::scan::whole_frame_reach(prepared.width, prepared.height, n);
            weighted_nms(&mut raw, NMS_IOU, reach, out);
            for d in out.iter_mut() {
                d.bbox = d.bbox.clip(w, h);
            }
        }
        scratch.raw = raw;
        result
    }

    /// Runs the model once and appends its detections in frame pixels: each mapped back by the
    /// cell its centre lies in; in a mosaic, one reaching out of its cell is dropped (a face cut
    /// by the cell's edge, or two neighbours taken for one).
    fn infer_one(
        &self,
        model: &mut Model,
        input: &[u8],
        cells: &[Cell],
        layout: &Layout,
        out: &mut Vec<Detection>,
        scratch: &mut Scratch,
    ) -> Result<(), ModelError> {
        let info = &self.shared.info;
        let n = info.kind.input_size();
        let (reg_name, cls_name) = info.kind.outputs();
        let path = &self.shared.path;
        let run_err = |e: ort::Error| ModelError::Run {
            role: ModelRole::Detector,
            path: path.clone(),
            reason: e.to_string(),
        };
        // The 8-bit letterbox becomes the model's -1..1 right in the session's input buffer.
        let fill = |buf: &mut Vec<f32>| buf.extend(input.iter().map(|&s| s as f32 / 127.5 - 1.0));
        let outputs = model.run_filled(fill, [1, n, n, 3]).map_err(run_err)?;
        let (_, reg) = outputs[reg_name].try_extract_tensor::<f32>().map_err(run_err)?;
        let (_, cls) = outputs[cls_name].try_extract_tensor::<f32>().map_err(run_err)?;
        let start = out.len();
        // The outputs' sizes were checked at load; a model that changes them at run time
        // (dynamic shapes) is read only as far as both go.
        scratch.nonfinite += decode(reg, cls, &info.anchors, n, layout.threshold, out);
        let s = n as f32;
        let mut keep = start;
        for i in start..out.len() {
            let d = out[i];
            let (cx, cy) = d.bbox.center();
            let (cx, cy) = (cx * s, cy * s);
            let inside = |c: &&Cell| {
                let (x, y, side) = (c.at.0 as f32, c.at.1 as f32, c.at.2 as f32);
                cx >= x && cx < x + side && cy >= y && cy < y + side
            };
            let Some(cell) = cells.iter().find(inside) else {
                continue;
            };
            if cells.len() > 1 {
                let (x, y, side) = (cell.at.0 as f32, cell.at.1 as f32, cell.at.2 as f32);
                let margin = side * 0.05;
                let b = d.bbox;
                if b.x1 * s < x - margin
                    || b.y1 * s < y - margin
                    || b.x2 * s > x + side + margin
                    || b.y2 * s > y + side + margin
                {
                    continue;
                }
            }
            let mut mapped = to_frame(&d, &cell.placement, n);
            mapped.pass = layout.pass;
            out[keep] = mapped;
            keep += 1;
        }
        out.truncate(keep);
        Ok(())
    }
}

/// The squares the detector looks at with `tiles` = N: the whole frame (letterboxed), then,
/// with N > 1, every tile of an N-column grid ([`crate::scan::grid_into`]).
pub fn tile_regions(width: usize, height: usize, tiles: u32) -> Vec<RectF> {
    let mut regions = vec![letterbox_region(width, height)];
    let mut grid = Vec::new();
    crate::scan::grid_into(width, height, tiles, &mut grid);
    regions.extend(grid);
    regions
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchor_counts_and_order() {
        let full = DetectorKind::FullRange.anchors();
        assert_eq!(full.len(), 2304);
        assert_eq!(full[0], [0.5 / 48.0, 0.5 / 48.0]);
        assert_eq!(full[1], [1.5 / 48.0, 0.5 / 48.0]);
        assert_eq!(full[48], [0.5 / 48.0, 1.5 / 48.0]);
        let short = DetectorKind::ShortRange.anchors();
        assert_eq!(short.len(), 896);
        assert_eq!(short[0], short[1]);
        assert_eq!(short[512], [0.5 / 8.0, 0.5 / 8.0]);
        assert!(short[512..518].iter().all(|a| *a == short[512]));
    }

    #[test]
    fn decodes_centre_size_keypoints_and_score() {
        let anchors = [[0.25, 0.5], [0.75, 0.5]];
        let mut reg = vec![0.0f32; 32];
        // Second anchor: shifted by (19.2, -9.6) px of 192, size 48 x 96 px, right eye at +(0, -19.2).
        reg[16..22].copy_from_slice(&[19.2, -9.6, 48.0, 96.0, 0.0, -19.2]);
        let logits = [-3.0, 2.0];
        let mut d = Vec::new();
        decode(&reg, &logits, &anchors, 192, 0.5, &mut d);
        assert_eq!(d.len(), 1);
        let d = d[0];
        assert!((d.score - 1.0 / (1.0 + (-2.0f32).exp())).abs() < 1e-6);
        let (cx, cy) = d.bbox.center();
        assert!((cx - 0.85).abs() < 1e-6 && (cy - 0.45).abs() < 1e-6);
        assert!((d.bbox.width() - 0.25).abs() < 1e-6 && (d.bbox.height() - 0.5).abs() < 1e-6);
        assert!((d.keypoints[0].0 - 0.75).abs() < 1e-6 && (d.keypoints[0].1 - 0.4).abs() < 1e-6);
        // Extreme logits do not overflow.
        let mut d = Vec::new();
        decode(&reg, &[1e9, -1e9], &anchors, 192, 0.5, &mut d);
        assert_eq!(d.len(), 1);
    }

    fn det(x1: f32, y1: f32, x2: f32, y2: f32, score: f32) -> Detection {
        Detection {
            bbox: BBox { x1, y1, x2, y2 },
            score,
            keypoints: [(x1, y1); 6],
            ..Default::default()
        }
    }

    #[test]
    fn weighted_nms_merges_overlaps_and_keeps_separate_faces() {
        let mut dets = vec![
            det(0.0, 0.0, 10.0, 10.0, 0.9),
            det(1.0, 0.0, 11.0, 10.0, 0.6),
            det(50.0, 50.0, 60.0, 60.0, 0.7),
            det(0.0, 0.0, 4.0, 4.0, 0.8), // inside the first but IoU 0.16: a separate face
        ];
        let mut out = Vec::new();
        weighted_nms(&mut dets, NMS_IOU, f32::MAX, &mut out);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].score, 0.9);
        // Blend of the two overlapping boxes, weighted by score: x1 = 0.6 / 1.5.
        assert!((out[0].bbox.x1 - 0.4).abs() < 1e-5, "{:?}", out[0].bbox);
        assert!((out[0].bbox.x2 - 10.4).abs() < 1e-5);
        assert_eq!(out[1].score, 0.8);
        assert_eq!(
            out[2].bbox,
            BBox {
                x1: 50.0,
                y1: 50.0,
                x2: 60.0,
                y2: 60.0
            }
        );
    }

    #[test]
    fn a_face_the_whole_frame_finds_keeps_its_whole_frame_box() {
        let mut whole = det(0.0, 0.0, 10.0, 10.0, 0.8);
        whole.pass = Pass::Whole;
        let mut tile = det(1.0, 1.0, 11.0, 11.0, 0.95);
        tile.pass = Pass::Tile;
        let mut cell = det(50.0, 50.0, 60.0, 60.0, 0.7);
        cell.pass = Pass::Cell;
        let mut out = Vec::new();
        weighted_nms(&mut [tile, whole, cell], NMS_IOU, f32::MAX, &mut out);
        assert_eq!(out.len(), 2);
        // The cluster of the whole frame's and a tile's box is the whole frame's, as before.
        assert_eq!((out[0].bbox, out[0].score, out[0].pass), (whole.bbox, 0.8, Pass::Whole));
        assert_eq!(out[1].pass, Pass::Cell);
        // A whole-frame box the detector is much less sure of than a cell's: the cell's.
        let mut unsure = det(0.0, 0.0, 17.0, 17.0, 0.63);
        unsure.pass = Pass::Whole;
        let mut sure = det(2.0, 2.0, 12.0, 12.0, 0.92);
        sure.pass = Pass::Cell;
        let mut out = Vec::new();
        weighted_nms(&mut [unsure, sure], NMS_IOU, 100.0, &mut out);
        assert_eq!((out.len(), out[0].bbox, out[0].pass), (1, sure.bbox, Pass::Cell));
        // The same pair on a face large for the whole frame: its box, as before.
        let mut out = Vec::new();
        weighted_nms(&mut [unsure, sure], NMS_IOU, 5.0, &mut out);
        assert_eq!((out[0].bbox, out[0].pass), (unsure.bbox, Pass::Whole));
        let mut out = Vec::new();
        weighted_nms(&mut [unsure, sure], NMS_IOU, 100.0, &mut out);
        assert_eq!((out.len(), out[0].bbox, out[0].pass), (1, sure.bbox, Pass::Cell));
    }

    #[test]
    fn letterbox_mapping_round_trips() {
        // 1920x1080 in a 192 square: picture rows 42..150, columns 0..192.
        let region = letterbox_region(1920, 1080);
        assert_eq!(
            region,
            RectF {
                x: 0.0,
                y: -420.0,
                w: 1920.0,
                h: 1920.0
            }
        );
        let placement = Placement {
            dst: (0, 42, 192, 108),
            src: (0, 0, 1920, 1080),
        };
        let d = det(0.5, 0.25, 0.75, 0.5, 0.9);
        let f = to_frame(&d, &placement, 192);
        assert!((f.bbox.x1 - 960.0).abs() < 1e-3 && (f.bbox.x2 - 1440.0).abs() < 1e-3);
        assert!((f.bbox.y1 - 60.0).abs() < 1e-3 && (f.bbox.y2 - 540.0).abs() < 1e-3);
        // A box reaching into the black band is clipped to the frame.
        let f = to_frame(&det(0.0, 0.0, 0.1, 0.1, 0.9), &placement, 192)
            .bbox
            .clip(1920.0, 1080.0);
        assert_eq!((f.x1, f.y1), (0.0, 0.0));
    }

    #[test]
    fn tiles_cover_the_frame_with_overlap() {
        assert_eq!(tile_regions(1920, 1080, 1).len(), 1);
        let t = tile_regions(2880, 1600, 3);
        // Whole frame + 3 columns x 2 rows.
        assert_eq!(t.len(), 7);
        let tiles = &t[1..];
        // Every frame pixel lies in some tile, and neighbours overlap.
        for (x, y) in [(0.0, 0.0), (2879.0, 1599.0), (960.0, 800.0), (1440.0, 0.0)] {
            assert!(
                tiles
                    .iter()
                    .any(|r| x >= r.x && x < r.x + r.w && y >= r.y && y < r.y + r.h),
                "({x},{y})"
            );
        }
        assert!(tiles[0].x + tiles[0].w > tiles[1].x + 100.0);
        assert!(tiles.iter().all(|r| (r.w - r.h).abs() < 1e-3));
    }
}
