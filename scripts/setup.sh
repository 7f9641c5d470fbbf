#!/usr/bin/env bash
# Sets up everything GnM needs on a fresh machine with Python 3.11 and pip: a virtualenv in .venv,
# the CPU build of PyTorch (installed first so that `torch>=2.3` is already satisfied and pip never
# pulls a multi-GB CUDA build), and the project with its train and dev extras. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  .venv/bin/pip install --quiet torch==2.13.0
fi
.venv/bin/pip install --quiet -e '.[train,dev,dvc,eval]'
if ! command -v fluidsynth >/dev/null 2>&1; then
  echo "note: audio rendering (gnm render, gnm eval) needs fluidsynth and a GM soundfont:" >&2
  echo "      apt-get install fluidsynth timgm6mb-soundfont" >&2
fi
