#!/bin/sh
# Quick start, step 2: install what is missing, build, and run every test:
#   unit (cmocka) and FileCheck IR tests, ONNX backend conformance, end-to-end
#   models on x86-64 and on aarch64 under qemu, then the unit and IR tests
#   again under AddressSanitizer + UndefinedBehaviorSanitizer, then a short
#   libFuzzer run of the parsers of untrusted input.
# Prints one closing line: "tests: N passed, N failed".
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
JOBS=$(nproc)
PY=/usr/bin/python3
sh scripts/deps.sh --test || exit 1

passed=0
failed=0
failures=""
step() { # step NAME COMMAND...: runs a test step, counts it
  name=$1; shift
  echo "== $name =="
  start=$(date +%s)
  if "$@"; then
    passed=$((passed + 1)); echo "-- $name: ok ($(( $(date +%s) - start )) s)"
  else
    failed=$((failed + 1)); failures="$failures $name"
    echo "-- $name: FAILED ($(( $(date +%s) - start )) s)"
  fi
}

build() { # build DIR [cmake args...]
  dir=$1; shift
  cmake -S . -B "$dir" "$@" >"$dir.cmake.log" 2>&1 || { cat "$dir.cmake.log"; return 1; }
  cmake --build "$dir" -j"$JOBS" >"$dir.build.log" 2>&1 || { tail -n 60 "$dir.build.log"; return 1; }
}

mkdir -p build
step build build build -DCMAKE_BUILD_TYPE=Release
LOWBIT=$ROOT/build/bin/lowbit

step unit+lit ctest --test-dir build -j"$JOBS" --output-on-failure
step conformance-data $PY tests/conformance/gen_data.py build/onnx-node-tests
step conformance $PY tests/conformance/run.py --lowbit "$LOWBIT" --data build/onnx-node-tests \
  --expected tests/conformance/expected_pass.txt --report build/conformance.md --jobs "$JOBS"
step e2e-x86_64 $PY tests/e2e/run.py --lowbit "$LOWBIT" --models tests/fixtures/e2e
step e2e-aarch64-qemu $PY tests/e2e/run.py --lowbit "$LOWBIT" --models tests/fixtures/e2e \
  --target aarch64-linux-gnu --runner qemu-aarch64
step gpt-fixture sh tests/gpt/check_fixture.sh "$LOWBIT"
step gpt-quantized-imports sh tests/gpt/check_quantized_imports.sh "$LOWBIT"
# onnxruntime MatMulNBits (4-bit RTN, blocks 32/128) versions: perplexity equals onnxruntime's.
step gpt-nbits sh tests/gpt/check_nbits.sh "$LOWBIT"
# INT8 accuracy on the GPT fixture (w8, w8a8-dynamic, w8a8 against fp32) and on its
# outlier variant (plain w8a8 breaks, --smoothquant and --outliers recover).
step gpt-quant sh tests/gpt/check_quant.sh "$LOWBIT"
step gpt-outliers sh tests/gpt/check_outlier_variant.sh "$LOWBIT"
# Low-bit weights (issue 4): w4/w3 RTN and GPTQ perplexity budgets on the GPT fixture.
step gpt-lowbit sh tests/gpt/check_lowbit.sh "$LOWBIT"
# Mixed precision (issue 5): --target-bpw 3.5 / 4.25 against uniform GPTQ, size, plan round trip
step gpt-mixed sh tests/gpt/check_mixed.sh "$LOWBIT"
# FP8 weights (issue 4): fp8 / fp8-e5m2 perplexity budgets on the GPT fixture.
step gpt-fp8 sh tests/gpt/check_fp8.sh "$LOWBIT"
# F16 weights (issue 5's fp16 candidate): perplexity within 0.001 of fp32, about half the size.
step gpt-f16 sh tests/gpt/check_f16.sh "$LOWBIT"
# Hostile models and input files (tests/hostile): every bad case fails cleanly,
# controls compile and compute the right outputs. The corpus is generated here.
step hostile-corpus $PY tests/hostile/make_corpus.py build/hostile-corpus
step hostile $PY tests/hostile/run.py --lowbit "$LOWBIT" --corpus build/hostile-corpus --jobs "$JOBS"

mkdir -p build-asan
step build-asan build build-asan -DCMAKE_BUILD_TYPE=Debug -DLOWBIT_SANITIZE=ON
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
step unit+lit-asan ctest --test-dir build-asan -j"$JOBS" --output-on-failure
# The compiler itself under the sanitizers on every conformance case and model.
step conformance-asan $PY tests/conformance/run.py --lowbit "$ROOT/build-asan/bin/lowbit" \
  --data build/onnx-node-tests --expected tests/conformance/expected_pass.txt --jobs "$JOBS"
step e2e-asan $PY tests/e2e/run.py --lowbit "$ROOT/build-asan/bin/lowbit" --models tests/fixtures/e2e
step hostile-asan $PY tests/hostile/run.py --lowbit "$ROOT/build-asan/bin/lowbit" --corpus build/hostile-corpus \
  --jobs "$JOBS" --timeout-scale 4

# libFuzzer targets for the parsers of untrusted input (ONNX, IR text, .pb, .npy):
# clang-19 build, then 20 s per target on seeds made from the repo's inputs
# (docs/security.md, "Fuzzing"). Any crash, leak, timeout or OOM fails the step.
mkdir -p build-fuzz
step build-fuzz build build-fuzz -DCMAKE_C_COMPILER=clang-19 -DLOWBIT_FUZZ=ON
step fuzz sh tests/fuzz/run_fuzz.sh build-fuzz/bin 20 --node-tests build/onnx-node-tests \
  --lowbit "$LOWBIT"

echo
[ -n "$failures" ] && echo "failed steps:$failures"
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
