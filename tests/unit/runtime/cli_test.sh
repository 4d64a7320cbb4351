#!/bin/sh
# CLI contract tests of runtime/main.c, run against a fake model.
# usage: cli_test.sh TENSOR_TOOL WORKDIR MODEL_COMMAND...
# (MODEL_COMMAND may be "qemu-aarch64 ./model"). $LBRT_FAKE_NEEDS optionally
# names a fake model whose CPU features this machine lacks.
set -u
TOOL=$1
WORK=$2
shift 2
FAILS=0
PASSES=0

rm -rf "$WORK"
mkdir -p "$WORK" || exit 1
cd "$WORK" || exit 1

fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
pass() { PASSES=$((PASSES + 1)); }

# run NAME EXPECT_STATUS(ok|err) ARGS...: runs the model, keeps stdout/stderr.
run() {
  name=$1 want=$2
  shift 2
  "$@" >"$name.out" 2>"$name.err"
  st=$?
  if [ "$want" = ok ]; then
    if [ $st -eq 0 ]; then pass; else fail "$name: exit $st: $(cat "$name.err")"; fi
  else
    if [ $st -ge 1 ] && [ $st -le 125 ]; then pass; else fail "$name: exit $st, want 1..125: $(cat "$name.err")"; fi
  fi
}
expect_err() { # NAME PATTERN: stderr of NAME contains PATTERN (grep -F)
  if grep -qF -- "$2" "$1.err"; then pass; else fail "$1: stderr lacks '$2': $(cat "$1.err")"; fi
}
expect_dump() { # FILE EXPECTED
  got=$("$TOOL" dump "$1" 2>&1)
  if [ "$got" = "$2" ]; then pass; else fail "dump $1: got '$got', want '$2'"; fi
}
expect_empty_dir() {
  if [ ! -d "$1" ] || [ -z "$(ls -A "$1")" ]; then pass; else fail "$1 not empty: $(ls -A "$1")"; fi
}

"$TOOL" make x.pb pb f32 2,3 1 2 3 4 5 6.5 || exit 1
"$TOOL" make x.npy npy f32 2,3 1 2 3 4 5 6.5 || exit 1
"$TOOL" make b.pb pb i32 3 10 -20 30 || exit 1
"$TOOL" make b.npy npy i32 3 10 -20 30 || exit 1
"$TOOL" make x_t.npy npy f32 3,2 1 2 3 4 5 6 || exit 1
"$TOOL" make x_i.pb pb i32 2,3 1 2 3 4 5 6 || exit 1
"$TOOL" make x_fail.pb pb f32 2,3 999 2 3 4 5 6 || exit 1
printf 'this is not a tensor at all\n' >garbage.pb
printf '\223NUMPY\001\000\377\377{' >trunc.npy

Y='f32[2,3] 2 4 6 8 10 13'
S='i64[] 20'

run help ok "$@" --help
grep -q -- "--bench" help.out && pass || fail "--help lacks --bench"
run info ok "$@" --info
for w in "name: fake\"model" "0 'x': f32[2,3]" "1 'b': i32[3]" "0 'y': f32[2,3]" "1 's': i64[]" \
    "activations: 200" "target: x86_64-unknown-linux-gnu" "cpu: generic"; do
  grep -qF -- "$w" info.out && pass || fail "--info lacks '$w': $(cat info.out)"
done

run pb ok "$@" x.pb b.pb -o out_pb --quiet
expect_dump out_pb/output_0.pb "$Y"
expect_dump out_pb/output_1.pb "$S"
[ ! -s pb.err ] && pass || fail "--quiet printed: $(cat pb.err)"
[ "$(ls -A out_pb | tr '\n' ' ')" = "output_0.pb output_1.pb " ] && pass || fail "out_pb: $(ls -A out_pb)"

run npy ok "$@" x.npy b.npy -o out_npy/nested/dir
expect_dump out_npy/nested/dir/output_0.npy "$Y"
expect_dump out_npy/nested/dir/output_1.npy "$S"
head -c 6 out_npy/nested/dir/output_0.npy | od -c | grep -q 'N   U   M   P   Y' && pass || fail "npy magic"

run mixed ok "$@" x.npy b.pb -o out_mixed/
[ -f out_mixed/output_0.pb ] && pass || fail "mixed inputs should default to pb: $(ls out_mixed)"
run fmt ok "$@" x.pb b.pb -o out_fmt --format npy
expect_dump out_fmt/output_0.npy "$Y"
run fmt2 ok "$@" x.npy b.npy -o out_fmt2 --format=pb --threads=1
expect_dump out_fmt2/output_0.pb "$Y"
run thr ok "$@" x.pb b.pb -o out_thr --threads 2
expect_dump out_thr/output_0.pb "$Y"
run nowrite ok "$@" x.pb b.pb
run stdin ok "$@" x.npy - -o out_stdin <b.pb
expect_dump out_stdin/output_1.pb "$S"
[ -z "$(ls -d out_nowrite 2>/dev/null)" ] && pass || fail "wrote without -o"

run bench ok "$@" x.pb b.pb --bench 5 --warmup 1 -o out_bench
[ "$(wc -l <bench.out)" -eq 1 ] && pass || fail "bench: want one stdout line: $(cat bench.out)"
grep -Eq '^\{"model":"fake\\"model","iterations":5,"median_ms":[0-9.]+,"min_ms":[0-9.]+,"mean_ms":[0-9.]+,"threads":[0-9]+\}$' bench.out \
  && pass || fail "bench JSON: $(cat bench.out)"
expect_dump out_bench/output_0.pb "$Y"
run bench1 ok "$@" x.pb b.pb --bench 1 --warmup 0 --threads 1
grep -q '"iterations":1,.*"threads":1}' bench1.out && pass || fail "bench1: $(cat bench1.out)"

# Errors: status 1..125, a message naming the input, and no output files.
run shape err "$@" x_t.npy b.pb -o out_e1
expect_err shape "input 0 'x' (x_t.npy): expected f32[2,3], got f32[3,2]"
expect_empty_dir out_e1
run dtype err "$@" x_i.pb b.pb -o out_e2
expect_err dtype "input 0 'x' (x_i.pb): expected f32[2,3], got i32[2,3]"
expect_empty_dir out_e2
run missing err "$@" x.pb nope.pb -o out_e3
expect_err missing "input 1 'b': nope.pb: No such file"
expect_empty_dir out_e3
run garbage err "$@" x.pb garbage.pb -o out_e4
expect_err garbage "input 1 'b': garbage.pb:"
expect_empty_dir out_e4
run trunc err "$@" trunc.npy b.pb -o out_e5
expect_err trunc "input 0 'x': trunc.npy:"
run dir err "$@" x.pb . -o out_e6
expect_err dir "is a directory"
run few err "$@" x.pb -o out_e7
expect_err few "expected 2 input files ('x', 'b'), got 1"
expect_empty_dir out_e7
run many err "$@" x.pb b.pb b.pb
expect_err many "got 3"
run none err "$@"
run badopt err "$@" x.pb b.pb --frobnicate
expect_err badopt "unknown option '--frobnicate'"
run badthr err "$@" x.pb b.pb --threads 0
run badthr2 err "$@" x.pb b.pb --threads 3x
run badfmt err "$@" x.pb b.pb --format json -o out_e8
run badbench err "$@" x.pb b.pb --bench -1
run noval err "$@" x.pb b.pb -o
run runfail err "$@" x_fail.pb b.pb -o out_e9
expect_err runfail "model run failed with status 7"
expect_empty_dir out_e9
touch afile
run outfile err "$@" x.pb b.pb -o afile
expect_err outfile "not a directory"
# output_1.pb taken by a directory: the rename fails; no temp file is left.
mkdir -p out_busy/output_1.pb
run busy err "$@" x.pb b.pb -o out_busy
[ -z "$(ls -A out_busy | grep '^\.')" ] && pass || fail "temp files left: $(ls -A out_busy)"

if [ -n "${LBRT_FAKE_NEEDS:-}" ]; then
  run cpu err "$LBRT_FAKE_NEEDS" x.pb b.pb -o out_cpu
  expect_err cpu "error: this executable was built for CPU 'sapphirerapids-ish' and needs "
  expect_err cpu "which this CPU lacks; recompile with --cpu generic or a matching --cpu"
  expect_empty_dir out_cpu
  run cpuinfo ok "$LBRT_FAKE_NEEDS" --info
  grep -q "this cpu: NOT supported" cpuinfo.out && pass || fail "--info: $(cat cpuinfo.out)"
fi

echo "cli_test: $PASSES passed, $FAILS failed"
[ $FAILS -eq 0 ]
