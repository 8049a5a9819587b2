#!/usr/bin/env bash
# Set up the environment and run the test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
bash tools/setup-env.sh
exec .venv/bin/python -m pytest "$@"
