#!/usr/bin/env bash
# Runs each fuzz target of the `fuzz` preset for SECONDS (default 60) on a seed corpus built by
# make_corpus.sh, with libFuzzer's YAML dictionary. Fails (exit 1) if a target finds a crash, a
# leak, a sanitizer report, a timeout (10 s per input: at most 200,000 YAML nodes are built, which
# takes well under a second even under ASan) or an out-of-memory (2 GiB); the input is
# saved as build/fuzz/artifacts/<target>/crash-* -- add it to tests/bad_inputs/ with its .expect
# once fixed. Usage: fuzz/run_fuzzers.sh [SECONDS] (after cmake --build --preset fuzz).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
seconds="${1:-60}"
build="$root/build/fuzz"
corpus="$build/corpus"
"$root/fuzz/make_corpus.sh" "$corpus"
status=0
for target in scenario experiment; do
  bin="$build/fuzz/fuzz_$target"
  [ -x "$bin" ] || { echo "missing $bin: cmake --preset fuzz && cmake --build --preset fuzz" >&2; exit 1; }
  mkdir -p "$build/artifacts/$target"
  echo "== fuzz_$target for ${seconds}s =="
  # stdin from /dev/null: an input may name /dev/stdin as a file (extends: /dev/stdin).
  rc=0
  ASAN_OPTIONS="detect_leaks=1" UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
    "$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len=65536 \
    -dict="$root/fuzz/yaml.dict" -artifact_prefix="$build/artifacts/$target/" -print_final_stats=1 \
    "$corpus/$target" < /dev/null > "$build/fuzz_$target.log" 2>&1 || rc=$?
  grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::average_exec_per_sec|==[0-9]+==ERROR|SUMMARY)' \
    "$build/fuzz_$target.log" || true
  if [ "$rc" -ne 0 ] || [ -n "$(ls -A "$build/artifacts/$target")" ]; then
    echo "fuzz_$target FOUND A PROBLEM (exit $rc): see $build/fuzz_$target.log and $build/artifacts/$target/" >&2
    tail -n 60 "$build/fuzz_$target.log" >&2
    status=1
  fi
done
exit $status
