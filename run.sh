#!/usr/bin/env bash
# Set up the environment and run the whole study on config.yaml (the embedded
# default), then write the Snakemake report. Extra arguments go to snakemake,
# e.g. ./run.sh --configfile configs/paper.yaml; a dry run (-n) writes no report.
set -euo pipefail
cd "$(dirname "$0")"
bash tools/setup-env.sh
.venv/bin/snakemake --cores all "$@"
for arg in "$@"; do
    case "$arg" in
        -n | --dry-run | --dryrun) exit 0 ;;
        --*) ;;
        -*n*) exit 0 ;;   # bundled short flags, e.g. -np
    esac
done
# the study's own folder: results/ for the default, results/<name>/ for a named one
results=$(.venv/bin/python -m afterkernel.config results-root "$@")
.venv/bin/snakemake --cores all "$@" --report "$results/report.html"
echo "Report: $results/report.html"
