#!/usr/bin/env python3
"""Makes tests/data/astronaut-pan.mp4, the bundled demo and test clip, from the public-domain
astronaut photo (scikit-image): 6 s of 640x360 at 30 fps, zooming in and panning, so that the
face moves and changes size as it would in footage. Needs numpy, opencv-python and gst-launch-1.0
with x264enc. Committed output; run again only to change the clip."""
import pathlib, subprocess
import cv2
import numpy as np

root = pathlib.Path(__file__).resolve().parent.parent
img = cv2.imread(str(root / "tests/data/astronaut.png"))  # 512x512
W, H, N = 640, 360, 180
out = root / "tests/data/astronaut-pan.mp4"
enc = subprocess.Popen(
    ["gst-launch-1.0", "-q", "fdsrc", "fd=0", "!",
     f"rawvideoparse", "format=bgr", f"width={W}", f"height={H}", "framerate=30/1", "!",
     "videoconvert", "!", "x264enc", "speed-preset=slow", "bitrate=600", "key-int-max=60", "!",
     "video/x-h264,profile=main", "!", "mp4mux", "!", "filesink", f"location={out}"],
    stdin=subprocess.PIPE)
for t in range(N):
    a = t / (N - 1)
    s = 1.0 - 0.45 * np.sin(np.pi * a)          # window width as a share of 512: zoom in then out
    w = 512 * s
    h = w * H / W
    cx = 256 + 40 * np.sin(2 * np.pi * a)       # pan left and right around the face
    cy = 150 + 60 * (1 - s)
    x0 = float(np.clip(cx - w / 2, 0, 512 - w))
    y0 = float(np.clip(cy - h / 2, 0, 512 - h))
    m = np.array([[W / w, 0, -x0 * W / w], [0, H / h, -y0 * H / h]], dtype=np.float32)
    frame = cv2.warpAffine(img, m, (W, H), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
    enc.stdin.write(frame.tobytes())
enc.stdin.close()
enc.wait()
print(out, out.stat().st_size, "bytes")
