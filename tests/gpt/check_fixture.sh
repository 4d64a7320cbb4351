#!/bin/sh
# The byte-level GPT fixture (tests/fixtures/gpt_byte_4l), end to end:
#   1. compiled for the host, its held-out perplexity equals onnxruntime's
#      (stored reference) within 0.0005;
#   2. compiled for aarch64 and run under qemu, its logits on window 0 match
#      onnxruntime's within 2e-3;
#   3. the IR round trip holds on it (print(parse(text)) == text), and every
#      per-pass dump parses back.
# Usage: check_fixture.sh LOWBIT
set -eu
LOWBIT=$1
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
FIX=$ROOT/tests/fixtures/gpt_byte_4l
OPT=$(dirname "$LOWBIT")/lowbit-opt
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
PY=/usr/bin/python3

echo "-- host: perplexity against onnxruntime"
"$LOWBIT" compile "$FIX/model.onnx" --dim batch=1 --dim seq=128 -o "$T/gpt"
$PY "$ROOT/tests/gpt/perplexity.py" --model "$FIX/model.onnx" --text "$FIX/heldout.txt" \
  --exe "$T/gpt" --ref "$FIX" --max-diff 0.0005 --max-logit-diff 1e-3

echo "-- aarch64 under qemu: logits against onnxruntime"
"$LOWBIT" compile "$FIX/model.onnx" --dim batch=1 --dim seq=128 --target aarch64-linux-gnu -o "$T/gpt-arm64"
qemu-aarch64 "$T/gpt-arm64" "$FIX/ort_window0/input_0.pb" -o "$T/arm-out" --threads 2
$PY "$ROOT/tests/tools/compare.py" "$T/arm-out/output_0.pb" "$FIX/ort_window0/output_0.pb" 0 2e-3

echo "-- IR round trip and per-pass dumps"
"$LOWBIT" compile "$FIX/model.onnx" --dim batch=1 --dim seq=128 --emit ir -o "$T/gpt.lbir" --dump-dir "$T/dumps"
"$OPT" "$T/gpt.lbir" -p '' --full-blobs -o "$T/gpt2.lbir"
cmp "$T/gpt.lbir" "$T/gpt2.lbir"
n=0
for f in "$T"/dumps/*.lbir; do
  "$OPT" "$f" -p '' >/dev/null
  n=$((n + 1))
done
echo "round trip ok; $n dumps parse back"
mkdir "$T/from-ir"
"$LOWBIT" compile "$T/gpt.lbir" -o "$T/from-ir/gpt"
cmp "$T/from-ir/gpt" "$T/gpt"
echo "compiling the IR text gives the same executable as compiling the ONNX model"
