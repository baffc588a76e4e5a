//! Frame adapters: GStreamer's mapped video frames as the core's views, in their own format.

use std::sync::{Arc, Mutex, Weak};

use gst_video::prelude::*;
use memmap2::MmapMut;

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

    /// Copies only if another element still holds the frame or its memory (what in-place
    /// transforms do), into a block of [`Spare`].
    pub fn writable(mut buf: gst::Buffer, info: &gst_video::VideoInfo, spare: &Spare) -> Result<Self, gst::Buffer> {
        if !buf.is_writable() || !buf.is_all_memory_writable() {
            if let Some(copy) = spare.copy(&buf) {
                buf = copy;
            }
        }
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

/// Memory for the copies of frames the element draws on but does not hold alone (a decoder's
/// reference pictures). Copies from the heap, made on one streaming thread and freed on
/// another frame after frame, left each thread's heap holding a few frames' worth (glibc
/// raises its threshold for mapping a block of its own once such a block is freed): most of a
/// stream's memory with many cameras. Here a copy is an anonymous mapping; when downstream
/// frees it, it comes back as the one spare block, which the next copy takes, so that a stream
/// holds the copies in flight and one block more, and a block beyond that goes back to the
/// system at once.
#[derive(Clone, Default)]
pub struct Spare(Arc<Mutex<Option<MmapMut>>>);

impl Spare {
    /// A copy of `src` (its bytes, flags, times and metas, the video layout included);
    /// `None` when it cannot be made, for GStreamer's own copy to be used.
    fn copy(&self, src: &gst::Buffer) -> Option<gst::Buffer> {
        let bytes = src.map_readable().ok()?;
        let len = bytes.len();
        let reused = self.take(len);
        let mut memory = match reused {
            Some(m) => m,
            None => MmapMut::map_anon(len.max(1)).ok()?,
        };
        memory[..len].copy_from_slice(&bytes);
        drop(bytes);
        let block = Block {
            memory: Some(memory),
            home: Arc::downgrade(&self.0),
        };
        let mut copy = gst::Buffer::from_mut_slice(block);
        {
            let dest = copy.get_mut()?;
            dest.set_size(len);
            let flags = gst::BufferCopyFlags::FLAGS | gst::BufferCopyFlags::TIMESTAMPS | gst::BufferCopyFlags::META;
            src.copy_into(dest, flags, ..).ok()?;
            // The layout must come along: a padded frame drawn on as if packed is drawn wrong.
            if let (Some(m), None) = (src.meta::<gst_video::VideoMeta>(), dest.meta::<gst_video::VideoMeta>()) {
                gst_video::VideoMeta::add_full(
                    dest,
                    m.video_frame_flags(),
                    m.format(),
                    m.width(),
                    m.height(),
                    m.offset(),
                    m.stride(),
                )
                .ok()?;
            }
        }
        Some(copy)
    }

    /// The spare block, if there is one of the size (frames of another size drop it).
    fn take(&self, len: usize) -> Option<MmapMut> {
        let mut spare = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match spare.take() {
            Some(m) if m.len() == len.max(1) => Some(m),
            _ => None,
        }
    }
}

/// A copy's memory, which goes back to its stream's [`Spare`] when the frame is freed, unless
/// the stream has stopped or already has a spare block.
struct Block {
    memory: Option<MmapMut>,
    home: Weak<Mutex<Option<MmapMut>>>,
}

impl AsMut<[u8]> for Block {
    fn as_mut(&mut self) -> &mut [u8] {
        self.memory.as_mut().map_or(&mut [], |m| &mut m[..])
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        if let Some(home) = self.home.upgrade() {
            let mut spare = home.lock().unwrap_or_else(|e| e.into_inner());
            if spare.is_none() {
                *spare = self.memory.take();
            }
        }
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
