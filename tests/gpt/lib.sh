# Shared by the tests/gpt/check_*.sh accuracy checks (sourced after LOWBIT is
# set): the fixture, a scratch folder removed on exit, and helpers to build an
# executable and measure its held-out perplexity.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
FIX=$ROOT/tests/fixtures/gpt_byte_4l
M=$FIX/model.onnx
PY=/usr/bin/python3
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
REF=$($PY -c "import json,sys; print(json.load(open(sys.argv[1]))['perplexity'])" "$FIX/ort_reference.json")
fails=0

ppl() { # ppl EXE -> the perplexity of EXE on the held-out text
  $PY "$ROOT/tests/gpt/perplexity.py" --model "$M" --text "$FIX/heldout.txt" --exe "$1" |
    sed -n 's/^perplexity lowbit: //p'
}
build() { # build NAME OPTIONS... -> the perplexity of the build ($T/NAME)
  n=$1; shift
  "$LOWBIT" compile "$M" --dim batch=1 --dim seq=128 "$@" -o "$T/$n" 2>"$T/$n.err" || { cat "$T/$n.err" >&2; exit 1; }
  ppl "$T/$n"
}
verdict() { # verdict OK MESSAGE
  if [ "$1" = 1 ]; then echo "ok   $2"; else echo "FAIL $2"; fails=$((fails + 1)); fi
}
le() { $PY -c "import sys; print(1 if float(sys.argv[1]) <= float(sys.argv[2]) else 0)" "$1" "$2"; }
lt() { $PY -c "import sys; print(1 if float(sys.argv[1]) < float(sys.argv[2]) else 0)" "$1" "$2"; }
delta() { $PY -c "import sys; print('%.6f' % (float(sys.argv[1]) - float(sys.argv[2])))" "$1" "$REF"; }
