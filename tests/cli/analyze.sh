#!/bin/sh
# lowbit analyze (issue 4, layer sensitivity; issue 5, the plan): a three-layer
# MLP whose middle layer has one huge weight per column (so w4/w2 RTN rounds
# the rest of its group to zero) must rank that layer first; the reported
# errors (kl: the outputs are logits) and bytes must match a numpy model of RTN
# with that one layer quantized; the list form, --json, gptq, the default
# candidates without a budget (no plan); with a budget the plan, its measured
# KL and per-layer SQNR against numpy, --save-plan / --quant-plan, --html; and
# the usage errors.
# Usage: analyze.sh LOWBIT_BIN
set -u
LOWBIT=$1
PY=/usr/bin/python3
. "$(dirname "$0")/lib.sh"
tables() { sed '/^Mixed precision:/,$d' "$1"; } # the per-precision tables, without the report

# x [8,64] -> MatMul w1 [64,64] + b1 -> Relu -> MatMul w2 [64,64] + b2 -> Relu
#          -> MatMul w3 [64,16] + b3 -> y [8,16] (logits); w2[5,:] = w2[37,:] = 4 (others ~0.12)
"$PY" "$(dirname "$0")/mlp3_model.py" "$T" || { echo "FAIL: model/sample generation"; exit 1; }
MODEL=$T/mlp3.onnx

# expected OUTFILE METRIC BITS GROUP: the numpy model's error per layer as JSON lines
check_json() { # check_json JSON METRIC BITS GROUP: errors and bytes against numpy
  "$PY" - "$T" "$1" "$2" "$3" "$4" <<'PYEOF'
import glob, json, sys
import numpy as np
from onnx import numpy_helper, TensorProto
t, path, metric, bits, group = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
z = np.load(t + "/weights.npz")
W = [(z["arr_%d" % (2 * i)], z["arr_%d" % (2 * i + 1)]) for i in range(3)]
def rtn(w):  # symmetric RTN as passes/quantize.c: scale = f16(amax / (2^(b-1) - 1/2)), codes clamped
    k, n = w.shape
    g = group or k
    out = np.empty_like(w)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    for k0 in range(0, k, g):
        blk = w[k0:k0 + g]
        amax = np.abs(blk).max(axis=0)
        s = np.float16(amax / np.float32(hi + 0.5)).astype(np.float32)
        s[amax == 0] = 1
        out[k0:k0 + g] = np.clip(np.rint(blk / s), lo, hi) * s
    return out
def fwd(x, ws):
    h = x.astype(np.float64)
    for i, (w, b) in enumerate(ws):
        h = h @ w.astype(np.float64) + b
        if i < 2: h = np.maximum(h, 0)
    return h
def logsm(a):
    a = a - a.max(axis=-1, keepdims=True)
    return a - np.log(np.exp(a).sum(axis=-1, keepdims=True))
xs = []
for p in sorted(glob.glob(t + "/calib/*/input_0.pb")):
    tp = TensorProto(); tp.ParseFromString(open(p, "rb").read()); xs.append(numpy_helper.to_array(tp))
j = json.load(open(path))
assert j["metric"] == metric and j["samples"] == len(xs), (j["metric"], j["samples"])
layers = {l["value"]: l for l in j["layers"]}
assert len(layers) == 3, list(layers)
names = ["r0", "r1", "y"]  # the values after fuse (relu folded in)
for i in range(3):
    ws = list(W)
    ws[i] = (rtn(W[i][0]), W[i][1])
    num = den = 0.0
    for x in xs:
        f, q = fwd(x, W), fwd(x, ws)
        if metric == "mse":
            num += ((f - q) ** 2).sum(); den += f.size
        else:
            lf, lq = logsm(f), logsm(q)
            num += (np.exp(lf) * (lf - lq)).sum(); den += f.shape[0]
    want = num / den
    r = layers[names[i]]["results"][0]
    k, n = W[i][0].shape
    ng = (k + (group or k) - 1) // (group or k)
    want_bytes = (k * n * bits + 7) // 8 + 2 * ng * n
    if not (abs(r["error"] - want) <= 2e-3 * want and r["bytes"] == want_bytes):
        print("layer %s: lowbit error %g bytes %d, numpy %g %d" % (names[i], r["error"], r["bytes"], want, want_bytes))
        sys.exit(1)
PYEOF
}

# w4 (kl, chosen for logits): the outlier layer first, numbers as numpy's
if "$LOWBIT" analyze "$MODEL" --calib "$T/calib" --quant w4 --json "$T/w4.json" >"$T/w4.out" 2>"$T/w4.err"; then ok; else
  bad "w4: exit $?"; head -5 "$T/w4.err"; fi
[ "$(tables "$T/w4.out" | awk '$1 == "1" {print $2}')" = r1 ] && ok || { bad "w4: r1 (outlier layer) not ranked first"; cat "$T/w4.out"; }
[ "$(tables "$T/w4.out" | grep -c '^ *[0-9] ')" = 3 ] && ok || { bad "w4: want 3 rows"; cat "$T/w4.out"; }
grep -q '^ *1  r1 .*/fc1/MatMul *64x64 w4g32 .*1\.000$' "$T/w4.out" && ok || { bad "w4: first row"; cat "$T/w4.out"; }
grep -q '^all 3 layers: summed kl ' "$T/w4.out" && ok || { bad "w4: totals line"; cat "$T/w4.out"; }
check_json "$T/w4.json" kl 4 32 && ok || bad "w4 kl against numpy"
grep -q '^lowbit: measured 3 layers x 1 precisions (kl) on 6 samples' "$T/w4.err" && ok || { bad "w4: progress"; cat "$T/w4.err"; }
grep -q '^lowbit: analyzed 3 layers x 1 precision on 6 samples' "$T/w4.err" && ok || { bad "w4: summary"; cat "$T/w4.err"; }
# no budget: the report's table without a plan
grep -q '^No plan: give a budget' "$T/w4.out" && ! grep -q '^Plan (' "$T/w4.out" && ok || { bad "w4: no plan"; cat "$T/w4.out"; }

# --metric mse on logits: the other metric, numbers as numpy's
"$LOWBIT" analyze "$MODEL" --calib "$T/calib" --quant w4 --metric mse --json "$T/mse.json" >"$T/mse.out" 2>"$T/mse.err" &&
  ok || { bad "w4 mse: exit $?"; head -5 "$T/mse.err"; }
check_json "$T/mse.json" mse 4 32 && ok || bad "w4 mse against numpy"

# w2, groups of 64 (--metric kl: the metric analyze would choose anyway)
"$LOWBIT" analyze "$MODEL" --calib "$T/calib" --quant w2 --group-size 64 --metric kl --json "$T/w2.json" \
  >"$T/w2.out" 2>"$T/w2.err" && ok || { bad "w2 kl: exit $?"; head -5 "$T/w2.err"; }
[ "$(tables "$T/w2.out" | awk '$1 == "1" {print $2}')" = r1 ] && ok || { bad "w2: r1 not ranked first"; cat "$T/w2.out"; }
check_json "$T/w2.json" kl 2 64 && ok || bad "w2 kl against numpy"

# a list: one table per precision; errors grow and bytes shrink with the bits;
# groups of 16 leave half of fc1's groups free of outliers
"$LOWBIT" analyze "$MODEL" --calib "$T/calib" --quant w8,w4,w3,w3:16 --json "$T/list.json" >"$T/list.out" \
  2>"$T/list.err" && ok || { bad "list: exit $?"; head -5 "$T/list.err"; }
[ "$(grep -c '^all 3 layers: summed' "$T/list.out")" = 4 ] && ok || { bad "list: want 4 tables"; cat "$T/list.out"; }
"$PY" - "$T/list.json" <<'PYEOF' && ok || bad "list: JSON"
import json, sys
j = json.load(open(sys.argv[1]))
assert [p["label"] for p in j["precisions"]] == ["w8", "w4g32", "w3g32", "w3g16"], j["precisions"]
for l in j["layers"]:
    e = [r["error"] for r in l["results"]]
    b = [r["bytes"] for r in l["results"]]
    assert e[0] < e[1] < e[2], (l["value"], e)
    assert l["float_bytes"] > b[0] > b[1] > b[3] > b[2], (l["value"], b)
    if l["value"] == "r1":
        assert e[3] < 0.75 * e[2], e
PYEOF

# gptq: Hessians once, then each layer alone
"$LOWBIT" analyze "$MODEL" --calib "$T/calib" --quant w3 --weight-algo gptq >"$T/g.out" 2>"$T/g.err" && ok ||
  { bad "gptq: exit $?"; head -5 "$T/g.err"; }
grep -q '^w3g32 (gptq)' "$T/g.out" && [ "$(tables "$T/g.out" | grep -c '^ *[0-9] ')" = 3 ] && ok || { bad "gptq table"; cat "$T/g.out"; }
grep -q '^lowbit: calibrated Hessians of the layer inputs on 6 samples' "$T/g.err" && ok || { bad "gptq: calibration"; cat "$T/g.err"; }

# a budget: the plan (r1 and y at w4, r0 at w2: the least summed error within 3.7 bits), its
# KL at the outputs and each layer's SQNR against float measured on the chosen model, as
# numpy computes them; the plan file fed back gives the same
"$LOWBIT" analyze "$MODEL" --calib "$T/calib" --quant w4,w2 --target-bpw 3.7 --json "$T/plan.json" \
  --save-plan "$T/saved.json" --html "$T/plan.html" >"$T/plan.out" 2>"$T/plan.err" && ok ||
  { bad "plan: exit $?"; head -5 "$T/plan.err"; }
grep -q '^Plan (--target-bpw 3.7;' "$T/plan.out" && grep -q '^  2 x w4g32, 1 x w2g32$' "$T/plan.out" && ok ||
  { bad "plan: text report"; cat "$T/plan.out"; }
grep -q '^ *2 r1 .*\*.* w4g32 ' "$T/plan.out" && ok || { bad "plan: r1 (outlier layer) should get w4g32"; cat "$T/plan.out"; }
[ -s "$T/plan.html" ] && [ -s "$T/saved.json" ] && ok || bad "plan: --html / --save-plan not written"
"$PY" - "$T" "$T/plan.json" <<'PYEOF' && ok || bad "plan: measured errors against numpy"
import glob, json, sys
import numpy as np
from onnx import numpy_helper, TensorProto
t, path = sys.argv[1], sys.argv[2]
z = np.load(t + "/weights.npz")
W = [(z["arr_%d" % (2 * i)], z["arr_%d" % (2 * i + 1)]) for i in range(3)]
def rtn(w, bits, group):
    out = np.empty_like(w)
    hi = (1 << (bits - 1)) - 1
    for k0 in range(0, w.shape[0], group):
        blk = w[k0:k0 + group]
        amax = np.abs(blk).max(axis=0)
        s = np.float16(amax / np.float32(hi + 0.5)).astype(np.float32)
        s[amax == 0] = 1
        out[k0:k0 + group] = np.clip(np.rint(blk / s), -hi - 1, hi) * s
    return out
def fwd(x, ws):  # the outputs of the three layers
    h, outs = x.astype(np.float64), []
    for i, (w, b) in enumerate(ws):
        h = h @ w.astype(np.float64) + b
        if i < 2: h = np.maximum(h, 0)
        outs.append(h)
    return outs
def logsm(a):
    a = a - a.max(axis=-1, keepdims=True)
    return a - np.log(np.exp(a).sum(axis=-1, keepdims=True))
j = json.load(open(path))
names = ["r0", "r1", "y"]
plan = {l["value"]: l["plan"] for l in j["layers"]}
bits = {"w4g32": 4, "w2g32": 2}
Q = [(rtn(W[i][0], bits[plan[names[i]]], 32), W[i][1]) for i in range(3)]
kl = rows = 0.0
sig, noise = np.zeros(3), np.zeros(3)
for p in sorted(glob.glob(t + "/calib/*/input_0.pb")):
    tp = TensorProto(); tp.ParseFromString(open(p, "rb").read()); x = numpy_helper.to_array(tp)
    f, q = fwd(x, W), fwd(x, Q)
    for i in range(3):
        sig[i] += (f[i] ** 2).sum(); noise[i] += ((f[i] - q[i]) ** 2).sum()
    lf, lq = logsm(f[2]), logsm(q[2])
    kl += (np.exp(lf) * (lf - lq)).sum(); rows += f[2].shape[0]
want = kl / rows
got = j["plan"]["model_error"]
assert abs(got - want) <= 2e-3 * want, ("model kl", got, want)
for i in range(3):
    want_db = 10 * np.log10(sig[i] / noise[i])
    got_db = j["layers"][i]["sqnr_db"]
    assert abs(got_db - want_db) <= 0.01, (names[i], got_db, want_db)
assert j["plan"]["bits_per_weight"] <= 3.7, j["plan"]
PYEOF
"$LOWBIT" analyze "$MODEL" --calib "$T/calib" --quant-plan "$T/saved.json" --json "$T/again.json" >"$T/again.out" \
  2>"$T/again.err" && ok || { bad "plan again: exit $?"; head -5 "$T/again.err"; }
"$PY" - "$T/plan.json" "$T/again.json" <<'PYEOF' && ok || bad "plan again: another plan or error"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
assert [l["plan"] for l in a["layers"]] == [l["plan"] for l in b["layers"]], (a["layers"], b["layers"])
assert all(l["fixed"] for l in b["layers"]), b["layers"]
assert abs(a["plan"]["model_error"] - b["plan"]["model_error"]) <= 1e-9 * a["plan"]["model_error"], (a["plan"], b["plan"])
PYEOF

# usage errors
check_usage no-calib "analyze needs --calib DIR" "$LOWBIT" analyze "$MODEL" --quant w4
check_usage asym "analyze measures the candidates of --quant auto" "$LOWBIT" analyze "$MODEL" --calib "$T/calib" --asym
check_usage save-no-budget "--save-plan needs a plan" "$LOWBIT" analyze "$MODEL" --calib "$T/calib" --save-plan "$T/x.json"
check_usage keep-no-budget "--keep-float applies to a choice" "$LOWBIT" analyze "$MODEL" --calib "$T/calib" --keep-float r1
check_usage bad-bpw "--target-bpw needs a positive number" "$LOWBIT" analyze "$MODEL" --calib "$T/calib" --target-bpw x
check_usage group-0 "group size must be a positive integer" "$LOWBIT" analyze "$MODEL" --calib "$T/calib" --quant w4:0
check_usage no-model "no model given" "$LOWBIT" analyze --calib "$T/calib" --quant w4
check_usage bad-prec "unknown --quant precision 'w8a8'" "$LOWBIT" analyze "$MODEL" --calib "$T/calib" --quant w4,w8a8
check_usage w8-group "per output column" "$LOWBIT" analyze "$MODEL" --calib "$T/calib" --quant w8:32
check_usage bad-group "group size must be" "$LOWBIT" analyze "$MODEL" --calib "$T/calib" --quant w4 --group-size x
check_usage bad-metric "unknown --metric 'l2'" "$LOWBIT" analyze "$MODEL" --calib "$T/calib" --quant w4 --metric l2
check_usage awq "unknown --weight-algo 'awq'" "$LOWBIT" analyze "$MODEL" --calib "$T/calib" --quant w4 --weight-algo awq
check_usage bad-opt "unknown option '--bogus'" "$LOWBIT" analyze "$MODEL" --calib "$T/calib" --quant w4 --bogus
# a bad samples folder is an input error (1), named
"$LOWBIT" analyze "$MODEL" --calib "$T/nonexistent" --quant w4 >/dev/null 2>"$T/err"
[ $? -eq 1 ] && grep -q nonexistent "$T/err" && ok || { bad "missing calib dir"; cat "$T/err"; }

finish analyze
