#!/usr/bin/python3
"""Reads faceemotion's GstVideoRegionOfInterestMeta from an application (PyGObject).

    GST_PLUGIN_PATH=target/release python3 pipelines/print-faces.py [video file]

Uses Debian's python3 with python3-gi and gir1.2-gst-plugins-base-1.0 (scripts/setup.sh installs them)."""
import ctypes
import pathlib
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstVideo", "1.0")
from gi.repository import GLib, Gst, GstVideo  # noqa: E402

Gst.init(None)
clip = sys.argv[1] if len(sys.argv) > 1 else str(
    pathlib.Path(__file__).resolve().parent.parent / "tests/data/astronaut-pan.mp4")
pipeline = Gst.parse_launch(
    f'filesrc location="{clip}" ! decodebin ! videoconvert ! faceemotion post-messages=false name=fe ! fakesink')
ROI_API = GstVideo.VideoRegionOfInterestMeta.get_info().api

# PyGObject cannot walk a buffer's metas, so collect the ROI ids with libgstreamer itself (as DL
# Streamer's Python bindings do), then fetch each ROI through GstVideo by its id. The id is the
# tracker's: stable while a face stays in view.
_gst = ctypes.CDLL("libgstreamer-1.0.so.0")
_gst.gst_buffer_iterate_meta_filtered.restype = ctypes.c_void_p
_gst.gst_buffer_iterate_meta_filtered.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_size_t]


class _RoiMeta(ctypes.Structure):
    # GstMeta (flags, info), then roi_type, id, parent_id, ... of GstVideoRegionOfInterestMeta.
    _fields_ = [("flags", ctypes.c_int), ("info", ctypes.c_void_p), ("roi_type", ctypes.c_uint32),
                ("id", ctypes.c_int), ("parent_id", ctypes.c_int)]


def roi_ids(buf):
    state = ctypes.c_void_p()
    while True:
        # hash() of a PyGObject boxed value or GType is its C pointer or id.
        meta = _gst.gst_buffer_iterate_meta_filtered(hash(buf), ctypes.byref(state), hash(ROI_API))
        if not meta:
            return
        yield _RoiMeta.from_address(meta).id


def on_buffer(pad, info):
    buf = info.get_buffer()
    out = []
    for face_id in roi_ids(buf):
        roi = GstVideo.buffer_get_video_region_of_interest_meta_id(buf, face_id)
        params = {}
        for name in ("detection", "emotion", "gender", "age"):
            s = roi.get_param(name)
            if s is not None:
                params[name] = {s.nth_field_name(k): s.get_value(s.nth_field_name(k)) for k in range(s.n_fields())}
        out.append((face_id, roi.x, roi.y, roi.w, roi.h, params))
    t = buf.pts / Gst.SECOND
    for face_id, x, y, w, h, p in out:
        e, g = p.get("emotion", {}), p.get("gender", {})
        print(f"{t:7.3f}s face {face_id} at ({x},{y}) {w}x{h}: {e.get('label')} {e.get('confidence', 0):.2f}, "
              f"{g.get('label')} {g.get('confidence', 0):.2f}, age {p.get('age', {}).get('label')}")
    return Gst.PadProbeReturn.OK


pipeline.get_by_name("fe").get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, on_buffer)
loop = GLib.MainLoop()
bus = pipeline.get_bus()
bus.add_signal_watch()
bus.connect("message::eos", lambda *a: loop.quit())
bus.connect("message::error", lambda b, m: (print(m.parse_error()), loop.quit()))
pipeline.set_state(Gst.State.PLAYING)
loop.run()
pipeline.set_state(Gst.State.NULL)
