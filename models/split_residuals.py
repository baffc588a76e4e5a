"""Rewrite BlazeFace's channel-padded residuals so that ONNX Runtime keeps the network in its blocked layout.

    python3 models/split_residuals.py IN.onnx OUT.onnx [--expect N]   # N: fail unless N blocks were split
    python3 models/split_residuals.py --compare A.onnx B.onnx         # outputs and one-thread timing of two files

Where a BlazeFace block widens the network, its shortcut is the block's input padded with zero
channels: Relu(Add(Pad(x, channels C -> C + P), Conv(z, W, b))). ONNX Runtime's CPU provider runs
convolutions in a blocked channel layout (NCHWc) but has no blocked Pad, so at each such block it
converts the tensors back to plain NCHW, runs the addition and the Relu unfused, and converts
again, and every later residual of the stage does the same because its shortcut is now a plain
tensor. The padded channels only ever add zero, so the block is rewritten as

    Concat(Relu(Conv(z, W[:C], b[:C]) + x), Relu(Conv(z, W[C:], b[C:])))

the same arithmetic (the convolution split by output channels), which ONNX Runtime keeps blocked,
the addition and the Relus fused into the convolutions. C and P must be multiples of the blocked
layout's width (8 with AVX2, 16 with AVX-512) for the block to stay blocked; otherwise the rewrite
is still correct, only not faster. Only a plain convolution (group 1) and a constant Pad that
names no axes are rewritten; anything else is left as it is. `rebuild.py` runs it on the
full-range detector; what it measured is in models/README.md.

Needs python3 with onnx and numpy (and onnxruntime for --compare); `rebuild.py` runs it in its
own virtual environment. Not run in CI.
"""
import argparse

import numpy as np
import onnx
from onnx import helper, numpy_helper


def _attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _channel_padding(pad, init):
    """P when `pad` adds P zero channels after the others of a 4-d tensor and nothing else, else None."""
    # Pads as an attribute (before opset 11) or on named axes (opset 18's fourth input) are not
    # this pattern: the index of the channels' end padding would mean something else.
    if not 2 <= len(pad.input) <= 3 or pad.input[1] not in init:
        return None
    if _attr(pad, "mode", b"constant") != b"constant":
        return None
    pads = numpy_helper.to_array(init[pad.input[1]])
    if pads.shape != (8,) or any(int(v) for i, v in enumerate(pads) if i != 5) or pads[5] <= 0:
        return None
    if len(pad.input) == 3 and pad.input[2]:
        if pad.input[2] not in init or np.any(numpy_helper.to_array(init[pad.input[2]])):
            return None
    return int(pads[5])


def split_padded_residuals(model):
    """Rewrites `model` in place; returns how many blocks were rewritten."""
    g = model.graph
    init = {i.name: i for i in g.initializer}
    users, producer = {}, {}
    for n in g.node:
        for i in n.input:
            users.setdefault(i, []).append(n)
        for o in n.output:
            producer[o] = n
    outputs = {o.name for o in g.output}
    taken = set(init) | {o for n in g.node for o in n.output} | {n.name for n in g.node}
    replaced, rewritten = {}, 0
    for pad in g.node:
        if pad.op_type != "Pad":
            continue
        extra = _channel_padding(pad, init)
        after = users.get(pad.output[0], [])
        if extra is None or len(after) != 1 or after[0].op_type != "Add":
            continue
        add = after[0]
        other = add.input[1] if add.input[0] == pad.output[0] else add.input[0]
        conv = producer.get(other)
        relus = users.get(add.output[0], [])
        # Split by output channels, a grouped convolution would read other inputs per channel.
        if (conv is None or conv.op_type != "Conv" or _attr(conv, "group", 1) != 1
                or len(conv.input) < 3 or len(users[other]) != 1
                or conv.input[1] not in init or conv.input[2] not in init
                or len(relus) != 1 or relus[0].op_type != "Relu"
                or {pad.output[0], other, add.output[0]} & outputs):
            continue
        relu = relus[0]
        w, b = numpy_helper.to_array(init[conv.input[1]]), numpy_helper.to_array(init[conv.input[2]])
        kept = w.shape[0] - extra
        if kept <= 0:
            continue
        n = {s: f"{conv.output[0]}__split_{s}" for s in ("kept_w", "kept_b", "new_w", "new_b", "kept", "new",
                                                           "sum", "kept_relu", "new_relu", "kept_conv", "new_conv",
                                                           "add", "concat")}
        if taken & set(n.values()):
            continue
        taken |= set(n.values())
        nodes = []
        for part, rows in (("kept", slice(0, kept)), ("new", slice(kept, None))):
            g.initializer.extend([numpy_helper.from_array(np.ascontiguousarray(w[rows]), n[part + "_w"]),
                                  numpy_helper.from_array(np.ascontiguousarray(b[rows]), n[part + "_b"])])
            c = helper.make_node("Conv", [conv.input[0], n[part + "_w"], n[part + "_b"]], [n[part]],
                                 name=n[part + "_conv"])
            c.attribute.extend(conv.attribute)
            nodes.append(c)
        nodes += [
            helper.make_node("Add", [pad.input[0], n["kept"]], [n["sum"]], name=n["add"]),
            helper.make_node("Relu", [n["sum"]], [n["kept_relu"]], name=n["kept_relu"]),
            helper.make_node("Relu", [n["new"]], [n["new_relu"]], name=n["new_relu"]),
            helper.make_node("Concat", [n["kept_relu"], n["new_relu"]], [relu.output[0]], name=n["concat"], axis=1),
        ]
        for old in (pad, add, conv):
            replaced[id(old)] = []
        # The new nodes take the Relu's place: everything they read is computed before it.
        replaced[id(relu)] = nodes
        rewritten += 1
    kept_nodes = []
    for n in g.node:
        kept_nodes.extend(replaced.get(id(n), [n]))
    del g.node[:]
    g.node.extend(kept_nodes)
    used = {i for n in g.node for i in n.input}
    for i in [i for i in g.initializer if i.name not in used]:
        g.initializer.remove(i)
    # The full check infers shapes: halves that do not line up fail here, not when loaded.
    onnx.checker.check_model(model, full_check=True)
    return rewritten


def compare(a_path, b_path, rounds=15, runs=50):
    """Largest output differences on seeded inputs, and medians of interleaved one-thread timings."""
    import time

    import onnxruntime as ort

    def session(path):
        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads = 1, 1
        return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])

    a, b = session(a_path), session(b_path)
    inp = a.get_inputs()[0]
    shape = [d if isinstance(d, int) and d > 0 else 1 for d in inp.shape]
    rng = np.random.default_rng(1)
    diff = {}
    for _ in range(20):
        x = {inp.name: rng.uniform(-1, 1, shape).astype(np.float32)}
        for o, ra, rb in zip(a.get_outputs(), a.run(None, x), b.run(None, x)):
            diff[o.name] = max(diff.get(o.name, 0.0), float(np.abs(ra - rb).max()))
    times = {a_path: [], b_path: []}
    for _ in range(rounds):
        for path, s in ((a_path, a), (b_path, b)):
            t = time.perf_counter()
            for _ in range(runs):
                s.run(None, x)
            times[path].append((time.perf_counter() - t) / runs * 1000)
    ta, tb = (float(np.median(times[p])) for p in (a_path, b_path))
    print(f"max differences {diff}")
    print(f"one thread, medians of {rounds} interleaved rounds of {runs} runs: {a_path} {ta:.3f} ms, "
          f"{b_path} {tb:.3f} ms ({tb / ta:.2f}x)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--expect", type=int, help="fail unless this many blocks were split")
    ap.add_argument("--compare", action="store_true", help="compare the two files instead of rewriting")
    args = ap.parse_args()
    if args.compare:
        return compare(args.input, args.output)
    model = onnx.load(args.input)
    n = split_padded_residuals(model)
    if args.expect is not None and n != args.expect:
        ap.exit(1, f"{args.input}: {n} channel-padded residuals found, {args.expect} expected "
                   "(the converter's graph changed?)\n")
    onnx.save(model, args.output)
    print(f"{args.input}: {n} channel-padded residuals split -> {args.output}")


if __name__ == "__main__":
    main()
