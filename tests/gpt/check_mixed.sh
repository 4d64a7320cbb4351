#!/bin/sh
# Mixed precision on the byte-level GPT fixture (issue 5, acceptance 1-3),
# held-out perplexity, GPTQ everywhere, 32 training-text calibration windows:
#   1. --quant auto --target-bpw 3.5 beats uniform w3 g32 (measured 4.4640 vs
#      4.4758), and the executable is within the budget: 3.26M parameters at
#      3.5 bits plus 1.5 MB of code and runtime (measured 2.86 MB);
#   2. --target-bpw 4.25 beats uniform w4 g128 (measured 4.4554 vs 4.4643);
#   3. the plan written by (1) compiles to the same executable, byte for byte.
# Usage: check_mixed.sh LOWBIT   (about 3 minutes on 2 cores)
set -eu
LOWBIT=$1
. "$(dirname "$0")/lib.sh"

$PY "$ROOT/tests/gpt/make_calib.py" "$T/calib" --samples 32 >/dev/null
G="--weight-algo gptq --calib $T/calib"
w3=$(build w3g32 --quant w3 --group-size 32 $G)
a35=$(build auto35 --quant auto --target-bpw 3.5 --save-plan "$T/plan35.json" $G)
verdict "$(lt "$a35" "$w3")" "--target-bpw 3.5: $a35 < uniform w3 g32 GPTQ $w3 ($(sed -n 's/^lowbit: mixed precision: //p' "$T/auto35.err"))"
size=$(stat -c %s "$T/auto35")
limit=$($PY -c "print(int(3.26e6 * 3.5 / 8 + 1.5e6))")
verdict "$(le "$size" "$limit")" "--target-bpw 3.5 executable: $size bytes <= $limit"

w4=$(build w4g128 --quant w4 --group-size 128 $G)
a425=$(build auto425 --quant auto --target-bpw 4.25 $G)
verdict "$(lt "$a425" "$w4")" "--target-bpw 4.25: $a425 < uniform w4 g128 GPTQ $w4 ($(sed -n 's/^lowbit: mixed precision: //p' "$T/auto425.err"))"

# same output file name: the model's symbols are named after it
mkdir "$T/again"
"$LOWBIT" compile "$M" --dim batch=1 --dim seq=128 --quant auto --quant-plan "$T/plan35.json" $G \
  -o "$T/again/auto35" 2>"$T/again.err" || { cat "$T/again.err" >&2; exit 1; }
if cmp -s "$T/auto35" "$T/again/auto35"; then r=1; else r=0; fi
verdict "$r" "--quant-plan of the 3.5-bit plan gives the same executable"
[ "$fails" -eq 0 ]
