#!/usr/bin/env bash
# Installs everything, then runs the linter and the whole test suite (offline). CI runs it all;
# `scripts/test.sh --fast` leaves out the tests marked slow (real studies, servers, processes
# killed on purpose), for the inner loop. Other arguments go to pytest.
set -euo pipefail
marks=()
if [ "${1:-}" = "--fast" ]; then
  shift
  marks=(-m "not slow")
fi
cd "$(dirname "$0")/.."
scripts/setup.sh
# Real components the tests start: headless Chromium renders the report, PostgreSQL backs a
# shared search (both Debian packages; the tests start and stop their own servers).
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
if [ ${#need[@]} -gt 0 ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && apt-get install -y -qq "${need[@]}") >/dev/null
fi
export MLFLOW_DISABLE_TELEMETRY=true
.venv/bin/ruff check src tests benchmarks
.venv/bin/ruff format --check src tests benchmarks
# Two pytest-xdist workers where there are two cores (CNNLAB_TEST_WORKERS=0: one process), each
# file on one worker so that its module fixtures start once: one process keeps two cores only
# about 65% busy, as tests wait on imports, servers and subprocesses.
workers=${CNNLAB_TEST_WORKERS:-$(($(nproc) >= 2 ? 2 : 0))}
dist=()
[ "$workers" = 0 ] || dist=(-n "$workers" --dist loadfile)
.venv/bin/python -m pytest "${dist[@]}" "${marks[@]}" "$@"
