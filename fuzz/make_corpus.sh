#!/usr/bin/env bash
# Seed corpora for the fuzz targets: every scenario and experiment shipped in configs/, the test
# fixtures, and the bad-input corpus (tests/bad_inputs/). Usage: fuzz/make_corpus.sh OUT_DIR
# Writes OUT_DIR/scenario/ and OUT_DIR/experiment/ (files named by content hash, so reruns are idempotent).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:?usage: fuzz/make_corpus.sh OUT_DIR}"
mkdir -p "$out/scenario" "$out/experiment"
add() {  # add TARGET FILE
  local h
  h=$(sha1sum "$2" | cut -c1-16)
  cp "$2" "$out/$1/$h"
}
while IFS= read -r -d '' f; do
  case "$f" in
    */experiments/arms/*) add scenario "$f" ;;
    */experiments/*|*/calibration/*|*/sensitivity/*) add experiment "$f" ;;
    *) add scenario "$f" ;;
  esac
done < <(find "$root/configs" "$root/tests/app/fixtures" "$root/tests/engine/config_fixtures" -type f -name '*.yaml' -print0)
while IFS= read -r -d '' f; do
  case "$(basename "$f")" in
    experiment_*) add experiment "$f" ;;
    *) add scenario "$f" ;;
  esac
done < <(find "$root/tests/bad_inputs" -type f ! -name '*.expect' ! -name 'README.md' -print0)
echo "corpus: $(ls "$out/scenario" | wc -l) scenario seeds, $(ls "$out/experiment" | wc -l) experiment seeds in $out"
