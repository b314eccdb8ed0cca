#!/usr/bin/env bash
# Installs everything, then runs cnnlab's main job: the whole study of experiments/ in its quick
# form (a few minutes on a 2-core laptop), tracked in ./cnnlab-runs, with its report written to
# ./report (report.md, report.html and the plots). Drop --quick for the full study.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export MLFLOW_DISABLE_TELEMETRY=true
.venv/bin/cnnlab study experiments --quick "$@"
