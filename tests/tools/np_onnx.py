#!/usr/bin/python3
"""A tiny, slow numpy interpreter for the ONNX ops the e2e models use (onnx 1.12 has no
reference evaluator and there is no onnxruntime here). It exists to check the test
FIXTURES: that each exported model.onnx computes what torch computed (make_models.py
--verify), independently of torch. It is not an oracle for lowbit's conformance.

    np_onnx.py model.onnx input_0.pb ... [-o outdir/]   # prints output stats / writes .pb
"""
import math
import os
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _attrs(node):
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _pads2(x, pads, value=0.0):
    n = len(pads) // 2
    width = [(0, 0)] * (x.ndim - n) + [(pads[i], pads[i + n]) for i in range(n)]
    return np.pad(x, width, mode="constant", constant_values=value)


def _windows(x, kernel, strides, dilations=None):
    """[N, C, *out, *kernel] view of a padded NCHW... tensor."""
    nd = len(kernel)
    dilations = dilations or [1] * nd
    out = [(x.shape[2 + i] - (dilations[i] * (kernel[i] - 1) + 1)) // strides[i] + 1
           for i in range(nd)]
    shape = x.shape[:2] + tuple(out) + tuple(kernel)
    st = x.strides[:2] + tuple(x.strides[2 + i] * strides[i] for i in range(nd)) + \
        tuple(x.strides[2 + i] * dilations[i] for i in range(nd))
    return np.lib.stride_tricks.as_strided(x, shape, st, writeable=False)


def _conv(x, w, b, a):
    nd = x.ndim - 2
    pads = a.get("pads", [0] * 2 * nd)
    strides = a.get("strides", [1] * nd)
    dil = a.get("dilations", [1] * nd)
    group = a.get("group", 1)
    xp = _pads2(x, pads)
    win = _windows(xp, list(w.shape[2:]), strides, dil)  # N, C, *out, *k
    N, C = x.shape[:2]
    M = w.shape[0]
    cg, mg = C // group, M // group
    outs = []
    axes = tuple(range(2 + nd, 2 + 2 * nd))
    for gi in range(group):
        wi = w[gi * mg:(gi + 1) * mg]  # mg, cg, *k
        xi = win[:, gi * cg:(gi + 1) * cg]  # N, cg, *out, *k
        y = np.tensordot(xi, wi, axes=([1] + list(axes), [1] + list(range(2, 2 + nd))))
        outs.append(np.moveaxis(y, -1, 1))  # N, mg, *out
    y = np.concatenate(outs, axis=1)
    if b is not None:
        y = y + b.reshape((1, -1) + (1,) * nd)
    return y.astype(x.dtype)


def _pool(x, a, kind):
    k = a["kernel_shape"]
    nd = len(k)
    pads = a.get("pads", [0] * 2 * nd)
    strides = a.get("strides", [1] * nd)
    assert not a.get("ceil_mode", 0) and a.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET")
    axes = tuple(range(2 + nd, 2 + 2 * nd))
    if kind == "max":
        win = _windows(_pads2(x, pads, -np.inf), k, strides)
        return win.max(axis=axes)
    win = _windows(_pads2(x, pads), k, strides)
    s = win.sum(axis=axes)
    if a.get("count_include_pad", 0) or not any(pads):
        return (s / np.prod(k)).astype(x.dtype)
    ones = _windows(_pads2(np.ones_like(x), pads), k, strides).sum(axis=axes)
    return (s / ones).astype(x.dtype)


def _slice(x, starts, ends, axes=None, steps=None):
    axes = list(range(len(starts))) if axes is None else [int(v) for v in axes]
    steps = [1] * len(starts) if steps is None else [int(v) for v in steps]
    sl = [slice(None)] * x.ndim
    for s, e, ax, st in zip(starts, ends, axes, steps):
        ax = ax % x.ndim
        sl[ax] = slice(int(max(min(s, 2**62), -2**62)), int(max(min(e, 2**62), -2**62)), st)
    return x[tuple(sl)]


def run_node(op, ins, a, node):
    f = {
        "Add": lambda: ins[0] + ins[1], "Sub": lambda: ins[0] - ins[1],
        "Mul": lambda: ins[0] * ins[1],
        "Div": lambda: (ins[0] // ins[1]) if ins[0].dtype.kind in "iu" else ins[0] / ins[1],
        "Pow": lambda: np.power(ins[0], ins[1]).astype(ins[0].dtype),
        "Sqrt": lambda: np.sqrt(ins[0]), "Neg": lambda: -ins[0],
        "Erf": lambda: _erf(ins[0]).astype(ins[0].dtype), "Tanh": lambda: np.tanh(ins[0]),
        "Sigmoid": lambda: (1 / (1 + np.exp(-ins[0]))).astype(ins[0].dtype),
        "Relu": lambda: np.maximum(ins[0], 0).astype(ins[0].dtype),
        "Cos": lambda: np.cos(ins[0]), "Sin": lambda: np.sin(ins[0]),
        "Identity": lambda: ins[0], "Equal": lambda: ins[0] == ins[1],
        "Where": lambda: np.where(ins[0], ins[1], ins[2]),
        "MatMul": lambda: np.matmul(ins[0], ins[1]),
        "Shape": lambda: np.array(ins[0].shape, np.int64),
        "Reshape": lambda: ins[0].reshape([ins[0].shape[i] if v == 0 else v
                                           for i, v in enumerate(ins[1].tolist())]),
        "Transpose": lambda: np.transpose(ins[0], a.get("perm")),
        "Concat": lambda: np.concatenate(ins, axis=a["axis"]),
        "Gather": lambda: np.take(ins[0], ins[1], axis=a.get("axis", 0)),
        "Unsqueeze": lambda: np.expand_dims(ins[0], tuple(
            v % (ins[0].ndim + len(ins[1])) for v in ins[1].tolist())),
        "Squeeze": lambda: np.squeeze(ins[0], tuple(ins[1].tolist()) if len(ins) > 1 else None),
        "Flatten": lambda: ins[0].reshape(int(np.prod(ins[0].shape[:a.get("axis", 1)])), -1),
        "Expand": lambda: ins[0] * np.ones(ins[1].tolist(), ins[0].dtype),
        "Cast": lambda: ins[0].astype(helper.tensor_dtype_to_np_dtype(a["to"])
                                      if hasattr(helper, "tensor_dtype_to_np_dtype") else
                                      onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[a["to"]]),
        "Range": lambda: np.arange(ins[0], ins[1], ins[2]).astype(ins[0].dtype),
        "ConstantOfShape": lambda: np.full(ins[0].tolist(), numpy_helper.to_array(a["value"])[0]
                                           if "value" in a else np.float32(0)),
        "Trilu": lambda: (np.triu if a.get("upper", 1) else np.tril)(
            ins[0], int(ins[1]) if len(ins) > 1 else 0),
        "ReduceMean": lambda: np.mean(ins[0], axis=tuple(a["axes"]) if "axes" in a else None,
                                      keepdims=bool(a.get("keepdims", 1))).astype(ins[0].dtype),
        "Slice": lambda: _slice(ins[0], ins[1].tolist(), ins[2].tolist(),
                                ins[3].tolist() if len(ins) > 3 else None,
                                ins[4].tolist() if len(ins) > 4 else None),
        "Gemm": lambda: ((ins[0].T if a.get("transA", 0) else ins[0])
                         @ (ins[1].T if a.get("transB", 0) else ins[1]) * a.get("alpha", 1.0)
                         + (a.get("beta", 1.0) * ins[2] if len(ins) > 2 else 0)
                         ).astype(ins[0].dtype),
        "Conv": lambda: _conv(ins[0], ins[1], ins[2] if len(ins) > 2 else None, a),
        "MaxPool": lambda: _pool(ins[0], a, "max"),
        "AveragePool": lambda: _pool(ins[0], a, "avg"),
        "GlobalAveragePool": lambda: ins[0].mean(axis=tuple(range(2, ins[0].ndim)),
                                                 keepdims=True),
        "Pad": lambda: _pads2(ins[0], ins[1].tolist(),
                              ins[2] if len(ins) > 2 else 0),
        "HardSigmoid": lambda: np.clip(a.get("alpha", 0.2) * ins[0] + a.get("beta", 0.5),
                                       0, 1).astype(ins[0].dtype),
        "HardSwish": lambda: (ins[0] * np.clip(ins[0] / 6 + 0.5, 0, 1)).astype(ins[0].dtype),
    }.get(op)
    if f is not None:
        return [f()]
    if op == "Constant":
        return [numpy_helper.to_array(a["value"])]
    if op == "Softmax":
        x = ins[0]
        ax = a.get("axis", -1)
        e = np.exp(x - np.max(x, axis=ax, keepdims=True))
        return [(e / e.sum(axis=ax, keepdims=True)).astype(x.dtype)]
    if op == "LayerNormalization":
        x, sc = ins[0], ins[1]
        ax = a.get("axis", -1) % x.ndim
        axes = tuple(range(ax, x.ndim))
        mu = x.mean(axis=axes, keepdims=True)
        var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)
        y = (x - mu) / np.sqrt(var + a.get("epsilon", 1e-5)) * sc
        if len(ins) > 2:
            y = y + ins[2]
        return [y.astype(x.dtype)]
    if op == "BatchNormalization":
        x, sc, b, m, v = ins
        sh = (1, -1) + (1,) * (x.ndim - 2)
        y = (x - m.reshape(sh)) / np.sqrt(v.reshape(sh) + a.get("epsilon", 1e-5)) \
            * sc.reshape(sh) + b.reshape(sh)
        return [y.astype(x.dtype)]
    if op == "Split":
        x = ins[0]
        ax = a.get("axis", 0)
        n = len(node.output)
        sizes = ins[1].tolist() if len(ins) > 1 else [x.shape[ax] // n] * n
        return np.split(x, np.cumsum(sizes)[:-1], axis=ax)
    raise NotImplementedError(f"np_onnx: op {op}")


def run_model(model, inputs):
    """model: ModelProto; inputs: list of arrays for the non-initializer graph inputs."""
    g = model.graph
    env = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    names = [vi.name for vi in g.input if vi.name not in env]
    env.update(zip(names, inputs))
    for n in g.node:
        ins = [env[i] if i else None for i in n.input]
        while ins and ins[-1] is None:
            ins.pop()
        outs = run_node(n.op_type, ins, _attrs(n), n)
        for name, v in zip(n.output, outs):
            if name:
                env[name] = np.asarray(v)
    return [env[o.name] for o in g.output]


def main():
    import compare as cmp
    argv = sys.argv[1:]
    outdir = None
    if "-o" in argv:
        k = argv.index("-o")
        outdir = argv[k + 1]
        argv = argv[:k] + argv[k + 2:]
    model = onnx.load(argv[0])
    outs = run_model(model, [cmp.load_tensor(p) for p in argv[1:]])
    for k, (vi, v) in enumerate(zip(model.graph.output, outs)):
        if outdir:
            os.makedirs(outdir, exist_ok=True)
            cmp.save_tensor(os.path.join(outdir, f"output_{k}.pb"), v, vi.name)
        else:
            print(f"{vi.name}: {v.dtype} {list(v.shape)}")


if __name__ == "__main__":
    main()
