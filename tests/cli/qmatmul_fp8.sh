#!/bin/sh
# FP8 weights (issue 4) end to end. 1) qmatmul with e4m3 and e5m2 codes (per
# column, groups with a short last one; every code including NaN and e5m2's
# infinities in one layer) compiled for the host (AVX-512), for x86-64 (SSE)
# and for aarch64 (run under qemu), checked against numpy's reading of
# docs/ir-ops.md "Low-bit weights", FP8 (decoded from the bit fields here).
# 2) lowbit compile --quant fp8 / fp8-e5m2 [--group-size] on a two-layer MLP
# against the float build within a budget; the dumped IR; the usage errors.
# Usage: qmatmul_fp8.sh LOWBIT_BIN
set -u
LOWBIT=$1
PY=/usr/bin/python3
. "$(dirname "$0")/lib.sh"

"$PY" - "$T" <<'PYEOF' || { echo "FAIL: generating the models"; exit 1; }
import os, sys, numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto
t = sys.argv[1]
rng = np.random.default_rng(8)
f32 = np.float32

def decode(c, fmt):             # the value of fp8 code c (docs/ir-ops.md)
    mb, bias = (3, 7) if fmt == "e4m3" else (2, 15)
    s = -1.0 if c & 0x80 else 1.0
    e, m = (c & 0x7F) >> mb, c & ((1 << mb) - 1)
    if fmt == "e4m3" and c & 0x7F == 0x7F: return np.nan
    if fmt == "e5m2" and e == 31: return np.nan if m else s * np.inf
    if e == 0: return s * m * 2.0 ** (1 - bias - mb)
    return s * (1 + m / 2.0 ** mb) * 2.0 ** (e - bias)

R, K, N = 5, 100, 45
a = (rng.standard_normal((R, K)) * 1.5).astype(f32)
b = rng.standard_normal(N).astype(f32)
np.save(t + "/a.npy", a)
np.save(t + "/a1.npy", a[:1].copy())
def fl(x): return repr(float(x))
def lst(v): return ", ".join(fl(x) for x in v)

def weight(name, fmt, group, specials):
    ng = -(-K // group) if group else 1
    finite = [c for c in range(256) if np.isfinite(decode(c, fmt))]
    w = rng.integers(0, 256, size=(K, N)) if specials else rng.choice(finite, size=(K, N))
    s = (rng.integers(16, 400, size=ng * N) / (4096 if fmt == "e4m3" else 1048576)).astype(f32)  # f16 values
    q = "q<bits=8, axis=1, group=%d, sym, fp8=%s, scales=[%s]>" % (group, fmt, lst(s))
    line = '  %%%s = const u8[%d,%d] dense<[%s]> %s' % (name, K, N, ", ".join(str(int(x)) for x in w.flatten()), q)
    g = np.arange(K) // (group if group else K)
    real = np.vectorize(lambda c: decode(int(c), fmt))(w) * s.reshape(ng, N)[g].astype(np.float64)
    return line, real

layers = [("w0", "e4m3", 0, False), ("w1", "e4m3", 32, False), ("w2", "e5m2", 0, False),
          ("w3", "e5m2", 16, False), ("w4", "e4m3", 0, True), ("w5", "e5m2", 32, True)]
for rows, tag in ((R, ""), (1, "1")):
    lines, outs = [], []
    for i, (name, fmt, group, sp) in enumerate(layers):
        line, real = weight(name, fmt, group, sp)
        lines.append(line)
        with np.errstate(invalid="ignore"):
            ref = (a[:rows].astype(np.float64) @ real).astype(f32) + (b if i % 2 == 0 else 0)
        np.save("%s/ref%s_%d.npy" % (t, tag, i), ref.astype(f32))
        outs.append(i)
    body = "\n".join(lines) + "\n  %%b = const f32[%d] dense<[%s]>\n" % (N, lst(b))
    for i in outs:
        body += '  %%y%d = qmatmul(%%a, %%w%d%s) {a_quant="none", act="none"} : f32[%d,%d]\n' % (
            i, i, ", %b" if i % 2 == 0 else "", rows, N)
    ir = "graph @qmm8(%%a: f32[%d,%d]) -> (%s) {\n%s  return %s\n}\n" % (
        rows, K, ", ".join(["f32[%d,%d]" % (rows, N)] * len(outs)), body, ", ".join("%%y%d" % i for i in outs))
    open("%s/qmm8%s.lbir" % (t, tag), "w").write(ir)

# x [16,64] -> Gemm(W1 [128,64] transB, b1) -> Relu -> MatMul(W2 [128,32]) -> y [16,32]
M, D, H, O = 16, 64, 128, 32
inits = [numpy_helper.from_array((rng.standard_normal((H, D)) / np.sqrt(D)).astype(f32), "w1"),
         numpy_helper.from_array((0.1 * rng.standard_normal(H)).astype(f32), "b1"),
         numpy_helper.from_array((rng.standard_normal((H, O)) / np.sqrt(H) * np.exp(rng.standard_normal(O))).astype(f32), "w2")]
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
for i in range(6):
    got, ref = np.load("%s/output_%d.npy" % (out, i)), np.load("%s/ref%s_%d.npy" % (t, tag, i))
    assert got.dtype == ref.dtype and got.shape == ref.shape, (i, got.dtype, got.shape)
    fin = np.isfinite(ref)
    np.seterr(invalid="ignore")
    ok = np.where(fin, np.abs(got - ref) <= 1e-5 * np.abs(ref) + 1e-4 * np.nanmax(np.abs(np.where(fin, ref, 0))),
                  (np.isnan(ref) & np.isnan(got)) | (got == ref))
    if not ok.all():
        j = np.argwhere(~ok)[0]
        print("FAIL %s: output %d differs at %s: got %r want %r" % (name, i, j, got[tuple(j)], ref[tuple(j)]))
        bad = 1
    if i >= 4 and not np.isnan(ref).any():
        print("FAIL %s: output %d should hold NaNs (NaN codes)" % (name, i)); bad = 1
print("%s: %s" % (name, "ok" if not bad else "MISMATCH"))
sys.exit(bad)
PYEOF
}

for tag in "" 1; do
  a=$T/a$tag.npy
  "$LOWBIT" compile "$T/qmm8$tag.lbir" -o "$T/host$tag" || { echo "FAIL: host compile"; exit 1; }
  "$T/host$tag" "$a" -o "$T/out-host$tag" || { echo "FAIL: host run"; exit 1; }
  check "host rows=${tag:-5}" "$T/out-host$tag" "$tag"
  "$LOWBIT" compile "$T/qmm8$tag.lbir" --cpu x86-64 -o "$T/sse$tag" || { echo "FAIL: x86-64 compile"; exit 1; }
  "$T/sse$tag" "$a" -o "$T/out-sse$tag" || { echo "FAIL: x86-64 run"; exit 1; }
  check "x86-64 rows=${tag:-5}" "$T/out-sse$tag" "$tag"
  "$LOWBIT" compile "$T/qmm8$tag.lbir" --target aarch64-linux-gnu -o "$T/arm$tag" || { echo "FAIL: aarch64 compile"; exit 1; }
  run_aarch64 aarch64 cortex-a53 "$T/arm$tag" "$T/out-arm$tag" "$a" &&
    check "aarch64 rows=${tag:-5} (qemu)" "$T/out-arm$tag" "$tag"
done

# --quant fp8 on an ONNX model: relative RMS error of y against the float build
"$LOWBIT" compile "$T/mlp2.onnx" -o "$T/f32" || { echo "FAIL: float compile"; exit 1; }
"$T/f32" "$T/x.npy" -o "$T/out-f32" || { echo "FAIL: float run"; exit 1; }
# (e4m3 keeps 3 mantissa bits: about 2.7% rms per weight, e5m2 2 bits: 5.4%)
for v in "fp8 0.05" "fp8 0.05 --group-size 32" "fp8-e5m2 0.09" "fp8-e5m2 0.09 --group-size 16"; do
  set -- $v
  s=$1; budget=$2; shift 2
  tag=$s$(echo "$*" | tr -d ' -')
  "$LOWBIT" compile "$T/mlp2.onnx" --quant "$s" "$@" -o "$T/$tag" 2>"$T/err-$tag" || { echo "FAIL: compile $tag"; cat "$T/err-$tag"; exit 1; }
  grep -q "quantized 2 of 2 matmuls to fp8 ($s)" "$T/err-$tag" || { echo "FAIL: $tag summary:"; cat "$T/err-$tag"; fail=1; }
  "$T/$tag" "$T/x.npy" -o "$T/out-$tag" || { echo "FAIL: run $tag"; exit 1; }
  "$PY" - "$T/out-f32" "$T/out-$tag" "$budget" "$tag" <<'PYEOF' || fail=1
import sys, numpy as np
a, b = np.load(sys.argv[1] + "/output_0.npy"), np.load(sys.argv[2] + "/output_0.npy")
rel = np.sqrt(np.mean((a - b) ** 2) / np.mean(a ** 2))
ok = 1e-4 < rel <= float(sys.argv[3])   # it quantized, within the budget
print("%s: relative rms error %.4f (budget %s) %s" % (sys.argv[4], rel, sys.argv[3], "ok" if ok else "FAIL"))
sys.exit(0 if ok else 1)
PYEOF
done
"$LOWBIT" compile "$T/mlp2.onnx" --quant fp8-e5m2 --group-size 32 --emit ir -o "$T/m.lbir" 2>/dev/null || fail=1
grep -q "const u8\[64,128\] .* q<bits=8, axis=1, group=32, sym, fp8=e5m2, scales=" "$T/m.lbir" ||
  { echo "FAIL: no e5m2 weight in the IR dump"; fail=1; }

usage() { # usage NAME FRAGMENT ARGS...: exit 2 and the fragment on stderr
  name=$1; frag=$2; shift 2
  "$LOWBIT" compile "$T/mlp2.onnx" -o "$T/e" "$@" 2>"$T/err"
  rc=$?
  if [ $rc -ne 2 ] || ! grep -q -- "$frag" "$T/err"; then echo "FAIL $name: exit $rc:"; head -3 "$T/err"; fail=1; fi
}
usage fp8-asym "fp8: --group-size only" --quant fp8 --asym
usage fp8-algo "fp8: --group-size only" --quant fp8-e5m2 --weight-algo gptq
usage fp8-act "fp8: --group-size only" --quant fp8 --act int8
usage fp8-scheme "fp8, fp8-e5m2, f16)" --quant fp8-e4m3
[ $fail -eq 0 ] && echo "qmatmul_fp8: all ok"
exit $fail
