#!/bin/sh
# Calibration end to end on examples/mlp (issue 3, first part): 8 samples as
# .npy (and the ONNX test-data layout), --save-calib JSON checked (every
# matmul operand has min <= max and a positive scale), --load-calib + --emit ir
# shows q<...> on the calibrated values, every method runs, and the error
# cases (empty dir, wrong sample shape, malformed JSON) fail cleanly.
# Usage: calib.sh LOWBIT_BIN REPO_ROOT
set -u
LOWBIT=$1
ROOT=$2
PY=/usr/bin/python3
. "$(dirname "$0")/lib.sh"
check_err() { # check_err NAME STDERR_FRAGMENT CMD... : exit 1..125 and the fragment on stderr
  name=$1; frag=$2; shift 2
  "$@" >"$T/out" 2>"$T/err"
  rc=$?
  if [ "$rc" -ge 1 ] && [ "$rc" -le 125 ] && grep -q -- "$frag" "$T/err"; then ok; else
    bad "$name: exit $rc, want '$frag', stderr:"; head -5 "$T/err"
  fi
}
MLP=$ROOT/examples/mlp/model.onnx

# 8 samples of x: f32[2,16] as .npy; 2 more in the ONNX test-data layout
"$PY" - "$T" <<'PYEOF' || { echo "FAIL: numpy sample generation"; exit 1; }
import os, sys
import numpy as np
t = sys.argv[1]
rng = np.random.default_rng(3)
for i in range(8):
    d = os.path.join(t, "calib", "sample%d" % i)
    os.makedirs(d)
    np.save(os.path.join(d, "x.npy"), (rng.standard_normal((2, 16)) * (1 + i)).astype(np.float32))
# wrong shape
os.makedirs(os.path.join(t, "badshape", "s0"))
np.save(os.path.join(t, "badshape", "s0", "x.npy"), np.zeros((3, 16), np.float32))
os.makedirs(os.path.join(t, "empty"))
os.makedirs(os.path.join(t, "missing", "s0"))
PYEOF
mkdir -p "$T/pb/test_data_set_0"
cp "$ROOT/examples/mlp/input_0.pb" "$T/pb/test_data_set_0/input_0.pb"

# --save-calib: JSON with every matmul operand and output
run_ok save-calib "$LOWBIT" compile "$MLP" --dim batch=2 --calib "$T/calib" --save-calib "$T/stats.json" -o "$T/mlp"
if grep -q "calibrated 4 values on 8 samples" "$T/err" && [ "$(wc -l <"$T/err")" -eq 1 ]; then ok; else
  bad "summary line"; cat "$T/err"; fi
[ -x "$T/mlp" ] && ok || bad "float executable not built"
"$PY" - "$T/stats.json" <<'PYEOF' && ok || bad "stats.json contents"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["format"] == "lowbit-calibration" and s["version"] == 1 and s["samples"] == 8, s
assert "--load-calib" in s["note"], s["note"]
v = s["values"]
# the operands and outputs of the three fused matmuls
want = {"x", "relu0", "relu1", "fc2.out"}
assert want <= set(v), sorted(v)
for name, e in v.items():
    assert e["min"] <= e["max"], (name, e["min"], e["max"])
    assert e["scale"] > 0 and e["zero_point"] == 0 and e["symmetric"] is True, (name, e)
    assert abs(e["scale"] - max(-e["min"], e["max"]) / 127) <= 1e-6 * e["scale"], (name, e)
    assert e["histogram"]["bins"] == 2048 and e["count"] == 8 * 2 * int(e["type"].split(",")[1][:-1])
for name in ("x", "relu0", "relu1"):
    assert len(v[name]["absmax_channel"]) == int(v[name]["type"].split(",")[1][:-1]), name
    assert abs(max(v[name]["absmax_channel"]) - max(-v[name]["min"], v[name]["max"])) < 1e-6
PYEOF

# --load-calib + --emit ir: q<...> on the calibrated values
run_ok load-calib "$LOWBIT" compile "$MLP" --dim batch=2 --load-calib "$T/stats.json" --emit ir -o "$T/mlp.lbir"
n=$(grep -c "q<bits=8, axis=-1, group=0, sym, scales=\[" "$T/mlp.lbir")
[ "$n" -ge 4 ] && ok || bad "--load-calib: $n q<> annotations in the IR"
grep -q '^graph @mlp(%x: f32\[2,16\] q<bits=8' "$T/mlp.lbir" && ok || bad "input x has no q<>"
# --calib alone attaches the same scales as the round trip
run_ok calib-direct "$LOWBIT" compile "$MLP" --dim batch=2 --calib "$T/calib" --emit ir -o "$T/direct.lbir"
cmp -s "$T/mlp.lbir" "$T/direct.lbir" && ok || bad "--calib and --load-calib IR differ"

# every method and scheme; asymmetric uint8 has zero points
for m in minmax percentile:99.99 kl mse; do
  run_ok "method $m" "$LOWBIT" compile "$MLP" --dim batch=2 --calib "$T/calib" --calib-method "$m" \
    --calib-scheme uint8 --save-calib "$T/s-$m.json" --emit ir -o "$T/m.lbir"
  "$PY" -c "
import json,sys; v=json.load(open('$T/s-$m.json'))['values']
for n,e in v.items():
    lo,hi=e['range']; assert e['min']<=lo<=hi<=e['max'] and e['scale']>0 and 0<=e['zero_point']<=255, (n,e)
" && ok || bad "method $m json"
  grep -q "asym, unsigned, scales=\[.*\], zps=\[" "$T/m.lbir" && ok || bad "method $m: no asym q<>"
done
# ONNX test-data layout (input_0.pb)
run_ok pb-layout "$LOWBIT" compile "$MLP" --dim batch=2 --calib "$T/pb" --save-calib "$T/pb.json" --emit ir -o "$T/pb.lbir"
grep -q '"samples": 1' "$T/pb.json" && ok || bad "pb layout sample count"

# errors
check_err empty-dir "holds no samples" "$LOWBIT" compile "$MLP" --dim batch=2 --calib "$T/empty" --save-calib "$T/e.json" -o "$T/e1"
[ -e "$T/e.json" ] && bad "empty dir left a json" || ok
check_err no-dir "cannot open calibration directory" "$LOWBIT" compile "$MLP" --dim batch=2 --calib "$T/nope" -o "$T/e2"
check_err bad-shape "is f32\[3,16\] but input \"x\" is f32\[2,16\]" "$LOWBIT" compile "$MLP" --dim batch=2 --calib "$T/badshape" -o "$T/e3"
check_err missing-input "has no input_0.pb or x.npy" "$LOWBIT" compile "$MLP" --dim batch=2 --calib "$T/missing" -o "$T/e4"
printf '{"format": "lowbit-calibration", "version": 1,\n "values": {' >"$T/trunc.json"
check_err malformed-json "trunc.json:2:13: error: malformed JSON" "$LOWBIT" compile "$MLP" --dim batch=2 --load-calib "$T/trunc.json" -o "$T/e5"
sed 's/"scale": [0-9.e-]*/"scale": 0/' "$T/stats.json" >"$T/zero.json"
check_err zero-scale "scale: expected a positive finite number" "$LOWBIT" compile "$MLP" --dim batch=2 --load-calib "$T/zero.json" -o "$T/e6"
sed 's/"relu0"/"relu9"/' "$T/stats.json" >"$T/other.json"
check_err unknown-value '"relu9": the model has no such value' "$LOWBIT" compile "$MLP" --dim batch=2 --load-calib "$T/other.json" -o "$T/e7"
check_err no-file "cannot read" "$LOWBIT" compile "$MLP" --dim batch=2 --load-calib "$T/none.json" -o "$T/e8"
check_err bad-method "unknown calibration method" "$LOWBIT" compile "$MLP" --dim batch=2 --calib "$T/calib" --calib-method median -o "$T/e9"
check_err save-needs-calib "--save-calib needs --calib" "$LOWBIT" compile "$MLP" --dim batch=2 --save-calib "$T/x.json" -o "$T/e10"
check_err load-and-calib "exclude each other" "$LOWBIT" compile "$MLP" --dim batch=2 --calib "$T/calib" --load-calib "$T/stats.json" -o "$T/e11"
for f in e1 e2 e3 e4 e5 e6 e7 e8; do [ -e "$T/$f" ] && bad "$f left behind" || ok; done

finish calib
