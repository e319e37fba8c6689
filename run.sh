#!/usr/bin/env bash
# Starts the dashboard on http://localhost:8501 with the built-in demo data selected.
# Sets up its own environment (.venv) on the first run.
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
exec .venv/bin/streamlit run streamlit_app.py "$@"
