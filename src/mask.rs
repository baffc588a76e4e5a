//! Privacy masks: faces blurred, pixelated or filled, in place, in the frame's own pixel format.
//!
//! Each colour channel of the format (R, G, B; or Y, U, V at their own resolution) is masked
//! on its own, over the samples that lie inside the padded face box, so that every pixel
//! outside the box keeps its value exactly: chroma shared between a pixel inside and one
//! outside (4:2:0, 4:2:2) is left alone, its luma is masked.

use crate::face::BBox;
use crate::image::{ImageViewMut, Layout};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MaskKind {
    #[default]
    None,
    /// A Gaussian blur (three box blurs, which approach it closely).
    Gaussian,
    /// Blocks of the box's mean colour.
    Pixelate,
    /// An opaque black fill.
    Solid,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MaskStyle {
    pub kind: MaskKind,
    /// Blur radius (Gaussian sigma) or block side, as a share of the face box's larger side.
    pub strength: f32,
    /// The box is grown on every side by this share of its larger side.
    pub padding: f32,
}

impl Default for MaskStyle {
    fn default() -> Self {
        Self {
            kind: MaskKind::None,
            strength: 0.3,
            padding: 0.25,
        }
    }
}

impl MaskStyle {
    pub fn is_on(&self) -> bool {
        self.kind != MaskKind::None
    }
}

/// One colour channel of a format: which plane, where its first sample is, the bytes from one
/// sample to the next, its subsampling, and which colour component it holds (R, G, B or
/// Y, U, V by index).
#[derive(Debug, Clone, Copy)]
struct Channel {
    plane: usize,
    offset: usize,
    step: usize,
    sub: (usize, usize),
    component: usize,
}

fn channels(layout: Layout, out: &mut [Option<Channel>; 3]) {
    let ch = |plane, offset, step, sub, component| {
        Some(Channel {
            plane,
            offset,
            step,
            sub,
            component,
        })
    };
    *out = match layout {
        Layout::Packed { bpp, r, g, b } => [
            ch(0, r, bpp, (1, 1), 0),
            ch(0, g, bpp, (1, 1), 1),
            ch(0, b, bpp, (1, 1), 2),
        ],
        Layout::Gray => [ch(0, 0, 1, (1, 1), 0), None, None],
        Layout::Planar420 => [ch(0, 0, 1, (1, 1), 0), ch(1, 0, 1, (2, 2), 1), ch(2, 0, 1, (2, 2), 2)],
        Layout::SemiPlanar420 { u } => [
            ch(0, 0, 1, (1, 1), 0),
            ch(1, u, 2, (2, 2), 1),
            ch(1, 1 - u, 2, (2, 2), 2),
        ],
        // Luma samples are every other byte (Y0 and Y1 sit two bytes apart in both orders).
        Layout::Packed422 { y0, u, v, .. } => [ch(0, y0, 2, (1, 1), 0), ch(0, u, 4, (2, 1), 1), ch(0, v, 4, (2, 1), 2)],
    };
}

/// Masks faces in frames; keeps its scratch between frames, so that steady state allocates
/// nothing.
#[derive(Default)]
pub struct Masker {
    a: Vec<u8>,
    b: Vec<u8>,
    small: Vec<u8>,
    row: Vec<u32>,
    xtaps: Vec<(u32, u32)>,
}

impl Masker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Masks every box of `boxes` (face boxes, padded by the style) in `img`.
    pub fn mask(&mut self, img: &mut ImageViewMut, boxes: &[BBox], style: &MaskStyle) {
        if !style.is_on() {
            return;
        }
        let mut chans = [None; 3];
        channels(img.format.layout(), &mut chans);
        // Black in the format's own terms; GRAY8 and RGB are full range.
        let black = if img.format.is_yuv() {
            img.yuv.rgb_to_yuv([0, 0, 0])
        } else {
            [0, 0, 0]
        };
        for b in boxes {
            let side = b.side();
            if side.is_nan() || side <= 0.0 {
                continue;
            }
            let p = b.padded(style.padding);
            // Pixels the padded box touches.
            let (w, h) = (img.width as f32, img.height as f32);
            let px = (
                p.x1.floor().clamp(0.0, w) as usize,
                p.y1.floor().clamp(0.0, h) as usize,
                p.x2.ceil().clamp(0.0, w) as usize,
                p.y2.ceil().clamp(0.0, h) as usize,
            );
            if px.0 >= px.2 || px.1 >= px.3 {
                continue;
            }
            let amount = (style.strength * side).max(1.0);
            for c in chans.iter().flatten() {
                // Samples wholly inside the pixel rectangle: a subsampled chroma sample
                // shared with a pixel outside stays as it is.
                let (sx, sy) = c.sub;
                let r = (px.0.div_ceil(sx), px.1.div_ceil(sy), px.2 / sx, px.3 / sy);
                if r.0 >= r.2 || r.1 >= r.3 {
                    continue;
                }
                let amount = amount / sx.max(sy) as f32;
                self.mask_channel(img, c, r, style.kind, amount, black[c.component]);
            }
        }
    }

    fn mask_channel(
        &mut self,
        img: &mut ImageViewMut,
        c: &Channel,
        (x1, y1, x2, y2): (usize, usize, usize, usize),
        kind: MaskKind,
        amount: f32,
        fill: u8,
    ) {
        let (w, h) = (x2 - x1, y2 - y1);
        let stride = img.strides[c.plane];
        let plane = &mut *img.planes[c.plane];
        let at = |x: usize, y: usize| y * stride + c.offset + x * c.step;
        if kind == MaskKind::Solid {
            for y in y1..y2 {
                for x in x1..x2 {
                    plane[at(x, y)] = fill;
                }
            }
            return;
        }
        // A wide Gaussian blur leaves no detail that a finer grid would keep: it is made on
        // samples `f` times coarser (block means, read straight from the plane), then enlarged
        // back into the plane (bilinear), which costs a fraction and looks the same.
        let f = ((amount / 4.0) as usize).max(1);
        if kind == MaskKind::Gaussian && f > 1 {
            let region = Region {
                stride,
                offset: c.offset,
                step: c.step,
                x: x1,
                y: y1,
                w,
                h,
            };
            let (sw, sh) = (w.div_ceil(f), h.div_ceil(f));
            shrink(plane, &region, f, &mut self.small, &mut self.row);
            self.b.resize(self.small.len(), 0);
            let r = box_radius(amount / f as f32);
            for _ in 0..3 {
                box_blur_rows(&self.small, &mut self.b, sw, sh, r);
                box_blur_cols(&self.b, &mut self.small, sw, sh, r);
            }
            enlarge(&self.small, sw, sh, f, plane, &region, &mut self.row, &mut self.xtaps);
            return;
        }
        self.a.clear();
        for y in y1..y2 {
            self.a.extend((x1..x2).map(|x| plane[at(x, y)]));
        }
        match kind {
            MaskKind::Pixelate => pixelate(&mut self.a, w, h, (amount.round() as usize).max(2)),
            MaskKind::Gaussian => {
                self.b.resize(self.a.len(), 0);
                let r = box_radius(amount);
                for _ in 0..3 {
                    box_blur_rows(&self.a, &mut self.b, w, h, r);
                    box_blur_cols(&self.b, &mut self.a, w, h, r);
                }
            }
            MaskKind::Solid | MaskKind::None => {}
        }
        for (row, y) in self.a.chunks_exact(w).zip(y1..y2) {
            for (&v, x) in row.iter().zip(x1..x2) {
                plane[at(x, y)] = v;
            }
        }
    }
}

/// The samples of one channel in a rectangle of a plane.
struct Region {
    stride: usize,
    offset: usize,
    step: usize,
    x: usize,
    y: usize,
    w: usize,
    h: usize,
}

impl Region {
    /// Index in the plane of the region's sample (x, y).
    #[inline]
    fn at(&self, x: usize, y: usize) -> usize {
        (self.y + y) * self.stride + self.offset + (self.x + x) * self.step
    }
}

/// The box radius whose three passes blur like a Gaussian of `sigma`: three box blurs of width
/// 2r+1 have variance 3((2r+1)^2 - 1)/12 = r(r+1).
fn box_radius(sigma: f32) -> usize {
    ((-1.0 + (1.0 + 4.0 * sigma * sigma).sqrt()) / 2.0).round().max(1.0) as usize
}

/// The means of `f` x `f` blocks of a region's samples (edge blocks smaller), into `out`.
fn shrink(plane: &[u8], r: &Region, f: usize, out: &mut Vec<u8>, sums: &mut Vec<u32>) {
    let (sw, sh) = (r.w.div_ceil(f), r.h.div_ceil(f));
    out.clear();
    out.resize(sw * sh, 0);
    sums.clear();
    sums.resize(sw, 0);
    for by in 0..sh {
        let (y0, y1) = (by * f, ((by + 1) * f).min(r.h));
        sums.iter_mut().for_each(|s| *s = 0);
        for y in y0..y1 {
            let start = r.at(0, y);
            for (x, &v) in plane[start..].iter().step_by(r.step).take(r.w).enumerate() {
                sums[x / f] += v as u32;
            }
        }
        for (bx, &sum) in sums.iter().enumerate() {
            let n = ((y1 - y0) * (((bx + 1) * f).min(r.w) - bx * f)) as u32;
            out[by * sw + bx] = ((sum + n / 2) / n) as u8;
        }
    }
}

/// Where output sample `i` of an enlargement by `f` falls between the `n` small samples: the
/// left one and the weight of the right one, in 256ths.
fn taps(i: usize, n: usize, f: usize) -> (u32, u32) {
    let p = ((i as f32 + 0.5) / f as f32 - 0.5).clamp(0.0, (n - 1) as f32);
    let i0 = p as usize;
    (i0 as u32, ((p - i0 as f32) * 256.0).round() as u32)
}

/// Bilinear enlargement of `sw` x `sh` samples made by [`shrink`] by `f`, back into the region:
/// each output row mixes two small rows once, then each sample two neighbours of that mix.
fn enlarge(
    small: &[u8],
    sw: usize,
    sh: usize,
    f: usize,
    plane: &mut [u8],
    r: &Region,
    row: &mut Vec<u32>,
    xtaps: &mut Vec<(u32, u32)>,
) {
    row.clear();
    row.resize(sw + 1, 0);
    xtaps.clear();
    xtaps.extend((0..r.w).map(|x| taps(x, sw, f)));
    for y in 0..r.h {
        let (y0, wy) = taps(y, sh, f);
        let y0 = y0 as usize;
        let y1 = (y0 + 1).min(sh - 1);
        let (top, bottom) = (&small[y0 * sw..][..sw], &small[y1 * sw..][..sw]);
        for ((m, &t), &b) in row.iter_mut().zip(top).zip(bottom) {
            *m = t as u32 * (256 - wy) + b as u32 * wy;
        }
        row[sw] = row[sw - 1];
        let start = r.at(0, y);
        for (o, &(x0, wx)) in plane[start..].iter_mut().step_by(r.step).zip(xtaps.iter()) {
            let v = row[x0 as usize] * (256 - wx) + row[x0 as usize + 1] * wx;
            *o = ((v + (1 << 15)) >> 16) as u8;
        }
    }
}

/// Each `block` x `block` square of the `w` x `h` samples becomes its mean.
fn pixelate(data: &mut [u8], w: usize, h: usize, block: usize) {
    for by in (0..h).step_by(block) {
        for bx in (0..w).step_by(block) {
            let (ey, ex) = ((by + block).min(h), (bx + block).min(w));
            let mut sum = 0u64;
            for y in by..ey {
                sum += data[y * w + bx..y * w + ex].iter().map(|&v| v as u64).sum::<u64>();
            }
            let n = ((ey - by) * (ex - bx)) as u64;
            let mean = ((sum + n / 2) / n) as u8;
            for y in by..ey {
                data[y * w + bx..y * w + ex].fill(mean);
            }
        }
    }
}

/// A box blur of radius `r` along rows, the edge sample repeated beyond the edges.
fn box_blur_rows(src: &[u8], dst: &mut [u8], w: usize, h: usize, r: usize) {
    let win = (2 * r + 1) as u32;
    for y in 0..h {
        let (s, d) = (&src[y * w..][..w], &mut dst[y * w..][..w]);
        blur_line(|i| s[i] as u32, |i, v| d[i] = v, w, r, win);
    }
}

/// The same along columns.
fn box_blur_cols(src: &[u8], dst: &mut [u8], w: usize, h: usize, r: usize) {
    let win = (2 * r + 1) as u32;
    for x in 0..w {
        blur_line(|i| src[i * w + x] as u32, |i, v| dst[i * w + x] = v, h, r, win);
    }
}

#[inline]
fn blur_line(get: impl Fn(usize) -> u32, mut set: impl FnMut(usize, u8), n: usize, r: usize, win: u32) {
    let last = n - 1;
    let mut sum = (r as u32 + 1) * get(0) + (1..=r).map(|i| get(i.min(last))).sum::<u32>();
    for i in 0..n {
        set(i, ((sum + win / 2) / win) as u8);
        sum += get((i + r + 1).min(last));
        sum -= get(i.saturating_sub(r));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::{ImageView, PixelFormat, YuvMatrix};

    fn noise(n: usize, mut seed: u32) -> Vec<u8> {
        (0..n)
            .map(|_| {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                (seed >> 24) as u8
            })
            .collect()
    }

    #[test]
    fn box_blur_of_a_constant_is_the_constant_and_of_a_step_is_monotonic() {
        let src = vec![77u8; 9 * 4];
        let mut dst = vec![0u8; 9 * 4];
        box_blur_rows(&src, &mut dst, 9, 4, 3);
        assert!(dst.iter().all(|&v| v == 77));
        let step: Vec<u8> = (0..20).map(|i| if i < 10 { 0 } else { 200 }).collect();
        let mut out = vec![0u8; 20];
        box_blur_rows(&step, &mut out, 20, 1, 2);
        assert!(out.windows(2).all(|w| w[0] <= w[1]), "{out:?}");
        assert_eq!((out[0], out[19]), (0, 200));
    }

    #[test]
    fn shrinking_and_enlarging_keep_a_flat_picture_flat() {
        // A 23 x 17 region at (3, 2) of every other byte of a plane of 60-byte rows.
        let mut plane = vec![90u8; 60 * 25];
        let r = Region {
            stride: 60,
            offset: 1,
            step: 2,
            x: 3,
            y: 2,
            w: 23,
            h: 17,
        };
        let mut small = Vec::new();
        shrink(&plane, &r, 4, &mut small, &mut Vec::new());
        assert_eq!(small.len(), 6 * 5);
        assert!(small.iter().all(|&v| v == 90));
        small.iter_mut().for_each(|v| *v = 40);
        enlarge(&small, 6, 5, 4, &mut plane, &r, &mut Vec::new(), &mut Vec::new());
        for y in 0..25 {
            for x in 0..60 {
                let inside = (2..19).contains(&y) && x % 2 == 1 && (7..=51).contains(&x);
                assert_eq!(plane[y * 60 + x], if inside { 40 } else { 90 }, "({x},{y})");
            }
        }
    }

    #[test]
    fn pixelate_makes_blocks_of_the_mean() {
        let mut d = vec![0u8, 10, 20, 30, 100, 110, 120, 130, 7];
        pixelate(&mut d, 3, 3, 2);
        // Blocks: (0,10,30,100) -> 35; (20,110) -> 65; (120,130) -> 125; (7) -> 7.
        assert_eq!(d, vec![35, 35, 65, 35, 35, 65, 125, 125, 7]);
    }

    /// Every format, an odd size, a padded stride and boxes at and beyond the edges: pixels
    /// outside the padded boxes keep their value, the padding is never written, and inside
    /// the picture changes.
    #[test]
    fn masks_change_only_the_padded_boxes_in_every_format() {
        let (w, h) = (53, 37);
        let boxes = [
            BBox {
                x1: 30.0,
                y1: 10.0,
                x2: 45.0,
                y2: 27.0,
            },
            BBox {
                x1: -6.0,
                y1: -3.0,
                x2: 8.0,
                y2: 9.0,
            },
            BBox {
                x1: 48.0,
                y1: 30.0,
                x2: 70.0,
                y2: 50.0,
            },
        ];
        for kind in [MaskKind::Gaussian, MaskKind::Pixelate, MaskKind::Solid] {
            let style = MaskStyle {
                kind,
                strength: 0.3,
                padding: 0.1,
            };
            for f in PixelFormat::ALL {
                let strides: Vec<usize> = (0..f.n_planes()).map(|p| f.plane_size(p, w, h).0 + 7).collect();
                let mut planes: Vec<Vec<u8>> = (0..f.n_planes())
                    .map(|p| noise(strides[p] * f.plane_size(p, w, h).1, p as u32 + 1))
                    .collect();
                let before = planes.clone();
                {
                    let refs: Vec<&mut [u8]> = planes.iter_mut().map(|v| v.as_mut_slice()).collect();
                    let mut img = ImageViewMut::new(f, w, h, refs, &strides, YuvMatrix::BT601).unwrap();
                    Masker::new().mask(&mut img, &boxes, &style);
                }
                let view = |p: &Vec<Vec<u8>>| {
                    let refs: Vec<&[u8]> = p.iter().map(|v| v.as_slice()).collect();
                    (0..h)
                        .flat_map(|y| (0..w).map(move |x| (x, y)))
                        .map(|(x, y)| {
                            ImageView::new(f, w, h, &refs, &strides, YuvMatrix::BT601)
                                .unwrap()
                                .rgb_at(x, y)
                        })
                        .collect::<Vec<_>>()
                };
                let (a, b) = (view(&before), view(&planes));
                let inside = |x: usize, y: usize| {
                    boxes.iter().any(|bx| {
                        let p = bx.padded(0.1);
                        (x as f32 + 1.0) > p.x1 && (x as f32) < p.x2 && (y as f32 + 1.0) > p.y1 && (y as f32) < p.y2
                    })
                };
                let mut changed_inside = 0;
                for y in 0..h {
                    for x in 0..w {
                        let i = y * w + x;
                        if inside(x, y) {
                            changed_inside += (a[i] != b[i]) as usize;
                        } else {
                            assert_eq!(a[i], b[i], "{kind:?} {f:?}: pixel ({x},{y}) outside the boxes changed");
                        }
                    }
                }
                assert!(
                    changed_inside > 100,
                    "{kind:?} {f:?}: only {changed_inside} pixels masked"
                );
                for p in 0..f.n_planes() {
                    let row = f.plane_size(p, w, h).0;
                    for (rb, ra) in planes[p]
                        .chunks_exact(strides[p])
                        .zip(before[p].chunks_exact(strides[p]))
                    {
                        assert_eq!(rb[row..], ra[row..], "{kind:?} {f:?}: padding of plane {p} written");
                    }
                }
            }
        }
    }
}
