#!/usr/bin/python3
"""Run the ONNX backend node tests (made by gen_data.py) through lowbit.

    run.py --lowbit BUILD/bin/lowbit --data DIR [--jobs N] [--filter REGEX]
           [--expected tests/conformance/expected_pass.txt] [--write-expected FILE]
           [--report FILE.md] [--target aarch64-linux-gnu --runner qemu-aarch64]
    run.py --scope-report --data DIR        # count the cases in the issue's scope
    run.py --self-test [--data DIR]         # check this harness with tools/fake_lowbit.py

A case is skipped ("unsupported") when it uses an op that `lowbit --list-ops` does not
print, or a graph input/output that is not a tensor of float32/float64/int64/int32/int8/
uint8/bool. Otherwise it is compiled, run and every output compared (tools/compare.py).
"""
import argparse
import collections
import concurrent.futures
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

import onnx  # noqa: E402

T = onnx.TensorProto
COMMON_DTYPES = {T.FLOAT, T.DOUBLE, T.INT64, T.INT32, T.INT8, T.UINT8, T.BOOL}

# The op scope (see README.md). Its 'in scope' cases are counted by --scope-report.
SCOPE_OPS = frozenset("""
Add Sub Mul Div Pow Sqrt Erf Tanh Sigmoid Relu Softmax LayerNormalization
BatchNormalization MatMul Gemm Conv MaxPool AveragePool GlobalAveragePool Reshape
Transpose Concat Split Slice Gather Squeeze Unsqueeze Flatten Expand Shape Constant
ConstantOfShape Cast Where Equal Range Trilu ReduceMean QuantizeLinear DequantizeLinear
DynamicQuantizeLinear MatMulInteger QLinearMatMul
""".split())


# ---------------------------------------------------------------------------- cases
def op_key(node):
    d = node.domain
    return node.op_type if d in ("", "ai.onnx") else f"{d}:{node.op_type}"


def graph_ops(graph, acc):
    """All op keys of a graph including subgraphs (If/Loop/Scan bodies)."""
    for n in graph.node:
        acc.add(op_key(n))
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                graph_ops(a.g, acc)
            elif a.type == onnx.AttributeProto.GRAPHS:
                for g in a.graphs:
                    graph_ops(g, acc)
    return acc


def dtype_name(elem):
    return T.DataType.Name(elem).lower() if elem in T.DataType.values() else str(elem)


def value_type_problem(vi):
    """'' if vi is a tensor of a common dtype, else a short description."""
    kind = vi.type.WhichOneof("value")
    if kind != "tensor_type":
        return f"{vi.name}: {kind or 'untyped'}"
    elem = vi.type.tensor_type.elem_type
    if elem not in COMMON_DTYPES:
        return f"{vi.name}: {dtype_name(elem)}"
    return ""


class Case:
    def __init__(self, name, path):
        self.name = name
        self.path = path
        self.model_path = os.path.join(path, "model.onnx")
        m = onnx.load(self.model_path, load_external_data=False)
        g = m.graph
        init = {t.name for t in g.initializer}
        self.inputs = [vi for vi in g.input if vi.name not in init]
        self.outputs = list(g.output)
        self.ops = sorted(graph_ops(g, set()))
        self.type_problems = [p for p in (value_type_problem(v)
                                          for v in self.inputs + self.outputs) if p]
        self.datasets = sorted(d for d in os.listdir(path) if d.startswith("test_data_set_"))


def find_cases(data, regex=None):
    root = data
    if os.path.isdir(os.path.join(data, "node")) and not os.path.exists(
            os.path.join(data, "model.onnx")):
        root = os.path.join(data, "node")  # an upstream onnx/backend/test/data tree
    if not os.path.isdir(root):
        sys.exit(f"run.py: no test data at {data} (run tests/conformance/gen_data.py {data})")
    names = sorted(n for n in os.listdir(root)
                   if os.path.isfile(os.path.join(root, n, "model.onnx")))
    if not names:
        sys.exit(f"run.py: no cases (*/model.onnx) under {root}")
    if regex:
        r = re.compile(regex)
        names = [n for n in names if r.search(n)]
    return [Case(n, os.path.join(root, n)) for n in names]


# ---------------------------------------------------------------------------- running
class Outcome:
    def __init__(self, case, status, reason="", seconds=0.0):
        self.case = case
        self.status = status  # pass | fail | skip
        self.reason = reason
        self.seconds = seconds


def supported_ops(lowbit):
    p = cmp.run_cmd([lowbit, "--list-ops"], 60)
    if p.rc != 0:
        sys.exit(f"run.py: `{lowbit} --list-ops` failed ({cmp.describe_exit(p)}): "
                 f"{cmp.first_line(p.err)}")
    return {line.strip() for line in p.out.splitlines() if line.strip()}


def skip_reason(case, ops):
    missing = [o for o in case.ops if o not in ops]
    if missing:
        return "unsupported op " + ", ".join(missing)
    if case.type_problems:
        return "unsupported type " + ", ".join(case.type_problems)
    if not case.datasets:
        return "no test_data_set_*"
    return ""


def run_case(case, args):
    t0 = time.time()
    work = tempfile.mkdtemp(prefix=f"lbconf-{case.name[:40]}-", dir=args.tmpdir)
    try:
        for ds in case.datasets:
            dsdir = os.path.join(case.path, ds)
            ins = cmp.numbered_files(dsdir, "input")
            exp = cmp.numbered_files(dsdir, "output")
            if len(ins) != len(case.inputs):
                return Outcome(case, "fail", f"{ds}: {len(ins)} input files for "
                                             f"{len(case.inputs)} graph inputs", time.time() - t0)
            wd = os.path.join(work, ds)
            os.makedirs(wd)
            status, msg, outs = cmp.compile_and_run(
                args.lowbit, case.model_path, [v.name for v in case.inputs], ins, wd,
                target=args.target, cpu=args.cpu, runner=args.runner,
                compile_timeout=args.timeout, run_timeout=args.timeout)
            if status != "ok":
                return Outcome(case, "fail", msg, time.time() - t0)
            ok, msg, _ = cmp.compare_files(outs, exp, rtol=args.rtol, atol=args.atol,
                                           fallback_atol=args.fallback_atol)
            if not ok:
                prefix = f"{ds}: " if len(case.datasets) > 1 else ""
                return Outcome(case, "fail", prefix + msg, time.time() - t0)
        return Outcome(case, "pass", "", time.time() - t0)
    except Exception as ex:  # noqa: BLE001 - a harness error on one case is that case's failure
        return Outcome(case, "fail", f"harness error: {type(ex).__name__}: {ex}", time.time() - t0)
    finally:
        if args.keep_temp:
            print(f"  kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def read_list(path):
    names = []
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                names.append(line)
    return names


def write_report(path, outcomes, args, counts, elapsed):
    per_op = collections.defaultdict(lambda: collections.Counter())
    for o in outcomes:
        for op in o.case.ops:
            per_op[op][o.status] += 1
    lines = ["# lowbit conformance report", "",
             f"`{counts}` — data `{args.data}`, target `{args.target or 'host'}`, "
             f"{elapsed:.0f}s", "",
             "## Per op (cases using the op)", "",
             "| op | passed | failed | skipped |", "| --- | ---: | ---: | ---: |"]
    for op in sorted(per_op):
        c = per_op[op]
        if c["pass"] or c["fail"]:
            lines.append(f"| {op} | {c['pass']} | {c['fail']} | {c['skip']} |")
    never = sorted(op for op, c in per_op.items() if not c["pass"] and not c["fail"])
    if never:
        lines += ["", "Ops only in skipped cases: " + ", ".join(never)]
    lines += ["", "## Per case", "", "| case | status | detail |", "| --- | --- | --- |"]
    for o in sorted(outcomes, key=lambda o: o.case.name):
        detail = o.reason.replace("|", "\\|")
        lines.append(f"| {o.case.name} | {o.status} | {detail} |")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def run_all(args):
    lowbit = os.path.abspath(args.lowbit) if os.sep in args.lowbit else args.lowbit
    args.lowbit = lowbit
    args.data = os.path.abspath(args.data)  # cases run in temp dirs
    t0 = time.time()
    cases = find_cases(args.data, args.filter)
    if args.in_scope:
        cases = [c for c in cases if in_scope(c)]
    ops = supported_ops(lowbit)
    outcomes = []
    todo = []
    for c in cases:
        r = skip_reason(c, ops)
        if r:
            outcomes.append(Outcome(c, "skip", r))
        else:
            todo.append(c)
    jobs = max(1, args.jobs)
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as ex:
        futs = [ex.submit(run_case, c, args) for c in todo]
        for f in concurrent.futures.as_completed(futs):
            o = f.result()
            outcomes.append(o)
            if o.status == "fail":
                print(f"FAIL {o.case.name}: {o.reason}", flush=True)
            elif args.verbose:
                print(f"pass {o.case.name} ({o.seconds:.1f}s)", flush=True)
    elapsed = time.time() - t0
    by = collections.Counter(o.status for o in outcomes)
    counts = f"conformance: {by['pass']} passed, {by['fail']} failed, {by['skip']} skipped"

    rc = 1 if by["fail"] else 0
    passed = sorted(o.case.name for o in outcomes if o.status == "pass")
    if args.expected:
        expected = read_list(args.expected)
        all_names = {c.name for c in find_cases(args.data)} if args.filter or args.in_scope \
            else {c.name for c in cases}
        status = {o.case.name: o for o in outcomes}
        rx = re.compile(args.filter) if args.filter else None
        regressions = []
        for name in expected:
            if name in status:
                if status[name].status != "pass":
                    regressions.append(f"{name} ({status[name].status}: {status[name].reason})")
            elif name not in all_names and (rx is None or rx.search(name)):
                regressions.append(f"{name} (no such case in {args.data})")
            # else: deselected by --filter/--in-scope
        new = [n for n in passed if n not in set(expected)]
        for r in regressions:
            print(f"REGRESSION {r}")
        if new:
            print(f"hint: {len(new)} passing case(s) not in {args.expected}; add them:")
            for n in new:
                print(f"  {n}")
        rc = 1 if regressions else 0
        if regressions:
            counts += f" ({len(regressions)} regressions against {args.expected})"
    if args.write_expected:
        with open(args.write_expected, "w") as f:
            f.write("# ONNX backend node cases lowbit passes; run.py --expected fails if one of\n"
                    "# these stops passing. Regenerate with run.py --write-expected.\n")
            for n in passed:
                f.write(n + "\n")
        print(f"wrote {len(passed)} passing cases to {args.write_expected}")
    if args.report:
        write_report(args.report, outcomes, args, counts, elapsed)
        print(f"wrote report {args.report}")
    print(counts)
    return rc


# ---------------------------------------------------------------------------- scope
def in_scope(case):
    return set(case.ops) <= SCOPE_OPS and not case.type_problems


def scope_report(args):
    cases = find_cases(args.data, args.filter)
    scope = [c for c in cases if in_scope(c)]
    ops_only = [c for c in cases if set(c.ops) <= SCOPE_OPS]
    typed_out = [c for c in ops_only if c.type_problems]
    expanded = [c for c in scope if c.name.endswith("_expanded")]
    print(f"cases in {args.data}: {len(cases)}")
    print(f"using only scope ops: {len(ops_only)}")
    print(f"  of which with an input/output not float32/float64/int64/int32/int8/uint8/bool "
          f"tensor (excluded): {len(typed_out)}")
    for c in typed_out:
        print(f"    {c.name}: {', '.join(c.type_problems)}")
    print(f"  of which function-expanded (*_expanded, included): {len(expanded)}: "
          + ", ".join(c.name for c in expanded))
    per_op = collections.Counter(op for c in scope for op in c.ops)
    print("in-scope cases per op: " + ", ".join(f"{op} {n}" for op, n in sorted(per_op.items())))
    unused = sorted(SCOPE_OPS - set(per_op))
    if unused:
        print("scope ops in no in-scope case: " + ", ".join(unused))
    if args.verbose:
        for c in scope:
            print(f"  {c.name}: {' '.join(c.ops)}")
    print(f"scope: {len(scope)} cases use only the scope ops and common dtypes "
          f"(function-expanded cases included; without them {len(scope) - len(expanded)})")
    return 0


# ---------------------------------------------------------------------------- self-test
def self_test(args):
    """Checks the harness against tools/fake_lowbit.py (which copies or corrupts the
    expected outputs); it tests this script, not the compiler."""
    fake = os.path.join(HERE, "..", "tools", "fake_lowbit.py")
    data = args.data
    tmp = tempfile.mkdtemp(prefix="lbconf-selftest-")
    try:
        if not data:
            data = os.path.join(tmp, "data")
            subprocess.run([sys.executable, os.path.join(HERE, "gen_data.py"), data],
                           check=True, stdout=subprocess.DEVNULL)
        # A mix: value-dependent shapes (Reshape/Expand/Slice/... take the shape as an
        # input, so the fake demands --bind), several inputs and outputs, ints, bools.
        filt = (r"^test_(reshape_reduced_dims|reshape_negative_dim|expand_dim_changed|"
                r"slice|split_equal_parts_1d|add|add_bcast|matmul_2d|equal|where_example|"
                r"gather_0|cast_FLOAT_to_DOUBLE|dynamicquantizelinear|relu|abs|"
                r"constantofshape_int_zeros|range_int32_type_negative_delta|tile)$")
        me = [sys.executable, os.path.abspath(__file__), "--lowbit", fake, "--data", data,
              "--filter", filt, "--jobs", "2"]
        failures = []

        def check(what, extra, env, want_rc, want_re):
            cmp.self_test_check(me, failures, what, extra, env, want_rc, want_re)

        exp = os.path.join(tmp, "expected.txt")
        rep = os.path.join(tmp, "report.md")
        ops = "Add,Sub,Mul,MatMul,Reshape,Expand,Slice,Split,Equal,Where,Gather,Cast," \
              "DynamicQuantizeLinear,Relu,ConstantOfShape,Range"
        base = {"FAKE_LOWBIT_OPS": ops}
        check("copies pass; Abs/Tile skipped as unsupported; --bind retried",
              ["--write-expected", exp, "--report", rep], base, 0,
              r"^conformance: \d+ passed, 0 failed, [1-9]\d* skipped$")
        check("outputs within tolerance pass", [], dict(base, FAKE_LOWBIT_MODE="noise"), 0,
              r"^conformance: \d+ passed, 0 failed")
        check("corrupted float output fails", ["--expected", exp],
              dict(base, FAKE_LOWBIT_MODE="corrupt", FAKE_LOWBIT_ONLY="^test_matmul_2d$"), 1,
              r"^FAIL test_matmul_2d: output_0: .*max abs err.*\n(.*\n)*REGRESSION test_matmul_2d")
        check("corrupted int/bool output fails", [],
              dict(base, FAKE_LOWBIT_MODE="corrupt", FAKE_LOWBIT_ONLY="^test_(equal|gather_0)$"),
              1, r"^conformance: \d+ passed, 2 failed")
        check("NaN where a number is expected fails", [],
              dict(base, FAKE_LOWBIT_MODE="nan", FAKE_LOWBIT_ONLY="^test_add$"), 1,
              r"^FAIL test_add: output_0: NaN positions differ")
        check("wrong shape fails", [],
              dict(base, FAKE_LOWBIT_MODE="shape", FAKE_LOWBIT_ONLY="^test_relu$"), 1,
              r"^FAIL test_relu: output_0: shape")
        check("wrong dtype fails", [],
              dict(base, FAKE_LOWBIT_MODE="dtype", FAKE_LOWBIT_ONLY="^test_relu$"), 1,
              r"^FAIL test_relu: output_0: dtype")
        check("compile error reported with its first line", [],
              dict(base, FAKE_LOWBIT_MODE="compile-error", FAKE_LOWBIT_ONLY="^test_add$"), 1,
              r"^FAIL test_add: compile failed \(exit 1\): .*fake compile error")
        check("crashing executable reported", [],
              dict(base, FAKE_LOWBIT_MODE="crash", FAKE_LOWBIT_ONLY="^test_add$"), 1,
              r"^FAIL test_add: run failed")
        check("hanging executable times out", ["--timeout", "3"],
              dict(base, FAKE_LOWBIT_MODE="hang", FAKE_LOWBIT_ONLY="^test_add$"), 1,
              r"^FAIL test_add: run timed out")
        check("missing output file fails", [],
              dict(base, FAKE_LOWBIT_MODE="missing", FAKE_LOWBIT_ONLY="^test_split_equal_parts_1d$"),
              1, r"^FAIL test_split_equal_parts_1d: executable wrote 2 outputs, expected 3")
        check("expected list: no regression -> exit 0, hint for new passes",
              ["--expected", exp], dict(base, FAKE_LOWBIT_OPS=ops + ",Abs"), 0,
              r"^hint: 1 passing case\(s\) not in .*\n  test_abs")
        with open(rep) as f:
            r = f.read()
        ok = "| Reshape |" in r and "| test_abs | skip | unsupported op Abs |" in r
        print(f"self-test {'ok  ' if ok else 'FAIL'} markdown report has per-op and per-case rows")
        if not ok:
            failures.append("report")
        left = [d for d in os.listdir(tempfile.gettempdir()) if d.startswith("lbconf-test_")]
        print(f"self-test {'ok  ' if not left else 'FAIL'} temp dirs cleaned up ({len(left)} left)")
        if left:
            failures.append("cleanup")
        print("self-test: " + ("all checks passed" if not failures
                               else f"{len(failures)} check(s) FAILED: {', '.join(failures)}"))
        return 1 if failures else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lowbit", help="path of the lowbit driver (BUILD/bin/lowbit)")
    ap.add_argument("--data", help="directory made by gen_data.py")
    ap.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--filter", help="only cases whose name matches this regex (re.search)")
    ap.add_argument("--in-scope", action="store_true",
                    help="only the cases in the issue's scope (see --scope-report)")
    ap.add_argument("--expected", help="list of cases that must pass (regressions fail the run)")
    ap.add_argument("--write-expected", metavar="FILE", help="write the passing cases to FILE")
    ap.add_argument("--report", metavar="FILE", help="write a markdown report")
    ap.add_argument("--target", help="cross target triple passed to lowbit compile")
    ap.add_argument("--cpu", help="--cpu passed to lowbit compile")
    ap.add_argument("--runner", help="command prefix to run executables (e.g. qemu-aarch64)")
    ap.add_argument("--timeout", type=float, default=60, help="seconds per compile and per run")
    ap.add_argument("--rtol", type=float, default=cmp.DEFAULT_RTOL)
    ap.add_argument("--atol", type=float, default=cmp.DEFAULT_ATOL)
    ap.add_argument("--fallback-atol", type=float, default=cmp.FALLBACK_ATOL)
    ap.add_argument("--tmpdir", help="where per-case temp dirs go (default $TMPDIR)")
    ap.add_argument("--keep-temp", action="store_true", help="keep per-case temp dirs")
    ap.add_argument("--verbose", "-v", action="store_true")
    ap.add_argument("--scope-report", action="store_true",
                    help="count the cases using only the scope ops and common dtypes")
    ap.add_argument("--self-test", action="store_true",
                    help="test this harness with tools/fake_lowbit.py")
    args = ap.parse_args()
    if args.self_test:
        return self_test(args)
    if not args.data:
        ap.error("--data is required")
    if args.scope_report:
        return scope_report(args)
    if not args.lowbit:
        ap.error("--lowbit is required")
    if args.target and not args.runner and args.target.split("-")[0] not in (os.uname().machine,):
        print(f"run.py: note: --target {args.target} without --runner; executables run directly",
              file=sys.stderr)
    return run_all(args)


if __name__ == "__main__":
    sys.exit(main())
