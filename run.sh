#!/usr/bin/env bash
# Starts the dashboard on http://localhost:8501 with the built-in demo data selected.
# Sets up its own environment (.venv) on the first run.
# Closed by default: it listens on this computer only, until a password is set (STUDIO_PASSWORD,
# or `password` in .streamlit/secrets.toml); then it listens on every interface (STUDIO_ADDRESS
# chooses another).
set -euo pipefail
cd "$(dirname "$0")"
scripts/ensure-env.sh requirements.txt
# Offline machines: ImageNet weight files found in these folders are used as if Keras had
# downloaded them (Keras's own cache, ~/.keras/models, is always searched first).
shared="${STUDIO_SHARED:-../shared}"
if [ -d "$shared/weights" ]; then
  export STUDIO_WEIGHTS_DIRS="${STUDIO_WEIGHTS_DIRS:+$STUDIO_WEIGHTS_DIRS:}$(cd "$shared/weights" && pwd)"
fi
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
if [ -n "${STUDIO_PASSWORD:-}" ] || grep -Eqs '^[[:space:]]*password[[:space:]]*=' .streamlit/secrets.toml; then
  address="${STUDIO_ADDRESS:-0.0.0.0}"
else
  address="${STUDIO_ADDRESS:-127.0.0.1}"
fi
exec .venv/bin/streamlit run streamlit_app.py --server.address "$address" "$@"
