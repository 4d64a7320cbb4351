#!/usr/bin/python3
"""run_lit.py: a small FileCheck test runner for lowbit's IR tests.

Each test file (*.lbir) carries its own commands in `# RUN:` lines (a line
ending in `\\` continues on the next RUN: line). In a command:

  %s            the test file's path
  %lowbit-opt   the lowbit-opt binary   (--lowbit-opt PATH or $LOWBIT_OPT)
  %lowbit       the lowbit binary       (--lowbit PATH or $LOWBIT)
  %t            a scratch path unique to the test (a directory may be made there)
  %%            a literal %
  FileCheck     /usr/lib/llvm-19/bin/FileCheck (--filecheck PATH or $FILECHECK)

Commands run with `sh -c` with `set -o pipefail` semantics emulated: a
command fails if any stage of its pipeline fails (POSIX sh has no
pipefail, so each command is run by bash when it is available, else sh).
A file marked `# XFAIL` passes when some RUN line fails, and fails otherwise.
A file with no RUN line fails: it is probably a mistake.

Usage: run_lit.py [--lowbit-opt P] [--lowbit P] [--filecheck P] [-v] FILE_OR_DIR...
Prints one line per test and `lit: N passed, N failed`; exits 1 if any failed.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

RUN_RE = re.compile(r"^\s*#\s*RUN:\s?(.*)$")


def find_tests(paths):
    for p in paths:
        if os.path.isdir(p):
            for root, dirs, files in os.walk(p):
                dirs.sort()
                for f in sorted(files):
                    if f.endswith(".lbir"):
                        yield os.path.join(root, f)
        else:
            yield p


def run_lines(text):
    cmds, cur = [], None
    for line in text.splitlines():
        m = RUN_RE.match(line)
        if not m:
            continue
        part = m.group(1).rstrip()
        cur = part if cur is None else cur + " " + part.lstrip()
        if cur.endswith("\\"):
            cur = cur[:-1].rstrip()
            continue
        cmds.append(cur)
        cur = None
    if cur is not None:
        cmds.append(cur)
    return cmds


def substitute(cmd, subst):
    # Longest names first so %lowbit-opt wins over %lowbit; %% last.
    out, i = [], 0
    keys = sorted(subst, key=len, reverse=True)
    while i < len(cmd):
        if cmd.startswith("%%", i):
            out.append("%")
            i += 2
            continue
        for k in keys:
            if cmd.startswith(k, i):
                out.append(subst[k])
                i += len(k)
                break
        else:
            out.append(cmd[i])
            i += 1
    return "".join(out)


def quote(s):
    return "'" + s.replace("'", "'\\''") + "'"


def run_test(path, args):
    with open(path, encoding="utf-8", errors="replace") as f:
        text = f.read()
    cmds = run_lines(text)
    xfail = re.search(r"^\s*#\s*XFAIL\b(?!-)", text, re.M) is not None
    if not cmds:
        return False, "no RUN: lines"
    tmpdir = tempfile.mkdtemp(prefix="lit-")
    subst = {
        "%s": quote(os.path.abspath(path)),
        "%lowbit-opt": quote(args.lowbit_opt),
        "%lowbit": quote(args.lowbit),
        "%t": quote(os.path.join(tmpdir, "t")),
    }
    shell = shutil.which("bash")
    log = []
    failed = False
    try:
        for cmd in cmds:
            c = substitute(cmd, subst)
            c = re.sub(r"(^|[|;&]\s*)FileCheck\b", lambda m: m.group(1) + quote(args.filecheck), c)
            argv = [shell, "-o", "pipefail", "-c", c] if shell else ["sh", "-c", c]
            p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               cwd=os.path.dirname(os.path.abspath(path)) or ".")
            log.append("$ " + c + "\n" + p.stdout.decode("utf-8", "replace"))
            if p.returncode != 0:
                log.append("(exit status %d)" % p.returncode)
                failed = True
                break
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    if xfail:
        return failed, "\n".join(log) if not failed else "XFAIL"
    return not failed, "\n".join(log)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lowbit-opt", default=os.environ.get("LOWBIT_OPT", "lowbit-opt"))
    ap.add_argument("--lowbit", default=os.environ.get("LOWBIT", "lowbit"))
    ap.add_argument("--filecheck", default=os.environ.get("FILECHECK", "/usr/lib/llvm-19/bin/FileCheck"))
    ap.add_argument("-v", "--verbose", action="store_true", help="show the output of passing tests too")
    ap.add_argument("paths", nargs="+")
    args = ap.parse_args()
    passed = failed = 0
    for t in find_tests(args.paths):
        ok, log = run_test(t, args)
        print(("PASS: " if ok else "FAIL: ") + t)
        if (not ok or args.verbose) and log:
            print("\n".join("  " + l for l in log.splitlines()))
        if ok:
            passed += 1
        else:
            failed += 1
    print("lit: %d passed, %d failed" % (passed, failed))
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
