#!/usr/bin/env bash
# Install hpnas into ./.venv (pinned torch, torchvision and Ray; the `hpnas` console script),
# and Fashion-MNIST from Debian's `dataset-fashion-mnist` package for the main example job.
# Safe to run again. Uses $PYTHON (default python3, 3.10 or newer).
set -euo pipefail
cd "$(dirname "$0")"

if [ ! -d /usr/share/datasets/fashion-mnist ]; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo -n"
    if ! { $sudo apt-get update -qq && $sudo apt-get install -y -qq dataset-fashion-mnist; } >/dev/null 2>&1; then
      echo "install.sh: note: could not apt-get install dataset-fashion-mnist; the example job" \
           "needs it (or set data.root to a folder with the Fashion-MNIST IDX files)." >&2
    fi
  else
    echo "install.sh: note: no apt-get; for the example job put the Fashion-MNIST IDX files in a" \
         "folder and set data.root to it." >&2
  fi
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"
echo "install.sh: done. Next: .venv/bin/hpnas run examples/fashion_mnist_cnn.yaml"
