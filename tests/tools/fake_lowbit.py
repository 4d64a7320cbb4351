#!/usr/bin/python3
"""A stand-in for `lowbit` that tests the HARNESS ONLY (conformance/run.py --self-test,
e2e/run.py --self-test). It computes nothing: its "executable" copies the expected
outputs stored next to the model (test_data_set_0/output_K.pb), optionally corrupted.
Never use it as a test of the compiler.

It follows lowbit's CLI contract closely enough to exercise the harness plumbing:
  fake_lowbit.py --list-ops            ops from $FAKE_LOWBIT_OPS (comma-separated), else
                                       every op of the default onnx domain
  fake_lowbit.py compile M.onnx -o EXE [--dim N=V]... [--bind N=F.pb]... [--target T] [--cpu C]
      * fails (exit 1) when a symbolic input dim has no --dim;
      * fails (exit 1, one `--bind NAME=` line per input) when a graph input feeds a
        shape/axes/size operand (Reshape's shape, Expand's shape, Slice's starts, ...)
        and was not bound;
  EXE in_0.pb ... -o OUTDIR/           checks it got exactly the unbound inputs, in order
                                       (byte-equal to the test data), writes outputs.

$FAKE_LOWBIT_MODE (applied to models whose directory name matches $FAKE_LOWBIT_ONLY, or
to all): pass (default) | noise (within tolerance) | corrupt | nan | shape | dtype |
missing | crash | hang | compile-error | numpy (computes the outputs with
tools/np_onnx.py instead of copying them; needs no test_data_set next to the model).
"""
import json
import os
import re
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

# graph inputs feeding these operand positions decide shapes -> need --bind
VALUE_OPERANDS = {
    "Reshape": [1], "Expand": [1], "Slice": [1, 2, 3, 4], "ConstantOfShape": [0],
    "Range": [0, 1, 2], "Tile": [1], "Split": [1], "Squeeze": [1], "Unsqueeze": [1],
    "Pad": [1, 2], "TopK": [1], "OneHot": [1], "Resize": [1, 2, 3], "Upsample": [1],
    "ReduceSum": [1], "CumSum": [1], "Trilu": [1],
}


def die(msg, rc=1):
    print(msg, file=sys.stderr)
    sys.exit(rc)


def mode_for(model_path):
    name = os.path.basename(os.path.dirname(os.path.abspath(model_path)))
    only = os.environ.get("FAKE_LOWBIT_ONLY")
    if only and not re.search(only, name):
        return "pass"
    return os.environ.get("FAKE_LOWBIT_MODE", "pass")


def list_ops():
    ops = os.environ.get("FAKE_LOWBIT_OPS")
    if ops:
        names = [o.strip() for o in ops.split(",") if o.strip()]
    else:
        import onnx.defs
        names = sorted({s.name for s in onnx.defs.get_all_schemas() if s.domain == ""})
    print("\n".join(names))


def compile_(argv):
    import onnx
    model = out = None
    dims, binds = {}, {}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "-o":
            out = argv[i + 1]
            i += 2
        elif a in ("--dim", "--bind"):
            k, _, v = argv[i + 1].partition("=")
            if not k or not v:
                die(f"fake lowbit: error: bad {a} {argv[i + 1]}", 2)
            (dims if a == "--dim" else binds)[k] = v
            i += 2
        elif a in ("--target", "--cpu"):
            i += 2
        elif a.startswith("-"):
            die(f"fake lowbit: error: unknown option {a}", 2)
        else:
            model = a
            i += 1
    if not model or not out:
        die("usage: lowbit compile model.onnx -o exe [options]", 2)
    mode = mode_for(model)
    if mode == "compile-error":
        die(f"{model}: node \"x\" (Add): error: fake compile error\nsecond line")
    m = onnx.load(model)
    g = m.graph
    init = {t.name for t in g.initializer}
    inputs = [vi.name for vi in g.input if vi.name not in init]
    for k in binds:
        if k not in inputs:
            die(f"fake lowbit: error: --bind {k}: no such graph input")
        if not os.path.isfile(binds[k]):
            die(f"fake lowbit: error: --bind {k}: cannot read {binds[k]}")
    for vi in g.input:
        if vi.name in binds or vi.name in init:
            continue
        for d in vi.type.tensor_type.shape.dim:
            if d.HasField("dim_param") and d.dim_param not in dims:
                die(f"{model}: error: input \"{vi.name}\" has symbolic dim \"{d.dim_param}\"; "
                    f"pass --dim {d.dim_param}=N")
    need = []
    for n in g.node:
        for pos in VALUE_OPERANDS.get(n.op_type, []):
            if pos < len(n.input) and n.input[pos] in inputs and n.input[pos] not in binds \
                    and n.input[pos] not in need:
                need.append(n.input[pos])
    if need:
        for name in need:
            print(f"{model}: error: a shape depends on the value of input \"{name}\"; "
                  f"pass --bind {name}=FILE.pb", file=sys.stderr)
        sys.exit(1)
    spec = {
        "model_dir": os.path.dirname(os.path.abspath(model)),
        "mode": mode,
        "model": os.path.abspath(model),
        "run_inputs": [k for k, name in enumerate(inputs) if name not in binds],
        "bound": {k: os.path.abspath(binds[name]) for k, name in enumerate(inputs)
                  if name in binds},
    }
    out = os.path.abspath(out)
    with open(out + ".json", "w") as f:
        json.dump(spec, f)
    with open(out, "w") as f:
        f.write(f"#!/bin/sh\nexec {sys.executable} {os.path.abspath(__file__)} __run__ "
                f"'{out}.json' \"$@\"\n")
    os.chmod(out, 0o755)


def _perturb(a, mode):
    import numpy as np
    a = np.array(a, copy=True)
    if mode == "noise":
        if a.dtype.kind == "f" and a.size:
            rng = np.random.default_rng(0)
            a = (a * (1 + rng.uniform(-2e-4, 2e-4, a.shape))).astype(a.dtype)
    elif mode == "corrupt":
        if a.dtype.kind == "f":
            a = (a + np.asarray(1e-2, a.dtype) * (1 + np.abs(a))).astype(a.dtype)
        elif a.dtype.kind == "b":
            a.flat[0] = not a.flat[0]
        elif a.size:
            a.flat[0] = a.flat[0] + 1 if a.flat[0] < np.iinfo(a.dtype).max else a.flat[0] - 1
    elif mode == "nan":
        if a.dtype.kind == "f" and a.size:
            a.flat[0] = np.nan
    elif mode == "shape":
        a = a.reshape(-1) if a.ndim != 1 else a.reshape(1, -1)
    elif mode == "dtype":
        a = a.astype(np.float64 if a.dtype == np.float32 else np.float32)
    return a


def run(spec_path, argv):
    import compare as cmp
    with open(spec_path) as f:
        spec = json.load(f)
    if "-o" not in argv:
        die("usage: exe input_0.pb ... -o outdir/", 2)
    k = argv.index("-o")
    given, outdir = argv[:k], argv[k + 1]
    ds = os.path.join(spec["model_dir"], "test_data_set_0")
    want = [os.path.join(ds, f"input_{i}.pb") for i in spec["run_inputs"]]
    mode = spec["mode"]
    if mode == "numpy":  # really compute, with tools/np_onnx.py
        import onnx
        import np_onnx
        files = dict((int(k), v) for k, v in spec["bound"].items())
        files.update(zip(spec["run_inputs"], given))
        m = onnx.load(spec["model"])
        outs = np_onnx.run_model(m, [cmp.load_tensor(files[k]) for k in sorted(files)])
        os.makedirs(outdir, exist_ok=True)
        for i, (vi, v) in enumerate(zip(m.graph.output, outs)):
            cmp.save_tensor(os.path.join(outdir, f"output_{i}.pb"), v, vi.name)
        return
    if len(given) != len(want):
        die(f"fake exe: error: got {len(given)} inputs, expected {len(want)}", 2)
    for g_, w in zip(given, want):
        with open(g_, "rb") as a, open(w, "rb") as b:
            if a.read() != b.read():
                die(f"fake exe: error: input {g_} is not {os.path.basename(w)}", 2)
    if mode == "crash":
        os.abort()
    if mode == "hang":
        time.sleep(3600)
    os.makedirs(outdir, exist_ok=True)
    outs = cmp.numbered_files(ds, "output")
    if mode == "missing":
        outs = outs[:-1]
    for i, p in enumerate(outs):
        dst = os.path.join(outdir, f"output_{i}.pb")
        if mode == "pass":
            shutil.copyfile(p, dst)
        else:
            cmp.save_tensor(dst, _perturb(cmp.load_tensor(p), mode))


def main():
    argv = sys.argv[1:]
    if argv[:1] == ["--list-ops"]:
        list_ops()
    elif argv[:1] == ["compile"]:
        compile_(argv[1:])
    elif argv[:1] == ["__run__"]:
        run(argv[1], argv[2:])
    else:
        die("usage: fake_lowbit.py (--list-ops | compile model.onnx -o exe ...)", 2)


if __name__ == "__main__":
    main()
