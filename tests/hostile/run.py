#!/usr/bin/python3
"""run.py --lowbit BIN --corpus OUTDIR [--timeout-scale K] [--jobs N] [--only REGEX]

Runs every case of OUTDIR/cases.jsonl (written by make_corpus.py) and checks the
hardening contract:
  - a bad model / bad input exits 1..125 (never 0, never a signal, never a
    timeout), its stderr contains "error" and matches the case's regex;
  - no output is left behind: each case runs in a fresh temp dir with -o inside
    it, and the temp dir and the model's folder list the same files afterwards;
  - the model file is unchanged (sha256);
  - valid controls compile, run and produce the expected outputs (numpy).
Prints `hostile: N passed, N failed` and exits non-zero on any failure.
"""
import argparse
import concurrent.futures
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np


def sha(path):
    if not os.path.isfile(path):
        return None
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def listing(d):
    out = set()
    for root, dirs, files in os.walk(d, followlinks=False):
        for n in dirs + files:
            out.add(os.path.relpath(os.path.join(root, n), d))
    return out


def run(cmd, timeout, cwd):
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout)
        return p.returncode, p.stderr.decode("utf-8", "replace"), time.monotonic() - t0
    except subprocess.TimeoutExpired as e:
        err = (e.stderr or b"").decode("utf-8", "replace")
        return None, err, time.monotonic() - t0


def check_fail(c, rc, err, problems):
    if rc is None:
        problems.append("timed out after %ss" % c["timeout"])
    elif rc < 0:
        problems.append("killed by signal %d" % -rc)
    elif rc == 0:
        problems.append("exit 0 for a bad case")
    elif rc > 125:
        problems.append("exit %d (not 1..125)" % rc)
    if "error" not in err:
        problems.append('stderr lacks "error"')
    if c.get("stderr") and not re.search(c["stderr"], err, re.S):
        problems.append("stderr does not match /%s/" % c["stderr"])
    if c.get("stderr_not") and re.search(c["stderr_not"], err, re.S):
        problems.append("stderr matches the forbidden /%r/" % c["stderr_not"])


def compare_outputs(c, corpus, outdir, problems):
    for k, exp in enumerate(c.get("outputs", [])):
        got_p = os.path.join(outdir, "output_%d.npy" % k)
        if not os.path.exists(got_p):
            problems.append("output %d missing" % k)
            continue
        got, want = np.load(got_p), np.load(os.path.join(corpus, exp))
        if got.shape != want.shape or got.dtype != want.dtype:
            problems.append("output %d: %s%s, expected %s%s" % (k, got.dtype, got.shape, want.dtype, want.shape))
        elif not np.allclose(got, want, rtol=c.get("rtol", 1e-5), atol=c.get("atol", 1e-6), equal_nan=True):
            problems.append("output %d differs (max abs err %g)" % (k, float(np.max(np.abs(got - want)))))


def compile_case(c, args, corpus):
    problems = []
    model = os.path.join(corpus, c["model"])
    mdir = os.path.dirname(model)
    before_model, before_dir = sha(model), listing(mdir)
    tmp = tempfile.mkdtemp(prefix="hostile-")
    try:
        out = os.path.join(tmp, "out")
        timeout = c["timeout"] * args.timeout_scale
        rc, err, secs = run([args.lowbit, "compile", model, "-o", out] + c.get("args", []), timeout, tmp)
        if c["expect"] == "fail":
            check_fail(c, rc, err, problems)
            left = listing(tmp)
            if left:
                problems.append("left files in the temp dir: %s" % sorted(left)[:5])
        else:
            if rc != 0:
                problems.append("compile failed (exit %s): %s" % (rc, err.strip()[-400:]))
            else:
                rdir = os.path.join(tmp, "res")
                ins = [os.path.join(corpus, p) for p in c.get("inputs", [])]
                rc2, err2, _ = run([out] + ins + ["-o", rdir, "--format", "npy", "--threads", "1"],
                                   timeout, tmp)
                if rc2 != 0:
                    problems.append("run failed (exit %s): %s" % (rc2, err2.strip()[-400:]))
                else:
                    compare_outputs(c, corpus, rdir, problems)
        if sha(model) != before_model:
            problems.append("the model file changed")
        after_dir = listing(mdir)
        if after_dir != before_dir:
            problems.append("the model's folder changed: +%s -%s" % (sorted(after_dir - before_dir)[:5],
                                                                      sorted(before_dir - after_dir)[:5]))
        return problems, secs
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_case(c, args, corpus, exe):
    problems = []
    if exe is None:
        return ["control %s did not compile" % c["control"]], 0.0
    tmp = tempfile.mkdtemp(prefix="hostile-run-")
    try:
        ins = [os.path.join(corpus, p) for p in c["inputs"]]
        rdir = os.path.join(tmp, "res")
        before = {p: sha(p) for p in ins}
        rc, err, secs = run([exe] + ins + ["-o", rdir, "--threads", "1"], c["timeout"] * args.timeout_scale, tmp)
        if c["expect"] == "fail":
            check_fail(c, rc, err, problems)
            if listing(tmp):
                problems.append("left files: %s" % sorted(listing(tmp))[:5])
        elif rc != 0:
            problems.append("run failed (exit %s): %s" % (rc, err.strip()[-300:]))
        for p, h in before.items():
            if sha(p) != h:
                problems.append("input file %s changed" % p)
        return problems, secs
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lowbit", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--timeout-scale", type=float, default=1.0, help="multiply every timeout (sanitizer builds)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--only", default=None, help="regex on case names")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    args.lowbit = os.path.abspath(args.lowbit)
    corpus = os.path.abspath(args.corpus)
    with open(os.path.join(corpus, "cases.jsonl")) as f:
        cases = [json.loads(l) for l in f if l.strip()]
    if args.only:
        cases = [c for c in cases if re.search(args.only, c["name"])]

    # controls used by "run" cases are compiled once, into a shared folder
    exes = {}
    ctl_dir = tempfile.mkdtemp(prefix="hostile-ctl-")
    by_name = {c["name"]: c for c in cases}
    with open(os.path.join(corpus, "cases.jsonl")) as f:
        for l in f:
            c = json.loads(l)
            by_name.setdefault(c["name"], c)
    for name in sorted({c["control"] for c in cases if c["kind"] == "run"}):
        c = by_name[name]
        out = os.path.join(ctl_dir, name)
        rc, err, _ = run([args.lowbit, "compile", os.path.join(corpus, c["model"]), "-o", out] + c.get("args", []),
                         c["timeout"] * args.timeout_scale, ctl_dir)
        exes[name] = out if rc == 0 else None
        if rc != 0:
            print("control %s failed to compile: %s" % (name, err.strip()[-400:]))

    def one(c):
        if c["kind"] == "run":
            return run_case(c, args, corpus, exes.get(c["control"]))
        return compile_case(c, args, corpus)

    passed = failed = 0
    # big cases first so that they overlap the many small ones
    cases.sort(key=lambda c: -c.get("timeout", 10))
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as ex:
        futs = {ex.submit(one, c): c for c in cases}
        for fut in concurrent.futures.as_completed(futs):
            c = futs[fut]
            try:
                problems, secs = fut.result()
            except Exception as e:  # a bug in this script is a failure too
                problems, secs = ["runner exception: %r" % e], 0.0
            if problems:
                failed += 1
                print("FAIL %s (%.1f s): %s" % (c["name"], secs, "; ".join(problems)))
            else:
                passed += 1
                if args.verbose:
                    print("ok   %s (%.1f s)" % (c["name"], secs))
    shutil.rmtree(ctl_dir, ignore_errors=True)
    print("hostile: %d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
