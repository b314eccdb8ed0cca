#!/usr/bin/env bash
# Installs everything, then runs the linter and the whole test suite (offline, a few minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# The report test renders report.html in headless Chromium (Debian's package).
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null
fi
export MLFLOW_DISABLE_TELEMETRY=true
.venv/bin/ruff check src tests benchmarks
.venv/bin/ruff format --check src tests benchmarks
.venv/bin/python -m pytest "$@"
