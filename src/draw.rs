//! The overlay: a box and a label per face, drawn straight into the frame's own pixel format.
//!
//! Shapes are filled rectangles written per format; text is rendered by OpenCV into a small
//! coverage mask and blended in, so YUV frames get the same overlay as RGB ones. In YUV formats
//! the text changes luma only (it is black or white, which has no chroma).

use std::sync::{Arc, Mutex, Weak};

use opencv::core::{Mat, Point, Scalar, Size, CV_8UC1};
use opencv::imgproc;
use opencv::prelude::*;

use crate::face::{Face, EMOTION_COLOURS};
use crate::image::{ImageViewMut, Layout};
use crate::zone::ZoneSet;

/// Zones are outlined in a colour no emotion has, so that a zone is never read as a mood.
const ZONE_COLOUR: [u8; 3] = [236, 236, 236];

/// Box colour of a face without an emotion (none of the emotions' colours).
const UNCLASSIFIED: [u8; 3] = [0, 200, 255];

fn text_colour(bg: [u8; 3]) -> [u8; 3] {
    let luma = 0.299 * bg[0] as f32 + 0.587 * bg[1] as f32 + 0.114 * bg[2] as f32;
    if luma > 140.0 {
        [0, 0, 0]
    } else {
        [255, 255, 255]
    }
}

/// The label drawn above a face, e.g. `happy 93% | F 33`.
pub fn label(face: &Face) -> String {
    let mut s = String::new();
    write_label(face, &mut s);
    s
}

/// [`label`], written into `s` (cleared first), so that a kept string's room is reused.
pub fn write_label(face: &Face, s: &mut String) {
    use std::fmt::Write;
    s.clear();
    // Writing into a String cannot fail.
    if let Some(e) = &face.emotion {
        let _ = write!(s, "{} {:.0}%", e.label(), e.confidence() * 100.0);
    }
    if let Some(g) = &face.gender {
        if !s.is_empty() {
            s.push_str(" | ");
        }
        s.push_str(g.gender().letter());
        if let Some(age) = g.age {
            let _ = write!(s, " {age:.0}");
        }
    }
    if s.is_empty() {
        let _ = write!(s, "face {:.0}%", face.detection.score * 100.0);
    }
}

/// Appends the first zone the face is in to its label: `happy 93% | F 33 @ till`.
pub fn push_zone(face: &Face, zones: &ZoneSet, s: &mut String) {
    if let Some(name) = (0..zones.len())
        .find(|i| face.zones & (1 << i) != 0)
        .and_then(|i| zones.name(i))
    {
        s.push_str(" @ ");
        s.push_str(name);
    }
}

pub fn colour(face: &Face) -> [u8; 3] {
    face.emotion.map(|e| EMOTION_COLOURS[e.best()]).unwrap_or(UNCLASSIFIED)
}

#[derive(Debug, thiserror::Error)]
#[error("drawing the overlay failed: {0}")]
pub struct DrawError(#[from] opencv::Error);

const FONT: i32 = imgproc::FONT_HERSHEY_SIMPLEX;
/// Printable ASCII, the characters a label is made of; others are drawn as `?`, as OpenCV does.
const FIRST_CHAR: u8 = b' ';
const LAST_CHAR: u8 = b'~';

/// One character at one size, rendered by OpenCV once: a coverage mask as tall as the label.
struct Glyph {
    width: usize,
    mask: Vec<u8>,
    /// Hershey advance in font units (OpenCV moves the pen by this times the scale).
    advance: i32,
}

/// The label font at one size. Labels change on most frames (the confidence in them does), so
/// they are put together from glyphs rendered once rather than by `putText` per label.
struct Font {
    /// Scale in hundredths, so that sizes a hair apart share a font.
    scale: i32,
    font_scale: f64,
    thickness: i32,
    /// Margin around the text inside the label box, as before glyphs were cached.
    pad: i32,
    /// Height of the label box: text, descent and margins.
    height: usize,
    /// Baseline of the text from the top of the box.
    baseline_y: i32,
    /// Room left of a glyph's pen position for strokes and their anti-aliasing.
    bleed: i32,
    /// Every character from `FIRST_CHAR` to `LAST_CHAR`.
    glyphs: Vec<Glyph>,
}

impl Font {
    /// The font at `scale` with every glyph rendered: a label shows new characters as ages and
    /// shares change, and rendering one then would allocate in the middle of a stream.
    fn new(scale: i32) -> Result<Self, DrawError> {
        let font_scale = scale as f64 / 100.0;
        let thickness = (font_scale * 1.6).round().max(1.0) as i32;
        let mut descent = 0;
        let sz = imgproc::get_text_size("A", FONT, font_scale, thickness, &mut descent)?;
        let pad = (sz.height / 4).max(2);
        let mut font = Self {
            scale,
            font_scale,
            thickness,
            pad,
            height: (sz.height + descent + 2 * pad) as usize,
            baseline_y: pad + sz.height,
            bleed: thickness + 2,
            glyphs: Vec::with_capacity((LAST_CHAR - FIRST_CHAR + 1) as usize),
        };
        for c in FIRST_CHAR..=LAST_CHAR {
            let glyph = font.render_glyph(c)?;
            font.glyphs.push(glyph);
        }
        Ok(font)
    }

    fn render_glyph(&self, c: u8) -> Result<Glyph, DrawError> {
        let text = std::str::from_utf8(std::slice::from_ref(&c)).unwrap_or("?");
        // At scale 1 and thickness 1 OpenCV's text width is the advance plus one.
        let mut unused = 0;
        let advance = imgproc::get_text_size(text, FONT, 1.0, 1, &mut unused)?.width - 1;
        let width = (advance as f64 * self.font_scale).ceil() as i32 + self.thickness + 2 * self.bleed;
        let mut mask = Mat::new_size_with_default(Size::new(width, self.height as i32), CV_8UC1, Scalar::all(0.0))?;
        imgproc::put_text(
            &mut mask,
            text,
            Point::new(self.bleed, self.baseline_y),
            FONT,
            self.font_scale,
            Scalar::all(255.0),
            self.thickness,
            imgproc::LINE_AA,
            false,
        )?;
        Ok(Glyph {
            width: width as usize,
            mask: mask.data_bytes()?.to_vec(),
            advance,
        })
    }

    /// The glyph of `c`; `?` for a character the font does not have.
    fn glyph(&self, c: char) -> &Glyph {
        let c = if (FIRST_CHAR as char..=LAST_CHAR as char).contains(&c) {
            c as u8
        } else {
            b'?'
        };
        &self.glyphs[(c - FIRST_CHAR) as usize]
    }

    /// Width of the label box for `text`, as OpenCV's `getTextSize` plus the margins.
    fn width(&self, text: &str) -> usize {
        let units: i32 = text.chars().map(|c| self.glyph(c).advance).sum();
        ((units as f64 * self.font_scale + self.thickness as f64).round() as i32 + 2 * self.pad) as usize
    }

    /// Renders `text` into `mask` (`width` x `self.height`), each glyph where OpenCV's pen
    /// would put it, rounded to the pixel, overlapping edges keeping the larger coverage.
    fn render(&self, text: &str, mask: &mut Vec<u8>, width: usize) {
        mask.clear();
        mask.resize(width * self.height, 0);
        let mut pen = 0.0f64;
        for c in text.chars() {
            let x0 = self.pad as i64 + pen.round() as i64 - self.bleed as i64;
            let font_scale = self.font_scale;
            let height = self.height;
            let g = self.glyph(c);
            pen += g.advance as f64 * font_scale;
            let (from, to) = (
                (-x0).max(0) as usize,
                (width as i64 - x0).clamp(0, g.width as i64) as usize,
            );
            if from >= to {
                continue;
            }
            for y in 0..height {
                let src = &g.mask[y * g.width..][from..to];
                let dst = &mut mask[y * width + (x0 + from as i64) as usize..][..to - from];
                for (d, &s) in dst.iter_mut().zip(src) {
                    *d = (*d).max(s);
                }
            }
        }
    }
}

/// Fonts a painter keeps at most; a frame's faces use a few sizes.
const FONT_CACHE: usize = 16;

/// The fonts of every painter of the process, by scale: the glyphs of a size are rendered once
/// for all streams (sixteen cameras draw with the same few sizes). Held weakly: a size no painter
/// keeps any more is freed.
static FONTS: Mutex<Vec<Weak<Font>>> = Mutex::new(Vec::new());

/// The process's font at `scale`, rendered if no painter has it.
fn shared_font(scale: i32) -> Result<Arc<Font>, DrawError> {
    let mut fonts = FONTS.lock().unwrap_or_else(|e| e.into_inner());
    fonts.retain(|f| f.strong_count() > 0);
    if let Some(font) = fonts.iter().filter_map(Weak::upgrade).find(|f| f.scale == scale) {
        return Ok(font);
    }
    let font = Arc::new(Font::new(scale)?);
    fonts.push(Arc::downgrade(&font));
    Ok(font)
}

/// Draws faces on frames; keeps the fonts and scratch between frames, so that steady state
/// allocates nothing.
#[derive(Default)]
pub struct Painter {
    fonts: Vec<Arc<Font>>,
    text: String,
    mask: Vec<u8>,
}

impl Painter {
    pub fn new() -> Self {
        Self::default()
    }

    fn font(&mut self, scale: i32) -> Result<&Font, DrawError> {
        let i = match self.fonts.iter().position(|f| f.scale == scale) {
            Some(i) => i,
            None => {
                if self.fonts.len() >= FONT_CACHE {
                    self.fonts.remove(0);
                }
                self.fonts.push(shared_font(scale)?);
                self.fonts.len() - 1
            }
        };
        Ok(&self.fonts[i])
    }

    pub fn draw(&mut self, img: &mut ImageViewMut, faces: &[Face]) -> Result<(), DrawError> {
        self.draw_with_zones(img, faces, None)
    }

    /// [`draw`](Self::draw), with the zones outlined and named, and each face's label naming
    /// the zone it is in.
    pub fn draw_with_zones(
        &mut self,
        img: &mut ImageViewMut,
        faces: &[Face],
        zones: Option<&ZoneSet>,
    ) -> Result<(), DrawError> {
        // Sizes follow the smaller frame side so 240p and 4K look alike.
        let short = img.width.min(img.height) as f32;
        let thickness = (short / 240.0).round().max(2.0) as i64;
        let frame_font = short / 900.0;
        let mut text = std::mem::take(&mut self.text);
        let mut mask = std::mem::take(&mut self.mask);
        let mut result = Ok(());
        if let Some(zones) = zones {
            let scale = ((frame_font.max(0.35) * 20.0).round() as i32) * 5;
            for z in &zones.zones {
                let (w, h) = (img.width as f32, img.height as f32);
                let n = z.points.len();
                for i in 0..n {
                    let (a, b) = (z.points[i], z.points[(i + 1) % n]);
                    line(
                        img,
                        (a.0 * w, a.1 * h),
                        (b.0 * w, b.1 * h),
                        (thickness / 2).max(1),
                        ZONE_COLOUR,
                    );
                }
                // The name at the zone's topmost point, inside the frame.
                let top = z
                    .points
                    .iter()
                    .copied()
                    .min_by(|p, q| p.1.total_cmp(&q.1).then(p.0.total_cmp(&q.0)))
                    .unwrap_or((0.0, 0.0));
                text.clear();
                text.push_str(&z.name);
                let rendered = self.font(scale).map(|font| {
                    let lw = font.width(&text);
                    font.render(&text, &mut mask, lw);
                    (lw as i64, font.height as i64)
                });
                match rendered {
                    Ok((lw, lh)) => {
                        let lx = ((top.0 * w) as i64).min(img.width as i64 - lw).max(0);
                        let ly = ((top.1 * h) as i64).min(img.height as i64 - lh).max(0);
                        fill_rect(img, lx, ly, lx + lw, ly + lh, [40, 40, 40]);
                        blend_mask(img, &mask, lw, lx, ly, ZONE_COLOUR);
                    }
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
        }
        for face in faces {
            if result.is_err() {
                break;
            }
            let b = face.bbox().clip(img.width as f32, img.height as f32);
            let (x1, y1, x2, y2) = (b.x1 as i64, b.y1 as i64, b.x2 as i64, b.y2 as i64);
            let c = colour(face);
            let t = thickness;
            fill_rect(img, x1, y1, x2, y1 + t, c);
            fill_rect(img, x1, y2 - t, x2, y2, c);
            fill_rect(img, x1, y1, x1 + t, y2, c);
            fill_rect(img, x2 - t, y1, x2, y2, c);

            // Follows the frame, but no bigger than suits the face, so that crowds stay legible.
            let font_scale = frame_font.min(b.side() / 110.0).max(0.35);
            let scale = (font_scale * 20.0).round() as i32 * 5;
            write_label(face, &mut text);
            if let Some(zones) = zones {
                push_zone(face, zones, &mut text);
            }
            let rendered = self.font(scale).map(|font| {
                let lw = font.width(&text);
                font.render(&text, &mut mask, lw);
                (lw, font.height)
            });
            let (lw, lh) = match rendered {
                Ok((w, h)) => (w as i64, h as i64),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            // Above the box when it fits, else just inside its top edge.
            let ly = if y1 - lh >= 0 { y1 - lh } else { y1 };
            let lx = x1.min(img.width as i64 - lw).max(0);
            fill_rect(img, lx, ly, lx + lw, ly + lh, c);
            blend_mask(img, &mask, lw, lx, ly, text_colour(c));
        }
        (self.text, self.mask) = (text, mask);
        result
    }
}

/// A straight line `half` pixels either side of the segment from `a` to `b`, as runs of filled
/// rectangles: one per row of a steep line, one per column of a flat one (a zone's straight
/// edges are a single rectangle).
fn line(img: &mut ImageViewMut, a: (f32, f32), b: (f32, f32), half: i64, rgb: [u8; 3]) {
    if ![a.0, a.1, b.0, b.1].iter().all(|v| v.is_finite()) {
        return;
    }
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    if dx.abs() >= dy.abs() {
        // Flat: for each run of columns on one row.
        let (a, b) = if a.0 <= b.0 { (a, b) } else { (b, a) };
        let (x0, x1) = (a.0.round() as i64, b.0.round() as i64);
        let slope = if x1 > x0 { (b.1 - a.1) / (x1 - x0) as f32 } else { 0.0 };
        let mut start = x0;
        let mut row = a.1.round() as i64;
        for x in x0..=x1 {
            let y = (a.1 + slope * (x - x0) as f32).round() as i64;
            if y != row {
                fill_rect(img, start, row - half, x, row + half + 1, rgb);
                (start, row) = (x, y);
            }
        }
        fill_rect(img, start, row - half, x1 + 1, row + half + 1, rgb);
    } else {
        let (a, b) = if a.1 <= b.1 { (a, b) } else { (b, a) };
        let (y0, y1) = (a.1.round() as i64, b.1.round() as i64);
        let slope = if y1 > y0 { (b.0 - a.0) / (y1 - y0) as f32 } else { 0.0 };
        let mut start = y0;
        let mut col = a.0.round() as i64;
        for y in y0..=y1 {
            let x = (a.0 + slope * (y - y0) as f32).round() as i64;
            if x != col {
                fill_rect(img, col - half, start, col + half + 1, y, rgb);
                (start, col) = (y, x);
            }
        }
        fill_rect(img, col - half, start, col + half + 1, y1 + 1, rgb);
    }
}

/// Fills `[x1, x2) x [y1, y2)`, clipped to the frame, with an RGB colour.
pub fn fill_rect(img: &mut ImageViewMut, x1: i64, y1: i64, x2: i64, y2: i64, rgb: [u8; 3]) {
    let (w, h) = (img.width as i64, img.height as i64);
    let (x1, y1, x2, y2) = (
        x1.clamp(0, w) as usize,
        y1.clamp(0, h) as usize,
        x2.clamp(0, w) as usize,
        y2.clamp(0, h) as usize,
    );
    if x1 >= x2 || y1 >= y2 {
        return;
    }
    let yuv = img.yuv.rgb_to_yuv(rgb);
    let s = img.strides;
    match img.format.layout() {
        Layout::Packed { bpp, r, g, b } => {
            for y in y1..y2 {
                let row = &mut img.planes[0][y * s[0]..];
                for px in row[x1 * bpp..x2 * bpp].chunks_exact_mut(bpp) {
                    px[r] = rgb[0];
                    px[g] = rgb[1];
                    px[b] = rgb[2];
                }
            }
        }
        Layout::Gray => {
            for y in y1..y2 {
                img.planes[0][y * s[0] + x1..y * s[0] + x2].fill(yuv[0]);
            }
        }
        Layout::Planar420 => {
            for y in y1..y2 {
                img.planes[0][y * s[0] + x1..y * s[0] + x2].fill(yuv[0]);
            }
            for cy in y1 / 2..y2.div_ceil(2) {
                for (p, v) in [(1, yuv[1]), (2, yuv[2])] {
                    img.planes[p][cy * s[p] + x1 / 2..cy * s[p] + x2.div_ceil(2)].fill(v);
                }
            }
        }
        Layout::SemiPlanar420 { u } => {
            for y in y1..y2 {
                img.planes[0][y * s[0] + x1..y * s[0] + x2].fill(yuv[0]);
            }
            for cy in y1 / 2..y2.div_ceil(2) {
                let row = &mut img.planes[1][cy * s[1]..];
                for pair in row[(x1 / 2) * 2..x2.div_ceil(2) * 2].chunks_exact_mut(2) {
                    pair[u] = yuv[1];
                    pair[1 - u] = yuv[2];
                }
            }
        }
        Layout::Packed422 { y0, u, y1: y1o, v } => {
            for y in y1..y2 {
                let row = &mut img.planes[0][y * s[0]..];
                for x in x1..x2 {
                    let m = &mut row[(x / 2) * 4..][..4];
                    m[if x % 2 == 0 { y0 } else { y1o }] = yuv[0];
                    m[u] = yuv[1];
                    m[v] = yuv[2];
                }
            }
        }
    }
}

/// Blends `rgb` into the frame at (`x0`, `y0`) with the mask's values (rows of `mw`) as coverage.
fn blend_mask(img: &mut ImageViewMut, data: &[u8], mw: i64, x0: i64, y0: i64, rgb: [u8; 3]) {
    let mh = data.len() as i64 / mw.max(1);
    // The part of the mask inside the frame.
    let (cx0, cy0) = ((-x0).max(0), (-y0).max(0));
    let (cx1, cy1) = ((img.width as i64 - x0).min(mw), (img.height as i64 - y0).min(mh));
    if cx0 >= cx1 || cy0 >= cy1 {
        return;
    }
    let luma = img.yuv.rgb_to_yuv(rgb)[0];
    let stride = img.strides[0];
    let mix = |dst: &mut u8, src: u8, a: u8| {
        *dst = ((*dst as u16 * (255 - a as u16) + src as u16 * a as u16 + 127) / 255) as u8;
    };
    let layout = img.format.layout();
    for my in cy0..cy1 {
        let row = &data[(my * mw) as usize..][..mw as usize];
        let line = &mut img.planes[0][(y0 + my) as usize * stride..];
        let xs = (cx0..cx1)
            .filter(|&mx| row[mx as usize] != 0)
            .map(|mx| ((x0 + mx) as usize, row[mx as usize]));
        match layout {
            Layout::Packed { bpp, r, g, b } => {
                for (x, a) in xs {
                    let px = &mut line[x * bpp..];
                    mix(&mut px[r], rgb[0], a);
                    mix(&mut px[g], rgb[1], a);
                    mix(&mut px[b], rgb[2], a);
                }
            }
            Layout::Gray | Layout::Planar420 | Layout::SemiPlanar420 { .. } => {
                for (x, a) in xs {
                    mix(&mut line[x], luma, a);
                }
            }
            Layout::Packed422 { y0: o0, y1: o1, .. } => {
                for (x, a) in xs {
                    mix(&mut line[(x / 2) * 4 + if x % 2 == 0 { o0 } else { o1 }], luma, a);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::face::{BBox, Detection, EmotionScores, GenderScores};
    use crate::image::{ImageView, PixelFormat, YuvMatrix};

    fn face(x1: f32, y1: f32, x2: f32, y2: f32) -> Face {
        Face {
            detection: Detection {
                bbox: BBox { x1, y1, x2, y2 },
                score: 0.9,
                keypoints: [(0.0, 0.0); 6],
                ..Default::default()
            },
            emotion: Some(EmotionScores([0.0, 0.0, 0.0, 0.93, 0.07, 0.0, 0.0])),
            gender: Some(GenderScores::new(0.8, Some(33.2))),
            emotion_raw: None,
            id: 0,
            visitor: 0,
            zones: 0,
        }
    }

    #[test]
    fn labels_from_glyphs_match_put_text_of_the_whole_string() {
        for scale in [35, 60, 100, 120, 200] {
            let font = Font::new(scale).unwrap();
            for text in [
                "happy 93% | F 33",
                "surprise 100% | M 7",
                "face 61%",
                "fear 50% | F 104",
            ] {
                let w = font.width(text);
                let mut mask = Vec::new();
                font.render(text, &mut mask, w);
                // The whole string by OpenCV, laid out as labels were before glyphs were cached.
                let mut descent = 0;
                let sz = imgproc::get_text_size(text, FONT, font.font_scale, font.thickness, &mut descent).unwrap();
                assert_eq!(w as i32, sz.width + 2 * font.pad, "{text} at {scale}");
                assert_eq!(font.height as i32, sz.height + descent + 2 * font.pad);
                let mut reference =
                    Mat::new_size_with_default(Size::new(w as i32, font.height as i32), CV_8UC1, Scalar::all(0.0))
                        .unwrap();
                imgproc::put_text(
                    &mut reference,
                    text,
                    Point::new(font.pad, font.baseline_y),
                    FONT,
                    font.font_scale,
                    Scalar::all(255.0),
                    font.thickness,
                    imgproc::LINE_AA,
                    false,
                )
                .unwrap();
                let reference = reference.data_bytes().unwrap();
                // Glyphs sit on whole pixels where OpenCV's pen is fractional: the ink is the
                // same up to that half pixel, which at thin strokes moves a fair part of it.
                let ink = |m: &[u8], i: usize| m[i] >= 128;
                let both = (0..mask.len()).filter(|&i| ink(&mask, i) && ink(reference, i)).count();
                let either = (0..mask.len()).filter(|&i| ink(&mask, i) || ink(reference, i)).count();
                let mean_diff = mask
                    .iter()
                    .zip(reference)
                    .map(|(&a, &b)| a.abs_diff(b) as f64)
                    .sum::<f64>()
                    / mask.len() as f64;
                if scale % 100 == 0 {
                    // Whole scales put every pen position on a pixel: the same to the bit.
                    assert!(mask == reference, "{text} at {scale}: differs from putText");
                } else {
                    assert!(
                        both * 100 >= 65 * either,
                        "{text} at {scale}: ink overlap {both}/{either}"
                    );
                    assert!(mean_diff < 14.0, "{text} at {scale}: mean difference {mean_diff:.1}");
                }
            }
        }
    }

    #[test]
    fn a_label_names_the_zone_the_face_is_in() {
        let zones = crate::zone::parse("door:0,0 0.2,0 0.2,1 0,1;till:0.6,0.5 1,0.5 1,1 0.6,1").unwrap();
        let mut f = face(0.0, 0.0, 10.0, 10.0);
        let mut s = label(&f);
        push_zone(&f, &zones, &mut s);
        assert_eq!(s, label(&f), "in no zone");
        f.zones = 0b10;
        push_zone(&f, &zones, &mut s);
        assert_eq!(s, format!("{} @ till", label(&f)));
    }

    #[test]
    fn label_reads_like_the_docs() {
        assert_eq!(label(&face(0.0, 0.0, 1.0, 1.0)), "happy 93% | F 33");
    }

    #[test]
    fn draws_box_in_every_format_and_stays_inside_the_frame() {
        let (w, h) = (97, 61); // odd on purpose
        for f in PixelFormat::ALL {
            let mut planes_data: Vec<Vec<u8>> = (0..f.n_planes())
                .map(|p| {
                    let (row, rows) = f.plane_size(p, w, h);
                    // Padded stride, filled with a marker the drawing must not touch past the row.
                    vec![if p == 0 { 16 } else { 128 }; (row + 5) * rows]
                })
                .collect();
            let strides: Vec<usize> = (0..f.n_planes()).map(|p| f.plane_size(p, w, h).0 + 5).collect();
            for (p, d) in planes_data.iter_mut().enumerate() {
                let row = f.plane_size(p, w, h).0;
                for r in d.chunks_exact_mut(row + 5) {
                    r[row..].fill(77);
                }
            }
            let before = planes_data.clone();
            {
                let planes: Vec<&mut [u8]> = planes_data.iter_mut().map(|v| v.as_mut_slice()).collect();
                let mut img = ImageViewMut::new(f, w, h, planes, &strides, YuvMatrix::BT601).unwrap();
                // A face partly outside the frame: must clip, not panic.
                Painter::new()
                    .draw(
                        &mut img,
                        &[face(60.0, -10.0, 120.0, 40.0), face(10.0, 20.0, 40.0, 55.0)],
                    )
                    .unwrap();
                let view = img.as_view();
                // The second box's left edge is yellow (happy).
                let px = view.rgb_at(10, 40);
                assert!(
                    px[0] > 200 && px[1] > 170 && px[2] < 80 || f == PixelFormat::Gray8,
                    "{f:?}: {px:?}"
                );
                // Far from both faces nothing changed.
                let far = view.rgb_at(50, 58);
                let orig_planes: Vec<&[u8]> = before.iter().map(|v| v.as_slice()).collect();
                let orig = ImageView::new(f, w, h, &orig_planes, &strides, YuvMatrix::BT601).unwrap();
                assert_eq!(far, orig.rgb_at(50, 58), "{f:?}");
            }
            for (p, d) in planes_data.iter().enumerate() {
                let row = f.plane_size(p, w, h).0;
                assert!(
                    d.chunks_exact(row + 5).all(|r| r[row..].iter().all(|&v| v == 77)),
                    "{f:?} wrote into padding"
                );
            }
            assert_ne!(planes_data, before);
        }
    }
}
