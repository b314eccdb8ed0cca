#!/usr/bin/env bash
# Installs everything, then runs the linter and the whole test suite (offline, a few minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export MLFLOW_DISABLE_TELEMETRY=true
.venv/bin/ruff check src tests benchmarks
.venv/bin/ruff format --check src tests benchmarks
.venv/bin/python -m pytest "$@"
