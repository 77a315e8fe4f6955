#!/bin/sh
# The `fuzz` suite (tests/fuzz/README.md): build both targets, replay the
# fixed regressions, then fuzz each target for a fixed time.
#   run_fuzz.sh OUT_DIR [TARGET...]
# Environment: FUZZ_SECONDS_SHADOW / FUZZ_SECONDS_MISUSE (default 30 / 20),
# FUZZ_RUNS (default 2000000: the -runs cap), FUZZ_SRC (a tree to build
# from instead of this one).  Fails on any crash, model mismatch, leak or
# timeout libFuzzer reports; exit 77 (skip) without clang-14/libFuzzer.
set -u
here=$(cd "$(dirname "$0")" && pwd)
out=${1:?usage: run_fuzz.sh OUT_DIR [TARGET...]}
shift
targets=${*:-shadow misuse}
mkdir -p "$out"
out=$(cd "$out" && pwd)

if [ -n "${FUZZ_SRC:-}" ]; then
  nice -n 10 "$here/build.sh" -s "$FUZZ_SRC" "$out" > "$out/build.log" 2>&1
else
  nice -n 10 "$here/build.sh" "$out" > "$out/build.log" 2>&1
fi
rc=$?
if [ $rc -ne 0 ]; then
  tail -n 40 "$out/build.log"
  [ $rc -eq 77 ] && exit 77
  echo "fuzz: build failed"
  exit 1
fi

# Every bug the fuzzer found so far is fixed (regressions/*-fixed): no
# tolerance, the model checks all of it.
export FUZZ_STRICT="${FUZZ_STRICT:-1}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
status=0
for t in $targets; do
  exe="$out/fuzz_$t"
  case $t in
    shadow) secs=${FUZZ_SECONDS_SHADOW:-30} ;;
    *) secs=${FUZZ_SECONDS_MISUSE:-20} ;;
  esac
  # Inputs of bugs that are fixed: each must pass.  (Inputs of open bugs
  # live in regressions/$t-open/ and are not run here; README.md.)
  fixed="$here/regressions/$t-fixed"
  if [ -d "$fixed" ] && [ -n "$(ls -A "$fixed")" ]; then
    if ! nice -n 10 "$exe" -error_exitcode=1 "$fixed"/* > "$out/regressions-$t.log" 2>&1; then
      tail -n 60 "$out/regressions-$t.log"
      echo "fuzz: $t: a fixed regression input fails again"
      status=1
      continue
    fi
    echo "fuzz: $t: $(ls "$fixed" | wc -l) fixed regression inputs pass"
  fi
  # New inputs go to a scratch corpus (first directory); the seeds in the
  # tree are only read.
  work="$out/corpus-$t"
  rm -rf "$work" "$out/artifacts-$t"
  mkdir -p "$work" "$out/artifacts-$t"
  nice -n 10 "$exe" -max_total_time="$secs" -runs="${FUZZ_RUNS:-2000000}" -max_len=4096 \
    -timeout=20 -rss_limit_mb=3072 -error_exitcode=1 -timeout_exitcode=1 -print_final_stats=1 \
    -artifact_prefix="$out/artifacts-$t/" "$work" "$here/corpus/$t" > "$out/fuzz-$t.log" 2>&1
  rc=$?
  stats=$(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$out/fuzz-$t.log" | tail -n 1 |
          sed 's/^#[0-9]*[[:space:]]*[A-Z]*[[:space:]]*//')
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/fuzz-$t.log")
  if [ $rc -ne 0 ]; then
    grep -v -E '^#[0-9]+ ' "$out/fuzz-$t.log" | tail -n 60
    echo "fuzz: $t FAILED (exit $rc); the input is in $out/artifacts-$t/; log $out/fuzz-$t.log"
    status=1
  else
    echo "fuzz: $t: ${runs:-?} runs in ${secs}s, no mismatch: $stats"
  fi
done
exit $status
