//! Frame adapters: GStreamer's mapped video frames as the core's views, in their own format.

use gst_video::prelude::*;

use crate::image::{ImageError, ImageView, ImageViewMut, PixelFormat, YuvMatrix};

pub const FORMATS: [(gst_video::VideoFormat, PixelFormat); 17] = {
    use gst_video::VideoFormat as V;
    use PixelFormat as P;
    [
        (V::Yuy2, P::Yuy2),
        (V::Uyvy, P::Uyvy),
        (V::I420, P::I420),
        (V::Yv12, P::Yv12),
        (V::Nv12, P::Nv12),
        (V::Nv21, P::Nv21),
        (V::Rgb, P::Rgb),
        (V::Bgr, P::Bgr),
        (V::Rgba, P::Rgba),
        (V::Bgra, P::Bgra),
        (V::Rgbx, P::Rgbx),
        (V::Bgrx, P::Bgrx),
        (V::Xrgb, P::Xrgb),
        (V::Xbgr, P::Xbgr),
        (V::Argb, P::Argb),
        (V::Abgr, P::Abgr),
        (V::Gray8, P::Gray8),
    ]
};

pub fn pixel_format(f: gst_video::VideoFormat) -> Option<PixelFormat> {
    FORMATS.iter().find(|(v, _)| *v == f).map(|(_, p)| *p)
}

/// The accepted formats, as GStreamer names them, for messages.
pub fn format_names() -> String {
    FORMATS
        .iter()
        .map(|(v, _)| v.to_str().as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The YUV matrix and range of negotiated video: from the caps' colorimetry, else BT.709 for
/// HD and BT.601 below, as GStreamer guesses.
pub fn yuv_matrix(info: &gst_video::VideoInfo) -> YuvMatrix {
    let c = info.colorimetry();
    let (kr, kb) = c.matrix().kr_kb().unwrap_or(if info.height() >= 720 {
        (0.2126, 0.0722)
    } else {
        (0.299, 0.114)
    });
    YuvMatrix {
        kr: kr as f32,
        kb: kb as f32,
        full_range: c.range() == gst_video::VideoColorRange::Range0_255,
    }
}

/// A frame mapped for the analysis: for writing when it is drawn on or masked, else for
/// reading, so that a frame the decoder still holds (a reference picture) is not copied just to
/// be looked at; the metadata then goes on a new buffer that shares the frame's memory.
pub enum Mapped {
    Writable(gst_video::VideoFrame<gst_video::video_frame::Writable>),
    Readable(gst_video::VideoFrame<gst_video::video_frame::Readable>),
}

impl Mapped {
    pub fn readable(buf: gst::Buffer, info: &gst_video::VideoInfo) -> Result<Self, gst::Buffer> {
        gst_video::VideoFrame::from_buffer_readable(buf, info).map(Mapped::Readable)
    }

    /// Copies only if another element still holds a reference (what in-place transforms do).
    pub fn writable(mut buf: gst::Buffer, info: &gst_video::VideoInfo) -> Result<Self, gst::Buffer> {
        buf.make_mut();
        gst_video::VideoFrame::from_buffer_writable(buf, info).map(Mapped::Writable)
    }

    pub fn into_buffer(self) -> gst::Buffer {
        match self {
            Mapped::Writable(f) => f.into_buffer(),
            Mapped::Readable(f) => f.into_buffer(),
        }
    }

    pub fn size(&self) -> (u32, u32) {
        match self {
            Mapped::Writable(f) => (f.width(), f.height()),
            Mapped::Readable(f) => (f.width(), f.height()),
        }
    }

    /// The core's read-only view of the frame.
    pub fn view(&self, format: PixelFormat, yuv: YuvMatrix) -> Result<ImageView<'_>, ImageError> {
        fn planes<T>(
            frame: &gst_video::VideoFrame<T>,
            format: PixelFormat,
            yuv: YuvMatrix,
        ) -> Result<ImageView<'_>, ImageError> {
            let (w, h) = (frame.width() as usize, frame.height() as usize);
            let n = format.n_planes();
            let strides = plane_strides(frame, format);
            let mut planes: [&[u8]; 3] = [&[]; 3];
            for (i, plane) in planes.iter_mut().enumerate().take(n) {
                *plane = frame
                    .plane_data(gst_plane(format, i))
                    .map_err(|_| ImageError::Plane(i))?;
            }
            ImageView::new(format, w, h, &planes[..n], &strides[..n], yuv)
        }
        match self {
            Mapped::Writable(f) => planes(f, format, yuv),
            Mapped::Readable(f) => planes(f, format, yuv),
        }
    }

    /// The core's writable view, for a frame mapped for writing.
    pub fn view_mut(&mut self, format: PixelFormat, yuv: YuvMatrix) -> Option<Result<ImageViewMut<'_>, ImageError>> {
        let Mapped::Writable(frame) = self else {
            return None;
        };
        let (w, h) = (frame.width() as usize, frame.height() as usize);
        let n = format.n_planes();
        let strides = plane_strides(frame, format);
        let mut gst_planes = frame.planes_data_mut();
        let mut planes: [&mut [u8]; 3] = Default::default();
        for (i, plane) in planes.iter_mut().enumerate().take(n) {
            *plane = std::mem::take(&mut gst_planes[gst_plane(format, i) as usize]);
        }
        Some(ImageViewMut::new(
            format,
            w,
            h,
            planes.into_iter().take(n),
            &strides[..n],
            yuv,
        ))
    }
}

/// GStreamer's index of the core's plane `i`: GStreamer lists YV12 planes as Y, V, U, the core
/// wants Y, U, V.
fn gst_plane(format: PixelFormat, i: usize) -> u32 {
    match (format, i) {
        (PixelFormat::Yv12, 1) => 2,
        (PixelFormat::Yv12, 2) => 1,
        _ => i as u32,
    }
}

/// The strides of the frame's planes, in the core's plane order.
fn plane_strides<T>(frame: &gst_video::VideoFrame<T>, format: PixelFormat) -> [usize; 3] {
    let mut strides = [0usize; 3];
    for (i, s) in strides.iter_mut().enumerate().take(format.n_planes()) {
        *s = frame.plane_stride()[gst_plane(format, i) as usize] as usize;
    }
    strides
}
