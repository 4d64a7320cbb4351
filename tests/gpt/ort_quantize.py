#!/usr/bin/python3
"""Emulation of onnxruntime 1.30's quantize_static (QDQ, MinMax) and quantize_dynamic with their
default options, for machines without the onnxruntime Python package (this one has none).

    /usr/bin/python3 tests/gpt/ort_quantize.py MODEL.onnx OUTDIR [--calib-windows N] [--qoperator]

writes OUTDIR/gpt_qdq.onnx (static, QDQ) and OUTDIR/gpt_dyn.onnx (dynamic, MatMulInteger), and
with --qoperator OUTDIR/gpt_qop.onnx (static, QOperator form of the MatMuls: QLinearMatMul).

What is reproduced (read from onnxruntime/python/tools/quantization: quantize.py,
qdq_quantizer.py, onnx_quantizer.py, base_quantizer.py, registry.py, operators/*.py,
quant_utils.py; this is our own code):
- static: op types = QLinearOpsRegistry | QDQRegistry keys; MinMax calibration (ReduceMin /
  ReduceMax of every float non-initializer input/output of those nodes, min of mins and max of
  maxes over the samples); activations uint8 asymmetric per tensor, weights int8 symmetric
  [-127, 127] per tensor; compute_scale_zp with the range widened to include 0, the scale
  computed in float64 then rounded to float32, zp = round_half_even(qmin - rmin / scale);
  per-op marking rules (MatMul: inputs and output; Add/Mul/Softmax/...: all inputs and
  outputs; Reshape/Transpose/Unsqueeze/Slice: output shares the input's parameters when the
  input is quantized; Split: input, outputs share; Gather: only when its data is already
  quantized; Where: output when both branches are quantized; LayerNormalization: input,
  scale as weight, bias as int32 with scale = s_in * s_gamma, output); one Q->DQ pair per
  tensor shared by all consumers, weights stored quantized with a DQ only, float initializers
  marked as activations quantized uint8 asymmetric; graph outputs keep their name on the DQ.
- dynamic: IntegerOps with MatMulConstBOnly: MatMul with an initializer B becomes
  DynamicQuantizeLinear(A) -> MatMulInteger(A_q, B_q, A_zp, B_zp) -> Cast -> Mul(A_scale *
  B_scale); B int8 symmetric per tensor; Gather on an initializer table becomes a uint8
  (asymmetric) Gather followed by DequantizeLinear.

One deliberate difference: the fixture masks attention scores with -inf, so MinMax gives the
Softmax input an infinite range (onnxruntime would produce an infinite scale and NaN logits).
Nodes with a non-finite calibrated input or output are put in nodes_to_exclude, as a user of
onnxruntime has to; the script prints them.

Calibration samples: --calib-windows 128-byte windows of the training text
(tests/gpt/train_gpt.py TRAIN_FILES), evenly spaced; the float model is run by a small numpy
interpreter below (the ops of the GPT fixture).
"""
import argparse
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
CTX = 128

QLINEAR_OPS = ["ArgMax", "Conv", "Gemm", "MatMul", "Add", "Mul", "Relu", "Clip", "LeakyRelu",
               "Sigmoid", "MaxPool", "GlobalAveragePool", "Split", "Pad", "Reshape", "Squeeze",
               "Unsqueeze", "Resize", "AveragePool", "Concat", "Softmax", "Where", "Gather",
               "Transpose", "EmbedLayerNormalization"]
QDQ_OPS = ["Conv", "ConvTranspose", "Gemm", "Clip", "Relu", "Reshape", "Transpose", "Squeeze",
           "Unsqueeze", "Resize", "MaxPool", "AveragePool", "Slice", "Pad", "MatMul", "Split",
           "Gather", "GatherElements", "Where", "InstanceNormalization", "LayerNormalization",
           "BatchNormalization"]
DIRECT_8BIT = {"Reshape", "Transpose", "Squeeze", "Unsqueeze", "AveragePool", "Slice"}
NORMALIZATION = {"InstanceNormalization", "LayerNormalization", "BatchNormalization"}
INTEGER_OPS = ["Conv", "MatMul", "Attention", "LSTM", "Gather", "Transpose", "EmbedLayerNormalization"]
FLOATS = (TensorProto.FLOAT, TensorProto.FLOAT16)


# ---------------------------------------------------------------- numpy interpreter

def _attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _erf(x):
    import torch  # numpy has no erf; Debian's python3-torch does
    return torch.erf(torch.from_numpy(np.ascontiguousarray(x))).numpy()


def _quantize(x, scale, zp, axis=1):
    scale = np.asarray(scale, np.float32)
    zp = np.asarray(zp)
    if scale.ndim == 1 and scale.size > 1:
        shape = [1] * x.ndim
        shape[axis] = -1
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    lo, hi = (0, 255) if zp.dtype == np.uint8 else (-128, 127)
    q = np.rint(x.astype(np.float32) / scale) + zp.astype(np.float32)
    return np.clip(q, lo, hi).astype(zp.dtype)


def _dequantize(q, scale, zp, axis=1):
    scale = np.asarray(scale, np.float32)
    zp = np.asarray(zp if zp is not None else 0)
    if scale.ndim == 1 and scale.size > 1:
        shape = [1] * q.ndim
        shape[axis] = -1
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    return ((q.astype(np.int32) - zp.astype(np.int32)).astype(np.float32) * scale).astype(np.float32)


def run_node(node, x):
    op = node.op_type
    if op == "Identity":
        return [x[0]]
    if op == "Constant":
        return [numpy_helper.to_array(_attr(node, "value"))]
    if op == "Shape":
        return [np.array(x[0].shape, np.int64)]
    if op == "Gather":
        return [np.take(x[0], x[1], axis=_attr(node, "axis", 0))]
    if op == "Cast":
        return [x[0].astype(onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[_attr(node, "to")])]
    if op == "Range":
        return [np.arange(x[0], x[1], x[2]).astype(x[0].dtype)]
    if op in ("Add", "Sub", "Mul", "Div", "Equal"):
        f = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide, "Equal": np.equal}[op]
        return [f(x[0], x[1])]
    if op == "Erf":
        return [_erf(x[0])]
    if op == "Where":
        return [np.where(x[0], x[1], x[2])]
    if op == "MatMul":
        return [np.matmul(x[0], x[1])]
    if op == "LayerNormalization":
        ax = _attr(node, "axis", -1)
        eps = np.float32(_attr(node, "epsilon", 1e-5))
        m = x[0].mean(axis=ax, keepdims=True)
        v = ((x[0] - m) ** 2).mean(axis=ax, keepdims=True)
        y = (x[0] - m) / np.sqrt(v + eps) * x[1]
        return [y + x[2] if len(x) > 2 and x[2] is not None else y]
    if op == "Softmax":
        ax = _attr(node, "axis", -1)
        e = np.exp(x[0] - x[0].max(axis=ax, keepdims=True))
        return [e / e.sum(axis=ax, keepdims=True)]
    if op == "Split":
        ax = _attr(node, "axis", 0)
        sizes = x[1] if len(x) > 1 and x[1] is not None else _attr(node, "split")
        if sizes is None:
            sizes = [x[0].shape[ax] // len(node.output)] * len(node.output)
        return np.split(x[0], np.cumsum(sizes)[:-1], axis=ax)
    if op == "Unsqueeze":
        axes = sorted(int(a) % (x[0].ndim + len(x[1])) for a in x[1])
        y = x[0]
        for a in axes:
            y = np.expand_dims(y, a)
        return [y]
    if op == "Concat":
        return [np.concatenate(x, axis=_attr(node, "axis"))]
    if op == "Reshape":
        shape = [x[0].shape[i] if s == 0 else s for i, s in enumerate(x[1])]
        return [x[0].reshape(shape)]
    if op == "Transpose":
        return [np.transpose(x[0], _attr(node, "perm"))]
    if op == "Slice":
        axes = x[3] if len(x) > 3 else range(len(x[1]))
        steps = x[4] if len(x) > 4 else [1] * len(x[1])
        sl = [slice(None)] * x[0].ndim
        for s, e, a, st in zip(x[1], x[2], axes, steps):
            sl[a] = slice(int(s), int(e), int(st))
        return [x[0][tuple(sl)]]
    if op == "QuantizeLinear":
        return [_quantize(x[0], x[1], x[2], _attr(node, "axis", 1))]
    if op == "DequantizeLinear":
        return [_dequantize(x[0], x[1], x[2] if len(x) > 2 else None, _attr(node, "axis", 1))]
    if op == "DynamicQuantizeLinear":
        lo, hi = min(float(x[0].min()), 0.0), max(float(x[0].max()), 0.0)
        s = np.float32((hi - lo) / 255.0) if hi != lo else np.float32(1.0)
        zp = np.uint8(np.clip(np.rint(0 - lo / s), 0, 255))
        return [_quantize(x[0], s, zp), np.array(s, np.float32), np.array(zp, np.uint8)]
    if op == "QLinearMatMul":
        a = _dequantize(x[0], x[1], x[2])
        b = _dequantize(x[3], x[4], x[5])
        return [_quantize(np.matmul(a, b), x[6], x[7])]
    if op == "MatMulInteger":
        a = x[0].astype(np.int32) - (x[2].astype(np.int32) if len(x) > 2 else 0)
        b = x[1].astype(np.int32) - (x[3].astype(np.int32) if len(x) > 3 else 0)
        return [np.matmul(a, b)]
    sys.exit(f"ort_quantize: the numpy interpreter has no {op} (node {node.name})")


def run_model(model, feeds, want=None):
    """Runs the graph on feeds; returns {name: array} of every value (or of `want`)."""
    env = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    env.update(feeds)
    for node in model.graph.node:
        outs = run_node(node, [env[i] if i else None for i in node.input])
        for name, v in zip(node.output, outs):
            env[name] = np.asarray(v)
    return env if want is None else {k: env[k] for k in want}


# ---------------------------------------------------------------- calibration data

def calib_windows(n):
    sys.path.insert(0, HERE)
    from train_gpt import TRAIN_FILES, read_files  # noqa: E402 (the training text, never held-out)
    text = read_files(TRAIN_FILES)
    step = (len(text) - CTX) // max(n, 1)
    return [np.frombuffer(text[i * step:i * step + CTX], np.uint8).astype(np.int64).reshape(1, CTX)
            for i in range(n)]


# ---------------------------------------------------------------- onnxruntime's numerics

def compute_scale_zp(rmin, rmax, qmin, qmax, symmetric):
    """quant_utils.compute_scale_zp: float32 range, float64 scale, round-half-even zp."""
    rmin = np.minimum(np.float32(rmin), np.float32(0))
    rmax = np.maximum(np.float32(rmax), np.float32(0))
    if symmetric:
        absmax = np.maximum(np.abs(rmin), np.abs(rmax))
        rmin, rmax = -absmax, absmax
    dr = np.float64(rmax - rmin)
    scale = dr / (np.float64(qmax) - np.float64(qmin))
    if scale < np.finfo(np.float32).tiny:
        return 0, np.float32(1.0)
    if symmetric:
        zp = int(np.round((qmin + qmax) / 2.0))
    else:
        zp = int(np.round(qmin - rmin / scale))
    return zp, np.float32(scale)


def qrange(qtype, symmetric):
    if qtype == TensorProto.UINT8:
        return (0, 254) if symmetric else (0, 255)
    return (-127, 127) if symmetric else (-128, 127)


def quantize_array(data, qtype, scale, zp):
    """quant_utils.quantize_nparray: float32 divide, round half even, add zp, clip."""
    lo, hi = (0, 255) if qtype == TensorProto.UINT8 else (-128, 127)
    q = np.asarray((data.astype(np.float32) / scale).round() + zp)
    np.clip(q, lo, hi, out=q)
    return q.astype(np.uint8 if qtype == TensorProto.UINT8 else np.int8)


def quantize_initializer(arr, qtype, symmetric):
    zp, scale = compute_scale_zp(arr.min() if arr.size else 0, arr.max() if arr.size else 0,
                                 *qrange(qtype, symmetric), symmetric)
    return quantize_array(arr, qtype, scale, zp), scale, zp


def np_qtype(qtype):
    return np.uint8 if qtype == TensorProto.UINT8 else np.int8


# ---------------------------------------------------------------- graph helpers

class Graph:
    def __init__(self, model):
        self.model = onnx.shape_inference.infer_shapes(model)
        g = self.model.graph
        self.init = {i.name: i for i in g.initializer}
        self.types = {}
        for v in list(g.input) + list(g.output) + list(g.value_info):
            if v.type.HasField("tensor_type"):
                self.types[v.name] = v.type.tensor_type.elem_type
        self.outputs = {o.name for o in g.output}
        self.new_nodes = []

    def elem_type(self, name):
        if name in self.init:
            return self.init[name].data_type
        return self.types.get(name)

    def is_float(self, name):
        return bool(name) and self.elem_type(name) in FLOATS

    def add_init(self, arr, name):
        t = numpy_helper.from_array(np.asarray(arr), name)
        self.model.graph.initializer.append(t)
        self.init[name] = t

    def replace_input(self, old, new):
        for n in self.model.graph.node:
            for i, x in enumerate(n.input):
                if x == old:
                    n.input[i] = new

    def replace_output(self, old, new):
        for n in self.model.graph.node:
            for i, x in enumerate(n.output):
                if x == old:
                    n.output[i] = new

    def finish(self):
        g = self.model.graph
        nodes = list(g.node)
        while True:  # drop nodes nothing reads (the weights' DQs a QLinearMatMul replaced)
            read = {x for n in nodes for x in n.input} | self.outputs
            live = [n for n in nodes if any(o in read for o in n.output)]
            if len(live) == len(nodes):
                break
            nodes = live
        used = {x for n in nodes for x in n.input} | self.outputs
        keep = [i for i in g.initializer if i.name in used]
        del g.initializer[:]
        g.initializer.extend(keep)
        del g.value_info[:]
        # topological order, stable for the original nodes (as ONNXModel.topological_sort)
        produced = {i.name for i in g.input} | {i.name for i in keep}
        order, pending = [], nodes
        while pending:
            rest = []
            for n in pending:
                if all((not x) or x in produced for x in n.input):
                    order.append(n)
                    produced.update(n.output)
                else:
                    rest.append(n)
            if len(rest) == len(pending):
                sys.exit("ort_quantize: graph has a cycle or a dangling input: " + rest[0].name)
            pending = rest
        del g.node[:]
        g.node.extend(order)
        self.model.producer_name = "onnx.quantize"
        self.model.producer_version = "0.1.0"
        onnx.checker.check_model(self.model)
        return self.model


# ---------------------------------------------------------------- quantize_static, QDQ

def calibrate(model, windows, op_types):
    g = Graph(model)
    names = []
    for n in g.model.graph.node:
        if n.op_type in op_types:
            for t in list(n.input) + list(n.output):
                if t and t not in g.init and g.is_float(t) and t not in names:
                    names.append(t)
    ranges = {}
    for w in windows:
        env = run_model(g.model, {g.model.graph.input[0].name: w}, names)
        for t in names:
            lo, hi = np.float32(env[t].min()), np.float32(env[t].max())
            if t in ranges:
                lo, hi = min(ranges[t][0], lo), max(ranges[t][1], hi)
            ranges[t] = (lo, hi)
    return ranges


def quantize_static(model, windows, qoperator=False):
    op_types = set(QLINEAR_OPS) | set(QDQ_OPS)
    ranges = calibrate(model, windows, op_types)
    g = Graph(model)
    bad = {t for t, (lo, hi) in ranges.items() if not (np.isfinite(lo) and np.isfinite(hi))}
    exclude = [n.name for n in g.model.graph.node if n.op_type in op_types
               and any(t in bad for t in list(n.input) + list(n.output))]
    if exclude:
        print("ort_quantize: nodes_to_exclude (non-finite calibrated range): " + ", ".join(exclude))

    act_q = TensorProto.UINT8
    w_q = TensorProto.INT8
    marked = {}        # tensor -> ("act" | "weight", provider input or None), insertion ordered
    biases = {}        # bias -> (input, weight)

    def mark(t, kind="act", provider=None):
        if not t:
            return
        if t in g.init:
            if g.init[t].data_type not in FLOATS:
                return
        elif g.types.get(t) not in FLOATS:
            return
        if provider is not None:
            marked[t] = (kind, provider)
        elif t not in marked:
            marked[t] = (kind, None)

    def is_marked(t):
        return t in marked or t in biases

    for n in g.model.graph.node:
        if n.op_type not in op_types or n.name in exclude:
            continue
        op, ins, outs = n.op_type, list(n.input), list(n.output)
        if op in ("MatMul",):
            for t in ins + outs:
                mark(t, "weight" if t in g.init else "act")
        elif op == "Gemm":
            mark(ins[0])
            mark(ins[1], "weight" if ins[1] in g.init else "act")
            if len(ins) > 2 and ins[2] and ins[2] in g.init:
                biases[ins[2]] = (ins[0], ins[1])
            mark(outs[0])
        elif op in DIRECT_8BIT:
            if is_marked(ins[0]):
                mark(outs[0], provider=ins[0])
        elif op == "Split":
            if not is_marked(ins[0]):
                mark(ins[0])
            for o in outs:
                mark(o, provider=ins[0])
        elif op in ("Gather", "GatherElements"):
            if is_marked(ins[0]):
                mark(ins[0])
                mark(outs[0], provider=ins[0])
        elif op == "Where":
            if is_marked(ins[1]) and is_marked(ins[2]):
                for o in outs:
                    mark(o)
        elif op in NORMALIZATION:
            mark(ins[0])
            mark(ins[1], "weight" if ins[1] in g.init else "act")
            if len(ins) > 2 and ins[2]:
                if ins[2] in g.init:
                    biases[ins[2]] = (ins[0], ins[1])
            mark(outs[0])
        else:  # QDQOperatorBase: every input and output
            for t in ins + outs:
                mark(t)

    qvalue = {}    # tensor -> (scale name, zp name)

    def add_qdq(t, scale_name, zp_name):
        q_in, dq_out = t, t + "_DequantizeLinear_Output"
        if t in g.outputs:
            q_in, dq_out = t + "_QuantizeLinear_Input", t
            g.replace_output(t, q_in)
        else:
            g.replace_input(t, dq_out)
        q_out = t + "_QuantizeLinear_Output"
        g.model.graph.node.extend([
            helper.make_node("QuantizeLinear", [q_in, scale_name, zp_name], [q_out], t + "_QuantizeLinear"),
            helper.make_node("DequantizeLinear", [q_out, scale_name, zp_name], [dq_out], t + "_DequantizeLinear")])
        qvalue[t] = (scale_name, zp_name)

    for t, (kind, provider) in list(marked.items()):
        if provider is not None:
            continue
        if t in g.init:
            arr = numpy_helper.to_array(g.init[t])
            qt = w_q if kind == "weight" else act_q
            q, scale, zp = quantize_initializer(arr, qt, symmetric=(qt == w_q))
            g.add_init(q, t + "_quantized")
            g.add_init(np.array(scale, np.float32), t + "_scale")
            g.add_init(np.array(zp, np_qtype(qt)), t + "_zero_point")
            dq_out = t + "_DequantizeLinear_Output"
            g.replace_input(t, dq_out)
            g.model.graph.node.append(helper.make_node(
                "DequantizeLinear", [t + "_quantized", t + "_scale", t + "_zero_point"], [dq_out],
                t + "_DequantizeLinear"))
            qvalue[t] = (t + "_scale", t + "_zero_point")
        else:
            if t not in ranges:
                sys.exit(f"ort_quantize: no calibration range for {t}")
            zp, scale = compute_scale_zp(*ranges[t], *qrange(act_q, False), False)
            g.add_init(np.array(scale, np.float32), t + "_scale")
            g.add_init(np.array(zp, np.uint8), t + "_zero_point")
            add_qdq(t, t + "_scale", t + "_zero_point")
        del marked[t]
    while marked:
        progressed = False
        for t, (kind, provider) in list(marked.items()):
            if provider in qvalue:
                add_qdq(t, *qvalue[provider])
                del marked[t]
                progressed = True
        if not progressed:
            sys.exit("ort_quantize: shared quantization parameters without a provider: " + ", ".join(marked))
    for b, (inp, w) in biases.items():
        s_in = numpy_helper.to_array(g.init[qvalue[inp][0]])
        s_w = numpy_helper.to_array(g.init[qvalue[w][0]])
        bias_scale = s_in * s_w
        data = numpy_helper.to_array(g.init[b])
        q = np.round(np.asarray(data, np.float64) / np.asarray(bias_scale, np.float64))
        q = np.clip(q, np.iinfo(np.int32).min, np.iinfo(np.int32).max).astype(np.int32)
        g.add_init(q.reshape(data.shape), b + "_quantized")
        g.add_init(np.asarray(bias_scale, np.float32).reshape(-1), b + "_quantized_scale")
        g.add_init(np.array(0, np.int32), b + "_quantized_zero_point")
        g.model.graph.initializer.remove(g.init.pop(b))
        g.model.graph.node.append(helper.make_node(
            "DequantizeLinear", [b + "_quantized", b + "_quantized_scale", b + "_quantized_zero_point"], [b],
            b + "_DequantizeLinear"))
    m = g.finish()
    return to_qoperator(m) if qoperator else m


def to_qoperator(model):
    """QOperator form of the MatMuls: DQ(a) -> MatMul(., DQ(W)) -> Q(y) becomes QLinearMatMul."""
    g = model.graph
    prod = {o: n for n in g.node for o in n.output}
    cons = {}
    for n in g.node:
        for i in n.input:
            cons.setdefault(i, []).append(n)
    drop, new = set(), []
    for n in g.node:
        if n.op_type != "MatMul":
            continue
        da, dw = prod.get(n.input[0]), prod.get(n.input[1])
        users = cons.get(n.output[0], [])
        if not (da and dw and da.op_type == "DequantizeLinear" and dw.op_type == "DequantizeLinear"
                and len(users) == 1 and users[0].op_type == "QuantizeLinear"):
            continue
        qy = users[0]
        new.append(helper.make_node("QLinearMatMul", [da.input[0], da.input[1], da.input[2], dw.input[0],
                                                      dw.input[1], dw.input[2], qy.input[1], qy.input[2]],
                                    [qy.output[0]], n.name + "_quant"))
        drop.update([id(n), id(qy)])
    keep = [n for n in g.node if id(n) not in drop]
    del g.node[:]
    g.node.extend(keep + new)
    gr = Graph(model)
    gr.outputs = {o.name for o in model.graph.output}
    return gr.finish()


# ---------------------------------------------------------------- quantize_dynamic

def quantize_dynamic(model):
    g = Graph(model)
    act_q, w_q = TensorProto.UINT8, TensorProto.INT8
    qmap = {}                                   # tensor -> (q name, scale, zp)
    generated = {i.name for i in g.model.graph.input if i.name not in g.init}
    out_nodes = []

    def quant_init(t, qt):
        if t not in qmap:
            q, scale, zp = quantize_initializer(numpy_helper.to_array(g.init[t]), qt, symmetric=(qt == w_q))
            g.add_init(q, t + "_quantized")
            g.add_init(np.array(scale, np.float32), t + "_scale")
            g.add_init(np.array(zp, np_qtype(qt)), t + "_zero_point")
            qmap[t] = (t + "_quantized", t + "_scale", t + "_zero_point")
        return qmap[t]

    def dequantize_inputs(n):
        for x in n.input:
            if x in qmap and x not in generated and x not in g.init:
                q, s, z = qmap[x]
                out_nodes.append(helper.make_node("DequantizeLinear", [q, s, z], [x], x + "_DequantizeLinear"))
                generated.add(x)

    for n in list(g.model.graph.node):
        done = False
        if n.op_type == "MatMul" and n.input[1] in g.init and g.is_float(n.input[0]):
            a = n.input[0]
            if a not in qmap:
                out_nodes.append(helper.make_node("DynamicQuantizeLinear", [a],
                                                  [a + "_quantized", a + "_scale", a + "_zero_point"],
                                                  a + "_QuantizeLinear"))
                qmap[a] = (a + "_quantized", a + "_scale", a + "_zero_point")
            qa, sa, za = qmap[a]
            qw, sw, zw = quant_init(n.input[1], w_q)
            y = n.output[0]
            mm = n.name + "_quant"
            out_nodes += [
                helper.make_node("MatMulInteger", [qa, qw, za, zw], [y + "_output_quantized"], mm),
                helper.make_node("Cast", [y + "_output_quantized"], [y + "_output_quantized_cast_output"],
                                 y + "_output_quantized_cast", to=TensorProto.FLOAT),
                helper.make_node("Mul", [sa, sw], [mm + "_scales_mul:0"], mm + "_scales_mul"),
                helper.make_node("Mul", [y + "_output_quantized_cast_output", mm + "_scales_mul:0"], [y],
                                 mm + "_output_scale_mul")]
            done = True
        elif n.op_type == "Gather" and n.input[0] in g.init and g.is_float(n.input[0]):
            q, s, z = quant_init(n.input[0], act_q)
            y = n.output[0]
            qmap[y] = (y + "_quantized", s, z)
            out_nodes.append(helper.make_node("Gather", [q, n.input[1]], [y + "_quantized"], n.name,
                                              axis=_attr(n, "axis", 0)))
            done = True
        if not done:
            dequantize_inputs(n)
            out_nodes.append(n)
        for o in out_nodes[-1].output:
            generated.add(o)
        for m in out_nodes:
            generated.update(m.output)
    for o in g.model.graph.output:
        if o.name in qmap and o.name not in generated:
            q, s, z = qmap[o.name]
            out_nodes.append(helper.make_node("DequantizeLinear", [q, s, z], [o.name], o.name + "_DequantizeLinear"))
    del g.model.graph.node[:]
    g.model.graph.node.extend(out_nodes)
    return g.finish()


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("outdir")
    ap.add_argument("--calib-windows", type=int, default=32)
    ap.add_argument("--qoperator", action="store_true", help="also write gpt_qop.onnx (QLinearMatMul)")
    ap.add_argument("--check", type=int, default=0, metavar="N",
                    help="run the float and quantized models with numpy on N calibration windows and print "
                         "the max logit difference (sanity check)")
    a = ap.parse_args()
    model = onnx.load(a.model)
    os.makedirs(a.outdir, exist_ok=True)
    windows = calib_windows(a.calib_windows)
    out = {"gpt_qdq.onnx": quantize_static(model, windows), "gpt_dyn.onnx": quantize_dynamic(model)}
    if a.qoperator:
        out["gpt_qop.onnx"] = quantize_static(model, windows, qoperator=True)
    for name, m in out.items():
        onnx.save(m, os.path.join(a.outdir, name))
        print(f"wrote {os.path.join(a.outdir, name)}: {len(m.graph.node)} nodes")
    for w in windows[:a.check]:
        ref = run_model(model, {"tokens": w}, ["logits"])["logits"]
        for name, m in out.items():
            y = run_model(m, {"tokens": w}, [m.graph.output[0].name])[m.graph.output[0].name]
            print(f"check {name}: max |logit - float logit| = {float(np.abs(y - ref).max()):.4g}")


if __name__ == "__main__":
    main()
