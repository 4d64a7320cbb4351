#!/usr/bin/python3
"""Seed corpora for the libFuzzer targets (tests/fuzz/), from the repo's own inputs.

    tests/fuzz/make_seeds.py OUTDIR [--node-tests DIR] [--lowbit PATH] [--max-size BYTES]

Fills OUTDIR/<target>/ for fuzz_onnx_load, fuzz_ir_parse, fuzz_tensor_pb and
fuzz_tensor_npy (existing files are replaced; nothing else is touched):
  onnx_load   tests/fixtures/e2e/*/model.onnx, examples/*/model.onnx,
              tests/unit/frontend/models/*.onnx, a few small models built here with
              onnx.helper (symbolic dims, a subgraph, typed initializers, external
              data), and with --node-tests (tests/conformance/gen_data.py's output)
              the model.onnx of every case in tests/conformance/expected_pass.txt
  ir_parse    tests/lit/**/*.lbir, and with --lowbit (a built bin/lowbit) the IR that
              `lowbit compile --emit ir` prints for some of the small ONNX seeds
  tensor_pb   every .pb under tests/fixtures and examples (and the node tests' inputs)
              plus TensorProtos built here in raw and typed encodings
  tensor_npy  .npy files written by numpy (every dtype lowbit reads, rank 0..8, v1/v2)
  safetensors LoRA adapters in PEFT's layout (F32/F16/BF16, metadata, padding), as
              tests/cli/lora_models.py writes them
Files above --max-size (default 1 MiB) are skipped: libFuzzer's speed drops with
the size of its largest input. Corpora are generated, never committed.
"""
import argparse
import glob
import hashlib
import io
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Corpus:
    def __init__(self, out, max_size):
        self.out, self.max_size, self.counts = out, max_size, {}

    def add(self, target, data, tag):
        if len(data) > self.max_size:
            return
        d = os.path.join(self.out, target)
        os.makedirs(d, exist_ok=True)
        name = f"{tag}-{hashlib.sha1(data).hexdigest()[:12]}"
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
        self.counts[target] = self.counts.get(target, 0) + 1

    def add_file(self, target, path):
        with open(path, "rb") as f:
            self.add(target, f.read(), os.path.basename(os.path.dirname(path)) or "seed")


def onnx_models(c, node_tests):
    pats = ["tests/fixtures/e2e/*/model.onnx", "examples/*/model.onnx",
            "tests/unit/frontend/models/*.onnx"]
    for pat in pats:
        for p in sorted(glob.glob(os.path.join(ROOT, pat))):
            c.add_file("fuzz_onnx_load", p)
    if node_tests:
        with open(os.path.join(ROOT, "tests/conformance/expected_pass.txt")) as f:
            cases = [l.strip() for l in f if l.strip() and not l.startswith("#")]
        for case in cases:
            m = os.path.join(node_tests, case, "model.onnx")
            if os.path.exists(m):
                c.add_file("fuzz_onnx_load", m)
            for pb in sorted(glob.glob(os.path.join(node_tests, case, "test_data_set_0", "*.pb"))):
                c.add_file("fuzz_tensor_pb", pb)
    try:
        import numpy as np
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        print("make_seeds: python3-onnx missing, no generated models", file=sys.stderr)
        return
    H = helper

    def model(nodes, inputs, outputs, inits=(), opset=17, name="g"):
        g = H.make_graph(nodes, name, inputs, outputs, initializer=list(inits))
        m = H.make_model(g, opset_imports=[H.make_opsetid("", opset)])
        m.ir_version = 8
        return m.SerializeToString()

    f32 = TensorProto.FLOAT
    # symbolic dims bound with --dim, a typed (non-raw) initializer
    w = H.make_tensor("w", f32, [4, 3], [float(i) / 7 for i in range(12)])
    b = numpy_helper.from_array(np.arange(3, dtype=np.float32), "b")
    c.add("fuzz_onnx_load", model(
        [H.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
         H.make_node("Add", ["h", "b"], ["y"], name="add")],
        [H.make_tensor_value_info("x", f32, ["batch", 4])],
        [H.make_tensor_value_info("y", f32, ["batch", 3])], [w, b]), "gen")
    # shape arithmetic the frontend evaluates: Shape -> Gather -> Concat -> Reshape
    i64 = TensorProto.INT64
    c.add("fuzz_onnx_load", model(
        [H.make_node("Shape", ["x"], ["s"]),
         H.make_node("Constant", [], ["i0"], value=H.make_tensor("i0", i64, [1], [0])),
         H.make_node("Gather", ["s", "i0"], ["n"], axis=0),
         H.make_node("Constant", [], ["m1"], value=H.make_tensor("m1", i64, [1], [-1])),
         H.make_node("Concat", ["n", "m1"], ["t"], axis=0),
         H.make_node("Reshape", ["x", "t"], ["y"])],
        [H.make_tensor_value_info("x", f32, ["batch", "seq", 2])],
        [H.make_tensor_value_info("y", f32, None)]), "gen")
    # an If with subgraphs (unsupported control flow must be refused cleanly)
    then_g = H.make_graph([H.make_node("Relu", ["x"], ["t"])], "then", [],
                          [H.make_tensor_value_info("t", f32, [2])])
    else_g = H.make_graph([H.make_node("Neg", ["x"], ["e"])], "else", [],
                          [H.make_tensor_value_info("e", f32, [2])])
    c.add("fuzz_onnx_load", model(
        [H.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)],
        [H.make_tensor_value_info("c", TensorProto.BOOL, []),
         H.make_tensor_value_info("x", f32, [2])],
        [H.make_tensor_value_info("y", f32, [2])]), "gen")
    # an initializer in external data (refused: no base directory when fuzzing)
    ext = numpy_helper.from_array(np.ones((2, 2), np.float32), "e")
    ext.ClearField("raw_data")
    ext.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "weights.bin"), ("offset", "0"), ("length", "16")):
        e = ext.external_data.add()
        e.key, e.value = k, v
    c.add("fuzz_onnx_load", model(
        [H.make_node("Add", ["x", "e"], ["y"])],
        [H.make_tensor_value_info("x", f32, [2, 2])],
        [H.make_tensor_value_info("y", f32, [2, 2])], [ext]), "gen")
    # names that need quoting in the IR text, attributes of every kind
    c.add("fuzz_onnx_load", model(
        [H.make_node("Transpose", ["in put"], ["out\"put"], name="n\n1", perm=[1, 0]),
         H.make_node("Softmax", ["out\"put"], ["s::m"], axis=-1),
         H.make_node("LeakyRelu", ["s::m"], ["z\u00e9"], alpha=0.1)],
        [H.make_tensor_value_info("in put", f32, [3, 2])],
        [H.make_tensor_value_info("z\u00e9", f32, [2, 3])]), "gen")


def lbir(c):
    for p in sorted(glob.glob(os.path.join(ROOT, "tests/lit/**/*.lbir"), recursive=True)):
        c.add_file("fuzz_ir_parse", p)


def lowbit_ir(c, lowbit, node_tests):
    """IR text of real models (every syntax form the printer writes after the passes)."""
    models = [(os.path.join(ROOT, "examples/mlp/model.onnx"), ["--dim", "batch=2"])]
    models += [(p, ["--dim", "batch=1", "--dim", "seq=4"]) for p in
               sorted(glob.glob(os.path.join(ROOT, "tests/unit/frontend/models/*.onnx")))]
    if node_tests:
        with open(os.path.join(ROOT, "tests/conformance/expected_pass.txt")) as f:
            cases = [l.strip() for l in f if l.strip() and not l.startswith("#")]
        models += [(os.path.join(node_tests, k, "model.onnx"), []) for k in cases[::4]]
    with tempfile.TemporaryDirectory() as tmp:
        def one(i_m):
            i, (m, args) = i_m
            out = os.path.join(tmp, f"{i}.lbir")
            r = subprocess.run([lowbit, "compile", m, *args, "--emit", "ir", "-o", out],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            return out if r.returncode == 0 and os.path.exists(out) else None
        with ThreadPoolExecutor(os.cpu_count() or 1) as ex:
            for out in ex.map(one, enumerate(m for m in models if os.path.exists(m[0]))):
                if out:
                    with open(out, "rb") as f:
                        c.add("fuzz_ir_parse", f.read(), "lowbit")


def tensors(c):
    for p in sorted(glob.glob(os.path.join(ROOT, "tests/fixtures/**/*.pb"), recursive=True) +
                    glob.glob(os.path.join(ROOT, "examples/**/*.pb"), recursive=True)):
        c.add_file("fuzz_tensor_pb", p)
    try:
        import numpy as np
    except ImportError:
        print("make_seeds: python3-numpy missing, no .npy seeds", file=sys.stderr)
        return
    rng = np.random.default_rng(1)
    dtypes = [np.float32, np.float64, np.float16, np.int8, np.int16, np.int32, np.int64,
              np.uint8, np.uint16, np.uint32, np.uint64, np.bool_]
    shapes = [(), (3,), (2, 3), (1, 2, 1, 2), (0, 4), (1,) * 8]
    for dt in dtypes:
        for shape in shapes:
            a = (rng.standard_normal(shape) * 10).astype(dt)
            for version in ((1, 0), (2, 0)) if shape == (2, 3) else (None,):
                buf = io.BytesIO()
                if version is None:
                    np.save(buf, a)
                else:
                    np.lib.format.write_array(buf, a, version=version)
                c.add("fuzz_tensor_npy", buf.getvalue(), f"{np.dtype(dt).str[1:]}")
    # big-endian and fortran order: refused, but well-formed
    buf = io.BytesIO()
    np.save(buf, np.arange(6, dtype=">f4").reshape(2, 3))
    c.add("fuzz_tensor_npy", buf.getvalue(), "be")
    buf = io.BytesIO()
    np.save(buf, np.asfortranarray(np.arange(6, dtype="<i4").reshape(2, 3)))
    c.add("fuzz_tensor_npy", buf.getvalue(), "fortran")
    try:
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        return
    for dt in dtypes:
        a = (rng.standard_normal((2, 3)) * 10).astype(dt)
        c.add("fuzz_tensor_pb", numpy_helper.from_array(a, "t").SerializeToString(), "raw")
        onnx_dt = helper.np_dtype_to_tensor_dtype(a.dtype) if hasattr(
            helper, "np_dtype_to_tensor_dtype") else None
        if onnx_dt is None:
            from onnx.mapping import NP_TYPE_TO_TENSOR_TYPE
            onnx_dt = NP_TYPE_TO_TENSOR_TYPE[a.dtype]
        vals = a.flatten().tolist()
        if a.dtype == np.float16:
            vals = a.view(np.uint16).flatten().tolist()
        t = helper.make_tensor("typed", onnx_dt, a.shape, vals, raw=False)
        c.add("fuzz_tensor_pb", t.SerializeToString(), "typed")
    c.add("fuzz_tensor_pb", helper.make_tensor("s", TensorProto.FLOAT, [], [1.5]).SerializeToString(),
          "scalar")


def safetensors(c):
    try:
        import numpy as np
        sys.path.insert(0, os.path.join(ROOT, "tests", "cli"))
        from lora_models import write_safetensors
    except ImportError:
        print("make_seeds: python3-numpy missing, no safetensors seeds", file=sys.stderr)
        return
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((4, 16)).astype(np.float32), rng.standard_normal((8, 4)).astype(np.float32)
    cases = {
        "f32": [("base_model.model.l.lora_A.weight", "F32", a), ("base_model.model.l.lora_B.weight", "F32", b)],
        "f16": [("m.lora_A.weight", "F16", a.astype(np.float16)), ("m.lora_B.weight", "F16", b.astype(np.float16))],
        "bf16": [("x", "BF16", (a.view(np.uint32) >> 16).astype(np.uint16)), ("e", "F32", np.zeros((0, 3), np.float32))],
    }
    with tempfile.TemporaryDirectory() as d:
        for tag, tensors in cases.items():
            for meta in (None, {"format": "pt"}):
                p = os.path.join(d, "s")
                write_safetensors(p, tensors, meta)
                with open(p, "rb") as f:
                    c.add("fuzz_safetensors", f.read(), tag)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--node-tests", help="tests/conformance/gen_data.py output directory")
    ap.add_argument("--lowbit", help="a built lowbit, to add the IR it prints as seeds")
    ap.add_argument("--max-size", type=int, default=1 << 20)
    a = ap.parse_args()
    c = Corpus(a.out, a.max_size)
    node_tests = a.node_tests if a.node_tests and os.path.isdir(a.node_tests) else None
    onnx_models(c, node_tests)
    lbir(c)
    if a.lowbit and os.access(a.lowbit, os.X_OK):
        lowbit_ir(c, a.lowbit, node_tests)
    tensors(c)
    safetensors(c)
    for t in ("fuzz_onnx_load", "fuzz_ir_parse", "fuzz_tensor_pb", "fuzz_tensor_npy", "fuzz_safetensors"):
        os.makedirs(os.path.join(a.out, t), exist_ok=True)
        print(f"make_seeds: {t}: {c.counts.get(t, 0)} seeds")


if __name__ == "__main__":
    main()
