#!/bin/sh
# Low-bit qmatmul kernels (codegen/k_qmatmul_lowbit.c) end to end: one IR file
# with 4-bit (group 32, symmetric; group 16, asymmetric), 3-bit and 2-bit
# weights under a_quant dynamic, static (signed, and unsigned with a zero
# point: the i16 paths) and none, compiled for the host (vpdpbusd, and
# vpmaddwd without VNNI) and for aarch64 with +dotprod (sdot) and without
# (widening multiply-add), the aarch64 builds run under qemu. Outputs are
# checked against numpy's reading of docs/ir-ops.md "Low-bit weights": the
# integer modes exactly, a_quant none within f32 rounding.
# Usage: qmatmul_lowbit_aarch64.sh LOWBIT_BIN
set -u
LOWBIT=$1
PY=/usr/bin/python3
. "$(dirname "$0")/lib.sh"

"$PY" - "$T" <<'PYEOF' || { echo "FAIL: generating the model"; exit 1; }
import sys, numpy as np
t = sys.argv[1]
rng = np.random.default_rng(11)
R, K, N = 7, 100, 45            # short last group, partial panels; none: tiles (R >= 6)
a = (rng.standard_normal((R, K)) * 1.5).astype(np.float32)
a[2] = 0                        # an all-zero row: dynamic scale 1
b = rng.standard_normal(N).astype(np.float32)
np.save(t + "/a.npy", a)
f32 = np.float32
def fl(x): return repr(float(x))
def lst(v): return ", ".join(fl(x) for x in v)

def weight(name, bits, group, asym):
    ng = -(-K // group)
    lo, span = (0, 1 << bits) if asym else (-(1 << (bits - 1)), 1 << bits)
    w = rng.integers(lo, lo + span, size=(K, N)).astype(np.int8)
    s = (rng.integers(16, 400, size=ng * N) / 4096).astype(f32)   # f16 values
    z = rng.integers(0, span, size=ng * N) if asym else None
    q = "q<bits=%d, axis=1, group=%d, %s, scales=[%s]%s>" % (
        bits, group, "asym, unsigned" if asym else "sym", lst(s),
        ", zps=[%s]" % ", ".join(str(int(x)) for x in z) if asym else "")
    line = '  %%%s = const i8[%d,%d] dense<[%s]> %s' % (name, K, N, ", ".join(str(int(x)) for x in w.flatten()), q)
    return line, (w, s.reshape(ng, N), None if z is None else z.reshape(ng, N), group)

def int_mm(q, za, sa, W):       # per group exact sums, f32 scaling in ascending g
    w, s, z, G = W
    y = np.zeros((R, N), f32)
    sa = np.asarray(sa, f32).reshape(-1, 1)
    for g in range(s.shape[0]):
        k = slice(g * G, min(K, (g + 1) * G))
        wz = w[k].astype(np.int64) - (0 if z is None else z[g])
        acc = (q[:, k].astype(np.int64) - za) @ wz
        y = (y + acc.astype(f32) * (sa * s[g])).astype(f32)
    return y

def real_w(W):
    w, s, z, G = W
    g = np.arange(K) // G
    return (w.astype(np.float64) - (0 if z is None else z[g])) * s[g]

def quant(x, s, z, lo, hi): return np.clip(np.rint(x / f32(s)) + z, lo, hi)
amax = np.abs(a).max(axis=1)
sd = np.where(amax == 0, f32(1), amax / f32(127)).astype(f32)
qd = np.clip(np.rint(a / sd.reshape(-1, 1)), -127, 127)
sa_s, sa_u, za_u = f32(0.25), f32(6 / 255), 117

lines, refs, outs = [], [], []
W4, W4a, W3, W2 = [], [], [], []
for name, bits, group, asym in [("w4", 4, 32, False), ("w4a", 4, 16, True), ("w3", 3, 32, False), ("w2", 2, 8, True)]:
    line, W = weight(name, bits, group, asym)
    lines.append(line)
    W4.append(W) if name == "w4" else W4a.append(W) if name == "w4a" else W3.append(W) if name == "w3" else W2.append(W)
W4, W4a, W3, W2 = W4[0], W4a[0], W3[0], W2[0]
nodes = [
    ("y0", "%a", "w4", "%b", "dynamic", "none", int_mm(qd, 0, sd, W4) + b),
    ("y1", "%a", "w4a", "%b", "dynamic", "relu", np.maximum(int_mm(qd, 0, sd, W4a) + b, f32(0))),
    ("y2", "%a", "w4", "%b", "none", "none", (a.astype(np.float64) @ real_w(W4)).astype(f32) + b),
    ("y3", "%a", "w4a", None, "none", "none", (a.astype(np.float64) @ real_w(W4a)).astype(f32)),
    ("y4", "%a", "w3", "%b", "static", "none", int_mm(quant(a, sa_s, 0, -128, 127), 0, sa_s, W3) + b),
    ("y5", "%au", "w2", None, "static", "none", int_mm(quant(a, sa_u, za_u, 0, 255), za_u, sa_u, W2)),
    ("y6", "%a", "w2", "%b", "dynamic", "none", int_mm(qd, 0, sd, W2) + b),
    ("y7", "%a", "w3", None, "none", "none", (a.astype(np.float64) @ real_w(W3)).astype(f32)),
]
body = "\n".join(lines) + "\n  %%b = const f32[%d] dense<[%s]>\n" % (N, lst(b))
for y, x, w, bias, aq, act, ref in nodes:
    body += '  %%%s = qmatmul(%s, %%%s%s) {a_quant="%s", act="%s"} : f32[%d,%d]\n' % (
        y, x, w, ", " + bias if bias else "", aq, act, R, N)
ir = ("graph @qmm4(%%a: f32[%d,%d] q<bits=8, axis=-1, group=0, sym, scales=[%s]>, "
      "%%au: f32[%d,%d] q<bits=8, axis=-1, group=0, asym, unsigned, scales=[%s], zps=[%d]>) -> (%s) {\n%s"
      "  return %s\n}\n") % (R, K, fl(sa_s), R, K, fl(sa_u), za_u, ", ".join(["f32[%d,%d]" % (R, N)] * len(nodes)),
                             body, ", ".join("%" + n[0] for n in nodes))
open(t + "/qmm4.lbir", "w").write(ir)
for i, n in enumerate(nodes):
    np.save(t + "/ref_%d.npy" % i, n[6].astype(f32))
open(t + "/exact", "w").write(" ".join(str(int(n[4] != "none")) for n in nodes))
PYEOF

check() { # check NAME OUTDIR
  "$PY" - "$T" "$2" "$1" <<'PYEOF' || fail=1
import sys, numpy as np
t, out, name = sys.argv[1:4]
exact = [int(x) for x in open(t + "/exact").read().split()]
bad = 0
for i, ex in enumerate(exact):
    got, ref = np.load("%s/output_%d.npy" % (out, i)), np.load("%s/ref_%d.npy" % (t, i))
    assert got.dtype == ref.dtype and got.shape == ref.shape, (i, got.dtype, got.shape)
    ok = got == ref if ex else np.abs(got - ref) <= 1e-5 * np.abs(ref) + 1e-4
    if not ok.all():
        j = np.argwhere(~ok)[0]
        print("FAIL %s: output %d differs at %s: got %r want %r" % (name, i, j, got[tuple(j)], ref[tuple(j)]))
        bad = 1
print("%s: %s" % (name, "ok" if not bad else "MISMATCH"))
sys.exit(bad)
PYEOF
}

"$LOWBIT" compile "$T/qmm4.lbir" -o "$T/host" || { echo "FAIL: host compile"; exit 1; }
"$T/host" "$T/a.npy" "$T/a.npy" -o "$T/out-host" || { echo "FAIL: host run"; exit 1; }
check "host" "$T/out-host"
"$LOWBIT" compile "$T/qmm4.lbir" -o "$T/host-novnni" --features=-avx512vnni,-avxvnni || { echo "FAIL: compile"; exit 1; }
"$T/host-novnni" "$T/a.npy" "$T/a.npy" -o "$T/out-host-novnni" || { echo "FAIL: host run"; exit 1; }
check "host without VNNI" "$T/out-host-novnni"

for f in "" "+dotprod"; do
  "$LOWBIT" compile "$T/qmm4.lbir" --target aarch64-linux-gnu ${f:+--features $f} -o "$T/arm$f" ||
    { echo "FAIL: aarch64$f compile"; exit 1; }
  "$LOWBIT" compile "$T/qmm4.lbir" --target aarch64-linux-gnu ${f:+--features $f} --emit asm -o "$T/arm$f.s"
  if [ -n "$f" ]; then grep -q "sdot" "$T/arm$f.s" || { echo "FAIL: no sdot with +dotprod"; fail=1; }
  else ! grep -q "sdot" "$T/arm$f.s" || { echo "FAIL: sdot without +dotprod"; fail=1; }; fi
  cpu=cortex-a53; [ -n "$f" ] && cpu=max
  run_aarch64 "aarch64$f" $cpu "$T/arm$f" "$T/out-arm$f" "$T/a.npy" "$T/a.npy" &&
    check "aarch64 ${f:-baseline} (qemu)" "$T/out-arm$f"
done
exit $fail
