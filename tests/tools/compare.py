#!/usr/bin/python3
"""Shared helpers of lowbit's test harnesses (tests/conformance/run.py, tests/e2e/run.py).

Reading tensors (.pb TensorProto or .npy), comparing an actual output with the expected
one under the acceptance tolerances, running a command with a timeout that kills its
whole process group, and the compile/--bind retry/run sequence for one model.

Comparison rules (acceptance):
  * shapes equal, dtypes equal;
  * integers and bools exactly equal;
  * floats: NaN positions equal; elsewhere equal, or |a - e| <= atol + rtol * |e|
    (infinities must match exactly). With rtol=1e-3, atol=1e-7 first; if that fails the
    fallback atol (1e-5) is tried with the same rtol.
"""
import os
import re
import shlex
import signal
import subprocess
import sys

import numpy as np

DEFAULT_RTOL = 1e-3
DEFAULT_ATOL = 1e-7
FALLBACK_ATOL = 1e-5


# ---------------------------------------------------------------------------- reading
def load_tensor(path):
    """Returns a numpy array from a .npy file or a serialized onnx TensorProto (.pb)."""
    if path.endswith(".npy"):
        return np.load(path, allow_pickle=False)
    import onnx
    from onnx import numpy_helper
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def save_tensor(path, array, name=""):
    """Writes a .npy or a TensorProto .pb depending on the extension."""
    array = np.asarray(array)
    if path.endswith(".npy"):
        np.save(path, array)
        return
    from onnx import numpy_helper
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(array, name).SerializeToString())


def numbered_files(directory, prefix):
    """[directory/prefix_0.pb, prefix_1.pb, ...] for the consecutive ones that exist."""
    out = []
    k = 0
    while True:
        p = os.path.join(directory, f"{prefix}_{k}.pb")
        if not os.path.exists(p):
            break
        out.append(p)
        k += 1
    return out


# ---------------------------------------------------------------------------- comparing
class Result:
    """ok: bool; message: '' when ok, else why; max_abs/max_rel: worst errors seen."""

    def __init__(self, ok, message="", max_abs=0.0, max_rel=0.0, atol_used=None):
        self.ok = ok
        self.message = message
        self.max_abs = max_abs
        self.max_rel = max_rel
        self.atol_used = atol_used

    def __bool__(self):
        return self.ok

    def __repr__(self):
        return f"Result(ok={self.ok}, message={self.message!r})"


def _float_errors(a, e):
    """Finite-element absolute and relative errors (as float64 arrays)."""
    a64 = a.astype(np.float64)
    e64 = e.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        diff = np.abs(a64 - e64)
        same = (a64 == e64)  # covers matching infinities
        diff = np.where(same, 0.0, diff)
        rel = np.where(same, 0.0, diff / np.maximum(np.abs(e64), np.finfo(np.float64).tiny))
    return a64, e64, diff, rel, same


def compare(actual, expected, rtol=DEFAULT_RTOL, atol=DEFAULT_ATOL, fallback_atol=FALLBACK_ATOL):
    """Compares two arrays. Returns a Result (truthy iff within tolerance)."""
    a = np.asarray(actual)
    e = np.asarray(expected)
    if a.dtype != e.dtype:
        return Result(False, f"dtype {a.dtype} != expected {e.dtype}")
    if a.shape != e.shape:
        return Result(False, f"shape {list(a.shape)} != expected {list(e.shape)}")
    if a.size == 0:
        return Result(True)
    kind = e.dtype.kind
    if kind in "biuUSO":
        bad = a != e
        n = int(np.count_nonzero(bad))
        if n == 0:
            return Result(True)
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        return Result(False, f"{n}/{e.size} elements differ (first at {list(idx)}: "
                             f"{a[idx]!r} != {e[idx]!r})")
    if kind == "c":
        re_ = compare(a.real.copy(), e.real.copy(), rtol, atol, fallback_atol)
        return re_ if not re_ else compare(a.imag.copy(), e.imag.copy(), rtol, atol, fallback_atol)
    if kind != "f":
        return Result(False, f"cannot compare dtype {e.dtype}")

    a_nan = np.isnan(a)
    e_nan = np.isnan(e)
    if not np.array_equal(a_nan, e_nan):
        n = int(np.count_nonzero(a_nan != e_nan))
        return Result(False, f"NaN positions differ in {n}/{e.size} elements")
    a64, e64, diff, rel, same = _float_errors(a, e)
    diff = np.where(e_nan, 0.0, diff)
    rel = np.where(e_nan, 0.0, rel)
    # An infinity on one side only gives diff=inf (or nan for inf-inf of opposite sign).
    diff = np.where(np.isnan(diff), np.inf, diff)
    rel = np.where(np.isnan(rel), np.inf, rel)
    max_abs = float(diff.max())
    max_rel = float(rel.max())
    absn = np.abs(np.where(np.isfinite(e64), e64, 0.0))
    for tol in ([atol] if fallback_atol is None or fallback_atol <= atol else [atol, fallback_atol]):
        if bool(np.all(diff <= tol + rtol * absn)):
            return Result(True, "", max_abs, max_rel, tol)
    bad = ~(diff <= (fallback_atol if fallback_atol else atol) + rtol * absn)
    n = int(np.count_nonzero(bad))
    idx = tuple(int(i) for i in np.argwhere(bad)[0])
    return Result(False,
                  f"{n}/{e.size} elements off: max abs err {max_abs:.3g}, max rel err "
                  f"{max_rel:.3g} (rtol={rtol:g}, atol={fallback_atol or atol:g}; first at "
                  f"{list(idx)}: {a64[idx]!r} vs expected {e64[idx]!r})",
                  max_abs, max_rel)


def compare_files(actual_paths, expected_paths, **tol):
    """Compares output files pairwise. Returns (ok, message, worst-errors dict)."""
    worst = {"max_abs": 0.0, "max_rel": 0.0}
    if len(actual_paths) < len(expected_paths):
        return False, (f"executable wrote {len(actual_paths)} outputs, expected "
                       f"{len(expected_paths)}"), worst
    for k, (ap, ep) in enumerate(zip(actual_paths, expected_paths)):
        try:
            a = load_tensor(ap)
        except Exception as ex:  # noqa: BLE001 - any parse failure is a test failure
            return False, f"output_{k}: cannot read {os.path.basename(ap)}: {ex}", worst
        r = compare(a, load_tensor(ep), **tol)
        worst["max_abs"] = max(worst["max_abs"], r.max_abs)
        worst["max_rel"] = max(worst["max_rel"], r.max_rel)
        if not r:
            return False, f"output_{k}: {r.message}", worst
    return True, "", worst


# ---------------------------------------------------------------------------- processes
class Proc:
    def __init__(self, rc, out, err, timed_out, argv):
        self.rc, self.out, self.err, self.timed_out, self.argv = rc, out, err, timed_out, argv


def run_cmd(argv, timeout, cwd=None, env=None):
    """Runs argv with a timeout; on timeout the whole process group is killed."""
    try:
        p = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True)
    except OSError as ex:
        return Proc(127, "", f"cannot execute {argv[0]}: {ex}", False, argv)
    try:
        out, err = p.communicate(timeout=timeout)
        return Proc(p.returncode, out.decode(errors="replace"), err.decode(errors="replace"),
                    False, argv)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = p.communicate()
        return Proc(-signal.SIGKILL, out.decode(errors="replace"),
                    err.decode(errors="replace"), True, argv)


def first_line(text, limit=300):
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:limit]
    return ""


def last_line(text, limit=300):
    for line in reversed(text.splitlines()):
        if line.strip():
            return line.strip()[:limit]
    return ""


def describe_exit(proc):
    if proc.timed_out:
        return "timed out"
    if proc.rc < 0:
        try:
            return f"killed by {signal.Signals(-proc.rc).name}"
        except ValueError:
            return f"killed by signal {-proc.rc}"
    if proc.rc > 128 and proc.rc - 128 < 65:  # shells and qemu report signals as 128+N
        try:
            return f"exit {proc.rc} ({signal.Signals(proc.rc - 128).name}?)"
        except ValueError:
            pass
    return f"exit {proc.rc}"


BIND_RE = re.compile(r"--bind\s+([^\s=]+)=")


def self_test_check(me, failures, what, extra, env, want_rc, want_re):
    """Harness self-tests: runs the runner `me` + extra with env added, expects a
    zero/non-zero exit as want_rc says and want_re in its output; records failures."""
    e = dict(os.environ)
    e.update(env)
    p = subprocess.run(me + extra, env=e, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    last = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else ""
    ok = (p.returncode != 0) == (want_rc != 0) and re.search(want_re, p.stdout, re.M)
    print(f"self-test {'ok  ' if ok else 'FAIL'} {what}: rc={p.returncode} | {last}")
    if not ok:
        failures.append(what)
        print(p.stdout)


def compile_and_run(lowbit, model, input_names, input_files, workdir, dims=None,
                    target=None, cpu=None, runner=None, compile_timeout=60, run_timeout=60,
                    extra_compile_args=()):
    """Compiles `model` and runs it on input_files (one per graph input, in order).

    Follows the CLI contract: if compile fails with exit 1 asking for `--bind NAME=`,
    retries with --bind NAME=<that input's file> (repeatedly, while new names appear);
    bound inputs are not passed to the executable.

    Returns (status, message, output_paths) where status is one of
    'ok', 'compile', 'run'; message is a one-line reason for failures.
    """
    exe = os.path.join(workdir, "model.exe")
    outdir = os.path.join(workdir, "out")
    os.makedirs(outdir, exist_ok=True)
    binds = []  # input indices
    base = [lowbit, "compile", model, "-o", exe]
    for k, v in (dims or {}).items():
        base += ["--dim", f"{k}={v}"]
    if target:
        base += ["--target", target]
    if cpu:
        base += ["--cpu", cpu]
    base += list(extra_compile_args)
    while True:
        argv = list(base)
        for i in binds:
            argv += ["--bind", f"{input_names[i]}={input_files[i]}"]
        p = run_cmd(argv, compile_timeout, cwd=workdir)
        if p.rc == 0 and not p.timed_out:
            break
        if p.timed_out:
            return "compile", f"compile timed out after {compile_timeout}s", []
        wanted = [] if p.rc != 1 else BIND_RE.findall(p.err)
        new = []
        for name in wanted:
            if name not in input_names:
                return "compile", f"compile asked for --bind {name}= but the model has no " \
                                  f"input named {name!r}", []
            i = input_names.index(name)
            if i not in binds and i not in new:
                new.append(i)
        if not new:
            msg = first_line(p.err) or first_line(p.out) or "(no output)"
            return "compile", f"compile failed ({describe_exit(p)}): {msg}", []
        binds += new
    if not os.path.exists(exe):
        return "compile", "compile exited 0 but wrote no executable", []
    run_argv = (shlex.split(runner) if runner else []) + [exe]
    run_argv += [f for i, f in enumerate(input_files) if i not in binds]
    run_argv += ["-o", outdir + os.sep]
    p = run_cmd(run_argv, run_timeout, cwd=workdir)
    if p.timed_out:
        return "run", f"run timed out after {run_timeout}s", []
    if p.rc != 0:
        msg = last_line(p.err) or last_line(p.out) or "(no output)"
        return "run", f"run failed ({describe_exit(p)}): {msg}", []
    return "ok", "", numbered_files(outdir, "output")


if __name__ == "__main__":
    # tiny CLI: compare.py actual.pb expected.pb [rtol atol]
    if len(sys.argv) < 3:
        print("usage: compare.py ACTUAL EXPECTED [RTOL ATOL]", file=sys.stderr)
        sys.exit(2)
    kw = {}
    if len(sys.argv) >= 5:
        kw = {"rtol": float(sys.argv[3]), "atol": float(sys.argv[4])}
    r = compare(load_tensor(sys.argv[1]), load_tensor(sys.argv[2]), **kw)
    print("ok" if r else f"FAIL: {r.message}")
    sys.exit(0 if r else 1)
