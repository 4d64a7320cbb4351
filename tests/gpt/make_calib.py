#!/usr/bin/python3
"""Calibration samples for the GPT fixture, from its TRAINING text.

    /usr/bin/python3 tests/gpt/make_calib.py OUTDIR [--samples N]

Writes OUTDIR/sample_000/input_0.pb ... (N directories, default 32): each holds `tokens`,
int64 [1,128], one 128-byte window of the training text (TRAIN_FILES of train_gpt.py,
concatenated in that order, as the training script reads them). The windows start at N
evenly spaced offsets, so they cover every training file rather than the first one.
The held-out licences (HELDOUT_FILES) are never read: calibrating on the text the
perplexity is measured on would flatter the quantized model.

The file lists are read from train_gpt.py's source (not imported: importing it loads torch
and may re-execute the interpreter), so there is one list to maintain. Use as
`lowbit compile model.onnx --dim batch=1 --dim seq=128 --quant w8a8 --calib OUTDIR ...`.
"""
import argparse
import ast
import os
import sys

import numpy as np
from onnx import numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
CTX = 128


def file_lists():
    """TRAIN_FILES and HELDOUT_FILES as train_gpt.py defines them (module-level string
    assignments and list literals of names/concatenations, evaluated here)."""
    tree = ast.parse(open(os.path.join(HERE, "train_gpt.py")).read())
    env = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name in ("LIC", "DOC", "TRAIN_FILES", "HELDOUT_FILES"):
                env[name] = eval(compile(ast.Expression(node.value), "train_gpt.py", "eval"), {}, dict(env))
    for k in ("TRAIN_FILES", "HELDOUT_FILES"):
        if k not in env:
            sys.exit(f"make_calib: {k} not found in train_gpt.py")
    return env["TRAIN_FILES"], env["HELDOUT_FILES"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir")
    ap.add_argument("--samples", type=int, default=32, help="number of windows (default 32)")
    a = ap.parse_args()
    if a.samples < 1:
        ap.error("--samples must be >= 1")
    train, held = file_lists()
    overlap = set(map(os.path.realpath, train)) & set(map(os.path.realpath, held))
    if overlap:
        sys.exit(f"make_calib: training and held-out files overlap: {sorted(overlap)}")
    data = b"".join(open(p, "rb").read() for p in train)
    if len(data) < CTX:
        sys.exit("make_calib: training text shorter than one window")
    last = len(data) - CTX
    starts = [0] if a.samples == 1 else [i * last // (a.samples - 1) for i in range(a.samples)]
    os.makedirs(a.outdir, exist_ok=True)
    for i, s in enumerate(starts):
        d = os.path.join(a.outdir, f"sample_{i:03d}")
        os.makedirs(d, exist_ok=True)
        tokens = np.frombuffer(data[s:s + CTX], dtype=np.uint8).astype(np.int64).reshape(1, CTX)
        with open(os.path.join(d, "input_0.pb"), "wb") as f:
            f.write(numpy_helper.from_array(tokens, "tokens").SerializeToString())
    print(f"make_calib: wrote {len(starts)} samples of {CTX} bytes from {len(train)} training files "
          f"({len(data)} bytes) to {a.outdir}")


if __name__ == "__main__":
    main()
