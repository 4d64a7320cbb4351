#!/usr/bin/python3
"""Emulation of onnxruntime 1.30's MatMulNBitsQuantizer with DefaultWeightOnlyQuantConfig (RTN
"weight only" quantization to com.microsoft MatMulNBits), for machines without the onnxruntime
Python package (this one has none).

    /usr/bin/python3 tests/gpt/ort_nbits.py MODEL.onnx OUT.onnx [--block-size 32] [--bits 4]
        [--asymmetric] [--accuracy-level N]

What is reproduced (read from onnxruntime/python/tools/quantization/matmul_nbits_quantizer.py,
DefaultWeightOnlyQuantizer.quantize_matmul / qbits_block_quant, and the C++ it calls through
quantize_matmul_4bits / quantize_matmul_8bits: MlasQuantizeBlockwise<float, bits> column-wise,
BlockwiseQuantizer::quantizeAndTranspose with range2scale / range2scalezp in
onnxruntime/core/mlas/lib/q4_dq.cpp; this is our own code):
- every MatMul whose B is a 2-D float initializer (K x N) becomes MatMulNBits(A, B_Q<bits>,
  B_scales[, B_zero_points]) {K, N, bits, block_size[, accuracy_level]} in domain com.microsoft,
  named <node>_Q<bits>, its output keeping the MatMul's name;
- B is padded with zero rows to a multiple of block_size; each block of block_size rows of one
  column gets, in float32:
  symmetric (the default): m = max if |max| > |min| else min (over the block), scale = -m / 2^(bits-1)
    (negative when the largest magnitude is positive), zero point 2^(bits-1) (not stored);
  asymmetric: range widened to include 0, scale = (max - min) / (2^bits - 1),
    zp = roundf(-min / scale) clamped to [0, 2^bits - 1];
  code = clamp(roundf(v * (1 / scale) + zp), 0, 2^bits - 1) (roundf: halves away from zero;
  1 / scale taken as 0 for a zero scale);
- B_Q is uint8 [N, n_blocks, block_size * bits / 8], codes packed low bits first along K;
  scales float32 [N * n_blocks] (column-major: scales[n * n_blocks + b]); zero points uint8
  [N * ceil(n_blocks * bits / 8)], packed the same way per column, unused slots 2^(bits-1);
- the replaced float initializers are removed, opset com.microsoft 1 is imported.
With --qdq, the QDQ form instead (QuantFormat.QDQ, 4 bits only): MatMul(A, DequantizeLinear(
B_DQ_Q4, B_DQ_scales[, B_DQ_zero_points]) {axis 0, block_size}) with int4 codes
clamp(roundf(v / scale), -8, 7) (symmetric) or uint4 codes and zero points, opset 21
(BlockwiseQDQQuantizer in q4_dq.cpp).
"""
import argparse
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper


def roundf(x):
    """C roundf on float32 values: halves away from zero (exact in float64)."""
    x = x.astype(np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def quantize_blockwise(w, bits, block, symmetric):
    """w float32 [K, N] -> (packed uint8 [N, n_blocks, blob], scales float32 [N * n_blocks],
    zero points uint8 [N * zp_bytes] or None)."""
    k, n = w.shape
    n_blocks = (k + block - 1) // block
    wp = np.zeros((n_blocks * block, n), np.float32)
    wp[:k] = w
    blocks = wp.reshape(n_blocks, block, n)                       # [b, i, n]
    mn = blocks.min(axis=1).astype(np.float32)                     # [b, n]
    mx = blocks.max(axis=1).astype(np.float32)
    mid, qmax = 1 << (bits - 1), (1 << bits) - 1
    if symmetric:
        m = np.where(np.abs(mx) > np.abs(mn), mx, mn).astype(np.float32)
        scale = (-m / np.float32(mid)).astype(np.float32)
        zp = np.full(scale.shape, mid, np.int64)
    else:
        lo = np.minimum(mn, np.float32(0))
        hi = np.maximum(mx, np.float32(0))
        scale = ((hi - lo) / np.float32(qmax)).astype(np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            zfp = np.where(scale != 0, np.float32(0) - lo / scale, lo).astype(np.float32)
        zp = np.where(zfp < 0, 0, np.where(zfp > qmax, qmax, roundf(np.clip(zfp, 0, qmax)))).astype(np.int64)
    with np.errstate(divide="ignore"):
        recip = np.where(scale != 0, np.float32(1) / scale, np.float32(0)).astype(np.float32)
    x = (blocks * recip[:, None, :]).astype(np.float32) + zp[:, None, :].astype(np.float32)
    codes = np.clip(roundf(x.astype(np.float32)), 0, qmax).astype(np.uint8)   # [b, i, n]
    per = 8 // bits
    c = codes.transpose(2, 0, 1).reshape(n, n_blocks, block // per, per)      # [n, b, byte, slot]
    packed = np.zeros((n, n_blocks, block // per), np.uint8)
    for s in range(per):
        packed |= (c[..., s] << (bits * s)).astype(np.uint8)
    scales = scale.T.reshape(-1).astype(np.float32)                            # [n * n_blocks]
    zps = None
    if not symmetric:
        zp_bytes = (n_blocks * bits + 7) // 8
        zcol = np.full((n, zp_bytes * per), mid, np.uint8)
        zcol[:, :n_blocks] = zp.T
        zcol = zcol.reshape(n, zp_bytes, per)
        zps = np.zeros((n, zp_bytes), np.uint8)
        for s in range(per):
            zps |= (zcol[..., s] << (bits * s)).astype(np.uint8)
        zps = zps.reshape(-1)
    return packed, scales, zps


def quantize_blockwise_qdq(w, block, symmetric):
    """The QDQ form (quant_format=QDQ, 4 bits; quantize_qdq_matmul_4bits ->
    BlockwiseQDQQuantizer): the same scales and zero points as quantize_blockwise, signed int4
    codes clamp(roundf(v * (1 / scale)), -8, 7) when symmetric (no zero point), else uint4
    clamp(roundf(v * (1 / scale)) + zp, 0, 15). Returns (codes [K, N], scales [n_blocks, N],
    zero points [n_blocks, N] or None)."""
    k, n = w.shape
    n_blocks = (k + block - 1) // block
    wp = np.zeros((n_blocks * block, n), np.float32)
    wp[:k] = w
    blocks = wp.reshape(n_blocks, block, n)
    mn = blocks.min(axis=1).astype(np.float32)
    mx = blocks.max(axis=1).astype(np.float32)
    if symmetric:
        m = np.where(np.abs(mx) > np.abs(mn), mx, mn).astype(np.float32)
        scale = (-m / np.float32(8)).astype(np.float32)
        zp = None
    else:
        lo = np.minimum(mn, np.float32(0))
        hi = np.maximum(mx, np.float32(0))
        scale = ((hi - lo) / np.float32(15)).astype(np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            zfp = np.where(scale != 0, np.float32(0) - lo / scale, lo).astype(np.float32)
        zp = np.where(zfp < 0, 0, np.where(zfp > 15, 15, roundf(np.clip(zfp, 0, 15)))).astype(np.int64)
    with np.errstate(divide="ignore"):
        recip = np.where(scale != 0, np.float32(1) / scale, np.float32(0)).astype(np.float32)
    r = roundf((blocks * recip[:, None, :]).astype(np.float32))
    codes = np.clip(r, -8, 7) if symmetric else np.clip(r + zp[:, None, :], 0, 15)
    return codes.reshape(n_blocks * block, n)[:k].astype(np.int64), scale, zp


def int4_tensor(name, arr, signed):
    """TensorProto INT4 (22) / UINT4 (21), row-major, two per byte, low nibble first (onnx 1.12
    has no helper for it)."""
    t = onnx.TensorProto()
    t.name = name
    t.data_type = 22 if signed else 21
    t.dims.extend(arr.shape)
    flat = (arr.reshape(-1) & 0xF).astype(np.uint8)
    if flat.size % 2:
        flat = np.append(flat, np.uint8(0))
    t.raw_data = (flat[0::2] | (flat[1::2] << 4)).astype(np.uint8).tobytes()
    return t


def quantize_model_qdq(model, block, symmetric):
    """MatMul(A, B) -> DequantizeLinear(B_DQ_Q4, B_DQ_scales[, B_DQ_zero_points]) {axis 0,
    block_size} -> MatMul, opset 21 (what quantize_matmul does with QuantFormat.QDQ)."""
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    new_nodes, n_done = [], 0
    for node in g.node:
        b = inits.get(node.input[1]) if node.op_type == "MatMul" and len(node.input) > 1 else None
        w = numpy_helper.to_array(b) if b is not None else None
        if w is None or w.ndim != 2 or w.dtype != np.float32:
            new_nodes.append(node)
            continue
        codes, scales, zp = quantize_blockwise_qdq(w, block, symmetric)
        q = int4_tensor(b.name + "_DQ_Q4", codes, symmetric)
        s = numpy_helper.from_array(scales, b.name + "_DQ_scales")
        g.initializer.extend([q, s])
        ins = [q.name, s.name]
        if zp is not None:
            z = int4_tensor(b.name + "_DQ_zero_points", zp, False)
            g.initializer.append(z)
            ins.append(z.name)
        dq_out = q.name + "_output"
        new_nodes.append(helper.make_node("DequantizeLinear", ins, [dq_out],
                                          name=node.name + "_DQ_Q4" if node.name else "", axis=0, block_size=block))
        new_nodes.append(helper.make_node("MatMul", [node.input[0], dq_out], [node.output[0]],
                                          name=node.name + "_matmul_Q4" if node.name else ""))
        n_done += 1
    del g.node[:]
    g.node.extend(new_nodes)
    used = {i for nd in g.node for i in nd.input} | {o.name for o in g.output}
    keep = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx") and o.version < 21:
            o.version = 21
    if model.ir_version < 10:
        model.ir_version = 10
    return n_done


def quantize_model(model, bits, block, symmetric, accuracy_level):
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    new_nodes, n_done = [], 0
    for node in g.node:
        b = inits.get(node.input[1]) if node.op_type == "MatMul" and len(node.input) > 1 else None
        w = numpy_helper.to_array(b) if b is not None else None
        if w is None or w.ndim != 2 or w.dtype != np.float32:
            new_nodes.append(node)
            continue
        packed, scales, zps = quantize_blockwise(w, bits, block, symmetric)
        q = numpy_helper.from_array(packed, b.name + f"_Q{bits}")
        s = numpy_helper.from_array(scales, b.name + "_scales")
        g.initializer.extend([q, s])
        ins = [node.input[0], q.name, s.name]
        if zps is not None:
            z = numpy_helper.from_array(zps, b.name + "_zero_points")
            g.initializer.append(z)
            ins.append(z.name)
        attrs = {"K": w.shape[0], "N": w.shape[1], "bits": bits, "block_size": block}
        if accuracy_level is not None:
            attrs["accuracy_level"] = accuracy_level
        new_nodes.append(helper.make_node("MatMulNBits", ins, [node.output[0]],
                                          name=node.name + f"_Q{bits}" if node.name else "",
                                          domain="com.microsoft", **attrs))
        n_done += 1
    del g.node[:]
    g.node.extend(new_nodes)
    used = {i for nd in g.node for i in nd.input} | {o.name for o in g.output}
    keep = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return n_done


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--block-size", type=int, default=32)
    ap.add_argument("--bits", type=int, default=4, choices=[2, 4, 8])
    ap.add_argument("--asymmetric", action="store_true")
    ap.add_argument("--accuracy-level", type=int, default=None)
    ap.add_argument("--qdq", action="store_true", help="QDQ form (4 bits): DequantizeLinear-21 int4 -> MatMul")
    a = ap.parse_args()
    if a.block_size < 16 or a.block_size & (a.block_size - 1):
        sys.exit("ort_nbits: block size must be a power of 2, at least 16")
    model = onnx.load(a.model)
    if a.qdq:
        if a.bits != 4:
            sys.exit("ort_nbits: the QDQ form is 4-bit only (as onnxruntime's)")
        n = quantize_model_qdq(model, a.block_size, not a.asymmetric)
        onnx.save(model, a.out)
        print(f"ort_nbits: {n} MatMul -> DequantizeLinear(int4, block {a.block_size}) + MatMul -> {a.out}")
        return
    n = quantize_model(model, a.bits, a.block_size, not a.asymmetric, a.accuracy_level)
    onnx.save(model, a.out)
    print(f"ort_nbits: {n} MatMul -> MatMulNBits (bits {a.bits}, block {a.block_size}, "
          f"{'asymmetric' if a.asymmetric else 'symmetric'}) -> {a.out}")


if __name__ == "__main__":
    main()
