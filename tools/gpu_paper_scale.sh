#!/usr/bin/env bash
# Train a recipe on a lent GPU machine from the packed faces, evaluate it on Helen test, return the figures.
# Prepare on the CPU first (python tools/gpu_prepare.py RECIPE), then, from the session (docs/training.md,
# "Paper scale on a lent GPU"):
#   run(command="bash tools/gpu_paper_scale.sh recipes/hybrid_disc.yaml", carry=[".gpu"], timeout_s=600)
# Everything printed also goes to $OUT/log.txt, so it comes back even if the command is stopped at its limit.
# Environment: OUT (required), GPU_BUDGET_S (seconds this command may take, default 570), GPU_RUNS (run folders
# on the machine, default /tmp/flzoo-gpu), GPU_INSTALL=0 (use the Python environment as it is: CPU tests),
# PYTHON (default python3). Arguments after the recipe go to tools/gpu_paper_scale.py (--set, --precision, ...).
set -uo pipefail
export GPU_T0=$(date +%s)
cd "$(dirname "$0")/.." || exit 1
: "${OUT:?set OUT: the folder whose files come back}"
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log.txt") 2>&1
PY=${PYTHON:-python3}
echo "$(date -u +%FT%TZ) gpu_paper_scale.sh $*"
if command -v nvidia-smi >/dev/null; then
  GPU_NAME=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | head -1)
  export GPU_NAME
  echo "GPU: $GPU_NAME"
fi
if [ "${GPU_INSTALL:-1}" != 0 ]; then
  ls .gpu/whl/*.whl >/dev/null 2>&1 || { echo "no wheels in .gpu/whl: run tools/gpu_prepare.py and carry .gpu"; exit 1; }
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/flzoo-site \
    .gpu/whl/*.whl || { echo "installing .gpu/whl failed"; exit 1; }
  export PYTHONPATH=/tmp/flzoo-site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
export KERAS_BACKEND=${KERAS_BACKEND:-jax} PYTHONUNBUFFERED=1
$PY -c "import sys, keras, numpy, cv2; print('python', sys.version.split()[0], '| keras', keras.__version__, \
'| backend', keras.backend.backend(), '| numpy', numpy.__version__, '| opencv', cv2.__version__)" || exit 1
echo "[$(( $(date +%s) - GPU_T0 )) s] installed"
$PY tools/gpu_paper_scale.py "$@"
rc=$?
echo "$(date -u +%FT%TZ) done (exit $rc); files in $OUT: $(ls "$OUT" | tr '\n' ' ')"
exit $rc
