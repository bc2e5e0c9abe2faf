#!/bin/sh
# Executes one notebook headlessly and checks the PNG figures it must write (issue 7).
# Usage: run_notebook.sh NOTEBOOK.ipynb OUTPUT_DIR FIGURE...
#   PIRACY_ABM (environment): the program the notebook runs (ctest: the program of its build).
#   OUTPUT_DIR is emptied first; the notebook writes OUTPUT_DIR/runs/, OUTPUT_DIR/figures/ and
#   the executed copy OUTPUT_DIR/executed/NOTEBOOK.ipynb (with its outputs, for inspection).
# Fails when a cell raises (nbconvert exits non-zero), or a figure is missing or not a PNG file.
set -eu
if [ $# -lt 3 ]; then
  echo "usage: $0 NOTEBOOK.ipynb OUTPUT_DIR FIGURE..." >&2
  exit 2
fi
notebook=$1
out=$2
shift 2
PY=/usr/bin/python3   # Debian's Python only: its packages are the documented dependencies

if [ -z "${PIRACY_ABM:-}" ] || [ ! -x "$PIRACY_ABM" ]; then
  echo "PIRACY_ABM='${PIRACY_ABM:-}': not an executable program" >&2
  exit 1
fi
if ! "$PY" -c 'import nbconvert, nbclient, ipykernel, pandas, matplotlib' 2>/dev/null; then
  echo "$PY lacks nbconvert, nbclient, ipykernel, pandas or matplotlib:" >&2
  echo "  apt-get install -y jupyter-nbconvert python3-nbclient python3-ipykernel python3-pandas python3-matplotlib python3-scipy" >&2
  exit 1
fi

rm -rf "$out"
mkdir -p "$out"
export PIRACY_NB_OUTPUT_DIR="$out"
export PYTHONDONTWRITEBYTECODE=1          # no __pycache__ in the source tree
export PYDEVD_DISABLE_FILE_VALIDATION=1   # quiets the debugger's frozen-modules warning

start=$(date +%s)
"$PY" -m nbconvert --to notebook --execute --ExecutePreprocessor.timeout=1800 \
  --output-dir "$out/executed" "$notebook"
elapsed=$(( $(date +%s) - start ))
echo "$(basename "$notebook"): executed in ${elapsed} s (budget: 120 s on an idle 2-core machine)"

status=0
for fig in "$@"; do
  png="$out/figures/$fig.png"
  if "$PY" -c 'import sys; d = open(sys.argv[1], "rb").read(); sys.exit(0 if len(d) > 1000 and d[:8] == b"\x89PNG\r\n\x1a\n" else 1)' "$png" 2>/dev/null; then
    echo "  figure ok: $png"
  else
    echo "  figure MISSING or not a PNG: $png" >&2
    status=1
  fi
done
exit $status
