//! Borrowed views of raw video frames in their own pixel format.
//!
//! The analysis and drawing code reads and writes frames through these views so that it never
//! converts a whole frame to another format, and so that it can be tested without GStreamer.

use thiserror::Error;

/// Pixel layouts the core understands. Names follow GStreamer's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    Rgb,
    Bgr,
    Rgba,
    Bgra,
    Rgbx,
    Bgrx,
    Xrgb,
    Xbgr,
    Argb,
    Abgr,
    Gray8,
    /// Planar 4:2:0, planes Y, U, V.
    I420,
    /// Planar 4:2:0, planes Y, V, U in memory; the view always lists planes as Y, U, V.
    Yv12,
    /// Semi-planar 4:2:0, planes Y and interleaved UV.
    Nv12,
    /// Semi-planar 4:2:0, planes Y and interleaved VU.
    Nv21,
    /// Packed 4:2:2, Y0 U Y1 V.
    Yuy2,
    /// Packed 4:2:2, U Y0 V Y1.
    Uyvy,
}

/// How a pixel of a format is laid out, for the code that reads or writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One plane, `bpp` bytes per pixel, red/green/blue at these byte offsets.
    Packed {
        bpp: usize,
        r: usize,
        g: usize,
        b: usize,
    },
    Gray,
    /// Three planes Y, U, V with chroma halved in both directions.
    Planar420,
    /// Y plane and one plane of chroma pairs; `u` is the offset of U in a pair.
    SemiPlanar420 {
        u: usize,
    },
    /// One plane of 4-byte macropixels holding two pixels; offsets of Y0, U, Y1, V.
    Packed422 {
        y0: usize,
        u: usize,
        y1: usize,
        v: usize,
    },
}

impl PixelFormat {
    pub const ALL: [PixelFormat; 17] = [
        PixelFormat::Rgb,
        PixelFormat::Bgr,
        PixelFormat::Rgba,
        PixelFormat::Bgra,
        PixelFormat::Rgbx,
        PixelFormat::Bgrx,
        PixelFormat::Xrgb,
        PixelFormat::Xbgr,
        PixelFormat::Argb,
        PixelFormat::Abgr,
        PixelFormat::Gray8,
        PixelFormat::I420,
        PixelFormat::Yv12,
        PixelFormat::Nv12,
        PixelFormat::Nv21,
        PixelFormat::Yuy2,
        PixelFormat::Uyvy,
    ];

    /// GStreamer's name of the format.
    pub fn name(self) -> &'static str {
        use PixelFormat::*;
        match self {
            Rgb => "RGB",
            Bgr => "BGR",
            Rgba => "RGBA",
            Bgra => "BGRA",
            Rgbx => "RGBx",
            Bgrx => "BGRx",
            Xrgb => "xRGB",
            Xbgr => "xBGR",
            Argb => "ARGB",
            Abgr => "ABGR",
            Gray8 => "GRAY8",
            I420 => "I420",
            Yv12 => "YV12",
            Nv12 => "NV12",
            Nv21 => "NV21",
            Yuy2 => "YUY2",
            Uyvy => "UYVY",
        }
    }

    pub fn layout(self) -> Layout {
        use PixelFormat::*;
        let packed = |bpp, r, g, b| Layout::Packed { bpp, r, g, b };
        match self {
            Rgb => packed(3, 0, 1, 2),
            Bgr => packed(3, 2, 1, 0),
            Rgba | Rgbx => packed(4, 0, 1, 2),
            Bgra | Bgrx => packed(4, 2, 1, 0),
            Xrgb | Argb => packed(4, 1, 2, 3),
            Xbgr | Abgr => packed(4, 3, 2, 1),
            Gray8 => Layout::Gray,
            I420 | Yv12 => Layout::Planar420,
            Nv12 => Layout::SemiPlanar420 { u: 0 },
            Nv21 => Layout::SemiPlanar420 { u: 1 },
            Yuy2 => Layout::Packed422 {
                y0: 0,
                u: 1,
                y1: 2,
                v: 3,
            },
            Uyvy => Layout::Packed422 {
                y0: 1,
                u: 0,
                y1: 3,
                v: 2,
            },
        }
    }

    pub fn n_planes(self) -> usize {
        match self.layout() {
            Layout::Planar420 => 3,
            Layout::SemiPlanar420 { .. } => 2,
            _ => 1,
        }
    }

    pub fn is_yuv(self) -> bool {
        !matches!(self.layout(), Layout::Packed { .. } | Layout::Gray)
    }

    /// Minimum bytes per row and number of rows of plane `i` for a `width` x `height` frame.
    pub fn plane_size(self, i: usize, width: usize, height: usize) -> (usize, usize) {
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        match (self.layout(), i) {
            (Layout::Packed { bpp, .. }, _) => (width.saturating_mul(bpp), height),
            (Layout::Gray, _) => (width, height),
            (Layout::Planar420, 0) | (Layout::SemiPlanar420 { .. }, 0) => (width, height),
            (Layout::Planar420, _) => (cw, ch),
            (Layout::SemiPlanar420 { .. }, _) => (cw.saturating_mul(2), ch),
            (Layout::Packed422 { .. }, _) => (cw.saturating_mul(4), height),
        }
    }
}

/// YUV to RGB coefficients: which matrix and which range the Y'CbCr values use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct YuvMatrix {
    /// Kr and Kb of the matrix (BT.601: 0.299, 0.114; BT.709: 0.2126, 0.0722).
    pub kr: f32,
    pub kb: f32,
    /// Limited ("studio", 16..235) or full (0..255) range.
    pub full_range: bool,
}

impl YuvMatrix {
    pub const BT601: YuvMatrix = YuvMatrix {
        kr: 0.299,
        kb: 0.114,
        full_range: false,
    };
    pub const BT709: YuvMatrix = YuvMatrix {
        kr: 0.2126,
        kb: 0.0722,
        full_range: false,
    };

    /// Integer coefficients (scaled by 2^14) for converting YUV to RGB.
    pub(crate) fn to_rgb_coeffs(self) -> YuvToRgb {
        let kg = 1.0 - self.kr - self.kb;
        let (ys, cs, yoff) = if self.full_range {
            (1.0, 1.0, 0)
        } else {
            (255.0 / 219.0, 255.0 / 224.0, 16)
        };
        let s = (1 << 14) as f32;
        let q = |v: f32| (v * s).round() as i32;
        YuvToRgb {
            y: q(ys),
            yoff,
            rv: q(cs * 2.0 * (1.0 - self.kr)),
            gu: q(cs * 2.0 * (1.0 - self.kb) * self.kb / kg),
            gv: q(cs * 2.0 * (1.0 - self.kr) * self.kr / kg),
            bu: q(cs * 2.0 * (1.0 - self.kb)),
        }
    }

    /// The Y, U, V bytes that encode an RGB colour.
    pub fn rgb_to_yuv(self, rgb: [u8; 3]) -> [u8; 3] {
        let [r, g, b] = rgb.map(|c| c as f32 / 255.0);
        let kg = 1.0 - self.kr - self.kb;
        let y = self.kr * r + kg * g + self.kb * b;
        let u = (b - y) / (2.0 * (1.0 - self.kb));
        let v = (r - y) / (2.0 * (1.0 - self.kr));
        let (ys, yo, cs) = if self.full_range {
            (255.0, 0.0, 255.0)
        } else {
            (219.0, 16.0, 224.0)
        };
        let c = |x: f32| x.round().clamp(0.0, 255.0) as u8;
        [c(y * ys + yo), c(u * cs + 128.0), c(v * cs + 128.0)]
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct YuvToRgb {
    y: i32,
    yoff: i32,
    rv: i32,
    gu: i32,
    gv: i32,
    bu: i32,
}

impl YuvToRgb {
    #[inline]
    pub(crate) fn convert(&self, y: u8, u: u8, v: u8) -> [u8; 3] {
        let y = (y as i32 - self.yoff) * self.y;
        let (u, v) = (u as i32 - 128, v as i32 - 128);
        let c = |x: i32| ((x + (1 << 13)) >> 14).clamp(0, 255) as u8;
        [c(y + self.rv * v), c(y - self.gu * u - self.gv * v), c(y + self.bu * u)]
    }
}

#[derive(Debug, Error, PartialEq)]
pub enum ImageError {
    #[error("frame size {0}x{1} is empty")]
    Empty(usize, usize),
    #[error("plane {plane} is too small: {len} bytes for {rows} rows of stride {stride} (needs {row_bytes} per row)")]
    PlaneTooSmall {
        plane: usize,
        len: usize,
        rows: usize,
        stride: usize,
        row_bytes: usize,
    },
    #[error("plane {0} of the frame could not be mapped")]
    Plane(usize),
    #[error("{format:?} needs {expected} planes, got {got}")]
    PlaneCount {
        format: PixelFormat,
        expected: usize,
        got: usize,
    },
}

fn check_planes(
    format: PixelFormat,
    width: usize,
    height: usize,
    lens_strides: impl ExactSizeIterator<Item = (usize, usize)> + Clone,
) -> Result<(), ImageError> {
    if width == 0 || height == 0 {
        return Err(ImageError::Empty(width, height));
    }
    if lens_strides.len() != format.n_planes() {
        return Err(ImageError::PlaneCount {
            format,
            expected: format.n_planes(),
            got: lens_strides.len(),
        });
    }
    for (plane, (len, stride)) in lens_strides.enumerate() {
        let (row_bytes, rows) = format.plane_size(plane, width, height);
        let needed = stride.checked_mul(rows - 1).and_then(|n| n.checked_add(row_bytes));
        if stride < row_bytes || needed.is_none_or(|n| len < n) {
            return Err(ImageError::PlaneTooSmall {
                plane,
                len,
                rows,
                stride,
                row_bytes,
            });
        }
    }
    Ok(())
}

/// A read-only frame: planes (Y, U, V order for YUV) with their strides in bytes.
#[derive(Debug, Clone, Copy)]
pub struct ImageView<'a> {
    pub format: PixelFormat,
    pub width: usize,
    pub height: usize,
    pub planes: [&'a [u8]; 3],
    pub strides: [usize; 3],
    pub yuv: YuvMatrix,
}

impl<'a> ImageView<'a> {
    /// Checks that every plane holds `height` rows of its stride.
    pub fn new(
        format: PixelFormat,
        width: usize,
        height: usize,
        planes: &[&'a [u8]],
        strides: &[usize],
        yuv: YuvMatrix,
    ) -> Result<Self, ImageError> {
        let ls = planes.iter().map(|p| p.len()).zip(strides.iter().copied());
        check_planes(format, width, height, ls)?;
        let mut p = [&[][..]; 3];
        let mut s = [0; 3];
        p[..planes.len()].copy_from_slice(planes);
        s[..planes.len()].copy_from_slice(&strides[..planes.len()]);
        Ok(Self {
            format,
            width,
            height,
            planes: p,
            strides: s,
            yuv,
        })
    }

    /// A tightly packed frame in one contiguous buffer (planes one after another).
    pub fn packed(format: PixelFormat, width: usize, height: usize, data: &'a [u8]) -> Result<Self, ImageError> {
        let n = format.n_planes();
        let mut planes = [&[][..]; 3];
        let mut strides = [0; 3];
        let mut rest = data;
        for i in 0..n {
            let (row, rows) = format.plane_size(i, width, height);
            let (p, r) = rest.split_at((row * rows).min(rest.len()));
            planes[i] = p;
            strides[i] = row;
            rest = r;
        }
        Self::new(format, width, height, &planes[..n], &strides[..n], YuvMatrix::BT601)
    }

    /// Checks again what [`new`](Self::new) checked: a view whose public fields were set by
    /// hand may not match its planes.
    pub fn check(&self) -> Result<(), ImageError> {
        let n = self.format.n_planes();
        let ls = self.planes[..n]
            .iter()
            .map(|p| p.len())
            .zip(self.strides[..n].iter().copied());
        check_planes(self.format, self.width, self.height, ls)
    }

    /// The RGB value of one pixel; used where only a few pixels are read.
    pub fn rgb_at(&self, x: usize, y: usize) -> [u8; 3] {
        let row = |i: usize, yy: usize| &self.planes[i][yy * self.strides[i]..];
        match self.format.layout() {
            Layout::Packed { bpp, r, g, b } => {
                let p = &row(0, y)[x * bpp..];
                [p[r], p[g], p[b]]
            }
            Layout::Gray => {
                let v = row(0, y)[x];
                [v, v, v]
            }
            Layout::Planar420 => {
                let c = self.yuv.to_rgb_coeffs();
                c.convert(row(0, y)[x], row(1, y / 2)[x / 2], row(2, y / 2)[x / 2])
            }
            Layout::SemiPlanar420 { u } => {
                let c = self.yuv.to_rgb_coeffs();
                let uv = &row(1, y / 2)[(x / 2) * 2..];
                c.convert(row(0, y)[x], uv[u], uv[1 - u])
            }
            Layout::Packed422 { y0, u, y1, v } => {
                let c = self.yuv.to_rgb_coeffs();
                let m = &row(0, y)[(x / 2) * 4..];
                let yy = if x % 2 == 0 { m[y0] } else { m[y1] };
                c.convert(yy, m[u], m[v])
            }
        }
    }
}

/// A writable frame, for drawing.
#[derive(Debug)]
pub struct ImageViewMut<'a> {
    pub format: PixelFormat,
    pub width: usize,
    pub height: usize,
    pub planes: [&'a mut [u8]; 3],
    pub strides: [usize; 3],
    pub yuv: YuvMatrix,
}

impl<'a> ImageViewMut<'a> {
    /// `planes`: the format's planes, in Y, U, V order for YUV (at most 3).
    pub fn new(
        format: PixelFormat,
        width: usize,
        height: usize,
        planes: impl IntoIterator<Item = &'a mut [u8]>,
        strides: &[usize],
        yuv: YuvMatrix,
    ) -> Result<Self, ImageError> {
        let mut p: [&'a mut [u8]; 3] = Default::default();
        let mut count = 0;
        for plane in planes {
            if count == 3 {
                return Err(ImageError::PlaneCount {
                    format,
                    expected: format.n_planes(),
                    got: count + 1,
                });
            }
            p[count] = plane;
            count += 1;
        }
        let ls = p[..count].iter().map(|p| p.len()).zip(strides.iter().copied());
        check_planes(format, width, height, ls)?;
        let mut s = [0; 3];
        s[..strides.len()].copy_from_slice(strides);
        Ok(Self {
            format,
            width,
            height,
            planes: p,
            strides: s,
            yuv,
        })
    }

    pub fn as_view(&self) -> ImageView<'_> {
        ImageView {
            format: self.format,
            width: self.width,
            height: self.height,
            planes: [&self.planes[0][..], &self.planes[1][..], &self.planes[2][..]],
            strides: self.strides,
            yuv: self.yuv,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yuv_round_trip_is_close() {
        for m in [
            YuvMatrix::BT601,
            YuvMatrix::BT709,
            YuvMatrix {
                full_range: true,
                ..YuvMatrix::BT601
            },
        ] {
            let c = m.to_rgb_coeffs();
            for rgb in [
                [0, 0, 0],
                [255, 255, 255],
                [200, 30, 90],
                [10, 220, 40],
                [128, 128, 128],
            ] {
                let [y, u, v] = m.rgb_to_yuv(rgb);
                let back = c.convert(y, u, v);
                for k in 0..3 {
                    assert!((back[k] as i32 - rgb[k] as i32).abs() <= 3, "{m:?} {rgb:?} -> {back:?}");
                }
            }
        }
    }

    #[test]
    fn rejects_short_planes_and_empty_frames() {
        let data = vec![0u8; 10];
        assert!(ImageView::packed(PixelFormat::Rgb, 4, 4, &data).is_err());
        assert_eq!(
            ImageView::packed(PixelFormat::Rgb, 0, 4, &data).unwrap_err(),
            ImageError::Empty(0, 4)
        );
        // Odd sizes round chroma up: 3x3 I420 is 9 + 4 + 4 bytes.
        let data = vec![0u8; 17];
        assert!(ImageView::packed(PixelFormat::I420, 3, 3, &data).is_ok());
        assert!(ImageView::packed(PixelFormat::I420, 3, 3, &data[..16]).is_err());
    }

    #[test]
    fn reads_pixels_of_every_layout() {
        // One 2x2 frame of pure red in each format must read back as red.
        let red = [255u8, 0, 0];
        for f in PixelFormat::ALL {
            let m = YuvMatrix::BT601;
            let [y, u, v] = m.rgb_to_yuv(red);
            let data: Vec<u8> = match f.layout() {
                Layout::Packed { bpp, r, g, b } => {
                    let mut px = vec![0u8; bpp];
                    px[r] = 255;
                    px[g] = 0;
                    px[b] = 0;
                    px.repeat(4)
                }
                Layout::Gray => vec![76; 4],
                Layout::Planar420 => vec![y, y, y, y, u, v],
                Layout::SemiPlanar420 { u: uo } => {
                    let mut d = vec![y, y, y, y, 0, 0];
                    d[4 + uo] = u;
                    d[5 - uo] = v;
                    d
                }
                Layout::Packed422 { y0, u: uo, y1, v: vo } => {
                    let mut m4 = [0u8; 4];
                    m4[y0] = y;
                    m4[y1] = y;
                    m4[uo] = u;
                    m4[vo] = v;
                    m4.repeat(2)
                }
            };
            let img = ImageView::packed(f, 2, 2, &data).unwrap();
            let got = img.rgb_at(1, 1);
            if f == PixelFormat::Gray8 {
                assert_eq!(got, [76, 76, 76]);
            } else {
                assert!(got[0] > 240 && got[1] < 15 && got[2] < 15, "{f:?}: {got:?}");
            }
        }
    }
}
