#!/usr/bin/env bash
# Installs what is needed (once) and runs the main job on the embedded demo data:
# MobileNetV1 trained dense and 75% sparse (1x1 convs, GMP) on scikit-learn's digits.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/python tools/train.py -c configs/ppcls/mobilenetv1_prune_demo.yml "$@"
