#!/bin/sh
# The outlier variant of the GPT fixture (tests/fixtures/gpt_byte_4l_outliers) under int8:
#   1. the variant (made here by make_outlier_variant.py) compiled in float has the
#      original's held-out perplexity (onnxruntime's stored reference) within 1e-4;
#   2. plain w8a8 suffers from the planted LayerNorm outliers (perplexity up by > 0.5:
#      otherwise the variant does not test anything);
#   3. --smoothquant, and --outliers=6.0 (LLM.int8()-style split), bring w8a8 back
#      within 0.03 of float.
# Calibration samples come from the training text (make_calib.py), never the held-out text.
# Usage: check_outlier_variant.sh LOWBIT
set -eu
LOWBIT=$1
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
FIX=$ROOT/tests/fixtures/gpt_byte_4l
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
PY=/usr/bin/python3

$PY "$ROOT/tests/gpt/make_outlier_variant.py" --model "$FIX/model.onnx" -o "$T/variant.onnx" | tail -1
$PY "$ROOT/tests/gpt/make_calib.py" "$T/calib" | tail -1

# ppl NAME [lowbit options]: compiles the variant and prints its held-out perplexity
ppl() {
  name=$1
  shift
  "$LOWBIT" compile "$T/variant.onnx" --dim batch=1 --dim seq=128 "$@" -o "$T/$name" >&2
  $PY "$ROOT/tests/gpt/perplexity.py" --model "$T/variant.onnx" --text "$FIX/heldout.txt" \
    --exe "$T/$name" | awk '/^perplexity lowbit:/ { print $3 }'
}

fp32=$(ppl fp32)
w8a8=$(ppl w8a8 --quant w8a8 --calib "$T/calib")
sq=$(ppl sq --quant w8a8 --smoothquant --calib "$T/calib")
split=$(ppl split --quant w8a8 --outliers=6.0 --calib "$T/calib")
ref=$($PY -c 'import json, sys; print(json.load(open(sys.argv[1]))["perplexity"])' "$FIX/ort_reference.json")
echo "held-out perplexity: onnxruntime $ref, fp32 $fp32, w8a8 $w8a8, w8a8 --smoothquant $sq, w8a8 --outliers=6.0 $split"
$PY - "$ref" "$fp32" "$w8a8" "$sq" "$split" <<'EOF'
import sys
ref, fp32, w8a8, sq, split = map(float, sys.argv[1:])
checks = [
    ("fp32 variant equals the original (onnxruntime)", abs(fp32 - ref) <= 1e-4),
    ("plain w8a8 is hurt by the outliers (> fp32 + 0.5)", w8a8 > fp32 + 0.5),
    ("w8a8 --smoothquant within 0.03 of fp32", abs(sq - fp32) <= 0.03),
    ("w8a8 --outliers=6.0 within 0.03 of fp32", abs(split - fp32) <= 0.03),
]
bad = [name for name, ok in checks if not ok]
for name, ok in checks:
    print(("ok    " if ok else "FAIL  ") + name)
sys.exit(1 if bad else 0)
EOF
