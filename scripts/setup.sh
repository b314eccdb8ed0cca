#!/usr/bin/env bash
# Installs cnnlab into a project virtualenv (.venv) and Fashion-MNIST from Debian where it can.
# Safe to rerun: steps already done are skipped. Used by scripts/run.sh and scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian ships Fashion-MNIST as a package; elsewhere cnnlab downloads it on first use.
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] && command -v apt-get >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) >/dev/null \
      || echo "setup: apt could not install dataset-fashion-mnist; cnnlab will download the data"
  else
    echo "setup: not root, skipping apt; cnnlab will download Fashion-MNIST on first use"
  fi
fi

# The fused first conv block is C, compiled on first use; without a compiler cnnlab uses PyTorch.
if ! command -v cc >/dev/null && ! command -v gcc >/dev/null && command -v apt-get >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && apt-get install -y -qq gcc libc6-dev) >/dev/null \
      || echo "setup: apt could not install gcc; cnnlab will train without its C kernel"
  fi
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
# Reinstall only when the project metadata changed since the last install.
stamp=.venv/.cnnlab-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  # torch is pinned in pyproject.toml (2.13.0: a CPU wheel on this kind of machine).
  .venv/bin/python -m pip install -q -e ".[test]"
  echo "$want" > "$stamp"
fi
