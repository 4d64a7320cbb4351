#!/usr/bin/python3
"""onnxruntime's com.microsoft MatMulNBits (issue 4, "importing MatMulNBits"), against numpy:

- 4-bit with and without zero points, block sizes 16..128, K not a multiple of the block
  (a padded last block), 2-bit and 8-bit (zero point 128), a bias, a rank-3 A,
  accuracy_level 4, a trivial g_idx, packed zero points with an odd number of blocks;
- the reference dequantizes B as onnxruntime's MatMulNBits defines it,
  W[k, n] = scale[n * n_blocks + k // block] * (code[k, n] - zp[n, k // block]), with the
  scales rounded to f16 as lowbit stores them (docs/quantization.md), and computes A . W + bias
  in float64; also checked against the f32 scales with a looser bound;
- DequantizeLinear-21 with block_size (axis 0) of int4 / uint4 / int8 / uint8 constants, read by
  MatMul (a low-bit qmatmul where the codes fit) or by another op (the f32 constant);
- the refusals: a non-trivial g_idx, float zero points, bits=3, 8-bit zero points other
  than 128, a B of the wrong size.

Usage: nbits_import.py LOWBIT
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
from onnx import TensorProto, helper, numpy_helper

LOWBIT = sys.argv[1]
rng = np.random.default_rng(11)
failures = []


def pack(codes, bits):
    """codes uint8 [rows, m] -> [rows, m * bits / 8], low bits first"""
    per = 8 // bits
    rows, m = codes.shape
    c = codes.reshape(rows, m // per, per).astype(np.uint8)
    out = np.zeros((rows, m // per), np.uint8)
    for s in range(per):
        out |= (c[..., s] << (bits * s)).astype(np.uint8)
    return out


def make(k, n, bits, block, zp=True, bias=False, level=None, gidx=None, a_shape=None, float_zp=False):
    n_blocks = (k + block - 1) // block
    mid, qmax = 1 << (bits - 1), (1 << bits) - 1
    codes = rng.integers(0, qmax + 1, size=(n, n_blocks * block)).astype(np.uint8)
    codes[:, k:] = 0  # padding of the last block
    scales = (rng.uniform(0.01, 0.1, size=n * n_blocks) * rng.choice([-1, 1], size=n * n_blocks)).astype(np.float32)
    zps = rng.integers(0, qmax + 1, size=(n, n_blocks)).astype(np.uint8) if zp else np.full((n, n_blocks), mid, np.uint8)
    inits = [numpy_helper.from_array(pack(codes, bits).reshape(n, n_blocks, block * bits // 8), "B"),
             numpy_helper.from_array(scales, "scales")]
    ins = ["A", "B", "scales"]
    if zp:
        zb = (n_blocks * bits + 7) // 8
        per = 8 // bits
        zfull = np.full((n, zb * per), mid, np.uint8)
        zfull[:, :n_blocks] = zps
        arr = zps.astype(np.float32).reshape(-1) if float_zp else pack(zfull, bits).reshape(-1)
        inits.append(numpy_helper.from_array(arr, "zp"))
        ins.append("zp")
    if gidx is not None or bias:
        if not zp:
            ins.append("")
        if gidx is not None:
            inits.append(numpy_helper.from_array(np.asarray(gidx, np.int32), "g_idx"))
            ins.append("g_idx")
        else:
            ins.append("")
    b = None
    if bias:
        b = rng.uniform(-1, 1, size=n).astype(np.float32)
        inits.append(numpy_helper.from_array(b, "bias"))
        ins.append("bias")
    attrs = {"K": k, "N": n, "bits": bits, "block_size": block}
    if level is not None:
        attrs["accuracy_level"] = level
    a_shape = a_shape or [3, k]
    node = helper.make_node("MatMulNBits", ins, ["y"], domain="com.microsoft", **attrs)
    g = helper.make_graph([node], "t", [helper.make_tensor_value_info("A", TensorProto.FLOAT, a_shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, a_shape[:-1] + [n])], inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    blk = np.arange(k) // block
    s2 = scales.reshape(n, n_blocks)

    def weight(sc):
        return (sc[:, blk] * (codes[:, :k].astype(np.float64) - zps[:, blk])).T  # [K, N]

    w16 = weight(s2.astype(np.float16).astype(np.float64))
    w32 = weight(s2.astype(np.float64))
    return model, w16, w32, b, a_shape


def run(model, x):
    with tempfile.TemporaryDirectory() as d:
        mp = os.path.join(d, "m.onnx")
        with open(mp, "wb") as f:
            f.write(model.SerializeToString())
        r = subprocess.run([LOWBIT, "compile", mp, "-o", os.path.join(d, "exe")], capture_output=True, text=True)
        if r.returncode != 0:
            return None, r.stderr
        with open(os.path.join(d, "x.pb"), "wb") as f:
            f.write(numpy_helper.from_array(x, "A").SerializeToString())
        r = subprocess.run([os.path.join(d, "exe"), os.path.join(d, "x.pb"), "-o", d], capture_output=True, text=True)
        if r.returncode != 0:
            return None, r.stderr
        t = TensorProto()
        with open(os.path.join(d, "output_0.pb"), "rb") as f:
            t.ParseFromString(f.read())
        return numpy_helper.to_array(t), ""


def check(name, **kw):
    model, w16, w32, b, a_shape = make(**kw)
    x = rng.uniform(-1, 1, size=a_shape).astype(np.float32)
    y, err = run(model, x)
    if y is None:
        failures.append(f"{name}: {err.strip()}")
        return
    ref = x.astype(np.float64) @ w16 + (b if b is not None else 0)
    ref32 = x.astype(np.float64) @ w32 + (b if b is not None else 0)
    scale = max(1.0, float(np.max(np.abs(ref))))
    e16 = float(np.max(np.abs(y - ref))) / scale
    e32 = float(np.max(np.abs(y - ref32))) / scale
    ok = y.shape == ref.shape and e16 <= 1e-5 and e32 <= 2e-3
    print(f"{'ok  ' if ok else 'FAIL'} {name}: max rel error {e16:.2g} (f16 scales), {e32:.2g} (f32 scales)")
    if not ok:
        failures.append(f"{name}: shape {y.shape} vs {ref.shape}, errors {e16:.3g} / {e32:.3g}")


def refuse(name, expect, **kw):
    model = make(**kw)[0]
    y, err = run(model, np.zeros(kw.get("a_shape") or [3, kw["k"]], np.float32))
    ok = y is None and expect in err
    print(f"{'ok  ' if ok else 'FAIL'} {name}: {err.strip().splitlines()[0] if err else 'compiled'}")
    if not ok:
        failures.append(f"{name}: expected an error with '{expect}', got: {err.strip() or 'success'}")


check("4-bit, zero points, block 32", k=64, n=24, bits=4, block=32)
check("4-bit, no zero points (8), block 16", k=64, n=16, bits=4, block=16, zp=False)
check("4-bit, K=80 with block 32 (padded last block, odd block count)", k=80, n=8, bits=4, block=32)
check("4-bit, block 128 > K", k=96, n=8, bits=4, block=128)
check("4-bit, bias, rank-3 A", k=64, n=12, bits=4, block=32, bias=True, a_shape=[2, 3, 64])
check("4-bit, accuracy_level 4", k=64, n=8, bits=4, block=32, level=4)
check("4-bit, trivial g_idx and bias without zero points", k=64, n=8, bits=4, block=32, zp=False,
      gidx=np.arange(64) // 32, bias=True)
check("2-bit, zero points, block 64", k=128, n=8, bits=2, block=64)
check("2-bit, no zero points", k=64, n=8, bits=2, block=32, zp=False)
check("8-bit, no zero points (128)", k=64, n=8, bits=8, block=32, zp=False)



def dq_model(k, n, block, kind, consumer="MatMul"):
    """DequantizeLinear-21 (axis 0, block_size) of a constant [K,N] weight read by MatMul (or
    by Add): kind int4 / uint4 / int4zp / int8 / uint8."""
    nb = (k + block - 1) // block
    bits = 4 if "4" in kind else 8
    signed = kind.startswith("int")
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    q = rng.integers(lo, hi + 1, size=(k, n))
    scales = rng.uniform(0.01, 0.1, size=(nb, n)).astype(np.float32)
    with_zp = kind in ("uint4", "int4zp", "uint8")
    zp = rng.integers(lo, hi + 1, size=(nb, n)) if with_zp else np.zeros((nb, n), np.int64)
    code = {"int4": 22, "uint4": 21, "int4zp": 22, "int8": TensorProto.INT8, "uint8": TensorProto.UINT8}[kind]

    def tensor4(name, arr):
        t = TensorProto()
        t.name = name
        t.data_type = code
        t.dims.extend(arr.shape)
        flat = (arr.reshape(-1) & ((1 << bits) - 1)).astype(np.uint8)
        if bits == 4:
            if flat.size % 2:
                flat = np.append(flat, 0)
            flat = flat[0::2] | (flat[1::2] << 4)
        t.raw_data = flat.astype(np.uint8).tobytes()
        return t

    inits = [tensor4("B", q), numpy_helper.from_array(scales, "s")]
    ins = ["B", "s"]
    if with_zp:
        inits.append(tensor4("z", zp))
        ins.append("z")
    nodes = [helper.make_node("DequantizeLinear", ins, ["w"], axis=0, block_size=block),
             helper.make_node(consumer, ["A", "w"], ["y"])]
    a_shape = [3, k] if consumer == "MatMul" else [k, n]
    out_shape = [3, n] if consumer == "MatMul" else [k, n]
    g = helper.make_graph(nodes, "t", [helper.make_tensor_value_info("A", TensorProto.FLOAT, a_shape)],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    blk = np.arange(k) // block
    w16 = (q - zp[blk]) * scales[blk].astype(np.float16).astype(np.float64)
    w32 = (q - zp[blk]) * scales[blk].astype(np.float64)
    return model, w16, w32, a_shape


def check_dq(name, expect_qmatmul, **kw):
    model, w16, w32, a_shape = dq_model(**kw)
    x = rng.uniform(-1, 1, size=a_shape).astype(np.float32)
    y, err = run(model, x)
    if y is None:
        failures.append(f"{name}: {err.strip()}")
        return
    if kw.get("consumer", "MatMul") == "MatMul":  # f16 scales only in qmatmul's weight
        ref, ref32 = x.astype(np.float64) @ (w16 if expect_qmatmul else w32), x.astype(np.float64) @ w32
    else:
        ref = ref32 = x.astype(np.float64) + w32
    with tempfile.TemporaryDirectory() as d:
        mp = os.path.join(d, "m.onnx")
        with open(mp, "wb") as f:
            f.write(model.SerializeToString())
        r = subprocess.run([LOWBIT, "compile", mp, "--emit", "ir", "-o", os.path.join(d, "m.lbir")],
                           capture_output=True, text=True)
        ir = open(os.path.join(d, "m.lbir")).read() if r.returncode == 0 else ""
    has_q = "qmatmul(" in ir
    scale = max(1.0, float(np.max(np.abs(ref))))
    e16 = float(np.max(np.abs(y - ref))) / scale
    e32 = float(np.max(np.abs(y - ref32))) / scale
    ok = e16 <= 1e-5 and e32 <= 2e-3 and has_q == expect_qmatmul
    print(f"{'ok  ' if ok else 'FAIL'} {name}: max rel error {e16:.2g} / {e32:.2g}, qmatmul: {has_q}")
    if not ok:
        failures.append(f"{name}: errors {e16:.3g} / {e32:.3g}, qmatmul {has_q} (expected {expect_qmatmul})")


check_dq("DequantizeLinear int4 block 32 -> MatMul", True, k=64, n=16, block=32, kind="int4")
check_dq("DequantizeLinear uint4 + zero point, K=80 block 32 -> MatMul", True, k=80, n=8, block=32, kind="uint4")
check_dq("DequantizeLinear int4 + zero point block 16 -> MatMul", True, k=64, n=8, block=16, kind="int4zp")
check_dq("DequantizeLinear int8 block 32 -> MatMul", True, k=64, n=8, block=32, kind="int8")
check_dq("DequantizeLinear uint8 + zero point -> MatMul (f32 weight)", False, k=64, n=8, block=32, kind="uint8")
check_dq("DequantizeLinear int4 -> Add (f32 constant)", False, k=64, n=8, block=32, kind="int4", consumer="Add")

refuse("non-trivial g_idx", "only the trivial g_idx", k=64, n=8, bits=4, block=32,
       gidx=(np.arange(64) + 1) % 64 // 32)
refuse("float zero points", "float zero points are not supported", k=64, n=8, bits=4, block=32, float_zp=True)
refuse("8-bit zero points", "8-bit zero points other than 128", k=64, n=8, bits=8, block=32)

bad = make(k=64, n=8, bits=4, block=32)[0]
for a in bad.graph.node[0].attribute:
    if a.name == "bits":
        a.i = 3
y, err = run(bad, np.zeros([3, 64], np.float32))
ok = y is None and "bits=3 is not supported" in err
print(f"{'ok  ' if ok else 'FAIL'} bits=3: {err.strip().splitlines()[0] if err else 'compiled'}")
if not ok:
    failures.append(f"bits=3: {err.strip() or 'success'}")
bad = make(k=64, n=8, bits=4, block=32)[0]
for a in bad.graph.node[0].attribute:
    if a.name == "K":
        a.i = 96
bad.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 96
y, err = run(bad, np.zeros([3, 96], np.float32))
ok = y is None and "B must be uint8 [N=8, n_blocks=3, blob_size=16]" in err
print(f"{'ok  ' if ok else 'FAIL'} B of the wrong size: {err.strip().splitlines()[0] if err else 'compiled'}")
if not ok:
    failures.append(f"B of the wrong size: {err.strip() or 'success'}")

print(f"{13 + 2 + 6 - len(failures)} passed, {len(failures)} failed")
for f in failures:
    print("  " + f)
sys.exit(1 if failures else 0)
