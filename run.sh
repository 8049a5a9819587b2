#!/usr/bin/env bash
# Set up the environment and run the whole study on config.yaml (the embedded
# default), then write the Snakemake report. Extra arguments go to snakemake,
# e.g. ./run.sh --configfile configs/paper.yaml
set -euo pipefail
cd "$(dirname "$0")"
bash tools/setup-env.sh
.venv/bin/snakemake --cores all "$@"
.venv/bin/snakemake --cores all "$@" --report results/report.html
echo "Report: results/report.html"
