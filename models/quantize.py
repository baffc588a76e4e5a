#!/usr/bin/env python3
"""Makes faceapi_age_gender_int8.onnx from faceapi_age_gender.onnx, and checks it.

    python3 models/quantize.py [--work DIR]

Why: the face-api.js age/gender network is most of the plugin's model time (about 2 ms a face on
one core here). Its convolutions in INT8 (QDQ, per-channel 7-bit weights) run 1.3x (AVX2) to 2x (VNNI) faster with
ONNX Runtime's CPU kernels, and its decisions stay those of the fp32 network (see the check).

Steps (each says what it does):
  1. a virtual environment in DIR/venv with onnx, onnxruntime 1.31.1, numpy, opencv-python-headless;
  2. faces: the fp32 BlazeFace detector of models/ finds them, and each is cropped as the plugin
     does (square of 1.3x the larger box side, whole pixels, border repeated; area resize to 112,
     RGB). Calibration faces: the six group photos of npm @vladmandic/face-api 1.7.15 (demo/),
     tests/data/astronaut.png and frames of tests/data/astronaut-pan.mp4. Check faces, none of
     them used for calibration: the 108-face grid and the sample montage of npm @vladmandic/human
     3.3.6 (assets/screenshot-facematch.jpg, assets/samples.jpg), men and women of many ages;
  3. static quantisation (MinMax calibration, QDQ, uint8 activations, int8 per-channel weights
     in 7 bits: `reduce_range`) of everything up to the global pooling; the two small heads
     (gender softmax, age regression) stay fp32: quantising them moved some ages by 19 years.
     Then the input's mean and scale are rewritten into a form ONNX Runtime runs fast
     (`fast_front`: the network 1.15x faster);
  4. the check: on the check faces the INT8 network must give the same gender decision as fp32 on
     every face, female probability within 0.15, age within 7 years (mean within 1.5), and run
     faster than fp32 on one thread. Then the file is compared with the one in models/.

Why 7-bit weights: on x86 CPUs with AVX2 but without VNNI, ONNX Runtime multiplies uint8 by int8
with VPMADDUBSW, which adds pairs of products into 16 bits and saturates: with 8-bit weights the
network built here called the astronaut male and moved ages by up to 30 years on such a machine
(81/83 gender decisions kept), while on a VNNI machine it matched fp32. With 7-bit weights no
pair can saturate, and the results are the same on both kinds of CPU.

Needs python3 (3.11), pip and npm, and about 150 MB of disk. Not run in CI.
"""
import argparse
import pathlib
import subprocess
import sys
import tarfile
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import rebuild  # noqa: E402  (its command runner, checksum and virtual environment helpers)

ROOT = HERE.parent
FP32 = HERE / "faceapi_age_gender.onnx"
INT8 = "faceapi_age_gender_int8.onnx"
PACKAGES = ["onnx==1.16.2", "onnxruntime==1.31.1", "numpy<2", "opencv-python-headless==4.10.0.84", "ml_dtypes"]


def say(msg):
    print(f"[quantize] {msg}", flush=True)


# rebuild's helpers report through its `say`: make them speak as this script.
rebuild.say = say
run = rebuild.run


def npm_file(work, spec, inner):
    """Extracts package/<inner> of an npm package (npm pack) into work/."""
    name = spec.split("@")[1].split("/")[1] if spec.startswith("@") else spec
    dest = work / name / inner
    if not dest.exists():
        (work / name).mkdir(parents=True, exist_ok=True)
        run(["npm", "pack", "--silent", spec], cwd=work / name, stdout=subprocess.DEVNULL)
        tgz = next((work / name).glob("*.tgz"))
        with tarfile.open(tgz) as t:
            member = t.getmember("package/" + inner)
            member.name = inner
            t.extract(member, work / name)
    return dest


INNER = r'''
import sys, time, pathlib, numpy as np, cv2, onnx, onnxruntime as ort
from onnxruntime.quantization import quantize_static, QuantFormat, QuantType, CalibrationDataReader
from onnxruntime.quantization.shape_inference import quant_pre_process
models, work, out = map(pathlib.Path, sys.argv[1:4]); cal_imgs, check_imgs, pan = sys.argv[4], sys.argv[5], sys.argv[6]

def session(path):
    o = ort.SessionOptions(); o.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), o, providers=["CPUExecutionProvider"])

det = session(models / "mp_face_detection_full_range.onnx")
S = 192
ANCHORS = np.array([[(j + .5) / 48, (i + .5) / 48] for i in range(48) for j in range(48)])

def detect(img, thr=0.6):
    H, W = img.shape[:2]; side = max(W, H); px = (side - W) // 2; py = (side - H) // 2
    sq = cv2.copyMakeBorder(img, py, side - H - py, px, side - W - px, cv2.BORDER_CONSTANT, value=0)
    x = cv2.resize(sq, (S, S), interpolation=cv2.INTER_AREA)[:, :, ::-1].astype(np.float32) / 127.5 - 1
    reg, cls = det.run(None, {"input": x[None]})
    reg = reg[0]; sc = 1 / (1 + np.exp(-np.clip(cls[0, :, 0], -80, 80)))
    boxes = []
    for k in np.where(sc > thr)[0]:
        r = reg[k]; cx = r[0] / S + ANCHORS[k, 0]; cy = r[1] / S + ANCHORS[k, 1]; w = r[2] / S; h = r[3] / S
        boxes.append([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2, sc[k]])
    boxes = np.array(boxes).reshape(-1, 5)
    def iou(p, q):
        ix = max(0, min(p[2], q[2]) - max(p[0], q[0])); iy = max(0, min(p[3], q[3]) - max(p[1], q[1])); i = ix * iy
        return i / ((p[2] - p[0]) * (p[3] - p[1]) + (q[2] - q[0]) * (q[3] - q[1]) - i)
    order = list(np.argsort(-boxes[:, 4])); out = []
    while order:
        t = boxes[order[0]]; cl = [o for o in order if o == order[0] or iou(t, boxes[o]) > 0.3]
        ws = boxes[cl, 4]; b = (boxes[cl, :4] * ws[:, None]).sum(0) / ws.sum()
        out.append(b * side - [px, py, px, py]); order = [o for o in order if o not in cl]
    return out

def crops(img):
    res = []
    for b in detect(img):
        cx = (b[0] + b[2]) / 2; cy = (b[1] + b[3]) / 2; s = 1.3 * max(b[2] - b[0], b[3] - b[1])
        x0 = int(round(cx - s / 2)); y0 = int(round(cy - s / 2)); n = max(1, int(round(s)))
        big = cv2.copyMakeBorder(img, n, n, n, n, cv2.BORDER_REPLICATE)
        c = big[y0 + n:y0 + 2 * n, x0 + n:x0 + 2 * n]
        res.append(cv2.resize(c, (112, 112), interpolation=cv2.INTER_AREA)[:, :, ::-1].astype(np.float32))
    return res

cal = []
for p in cal_imgs.split(","):
    cal += crops(cv2.imread(p))
cap = cv2.VideoCapture(pan); i = 0
while True:
    ok, f = cap.read()
    if not ok: break
    if i % 20 == 0: cal += crops(f)
    i += 1
check = []
for p in check_imgs.split(","):
    img = cv2.imread(p)
    if p.endswith("screenshot-facematch.jpg"):
        # A grid of 6 x 18 face thumbnails below y = 283: one detector pass per thumbnail.
        ch = (img.shape[0] - 283) / 6; cw = img.shape[1] / 18
        for r in range(6):
            for c in range(18):
                check += crops(img[int(283 + r * ch):int(283 + (r + 1) * ch), int(c * cw):int((c + 1) * cw)].copy())
    else:
        check += crops(img)
print(f"[quantize] {len(cal)} calibration faces, {len(check)} check faces", flush=True)

pre = work / "pre.onnx"
quant_pre_process(str(models / "faceapi_age_gender.onnx"), str(pre), skip_symbolic_shape=True)
m = onnx.load(str(pre))
for i, n in enumerate(m.graph.node):
    if not n.name:
        n.name = f"{n.op_type}_{i}"
onnx.save(m, str(pre))
pool = [i for i, n in enumerate(m.graph.node) if n.op_type == "GlobalAveragePool"][0]
heads = [n.name for n in m.graph.node[pool:]]

class Reader(CalibrationDataReader):
    def __init__(self, xs): self.it = iter([{"input": x[None]} for x in xs])
    def get_next(self): return next(self.it, None)

quantize_static(str(pre), str(out), Reader(cal), quant_format=QuantFormat.QDQ, per_channel=True,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=heads,
                reduce_range=True)

def fast_front(path):
    """The network opens with Transpose(NHWC -> NCHW), Sub(mean [1,3,1,1]), Mul(1/255). For the INT8
    kernels ONNX Runtime moves the transpose below the Sub, which then broadcasts a 3-vector over
    NHWC data, three values at a time: 13 % of the INT8 network's time. Here the mean is tiled to
    the input's size (one long broadcast over the batch), and the 1/255 goes into the input's
    quantisation scale (integers unchanged, one rounding fewer): Sub -> Q -> Transpose."""
    m = onnx.load(str(path)); g = m.graph
    inits = {i.name: i for i in g.initializer}
    val = lambda n: onnx.numpy_helper.to_array(inits[n])
    by_input = lambda name: [n for n in g.node if name in n.input]
    t, = [n for n in g.node if n.op_type == "Transpose" and n.input[0] == "input"]
    sub, = by_input(t.output[0]); q1, = by_input(sub.output[0]); dq1, = by_input(q1.output[0])
    mul, = by_input(dq1.output[0]); q2, = by_input(mul.output[0])
    assert (sub.op_type, q1.op_type, dq1.op_type, mul.op_type, q2.op_type) == ("Sub", "QuantizeLinear", "DequantizeLinear", "Mul", "QuantizeLinear")
    dqs, = [n for n in g.node if n.output[0] == mul.input[1]]
    s = float((val(dqs.input[0]).astype(np.float32) - val(dqs.input[2])) * val(dqs.input[1]))
    mean = val(sub.input[1]).reshape(1, 1, 1, 3)
    h, w = [d.dim_value for d in g.input[0].type.tensor_type.shape.dim[1:3]]
    g.initializer.extend([onnx.numpy_helper.from_array(np.ascontiguousarray(np.broadcast_to(mean, (1, h, w, 3)), np.float32), "mean_nhwc"),
                          onnx.numpy_helper.from_array(np.array(float(val(q2.input[1])) / s, np.float32), "input_scale")])
    front = [onnx.helper.make_node("Sub", ["input", "mean_nhwc"], ["input_centred"], name="front_sub"),
             onnx.helper.make_node("QuantizeLinear", ["input_centred", "input_scale", q2.input[2]], ["input_q"], name="front_q"),
             onnx.helper.make_node("Transpose", ["input_q"], [q2.output[0]], perm=[0, 3, 1, 2], name="front_transpose")]
    gone = {id(n) for n in (t, sub, q1, dq1, mul, q2, dqs)}
    rest = [n for n in g.node if id(n) not in gone]
    del g.node[:]; g.node.extend(front + rest)
    used = {i for n in g.node for i in n.input}
    for i in list(g.initializer):
        if i.name not in used:
            g.initializer.remove(i)
    onnx.checker.check_model(m)
    onnx.save(m, str(path))

fast_front(out)

x = np.stack(check)
f32, i8 = session(models / "faceapi_age_gender.onnx"), session(out)
g0, a0 = f32.run(["gender", "age"], {"input": x}); g1, a1 = i8.run(["gender", "age"], {"input": x})
agree = int(((g0[:, 1] >= .5) == (g1[:, 1] >= .5)).sum()); dp = np.abs(g0[:, 1] - g1[:, 1]); da = np.abs(a0 - a1)[:, 0]
def timing(s):
    b = x[:4]; s.run(None, {"input": b}); t = []
    for _ in range(30):
        t0 = time.perf_counter(); s.run(None, {"input": b}); t.append(time.perf_counter() - t0)
    return float(np.median(t)) * 1e3
t32, t8 = timing(f32), timing(i8)
print(f"[quantize] check: gender decision the same on {agree}/{len(x)} faces; female probability "
      f"difference mean {dp.mean():.3f} max {dp.max():.3f}; age difference mean {da.mean():.2f} max {da.max():.2f} years; "
      f"4 faces on one thread: fp32 {t32:.2f} ms, int8 {t8:.2f} ms ({t32 / t8:.2f}x)", flush=True)
ok = agree == len(x) and dp.max() < 0.15 and da.max() < 7 and da.mean() < 1.5 and t8 < t32
sys.exit(0 if ok else 3)
'''


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=pathlib.Path, help="working folder (default: a temporary one)")
    args = ap.parse_args()
    work = args.work or pathlib.Path(tempfile.mkdtemp(prefix="faceemotion-quantize-"))
    work.mkdir(parents=True, exist_ok=True)
    py = rebuild.ensure_venv(work, PACKAGES)
    samples = [npm_file(work, "@vladmandic/face-api@1.7.15", f"demo/sample{i}.jpg") for i in range(1, 7)]
    cal = [str(p) for p in samples] + [str(ROOT / "tests/data/astronaut.png")]
    check = [str(npm_file(work, "@vladmandic/human@3.3.6", f"assets/{n}")) for n in ("screenshot-facematch.jpg", "samples.jpg")]
    out = work / INT8
    script = work / "inner.py"
    script.write_text(INNER)
    say("calibrating, quantising and checking")
    r = subprocess.run([str(py), str(script), str(HERE), str(work), str(out), ",".join(cal), ",".join(check),
                        str(ROOT / "tests/data/astronaut-pan.mp4")])
    if r.returncode == 3:
        say("FAILED: the INT8 network does not meet the check (see above)")
        return 1
    if r.returncode != 0:
        say(f"FAILED: the quantisation step exited with {r.returncode}")
        return 1
    new = rebuild.sha256(out)
    shipped = HERE / INT8
    old = rebuild.sha256(shipped) if shipped.exists() else None
    if new == old:
        say(f"{INT8}: identical to the one in models/ ({new})")
    else:
        say(f"{INT8}: sha256 {new} differs from models/ ({old}); copy {out} into models/ to ship it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
