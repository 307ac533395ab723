#!/usr/bin/env bash
# Install synthdata into .venv: the CPU torch wheel first, then everything else with torch
# pinned as a constraint so no resolver can pull a CUDA build. Never installs torchvision.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
"$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -c constraints.txt -e ".[test]"
if .venv/bin/python -m pip show torchvision >/dev/null 2>&1; then
  echo "error: torchvision got installed; it has no CPU build and breaks torchmetrics" >&2
  exit 1
fi
.venv/bin/python -c "import torch, synthdata; print(f'synthdata {synthdata.__version__} with torch {torch.__version__} installed in .venv')"
