# lib.sh: what the cli tests share, sourced after they read their arguments:
#   . "$(dirname "$0")/lib.sh"
# A scratch folder $T removed on exit; the pass/fail counters with ok and bad;
# checks of a command's exit status and stderr; the aarch64 run under qemu;
# finish, the last line of a test.
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
run_ok() { # run_ok NAME CMD...
  name=$1; shift
  if "$@" >"$T/out" 2>"$T/err"; then ok; else bad "$name: exit $?"; head -5 "$T/err"; fi
}
check_rc() { # check_rc NAME RC STDERR_FRAGMENT CMD... : exit RC and the fragment on stderr
  name=$1; want=$2; frag=$3; shift 3
  "$@" >"$T/out" 2>"$T/err"
  rc=$?
  if [ "$rc" -eq "$want" ] && grep -q -- "$frag" "$T/err"; then ok; else
    bad "$name: exit $rc, want $want and '$frag', stderr:"; head -5 "$T/err"
  fi
}
check_usage() { # check_usage NAME STDERR_FRAGMENT CMD... : exit 2 and the fragment on stderr
  name=$1; frag=$2; shift 2
  check_rc "$name" 2 "$frag" "$@"
}

QEMU=$(command -v qemu-aarch64 || command -v qemu-aarch64-static || true)
# run_aarch64 LABEL CPU EXE OUTDIR INPUT...: runs an aarch64 build under qemu as
# CPU into OUTDIR (a failed run ends the test); without qemu it says that LABEL
# was only compiled and returns 1, so that the caller skips checking OUTDIR
run_aarch64() {
  label=$1; cpu=$2; exe=$3; outdir=$4; shift 4
  if [ -z "$QEMU" ]; then echo "qemu-aarch64 not found: $label only compiled"; return 1; fi
  "$QEMU" -cpu "$cpu" "$exe" "$@" -o "$outdir" || { echo "FAIL: $label run"; exit 1; }
}

finish() { # finish NAME: the tally; succeeds when nothing failed
  echo "$1: $pass passed, $fail failed"
  [ "$fail" -eq 0 ]
}
