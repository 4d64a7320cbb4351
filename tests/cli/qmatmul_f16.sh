#!/bin/sh
# F16 weights (issue 5) end to end. 1) qmatmul with f16 weights (over many
# binades and into the subnormals; one layer with inf and NaN weights) compiled
# for the host (AVX-512, vcvtph2ps), x86-64-v3 without F16C and x86-64 (SSE;
# the bit-moving decoder) and aarch64 (fcvtl, run under qemu), at 5 rows and 1
# row, checked against numpy (float16 weights summed in float64). 2) lowbit
# compile --quant f16 on a two-layer MLP against the float build; the summary
# line, the dumped IR, the usage errors.
# Usage: qmatmul_f16.sh LOWBIT_BIN
set -u
LOWBIT=$1
PY=/usr/bin/python3
. "$(dirname "$0")/lib.sh"

"$PY" - "$T" <<'PYEOF' || { echo "FAIL: generating the models"; exit 1; }
import os, sys, numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto
t = sys.argv[1]
rng = np.random.default_rng(16)
f32 = np.float32

R, K, N = 5, 100, 45
a = (rng.standard_normal((R, K)) * 1.5).astype(f32)
b = rng.standard_normal(N).astype(f32)
np.save(t + "/a.npy", a)
np.save(t + "/a1.npy", a[:1].copy())
def lst(v): return ", ".join(repr(float(x)) for x in v)

def weight(specials):
    w = rng.standard_normal((K, N)) * np.exp2(np.arange(N) % 29 - 20.0)  # columns from 2^-20 to 2^8
    h = w.astype(np.float16)
    if specials:
        m = rng.random((K, N)) < 0.03
        h[m] = rng.choice(np.array([np.inf, -np.inf, np.nan], dtype=np.float16), size=m.sum())
    return h

layers = [weight(False), weight(False), weight(True)]
for rows, tag in ((R, ""), (1, "1")):
    lines, body = [], ""
    for i, h in enumerate(layers):
        bits = h.view(np.uint16).flatten()
        lines.append("  %%w%d = const f16[%d,%d] dense<[%s]>" % (i, K, N, ", ".join("0x%04x" % x for x in bits)))
        with np.errstate(invalid="ignore"):
            ref = (a[:rows].astype(np.float64) @ h.astype(np.float64)).astype(f32) + (b if i % 2 == 0 else 0)
        np.save("%s/ref%s_%d.npy" % (t, tag, i), ref.astype(f32))
    body = "\n".join(lines) + "\n  %%b = const f32[%d] dense<[%s]>\n" % (N, lst(b))
    for i in range(len(layers)):
        body += '  %%y%d = qmatmul(%%a, %%w%d%s) {a_quant="none", act="none"} : f32[%d,%d]\n' % (
            i, i, ", %b" if i % 2 == 0 else "", rows, N)
    ir = "graph @qmmh(%%a: f32[%d,%d]) -> (%s) {\n%s  return %s\n}\n" % (
        rows, K, ", ".join(["f32[%d,%d]" % (rows, N)] * len(layers)), body,
        ", ".join("%%y%d" % i for i in range(len(layers))))
    open("%s/qmmh%s.lbir" % (t, tag), "w").write(ir)

# x [16,64] -> Gemm(W1 [128,64] transB, b1) -> Relu -> MatMul(W2 [128,32]) -> y [16,32]
M, D, H, O = 16, 64, 128, 32
inits = [numpy_helper.from_array((rng.standard_normal((H, D)) / np.sqrt(D)).astype(f32), "w1"),
         numpy_helper.from_array((0.1 * rng.standard_normal(H)).astype(f32), "b1"),
         numpy_helper.from_array((rng.standard_normal((H, O)) / np.sqrt(H)).astype(f32), "w2")]
Nd = helper.make_node
nodes = [Nd("Gemm", ["x", "w1", "b1"], ["h"], transB=1, name="/fc1"), Nd("Relu", ["h"], ["hr"]),
         Nd("MatMul", ["hr", "w2"], ["y"], name="/fc2")]
g = helper.make_graph(nodes, "mlp2", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [M, D])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, [M, O])], inits)
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
onnx.save(m, os.path.join(t, "mlp2.onnx"))
np.save(t + "/x.npy", rng.standard_normal((M, D)).astype(f32))
PYEOF

check() { # check NAME OUTDIR TAG
  "$PY" - "$T" "$2" "$1" "$3" <<'PYEOF' || fail=1
import sys, numpy as np
t, out, name, tag = sys.argv[1:5]
bad = 0
for i in range(3):
    got, ref = np.load("%s/output_%d.npy" % (out, i)), np.load("%s/ref%s_%d.npy" % (t, tag, i))
    assert got.dtype == ref.dtype and got.shape == ref.shape, (i, got.dtype, got.shape)
    fin = np.isfinite(ref)
    np.seterr(invalid="ignore")
    # per column: f32 sums in another order than float64's, relative to the column's magnitude
    scale = np.nanmax(np.abs(np.where(fin, ref, 0)), axis=0, keepdims=True) + 1e-30
    ok = np.where(fin, np.abs(got - ref) <= 1e-5 * np.abs(ref) + 1e-4 * scale,
                  (np.isnan(ref) & np.isnan(got)) | (got == ref))
    if not ok.all():
        j = np.argwhere(~ok)[0]
        print("FAIL %s: output %d differs at %s: got %r want %r" % (name, i, j, got[tuple(j)], ref[tuple(j)]))
        bad = 1
    if i == 2 and not (np.isnan(ref).any() and np.isinf(ref).any()):
        print("FAIL %s: output 2 should hold NaN and inf (its weights do)" % name); bad = 1
print("%s: %s" % (name, "ok" if not bad else "MISMATCH"))
sys.exit(bad)
PYEOF
}

for tag in "" 1; do
  a=$T/a$tag.npy
  for v in "host" "x86-64-v3-nof16c --cpu x86-64-v3 --features -f16c" "x86-64 --cpu x86-64"; do
    set -- $v
    name=$1; shift
    "$LOWBIT" compile "$T/qmmh$tag.lbir" "$@" -o "$T/$name$tag" || { echo "FAIL: $name compile"; exit 1; }
    "$T/$name$tag" "$a" -o "$T/out-$name$tag" || { echo "FAIL: $name run"; exit 1; }
    check "$name rows=${tag:-5}" "$T/out-$name$tag" "$tag"
  done
  "$LOWBIT" compile "$T/qmmh$tag.lbir" --target aarch64-linux-gnu -o "$T/arm$tag" || { echo "FAIL: aarch64 compile"; exit 1; }
  run_aarch64 aarch64 cortex-a53 "$T/arm$tag" "$T/out-arm$tag" "$a" &&
    check "aarch64 rows=${tag:-5} (qemu)" "$T/out-arm$tag" "$tag"
done
# the F16C path converts with one instruction, the others do not
"$LOWBIT" compile "$T/qmmh.lbir" --emit asm -o "$T/host.s" && grep -q vcvtph2ps "$T/host.s" ||
  { echo "FAIL: no vcvtph2ps in the host build"; fail=1; }
"$LOWBIT" compile "$T/qmmh.lbir" --cpu x86-64 --emit asm -o "$T/sse.s" && ! grep -q "vcvtph2ps\|__extendhfsf2" "$T/sse.s" ||
  { echo "FAIL: the x86-64 build should decode halves with integer ops"; fail=1; }
"$LOWBIT" compile "$T/qmmh.lbir" --target aarch64-linux-gnu --emit asm -o "$T/arm.s" && grep -q fcvtl "$T/arm.s" ||
  { echo "FAIL: no fcvtl in the aarch64 build"; fail=1; }

# --quant f16 on an ONNX model: relative RMS error of y against the float build
"$LOWBIT" compile "$T/mlp2.onnx" -o "$T/f32" || { echo "FAIL: float compile"; exit 1; }
"$T/f32" "$T/x.npy" -o "$T/out-f32" || { echo "FAIL: float run"; exit 1; }
"$LOWBIT" compile "$T/mlp2.onnx" --quant f16 -o "$T/f16" 2>"$T/err" || { echo "FAIL: compile f16"; cat "$T/err"; exit 1; }
grep -q "quantized 2 of 2 matmuls to fp16 (f16)" "$T/err" || { echo "FAIL: f16 summary:"; cat "$T/err"; fail=1; }
"$T/f16" "$T/x.npy" -o "$T/out-f16" || { echo "FAIL: run f16"; exit 1; }
# (f16 keeps 11 significant bits: at most 2^-12 relative per weight, about 1e-4 rms at the output)
"$PY" - "$T/out-f32" "$T/out-f16" <<'PYEOF' || fail=1
import sys, numpy as np
a, b = np.load(sys.argv[1] + "/output_0.npy"), np.load(sys.argv[2] + "/output_0.npy")
rel = np.sqrt(np.mean((a - b) ** 2) / np.mean(a ** 2))
ok = 1e-6 < rel <= 5e-4   # it converted, within f16's rounding
print("f16: relative rms error %.2e (budget 5e-4) %s" % (rel, "ok" if ok else "FAIL"))
sys.exit(0 if ok else 1)
PYEOF
"$LOWBIT" compile "$T/mlp2.onnx" --quant f16 --emit ir -o "$T/m.lbir" 2>/dev/null || fail=1
grep -q '= const f16\[64,128\] blob<' "$T/m.lbir" && grep -q '= const f16\[128,32\] blob<' "$T/m.lbir" ||
  { echo "FAIL: no f16 weights in the IR dump"; fail=1; }
grep -q '= qmatmul(%x, %w1.q, %b1) {a_quant="none", act="relu"}' "$T/m.lbir" ||
  { echo "FAIL: no f16 qmatmul in the IR dump"; grep qmatmul "$T/m.lbir"; fail=1; }

usage() { # usage NAME FRAGMENT ARGS...: exit 2 and the fragment on stderr
  name=$1; frag=$2; shift 2
  "$LOWBIT" compile "$T/mlp2.onnx" -o "$T/e" "$@" 2>"$T/err"
  rc=$?
  if [ $rc -ne 2 ] || ! grep -q -- "$frag" "$T/err"; then echo "FAIL $name: exit $rc:"; head -3 "$T/err"; fail=1; fi
}
usage f16-group "need --quant w4, w3 or w2" --quant f16 --group-size 32
usage f16-algo "need --quant w4, w3 or w2" --quant f16 --weight-algo gptq
usage f16-scheme "fp8-e5m2, f16)" --quant fp16
[ $fail -eq 0 ] && echo "qmatmul_f16: all ok"
exit $fail
