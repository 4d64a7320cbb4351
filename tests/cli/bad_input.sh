#!/bin/sh
# CLI contract on bad input: `lowbit compile` exits 1..125 with "error" on
# stderr, never crashes, and leaves no output file; a compiled model given bad
# input files does the same. Usage: bad_input.sh LOWBIT_BIN REPO_ROOT
set -u
LOWBIT=$1
ROOT=$2
. "$(dirname "$0")/lib.sh"
check() { # check NAME EXPECTED_STDERR_FRAGMENT CMD... : expects exit 1..125
  name=$1; frag=$2; shift 2
  "$@" >"$T/out" 2>"$T/err"
  rc=$?
  if [ "$rc" -ge 1 ] && [ "$rc" -le 125 ] && grep -q -- "$frag" "$T/err"; then ok; else
    bad "$name: exit $rc, stderr:"; head -5 "$T/err"
  fi
}
no_output() { # no_output NAME PATH
  if [ -e "$2" ]; then bad "$1: left $2 behind"; else ok; fi
}

MLP=$ROOT/examples/mlp/model.onnx
# Models that are not valid ONNX.
head -c 1000 /dev/urandom >"$T/random.onnx"
check random-bytes "error" "$LOWBIT" compile "$T/random.onnx" -o "$T/o1"
no_output random-bytes "$T/o1"
head -c 3000 "$MLP" >"$T/trunc.onnx"
check truncated "error" "$LOWBIT" compile "$T/trunc.onnx" -o "$T/o2"
no_output truncated "$T/o2"
: >"$T/empty.onnx"
check empty "error" "$LOWBIT" compile "$T/empty.onnx" -o "$T/o3"
check missing-file "error" "$LOWBIT" compile "$T/nope.onnx" -o "$T/o4"
no_output missing-file "$T/o4"
# Unbound symbolic dim is named.
check unbound-dim "batch" "$LOWBIT" compile "$MLP" -o "$T/o5"
no_output unbound-dim "$T/o5"
# Several unsupported ops are listed at once.
/usr/bin/python3 - "$T/unsup.onnx" <<'PY'
import sys
from onnx import helper, TensorProto, save
n = [helper.make_node("NonZero", ["x"], ["a"], name="nz"),
     helper.make_node("Relu", ["x"], ["b"], name="ok"),
     helper.make_node("Foo", ["b"], ["c"], name="foo1", domain="com.acme"),
     helper.make_node("Hardmax", ["x"], ["d"], name="hm")]
g = helper.make_graph(n, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                      [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in "acd"])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.acme", 1)])
save(m, sys.argv[1])
PY
check unsupported-all "3 unsupported ops" "$LOWBIT" compile "$T/unsup.onnx" -o "$T/o6"
for n in '"nz" (NonZero)' '"foo1" (Foo' '"hm" (Hardmax)'; do
  if grep -q "$n" "$T/err"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL unsupported-all: $n not named"; fi
done
no_output unsupported-all "$T/o6"
# The input model is never overwritten.
cp "$MLP" "$T/self.onnx"
check self-overwrite "error" "$LOWBIT" compile "$T/self.onnx" --dim batch=1 -o "$T/self.onnx"
if cmp -s "$MLP" "$T/self.onnx"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL self-overwrite: model changed"; fi
# Bad IR text.
printf 'graph @g(%%x: f32[2]) -> (f32[2]) {\n  %%y = nosuchop(%%x) : f32[2]\n  return %%y\n}\n' >"$T/bad.lbir"
check bad-ir "unknown op" "$LOWBIT" compile "$T/bad.lbir" -o "$T/o7"
no_output bad-ir "$T/o7"
check usage "error" "$LOWBIT" compile "$MLP"

# A compiled model given bad input files.
if "$LOWBIT" compile "$MLP" --dim batch=2 -o "$T/mlp" 2>"$T/err"; then
  IN=$ROOT/examples/mlp/input_0.pb
  check run-missing "input" "$T/mlp" "$T/none.pb" -o "$T/r1"
  head -c 20 "$IN" >"$T/short.pb"
  check run-truncated "error" "$T/mlp" "$T/short.pb" -o "$T/r2"
  head -c 200 /dev/urandom >"$T/garbage.pb"
  check run-garbage "error" "$T/mlp" "$T/garbage.pb" -o "$T/r3"
  check run-count "error" "$T/mlp" "$IN" "$IN" -o "$T/r4"
  printf '\223NUMPY\001\000\166\000{'"'"'descr'"'"': '"'"'<f4'"'"', '"'"'fortran_order'"'"': False, '"'"'shape'"'"': (99999999999, 99999999), }' >"$T/huge.npy"
  check run-huge-npy "error" "$T/mlp" "$T/huge.npy" -o "$T/r5"
  /usr/bin/python3 -c "import numpy as np; np.save('$T/wrongshape.npy', np.zeros((3,16), np.float32)); np.save('$T/wrongtype.npy', np.zeros((2,16), np.float64))"
  check run-shape "expected f32\[2,16\]" "$T/mlp" "$T/wrongshape.npy" -o "$T/r6"
  check run-dtype "expected f32\[2,16\]" "$T/mlp" "$T/wrongtype.npy" -o "$T/r7"
  for r in r1 r2 r3 r4 r5 r6 r7; do
    [ -z "$(ls -A "$T/$r" 2>/dev/null)" ] && pass=$((pass + 1)) || { fail=$((fail + 1)); echo "FAIL $r: left output"; }
  done
else
  fail=$((fail + 1)); echo "FAIL compiling the example MLP:"; cat "$T/err"
fi
# --cpu: unknown names are refused; a build needing a feature this CPU lacks
# stops at start with a message naming it (checked when the host lacks avxvnni).
check unknown-cpu "unknown CPU 'nosuchcpu'" "$LOWBIT" compile "$MLP" --dim batch=2 --cpu nosuchcpu -o "$T/o8"
no_output unknown-cpu "$T/o8"
if "$LOWBIT" compile "$MLP" --dim batch=2 --features +avxvnni -o "$T/vnni" 2>"$T/err"; then
  if "$T/vnni" --info | grep -q "this cpu: NOT supported"; then
    check cpu-features "needs avxvnni" "$T/vnni" "$ROOT/examples/mlp/input_0.pb" -o "$T/r8"
  else
    echo "skip cpu-features: this CPU has avxvnni"
  fi
else
  fail=$((fail + 1)); echo "FAIL compiling with --features:"; cat "$T/err"
fi
finish bad-input
