#!/usr/bin/env bash
# Installs everything into .venv once; later runs reuse it (a stamp records what was installed).
#   bash scripts/install.sh                         # CPU: paddlepaddle from requirements/paddle-cpu.txt
#   PADDLE_REQ="paddlepaddle-gpu==2.6.2" bash scripts/install.sh   # GPU users (see README)
#   WITH_BENCH=1 bash scripts/install.sh           # also paddleslim, for the comparison benchmarks
#   WITH_ONNX=0 bash scripts/install.sh            # without paddle2onnx / onnx / onnxruntime
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
PADDLE_REQ=${PADDLE_REQ:-$(grep -v '^#' requirements/paddle-cpu.txt | head -n1)}
WITH_BENCH=${WITH_BENCH:-1}
case "$PADDLE_REQ" in *==2.6*) onnx_default=0 ;; *) onnx_default=1 ;; esac   # paddle2onnx 2.x: Paddle 3
WITH_ONNX=${WITH_ONNX:-$onnx_default}
stamp_src="$PADDLE_REQ|$WITH_BENCH|$WITH_ONNX|$(cat requirements/*.txt setup.py prune_plugin/core/*.c | sha1sum)"
stamp="$VENV/.prune_plugin_installed"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$stamp_src" ]; then
  exit 0
fi
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip() { "$VENV/bin/python" -m pip "$@" --disable-pip-version-check -q; }
# The suites' metadata pins conflict (numpy, opencv); install their real runtime deps first,
# then the suites without their pins.
extra=()
case "$PADDLE_REQ" in *==2.6*) extra+=("protobuf<5") ;; esac   # Paddle 2.6's fleet needs protobuf 3/4
if [ "$WITH_ONNX" = "1" ]; then extra+=(-r requirements/onnx.txt); fi   # resolved with numpy's pin
pip install "$PADDLE_REQ" "${extra[@]}" -r requirements/runtime.txt
pip install --no-deps -r requirements/suites.txt
if [ "$WITH_BENCH" = "1" ]; then pip install --no-deps -r requirements/bench.txt; fi
pip install --no-deps -e .
echo "$stamp_src" > "$stamp"
echo "installed into $VENV ($PADDLE_REQ)"
