#!/usr/bin/env bash
# Create .venv (if needed) and install the project with its test extras.
# Used by run.sh and test.sh; safe to re-run (it reinstalls only on change).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
# .[gpu,test] installs the CUDA build of TensorFlow instead.
PROJECT_EXTRAS=${AFTERKERNEL_EXTRAS:-.[cpu,test]}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.afterkernel-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -e "$PROJECT_EXTRAS"
    touch "$stamp"
fi
