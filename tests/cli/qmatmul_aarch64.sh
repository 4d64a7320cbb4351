#!/bin/sh
# qmatmul kernels (codegen/k_qmatmul.c) on every instruction family, end to end:
# one IR file with static (signed, and unsigned with a zero point), dynamic and
# weight-only qmatmuls and a requantized u8 output, compiled for the host
# (x86: vpdpbusd) and for aarch64 with +dotprod (sdot) and without (widening
# multiply-add), the aarch64 builds run under qemu. Every output is checked
# against a numpy implementation of the contract in docs/ir-ops.md: the 8-bit
# paths exactly (they are integer-exact by contract), W8 within f32 rounding.
# Usage: qmatmul_aarch64.sh LOWBIT_BIN
set -u
LOWBIT=$1
PY=/usr/bin/python3
. "$(dirname "$0")/lib.sh"

"$PY" - "$T" <<'PYEOF' || { echo "FAIL: generating the model"; exit 1; }
import sys, numpy as np
t = sys.argv[1]
rng = np.random.default_rng(7)
R, K, N = 13, 70, 45            # odd K and N: padding in every panel layout
a = (rng.standard_normal((R, K)) * 1.5).astype(np.float32)
a[3] = 0                        # an all-zero row: dynamic scale 1
a[5, :8] = np.arange(-4, 4, dtype=np.float32) * np.float32(0.125)  # ties at sa = 0.25
w = rng.integers(-128, 128, size=(K, N)).astype(np.int8)
ws = (0.002 + 0.02 * rng.random(N)).astype(np.float32)
b = rng.standard_normal(N).astype(np.float32)
np.save(t + "/a.npy", a)

def fl(x): return repr(float(x))
def lst(v): return ", ".join(fl(x) for x in v)
sa_s, sa_u, za_u, sy, zy = np.float32(0.25), np.float32(6 / 255), 117, np.float32(0.05), 60
wq = "q<bits=8, axis=1, group=0, sym, scales=[%s]>" % lst(ws)
# the same activations twice: calibrated as int8 (symmetric) and as uint8 (zero point)
ir = f"""graph @qmm(%a: f32[{R},{K}] q<bits=8, axis=-1, group=0, sym, scales=[{fl(sa_s)}]>, %au: f32[{R},{K}] q<bits=8, axis=-1, group=0, asym, unsigned, scales=[{fl(sa_u)}], zps=[{za_u}]>) -> (f32[{R},{N}], f32[{R},{N}], f32[{R},{N}], f32[{R},{N}], u8[{R},{N}]) {{
  %w = const i8[{K},{N}] dense<[{", ".join(str(int(x)) for x in w.flatten())}]> {wq}
  %b = const f32[{N}] dense<[{lst(b)}]>
  %ys = qmatmul(%a, %w, %b) {{a_quant="static", act="relu"}} : f32[{R},{N}]
  %yu = qmatmul(%au, %w) {{a_quant="static"}} : f32[{R},{N}]
  %yd = qmatmul(%a, %w, %b) {{a_quant="dynamic"}} : f32[{R},{N}]
  %yn = qmatmul(%a, %w, %b) {{a_quant="none"}} : f32[{R},{N}]
  %yq = qmatmul(%au, %w, %b) {{a_quant="static"}} : u8[{R},{N}] q<bits=8, axis=-1, group=0, asym, unsigned, scales=[{fl(sy)}], zps=[{zy}]>
  return %ys, %yu, %yd, %yn, %yq
}}
"""
open(t + "/qmm.lbir", "w").write(ir)

# the contract, in f32 where it says f32
f32 = np.float32
def quant(x, s, z, lo, hi): return np.clip(np.rint(x / f32(s)) + z, lo, hi)
def int_mm(q, z, s):        # s: per-row or scalar input scale (f32)
    acc = (q.astype(np.int64) - z) @ w.astype(np.int64)
    return acc.astype(f32) * (np.asarray(s, f32).reshape(-1, 1) * ws)
ys = np.maximum(int_mm(quant(a, sa_s, 0, -128, 127), 0, sa_s) + b, f32(0))
yu = int_mm(quant(a, sa_u, za_u, 0, 255), za_u, sa_u)
amax = np.abs(a).max(axis=1)
sd = np.where(amax == 0, f32(1), amax / f32(127)).astype(f32)
yd = int_mm(np.clip(np.rint(a / sd.reshape(-1, 1)), -127, 127), 0, sd) + b
yn = (a.astype(np.float64) @ w.astype(np.float64)).astype(f32) * ws + b
yq = quant(int_mm(quant(a, sa_u, za_u, 0, 255), za_u, sa_u) + b, sy, zy, 0, 255).astype(np.uint8)
for i, y in enumerate([ys, yu, yd, yn, yq]):
    np.save(t + "/ref_%d.npy" % i, y)
PYEOF

check() { # check NAME OUTDIR
  "$PY" - "$T" "$2" "$1" <<'PYEOF' || fail=1
import sys, numpy as np
t, out, name = sys.argv[1:4]
bad = 0
for i in range(5):
    got, ref = np.load("%s/output_%d.npy" % (out, i)), np.load("%s/ref_%d.npy" % (t, i))
    assert got.dtype == ref.dtype and got.shape == ref.shape, (i, got.dtype, got.shape)
    if i == 3:   # W8: f32 sums in another order
        ok = np.abs(got - ref) <= 1e-5 * np.abs(ref) + 1e-4
    else:
        ok = got == ref
    if not ok.all():
        j = np.argwhere(~ok)[0]
        print("FAIL %s: output %d differs at %s: got %r want %r" % (name, i, j, got[tuple(j)], ref[tuple(j)]))
        bad = 1
print("%s: %s" % (name, "ok" if not bad else "MISMATCH"))
sys.exit(bad)
PYEOF
}

"$LOWBIT" compile "$T/qmm.lbir" -o "$T/host" || { echo "FAIL: host compile"; exit 1; }
"$T/host" "$T/a.npy" "$T/a.npy" -o "$T/out-host" || { echo "FAIL: host run"; exit 1; }
check "host" "$T/out-host"
"$LOWBIT" compile "$T/qmm.lbir" -o "$T/host-novnni" --features=-avx512vnni,-avxvnni || { echo "FAIL: compile"; exit 1; }
"$T/host-novnni" "$T/a.npy" "$T/a.npy" -o "$T/out-host-novnni" || { echo "FAIL: host run"; exit 1; }
check "host without VNNI" "$T/out-host-novnni"

# x86 families this machine may not run: the instruction each CPU gets
asm_has() { # asm_has CPU PATTERN
  "$LOWBIT" compile "$T/qmm.lbir" --cpu "$1" --emit asm -o "$T/x86-$1.s" &&
    grep -q -- "$2" "$T/x86-$1.s" || { echo "FAIL: --cpu $1 has no '$2'"; fail=1; }
}
asm_has alderlake "{vex}.*vpdpbusd.*ymm"
asm_has cascadelake "vpdpbusd.*zmm"
asm_has skylake-avx512 "vpmaddwd.*zmm"
asm_has haswell "vpmaddwd.*ymm"

for f in "" "+dotprod"; do
  "$LOWBIT" compile "$T/qmm.lbir" --target aarch64-linux-gnu ${f:+--features $f} -o "$T/arm$f" ||
    { echo "FAIL: aarch64$f compile"; exit 1; }
  "$LOWBIT" compile "$T/qmm.lbir" --target aarch64-linux-gnu ${f:+--features $f} --emit asm -o "$T/arm$f.s"
  if [ -n "$f" ]; then grep -q "sdot" "$T/arm$f.s" || { echo "FAIL: no sdot with +dotprod"; fail=1; }
  else ! grep -q "sdot" "$T/arm$f.s" || { echo "FAIL: sdot without +dotprod"; fail=1; }; fi
  # the baseline build must run on a core without dotprod (cortex-a53)
  cpu=cortex-a53; [ -n "$f" ] && cpu=max
  run_aarch64 "aarch64$f" $cpu "$T/arm$f" "$T/out-arm$f" "$T/a.npy" "$T/a.npy" &&
    check "aarch64 ${f:-baseline} (qemu)" "$T/out-arm$f"
done
exit $fail
