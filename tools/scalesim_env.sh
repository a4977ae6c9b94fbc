#!/usr/bin/env bash
# Make an isolated venv with SCALE-Sim 3.0.0 (it needs numpy < 2.3; the project's numpy stays untouched).
# Usage: tools/scalesim_env.sh [VENV_DIR]   (default /tmp/scalesim-venv; tests look there or at
# $LUTNB_SCALESIM_PYTHON). Safe to rerun; failures leave the project usable (the test skips).
set -euo pipefail
VENV="${1:-/tmp/scalesim-venv}"
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import scalesim.scale_sim" 2>/dev/null; then
  echo "SCALE-Sim venv ready: $VENV"; exit 0
fi
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q "scalesim==3.0.0" "numpy<2.3"
"$VENV/bin/python" -c "import scalesim.scale_sim" && echo "SCALE-Sim venv ready: $VENV"
