#!/usr/bin/env python3
"""Runs the old gst-launch recording line (two splitmuxsinks, async-handling=true, as
pipelines/surveillance-record.sh had it) again and again, the way gst-launch-1.0 drives it
(PAUSED, wait until prerolled, PLAYING), and keeps the GST_STATES:5,bin:5,splitmuxsink:5 log of
any run whose pipeline does not post EOS within 30 s (stuck-<n>.log, with every element's state).

Debug output goes to GStreamer's ring-buffer logger (per thread, in memory), so logging does not
slow every run. With JITTER=s the application's bus sync handler sleeps up to s seconds on some
state, async and element messages, in the thread that posts them, as a preempted thread would on
a loaded machine: the race then shows in a few hundred runs instead of never. No faceemotion is
in the line: the race is GStreamer's.

  /usr/bin/python3 pipelines/hang/catch_stuck_run.py RUNS [OUT_DIR]     (JITTER=0.05 to provoke)
"""
import os, random, shutil, sys, time
import gi
gi.require_version("Gst", "1.0")
from gi.repository import Gst

Gst.init(None)
runs = int(sys.argv[1]) if len(sys.argv) > 1 else 100
out = sys.argv[2] if len(sys.argv) > 2 else "/tmp/faceemotion-stuck-runs"
jitter = float(os.environ.get("JITTER", "0"))
clip = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "data", "astronaut-pan.mp4")
LIMIT = 30
Gst.debug_set_threshold_from_string("GST_STATES:5,bin:5,splitmuxsink:5", True)
Gst.debug_remove_log_function(None)
os.makedirs(out, exist_ok=True)
stuck = 0
for i in range(runs):
    Gst.debug_add_ring_buffer_logger(4 << 20, 60)
    d = os.path.join(out, f"run-{i}")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    p = Gst.parse_launch(
        f'filesrc location="{clip}" ! qtdemux ! h264parse config-interval=-1 ! tee name=t '
        f't. ! queue ! splitmuxsink name=orig async-handling=true location={d}/original_%05d.mp4 max-size-time=2000000000 '
        f't. ! queue ! avdec_h264 ! videoconvert ! x264enc speed-preset=veryfast tune=zerolatency key-int-max=30 '
        f'! h264parse ! splitmuxsink name=ann async-handling=true location={d}/annotated_%05d.mp4 max-size-time=2000000000')
    bus = p.get_bus()

    def sync(_bus, m, _data=None):
        if jitter and m.type in (Gst.MessageType.STATE_CHANGED, Gst.MessageType.ASYNC_DONE,
                                 Gst.MessageType.ASYNC_START, Gst.MessageType.ELEMENT):
            if random.random() < 0.3:
                time.sleep(random.random() * jitter)
        return Gst.BusSyncReply.PASS

    bus.set_sync_handler(sync)
    t0 = time.time()
    ok = False
    if p.set_state(Gst.State.PAUSED) == Gst.StateChangeReturn.ASYNC:
        while time.time() - t0 < LIMIT:
            m = bus.timed_pop(100 * Gst.MSECOND)
            if m and m.type == Gst.MessageType.ASYNC_DONE:
                break
    p.set_state(Gst.State.PLAYING)
    while time.time() - t0 < LIMIT:
        m = bus.timed_pop(100 * Gst.MSECOND)
        if m and m.type in (Gst.MessageType.EOS, Gst.MessageType.ERROR):
            ok = m.type == Gst.MessageType.EOS
            break
    if not ok:
        stuck += 1
        with open(os.path.join(out, f"stuck-{i}.log"), "w") as f:
            it = p.iterate_recurse()
            f.write(f"{p.get_name()}: {p.get_state(0)[1].value_nick}/{p.get_state(0)[2].value_nick}\n")
            while True:
                r, e = it.next()
                if r != Gst.IteratorResult.OK:
                    break
                _, cur, pending = e.get_state(0)
                f.write(f"  {e.get_path_string()}: {cur.value_nick}/{pending.value_nick}\n")
            for log in Gst.debug_ring_buffer_logger_get_logs():
                f.write(log)
    p.set_state(Gst.State.NULL)
    Gst.debug_remove_ring_buffer_logger()
    if ok:
        shutil.rmtree(d, ignore_errors=True)
    print(f"run {i}: {'EOS' if ok else 'STUCK (no EOS in 30 s)'} after {time.time() - t0:.1f} s", flush=True)
print(f"{stuck} of {runs} runs stuck; logs in {out}")
