#!/usr/bin/python3
"""Build the benchmark models.

    /usr/bin/python3 bench/make_models.py OUTDIR [--only a,b] [--gpt tests/fixtures/gpt_byte_4l/model.onnx]

For each model NAME writes OUTDIR/NAME/{model.onnx, input_0.pb, meta.json}; meta.json holds
the --dim bindings the compiler needs ({"dims": {"batch": 1, "seq": 128}} for gpt, {} for the
static models). mlp8x4096_b1 keeps its ~537 MB of weights in OUTDIR/mlp8x4096_b1/weights.bin
(external data). Generated into /tmp or similar: never commit the output.

Models (f32; random normal weights scaled 1/sqrt(fan_in), fixed seeds):
  mlp4x1024_b1, mlp4x1024_b64   4 x (MatMul 1024x1024 + Add bias), ReLU between, batch 1 / 64
  mlp8x4096_b1                  8 x (MatMul 4096x4096 + Add bias), ReLU between, batch 1
  gpt                           the byte-level GPT fixture (tests/gpt/train_gpt.py), tokens [1,128]
"""
import argparse
import json
import os
import shutil
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_GPT = os.path.join(REPO, "tests", "fixtures", "gpt_byte_4l", "model.onnx")
OPSET = 17


def write_pb(path, arr, name):
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(arr, name).SerializeToString())


def mlp(name, layers, width, batch, seed, outdir, external=False):
    rng = np.random.default_rng(seed)
    d = os.path.join(outdir, name)
    os.makedirs(d, exist_ok=True)
    inits, nodes = [], []
    cur = "x"
    scale = np.float32(1.0 / np.sqrt(width))
    for i in range(layers):
        w = rng.standard_normal((width, width), dtype=np.float32)
        w *= scale
        b = rng.standard_normal((width,), dtype=np.float32)
        b *= scale
        inits.append(numpy_helper.from_array(w, f"w{i}"))
        inits.append(numpy_helper.from_array(b, f"b{i}"))
        del w
        mm, add = f"mm{i}", (f"h{i}" if i < layers - 1 else "y")
        nodes.append(helper.make_node("MatMul", [cur, f"w{i}"], [mm], name=f"matmul{i}"))
        nodes.append(helper.make_node("Add", [mm, f"b{i}"], [add], name=f"add{i}"))
        cur = add
        if i < layers - 1:
            nodes.append(helper.make_node("Relu", [add], [f"r{i}"], name=f"relu{i}"))
            cur = f"r{i}"
    graph = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, width])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="lowbit-bench")
    model.ir_version = 8
    path = os.path.join(d, "model.onnx")
    if external:
        if os.path.exists(os.path.join(d, "weights.bin")):
            os.remove(os.path.join(d, "weights.bin"))
        onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                        location="weights.bin", size_threshold=1024)
        onnx.checker.check_model(path)
    else:
        onnx.checker.check_model(model)
        onnx.save_model(model, path)
    x = rng.standard_normal((batch, width), dtype=np.float32)
    write_pb(os.path.join(d, "input_0.pb"), x, "x")
    meta = {"name": name, "model": "model.onnx", "inputs": ["input_0.pb"], "dims": {},
            "input_shapes": {"x": [batch, width]}, "dtype": "float32",
            "flops": 2 * layers * width * width * batch}
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    return d


def gpt(src, outdir, seq=128, batch=1):
    if not os.path.exists(src):
        sys.exit(f"make_models: GPT model {src} not found (train it with tests/gpt/train_gpt.py "
                 f"or pass --gpt)")
    d = os.path.join(outdir, "gpt")
    os.makedirs(d, exist_ok=True)
    shutil.copyfile(src, os.path.join(d, "model.onnx"))
    m = onnx.load(src, load_external_data=False)
    inp = m.graph.input[0]
    # Bind symbolic dims in input order: first is batch, second is seq.
    dims = {}
    for dim, val in zip(inp.type.tensor_type.shape.dim, [batch, seq]):
        if dim.dim_param:
            dims[dim.dim_param] = val
    heldout = os.path.join(os.path.dirname(src), "heldout.txt")
    if os.path.exists(heldout):
        data = open(heldout, "rb").read()[:seq]
    else:
        data = bytes(np.random.default_rng(7).integers(32, 127, seq, dtype=np.uint8))
    tokens = np.frombuffer(data, dtype=np.uint8).astype(np.int64).reshape(batch, seq)
    write_pb(os.path.join(d, "input_0.pb"), tokens, inp.name)
    meta = {"name": "gpt", "model": "model.onnx", "inputs": ["input_0.pb"], "dims": dims,
            "input_shapes": {inp.name: [batch, seq]}, "dtype": "int64", "source": src}
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    return d


MODELS = {
    "mlp4x1024_b1": lambda o, a: mlp("mlp4x1024_b1", 4, 1024, 1, 101, o),
    "mlp4x1024_b64": lambda o, a: mlp("mlp4x1024_b64", 4, 1024, 64, 101, o),
    "mlp8x4096_b1": lambda o, a: mlp("mlp8x4096_b1", 8, 4096, 1, 202, o, external=True),
    "gpt": lambda o, a: gpt(a.gpt, o),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir")
    ap.add_argument("--only", default="", help="comma-separated subset of " + ",".join(MODELS))
    ap.add_argument("--gpt", default=DEFAULT_GPT, help="GPT model to copy (default: the fixture)")
    a = ap.parse_args()
    names = [n for n in a.only.split(",") if n] or list(MODELS)
    for n in names:
        if n not in MODELS:
            sys.exit(f"make_models: unknown model {n}")
    os.makedirs(a.outdir, exist_ok=True)
    for n in names:
        d = MODELS[n](a.outdir, a)
        print(f"wrote {d}", flush=True)


if __name__ == "__main__":
    main()
