#!/bin/sh
# Quick start, step 1: install what is missing, build lowbit, compile the
# example model and run it.
set -eu
cd "$(dirname "$0")/.."
sh scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
echo
echo "== compiling examples/mlp/model.onnx =="
./build/bin/lowbit compile examples/mlp/model.onnx --dim batch=2 -o build/example-mlp
echo "== running it =="
./build/example-mlp examples/mlp/input_0.pb -o build/example-out/
./build/example-mlp --info
echo "== comparing its output with numpy's (examples/mlp/output_0.pb) =="
/usr/bin/python3 tests/tools/compare.py build/example-out/output_0.pb examples/mlp/output_0.pb
echo "lowbit is built: build/bin/lowbit, build/bin/lowbit-opt"
