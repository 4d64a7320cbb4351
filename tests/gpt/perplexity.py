#!/usr/bin/python3
"""Held-out byte perplexity of the GPT fixture under onnxruntime and/or a lowbit executable.

    /usr/bin/python3 tests/gpt/perplexity.py --model gpt.onnx --text heldout.txt \
        [--ort] [--exe lowbit_exe [--runner 'qemu-aarch64 -L /usr/aarch64-linux-gnu']] \
        [--windows N] [--threads T] [--max-diff D] [--max-logit-diff L] [--keep DIR]

The text is split into non-overlapping 128-byte windows; each window is fed as tokens int64
[1,128] and the 127 next-byte predictions inside it are scored: perplexity = exp(mean NLL),
computed in float64 from the logits [1,128,256].

--write-ref DIR (with --ort) stores onnxruntime's perplexity and window 0's logits in DIR
(ort_reference.json, ort_window0/) so that --ref DIR can check a lowbit executable against
them later without node or onnxruntime installed (that is what the test suite does).

--ort runs `node bench/ort_run.js MODEL --cases ...` once for all windows (needs `npm ci` in
bench/). --exe runs `[RUNNER] EXE input_0.pb -o DIR` per window and reads DIR/output_0.pb.
Prints `perplexity ort: X` / `perplexity lowbit: X`; with both, also the absolute perplexity
difference and the max abs logit difference. Exits 1 when --max-diff (perplexity) or
--max-logit-diff is given and exceeded.
"""
import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from onnx import numpy_helper, TensorProto

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ORT_RUN = os.path.join(REPO, "bench", "ort_run.js")
CTX = 128


def write_pb(path, arr, name="tokens"):
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(arr, name).SerializeToString())


def read_pb(path):
    t = TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def nll_sum(logits, tokens):
    """Sum of next-byte NLL over one window. logits [1,T,V], tokens [1,T]."""
    x = np.asarray(logits, dtype=np.float64).reshape(-1, logits.shape[-1])[:-1]
    tgt = tokens.reshape(-1)[1:]
    m = x.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(x - m).sum(axis=1))
    return float((lse - x[np.arange(len(tgt)), tgt]).sum()), len(tgt)


def run_ort(model, case_dirs, threads):
    cmd = ["node", ORT_RUN, model, "--threads", str(threads), "--cases"] + case_dirs
    subprocess.run(cmd, check=True)
    return [read_pb(os.path.join(d, "ort", "output_0.pb")) for d in case_dirs]


def run_exe(exe, runner, case_dirs):
    pre = shlex.split(runner) if runner else []
    outs = []
    for d in case_dirs:
        od = os.path.join(d, "lowbit")
        os.makedirs(od, exist_ok=True)
        r = subprocess.run(pre + [exe, os.path.join(d, "input_0.pb"), "-o", od],
                           capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"perplexity: {exe} failed on {d} (exit {r.returncode}):\n{r.stderr}")
        outs.append(read_pb(os.path.join(od, "output_0.pb")))
    return outs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--text", required=True)
    ap.add_argument("--exe")
    ap.add_argument("--runner", default="")
    ap.add_argument("--ort", action="store_true")
    ap.add_argument("--windows", type=int, default=0, help="use only the first N windows")
    ap.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads")
    ap.add_argument("--max-diff", type=float, default=None, help="max |ppl(lowbit) - ppl(ort)|")
    ap.add_argument("--max-logit-diff", type=float, default=None)
    ap.add_argument("--keep", help="keep the window directories here instead of a temp dir")
    ap.add_argument("--write-ref", help="with --ort: store the reference perplexity and window 0 logits here")
    ap.add_argument("--ref", help="compare --exe against a reference stored by --write-ref")
    a = ap.parse_args()
    if not a.ort and not a.exe:
        ap.error("give --ort and/or --exe")
    if a.write_ref and not a.ort:
        ap.error("--write-ref needs --ort")
    if a.ref and a.ort:
        ap.error("--ref replaces --ort")
    ref = None
    if a.ref:
        with open(os.path.join(a.ref, "ort_reference.json")) as f:
            ref = json.load(f)
        if a.windows and a.windows != ref["windows"]:
            ap.error(f"--windows {a.windows} differs from the reference's {ref['windows']}")
        a.windows = ref["windows"]

    data = open(a.text, "rb").read()
    n = len(data) // CTX
    if a.windows:
        n = min(n, a.windows)
    if n == 0:
        sys.exit("perplexity: text shorter than one window")
    windows = [np.frombuffer(data[i * CTX:(i + 1) * CTX], dtype=np.uint8).astype(np.int64).reshape(1, CTX)
               for i in range(n)]

    work = a.keep or tempfile.mkdtemp(prefix="lowbit-ppl-")
    try:
        dirs = []
        for i, w in enumerate(windows):
            d = os.path.join(work, f"w{i:04d}")
            os.makedirs(d, exist_ok=True)
            write_pb(os.path.join(d, "input_0.pb"), w)
            dirs.append(d)
        results = {}
        if a.ort:
            results["ort"] = run_ort(os.path.abspath(a.model), dirs, a.threads)
        if a.exe:
            results["lowbit"] = run_exe(os.path.abspath(a.exe), a.runner, dirs)
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)

    ppl = {}
    for name, outs in results.items():
        tot, cnt = 0.0, 0
        for w, lg in zip(windows, outs):
            if lg.shape != (1, CTX, 256):
                sys.exit(f"perplexity: {name} logits have shape {lg.shape}, expected (1, {CTX}, 256)")
            s, c = nll_sum(lg, w)
            tot += s
            cnt += c
        ppl[name] = float(np.exp(tot / cnt))
        print(f"perplexity {name}: {ppl[name]:.6f}")
        print(f"  {name}: {n} windows, {cnt} predictions, mean nll {tot / cnt:.6f}")

    if a.write_ref:
        os.makedirs(os.path.join(a.write_ref, "ort_window0"), exist_ok=True)
        with open(os.path.join(a.write_ref, "ort_reference.json"), "w") as f:
            json.dump({"windows": n, "predictions": cnt, "perplexity": ppl["ort"],
                       "threads": a.threads, "source": "onnxruntime-node (bench/ort_run.js)"}, f, indent=1)
            f.write("\n")
        write_pb(os.path.join(a.write_ref, "ort_window0", "input_0.pb"), windows[0])
        write_pb(os.path.join(a.write_ref, "ort_window0", "output_0.pb"), results["ort"][0], "logits")
        print(f"wrote the reference to {a.write_ref}")

    rc = 0
    if ref is not None:
        ref_logits = read_pb(os.path.join(a.ref, "ort_window0", "output_0.pb"))
        d = abs(ppl["lowbit"] - ref["perplexity"])
        md = float(np.max(np.abs(results["lowbit"][0].astype(np.float64) - ref_logits.astype(np.float64))))
        print(f"perplexity ort (reference): {ref['perplexity']:.6f}")
        print(f"abs perplexity difference: {d:.6g}")
        print(f"max abs logit difference (window 0): {md:.6g}")
        if a.max_diff is not None and not d <= a.max_diff:
            print(f"FAIL: perplexity difference {d:.6g} > {a.max_diff}")
            rc = 1
        if a.max_logit_diff is not None and not md <= a.max_logit_diff:
            print(f"FAIL: logit difference {md:.6g} > {a.max_logit_diff}")
            rc = 1
    if len(results) == 2:
        d = abs(ppl["lowbit"] - ppl["ort"])
        md = max(float(np.max(np.abs(x.astype(np.float64) - y.astype(np.float64))))
                 for x, y in zip(results["lowbit"], results["ort"]))
        print(f"abs perplexity difference: {d:.6g}")
        print(f"max abs logit difference: {md:.6g}")
        if a.max_diff is not None and not d <= a.max_diff:
            print(f"FAIL: perplexity difference {d:.6g} > {a.max_diff}")
            rc = 1
        if a.max_logit_diff is not None and not md <= a.max_logit_diff:
            print(f"FAIL: logit difference {md:.6g} > {a.max_logit_diff}")
            rc = 1
    sys.exit(rc)


if __name__ == "__main__":
    main()
