#!/usr/bin/env bash
# Installs everything, then runs cnnlab's main job: the whole study of experiments/ (each
# variant of steps 2-6 with its step's seeds, 2 or 3), then rounds of seeds for each hypothesis
# still open, until it is confirmed or refuted or has 9 seeds per arm (`--until-decided`),
# tracked in ./cnnlab-runs, with its report written to ./report (report.md, report.html and the
# plots). It prints each run with an estimate of the time left; interrupted, the same command
# resumes. `--quick` gives a 90-second smoke test whose figures do not compare with the study's.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export MLFLOW_DISABLE_TELEMETRY=true
.venv/bin/cnnlab study experiments --until-decided --max-seeds 9 "$@"
