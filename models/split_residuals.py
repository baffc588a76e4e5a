"""Rewrite BlazeFace's channel-padded residuals so that ONNX Runtime keeps the network in its blocked layout.

    python3 models/split_residuals.py IN.onnx OUT.onnx

Where a BlazeFace block widens the network, its shortcut is the block's input padded with zero
channels: Relu(Add(Pad(x, channels C -> C + P), Conv(z, W, b))). ONNX Runtime's CPU provider runs
convolutions in a blocked channel layout (NCHWc) but has no blocked Pad, so at each such block it
converts the tensors back to plain NCHW, adds and clips them unfused, and converts again, and every
later residual of the stage does the same because its shortcut is now a plain tensor. The padded
channels only ever add zero, so the block is rewritten as

    Concat(Relu(Conv(z, W[:C], b[:C]) + x), Relu(Conv(z, W[C:], b[C:])))

the same arithmetic (the convolution split by output channels), which ONNX Runtime runs blocked
all through, the additions and clips fused into the convolutions. It needs C and P to be multiples
of the blocked layout's width (8 or 16) to stay blocked; otherwise it is still correct, only not
faster. Used by `rebuild.py` on the full-range detector; see README.md for what it measured.
"""
import sys

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
    if pad.input[1] not in init or _attr(pad, "mode", b"constant") != b"constant":
        return None
    pads = numpy_helper.to_array(init[pad.input[1]])
    if pads.shape != (8,) or any(int(v) for i, v in enumerate(pads) if i != 5) or pads[5] <= 0:
        return None
    if len(pad.input) > 2 and pad.input[2]:
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
        if (conv is None or conv.op_type != "Conv" or len(conv.input) < 3 or len(users[other]) != 1
                or conv.input[1] not in init or conv.input[2] not in init
                or len(relus) != 1 or relus[0].op_type != "Relu"
                or {pad.output[0], other, add.output[0]} & outputs):
            continue
        relu = relus[0]
        w, b = numpy_helper.to_array(init[conv.input[1]]), numpy_helper.to_array(init[conv.input[2]])
        kept = w.shape[0] - extra
        if kept <= 0:
            continue
        key = f"{conv.output[0]}__split"
        nodes = []
        for part, rows in (("kept", slice(0, kept)), ("new", slice(kept, None))):
            g.initializer.extend([numpy_helper.from_array(np.ascontiguousarray(w[rows]), f"{key}_{part}_w"),
                                  numpy_helper.from_array(np.ascontiguousarray(b[rows]), f"{key}_{part}_b")])
            c = helper.make_node("Conv", [conv.input[0], f"{key}_{part}_w", f"{key}_{part}_b"], [f"{key}_{part}"],
                                 name=f"{conv.name}_{part}")
            c.attribute.extend(conv.attribute)
            nodes.append(c)
        nodes += [
            helper.make_node("Add", [pad.input[0], f"{key}_kept"], [f"{key}_sum"], name=f"{add.name}_kept"),
            helper.make_node("Relu", [f"{key}_sum"], [f"{key}_kept_relu"], name=f"{relu.name}_kept"),
            helper.make_node("Relu", [f"{key}_new"], [f"{key}_new_relu"], name=f"{relu.name}_new"),
            helper.make_node("Concat", [f"{key}_kept_relu", f"{key}_new_relu"], [relu.output[0]],
                             name=f"{relu.name}_concat", axis=1),
        ]
        for n in (pad, add, conv):
            replaced[id(n)] = []
        replaced[id(relu)] = nodes
        rewritten += 1
    kept_nodes = []
    for n in g.node:
        kept_nodes.extend(replaced.get(id(n), [n]))
    del g.node[:]
    g.node.extend(kept_nodes)
    used = {i for n in g.node for i in n.input}
    unused = [i for i in g.initializer if i.name not in used]
    for i in unused:
        g.initializer.remove(i)
    onnx.checker.check_model(model)
    return rewritten


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    model = onnx.load(sys.argv[1])
    n = split_padded_residuals(model)
    onnx.save(model, sys.argv[2])
    print(f"{sys.argv[1]}: {n} channel-padded residuals split -> {sys.argv[2]}")


if __name__ == "__main__":
    main()
