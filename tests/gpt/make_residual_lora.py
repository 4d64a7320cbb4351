#!/usr/bin/python3
"""An ONNX LoRA adapter that corrects 4-bit rounding: for every linear layer of the GPT
fixture, the rank-R truncated SVD of W - deq(RTN_w4_g32(W)) (LoRC-style), so that
`lowbit compile model.onnx --quant w4 --lora residual.onnx` has f32 low-rank corrections
beside the 4-bit base. The RTN emulation follows passes/quantize.c (symmetric, group 32
along K, scale = f16(amax / 7.5), codes round-half-even clamped to [-8, 7]).

Usage: make_residual_lora.py MODEL.onnx OUT.onnx [--rank R]   (docs/quantization.md, "LoRA adapters")
"""
import argparse

import numpy as np
import onnx
from onnx import helper, numpy_helper


def rtn_w4_g32(w):
    k, n = w.shape
    deq = np.empty_like(w)
    for g0 in range(0, k, 32):
        blk = w[g0:g0 + 32].astype(np.float64)
        amax = np.abs(blk).max(axis=0)
        scale = np.where(amax > 0, amax / 7.5, 1.0).astype(np.float16).astype(np.float64)
        scale = np.where(scale > 0, scale, 2.0 ** -24)
        codes = np.clip(np.rint(blk / scale), -8, 7)
        deq[g0:g0 + 32] = (codes * scale).astype(np.float32)
    return deq


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--rank", type=int, default=16)
    a = ap.parse_args()
    m = onnx.load(a.model)
    inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    tensors = []
    for node in m.graph.node:
        if node.op_type != "MatMul" or node.input[1] not in inits:
            continue
        w = inits[node.input[1]].astype(np.float32)
        u, s, vt = np.linalg.svd((w - rtn_w4_g32(w)).astype(np.float64), full_matrices=False)
        r = min(a.rank, len(s))
        root = np.sqrt(s[:r])
        tensors += [numpy_helper.from_array((u[:, :r] * root).astype(np.float32), node.name + ".lora_A"),
                    numpy_helper.from_array((root[:, None] * vt[:r]).astype(np.float32), node.name + ".lora_B")]
    onnx.save(helper.make_model(helper.make_graph([], "residual_lora", [], [], tensors)), a.out)
    print("%s: %d pairs of rank %d" % (a.out, len(tensors) // 2, a.rank))


if __name__ == "__main__":
    main()
