#!/bin/sh
# lowbit compile --dump-dot FILE (issue 5, "seeing it"): the final graph of a
# real model as Graphviz, rendered by Graphviz's dot. The byte-level GPT
# fixture with --quant w4: dot -Tsvg parses the dump, the SVG shows the 17
# 4-bit layers with their precision and the legend, the attention matmuls stay
# unfilled; examples/mlp with --quant f16 and in float; a path that cannot be
# written fails the compile without leaving a file. Needs Graphviz
# (/usr/bin/dot, scripts/deps.sh --test): without it the test fails.
# Usage: dump_dot.sh LOWBIT_BIN REPO_ROOT
set -u
LOWBIT=$1
ROOT=$2
DOT=$(command -v dot || true)
if [ -z "$DOT" ]; then
  echo "FAIL: Graphviz's dot is not installed (scripts/deps.sh --test installs it: apt-get install graphviz)"
  exit 1
fi
. "$(dirname "$0")/lib.sh"

FIX=$ROOT/tests/fixtures/gpt_byte_4l
"$LOWBIT" compile "$FIX/model.onnx" --dim batch=1 --dim seq=128 --quant w4 --dump-dot "$T/gpt.dot" -o "$T/gpt" \
  2>"$T/err" || { cat "$T/err"; bad "compile with --dump-dot"; exit 1; }
[ -x "$T/gpt" ] || bad "no executable"
"$DOT" -Tsvg "$T/gpt.dot" -o "$T/gpt.svg" 2>"$T/dot.err" || { cat "$T/dot.err"; bad "dot -Tsvg does not parse the dump"; }
[ -s "$T/dot.err" ] && { echo "dot warnings:"; cat "$T/dot.err"; bad "dot warned"; }
n=$(grep -c '<title>n[0-9]*</title>' "$T/gpt.svg")
[ "$n" -gt 50 ] || bad "the SVG has $n op boxes"
w4=$(grep -c '>w4 g32<' "$T/gpt.svg")
[ "$w4" -eq 17 ] || bad "the SVG names 'w4 g32' $w4 times, want 17 (the quantized layers)"
grep -q '>4&#45;bit: 17 layers<' "$T/gpt.svg" || grep -q '>4-bit: 17 layers<' "$T/gpt.svg" || bad "no legend entry '4-bit: 17 layers'"
grep -q 'fill="#fd8d3c"' "$T/gpt.svg" || bad "no box in the 4-bit colour"
grep -q '>f32: ' "$T/gpt.svg" && bad "the legend lists f32, which no layer has"
# the attention matmuls (two activations) have no weight: white boxes labelled "matmul"
att=$(grep -c '>matmul<' "$T/gpt.svg")
[ "$att" -eq 8 ] || bad "$att attention matmuls in the SVG, want 8"

# a small model in f16 and in float (the dump is the graph codegen gets: after plan-memory)
MLP=$ROOT/examples/mlp/model.onnx
"$LOWBIT" compile "$MLP" --dim batch=2 --quant f16 --dump-dot "$T/mlp16.dot" --emit ir -o "$T/mlp16.lbir" 2>/dev/null ||
  bad "compile mlp --quant f16"
"$DOT" -Tsvg "$T/mlp16.dot" -o "$T/mlp16.svg" || bad "dot on the f16 dump"
grep -q '>f16<' "$T/mlp16.svg" && grep -q '>f16: [0-9]* layers*<' "$T/mlp16.svg" || bad "no f16 layers in the f16 dump"
"$LOWBIT" compile "$MLP" --dim batch=2 --dump-dot "$T/mlp.dot" -o "$T/mlp" || bad "compile mlp in float"
"$DOT" -Tsvg "$T/mlp.dot" -o "$T/mlp.svg" || bad "dot on the float dump"
grep -q '>f32: [0-9]* layers*<' "$T/mlp.svg" || bad "no f32 layers in the float dump"
# the same model gives the same dump
"$LOWBIT" compile "$MLP" --dim batch=2 --dump-dot "$T/mlp2.dot" -o "$T/mlp2" && cmp -s "$T/mlp.dot" "$T/mlp2.dot" ||
  bad "two dumps of the same model differ"

# an unwritable path: exit 1 naming it, no executable, no stray temporary file
"$LOWBIT" compile "$MLP" --dim batch=2 --dump-dot "$T/no/such/dir/g.dot" -o "$T/never" 2>"$T/err"
rc=$?
[ $rc -eq 1 ] && grep -q "cannot write '$T/no/such/dir/g.dot'" "$T/err" || { cat "$T/err"; bad "unwritable --dump-dot: exit $rc"; }
[ -e "$T/never" ] && bad "an executable was written although the dump failed"
ls "$T" | grep -q '\.tmp\.' && bad "a temporary file was left"
"$LOWBIT" compile --help 2>&1 | grep -q -- "--dump-dot FILE" || "$LOWBIT" --help 2>&1 | grep -q -- "--dump-dot FILE" ||
  bad "--dump-dot is not in the help"
[ $fail -eq 0 ] && echo "dump_dot: all ok"
[ "$fail" -eq 0 ]
