#!/usr/bin/env bash
# Installs everything, then runs cnnlab's main job: a short training run of the default config,
# tracked in ./cnnlab-runs (open it with `.venv/bin/cnnlab ui`).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export MLFLOW_DISABLE_TELEMETRY=true
.venv/bin/cnnlab train configs/default.toml "$@"
