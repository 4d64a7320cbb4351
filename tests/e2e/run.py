#!/usr/bin/python3
"""Compile and run lowbit's end-to-end models (made by make_models.py) and compare with
torch's outputs.

    run.py --lowbit BUILD/bin/lowbit --models DIR [--only mlp,gpt]
           [--target aarch64-linux-gnu --runner qemu-aarch64] [--rtol R] [--atol A]
    run.py --self-test      # check this harness with tools/fake_lowbit.py

Each DIR/NAME/ holds model.onnx, case.json ({"dims": {...}, "rtol": .., "atol": ..}) and
test_data_set_0/{input,output}_K.pb. Tolerances: --rtol/--atol if given, else case.json,
else rtol 1e-3, atol 1e-4.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
import compare as cmp  # noqa: E402

DEFAULT_RTOL = 1e-3
DEFAULT_ATOL = 1e-4


def graph_inputs(model_path):
    import onnx
    g = onnx.load(model_path, load_external_data=False).graph
    init = {t.name for t in g.initializer}
    return [vi.name for vi in g.input if vi.name not in init]


def run_model(name, mdir, args):
    with open(os.path.join(mdir, "case.json")) as f:
        case = json.load(f)
    rtol = args.rtol if args.rtol is not None else case.get("rtol", DEFAULT_RTOL)
    atol = args.atol if args.atol is not None else case.get("atol", DEFAULT_ATOL)
    model = os.path.join(mdir, "model.onnx")
    ds = os.path.join(mdir, "test_data_set_0")
    ins = cmp.numbered_files(ds, "input")
    exp = cmp.numbered_files(ds, "output")
    work = tempfile.mkdtemp(prefix=f"lbe2e-{name}-")
    t0 = time.time()
    try:
        status, msg, outs = cmp.compile_and_run(
            args.lowbit, model, graph_inputs(model), ins, work, dims=case.get("dims", {}),
            target=args.target, cpu=args.cpu, runner=args.runner,
            compile_timeout=args.timeout, run_timeout=args.timeout)
        if status != "ok":
            return False, msg, time.time() - t0
        # fallback_atol=None: e2e tolerances are exactly those of case.json / the flags
        ok, msg, worst = cmp.compare_files(outs, exp, rtol=rtol, atol=atol, fallback_atol=None)
        detail = f"max abs err {worst['max_abs']:.3g}, max rel err {worst['max_rel']:.3g}"
        return ok, (msg if not ok else detail), time.time() - t0
    finally:
        if args.keep_temp:
            print(f"  kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def run_all(args):
    if os.sep in args.lowbit:
        args.lowbit = os.path.abspath(args.lowbit)
    args.models = os.path.abspath(args.models)
    if not os.path.isdir(args.models):
        sys.exit(f"run.py: no models at {args.models} (run tests/e2e/make_models.py {args.models})")
    names = sorted(n for n in os.listdir(args.models)
                   if os.path.isfile(os.path.join(args.models, n, "case.json")))
    if args.only:
        want = args.only.split(",")
        missing = [n for n in want if n not in names]
        if missing:
            sys.exit(f"run.py: no model(s) {', '.join(missing)} in {args.models}")
        names = want
    if not names:
        sys.exit(f"run.py: no */case.json under {args.models}")
    passed = failed = 0
    for n in names:
        ok, msg, secs = run_model(n, os.path.join(args.models, n), args)
        print(f"{'PASS' if ok else 'FAIL'} {n} ({secs:.1f}s): {msg}", flush=True)
        passed += ok
        failed += not ok
    print(f"e2e: {passed} passed, {failed} failed")
    return 1 if failed else 0


def self_test(args):
    """Checks this harness with tools/fake_lowbit.py (copies/corrupts torch's outputs)."""
    fake = os.path.join(HERE, "..", "tools", "fake_lowbit.py")
    tmp = tempfile.mkdtemp(prefix="lbe2e-selftest-")
    failures = []
    try:
        models = args.models
        if not models:
            models = os.path.join(tmp, "models")
            subprocess.run([sys.executable, os.path.join(HERE, "make_models.py"), models],
                           check=True, stdout=subprocess.DEVNULL)
        me = [sys.executable, os.path.abspath(__file__), "--lowbit", fake, "--models", models]

        def check(what, extra, env, want_rc, want_re):
            cmp.self_test_check(me, failures, what, extra, env, want_rc, want_re)

        n = len([d for d in os.listdir(models) if os.path.isfile(
            os.path.join(models, d, "case.json"))])
        check("exact outputs pass (fake demands every --dim)", [], {}, 0,
              rf"^e2e: {n} passed, 0 failed$")
        check("outputs computed by tools/np_onnx.py pass", [], {"FAKE_LOWBIT_MODE": "numpy"}, 0,
              rf"^e2e: {n} passed, 0 failed$")
        check("noise within tolerance passes", [], {"FAKE_LOWBIT_MODE": "noise"}, 0,
              rf"^e2e: {n} passed, 0 failed$")
        check("corrupted output fails", [],
              {"FAKE_LOWBIT_MODE": "corrupt", "FAKE_LOWBIT_ONLY": "^gpt$"}, 1,
              rf"^FAIL gpt .*output_0: .*max abs err(.*\n)*e2e: {n - 1} passed, 1 failed$")
        check("second output checked too", ["--only", "bert"],
              {"FAKE_LOWBIT_MODE": "missing", "FAKE_LOWBIT_ONLY": "^bert$"}, 1,
              r"^FAIL bert .*wrote 1 outputs, expected 2")
        check("compile error fails", ["--only", "mlp"],
              {"FAKE_LOWBIT_MODE": "compile-error", "FAKE_LOWBIT_ONLY": "^mlp$"}, 1,
              r"^FAIL mlp .*compile failed")
        check("tighter --atol makes noise fail", ["--only", "mlp", "--rtol", "0", "--atol", "1e-9"],
              {"FAKE_LOWBIT_MODE": "noise"}, 1, r"^e2e: 0 passed, 1 failed$")
        print("self-test: " + ("all checks passed" if not failures
                               else f"{len(failures)} check(s) FAILED: {', '.join(failures)}"))
        return 1 if failures else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lowbit", help="path of the lowbit driver (BUILD/bin/lowbit)")
    ap.add_argument("--models", help="directory made by make_models.py")
    ap.add_argument("--only", help="comma-separated model names")
    ap.add_argument("--target", help="cross target triple passed to lowbit compile")
    ap.add_argument("--cpu", help="--cpu passed to lowbit compile")
    ap.add_argument("--runner", help="command prefix to run executables (e.g. qemu-aarch64)")
    ap.add_argument("--rtol", type=float, help="override case.json (default 1e-3)")
    ap.add_argument("--atol", type=float, help="override case.json (default 1e-4)")
    ap.add_argument("--timeout", type=float, default=120, help="seconds per compile and per run")
    ap.add_argument("--keep-temp", action="store_true")
    ap.add_argument("--self-test", action="store_true",
                    help="test this harness with tools/fake_lowbit.py")
    args = ap.parse_args()
    if args.self_test:
        return self_test(args)
    if not args.lowbit or not args.models:
        ap.error("--lowbit and --models are required")
    return run_all(args)


if __name__ == "__main__":
    sys.exit(main())
