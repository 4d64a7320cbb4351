#!/bin/sh
# lowbit compile --lora (issue 5, LoRA adapters) on the byte GPT fixture at seq 16:
# a PEFT-layout safetensors adapter (r 8 on the qkv and fc layers, f16/bf16/f32
# tensors, lora_alpha/r from adapter_config.json) gives the output of the model
# with the adapter merged into its weights (within 1e-4), the ONNX-initializer form
# gives the same output, an adapter on the lm head keeps the output's name; with
# --quant w4 the adapters stay f32 beside 4-bit base layers and the output is as
# close to the merged float model as w4 is to the float base; --quant auto does not
# count the adapter matmuls as layers; the errors list every problem at once and
# write nothing. Models and adapters: tests/cli/lora_models.py.
# Usage: lora.sh LOWBIT_BIN REPO_ROOT
set -u
LOWBIT=$1
ROOT=$2
PY=/usr/bin/python3
FIX=$ROOT/tests/fixtures/gpt_byte_4l/model.onnx
. "$(dirname "$0")/lib.sh"
D="--dim batch=1 --dim seq=16"

"$PY" "$ROOT/tests/cli/lora_models.py" "$FIX" "$T" || { echo "FAIL: adapter generation"; exit 1; }

# build NAME MODEL ARGS...: compiles and runs on in/input_0.pb into $T/NAME.out
build() {
  name=$1; model=$2; shift 2
  if "$LOWBIT" compile "$model" $D "$@" -o "$T/$name" 2>"$T/$name.err" &&
     "$T/$name" "$T/in/input_0.pb" -o "$T/$name.out" >/dev/null 2>>"$T/$name.err"; then return 0; fi
  bad "build $name:"; head -5 "$T/$name.err"; return 1
}
# rel A B: max|a - b| / max|b| of two runs' outputs
rel() {
  "$PY" - "$T/$1.out/output_0.pb" "$T/$2.out/output_0.pb" <<'PYEOF'
import sys
import numpy as np
import onnx
from onnx import numpy_helper
def load(p):
    t = onnx.TensorProto(); t.ParseFromString(open(p, "rb").read()); return numpy_helper.to_array(t).astype(np.float64)
a, b = load(sys.argv[1]), load(sys.argv[2])
assert a.shape == b.shape, (a.shape, b.shape)
print("%.6g" % (np.abs(a - b).max() / np.abs(b).max()))
PYEOF
}
# lt X Y: X < Y as numbers
lt() { "$PY" -c "import sys; sys.exit(0 if float(sys.argv[1]) < float(sys.argv[2]) else 1)" "$1" "$2"; }

# 1. f32: base + adapter == merged model; the adapter matters
build base "$FIX"
build merged "$T/merged.onnx"
build lora "$FIX" --lora "$T/peft/adapter_model.safetensors"
e=$(rel lora merged); d=$(rel base merged)
if lt "$e" 1e-4 && lt 0.05 "$d"; then ok; else bad "f32 + adapter vs merged: $e (want < 1e-4); base vs merged $d (want > 0.05)"; fi
if grep -q "LoRA .*adapter_model.safetensors: 8 pairs (rank 8) added in f32, scale 2 (lora_alpha / r" \
     "$T/lora.err"; then ok; else bad "summary line:"; cat "$T/lora.err"; fi

# 2. the ONNX form (node and weight-name targets, lora_scale) is the same computation
build lora_onnx "$FIX" --lora "$T/adapter.onnx"
if [ "$(rel lora_onnx lora)" = "0" ]; then ok; else bad "onnx adapter vs safetensors: $(rel lora_onnx lora)"; fi
# two adapters, one on the lm head whose output is the graph output "logits"
build lora_head "$FIX" --lora "$T/peft/adapter_model.safetensors" --lora "$T/head.onnx"
build merged_head "$T/merged_head.onnx"
e=$(rel lora_head merged_head)
if lt "$e" 1e-4; then ok; else bad "two adapters vs merged: $e"; fi
if "$LOWBIT" compile "$FIX" $D --lora "$T/head.onnx" --emit ir -o "$T/head.lbir" 2>"$T/err" &&
   grep -q '^  return %logits$' "$T/head.lbir" &&
   grep -q '%logits = add(%/MatMul/lora_base, %/MatMul/lora_B)' "$T/head.lbir" &&
   grep -q "scale 1 (no adapter_config.json, lora_scale or --lora-scale: 1)" "$T/err"; then ok; else
  bad "head adapter: output name or default-scale note"; cat "$T/err"; fi
# no adapter_config.json: --lora-scale 2 gives the same, without it the scale is 1
build noconf "$FIX" --lora "$T/noconfig/adapter_model.safetensors" --lora-scale 2
if [ "$(rel noconf lora)" = "0" ]; then ok; else bad "--lora-scale 2 vs adapter_config.json"; fi

# 3. --quant w4 (rtn, g32): the IR shows f32 adapters beside 4-bit base layers; the
# base layers stay fused_matmul-shaped qmatmuls with their bias
build w4 "$FIX" --quant w4 --group-size 32
build w4lora "$FIX" --quant w4 --group-size 32 --lora "$T/peft/adapter_model.safetensors" --print-after=quantize
ir=$T/w4lora.err
if grep -q '%/blocks.0/qkv/Add_output_0 = qmatmul(%/blocks.0/ln1/LayerNormalization_output_0, %"onnx::MatMul_485.q", %blocks.0.qkv.bias)' "$ir" &&
   grep -q 'onnx::MatMul_485.q" = const i8\[256,768\] blob<"onnx::MatMul_485.q"> q<bits=4, axis=1, group=32' "$ir" &&
   grep -q '%/blocks.0/qkv/MatMul/lora_A.weight = const f32\[256,8\]' "$ir" &&
   grep -q '%/blocks.3/fc/MatMul/lora_B = fused_matmul(%/blocks.3/fc/MatMul/lora_A, %/blocks.3/fc/MatMul/lora_B.weight) {act="none", keep_float=1, transB=0} : f32\[1,16,1024\]' "$ir" &&
   [ "$(grep -c 'lora_[AB] = fused_matmul' "$ir")" -eq 16 ] && ! grep -q 'lora_[AB].*qmatmul\|lora.*q<' "$ir" &&
   grep -q "quantized 17 of 41 matmuls to int4 (w4); 24 left in float: 8 with two activation operands, 16 kept float by keep_float=1 (--keep-float, outlier parts, LoRA adapters)" "$ir"; then ok; else bad "w4 + adapter IR dump:"; grep "quantized\|lora_A = " "$ir" | head -5; fi
e_lora=$(rel w4lora merged); e_base=$(rel w4 merged); e_q=$(rel w4 base)
# the adapter adds no error of its own: w4+adapter is as far from merged as w4 is from f32
if lt "$e_lora" "$e_base" && lt "$e_lora" "$(echo "$e_q" | awk '{print 2 * $1}')"; then ok; else
  bad "w4 + adapter vs merged $e_lora, w4 base vs merged $e_base, w4 vs f32 $e_q"; fi
echo "w4 g32 rtn: |w4+lora - merged| $e_lora, |w4 - merged| $e_base, |w4 - f32| $e_q (relative max)"

# 4. on the MLP (fast to compile): --quant auto measures and plans the 3 base layers
# only; awq neither rescales nor searches the adapters; the report lists no adapter
if "$LOWBIT" compile "$T/mlp.onnx" --quant auto --target-bpw 4 --calib "$T/mlp_calib" \
     --lora "$T/mlp_adapter.onnx" --save-plan "$T/plan.json" -o "$T/auto" 2>"$T/err" &&
   grep -q "measured 3 layers" "$T/err" &&
   "$PY" -c 'import json, sys; L = json.load(open(sys.argv[1]))["layers"]
assert [l["node"] for l in L] == ["/fc0/MatMul", "/fc1/MatMul", "/fc2/MatMul"], L' "$T/plan.json"
then ok; else bad "--quant auto with an adapter:"; tail -3 "$T/err"; fi
# lowbit analyze --lora: the same 3 layers, and the plan's measured error is of the adapted model
if "$LOWBIT" analyze "$T/mlp.onnx" --calib "$T/mlp_calib" --lora "$T/mlp_adapter.onnx" --target-bpw 4 \
     --json "$T/an.json" >/dev/null 2>"$T/err" &&
   "$PY" -c 'import json, sys; L = json.load(open(sys.argv[1]))["layers"]
assert [l["node"] for l in L] == ["/fc0/MatMul", "/fc1/MatMul", "/fc2/MatMul"], L' "$T/an.json"
then ok; else bad "analyze --lora:"; tail -3 "$T/err"; fi
if "$LOWBIT" compile "$T/mlp.onnx" --quant w4 --weight-algo awq --calib "$T/mlp_calib" --quant-report "$T/rep.md" \
     --lora "$T/mlp_adapter.onnx" --print-after=awq -o "$T/awq" 2>"$T/err" &&
   grep -q '%/fc0/MatMul/lora_A = fused_matmul(%x, %/fc0/MatMul/lora_A.weight) {act="none", keep_float=1' "$T/err" &&
   grep -q '%/fc1/MatMul/lora_A = fused_matmul(%r0, %/fc1/MatMul/lora_A.weight) {act="none", keep_float=1' "$T/err" &&
   [ "$(grep -c '^| [0-9]' "$T/rep.md")" -eq 3 ] && ! grep -q lora "$T/rep.md"; then ok; else
  bad "awq and --quant-report with an adapter:"; grep "lora_A =\|error" "$T/err" | head -4; cat "$T/rep.md"; fi

# a Gemm (transB=1, torch's 2-D nn.Linear) matched by its weight's name "fc.weight"; its
# output is the graph output
if "$LOWBIT" compile "$T/gemm.onnx" --lora "$T/gemm.safetensors" --lora-scale 0.5 -o "$T/gemm" 2>"$T/gemm.err" &&
   "$T/gemm" "$T/gemm_x.pb" -o "$T/gemm.out" >/dev/null 2>&1 && "$LOWBIT" compile "$T/gemm_merged.onnx" -o "$T/gemm_m" &&
   "$T/gemm_m" "$T/gemm_x.pb" -o "$T/gemm_m.out" >/dev/null 2>&1 && lt "$(rel gemm gemm_m)" 1e-5 &&
   grep -q "1 pair (rank 4) added in f32, scale 0.5 (--lora-scale)" "$T/gemm.err"; then ok; else
  bad "gemm adapter"; cat "$T/gemm.err"; fi

# 5. errors: all at once, named; nothing written
check_err() { # check_err NAME FRAGMENT... -- ARGS: exit 1, every fragment on stderr, no output
  name=$1; shift
  frags=""
  while [ "$1" != "--" ]; do frags="$frags
$1"; shift; done
  shift
  rm -f "$T/out"
  "$LOWBIT" compile "$FIX" $D "$@" -o "$T/out" >/dev/null 2>"$T/err"
  rc=$?
  good=1
  [ "$rc" -eq 1 ] || good=0
  [ -e "$T/out" ] && good=0
  echo "$frags" | while IFS= read -r f; do [ -z "$f" ] || grep -qF -- "$f" "$T/err" || exit 1; done || good=0
  if [ $good -eq 1 ]; then ok; else bad "$name: exit $rc, stderr:"; head -6 "$T/err"; fi
}
check_err "targets matching nothing and a misfit, at once" \
  'key "base_model.model.blocks.0.qkvx.lora_A.weight": module "blocks.0.qkvx" matches no MatMul' \
  'key "base_model.model.blocks.9.fc.lora_A.weight": module "blocks.9.fc" matches no MatMul' \
  'node "/blocks.1/fc/MatMul" (MatMul)' '"base_model.model.blocks.1.fc.lora_B.weight" [768, 8] ([out, r])' \
  'do not fit the layer: 256 inputs, 1024 outputs (weight [256, 1024])' \
  -- --lora "$T/bad/nomatch.safetensors"
check_err "missing half" 'key "base_model.model.blocks.0.qkv.lora_A.weight" has no B half ("base_model.model.blocks.0.qkv.lora_B.weight")' \
  -- --lora "$T/bad/half.safetensors"
check_err "int8 tensor" 'dtype I8 is not supported (F32, F16, BF16)' -- --lora "$T/bad/i8.safetensors"
check_err "truncated" 'data_offsets outside the data' -- --lora "$T/bad/truncated.safetensors"
check_err "offsets" 'data_offsets do not hold the shape' -- --lora "$T/bad/offsets.safetensors"
check_err "onnx: shape and no match" 'node "/blocks.0/fc/MatMul" (MatMul)' '"/blocks.0/fc/MatMul.lora_B" [8, 768] ([r, out])' \
  'key "/blocks.0/nothing/MatMul.lora_A": target "/blocks.0/nothing/MatMul" matches no MatMul' \
  -- --lora "$T/bad/shape.onnx"
check_err "onnx: scale alone, other initializer" '"/blocks.0/fc/MatMul.lora_scale" has no lora_A and lora_B' \
  'initializer "/blocks.0/fc/MatMul.weight" is not a LoRA tensor' -- --lora "$T/bad/scale_only.onnx"
check_err "not a LoRA key (DoRA)" 'key "base_model.model.blocks.0.qkv.lora_magnitude_vector" is not a LoRA tensor' \
  -- --lora "$T/bad/dora.safetensors"
check_err "unknown format" 'adapter_config.json: unknown adapter format' -- --lora "$T/peft/adapter_config.json"
check_err "missing file" 'nothere.safetensors' -- --lora "$T/nothere.safetensors"
"$LOWBIT" compile "$FIX" $D --lora-scale 2 -o "$T/out" 2>"$T/err"
if [ $? -eq 2 ] && grep -q -- "--lora-scale needs --lora" "$T/err"; then ok; else bad "--lora-scale alone"; fi

finish lora
