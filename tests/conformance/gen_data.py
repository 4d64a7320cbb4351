#!/usr/bin/python3
"""Generate the ONNX backend *node* test data for the installed python3-onnx.

    tests/conformance/gen_data.py OUTDIR

Writes OUTDIR/<case>/model.onnx and OUTDIR/<case>/test_data_set_0/{input,output}_K.pb,
the same layout as onnx/backend/test/data/node in an upstream onnx checkout.

Debian's python3-onnx does not ship that data, so it is produced with onnx's own
generators (onnx.backend.test.case.node.collect_testcases, the logic behind
`onnx.backend.test.cmd_tools generate-data`). If the installed onnx *does* ship it, it is
copied instead. The generators use aliases numpy 1.24 removed (np.float, np.object,
np.bool, np.int ...); they are restored before onnx's test modules are imported.

Idempotent: OUTDIR/.lowbit-data-stamp records the onnx/numpy versions; when it matches,
nothing is done. The tree is written to a sibling temporary directory and renamed into
place, so an interrupted run never leaves a half-written OUTDIR behind.
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

STAMP = ".lowbit-data-stamp"
FORMAT = 1  # bump when the layout written here changes


def _restore_numpy_aliases(np):
    for name, value in (("float", float), ("int", int), ("bool", bool),
                        ("object", object), ("complex", complex), ("str", str),
                        ("long", int), ("unicode", str)):
        if name not in np.__dict__:
            setattr(np, name, value)


def _stamp_text(onnx, np):
    return f"format={FORMAT} onnx={onnx.__version__} numpy={np.__version__}\n"


def _write_case(case, case_dir, numpy_helper):
    os.makedirs(case_dir)
    with open(os.path.join(case_dir, "model.onnx"), "wb") as f:
        f.write(case.model.SerializeToString())
    graph = case.model.graph
    for i, (inputs, outputs) in enumerate(case.data_sets):
        ds = os.path.join(case_dir, f"test_data_set_{i}")
        os.makedirs(ds)
        for kind, values, infos in (("input", inputs, graph.input),
                                    ("output", outputs, graph.output)):
            for j, value in enumerate(values):
                info = infos[j]
                t = info.type
                if t.HasField("map_type"):
                    proto = numpy_helper.from_dict(value, info.name)
                elif t.HasField("sequence_type"):
                    proto = numpy_helper.from_list(value, info.name)
                elif t.HasField("optional_type"):
                    proto = numpy_helper.from_optional(value, info.name)
                else:
                    proto = numpy_helper.from_array(value, info.name)
                with open(os.path.join(ds, f"{kind}_{j}.pb"), "wb") as f:
                    f.write(proto.SerializeToString())


def generate(outdir, force=False, quiet=False):
    import numpy as np
    _restore_numpy_aliases(np)
    import onnx
    from onnx import numpy_helper

    outdir = os.path.abspath(outdir)
    stamp = _stamp_text(onnx, np)
    stamp_path = os.path.join(outdir, STAMP)
    if not force and os.path.isfile(stamp_path):
        with open(stamp_path) as f:
            if f.read() == stamp:
                if not quiet:
                    print(f"gen_data: {outdir} is up to date ({stamp.strip()})")
                return outdir

    t0 = time.time()
    parent = os.path.dirname(outdir) or "."
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".gen_data-", dir=parent)
    try:
        shipped = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "node")
        if os.path.isdir(shipped) and os.listdir(shipped):
            src = "shipped"
            for name in sorted(os.listdir(shipped)):
                shutil.copytree(os.path.join(shipped, name), os.path.join(tmp, name))
            n = len(os.listdir(tmp))
        else:
            src = "generated"
            import onnx.backend.test.case.node as node_test
            cases = node_test.collect_testcases(None)
            # Two upstream cases share a name; as with cmd_tools, the later one wins.
            by_name = {}
            for case in cases:
                by_name[case.name] = case
            for name, case in sorted(by_name.items()):
                _write_case(case, os.path.join(tmp, name), numpy_helper)
            n = len(by_name)
        with open(os.path.join(tmp, STAMP), "w") as f:
            f.write(stamp)
        if os.path.exists(outdir):
            old = outdir + ".old-" + str(os.getpid())
            os.rename(outdir, old)
            os.rename(tmp, outdir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, outdir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if not quiet:
        print(f"gen_data: {src} {n} node cases for onnx {onnx.__version__} "
              f"into {outdir} in {time.time() - t0:.1f}s")
    return outdir


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--force", action="store_true", help="regenerate even if the stamp matches")
    args = ap.parse_args()
    generate(args.outdir, force=args.force)


if __name__ == "__main__":
    sys.exit(main())
