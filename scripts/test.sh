#!/usr/bin/env bash
# Installs what is needed (once) and runs the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/python -m pytest tests -q "$@"
