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

INT8 variants (meta.json "variants": what bench/bench.js times against what): each model also
gets onnxruntime's int8 versions, made by tests/gpt/ort_quantize.py (our emulation of
onnxruntime's quantize_dynamic / quantize_static, since there is no Python onnxruntime here):
  MLPs  model.dyn.onnx   quantize_dynamic: DynamicQuantizeLinear + MatMulInteger + Cast + Mul,
                         int8 weights per tensor; lowbit compiles with --quant w8 (batch 1)
                         or --quant w8a8-dynamic (batch 64)
  gpt   model.qdq.onnx   quantize_static (QDQ, MinMax on 32 windows of the training text)
        model.dyn.onnx   quantize_dynamic
        calib/           the same 32 windows as lowbit calibration samples (calib/wNN/input_0.pb);
                         lowbit compiles with --quant w8a8 --calib calib (and w8a8-dynamic)
4-bit variant of mlp8x4096_b1 (issue 4): model.q4.onnx is onnxruntime's MatMulNBits form
(block 32, symmetric, accuracy_level 4 = int8 compute, its fastest mode), made by
tests/gpt/ort_nbits.py (emulating onnxruntime's MatMulNBits quantizer); lowbit compiles the
float model with --quant w4 --group-size 32 (--act int8, and f32 activations).
Mixed-precision variants of gpt (issue 5): lowbit --quant auto --target-bpw 3.5 --weight-algo
gptq --calib calib (--act int8, and f32 activations) against model.q4.onnx, onnxruntime's
MatMulNBits block 32 accuracy_level 4 (4.5 bits/weight with its scales).
Pass --no-int8 to write only the float models.
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
CALIB_WINDOWS = 32

sys.path.insert(0, os.path.join(REPO, "tests", "gpt"))
import ort_quantize  # noqa: E402 (tests/gpt/ort_quantize.py)
import ort_nbits  # noqa: E402 (tests/gpt/ort_nbits.py)


def save(model, path, external_name=None):
    """Saves model; with external_name, tensors over 1 KiB go to that file beside it."""
    if external_name:
        if os.path.exists(os.path.join(os.path.dirname(path), external_name)):
            os.remove(os.path.join(os.path.dirname(path), external_name))
        onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                        location=external_name, size_threshold=1024)
        onnx.checker.check_model(path)
    else:
        onnx.checker.check_model(model)
        onnx.save_model(model, path)


def variant(name, flags, ort_model, ort_label):
    """One bench.js row: lowbit compiled with `flags` (paths relative to the model folder)
    against onnxruntime running `ort_model`."""
    return {"name": name, "lowbit_flags": flags, "ort_model": ort_model, "ort_label": ort_label}


def write_pb(path, arr, name):
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(arr, name).SerializeToString())


def mlp(name, layers, width, batch, seed, outdir, external=False, int8=None, int4=False):
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
    variants = []
    if int8:
        # before saving: saving with external data moves the weights out of `model`
        save(ort_quantize.quantize_dynamic(model), os.path.join(d, "model.dyn.onnx"),
             "weights.dyn.bin" if external else None)
        variants.append(variant(int8, ["--quant", int8], "model.dyn.onnx", "quantize_dynamic"))
    if int4:
        q4 = onnx.ModelProto()
        q4.CopyFrom(model)
        ort_nbits.quantize_model(q4, 4, 32, True, 4)
        save(q4, os.path.join(d, "model.q4.onnx"), "weights.q4.bin" if external else None)
        del q4
        for flags, label in ((["--act", "int8"], "w4g32-act-int8"), ([], "w4g32")):
            v = variant(label, ["--quant", "w4", "--group-size", "32"] + flags, "model.q4.onnx",
                        "MatMulNBits b32 acc4")
            # issue 4: at least 2.5x faster than fp32; packed 4-bit codes + f16 scales
            v["min_speedup"] = 2.5
            v["weight_bytes"] = layers * width * width // 2 + layers * (width // 32) * width * 2
            variants.append(v)
    save(model, os.path.join(d, "model.onnx"), "weights.bin" if external else None)
    del model, inits
    x = rng.standard_normal((batch, width), dtype=np.float32)
    write_pb(os.path.join(d, "input_0.pb"), x, "x")
    meta = {"name": name, "model": "model.onnx", "inputs": ["input_0.pb"], "dims": {},
            "input_shapes": {"x": [batch, width]}, "dtype": "float32",
            "flops": 2 * layers * width * width * batch, "variants": variants}
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    return d


def gpt(src, outdir, seq=128, batch=1, int8=True):
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
    variants = []
    if int8:
        assert seq == ort_quantize.CTX and batch == 1, "calibration windows are [1, 128]"
        windows = ort_quantize.calib_windows(CALIB_WINDOWS)
        calib = os.path.join(d, "calib")
        shutil.rmtree(calib, ignore_errors=True)
        for i, w in enumerate(windows):
            os.makedirs(os.path.join(calib, f"w{i:02d}"))
            write_pb(os.path.join(calib, f"w{i:02d}", "input_0.pb"), w, inp.name)
        model = onnx.load(src)
        save(ort_quantize.quantize_static(model, windows), os.path.join(d, "model.qdq.onnx"))
        save(ort_quantize.quantize_dynamic(model), os.path.join(d, "model.dyn.onnx"))
        w8a8 = ["--quant", "w8a8", "--calib", "calib"]
        variants = [variant("w8a8", w8a8, "model.qdq.onnx", "quantize_static QDQ"),
                    variant("w8a8", w8a8, "model.dyn.onnx", "quantize_dynamic"),
                    variant("w8a8-dynamic", ["--quant", "w8a8-dynamic"], "model.dyn.onnx", "quantize_dynamic")]
        # issue 5: mixed precision at 3.5 bits/weight (GPTQ on the same windows) against
        # onnxruntime's 4-bit MatMulNBits (block 32, int8 compute), the nearest it has
        q4 = onnx.load(src)
        ort_nbits.quantize_model(q4, 4, 32, True, 4)
        save(q4, os.path.join(d, "model.q4.onnx"))
        mixed = ["--quant", "auto", "--target-bpw", "3.5", "--weight-algo", "gptq", "--calib", "calib"]
        for flags, label in ((["--act", "int8"], "mixed-3.5bpw-act-int8"), ([], "mixed-3.5bpw")):
            variants.append(variant(label, mixed + flags, "model.q4.onnx", "MatMulNBits b32 acc4"))
    meta = {"name": "gpt", "model": "model.onnx", "inputs": ["input_0.pb"], "dims": dims,
            "input_shapes": {inp.name: [batch, seq]}, "dtype": "int64", "source": src,
            "variants": variants}
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    return d


MODELS = {
    "mlp4x1024_b1": lambda o, a: mlp("mlp4x1024_b1", 4, 1024, 1, 101, o, int8=a.int8 and "w8"),
    "mlp4x1024_b64": lambda o, a: mlp("mlp4x1024_b64", 4, 1024, 64, 101, o, int8=a.int8 and "w8a8-dynamic"),
    "mlp8x4096_b1": lambda o, a: mlp("mlp8x4096_b1", 8, 4096, 1, 202, o, external=True, int8=a.int8 and "w8",
                                     int4=a.int8),
    "gpt": lambda o, a: gpt(a.gpt, o, int8=a.int8),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir")
    ap.add_argument("--only", default="", help="comma-separated subset of " + ",".join(MODELS))
    ap.add_argument("--gpt", default=DEFAULT_GPT, help="GPT model to copy (default: the fixture)")
    ap.add_argument("--no-int8", dest="int8", action="store_false",
                    help="only the float models (no onnxruntime int8 versions, no calibration samples)")
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
