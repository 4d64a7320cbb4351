#!/usr/bin/python3
"""Quantized ONNX ops at their edges (issue 3, "importing quantized ONNX"), against numpy:

- ConvInteger and QLinearConv (imported as an f64 conv of the centered 8-bit operands):
  uint8/int8, scalar and per-output-channel weight zero points / scales, group, strides,
  pads, dilations, an int32 bias, and a reduction long enough (C*kh*kw = 4608, sums near
  3e8 > 2^24) that a float32 accumulator would not be exact;
- onnxruntime's QDQ linear layer (fold-qdq -> qmatmul): int8 per-column and uint8 (zp 128)
  weights against exact integer dot products;
- QuantizeLinear-21's output_dtype without a zero point, DequantizeLinear-21 per axis;
- the refusals: blocked quantization (block_size), output_dtype that is not 8-bit.

Usage: quant_import.py LOWBIT
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
from onnx import TensorProto, helper, numpy_helper

LOWBIT = sys.argv[1]
rng = np.random.default_rng(7)
failures = []


def tensor(name, arr):
    return numpy_helper.from_array(np.asarray(arr), name)


def onnx_type(arr):
    return numpy_helper.from_array(np.asarray(arr)).data_type


def build(node, x, inits, out_type, out_shape, opset=13):
    g = helper.make_graph([node], "t",
                          [helper.make_tensor_value_info("x", onnx_type(x), x.shape)],
                          [helper.make_tensor_value_info("y", out_type, out_shape)],
                          [tensor(k, v) for k, v in inits.items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def run(name, model, x):
    with tempfile.TemporaryDirectory() as d:
        mp = os.path.join(d, "m.onnx")
        with open(mp, "wb") as f:
            f.write(model.SerializeToString())
        r = subprocess.run([LOWBIT, "compile", mp, "-o", os.path.join(d, "exe")], capture_output=True, text=True)
        if r.returncode != 0:
            return None, r.stderr
        with open(os.path.join(d, "x.pb"), "wb") as f:
            f.write(tensor("x", x).SerializeToString())
        r = subprocess.run([os.path.join(d, "exe"), os.path.join(d, "x.pb"), "-o", d], capture_output=True, text=True)
        if r.returncode != 0:
            return None, r.stderr
        t = TensorProto()
        with open(os.path.join(d, "output_0.pb"), "rb") as f:
            t.ParseFromString(f.read())
        return numpy_helper.to_array(t), ""


def check(name, model, x, want):
    got, err = run(name, model, x)
    if got is None:
        failures.append(f"{name}: {err.strip().splitlines()[-1] if err.strip() else 'failed'}")
    elif got.dtype != want.dtype or got.shape != want.shape or not np.array_equal(got, want):
        bad = np.argwhere(got != want) if got.shape == want.shape else []
        failures.append(f"{name}: {got.dtype}{got.shape} vs {want.dtype}{want.shape}, "
                        f"{len(bad)} differing elements")
    else:
        print(f"ok {name}")


def check_error(name, model, x, fragment):
    got, err = run(name, model, x)
    if got is not None or fragment not in err:
        failures.append(f"{name}: expected an error with '{fragment}', got: {err.strip()[:200]}")
    else:
        print(f"ok {name} (refused: {fragment})")


def conv_ref(x, w, group, strides, pads, dil):
    """Exact integer conv (int64), NCHW, w [M, C/group, kh, kw]."""
    n, c, h, wd = x.shape
    m, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    oh = (h + pads[0] + pads[2] - dil[0] * (kh - 1) - 1) // strides[0] + 1
    ow = (wd + pads[1] + pads[3] - dil[1] * (kw - 1) - 1) // strides[1] + 1
    y = np.zeros((n, m, oh, ow), np.int64)
    mg = m // group
    for gi in range(group):
        xs = xp[:, gi * cg:(gi + 1) * cg]
        for i in range(kh):
            for j in range(kw):
                patch = xs[:, :, i * dil[0]:i * dil[0] + strides[0] * oh:strides[0],
                           j * dil[1]:j * dil[1] + strides[1] * ow:strides[1]]
                y[:, gi * mg:(gi + 1) * mg] += np.einsum("nchw,mc->nmhw", patch, w[gi * mg:(gi + 1) * mg, :, i, j])
    return y


def attrs(group, strides, pads, dil, k):
    return dict(group=group, strides=strides, pads=pads, dilations=dil, kernel_shape=k)


def conv_integer_case(name, xdt, wdt, shape_x, shape_w, group=1, strides=(1, 1), pads=(0, 0, 0, 0), dil=(1, 1),
                      per_channel_zp=False, fill=None):
    lo = lambda dt: (0, 256) if dt == np.uint8 else (-128, 128)  # noqa: E731
    x = rng.integers(*lo(xdt), size=shape_x).astype(xdt) if fill is None else np.full(shape_x, fill[0], xdt)
    w = rng.integers(*lo(wdt), size=shape_w).astype(wdt) if fill is None else np.full(shape_w, fill[1], wdt)
    zx = np.array(rng.integers(*lo(xdt)) if fill is None else 0, xdt)
    zw = (rng.integers(*lo(wdt), size=shape_w[0]).astype(wdt) if per_channel_zp
          else np.array(rng.integers(*lo(wdt)) if fill is None else 0, wdt))
    node = helper.make_node("ConvInteger", ["x", "w", "zx", "zw"], ["y"],
                            **attrs(group, list(strides), list(pads), list(dil), list(shape_w[2:])))
    want = conv_ref(x.astype(np.int64) - int(zx), w.astype(np.int64) - zw.astype(np.int64).reshape(-1, 1, 1, 1)
                    if per_channel_zp else w.astype(np.int64) - int(zw), group, strides, pads, dil).astype(np.int32)
    model = build(node, x, {"w": w, "zx": zx, "zw": zw}, TensorProto.INT32, list(want.shape), opset=10)
    check(name, model, x, want)


def qlinear_conv_case(name, xdt, wdt, ydt, shape_x, shape_w, per_channel=True, bias=True, group=1,
                      strides=(1, 1), pads=(1, 1, 1, 1), dil=(1, 1)):
    lo = lambda dt: (0, 256) if dt == np.uint8 else (-128, 128)  # noqa: E731
    x = rng.integers(*lo(xdt), size=shape_x).astype(xdt)
    w = rng.integers(*lo(wdt), size=shape_w).astype(wdt)
    m = shape_w[0]
    sx = np.float32(0.02)
    zx = np.array(rng.integers(*lo(xdt)), xdt)
    sw = (rng.uniform(0.001, 0.01, size=m).astype(np.float32) if per_channel else np.float32(0.004))
    zw = np.zeros(m, wdt) if per_channel else np.array(0, wdt)
    sy = np.float32(0.5)
    zy = np.array(rng.integers(*lo(ydt)), ydt)
    b = rng.integers(-20000, 20000, size=m).astype(np.int32)
    ins = ["x", "sx", "zx", "w", "sw", "zw", "sy", "zy"] + (["b"] if bias else [])
    node = helper.make_node("QLinearConv", ins, ["y"],
                            **attrs(group, list(strides), list(pads), list(dil), list(shape_w[2:])))
    acc = conv_ref(x.astype(np.int64) - int(zx), w.astype(np.int64), group, strides, pads, dil)
    if bias:
        acc = acc + b.reshape(1, -1, 1, 1)
    mult = (sx * np.asarray(sw, np.float32) / sy).astype(np.float32).reshape(1, -1, 1, 1)
    r = np.round(acc.astype(np.float64) * mult.astype(np.float64)) + int(zy)
    info = np.iinfo(ydt)
    want = np.clip(r, info.min, info.max).astype(ydt)
    inits = {"sx": sx, "zx": zx, "w": w, "sw": sw, "zw": zw, "sy": sy, "zy": zy}
    if bias:
        inits["b"] = b
    model = build(node, x, inits, onnx_type(zy), list(want.shape))
    check(name, model, x, want)


conv_integer_case("convinteger u8/u8 3x3 pads", np.uint8, np.uint8, (1, 3, 7, 6), (4, 3, 3, 3), pads=(1, 1, 1, 1))
conv_integer_case("convinteger i8/i8 per-channel w_zp, group 2, stride 2, dilation 2", np.int8, np.int8,
                  (2, 4, 9, 9), (6, 2, 3, 3), group=2, strides=(2, 2), pads=(2, 1, 0, 1), dil=(2, 2),
                  per_channel_zp=True)
conv_integer_case("convinteger u8/u8 exact past 2^24 (C*kh*kw = 4608)", np.uint8, np.uint8,
                  (1, 512, 3, 3), (2, 512, 3, 3), fill=(255, 255))
qlinear_conv_case("qlinearconv u8 x, i8 w per-channel, int32 bias, u8 y", np.uint8, np.int8, np.uint8,
                  (1, 8, 6, 6), (5, 8, 3, 3))
qlinear_conv_case("qlinearconv i8 x, i8 w per-tensor, i8 y, group 2, stride 2", np.int8, np.int8, np.int8,
                  (1, 4, 7, 7), (4, 2, 3, 3), per_channel=False, group=2, strides=(2, 2))

# onnxruntime's QDQ linear layer (fold-qdq -> qmatmul on the uint8 activation): exact int32
# dot products scaled by sa*sw[n] (per output column), then the output's Q
def qdq_matmul_case(name, k, n, wdt):
    x = rng.uniform(-2, 3, size=(2, 5, k)).astype(np.float32)
    sa, za = np.float32(5 / 255), np.uint8(102)
    w = rng.integers(-127, 128, size=(k, n)).astype(np.int8)
    sw = rng.uniform(0.002, 0.02, size=n).astype(np.float32)
    sy, zy = np.float32(0.05), np.uint8(120)
    wq, zw = (w, np.zeros(n, np.int8)) if wdt == np.int8 else ((w.astype(np.int32) + 128).astype(np.uint8),
                                                               np.full(n, 128, np.uint8))
    nodes = [helper.make_node("QuantizeLinear", ["x", "sa", "za"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "sa", "za"], ["xd"]),
             helper.make_node("DequantizeLinear", ["w", "sw", "zw"], ["wd"], axis=1),
             helper.make_node("MatMul", ["xd", "wd"], ["m"]),
             helper.make_node("QuantizeLinear", ["m", "sy", "zy"], ["y"])]
    g = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
                          [helper.make_tensor_value_info("y", TensorProto.UINT8, [2, 5, n])],
                          [tensor(a, b) for a, b in dict(sa=sa, za=za, w=wq, sw=sw, zw=zw, sy=sy, zy=zy).items()])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    xq = np.clip(np.rint(x / sa) + int(za), 0, 255)
    acc = np.matmul(xq.astype(np.int64) - int(za), w.astype(np.int64))
    m = acc.astype(np.float32) * (sa * sw)
    want = np.clip(np.rint(m / sy) + int(zy), 0, 255).astype(np.uint8)
    check(name, model, x, want)


def qdq_gemm_case(name, k, n):
    """quantize_static's QDQ Gemm (transB=1, per-channel weights on axis 0, int32 bias)."""
    x = rng.uniform(-2, 3, size=(6, k)).astype(np.float32)
    sa, za = np.float32(5 / 255), np.uint8(102)
    w = rng.integers(-127, 128, size=(n, k)).astype(np.int8)
    sw = rng.uniform(0.002, 0.02, size=n).astype(np.float32)
    sb = (sa * sw).astype(np.float32)
    b = rng.integers(-3000, 3000, size=n).astype(np.int32)
    sy, zy = np.float32(0.05), np.uint8(120)
    nodes = [helper.make_node("QuantizeLinear", ["x", "sa", "za"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "sa", "za"], ["xd"]),
             helper.make_node("DequantizeLinear", ["w", "sw", "zw"], ["wd"], axis=0),
             helper.make_node("DequantizeLinear", ["b", "sb", "zb"], ["bd"], axis=0),
             helper.make_node("Gemm", ["xd", "wd", "bd"], ["m"], transB=1),
             helper.make_node("QuantizeLinear", ["m", "sy", "zy"], ["y"])]
    inits = dict(sa=sa, za=za, w=w, sw=sw, zw=np.zeros(n, np.int8), b=b, sb=sb, zb=np.zeros(n, np.int32), sy=sy, zy=zy)
    g = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape)],
                          [helper.make_tensor_value_info("y", TensorProto.UINT8, [6, n])],
                          [tensor(a, v) for a, v in inits.items()])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    xq = np.clip(np.rint(x / sa) + int(za), 0, 255)
    acc = np.matmul(xq.astype(np.int64) - int(za), w.astype(np.int64).T)
    m = acc.astype(np.float32) * sb + b.astype(np.float32) * sb
    want = np.clip(np.rint(m / sy) + int(zy), 0, 255).astype(np.uint8)
    check(name, model, x, want)


qdq_gemm_case("qdq gemm transB, per-channel weights, int32 bias", 200, 9)
qdq_matmul_case("qdq matmul u8 x int8 per-column weights", 300, 7, np.int8)
qdq_matmul_case("qdq matmul u8 x uint8 (zp 128) weights", 64, 33, np.uint8)

# QuantizeLinear-21: output_dtype without y_zero_point
x = rng.uniform(-3, 3, size=(2, 5)).astype(np.float32)
node = helper.make_node("QuantizeLinear", ["x", "s"], ["y"], output_dtype=TensorProto.INT8)
want = np.clip(np.rint(x / np.float32(0.02)), -128, 127).astype(np.int8)
check("quantizelinear-21 output_dtype=int8", build(node, x, {"s": np.float32(0.02)}, TensorProto.INT8, [2, 5], 21),
      x, want)
node = helper.make_node("QuantizeLinear", ["x", "s"], ["y"], output_dtype=TensorProto.INT16)
check_error("quantizelinear-21 output_dtype=int16",
            build(node, x, {"s": np.float32(0.02)}, TensorProto.INT16, [2, 5], 21), x, "output_dtype")
node = helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"], axis=1, block_size=2)
check_error("quantizelinear-21 block_size",
            build(node, x, {"s": np.full((2, 3), 0.02, np.float32), "z": np.zeros((2, 3), np.int8)},
                  TensorProto.INT8, [2, 5], 21), x, "block_size")
# DequantizeLinear-21, per axis
q = rng.integers(-128, 128, size=(3, 4)).astype(np.int8)
s = np.array([0.5, 0.25, 2.0, 1.0], np.float32)
z = np.array([1, -2, 0, 3], np.int8)
node = helper.make_node("DequantizeLinear", ["x", "s", "z"], ["y"], axis=-1)
check("dequantizelinear-21 per axis", build(node, q, {"s": s, "z": z}, TensorProto.FLOAT, [3, 4], 21), q,
      ((q.astype(np.int32) - z.astype(np.int32)).astype(np.float32) * s).astype(np.float32))

for f in failures:
    print("FAIL " + f)
print(f"quant_import: {len(failures)} failed")
sys.exit(1 if failures else 0)
