#!/usr/bin/python3
"""make_corpus.py OUTDIR: writes the hostile-input corpus for tests/hostile/run.py.

Every case is one JSON line of OUTDIR/cases.jsonl:
  name      unique case name (also its folder under OUTDIR/cases/)
  kind      "compile": `lowbit compile MODEL -o TMP/out ARGS`;
            "run": a compiled control model (`control`) run on `inputs`
  model     model path relative to OUTDIR (compile cases)
  args      extra lowbit arguments
  expect    "fail" (exit 1..125, stderr matches `stderr` and contains "error")
            or "ok" (exit 0; for controls `inputs`/`outputs` are checked)
  stderr    regex (Python re, search) the stderr must match when failing
  stderr_not  regex the stderr must NOT match (e.g. a raw escape character)
  timeout   seconds
  inputs    input files relative to OUTDIR ("run" cases and controls)
  outputs   expected .npy outputs relative to OUTDIR (controls)
Needs /usr/bin/python3 with onnx and numpy. Generated at test time; nothing here
is committed but this script.
"""
import json
import os
import random
import struct
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.abspath(sys.argv[1])
CASES = os.path.join(OUT, "cases")
os.makedirs(CASES, exist_ok=True)
OUTSIDE = os.path.join(OUT, "outside")  # a folder outside every case folder
os.makedirs(OUTSIDE, exist_ok=True)
with open(os.path.join(OUTSIDE, "secret.bin"), "wb") as f:
    f.write(b"\0" * 4096)

lines = []
FMT = "%s%n%x\n\x1b[31m"


def case_dir(name):
    d = os.path.join(CASES, name)
    os.makedirs(d, exist_ok=True)
    return d


def rel(p):
    return os.path.relpath(p, OUT)


def add(name, model_path, expect="fail", stderr="error", args=(), timeout=10, **kw):
    c = dict(name=name, kind="compile", model=rel(model_path), args=list(args), expect=expect,
             stderr=stderr, timeout=timeout)
    c.update(kw)
    lines.append(c)


def save_model(name, m, fname="model.onnx"):
    p = os.path.join(case_dir(name), fname)
    with open(p, "wb") as f:
        f.write(m.SerializeToString())
    return p


def save_bytes(name, data, fname="model.onnx"):
    p = os.path.join(case_dir(name), fname)
    with open(p, "wb") as f:
        f.write(data)
    return p


def vi(name, dt=TensorProto.FLOAT, shape=(2, 3)):
    return helper.make_tensor_value_info(name, dt, list(shape) if shape is not None else None)


def model(nodes, inputs, outputs, inits=(), opset=17, ir=8, extra_opsets=(), name="g"):
    g = helper.make_graph(nodes, name, inputs, outputs, initializer=list(inits))
    ops = [helper.make_opsetid("", opset)] if opset is not None else []
    ops += [helper.make_opsetid(d, v) for d, v in extra_opsets]
    m = helper.make_model(g, opset_imports=ops)
    m.ir_version = ir
    return m


def fail(name, m, stderr="error", **kw):
    add(name, save_model(name, m), stderr=stderr, **kw)


def relu_model(**kw):
    return model([helper.make_node("Relu", ["x"], ["y"], name="r")], [vi("x")], [vi("y")], **kw)


def raw_tensor(name, dt, dims, raw=b""):
    t = TensorProto()
    t.name = name
    t.data_type = dt
    t.dims.extend(dims)
    t.raw_data = raw
    return t


def ext_tensor(name, dims, location, offset=None, length=None, dt=TensorProto.FLOAT):
    t = TensorProto()
    t.name = name
    t.data_type = dt
    t.dims.extend(dims)
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", offset), ("length", length)):
        if v is not None:
            e = t.external_data.add()
            e.key = k
            e.value = str(v)
    return t


def add_w_model(w):
    """y = x + w, x: f32[2,3]"""
    return model([helper.make_node("Add", ["x", "w"], ["y"], name="add_w")], [vi("x")], [vi("y")],
                 inits=[w])


rng = np.random.default_rng(1234)

# ---------------------------------------------------------------- bytes ----
add("empty-file", save_bytes("empty-file", b""))
add("random-bytes", save_bytes("random-bytes", bytes(random.Random(7).getrandbits(8) for _ in range(4096))))
valid = relu_model().SerializeToString()
add("truncated", save_bytes("truncated", valid[: len(valid) // 2]), stderr="protobuf|error")
add("truncated-1", save_bytes("truncated-1", valid[:-1]))
# field 1 (ir_version, varint) sent as length-delimited; field 7 (graph) as a varint
add("wire-type-ir-version", save_bytes("wire-type-ir-version", b"\x0a\x03abc" + valid))
add("wire-type-graph", save_bytes("wire-type-graph", b"\x08\x08\x38\x05"))
# group wire types (3/4) and the invalid 6/7
add("wire-type-group", save_bytes("wire-type-group", b"\x08\x08\x3b\x3c"))
add("wire-type-7", save_bytes("wire-type-7", b"\x08\x08\x3f\x00"))
# a length prefix far past the end; a varint that never ends
add("wire-huge-length", save_bytes("wire-huge-length", b"\x08\x08\x3a\xff\xff\xff\xff\x0f"))
add("wire-endless-varint", save_bytes("wire-endless-varint", b"\x08" + b"\xff" * 64))
# a valid protobuf of the wrong message type
t = numpy_helper.from_array(np.ones((2, 3), np.float32), "t")
add("wrong-message-tensorproto", save_bytes("wrong-message-tensorproto", t.SerializeToString()))
# deep nesting in raw bytes: 100k nested TypeProto.sequence_type.elem_type
def _varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def ld(field, payload):
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


t_bytes = ld(1, _varint(1 << 3) + _varint(1))  # TypeProto{tensor_type{elem_type=1}}
for _ in range(2000):
    t_bytes = ld(4, ld(1, t_bytes))  # TypeProto{sequence_type{elem_type=...}}
vinfo = ld(1, b"x") + ld(2, t_bytes)
graph = ld(11, vinfo)
deep = _varint(1 << 3) + _varint(8) + ld(7, graph) + ld(8, ld(1, b"") + _varint(2 << 3) + _varint(17))
add("wire-deep-type-nesting", save_bytes("wire-deep-type-nesting", deep), stderr="nested too deeply|error")

# files that are not models
d = case_dir("directory-as-model")
os.makedirs(os.path.join(d, "model.onnx"), exist_ok=True)
add("directory-as-model", os.path.join(d, "model.onnx"), stderr="not a regular file|directory")
d = case_dir("fifo-as-model")
fifo = os.path.join(d, "model.onnx")
if not os.path.exists(fifo):
    os.mkfifo(fifo)
add("fifo-as-model", fifo, stderr="not a regular file", timeout=5)
add("missing-model", os.path.join(case_dir("missing-model"), "nope.onnx"), stderr="cannot open")
d = case_dir("fifo-as-lbir")
fifo = os.path.join(d, "model.lbir")
if not os.path.exists(fifo):
    os.mkfifo(fifo)
add("fifo-as-lbir", fifo, stderr="not a regular file", timeout=5)

# ---------------------------------------------------------------- model ----
fail("ir-version-0", relu_model(ir=0), stderr="ir_version|error")
fail("ir-version-99", relu_model(ir=99), stderr="ir_version 99")
m = relu_model()
m.ClearField("ir_version")
fail("ir-version-missing", m, stderr="ir_version")
fail("opset-0", relu_model(opset=0), stderr="opset 0")
fail("opset-99", relu_model(opset=99), stderr="opset 99")
fail("opset-missing", relu_model(opset=None), stderr="no opset")
m = model([helper.make_node("Relu", ["x"], ["y"], name="r")], [vi("x")], [vi("y")], opset=None,
          extra_opsets=[("com.acme", 1)])
fail("opset-only-custom-domain", m, stderr="no opset")
fail("no-graph", onnx.ModelProto(ir_version=8, opset_import=[helper.make_opsetid("", 17)]),
     stderr="no graph")
m = model([helper.make_node("Frobnicate", ["x"], ["y"], name="frob", domain="com.evil")],
          [vi("x")], [vi("y")], extra_opsets=[("com.evil", 1)])
fail("unknown-op-unknown-domain", m, stderr=r'node "frob" \(Frobnicate, domain com.evil\)')
m = model([helper.make_node("Frobnicate", ["x"], ["y"], name="frob2", domain="com.evil")],
          [vi("x")], [vi("y")])
fail("unknown-domain-not-imported", m, stderr=r'"frob2".*com.evil')
m = model([helper.make_node("NonZero", ["x"], ["a"], name="nz"),
           helper.make_node("Relu", ["x"], ["b"], name="ok"),
           helper.make_node("Foo", ["b"], ["c"], name="foo1", domain="com.acme"),
           helper.make_node("Hardmax", ["x"], ["d"], name="hm")],
          [vi("x")], [vi(o, shape=None) for o in "acd"], extra_opsets=[("com.acme", 1)])
fail("several-unsupported", m,
     stderr=r'3 unsupported ops: node "nz" \(NonZero\), node "foo1" \(Foo, domain com.acme\), node "hm" \(Hardmax\)')
m = model([helper.make_node("Relu", ["x"], ["y"], name="r")], [vi("x")], [vi("y")], opset=5)
m.graph.node[0].op_type = "Gelu"  # Gelu is opset 20
fail("op-newer-than-opset", m, stderr=r'"r" \(Gelu\)')

# structure
m = model([helper.make_node("Relu", ["b"], ["a"], name="n1"),
           helper.make_node("Neg", ["a"], ["b"], name="n2"),
           helper.make_node("Add", ["x", "a"], ["y"], name="n3")], [vi("x")], [vi("y")])
fail("cycle", m, stderr=r"cycle.*\"n1\" \(Relu\)")
m = model([helper.make_node("Add", ["x", "y"], ["y"], name="selfloop")], [vi("x")], [vi("y")])
fail("self-loop", m, stderr=r'"selfloop"')
m = model([helper.make_node("Add", ["x", "ghost"], ["y"], name="haunted")], [vi("x")], [vi("y")])
fail("undefined-input", m, stderr=r'node "haunted" \(Add\).*"ghost" is not defined')
m = model([helper.make_node("Relu", ["x"], ["y"], name="r1"), helper.make_node("Neg", ["x"], ["y"], name="r2")],
          [vi("x")], [vi("y")])
fail("duplicate-output-name", m, stderr=r'node "r2" \(Neg\).*"y" is already defined')
m = model([helper.make_node("Relu", ["x"], ["x"], name="shadow")], [vi("x")], [vi("x")])
fail("output-shadows-input", m, stderr=r'"shadow".*"x" is already defined')
w = numpy_helper.from_array(np.ones((2, 3), np.float32), "w")
m = add_w_model(w)
m.graph.initializer.append(numpy_helper.from_array(np.ones((2, 3), np.float32), "w"))
fail("duplicate-initializer", m, stderr=r'initializer "w" is defined twice')
m = model([helper.make_node("Relu", ["x"], ["y"], name="r")], [vi("x")], [vi("y"), vi("nothing")])
fail("undefined-graph-output", m, stderr=r'graph output "nothing"')
m = model([helper.make_node("Relu", ["x"], ["y"], name="r")], [vi("x")], [vi("y")],
          inits=[numpy_helper.from_array(np.ones((2, 3), np.int64), "x")])
fail("input-initializer-type-mismatch", m, stderr=r'graph input "x" and the initializer')
m = model([helper.make_node("Add", ["x", "k"], ["y"], name="mixed")], [vi("x")], [vi("y")],
          inits=[numpy_helper.from_array(np.ones((2, 3), np.int64), "k")])
fail("type-mismatch", m, stderr=r'node "mixed" \(Add\)')
m = model([helper.make_node("MatMul", ["x", "k"], ["y"], name="mm")], [vi("x")], [vi("y", shape=None)],
          inits=[numpy_helper.from_array(np.ones((4, 5), np.float32), "k")])
fail("rank-shape-mismatch", m, stderr=r'node "mm" \(MatMul\)')
m = model([helper.make_node("Add", ["x", "k"], ["y"], name="bcast")], [vi("x")], [vi("y", shape=None)],
          inits=[numpy_helper.from_array(np.ones((4,), np.float32), "k")])
fail("broadcast-mismatch", m, stderr=r'node "bcast" \(Add\)')
m = model([helper.make_node("Cast", ["x"], ["y"], name="cast_noto")], [vi("x")], [vi("y", shape=None)])
fail("missing-attribute", m, stderr=r'node "cast_noto" \(Cast\)')
n = helper.make_node("Cast", ["x"], ["y"], name="cast_float_to")
n.attribute.append(helper.make_attribute("to", 1.5))
m = model([n], [vi("x")], [vi("y", shape=None)])
fail("mistyped-attribute", m, stderr=r'node "cast_float_to" \(Cast\)')
m = model([helper.make_node("Cast", ["x"], ["y"], name="cast99", to=99)], [vi("x")], [vi("y", shape=None)])
fail("attribute-unknown-dtype", m, stderr=r'node "cast99" \(Cast\)')
m = model([helper.make_node("Transpose", ["x"], ["y"], name="tp", perm=[0, 0])], [vi("x")], [vi("y", shape=None)])
fail("transpose-bad-perm", m, stderr=r'node "tp" \(Transpose\)')
m = model([helper.make_node("Transpose", ["x"], ["y"], name="tp9", perm=[1, 9])], [vi("x")], [vi("y", shape=None)])
fail("transpose-perm-out-of-range", m, stderr=r'node "tp9" \(Transpose\)')
m = model([helper.make_node("Concat", ["x", "x"], ["y"], name="cat", axis=7)], [vi("x")], [vi("y", shape=None)])
fail("concat-axis-out-of-range", m, stderr=r'node "cat" \(Concat\)')
m = model([helper.make_node("Softmax", ["x"], ["y"], name="sm", axis=-9)], [vi("x")], [vi("y", shape=None)])
fail("softmax-axis-out-of-range", m, stderr=r'node "sm" \(Softmax\)')
m = model([helper.make_node("Flatten", ["x"], ["y"], name="fl", axis=5)], [vi("x")], [vi("y", shape=None)])
fail("flatten-axis-out-of-range", m, stderr=r'node "fl" \(Flatten\)')
W = numpy_helper.from_array(np.ones((1, 1, 1, 1), np.float32), "W")
conv_in = vi("x", shape=(1, 1, 4, 4))
m = model([helper.make_node("Conv", ["x", "W"], ["y"], name="conv0", strides=[0, 0])], [conv_in],
          [vi("y", shape=None)], inits=[W])
fail("conv-zero-stride", m, stderr=r'node "conv0" \(Conv\)')
m = model([helper.make_node("Conv", ["x", "W"], ["y"], name="convd", dilations=[0, 0])], [conv_in],
          [vi("y", shape=None)], inits=[W])
fail("conv-zero-dilation", m, stderr=r'node "convd" \(Conv\)')
m = model([helper.make_node("Conv", ["x", "W"], ["y"], name="convp", pads=[-5, -5, -5, -5])], [conv_in],
          [vi("y", shape=None)], inits=[W])
fail("conv-negative-pads", m, stderr=r'node "convp" \(Conv\)')
m = model([helper.make_node("MaxPool", ["x"], ["y"], name="pool0", kernel_shape=[0, 0])], [conv_in],
          [vi("y", shape=None)])
fail("pool-zero-kernel", m, stderr=r'node "pool0" \(MaxPool\)')
m = model([helper.make_node("Reshape", ["x", "s"], ["y"], name="rs")], [vi("x")], [vi("y", shape=None)],
          inits=[numpy_helper.from_array(np.array([4, 4], np.int64), "s")])
fail("reshape-count-mismatch", m, stderr=r'node "rs" \(Reshape\)')
m = model([helper.make_node("Reshape", ["x", "s"], ["y"], name="rs2")], [vi("x")], [vi("y", shape=None)],
          inits=[numpy_helper.from_array(np.array([1 << 62, 4], np.int64), "s")])
fail("reshape-overflow", m, stderr=r'node "rs2" \(Reshape\)')
m = model([helper.make_node("Expand", ["x", "s"], ["y"], name="ex")], [vi("x")], [vi("y", shape=None)],
          inits=[numpy_helper.from_array(np.array([1 << 20, 1 << 20, 3], np.int64), "s")])
fail("expand-huge", m, stderr=r'node "ex" \(Expand\)')
m = model([helper.make_node("Tile", ["x", "r"], ["y"], name="tile")], [vi("x")], [vi("y", shape=None)],
          inits=[numpy_helper.from_array(np.array([1 << 31, 1 << 31], np.int64), "r")])
fail("tile-huge", m, stderr=r'node "tile" \(Tile\)')
m = model([helper.make_node("ConstantOfShape", ["s"], ["y"], name="cos")], [], [vi("y", shape=None)],
          inits=[numpy_helper.from_array(np.array([1 << 40], np.int64), "s")])
fail("constant-of-shape-huge", m, stderr=r'node "cos" \(ConstantOfShape\)')
m = model([helper.make_node("Range", ["a", "b", "c"], ["y"], name="rng")], [], [vi("y", TensorProto.INT64, None)],
          inits=[numpy_helper.from_array(np.array(0, np.int64), "a"),
                 numpy_helper.from_array(np.array(1 << 50, np.int64), "b"),
                 numpy_helper.from_array(np.array(1, np.int64), "c")])
fail("range-huge", m, stderr=r'node "rng" \(Range\)')
m = model([helper.make_node("Range", ["a", "b", "c"], ["y"], name="rng0")], [], [vi("y", TensorProto.INT64, None)],
          inits=[numpy_helper.from_array(np.array(0, np.int64), "a"),
                 numpy_helper.from_array(np.array(10, np.int64), "b"),
                 numpy_helper.from_array(np.array(0, np.int64), "c")])
fail("range-zero-step", m, stderr=r'node "rng0" \(Range\)')
# constant folding of integer division by zero and INT64_MIN / -1
m = model([helper.make_node("Div", ["a", "b"], ["q"], name="div0"),
           helper.make_node("Cast", ["q"], ["qf"], name="c", to=TensorProto.FLOAT),
           helper.make_node("Add", ["x", "qf"], ["y"], name="add")], [vi("x")], [vi("y")],
          inits=[numpy_helper.from_array(np.array([1, 2, 3], np.int64), "a"),
                 numpy_helper.from_array(np.array([0, 1, 0], np.int64), "b")])
fail("fold-int-div-by-zero", m, stderr=r'node "div0" \(Div\).*zero|division')
m = model([helper.make_node("Mod", ["a", "b"], ["q"], name="mod0"),
           helper.make_node("Cast", ["q"], ["qf"], name="c", to=TensorProto.FLOAT),
           helper.make_node("Add", ["x", "qf"], ["y"], name="add")], [vi("x")], [vi("y")],
          inits=[numpy_helper.from_array(np.array([1, 2, 3], np.int64), "a"),
                 numpy_helper.from_array(np.array([0, 0, 0], np.int64), "b")])
fail("fold-int-mod-by-zero", m, stderr=r'node "mod0" \(Mod\)')
m = model([helper.make_node("Gather", ["d", "i"], ["g"], name="gat"),
           helper.make_node("Add", ["x", "g"], ["y"], name="add")], [vi("x")], [vi("y")],
          inits=[numpy_helper.from_array(np.ones((3,), np.float32), "d"),
                 numpy_helper.from_array(np.array([1 << 40, 0, 1], np.int64), "i")])
fail("fold-gather-out-of-range", m, stderr=r'node "gat" \(Gather\)')
# types and sizes
fail("input-unknown-elem-type", model([helper.make_node("Relu", ["x"], ["y"], name="r")],
                                      [vi("x", dt=99)], [vi("y")]), stderr=r'"x"')
fail("input-string-type", model([helper.make_node("Relu", ["x"], ["y"], name="r")],
                                [vi("x", dt=TensorProto.STRING)], [vi("y")]), stderr=r'"x"')
fail("input-negative-dim", model([helper.make_node("Relu", ["x"], ["y"], name="r")],
                                 [vi("x", shape=(2, -3))], [vi("y")]), stderr=r'"x"')
fail("input-2pow40-elements", model([helper.make_node("Relu", ["x"], ["y"], name="r")],
                                    [vi("x", shape=(1 << 20, 1 << 20))], [vi("y", shape=None)]),
     stderr=r'"x".*limit')
fail("input-dims-overflow-int64", model([helper.make_node("Relu", ["x"], ["y"], name="r")],
                                        [vi("x", shape=(1 << 32, 1 << 32, 1 << 32))], [vi("y", shape=None)]),
     stderr=r'"x".*limit')
fail("input-rank-100", model([helper.make_node("Relu", ["x"], ["y"], name="r")],
                             [vi("x", shape=(1,) * 100)], [vi("y", shape=None)]), stderr=r'"x"')
fail("init-raw-short", add_w_model(raw_tensor("w", TensorProto.FLOAT, [2, 3], b"\0" * 23)),
     stderr=r'initializer "w".*raw_data has 23 bytes')
fail("init-raw-long", add_w_model(raw_tensor("w", TensorProto.FLOAT, [2, 3], b"\0" * 25)),
     stderr=r'initializer "w".*raw_data has 25 bytes')
fail("init-negative-dim", add_w_model(raw_tensor("w", TensorProto.FLOAT, [2, -3])), stderr=r'initializer "w".*negative')
fail("init-dims-overflow-int64", add_w_model(raw_tensor("w", TensorProto.FLOAT, [1 << 62, 1 << 62, 4])),
     stderr=r'initializer "w".*limit')
fail("init-2pow40-no-data", add_w_model(raw_tensor("w", TensorProto.FLOAT, [1 << 40])),
     stderr=r'initializer "w".*limit')
t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2, 3], float_data=[1.0] * 5)
fail("init-float-data-count", add_w_model(t), stderr=r'initializer "w".*float_data has 5')
fail("init-unknown-dtype", add_w_model(raw_tensor("w", 77, [2, 3], b"\0" * 24)), stderr=r'initializer "w"')
w_big = numpy_helper.from_array(np.ones((256, 1024), np.float32), "wbig")
m = model([helper.make_node("MatMul", ["x", "wbig"], ["y"], name="mm")], [vi("x", shape=(2, 256))],
          [vi("y", shape=(2, 1024))], inits=[w_big])
fail("init-over-max-tensor-bytes", m, stderr=r'initializer "wbig".*limit of 100000 bytes',
     args=["--max-tensor-bytes", "100000"])
t = TensorProto(name="v", data_type=TensorProto.FLOAT, dims=[1 << 40])
m = model([helper.make_node("Constant", [], ["c"], name="konst", value=t),
           helper.make_node("Add", ["x", "c"], ["y"], name="add")], [vi("x")], [vi("y")])
fail("constant-huge-value", m, stderr=r'konst|limit')
n = helper.make_node("Constant", [], ["c"], name="konst_i")
n.attribute.append(helper.make_attribute("value", 3))
m = model([n, helper.make_node("Add", ["x", "c"], ["y"], name="add")], [vi("x")], [vi("y")])
fail("constant-mistyped-value", m, stderr=r'node "konst_i" \(Constant\)')
m = model([helper.make_node("Concat", ["x"] * 10000, ["y"], name="wide", axis=0)], [vi("x")],
          [vi("y", shape=(20000, 3))])
fail("node-10k-inputs", m, stderr=r'node "wide" \(Concat\).*10000 inputs')

# external data
def ext_case(name, loc, **kw):
    d = case_dir(name)
    with open(os.path.join(d, "w.bin"), "wb") as f:
        f.write(np.arange(6, dtype=np.float32).tobytes())
    stderr = kw.pop("stderr", r'initializer "w"')
    setup = kw.pop("setup", None)
    if setup:
        setup(d)
    fail(name, add_w_model(ext_tensor("w", [2, 3], loc, **kw)), stderr=stderr)


ext_case("ext-offset-past-eof", "w.bin", offset=1 << 20, stderr=r'initializer "w".*too short')
ext_case("ext-offset-overflow", "w.bin", offset=(1 << 63) - 4, stderr=r'initializer "w".*too short')
ext_case("ext-length-mismatch", "w.bin", length=12, stderr=r'initializer "w".*length 12')
ext_case("ext-bad-offset", "w.bin", offset="-5", stderr=r'initializer "w".*bad external data offset')
ext_case("ext-short-file", "w.bin", offset=8, stderr=r'initializer "w".*too short')
ext_case("ext-absolute", os.path.join(OUTSIDE, "secret.bin"), stderr=r'initializer "w".*absolute')
ext_case("ext-dotdot", "../../outside/secret.bin", stderr=r'initializer "w".*leaves the model')
ext_case("ext-dotdot-inner", "sub/../../x.bin", stderr=r'initializer "w".*leaves the model')
ext_case("ext-symlink-etc-passwd", "passwd", stderr=r'initializer "w".*outside',
         setup=lambda d: os.path.lexists(os.path.join(d, "passwd")) or os.symlink("/etc/passwd", os.path.join(d, "passwd")))
ext_case("ext-symlink-dir-outside", "lnk/secret.bin", stderr=r'initializer "w".*outside',
         setup=lambda d: os.path.lexists(os.path.join(d, "lnk")) or os.symlink(OUTSIDE, os.path.join(d, "lnk")))
ext_case("ext-location-directory", "sub", stderr=r'initializer "w".*not a regular file',
         setup=lambda d: os.makedirs(os.path.join(d, "sub"), exist_ok=True))
ext_case("ext-location-empty", "", stderr=r'initializer "w".*no location')
ext_case("ext-missing-file", "nope.bin", stderr=r'initializer "w".*cannot open')
ext_case("ext-fifo", "pipe", stderr=r'initializer "w".*not a regular file',
         setup=lambda d: os.path.exists(os.path.join(d, "pipe")) or os.mkfifo(os.path.join(d, "pipe")))

# nesting
def nested_if(depth):
    leaf = helper.make_graph([helper.make_node("Identity", ["x"], ["o"], name="leaf")], "leaf", [], [vi("o")])
    g = leaf
    for k in range(depth):  # nested through then_branch only: the file stays linear in depth
        nd = helper.make_node("If", ["cond"], ["o"], name="if%d" % k, then_branch=g, else_branch=leaf)
        g = helper.make_graph([nd], "lvl%d" % k, [], [vi("o")])
    top = helper.make_node("If", ["cond"], ["y"], name="top_if", then_branch=g, else_branch=leaf)
    return model([top], [vi("x"), vi("cond", TensorProto.BOOL, ())], [vi("y")])


fail("deep-subgraph-nesting-if", nested_if(40), stderr="subgraphs nested too deeply")
body = helper.make_graph([helper.make_node("Identity", ["x"], ["o"])], "b", [], [vi("o")])
for k in range(30):
    body = helper.make_graph([helper.make_node("Loop", ["", "c"], ["o"], name="loop%d" % k, body=body)],
                             "b%d" % k, [], [vi("o")])
m = model([helper.make_node("Loop", ["", "c"], ["y"], name="top_loop", body=body)],
          [vi("x"), vi("c", TensorProto.BOOL, ())], [vi("y")])
fail("deep-subgraph-nesting-loop", m, stderr="subgraphs nested too deeply")
fail("shallow-if-unsupported", nested_if(1), stderr=r'node "top_if" \(If\)')
tp = helper.make_tensor_type_proto(TensorProto.FLOAT, [2])
for _ in range(200):
    tp = helper.make_sequence_type_proto(tp)
m = model([helper.make_node("Relu", ["x"], ["y"], name="r")], [vi("x")], [vi("y")])
m.graph.input.append(helper.make_value_info("deepseq", tp))
fail("deep-type-nesting", m, stderr="nested too deeply")

# names with format characters and terminal escapes
m = model([helper.make_node("Frobnicate", [FMT + "x"], [FMT + "y"], name=FMT + "node", domain="evil" + FMT)],
          [vi(FMT + "x")], [vi(FMT + "y")], extra_opsets=[("evil" + FMT, 1)], name=FMT + "graph")
fail("format-chars-in-names", m, stderr=r"%s%n%x", stderr_not="\x1b")
m = model([helper.make_node("Add", [FMT + "x", "ghost" + FMT], ["y"], name="n" + FMT)], [vi(FMT + "x")], [vi("y")])
fail("format-chars-undefined-input", m, stderr=r"ghost%s%n%x\\x0a\\x1b", stderr_not="\x1b")

# big graphs that must fail fast
def chain_nodes(n, ops=("Neg", "Relu"), src="x", last="y"):
    nodes, prev = [], src
    for i in range(n):
        o = last if i == n - 1 else "v%d" % i
        nodes.append(helper.make_node(ops[i % len(ops)], [prev], [o], name="n%d" % i))
        prev = o
    return nodes


nodes = chain_nodes(100000)
nodes[50000].input[0] = "v99998"  # closes a cycle through half the chain
fail("100k-cycle", model(nodes, [vi("x")], [vi("y")]), stderr="cycle", timeout=20)
nodes = chain_nodes(100000)
nodes[-1].input[0] = "undefined_value"
fail("100k-undefined-input", model(nodes, [vi("x")], [vi("y")]), stderr=r'"n99999".*"undefined_value"', timeout=20)
nodes = chain_nodes(100000)
nodes[77777].op_type = "NoSuchOp"
fail("100k-one-unsupported", model(nodes, [vi("x")], [vi("y")]), stderr=r'"n77777" \(NoSuchOp\)', timeout=20)

# bad IR text
d = case_dir("lbir-garbage")
with open(os.path.join(d, "model.lbir"), "wb") as f:
    f.write(b"graph @g(%x: f32[99999999999,99999999999]) -> (f32[2]) {\n  return %x\n}\n")
add("lbir-huge-dims", os.path.join(d, "model.lbir"), stderr="error")
d = case_dir("lbir-random")
with open(os.path.join(d, "model.lbir"), "wb") as f:
    f.write(bytes(random.Random(3).getrandbits(8) for _ in range(2000)))
add("lbir-random", os.path.join(d, "model.lbir"))

# ------------------------------------------------------------- controls ----
def control(name, m, feeds, expected, args=(), timeout=10, fname="model.onnx", rtol=1e-5, atol=1e-6):
    d = case_dir(name)
    p = save_model(name, m, fname)
    ins = []
    for k, a in enumerate(feeds):
        ip = os.path.join(d, "input_%d.npy" % k)
        np.save(ip, a)
        ins.append(rel(ip))
    outs = []
    for k, a in enumerate(expected):
        op = os.path.join(d, "expected_%d.npy" % k)
        np.save(op, a)
        outs.append(rel(op))
    add(name, p, expect="ok", stderr="", args=args, timeout=timeout, inputs=ins, outputs=outs,
        rtol=rtol, atol=atol)


x23 = rng.standard_normal((2, 3)).astype(np.float32)
control("ctl-relu", relu_model(), [x23], [np.maximum(x23, 0)])
W1 = rng.standard_normal((3, 4)).astype(np.float32)
b1 = rng.standard_normal((4,)).astype(np.float32)
mlp = model([helper.make_node("MatMul", ["x", "W"], ["h"], name="mm"),
             helper.make_node("Add", ["h", "b"], ["hb"], name="bias"),
             helper.make_node("Relu", ["hb"], ["y"], name="act")],
            [vi("x")], [vi("y", shape=(2, 4))],
            inits=[numpy_helper.from_array(W1, "W"), numpy_helper.from_array(b1, "b")])
control("ctl-mlp", mlp, [x23], [np.maximum(x23 @ W1 + b1, 0)])
# identical nodes with different constant weights must not share a kernel
W2 = rng.standard_normal((4, 4)).astype(np.float32)
W3 = rng.standard_normal((4, 4)).astype(np.float32)
x24 = rng.standard_normal((2, 4)).astype(np.float32)
m = model([helper.make_node("MatMul", ["x", "W2"], ["h"], name="mm2"),
           helper.make_node("MatMul", ["h", "W3"], ["y"], name="mm3")],
          [vi("x", shape=(2, 4))], [vi("y", shape=(2, 4))],
          inits=[numpy_helper.from_array(W2, "W2"), numpy_helper.from_array(W3, "W3")])
control("ctl-matmul-distinct-weights", m, [x24], [(x24 @ W2) @ W3], rtol=1e-4, atol=1e-5)
# external data inside the folder, incl. a subfolder and a symlink that stays inside
d = case_dir("ctl-external-data")
os.makedirs(os.path.join(d, "data"), exist_ok=True)
wv = rng.standard_normal((2, 3)).astype(np.float32)
with open(os.path.join(d, "data", "w.bin"), "wb") as f:
    f.write(b"\0" * 16 + wv.tobytes())
if not os.path.lexists(os.path.join(d, "alias")):
    os.symlink("data", os.path.join(d, "alias"))
control("ctl-external-data", add_w_model(ext_tensor("w", [2, 3], "./alias/../data/w.bin", offset=16, length=24)),
        [x23], [x23 + wv])
# names full of format characters compile and run
m = model([helper.make_node("Neg", [FMT + "x"], [FMT + "y"], name=FMT)], [vi(FMT + "x")], [vi(FMT + "y")],
          name=FMT)
control("ctl-format-char-names", m, [x23], [-x23])
# 100k-node chains: alternating Neg/Relu, and 100k identical Adds of one constant
x48 = rng.standard_normal((4, 8)).astype(np.float32)
y = x48.copy()
for i in range(100000):
    y = -y if i % 2 == 0 else np.maximum(y, 0)
nodes = chain_nodes(100000)
control("ctl-100k-chain", model(nodes, [vi("x", shape=(4, 8))], [vi("y", shape=(4, 8))]), [x48], [y], timeout=20)
nodes = []
prev = "x"
for i in range(100000):
    o = "y" if i == 99999 else "a%d" % i
    nodes.append(helper.make_node("Add", [prev, "one"], [o], name="add%d" % i))
    prev = o
x48r = np.round(x48 * 10).astype(np.float32)
control("ctl-100k-identical-adds",
        model(nodes, [vi("x", shape=(4, 8))], [vi("y", shape=(4, 8))],
              inits=[numpy_helper.from_array(np.array(1.0, np.float32), "one")]),
        [x48r], [x48r + np.float32(100000)], timeout=20)
# the --max-tensor-bytes model compiles with the default limit
control("ctl-max-tensor-bytes-default", model(
    [helper.make_node("MatMul", ["x", "wbig"], ["y"], name="mm")], [vi("x", shape=(2, 256))],
    [vi("y", shape=(2, 1024))], inits=[w_big]), [np.ones((2, 256), np.float32)],
    [np.full((2, 1024), 256, np.float32)])

# ------------------------------------------------------------ run inputs ----
RUN_CTL = "ctl-mlp"  # x: f32[2,3]
d = case_dir("run-inputs")


def run_case(name, inputs, stderr, expect="fail"):
    lines.append(dict(name=name, kind="run", control=RUN_CTL, inputs=inputs, expect=expect,
                      stderr=stderr, timeout=10))


def npy_bytes(descr, shape, data=b"", fortran=False):
    h = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shape)
    h = h.encode() + b" " * ((64 - (len(h) + 11) % 64) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h + data


def wfile(fname, data):
    p = os.path.join(d, fname)
    with open(p, "wb") as f:
        f.write(data)
    return rel(p)


good_pb = numpy_helper.from_array(x23, "x").SerializeToString()
good = wfile("good.pb", good_pb)
run_case("run-valid-pb", [good], "", expect="ok")
run_case("run-missing", [rel(os.path.join(d, "missing.pb"))], r"missing\.pb")
run_case("run-truncated-pb", [wfile("trunc.pb", good_pb[:-7])], r"trunc\.pb")
run_case("run-garbage", [wfile("garbage.pb", bytes(random.Random(5).getrandbits(8) for _ in range(300)))],
         r"garbage\.pb")
run_case("run-empty-file", [wfile("empty.pb", b"")], r"empty\.pb")
run_case("run-directory", [rel(case_dir("run-inputs"))], r"run-inputs")
run_case("run-wrong-dtype-npy", [wfile("f64.npy", npy_bytes("<f8", (2, 3), b"\0" * 48))],
         r"f64\.npy.*expected f32\[2,3\]")
run_case("run-wrong-dtype-pb", [wfile("i64.pb", numpy_helper.from_array(np.ones((2, 3), np.int64), "x").SerializeToString())],
         r"i64\.pb.*expected f32\[2,3\]")
run_case("run-wrong-shape-npy", [wfile("shape.npy", npy_bytes("<f4", (3, 2), b"\0" * 24))],
         r"shape\.npy.*expected f32\[2,3\]")
run_case("run-wrong-rank-pb", [wfile("rank.pb", numpy_helper.from_array(np.ones((6,), np.float32), "x").SerializeToString())],
         r"rank\.pb.*expected f32\[2,3\]")
run_case("run-wrong-count-2", [good, good], r"input")
run_case("run-wrong-count-0", [], r"input")
run_case("run-npy-bad-magic", [wfile("badmagic.npy", b"\x93NUMPX\x01\x00\x10\x00" + b" " * 16)], r"badmagic\.npy")
run_case("run-npy-bad-header", [wfile("badhdr.npy", b"\x93NUMPY\x01\x00\x20\x00{'descr': <f4 garbage        }\n")],
         r"badhdr\.npy")
run_case("run-npy-header-past-eof", [wfile("hdrlen.npy", b"\x93NUMPY\x01\x00\xff\xff{'descr'")], r"hdrlen\.npy")
run_case("run-npy-fortran", [wfile("fortran.npy", npy_bytes("<f4", (2, 3), b"\0" * 24, fortran=True))],
         r"fortran\.npy")
run_case("run-npy-huge-dims", [wfile("huge.npy", npy_bytes("<f4", (99999999999, 99999999999)))], r"huge\.npy")
run_case("run-npy-overflow-dims", [wfile("ovf.npy", npy_bytes("<f4", (1 << 62, 1 << 62, 1 << 62)))], r"ovf\.npy")
run_case("run-npy-negative-dim", [wfile("neg.npy", npy_bytes("<f4", "(2, -3)", b"\0" * 24))], r"neg\.npy")
run_case("run-npy-big-endian", [wfile("be.npy", npy_bytes(">f4", (2, 3), b"\0" * 24))], r"be\.npy")
run_case("run-npy-truncated-data", [wfile("short.npy", npy_bytes("<f4", (2, 3), b"\0" * 20))], r"short\.npy")
run_case("run-npy-extra-data", [wfile("long.npy", npy_bytes("<f4", (2, 3), b"\0" * 28))], r"long\.npy")
t = TensorProto(name="x", data_type=TensorProto.FLOAT, dims=[1 << 40, 1 << 40])
run_case("run-pb-huge-dims", [wfile("hugedims.pb", t.SerializeToString())], r"hugedims\.pb")
t = TensorProto(name="x", data_type=TensorProto.FLOAT, dims=[2, 3])
t.raw_data = b"\0" * 20
run_case("run-pb-raw-short", [wfile("rawshort.pb", t.SerializeToString())], r"rawshort\.pb")
t = TensorProto(name="x", data_type=TensorProto.FLOAT, dims=[2, 3], data_location=TensorProto.EXTERNAL)
e = t.external_data.add()
e.key, e.value = "location", "/etc/passwd"
run_case("run-pb-external", [wfile("external.pb", t.SerializeToString())], r"external\.pb")

with open(os.path.join(OUT, "cases.jsonl"), "w") as f:
    for c in lines:
        f.write(json.dumps(c) + "\n")
n_fail = sum(1 for c in lines if c["expect"] == "fail")
print("make_corpus: %d cases (%d hostile, %d valid) in %s" % (len(lines), n_fail, len(lines) - n_fail, OUT))
