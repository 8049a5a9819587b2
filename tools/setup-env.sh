#!/usr/bin/env bash
# Create .venv (if needed) and install the project with its test extras.
# Used by run.sh and test.sh; safe to re-run (it reinstalls only when
# pyproject.toml or the extras changed).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
# .[gpu,test] installs the CUDA build of TensorFlow instead, also into an
# existing .venv (the other build is removed first: both provide `tensorflow`).
PROJECT_EXTRAS=${AFTERKERNEL_EXTRAS:-.[cpu,test]}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.afterkernel-installed   # holds the extras it was installed with
installed=""
if [ -f "$stamp" ]; then
    installed=$(cat "$stamp")
    installed=${installed:-.[cpu,test]}   # an empty stamp: the default set-up
fi
if [ -z "$installed" ] || [ pyproject.toml -nt "$stamp" ] || [ "$installed" != "$PROJECT_EXTRAS" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    if [ -n "$installed" ] && [ "$installed" != "$PROJECT_EXTRAS" ]; then
        .venv/bin/python -m pip uninstall --quiet --yes tensorflow tensorflow-cpu || true
    fi
    .venv/bin/python -m pip install --quiet -e "$PROJECT_EXTRAS"
    printf '%s' "$PROJECT_EXTRAS" > "$stamp"
fi
