#!/usr/bin/python3
"""Make a function-preserving "outlier" variant of the byte GPT fixture.

    /usr/bin/python3 tests/gpt/make_outlier_variant.py \
        [--model tests/fixtures/gpt_byte_4l/model.onnx] -o variant.onnx \
        [--channels 5] [--min-factor 25] [--max-factor 80] [--seed 3]

Large LLMs develop a few LayerNorm output channels whose magnitude is tens of
times that of the others (Dettmers et al., LLM.int8(); Xiao et al.,
SmoothQuant). A per-tensor int8 scale sized for those channels leaves the rest
with a handful of levels. The small fixture was trained too briefly to show
this, so this script plants it without changing the function: for each
LayerNormalization whose output feeds exactly one MatMul with a constant 2-D
weight, `--channels` channels j (seeded choice) get a factor f_j in
[min, max]; the LayerNorm's gamma_j and beta_j are multiplied by f_j and row j
of the MatMul's weight divided by f_j, so X·W is unchanged up to f32
rounding. Weights shared with other nodes are copied first.

Prints one line per LayerNorm (channels and factors). The held-out perplexity
under onnxruntime must equal the original's (4.458208) within 1e-4.
"""
import argparse
import sys

import numpy as np
import onnx
from onnx import numpy_helper


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tests/fixtures/gpt_byte_4l/model.onnx")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--channels", type=int, default=5, help="outlier channels per LayerNorm")
    ap.add_argument("--min-factor", type=float, default=25.0)
    ap.add_argument("--max-factor", type=float, default=80.0)
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()
    if not (1 <= args.min_factor <= args.max_factor):
        sys.exit("make_outlier_variant: need 1 <= --min-factor <= --max-factor")

    m = onnx.load(args.model)
    g = m.graph
    inits = {t.name: t for t in g.initializer}
    consumers = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    uses = {name: len(consumers.get(name, [])) for name in inits}
    rng = np.random.RandomState(args.seed)

    def private_copy(node, slot):
        """The initializer at node.input[slot], copied if anything else reads it."""
        name = node.input[slot]
        if uses[name] == 1:
            return inits[name]
        new = onnx.TensorProto()
        new.CopyFrom(inits[name])
        new.name = f"{name}.outlier.{node.name}"
        g.initializer.append(new)
        inits[new.name] = new
        uses[name] -= 1
        uses[new.name] = 1
        node.input[slot] = new.name
        return new

    changed = 0
    for ln in g.node:
        if ln.op_type != "LayerNormalization" or len(ln.input) < 3:
            continue
        readers = consumers.get(ln.output[0], [])
        if len(readers) != 1 or readers[0].op_type != "MatMul" or readers[0].input[0] != ln.output[0]:
            continue
        mm = readers[0]
        if mm.input[1] not in inits or any(i not in inits for i in ln.input[1:3]):
            continue
        gamma_t, beta_t = private_copy(ln, 1), private_copy(ln, 2)
        w_t = private_copy(mm, 1)
        gamma, beta, w = (numpy_helper.to_array(t).copy() for t in (gamma_t, beta_t, w_t))
        if w.ndim != 2 or gamma.shape != (w.shape[0],) or beta.shape != gamma.shape:
            continue
        chans = np.sort(rng.choice(w.shape[0], size=args.channels, replace=False))
        factors = rng.uniform(args.min_factor, args.max_factor, size=args.channels).astype(np.float32)
        gamma[chans] *= factors
        beta[chans] *= factors
        w[chans, :] /= factors[:, None]
        for t, a in ((gamma_t, gamma), (beta_t, beta), (w_t, w)):
            t.CopyFrom(numpy_helper.from_array(a.astype(np.float32), t.name))
        changed += 1
        print(f"{ln.name}: channels {chans.tolist()} x "
              f"{[round(float(f), 1) for f in factors]} (rows of {mm.name})")
    if changed == 0:
        sys.exit("make_outlier_variant: no LayerNormalization -> MatMul pair found")
    onnx.checker.check_model(m)
    onnx.save(m, args.output)
    print(f"wrote {args.output}: {changed} LayerNorms with {args.channels} outlier channels each")


if __name__ == "__main__":
    main()
