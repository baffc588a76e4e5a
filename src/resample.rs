//! Cuts a region out of a frame and scales it to a small RGB image, reading the frame in its own
//! pixel format.
//!
//! Each plane is area-resized on its own and only the small result is converted to RGB, so a 4K
//! YUV frame is never converted as a whole. Because YUV to RGB is affine, averaging first and
//! converting after gives the same colours (up to clipping of out-of-gamut values).
//!
//! Reductions (the letterbox, face crops larger than the model input) use our own code, equal to
//! OpenCV's `INTER_AREA` to the bit (unit tests compare them on random planes), because OpenCV's
//! generic paths cost several times more; halving and enlargements (bilinear) stay with OpenCV.

use opencv::core::{Mat, Rect as CvRect, Size, CV_8UC1, CV_8UC2, CV_8UC3, CV_8UC4};
use opencv::imgproc;
use opencv::prelude::*;

use crate::face::BBox;
use crate::image::{ImageView, Layout};

/// What fills the part of the region that lies outside the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Border {
    /// Black, as the detector's letterbox wants.
    Black,
    /// The nearest frame pixel, as the classifiers' crops want.
    Replicate,
}

/// A rectangle in frame pixels (floating point, may extend outside the frame).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RectF {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

/// The square around a face box that a crop takes: centred on it, its side `scale` times the
/// box's larger side.
pub fn crop_region(b: &BBox, scale: f32) -> RectF {
    let side = b.side() * scale;
    let (cx, cy) = b.center();
    RectF {
        x: cx - side / 2.0,
        y: cy - side / 2.0,
        w: side,
        h: side,
    }
}

/// Where the frame's pixels landed in the output, to map model coordinates back to the frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    /// Output sub-rectangle holding frame pixels.
    pub dst: (usize, usize, usize, usize),
    /// Frame rectangle it came from (integer pixels).
    pub src: (usize, usize, usize, usize),
}

impl Placement {
    /// Maps a point of the output (in output pixels) to frame pixels.
    pub fn to_frame(&self, x: f32, y: f32) -> (f32, f32) {
        let (dx, dy, dw, dh) = self.dst;
        let (sx, sy, sw, sh) = self.src;
        (
            sx as f32 + (x - dx as f32) * sw as f32 / dw as f32,
            sy as f32 + (y - dy as f32) * sh as f32 / dh as f32,
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ResampleError {
    #[error("image resampling failed: {0}")]
    OpenCv(#[from] opencv::Error),
    #[error("region {0:?} is not a usable rectangle")]
    Region(RectF),
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
}

/// Regions reaching further than this many pixels from the frame are refused: no frame is that
/// large, and the pixel arithmetic stays far from overflowing.
const MAX_REACH: f32 = 1e7;

/// Scratch images kept between calls so that steady-state resampling does not allocate.
#[derive(Default)]
pub struct Resampler {
    /// One small image per plane, `size` pixels of the plane's element size.
    scratch: [Vec<u8>; 3],
    /// Column sums of a band of rows, for the whole-factor shrink.
    column_sums: Vec<u16>,
    area: AreaScratch,
}

/// Checks that `len` bytes hold `rows` rows of `cols` 8-bit pixels of type `typ`, `step` bytes
/// apart, so that OpenCV reading or writing the matrix stays inside them whatever view (of
/// whatever origin) the slice came from.
fn check_cover(len: usize, rows: usize, cols: usize, typ: i32, step: usize) -> opencv::Result<(i32, i32)> {
    let fail = |what: String| opencv::Error::new(opencv::core::StsOutOfRange, what);
    if typ & 7 != opencv::core::CV_8U {
        return Err(fail(format!("matrix type {typ} is not 8-bit")));
    }
    let elem = (((typ >> 3) & 511) + 1) as usize;
    let row = cols.checked_mul(elem).ok_or_else(|| fail("row too long".into()))?;
    let needed = match rows {
        0 => 0,
        r => step
            .checked_mul(r - 1)
            .and_then(|n| n.checked_add(row))
            .ok_or_else(|| fail("plane too large".into()))?,
    };
    if row > step || len < needed {
        return Err(fail(format!(
            "{len} bytes cannot hold {rows} rows of {row} bytes, {step} apart"
        )));
    }
    let dim = |v: usize| i32::try_from(v).map_err(|_| fail(format!("{v} is too large for OpenCV")));
    Ok((dim(rows)?, dim(cols)?))
}

/// Wraps a plane as an OpenCV matrix without copying, to be read; refused (an error) unless the
/// slice holds the whole matrix.
fn wrap(data: &[u8], rows: usize, cols: usize, typ: i32, step: usize) -> opencv::Result<Mat> {
    let (r, c) = check_cover(data.len(), rows, cols, typ, step)?;
    // SAFETY: the matrix lies inside `data` (checked above), which the borrow keeps alive and
    // unchanged while the Mat is used; the Mat is only read (OpenCV's constructor takes a mutable
    // pointer whatever the use). Callers drop the Mat before the borrow ends.
    unsafe { Mat::new_rows_cols_with_data_unsafe(r, c, typ, data.as_ptr() as *mut std::ffi::c_void, step) }
}

/// Wraps a buffer as an OpenCV matrix without copying, to be written; refused unless the slice
/// holds the whole matrix.
fn wrap_mut(data: &mut [u8], rows: usize, cols: usize, typ: i32, step: usize) -> opencv::Result<Mat> {
    let (r, c) = check_cover(data.len(), rows, cols, typ, step)?;
    // SAFETY: as `wrap`, and the exclusive borrow is what lets OpenCV write through it.
    unsafe { Mat::new_rows_cols_with_data_unsafe(r, c, typ, data.as_mut_ptr().cast(), step) }
}

/// Area resize by whole factors (`kx` x `ky` source pixels to one), equal to OpenCV's
/// `INTER_AREA` to the bit, including its rounding (sum times 1/area in f32, ties to even).
///
/// OpenCV takes a generic, scalar path for factors other than 2, which made the letterbox of a
/// 1080p frame (factors 10 and 5) cost more than a millisecond; summing whole rows first lets the
/// compiler vectorise the work.
#[allow(clippy::too_many_arguments)]
fn shrink_whole(
    plane: &[u8],
    stride: usize,
    elem: usize,
    roi: (usize, usize, usize, usize),
    (kx, ky): (usize, usize),
    (dw, dh): (usize, usize),
    sums: &mut Vec<u16>,
    out: &mut [u8],
) {
    let (x, y, w, _) = roi;
    let row_len = w * elem;
    let scale = 1.0f32 / (kx * ky) as f32;
    sums.resize(row_len, 0);
    for j in 0..dh {
        sums.fill(0);
        for r in 0..ky {
            let start = (y + j * ky + r) * stride + x * elem;
            for (s, &v) in sums.iter_mut().zip(&plane[start..start + row_len]) {
                *s += v as u16;
            }
        }
        let dst = &mut out[j * dw * elem..][..dw * elem];
        for (px, block) in dst.chunks_exact_mut(elem).zip(sums.chunks_exact(kx * elem)) {
            for (c, d) in px.iter_mut().enumerate() {
                let sum: u32 = block[c..].iter().step_by(elem).map(|&v| v as u32).sum();
                *d = round_to_u8(sum as f32 * scale);
            }
        }
    }
}

/// OpenCV's area-resize table (`computeResizeAreaTab`) for one axis: for each destination index
/// in turn, the source indices it covers and their weights, in the order OpenCV adds them.
/// Entries are (source index, destination index, weight).
fn area_taps(ssize: usize, dsize: usize, taps: &mut Vec<(u32, u32, f32)>) {
    taps.clear();
    // OpenCV derives the scale as 1 / (dsize / ssize); the rounding of that is part of the result.
    let scale = 1.0 / (dsize as f64 / ssize as f64);
    let last = ssize as i64 - 1;
    for d in 0..dsize {
        let fs1 = d as f64 * scale;
        let fs2 = fs1 + scale;
        let cell = scale.min(ssize as f64 - fs1);
        let s2 = (fs2.floor() as i64).min(last);
        let s1 = (fs1.ceil() as i64).min(s2);
        let d = d as u32;
        if s1 as f64 - fs1 > 1e-3 {
            taps.push(((s1 - 1) as u32, d, ((s1 as f64 - fs1) / cell) as f32));
        }
        for s in s1..s2 {
            taps.push((s as u32, d, (1.0 / cell) as f32));
        }
        if fs2 - s2 as f64 > 1e-3 {
            taps.push((s2 as u32, d, ((fs2 - s2 as f64).min(1.0).min(cell) / cell) as f32));
        }
    }
}

/// Tables and rows of the general area resize, kept between calls.
#[derive(Default)]
struct AreaScratch {
    xtaps: Vec<(u32, u32, f32)>,
    ytaps: Vec<(u32, u32, f32)>,
    /// Per destination column, `n` taps (source column, weight), padded with zero weights.
    xidx: Vec<u32>,
    xw: Vec<f32>,
    /// One source row as f32.
    rowf: Vec<f32>,
    /// That row resized horizontally, and the running sum of the destination row.
    buf: Vec<f32>,
    sum: Vec<f32>,
}

/// Rounds to the nearest integer, ties to even, as `rintf` does, and saturates to a byte.
#[inline(always)]
fn round_to_u8(v: f32) -> u8 {
    // Adding and taking away 1.5 * 2^23 rounds a float below 2^22 to an integer, ties to even,
    // without a library call per pixel.
    const MAGIC: f32 = 12_582_912.0;
    ((v + MAGIC) - MAGIC).clamp(0.0, 255.0) as u8
}

/// One source row resized horizontally: for each destination pixel, its `N` taps summed in
/// order from zero (as OpenCV does), so the result is the same to the bit. Padding taps have
/// weight zero, and adding +0 to a non-negative sum changes nothing.
#[inline(always)]
fn area_row<const CN: usize, const N: usize>(rowf: &[f32], idx: &[u32], w: &[f32], buf: &mut [f32]) {
    // Indices were checked against the row when the table was built (`shrink_area`).
    assert!(idx.len() >= buf.len() / CN * N && w.len() >= idx.len());
    let groups = buf.len() / CN;
    let mut d = 0;
    if CN == 1 {
        // Four destination pixels at a time: their sums are independent, so they fill the
        // processor's vector lanes while each keeps OpenCV's order of additions. (Pixels of
        // several channels fill the lanes by themselves.)
        const L: usize = 4;
        while d + L <= groups {
            let mut acc = [0.0f32; L];
            for t in 0..N {
                for (l, a) in acc.iter_mut().enumerate() {
                    let k = (d + l) * N + t;
                    // SAFETY: k < idx.len() <= w.len() (asserted above), and `shrink_area`
                    // checked every index against the row's length.
                    unsafe {
                        *a += *rowf.get_unchecked(*idx.get_unchecked(k) as usize) * *w.get_unchecked(k);
                    }
                }
            }
            buf[d..d + L].copy_from_slice(&acc);
            d += L;
        }
    }
    for ((px, idx), w) in buf[d * CN..]
        .chunks_exact_mut(CN)
        .zip(idx[d * N..].chunks_exact(N))
        .zip(w[d * N..].chunks_exact(N))
    {
        area_px::<CN>(rowf, idx, w, px);
    }
}

/// One destination pixel: its taps summed in order from zero.
#[inline(always)]
fn area_px<const CN: usize>(rowf: &[f32], idx: &[u32], w: &[f32], px: &mut [f32]) {
    let mut acc = [0.0f32; CN];
    for (&i, &wt) in idx.iter().zip(w) {
        let i = i as usize * CN;
        for (c, a) in acc.iter_mut().enumerate() {
            // SAFETY: `shrink_area`, the only caller's caller, checked every index against the
            // row's length (`rowf` holds CN values per pixel), so i + c < rowf.len(). A checked
            // read here made pixels of several channels almost twice as slow.
            *a += unsafe { *rowf.get_unchecked(i + c) } * wt;
        }
    }
    px.copy_from_slice(&acc);
}

fn area_row_n<const CN: usize>(n: usize, rowf: &[f32], idx: &[u32], w: &[f32], buf: &mut [f32]) {
    match n {
        1 => area_row::<CN, 1>(rowf, idx, w, buf),
        2 => area_row::<CN, 2>(rowf, idx, w, buf),
        3 => area_row::<CN, 3>(rowf, idx, w, buf),
        4 => area_row::<CN, 4>(rowf, idx, w, buf),
        5 => area_row::<CN, 5>(rowf, idx, w, buf),
        6 => area_row::<CN, 6>(rowf, idx, w, buf),
        7 => area_row::<CN, 7>(rowf, idx, w, buf),
        8 => area_row::<CN, 8>(rowf, idx, w, buf),
        _ => {
            for ((px, idx), w) in buf.chunks_exact_mut(CN).zip(idx.chunks_exact(n)).zip(w.chunks_exact(n)) {
                area_px::<CN>(rowf, idx, w, px);
            }
        }
    }
}

/// Area resize for reductions by any factor (at least 1 on both axes), equal to OpenCV's
/// `INTER_AREA` general path to the bit: each source row is first resized horizontally in f32
/// (taps added in OpenCV's order), then rows are weighted and summed into the destination row.
///
/// OpenCV walks a table with one multiply-add through memory per tap and converts a byte to a
/// float for each; here a row is converted once and each destination pixel's taps are summed
/// in registers, a fixed number of them, which makes face crops several times faster.
fn shrink_area<const CN: usize>(
    plane: &[u8],
    stride: usize,
    roi: (usize, usize, usize, usize),
    (dw, dh): (usize, usize),
    a: &mut AreaScratch,
    out: &mut [u8],
) {
    let (x, y, w, _) = roi;
    area_taps(w, dw, &mut a.xtaps);
    area_taps(roi.3, dh, &mut a.ytaps);
    // Taps per destination column, the most any column has.
    let n = a.xtaps.chunk_by(|p, q| p.1 == q.1).map(<[_]>::len).max().unwrap_or(0);
    a.xidx.clear();
    a.xw.clear();
    for group in a.xtaps.chunk_by(|p, q| p.1 == q.1) {
        for &(si, _, alpha) in group {
            a.xidx.push(si);
            a.xw.push(alpha);
        }
        let last = group[group.len() - 1].0;
        for _ in group.len()..n {
            a.xidx.push(last);
            a.xw.push(0.0);
        }
    }
    // What makes the unchecked reads of `area_row` sound.
    assert!(a.xidx.iter().all(|&i| (i as usize) < w));
    let width = dw * CN;
    a.rowf.resize(w * CN, 0.0);
    a.buf.resize(width, 0.0);
    a.sum.clear();
    a.sum.resize(width, 0.0);
    let mut prev = a.ytaps.first().map_or(0, |t| t.1 as usize);
    let store = |sum: &[f32], out: &mut [u8], dy: usize| {
        for (d, &v) in out[dy * width..][..width].iter_mut().zip(sum) {
            *d = round_to_u8(v);
        }
    };
    let mut in_buf = u32::MAX;
    for &(sy, dy, beta) in &a.ytaps {
        // A source row straddling two destination rows comes twice in a row: resize it once.
        if sy != in_buf {
            let row = &plane[(y + sy as usize) * stride + x * CN..][..w * CN];
            for (f, &b) in a.rowf.iter_mut().zip(row) {
                *f = b as f32;
            }
            area_row_n::<CN>(n, &a.rowf, &a.xidx, &a.xw, &mut a.buf);
            in_buf = sy;
        }
        let dy = dy as usize;
        if dy != prev {
            store(&a.sum, out, prev);
            for (s, &b) in a.sum.iter_mut().zip(&a.buf) {
                *s = beta * b;
            }
            prev = dy;
        } else {
            for (s, &b) in a.sum.iter_mut().zip(&a.buf) {
                *s += beta * b;
            }
        }
    }
    store(&a.sum, out, prev);
}

/// [`shrink_area`] for pixels of `elem` bytes (1 to 4).
fn shrink_area_elem(
    elem: usize,
    plane: &[u8],
    stride: usize,
    roi: (usize, usize, usize, usize),
    size: (usize, usize),
    a: &mut AreaScratch,
    out: &mut [u8],
) {
    match elem {
        1 => shrink_area::<1>(plane, stride, roi, size, a, out),
        2 => shrink_area::<2>(plane, stride, roi, size, a, out),
        3 => shrink_area::<3>(plane, stride, roi, size, a, out),
        _ => shrink_area::<4>(plane, stride, roi, size, a, out),
    }
}

impl Resampler {
    pub fn new() -> Self {
        Self::default()
    }

    /// Resamples `region` of `img` to a `dst_w` x `dst_h` RGB image written to `out`
    /// (`dst_w * dst_h * 3` bytes, rows packed).
    pub fn resample(
        &mut self,
        img: &ImageView,
        region: RectF,
        dst_w: usize,
        dst_h: usize,
        border: Border,
        out: &mut [u8],
    ) -> Result<Placement, ResampleError> {
        assert_eq!(out.len(), dst_w * dst_h * 3, "output buffer size");
        // The view's fields are public: one put together by hand may claim more than its planes
        // hold. Every read below trusts them, so they are checked once here.
        img.check()?;
        let sane = |v: f32| v.is_finite() && v.abs() < MAX_REACH;
        if ![region.x, region.y, region.w, region.h].into_iter().all(sane) {
            return Err(ResampleError::Region(region));
        }
        // Whole source pixels, as a crop of the frame would take them: mapping partial pixels
        // shifts the picture by a fraction of a pixel, which some classifiers notice.
        let (rx, ry) = (region.x.round() as i64, region.y.round() as i64);
        let (rw, rh) = (region.w.round().max(1.0) as i64, region.h.round().max(1.0) as i64);
        let (w, h) = (img.width as i64, img.height as i64);
        let ix0 = rx.clamp(0, w - 1);
        let iy0 = ry.clamp(0, h - 1);
        let ix1 = (rx + rw).clamp(ix0 + 1, w);
        let iy1 = (ry + rh).clamp(iy0 + 1, h);
        let map =
            |v: i64, src: i64, dst: usize| ((v as f64 * dst as f64 / src as f64).round().max(0.0) as usize).min(dst);
        let dx0 = map(ix0 - rx, rw, dst_w).min(dst_w - 1);
        let dy0 = map(iy0 - ry, rh, dst_h).min(dst_h - 1);
        let dx1 = map(ix1 - rx, rw, dst_w).max(dx0 + 1);
        let dy1 = map(iy1 - ry, rh, dst_h).max(dy0 + 1);
        let (ix0, iy0, ix1, iy1) = (ix0 as usize, iy0 as usize, ix1 as usize, iy1 as usize);
        let placement = Placement {
            dst: (dx0, dy0, dx1 - dx0, dy1 - dy0),
            src: (ix0, iy0, ix1 - ix0, iy1 - iy0),
        };
        self.resample_inner(img, placement, dst_w, out)?;
        fill_border(out, dst_w, dst_h, placement.dst, border);
        Ok(placement)
    }

    /// Area-resizes `roi` (in elements of `elem` bytes) of a plane into `scratch[slot]`.
    #[allow(clippy::too_many_arguments)]
    fn resize_plane(
        &mut self,
        slot: usize,
        img: &ImageView,
        plane: usize,
        typ: i32,
        elem: usize,
        roi: (usize, usize, usize, usize),
        size: (usize, usize),
    ) -> opencv::Result<()> {
        let (row_bytes, rows) = img.format.plane_size(plane, img.width, img.height);
        let out = &mut self.scratch[slot];
        out.resize(size.0 * size.1 * elem, 0);
        let (kx, ky) = (roi.2 / size.0, roi.3 / size.1);
        // u16 column sums hold up to 257 rows of 255. OpenCV has its own vectorised code (and
        // rounding) for halving, so that case stays with it.
        let whole = roi.2 == kx * size.0 && roi.3 == ky * size.1;
        if whole && ky <= 257 && kx * ky > 1 && (kx, ky) != (2, 2) {
            shrink_whole(
                img.planes[plane],
                img.strides[plane],
                elem,
                roi,
                (kx, ky),
                size,
                &mut self.column_sums,
                out,
            );
            return Ok(());
        }
        // Reductions by other factors (face crops larger than the model input): our own
        // implementation of OpenCV's general area path. Enlargements stay with OpenCV (bilinear).
        if !whole && roi.2 >= size.0 && roi.3 >= size.1 {
            shrink_area_elem(
                elem,
                img.planes[plane],
                img.strides[plane],
                roi,
                size,
                &mut self.area,
                out,
            );
            return Ok(());
        }
        // The plane outlives this call and the wrapped Mat is only read by resize.
        let full = wrap(img.planes[plane], rows, row_bytes / elem, typ, img.strides[plane])?;
        let part = Mat::roi(
            &full,
            CvRect::new(roi.0 as i32, roi.1 as i32, roi.2 as i32, roi.3 as i32),
        )?;
        // `out` has exactly the size and type resize writes, so OpenCV fills it in place
        // (checked below) and nothing else touches it meanwhile.
        let mut dst = wrap_mut(out, size.1, size.0, typ, size.0 * elem)?;
        let before = dst.data();
        imgproc::resize(
            &part,
            &mut dst,
            Size::new(size.0 as i32, size.1 as i32),
            0.0,
            0.0,
            imgproc::INTER_AREA,
        )?;
        if before != dst.data() {
            return Err(opencv::Error::new(
                opencv::core::StsInternal,
                "OpenCV reallocated a resize target of the right size",
            ));
        }
        Ok(())
    }

    fn resample_inner(&mut self, img: &ImageView, p: Placement, dst_w: usize, out: &mut [u8]) -> opencv::Result<()> {
        let (dx, dy, dw, dh) = p.dst;
        let (sx, sy, sw, sh) = p.src;
        let size = (dw, dh);
        // Chroma rectangle covering the luma one, for subsampled formats.
        let c_roi = || {
            let (cx0, cy0) = (sx / 2, sy / 2);
            let (cx1, cy1) = ((sx + sw).div_ceil(2), (sy + sh).div_ceil(2));
            (cx0, cy0, cx1 - cx0, cy1 - cy0)
        };
        let yuv = img.yuv.to_rgb_coeffs();
        // Generic rather than `dyn`: each format's conversion is inlined into the pixel loop.
        fn fill(
            out: &mut [u8],
            (dx, dy, dw, dh): (usize, usize, usize, usize),
            dst_w: usize,
            mut f: impl FnMut(usize, usize) -> [u8; 3],
        ) {
            for j in 0..dh {
                let row = &mut out[((dy + j) * dst_w + dx) * 3..][..dw * 3];
                for (i, px) in row.chunks_exact_mut(3).enumerate() {
                    px.copy_from_slice(&f(i, j));
                }
            }
        }
        let rect = (dx, dy, dw, dh);
        match img.format.layout() {
            Layout::Packed { bpp, r, g, b } => {
                let typ = if bpp == 3 { CV_8UC3 } else { CV_8UC4 };
                self.resize_plane(0, img, 0, typ, bpp, (sx, sy, sw, sh), size)?;
                let d = &self.scratch[0];
                fill(out, rect, dst_w, |i, j| {
                    let q = &d[(j * dw + i) * bpp..];
                    [q[r], q[g], q[b]]
                });
            }
            Layout::Gray => {
                self.resize_plane(0, img, 0, CV_8UC1, 1, (sx, sy, sw, sh), size)?;
                let d = &self.scratch[0];
                fill(out, rect, dst_w, |i, j| [d[j * dw + i]; 3]);
            }
            Layout::Planar420 => {
                self.resize_plane(0, img, 0, CV_8UC1, 1, (sx, sy, sw, sh), size)?;
                self.resize_plane(1, img, 1, CV_8UC1, 1, c_roi(), size)?;
                self.resize_plane(2, img, 2, CV_8UC1, 1, c_roi(), size)?;
                let (yp, up, vp) = (&self.scratch[0], &self.scratch[1], &self.scratch[2]);
                fill(out, rect, dst_w, |i, j| {
                    let k = j * dw + i;
                    yuv.convert(yp[k], up[k], vp[k])
                });
            }
            Layout::SemiPlanar420 { u } => {
                self.resize_plane(0, img, 0, CV_8UC1, 1, (sx, sy, sw, sh), size)?;
                self.resize_plane(1, img, 1, CV_8UC2, 2, c_roi(), size)?;
                let (yp, cp) = (&self.scratch[0], &self.scratch[1]);
                fill(out, rect, dst_w, |i, j| {
                    let k = j * dw + i;
                    yuv.convert(yp[k], cp[2 * k + u], cp[2 * k + 1 - u])
                });
            }
            Layout::Packed422 { y0, u, y1, v } => {
                // Macropixels of two pixels, resized as 4-channel pixels of half width.
                let (mx0, mx1) = (sx / 2, (sx + sw).div_ceil(2));
                self.resize_plane(0, img, 0, CV_8UC4, 4, (mx0, sy, mx1 - mx0, sh), size)?;
                if sw >= 2 * dw {
                    // Shrinking by 2 or more: the two lumas of a macropixel fall in the same output
                    // pixel anyway, so their mean loses nothing.
                    let d = &self.scratch[0];
                    fill(out, rect, dst_w, |i, j| {
                        let q = &d[(j * dw + i) * 4..];
                        let yy = (q[y0] as u16 + q[y1] as u16).div_ceil(2) as u8;
                        yuv.convert(yy, q[u], q[v])
                    });
                } else {
                    // Face crops are scaled by less than 2: read luma at full width (the row as
                    // 2-byte pixels, Y plus a chroma byte), or the face loses half its detail.
                    self.resize_plane(1, img, 0, CV_8UC2, 2, (sx, sy, sw, sh), size)?;
                    let (c, l) = (&self.scratch[0], &self.scratch[1]);
                    fill(out, rect, dst_w, |i, j| {
                        let k = j * dw + i;
                        yuv.convert(l[2 * k + y0 % 2], c[4 * k + u], c[4 * k + v])
                    });
                }
            }
        }
        Ok(())
    }
}

/// Turns a small RGB crop into a smaller grey one: grey first (OpenCV's RGB2GRAY), then area
/// resize, the order the grey classifiers were trained with. Both steps equal OpenCV's to the bit.
#[derive(Default)]
pub struct GreyShrinker {
    grey: Vec<u8>,
    small: Vec<u8>,
    area: AreaScratch,
}

impl GreyShrinker {
    /// `rgb` is `n` x `n` packed RGB; returns `m` x `m` grey bytes (`m` <= `n`).
    pub fn grey(&mut self, rgb: &[u8], n: usize, m: usize) -> &[u8] {
        assert_eq!(rgb.len(), n * n * 3);
        assert!(m <= n, "the grey crop only shrinks");
        self.grey.clear();
        // OpenCV 4's fixed-point weights for 8-bit RGB2GRAY (0.299, 0.587, 0.114 in 15 bits),
        // rounded; the 14-bit ones of older versions differ on about 1 pixel in 400.
        self.grey.extend(
            rgb.chunks_exact(3)
                .map(|p| ((p[0] as u32 * 9798 + p[1] as u32 * 19235 + p[2] as u32 * 3735 + (1 << 14)) >> 15) as u8),
        );
        self.small.resize(m * m, 0);
        if m == n {
            self.small.copy_from_slice(&self.grey);
        } else {
            shrink_area::<1>(&self.grey, n, (0, 0, n, n), (m, m), &mut self.area, &mut self.small);
        }
        &self.small
    }
}

fn fill_border(out: &mut [u8], w: usize, h: usize, inner: (usize, usize, usize, usize), border: Border) {
    let (x0, y0, iw, ih) = inner;
    let (x1, y1) = (x0 + iw, y0 + ih);
    if x0 == 0 && y0 == 0 && x1 == w && y1 == h {
        return;
    }
    for y in 0..h {
        let sy = y.clamp(y0, y1 - 1);
        for x in 0..w {
            if (x0..x1).contains(&x) && (y0..y1).contains(&y) {
                continue;
            }
            let px = match border {
                Border::Black => [0, 0, 0],
                Border::Replicate => {
                    let s = (sy * w + x.clamp(x0, x1 - 1)) * 3;
                    [out[s], out[s + 1], out[s + 2]]
                }
            };
            out[(y * w + x) * 3..][..3].copy_from_slice(&px);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{PixelFormat, YuvMatrix};

    fn gradient(w: usize, h: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                v.extend_from_slice(&[(x * 255 / w) as u8, (y * 255 / h) as u8, 128]);
            }
        }
        v
    }

    /// Pseudo-random bytes, so that rounding ties and every carry occur.
    fn random_bytes(seed: u32, n: usize) -> Vec<u8> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                state = state.wrapping_mul(1664525).wrapping_add(1013904223);
                (state >> 24) as u8
            })
            .collect()
    }

    /// OpenCV's `INTER_AREA` resize of `roi` of a plane of `rows` rows, the reference.
    fn opencv_area(
        plane: &[u8],
        (rows, stride, elem, typ): (usize, usize, usize, i32),
        (x, y, w, h): (usize, usize, usize, usize),
        (dw, dh): (usize, usize),
    ) -> Vec<u8> {
        let full = wrap(plane, rows, stride / elem, typ, stride).unwrap();
        let part = Mat::roi(&full, CvRect::new(x as i32, y as i32, w as i32, h as i32)).unwrap();
        let mut cv = Mat::default();
        imgproc::resize(
            &part,
            &mut cv,
            Size::new(dw as i32, dh as i32),
            0.0,
            0.0,
            imgproc::INTER_AREA,
        )
        .unwrap();
        cv.data_bytes().unwrap().to_vec()
    }

    #[test]
    fn whole_factor_shrink_matches_opencv_to_the_bit() {
        for (elem, typ) in [(1, CV_8UC1), (2, CV_8UC2), (4, CV_8UC4)] {
            for (kx, ky) in [(2, 3), (3, 5), (10, 10), (5, 5), (20, 20), (1, 4)] {
                let (dw, dh) = (7, 4);
                let (x, y) = (3, 2);
                let (w, h) = (dw * kx, dh * ky);
                let stride = (x + w + 5) * elem;
                let plane = random_bytes(12345 + kx as u32, stride * (y + h + 1));
                let mut ours = vec![0u8; dw * dh * elem];
                let mut sums = Vec::new();
                shrink_whole(
                    &plane,
                    stride,
                    elem,
                    (x, y, w, h),
                    (kx, ky),
                    (dw, dh),
                    &mut sums,
                    &mut ours,
                );
                let cv = opencv_area(&plane, (y + h + 1, stride, elem, typ), (x, y, w, h), (dw, dh));
                assert_eq!(ours, cv, "{elem} bytes, factors {kx}x{ky}");
            }
        }
    }

    #[test]
    fn general_area_shrink_matches_opencv_to_the_bit() {
        // Face-crop sizes to the models' 112 and 64, the grey 112 -> 64, odd sizes, and
        // reductions on one axis only.
        let sizes = [
            ((150, 150), (112, 112)),
            ((113, 113), (112, 112)),
            ((231, 231), (112, 112)),
            ((319, 319), (112, 112)),
            ((112, 112), (64, 64)),
            ((97, 83), (64, 64)),
            ((1280, 720), (192, 108)),
            ((75, 40), (74, 40)),
            ((40, 75), (40, 31)),
        ];
        for (elem, typ) in [(1, CV_8UC1), (2, CV_8UC2), (3, CV_8UC3), (4, CV_8UC4)] {
            for ((w, h), (dw, dh)) in sizes {
                let (x, y) = (5, 3);
                let stride = (x + w + 7) * elem;
                let plane = random_bytes(987654 + w as u32, stride * (y + h + 2));
                let mut ours = vec![0u8; dw * dh * elem];
                let mut scratch = AreaScratch::default();
                let roi = (x, y, w, h);
                shrink_area_elem(elem, &plane, stride, roi, (dw, dh), &mut scratch, &mut ours);
                let cv = opencv_area(&plane, (y + h + 2, stride, elem, typ), roi, (dw, dh));
                assert_eq!(ours, cv, "{elem} bytes, {w}x{h} -> {dw}x{dh}");
            }
        }
    }

    #[test]
    fn grey_crop_matches_opencv_to_the_bit() {
        let mut shrinker = GreyShrinker::default();
        for (n, m) in [(112, 64), (64, 64), (100, 37)] {
            let rgb = random_bytes(4242 + n as u32, n * n * 3);
            let ours = shrinker.grey(&rgb, n, m).to_vec();
            let src = wrap(&rgb, n, n, CV_8UC3, n * 3).unwrap();
            let (mut grey, mut small) = (Mat::default(), Mat::default());
            imgproc::cvt_color(&src, &mut grey, imgproc::COLOR_RGB2GRAY, 0).unwrap();
            imgproc::resize(
                &grey,
                &mut small,
                Size::new(m as i32, m as i32),
                0.0,
                0.0,
                imgproc::INTER_AREA,
            )
            .unwrap();
            assert_eq!(ours, small.data_bytes().unwrap(), "{n} -> {m}");
        }
    }

    #[test]
    fn letterbox_places_a_wide_frame_in_the_middle() {
        let (w, h) = (320, 180);
        let data = gradient(w, h);
        let img = ImageView::packed(PixelFormat::Rgb, w, h, &data).unwrap();
        let mut out = vec![7u8; 64 * 64 * 3];
        let region = RectF {
            x: 0.0,
            y: -70.0,
            w: 320.0,
            h: 320.0,
        };
        let p = Resampler::new()
            .resample(&img, region, 64, 64, Border::Black, &mut out)
            .unwrap();
        assert_eq!(p.dst, (0, 14, 64, 36));
        assert_eq!(p.src, (0, 0, 320, 180));
        // Bands above and below are black, the middle holds the picture.
        assert_eq!(&out[..3], &[0, 0, 0]);
        assert_eq!(&out[(63 * 64) * 3..][..3], &[0, 0, 0]);
        assert_eq!(out[(32 * 64 + 10) * 3 + 2], 128);
        // The mapping back lands on the frame's corners.
        assert_eq!(p.to_frame(0.0, 14.0), (0.0, 0.0));
        assert_eq!(p.to_frame(64.0, 50.0), (320.0, 180.0));
    }

    #[test]
    fn crop_outside_the_frame_replicates_the_edge() {
        let (w, h) = (40, 30);
        let data = gradient(w, h);
        let img = ImageView::packed(PixelFormat::Rgb, w, h, &data).unwrap();
        let mut out = vec![0u8; 20 * 20 * 3];
        let region = RectF {
            x: -10.0,
            y: -10.0,
            w: 20.0,
            h: 20.0,
        };
        let p = Resampler::new()
            .resample(&img, region, 20, 20, Border::Replicate, &mut out)
            .unwrap();
        assert_eq!(p.dst, (10, 10, 10, 10));
        // Top-left corner copies the frame's top-left pixel.
        assert_eq!(&out[..3], &data[..3]);
        assert_eq!(&out[(10 * 20 + 10) * 3..][..3], &data[..3]);
    }

    #[test]
    fn every_format_resamples_to_the_same_colours() {
        // A 2-colour frame (left red, right blue) in each format, resampled to 8x4.
        let (w, h) = (32, 16);
        let m = YuvMatrix::BT601;
        let colour = |x: usize| {
            if x < w / 2 {
                [200u8, 40, 40]
            } else {
                [30u8, 60, 200]
            }
        };
        for f in PixelFormat::ALL {
            let mut data = Vec::new();
            for plane in 0..f.n_planes() {
                let (row, rows) = f.plane_size(plane, w, h);
                let mut p = vec![0u8; row * rows];
                for y in 0..rows {
                    for bx in 0..row {
                        p[y * row + bx] = match f.layout() {
                            Layout::Packed { bpp, r, g, b } => {
                                let c = colour(bx / bpp);
                                let o = bx % bpp;
                                if o == r {
                                    c[0]
                                } else if o == g {
                                    c[1]
                                } else if o == b {
                                    c[2]
                                } else {
                                    255
                                }
                            }
                            Layout::Gray => 100,
                            Layout::Planar420 => m.rgb_to_yuv(colour(if plane == 0 { bx } else { bx * 2 }))[plane],
                            Layout::SemiPlanar420 { u } => {
                                if plane == 0 {
                                    m.rgb_to_yuv(colour(bx))[0]
                                } else {
                                    let c = m.rgb_to_yuv(colour(bx / 2 * 2));
                                    if bx % 2 == u {
                                        c[1]
                                    } else {
                                        c[2]
                                    }
                                }
                            }
                            Layout::Packed422 { y0, u, y1, v } => {
                                let c = m.rgb_to_yuv(colour(bx / 4 * 2));
                                let o = bx % 4;
                                if o == y0 || o == y1 {
                                    c[0]
                                } else if o == u {
                                    c[1]
                                } else {
                                    debug_assert_eq!(o, v);
                                    c[2]
                                }
                            }
                        };
                    }
                }
                data.extend(p);
            }
            let img = ImageView::packed(f, w, h, &data).unwrap();
            let mut out = vec![0u8; 8 * 4 * 3];
            let region = RectF {
                x: 0.0,
                y: 0.0,
                w: w as f32,
                h: h as f32,
            };
            Resampler::new()
                .resample(&img, region, 8, 4, Border::Black, &mut out)
                .unwrap();
            let left = &out[(2 * 8 + 1) * 3..][..3];
            let right = &out[(2 * 8 + 6) * 3..][..3];
            if f == PixelFormat::Gray8 {
                assert_eq!(left, &[100, 100, 100]);
                continue;
            }
            for (got, want) in [(left, colour(0)), (right, colour(w - 1))] {
                for k in 0..3 {
                    assert!(
                        (got[k] as i32 - want[k] as i32).abs() <= 4,
                        "{f:?}: {got:?} vs {want:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_view_that_lies_about_its_planes_is_refused_not_read() {
        // A view built field by field can claim more than its slice holds.
        let data = vec![0u8; 100];
        assert!(wrap(&data, 10, 10, opencv::core::CV_8UC1, 10).is_ok());
        assert!(wrap(&data, 11, 10, opencv::core::CV_8UC1, 10).is_err());
        assert!(wrap(&data, 10, 10, CV_8UC3, 30).is_err());
        assert!(
            wrap(&data, 2, 20, opencv::core::CV_8UC1, 10).is_err(),
            "row longer than its step"
        );
        assert!(wrap(&data, usize::MAX, 1, opencv::core::CV_8UC1, 1).is_err());
        let mut lying = ImageView::packed(PixelFormat::Gray8, 10, 10, &data).unwrap();
        lying.height = 1000;
        let mut out = vec![0u8; 8 * 8 * 3];
        let r = Resampler::new().resample(
            &lying,
            RectF {
                x: 0.0,
                y: 0.0,
                w: 10.0,
                h: 1000.0,
            },
            8,
            8,
            Border::Black,
            &mut out,
        );
        assert!(r.is_err(), "{r:?}");
    }
}
