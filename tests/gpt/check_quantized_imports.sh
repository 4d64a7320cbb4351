#!/bin/sh
# onnxruntime-quantized versions of the GPT fixture (issue 3, "importing quantized ONNX"):
# tests/gpt/ort_quantize.py builds them as onnxruntime 1.30's quantize_static (QDQ, MinMax,
# 32 calibration windows of the training text), its QOperator form (QLinearMatMul) and
# quantize_dynamic (MatMulInteger) would; each must compile and reproduce onnxruntime's
# held-out perplexity (stored in
# tests/fixtures/gpt_byte_4l/ort_quantized/<form>/, written by perplexity.py --ort
# --write-ref on the same models) within 0.003. The QDQ model compiled for aarch64 (qemu)
# must give the host build's window-0 logits exactly.
# Usage: check_quantized_imports.sh LOWBIT
set -eu
LOWBIT=$1
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
FIX=$ROOT/tests/fixtures/gpt_byte_4l
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
PY=/usr/bin/python3

$PY "$ROOT/tests/gpt/ort_quantize.py" "$FIX/model.onnx" "$T" --calib-windows 32 --qoperator
for form in qdq qop dyn; do
  echo "-- gpt_$form.onnx: perplexity against onnxruntime"
  "$LOWBIT" compile "$T/gpt_$form.onnx" --dim batch=1 --dim seq=128 -o "$T/$form"
  $PY "$ROOT/tests/gpt/perplexity.py" --model "$T/gpt_$form.onnx" --text "$FIX/heldout.txt" \
    --exe "$T/$form" --ref "$FIX/ort_quantized/$form" --max-diff 0.003
done
echo "-- gpt_qdq.onnx for aarch64 under qemu: window 0 equals the host build"
"$LOWBIT" compile "$T/gpt_qdq.onnx" --dim batch=1 --dim seq=128 --target aarch64-linux-gnu -o "$T/qdq-arm64"
W0=$FIX/ort_quantized/qdq/ort_window0/input_0.pb
"$T/qdq" "$W0" -o "$T/x86-out" >/dev/null
qemu-aarch64 "$T/qdq-arm64" "$W0" -o "$T/arm-out" >/dev/null
$PY "$ROOT/tests/tools/compare.py" "$T/arm-out/output_0.pb" "$T/x86-out/output_0.pb" 0 0
