#!/bin/sh
# Runs every libFuzzer target for a while on freshly generated seeds:
#   tests/fuzz/run_fuzz.sh BIN_DIR SECONDS [make_seeds.py options...]
# e.g. tests/fuzz/run_fuzz.sh build-fuzz/bin 20 --node-tests build/onnx-node-tests \
#        --lowbit build/bin/lowbit
# BIN_DIR holds fuzz_* (cmake -DLOWBIT_FUZZ=ON, see docs/security.md). Seeds come
# from tests/fuzz/make_seeds.py and are fuzzed in a temporary copy, so nothing in
# the repo changes. Runs nproc targets at a time. Fails if any target reports a crash, leak, timeout or OOM; the offending
# inputs are copied to BIN_DIR/../fuzz-artifacts/ (reproduce: BIN_DIR/fuzz_X FILE).
set -u
BIN=$1
SECS=$2
shift 2
HERE=$(cd "$(dirname "$0")" && pwd)
TARGETS="onnx_load ir_parse tensor_pb tensor_npy safetensors"
PAR=$(nproc)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/lowbit-fuzz.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
ARTS=$(cd "$BIN/.." && pwd)/fuzz-artifacts

/usr/bin/python3 "$HERE/make_seeds.py" "$WORK/seeds" "$@" || exit 1

# Not inherited from the caller: libFuzzer wants its own handling of ASan reports.
export ASAN_OPTIONS=detect_leaks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

run_one() { # run_one TARGET: one target, its log in $WORK/TARGET.log, status in .rc
  t=$1
  dict=
  case $t in
    ir_parse) dict=-dict=$HERE/lbir.dict ;;
    onnx_load | tensor_pb) dict=-dict=$HERE/onnx.dict ;;
  esac
  mkdir -p "$WORK/art-$t"
  cp -r "$WORK/seeds/fuzz_$t" "$WORK/corpus-$t"
  "$BIN/fuzz_$t" -max_total_time="$SECS" -rss_limit_mb=4096 -timeout=10 $dict \
    -print_final_stats=1 -artifact_prefix="$WORK/art-$t/" "$WORK/corpus-$t" \
    >"$WORK/$t.log" 2>&1
  echo $? >"$WORK/$t.rc"
}

set -- $TARGETS
while [ $# -gt 0 ]; do
  pids=
  n=0
  while [ $# -gt 0 ] && [ $n -lt "$PAR" ]; do
    run_one "$1" &
    pids="$pids $!"
    n=$((n + 1))
    shift
  done
  for p in $pids; do wait "$p"; done
done

bad=0
for t in $TARGETS; do
  rc=$(cat "$WORK/$t.rc" 2>/dev/null || echo 1)
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$WORK/$t.log")
  cov=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$WORK/$t.log" | sed -n 's/.* cov: \([0-9]*\) ft: \([0-9]*\).*/cov \1, ft \2/p')
  if [ "$rc" -ne 0 ] || grep -qE '^==[0-9]+==ERROR|^SUMMARY: |ERROR: libFuzzer|runtime error:' "$WORK/$t.log"; then
    bad=1
    echo "fuzz_$t: FAILED (exit $rc)"
    grep -E 'ERROR|SUMMARY|runtime error|fuzz property|^ +#[0-9]+ ' "$WORK/$t.log" | head -n 40
    mkdir -p "$ARTS"
    cp "$WORK/art-$t"/* "$ARTS/" 2>/dev/null && echo "fuzz_$t: inputs saved in $ARTS/"
  else
    echo "fuzz_$t: ok, ${runs:-?} runs in ${SECS} s, ${cov:-?}, corpus $(ls "$WORK/corpus-$t" | wc -l) files"
  fi
done
exit $bad
