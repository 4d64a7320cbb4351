#!/bin/sh
# onnxruntime MatMulNBits versions of the GPT fixture (issue 4, "importing MatMulNBits"):
# tests/gpt/ort_nbits.py builds them as onnxruntime 1.30's MatMulNBitsQuantizer
# (DefaultWeightOnlyQuantConfig, RTN, 4 bits) would: block 32 and 128 symmetric, block 32
# asymmetric, block 32 with accuracy_level 4, and the QDQ form (DequantizeLinear-21 of int4
# weights, block 32, -> MatMul). Each must compile and reproduce onnxruntime's
# held-out perplexity (tests/fixtures/gpt_byte_4l/ort_nbits/<form>/, written by
# perplexity.py --ort --write-ref on the same models) within 0.003.
# Usage: check_nbits.sh LOWBIT   (about 30 s on 2 cores)
set -eu
LOWBIT=$1
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
FIX=$ROOT/tests/fixtures/gpt_byte_4l
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
PY=/usr/bin/python3

for form in "b32:" "b128:--block-size 128" "b32_asym:--asymmetric" "b32_acc4:--accuracy-level 4" "qdq_b32:--qdq"; do
  name=${form%%:*}
  opts=${form#*:}
  echo "-- $name ($opts): perplexity against onnxruntime"
  # shellcheck disable=SC2086
  $PY "$ROOT/tests/gpt/ort_nbits.py" "$FIX/model.onnx" "$T/$name.onnx" $opts
  "$LOWBIT" compile "$T/$name.onnx" --dim batch=1 --dim seq=128 -o "$T/$name"
  $PY "$ROOT/tests/gpt/perplexity.py" --model "$T/$name.onnx" --text "$FIX/heldout.txt" \
    --exe "$T/$name" --ref "$FIX/ort_nbits/$name" --max-diff 0.003
done
