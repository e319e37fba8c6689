#!/usr/bin/env bash
# Runs the whole test suite: lint, types, unit tests, real-data tests (skipped without ../shared)
# and the browser tests (skipped without Chromium). Sets up its own environment (.venv).
#   ./test.sh --fast   lint, types and every test that starts no process, trains no model and opens
#                      no browser: under 2 minutes, for running between two edits.
# Other arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
scripts/ensure-env.sh requirements-dev.txt
fast=""
if [ "${1:-}" = "--fast" ]; then
  fast="--fast"
  shift
fi
if [ -z "$fast" ] && ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian's chromium for the browser test..."
  (apt-get install -y -qq chromium >/dev/null 2>&1 || (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium >/dev/null 2>&1)) \
    || echo "chromium could not be installed: the browser test will be skipped"
fi
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
export TF_CPP_MIN_LOG_LEVEL=3
if [ -n "$fast" ]; then
  exec .venv/bin/python -m pytest -q --timeout=300 -n 2 --dist loadfile --fast "$@"
fi
# Two workers: much of the suite waits on servers, browsers and worker processes, so two share
# two cores well. A test file stays on one worker (its module fixtures are made once).
exec .venv/bin/python -m pytest -q --timeout=900 -n "${STUDIO_TEST_WORKERS:-2}" --dist loadfile "$@"
