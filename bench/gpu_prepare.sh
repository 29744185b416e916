#!/bin/bash
# Packs what the GPU study needs beyond the GPU machine's image (Python 3.12, torch, onnx, onnxruntime CPU, numpy,
# pillow, scipy, pandas, scikit-image, torchvision; no network there) into .gpu-carry/ (git-ignored, ~4 MB):
#   site/   torchxrayvision's code without its 28 MB of dataset CSVs, and cp312 wheels of pydicom and simplejpeg
#   xrays/  the sample X-rays (tests.model_support builds the clinical-size inputs from them)
# Run it here, then carry .gpu-carry to the GPU machine (bench/README.md, "GPU study").
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}
SAMPLES=${CXR_SAMPLES_DIR:-../shared/data/xrays}
# CARRY_PYTHON: the GPU machine's Python (3.12); another version gives a dry run on this machine
rm -rf .gpu-carry && mkdir -p .gpu-carry/site .gpu-carry/xrays
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version "${CARRY_PYTHON:-3.12}" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .gpu-carry/wheels "simplejpeg==$(grep -oP '^simplejpeg==\K\S+' requirements/model.txt)" \
  "pydicom==$(grep -oP '^pydicom==\K\S+' requirements/model.txt)"
for wheel in .gpu-carry/wheels/*.whl; do "$PYTHON" -m zipfile -e "$wheel" .gpu-carry/site; done
rm -rf .gpu-carry/wheels
XRV=$("$PYTHON" -c 'import os, torchxrayvision; print(os.path.dirname(torchxrayvision.__file__))')
cp -r "$XRV" .gpu-carry/site/torchxrayvision
rm -rf .gpu-carry/site/torchxrayvision/data .gpu-carry/site/torchxrayvision/__pycache__
cp "$SAMPLES"/* .gpu-carry/xrays/
du -sh .gpu-carry
