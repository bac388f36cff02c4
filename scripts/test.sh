#!/usr/bin/env bash
# Installs what is needed (once) and runs the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
# Two workers (pytest-xdist), one test file each at a time: most tests drive a suite in a
# one-thread subprocess, so two run side by side on two cores. TEST_WORKERS=0 runs them in turn.
exec .venv/bin/python -m pytest tests -q -n "${TEST_WORKERS:-2}" --dist loadfile --durations=15 -rs "$@"
