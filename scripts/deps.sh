#!/bin/sh
# Installs the Debian 12 packages lowbit needs to build and test, if missing.
# Run by setup.sh and test.sh; safe to run again (installs only what lacks).
# With --test also what only the tests use: Chromium (the headless-browser check
# of `lowbit analyze --html`) and Graphviz (`--dump-dot` output is laid out by dot).
set -eu
LOWBIT_PACKAGES="cmake make gcc libc6-dev pkg-config
  llvm-19-dev llvm-19-tools
  protobuf-c-compiler libprotobuf-c-dev libonnx-dev
  libcmocka-dev liblapacke-dev libopenblas-dev
  clang-19 libclang-rt-19-dev
  python3 python3-onnx python3-numpy
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user"
[ "${1:-}" = "--test" ] && LOWBIT_PACKAGES="$LOWBIT_PACKAGES chromium graphviz"

missing=""
for p in $LOWBIT_PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "lowbit: installing:$missing"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
