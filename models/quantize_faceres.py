#!/usr/bin/env python3
"""Makes hm_faceres_int8.onnx (HSE FaceRes descriptor, gender and age in INT8) from hm_faceres.onnx,
and checks it.

    python3 models/quantize_faceres.py [--work DIR] [--human DIR] [--python PY]
                                       [--calibration heldout|all] [--compare-calibrations]

Why: the descriptor is the plugin's most expensive network per face (about 13.6 ms on one thread
here in fp32). In INT8 it runs 3x faster with ONNX Runtime's CPU kernels, and its decisions stay
those of the fp32 network (see the check and models/README.md).

Steps (each says what it does):
  1. a virtual environment in DIR/venv with the packages of quantize.py (onnx 1.16.2, onnxruntime
     1.31.1, numpy<2, opencv-python-headless 4.10.0.84, ml_dtypes): other versions may give other
     bytes. --python names a Python that already has them instead;
  2. the pictures: the six group photos of npm @vladmandic/face-api 1.7.15 (demo/sample1..6.jpg;
     taken from tests/data/face-api when scripts/setup.sh --test put them there, the same files),
     tests/data/astronaut.png, and four assets of npm @vladmandic/human 3.3.6 (assets/
     screenshot-facematch.jpg, samples.jpg, screenshot-facedetect.jpg, screenshot-faceid.jpg;
     npm pack into DIR, or --human: a folder holding them under those names or with a "human336-"
     prefix);
  3. the front of the fp32 graph is rewritten (`fast_front`): its Gather (RGB -> BGR on the last axis)
     and Sub (a [1,1,1,3] mean broadcast over NHWC) run element by element in ONNX Runtime, about
     1.1 + 0.6 ms on one thread, a quarter of the INT8 network's time. The channel reversal goes into
     the first convolution's weights (input channels permuted: exact) and the mean is subtracted as
     one image row, a [1,1,224,3] tensor (RGB order), which ONNX Runtime broadcasts in 672-value spans
     (0.03 ms). (A [1,3,1,1] mean after the Transpose is as fast in fp32, but in the INT8 graph ONNX
     Runtime runs the convolutions in NHWC, drops the Transpose and is back at the slow [1,1,1,3].)
  4. faces: the fp32 BlazeFace full range of models/ with the plugin's decoding finds them, in passes
     that also find the small ones (grid cells padded by their size, samples.jpg's thumbnails and
     tiled group, the face-api photos in 960 px tiles); each becomes the plugin's descriptor crop
     (eye-levelled square, side 1.4 x the larger box side, 224 px, bilinear, border repeated) and,
     for calibration, also side 1.25 and 1.6, each mirrored (6 inputs a face).
     --calibration heldout (default): the 19 faces of these pictures that are in no pair of the
     identity measurements in models/README.md: samples.jpg's faces except the CG woman of its
     thumbnail 1, screenshot-facedetect.jpg's faces except the package author's (the leftmost),
     grid cells (row, column) (1,8) (1,15) (1,16) (2,11) (3,13) (4,5) (4,6).
     --calibration all: every face of these pictures.
     The two give the same file byte for byte (--compare-calibrations checks it): with MinMax
     calibration every activation range is set by the network's ReLU6 (0..6) and, at the input, by
     pixel values 0 and 255, which both sets reach;
  5. quant_pre_process (no symbolic shape inference), then static quantisation: MinMax, QDQ, uint8
     activations, int8 per-channel weights: 7-bit (reduce_range) in the first and the 13 pointwise
     convolutions, which ONNX Runtime runs as u8 x s8 GEMMs (on AVX2 CPUs without VNNI with
     VPMADDUBSW, which adds pairs of products in saturating 16 bits: 7-bit weights cannot saturate);
     8-bit in the 13 depthwise 3x3 convolutions (a per-channel kernel that widens to 16 bits and
     accumulates in 32, no saturation: checked under qemu -cpu Haswell; with 7-bit weights there the
     descriptor moved by up to 0.29 in cosine distance). The input's Transpose/Sub, the global pooling,
     the L2 normalisation and the three heads (features, gender, age) stay fp32;
  6. the check (the 108 cells of screenshot-facematch.jpg and the other faces found): the INT8
     network must keep every gender decision of fp32 (P(male) within 0.15), ages within 7 years (mean
     within 1.5), descriptors within cosine distance 0.05 of fp32 (median below 0.02), and run faster
     than fp32 on one thread (batch 1, median of 50 interleaved runs). Exit status 3 when it fails.
     Then the file is compared with the one in models/.

Same contract as hm_faceres.onnx: input `input` float32 [N,224,224,3] NHWC RGB 0..255; outputs
`descriptor` [N,1024] (unit length), `gender` [N,2] [P(male), P(female)], `age` [N,1] years.

Deterministic: the same inputs give the same file, byte for byte (EXPECTED_SHA256 below; checked).
Needs python3 (3.11), pip and npm, and about 500 MB of disk (most of it the virtual environment).
Not run in CI.
"""
import argparse
import pathlib
import subprocess
import sys
import tarfile
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import rebuild  # noqa: E402  (its command runner, checksum and virtual environment helpers)

ROOT = HERE.parent
INT8 = "hm_faceres_int8.onnx"
PACKAGES = ["onnx==1.16.2", "onnxruntime==1.31.1", "numpy<2", "opencv-python-headless==4.10.0.84", "ml_dtypes"]
FP32_SHA256 = "8d27baac7d26ad0be2f3ba527e241bb06b63f734fcd360739b7fd772ea39cd2e"
EXPECTED_SHA256 = "6a6c2145d89c92f4a4209f24ee068c86dcc02049df024569585194a0c93af677"
HELDOUT_CELLS = [(1, 8), (1, 15), (1, 16), (2, 11), (3, 13), (4, 5), (4, 6)]
HUMAN = ("screenshot-facematch.jpg", "samples.jpg", "screenshot-facedetect.jpg", "screenshot-faceid.jpg")
FACEAPI = tuple(f"sample{i}.jpg" for i in range(1, 7))
SAMPLES_THUMBS = [(0, 158), (160, 317), (326, 537), (545, 634), (641, 789), (797, 903), (911, 1123), (1130, 1273)]


def say(msg):
    print(f"[quantize_faceres] {msg}", flush=True)


# rebuild's helpers report through its `say`: make them speak as this script.
rebuild.say = say
sha256 = rebuild.sha256


def npm_files(work, spec, folder, names):
    """package/<folder>/<name> of an npm package (npm pack, once) under work/<package name>/, as
    quantize.py lays them out, so that the two can share a working folder."""
    name = spec.split("@")[1].split("/")[1]
    dest = work / name / folder
    if not all((dest / n).exists() for n in names):
        (work / name).mkdir(parents=True, exist_ok=True)
        tgz = next((work / name).glob("*.tgz"), None)
        if tgz is None:
            rebuild.run(["npm", "pack", "--silent", spec], cwd=work / name, stdout=subprocess.DEVNULL)
            tgz = next((work / name).glob("*.tgz"))
        with tarfile.open(tgz) as t:
            for n in names:
                member = t.getmember(f"package/{folder}/{n}")
                member.name = f"{folder}/{n}"
                t.extract(member, work / name, filter="data")
    return dest


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=pathlib.Path, help="working folder (default: a temporary one)")
    ap.add_argument("--human", type=pathlib.Path, help="folder with the four @vladmandic/human 3.3.6 assets (default: npm pack)")
    ap.add_argument("--python", type=pathlib.Path, help="a Python that has the packages above (default: a virtual environment in the working folder)")
    ap.add_argument("--calibration", choices=("heldout", "all"), default="heldout")
    ap.add_argument("--compare-calibrations", action="store_true", help="also quantise with the other set and compare the files")
    args = ap.parse_args()
    work = (args.work or pathlib.Path(tempfile.mkdtemp(prefix="faceemotion-quantize-faceres-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    py = args.python or rebuild.ensure_venv(work, PACKAGES)
    human = args.human or npm_files(work, "@vladmandic/human@3.3.6", "assets", HUMAN)
    faceapi = ROOT / "tests/data/face-api"
    if not all((faceapi / n).exists() for n in FACEAPI):
        faceapi = npm_files(work, "@vladmandic/face-api@1.7.15", "demo", FACEAPI)
    out = work / INT8
    say("calibrating, quantising and checking")
    cmd = [str(py), str(pathlib.Path(__file__).resolve()), "--stage-two", "--work", str(work), "--human", str(human),
           "--faceapi", str(faceapi), "--calibration", args.calibration] + (["--compare-calibrations"] if args.compare_calibrations else [])
    r = subprocess.run(cmd)
    if r.returncode == 3:
        say("FAILED: the INT8 network does not meet the check (see above)")
        return 3
    if r.returncode != 0:
        say(f"FAILED: the quantisation step exited with {r.returncode}")
        return 1
    new = sha256(out)
    shipped = HERE / INT8
    old = sha256(shipped) if shipped.exists() else None
    if new == old:
        say(f"{INT8}: identical to the one in models/ ({new})")
    else:
        say(f"{INT8}: sha256 {new} differs from models/ ({old}); copy {out} into models/ to ship it")
    return 0


# Everything below needs the packages; the part above runs under any python3 and makes an
# environment that has them, then runs this file again in it with --stage-two.
if __name__ == "__main__" and "--stage-two" not in sys.argv:
    sys.exit(main())

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
from onnx import numpy_helper as nh  # noqa: E402
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static  # noqa: E402
from onnxruntime.quantization.shape_inference import quant_pre_process  # noqa: E402


def session(path):
    o = ort.SessionOptions()
    o.intra_op_num_threads = 1
    o.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), o, providers=["CPUExecutionProvider"])


# ---- the detector: BlazeFace full range decoded as the plugin does (weighted NMS), with its keypoints ----
S = 192
ANCHORS = np.array([[(j + .5) / 48, (i + .5) / 48] for i in range(48) for j in range(48)])


class Detector:
    def __init__(self, path):
        self.s = session(path)

    def detect(self, img, thr=0.6):
        H, W = img.shape[:2]
        side = max(W, H)
        px, py = (side - W) // 2, (side - H) // 2
        sq = cv2.copyMakeBorder(img, py, side - H - py, px, side - W - px, cv2.BORDER_CONSTANT, value=0)
        x = cv2.resize(sq, (S, S), interpolation=cv2.INTER_AREA)[:, :, ::-1].astype(np.float32) / 127.5 - 1
        reg, cls = self.s.run(None, {"input": x[None]})
        reg = reg[0]
        sc = 1 / (1 + np.exp(-np.clip(cls[0, :, 0], -80, 80)))
        rows = []
        for k in np.where(sc > thr)[0]:
            r = reg[k]
            cx, cy = r[0] / S + ANCHORS[k, 0], r[1] / S + ANCHORS[k, 1]
            w, h = r[2] / S, r[3] / S
            kp = r[4:16].reshape(6, 2) / S + ANCHORS[k]
            rows.append(np.concatenate([[cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], kp.ravel(), [sc[k]]]))
        rows = np.array(rows).reshape(-1, 17)
        order, out = list(np.argsort(-rows[:, 16])), []
        while order:
            t = rows[order[0]]
            cl = [o for o in order if o == order[0] or iou(t, rows[o]) > 0.3]
            ws = rows[cl, 16]
            b = (rows[cl, :16] * ws[:, None]).sum(0) / ws.sum() * side - np.tile([px, py], 8)
            out.append(dict(box=b[:4], kps=b[4:16].reshape(6, 2), score=float(t[16])))
            order = [o for o in order if o not in cl]
        return out

    def padded(self, img, pad):
        h, w = img.shape[:2]
        p = int(round(pad * max(h, w)))
        big = cv2.copyMakeBorder(img, p, p, p, p, cv2.BORDER_CONSTANT, value=0)
        return [shift(d, -p, -p) for d in self.detect(big)]

    def tiled(self, img, tile, step):
        h, w = img.shape[:2]
        ys = sorted(set(list(range(0, max(1, h - tile) + 1, step)) + [max(0, h - tile)]))
        xs = sorted(set(list(range(0, max(1, w - tile) + 1, step)) + [max(0, w - tile)]))
        found = [shift(d, x, y) for y in ys for x in xs for d in self.detect(img[y:y + tile, x:x + tile])]
        found.sort(key=lambda d: -d["score"])
        keep = []
        for d in found:
            if all(iou(d["box"], k["box"]) <= 0.3 for k in keep):
                keep.append(d)
        return keep


def iou(p, q):
    ix = max(0, min(p[2], q[2]) - max(p[0], q[0]))
    iy = max(0, min(p[3], q[3]) - max(p[1], q[1]))
    i = ix * iy
    return i / ((p[2] - p[0]) * (p[3] - p[1]) + (q[2] - q[0]) * (q[3] - q[1]) - i)


def shift(d, x, y):
    return dict(box=d["box"] + [x, y, x, y], kps=d["kps"] + [x, y], score=d["score"])


def spec_crop(img, d, k=1.4, size=224):
    """The plugin's descriptor crop (models/README.md): output pixel (u, v) samples the frame
    bilinearly at (x, y) = centre + (side / size) * R(t) (u + 0.5 - size/2, v + 0.5 - size/2), t the eye
    line's angle, side = k x the larger box side, continuous coordinates, border repeated; RGB float."""
    b = d["box"]
    cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
    side = k * max(b[2] - b[0], b[3] - b[1])
    (xr, yr), (xl, yl) = d["kps"][0], d["kps"][1]
    t = np.arctan2(yl - yr, xl - xr)
    q = side / size
    c, s = np.cos(t) * q, np.sin(t) * q
    h = 0.5 - size / 2
    m = np.array([[c, -s, cx - 0.5 + c * h - s * h], [s, c, cy - 0.5 + s * h + c * h]])
    out = cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
    return out[:, :, ::-1].astype(np.float32)


def find_faces(det, faceapi, human):
    """[(image, detection, tag)] for every face of the calibration sources; tag marks the held-out ones."""
    def load(p):
        img = cv2.imread(str(p))
        if img is None:
            raise SystemExit(f"cannot read {p}")
        return img

    def hfile(name):
        for cand in (human / name, human / f"human336-{name}"):
            if cand.exists():
                return cand
        raise SystemExit(f"{name} not found in {human}")

    faces = []
    for i in range(1, 7):
        img = load(faceapi / f"sample{i}.jpg")
        faces += [(img, d, "face-api") for d in det.tiled(img, 960, 480)]
    img = load(ROOT / "tests/data/astronaut.png")
    faces += [(img, d, "astronaut") for d in det.detect(img)]
    img = load(hfile("screenshot-facematch.jpg"))
    ch, cw = (img.shape[0] - 283) / 6, img.shape[1] / 18
    for r in range(6):
        for c in range(18):
            x0, y0 = int(c * cw), int(283 + r * ch)
            cell = img[y0:int(283 + (r + 1) * ch), x0:int((c + 1) * cw)].copy()
            faces += [(img, shift(d, x0, y0), "grid-heldout" if (r, c) in HELDOUT_CELLS else "grid") for d in det.padded(cell, 1.0)]
    img = load(hfile("samples.jpg"))
    for t, (x0, x1) in enumerate(SAMPLES_THUMBS):
        faces += [(img, shift(d, x0, 0), "samples-cg" if t == 1 else "samples-heldout") for d in det.padded(img[0:159, x0:x1], 0.5)]
    faces += [(img, shift(d, 0, 196), "samples-heldout") for d in det.tiled(img[196:], 400, 250)]
    img = load(hfile("screenshot-facedetect.jpg"))
    ds = det.detect(img)
    author = min(range(len(ds)), key=lambda k: ds[k]["box"][0])
    faces += [(img, d, "facedetect-author" if k == author else "facedetect-heldout") for k, d in enumerate(ds)]
    img = load(hfile("screenshot-faceid.jpg"))
    faces += [(img, d, "faceid") for d in det.detect(img)]
    return faces


def calibration_inputs(faces, which):
    xs = []
    for img, d, tag in faces:
        if which == "all" or tag.endswith("-heldout"):
            for k in (1.4, 1.25, 1.6):
                c = spec_crop(img, d, k)
                xs += [c, np.ascontiguousarray(c[:, ::-1])]
    return xs


# ---- graph edits ----
def fast_front(m):
    """Gather(RGB->BGR) + Sub(mean [1,1,1,3]) + Transpose + Conv  ->  Sub(RGB mean row [1,1,224,3]) + Transpose
    + Conv with the first convolution's input channels reversed (exact)."""
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    n0, n1, n2, conv = g.node[0], g.node[1], g.node[2], g.node[3]
    assert (n0.op_type, n1.op_type, n2.op_type, conv.op_type) == ("Gather", "Sub", "Transpose", "Conv")
    assert list(nh.to_array(inits[n0.input[1]])) == [2, 1, 0] and n1.input[0] == n0.output[0] and n2.input[0] == n1.output[0]
    assert list([a.ints for a in n2.attribute if a.name == "perm"][0]) == [0, 3, 1, 2] and conv.input[0] == n2.output[0]
    mean_bgr = nh.to_array(inits[n1.input[1]]).reshape(3)
    w = nh.to_array(inits[conv.input[1]])
    inits[conv.input[1]].CopyFrom(nh.from_array(np.ascontiguousarray(w[:, ::-1]), conv.input[1]))
    width = g.input[0].type.tensor_type.shape.dim[2].dim_value
    row = np.ascontiguousarray(np.broadcast_to(mean_bgr[::-1].astype(np.float32), (1, 1, width, 3)))
    g.initializer.append(nh.from_array(row, "rgb_mean_row"))
    s = onnx.helper.make_node("Sub", ["input", "rgb_mean_row"], ["input_centred"], name="minus_mean")
    t = onnx.helper.make_node("Transpose", ["input_centred"], [conv.input[0]], perm=[0, 3, 1, 2], name="to_nchw")
    rest = list(g.node[3:])
    del g.node[:]
    g.node.extend([s, t] + rest)
    used = {i for n in g.node for i in n.input}
    for i in list(g.initializer):
        if i.name not in used:
            g.initializer.remove(i)
    onnx.checker.check_model(m)
    return m


class Reader(CalibrationDataReader):
    def __init__(self, xs):
        self.it = iter([{"input": x[None]} for x in xs])

    def get_next(self):
        return next(self.it, None)


def quantize(fp32, work, xs, out):
    front = work / "front.onnx"
    onnx.save(fast_front(onnx.load(str(fp32))), str(front))
    pre = work / "pre.onnx"
    quant_pre_process(str(front), str(pre), skip_symbolic_shape=True)
    m = onnx.load(str(pre))
    for i, n in enumerate(m.graph.node):
        if not n.name:
            n.name = f"{n.op_type}_{i}"
    onnx.save(m, str(pre))
    nodes = list(m.graph.node)
    first = next(i for i, n in enumerate(nodes) if n.op_type == "Conv")
    pool = next(i for i, n in enumerate(nodes) if n.op_type == "GlobalAveragePool")
    exclude = [n.name for n in nodes[:first]] + [n.name for n in nodes[pool:]]
    shapes = {i.name: list(i.dims) for i in m.graph.initializer}
    overrides = {}
    for n in nodes:
        if n.op_type == "Conv" and next((a.i for a in n.attribute if a.name == "group"), 1) > 1:
            # depthwise: 8-bit weights (per channel; one dict per output channel, the first carries the option)
            overrides[n.input[1]] = [{"axis": 0, "reduce_range": False}] + [{} for _ in range(shapes[n.input[1]][0] - 1)]
    assert len(overrides) == 13, len(overrides)
    quantize_static(str(pre), str(out), Reader(xs), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=exclude,
                    reduce_range=True, calibrate_method=CalibrationMethod.MinMax,
                    extra_options={"TensorQuantOverrides": overrides})
    # the weights as intended: 7-bit in the GEMM convolutions, 8-bit in the depthwise ones
    q = onnx.load(str(out))
    prod = {o: n for n in q.graph.node for o in n.output}
    qi = {i.name: i for i in q.graph.initializer}
    for n in q.graph.node:
        if n.op_type != "Conv":
            continue
        dq = prod[n.input[1]]
        w = nh.to_array(qi[dq.input[0]])
        dw = next((a.i for a in n.attribute if a.name == "group"), 1) > 1
        lim = 127 if dw else 64
        assert w.dtype == np.int8 and np.abs(w.astype(int)).max() <= lim, (n.name, w.min(), w.max())
    return out


def check(fp32, int8, faces):
    x = np.stack([spec_crop(img, d) for img, d, _ in faces])
    a, b = session(fp32), session(int8)
    d0, g0, a0 = a.run(["descriptor", "gender", "age"], {"input": x})
    d1, g1, a1 = b.run(["descriptor", "gender", "age"], {"input": x})
    cos = 1 - (d0.astype(np.float64) * d1).sum(1)
    same = int(((g0[:, 0] > .5) == (g1[:, 0] > .5)).sum())
    dp = np.abs(g0[:, 0] - g1[:, 0])
    da = np.abs(a0 - a1)[:, 0]
    xb = x[:1]
    ts = {0: [], 1: []}
    for s in (a, b):
        for _ in range(10):
            s.run(None, {"input": xb})
    for _ in range(50):
        for k, s in enumerate((a, b)):
            t0 = time.perf_counter()
            s.run(None, {"input": xb})
            ts[k].append(time.perf_counter() - t0)
    t32, t8 = (float(np.median(ts[k])) * 1e3 for k in (0, 1))
    say(f"check on {len(x)} faces: gender decision the same on {same}/{len(x)}; P(male) difference max {dp.max():.3f}; "
        f"age difference mean {da.mean():.2f} max {da.max():.2f} years; descriptor cosine distance to fp32 median "
        f"{np.median(cos):.4f} max {cos.max():.4f}; one face on one thread: fp32 {t32:.2f} ms, int8 {t8:.2f} ms ({t32 / t8:.2f}x)")
    return (same == len(x) and dp.max() < 0.15 and da.max() < 7 and da.mean() < 1.5 and np.median(cos) < 0.02
            and cos.max() < 0.05 and t8 < t32)


def stage_two():
    ap = argparse.ArgumentParser()
    ap.add_argument("--stage-two", action="store_true")
    ap.add_argument("--work", type=pathlib.Path, required=True)
    ap.add_argument("--human", type=pathlib.Path, required=True)
    ap.add_argument("--faceapi", type=pathlib.Path, required=True)
    ap.add_argument("--calibration", choices=("heldout", "all"), default="heldout")
    ap.add_argument("--compare-calibrations", action="store_true")
    args = ap.parse_args()
    fp32 = HERE / "hm_faceres.onnx"
    if sha256(fp32) != FP32_SHA256:
        say(f"note: {fp32} is not the file this script was made for ({FP32_SHA256[:12]}...)")
    say(f"onnxruntime {ort.__version__}, onnx {onnx.__version__}, numpy {np.__version__}, opencv {cv2.__version__}")
    work, out = args.work, args.work / INT8
    det = Detector(HERE / "mp_face_detection_full_range.onnx")
    faces = find_faces(det, args.faceapi, args.human)
    xs = calibration_inputs(faces, args.calibration)
    n_held = sum(t.endswith("-heldout") for _, _, t in faces)
    say(f"{len(faces)} faces found ({n_held} held out); calibration '{args.calibration}': {len(xs)} inputs")
    quantize(fp32, work, xs, out)
    new = sha256(out)
    say(f"{out}: sha256 {new}")
    if args.compare_calibrations:
        other = "all" if args.calibration == "heldout" else "heldout"
        o = quantize(fp32, work, calibration_inputs(faces, other), work / f"int8_{other}.onnx")
        say(f"calibration '{other}' ({len(calibration_inputs(faces, other))} inputs): sha256 {sha256(o)} "
            + ("(the same file)" if sha256(o) == new else "(DIFFERENT)"))
    if args.calibration == "heldout":
        say("identical to the expected file" if new == EXPECTED_SHA256 else f"differs from the expected {EXPECTED_SHA256}")
    if not check(fp32, out, faces):
        say("FAILED: the INT8 network does not meet the check (see above)")
        return 3
    say("check passed")
    return 0


if __name__ == "__main__":
    sys.exit(stage_two())
