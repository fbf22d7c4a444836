#!/usr/bin/env bash
# Every CUDA path of divweights in one go, on a machine with a GPU (about 8 minutes on an H100/H200):
# the GPU tests, then short GPU versions of the weights, embedding, training and metrics benchmarks.
# Each table is written under $OUT (default ./gpu-check-out). The first failing step stops the run
# with its name; no step is skipped: without CUDA the script refuses to start (use --dry-run to see
# what it would run). Nothing is downloaded: open_clip models have random weights (the real cost),
# images are generated, and the tests use the bundled digits.
#
#   bash benchmarks/gpu_check.sh [--dry-run] [--study]
#     --study   also the paper's study on one class pair (0-1, one seed, γ 0.6/0.8/1.0 + baseline, paper
#               preset, pixel features): needs MNIST or Fashion-MNIST IDX files under data/ (carry them)
set -euo pipefail
cd "$(dirname "$0")/.."

DRY=0
STUDY=0
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY=1 ;;
    --study) STUDY=1 ;;
    *) echo "usage: bash benchmarks/gpu_check.sh [--dry-run] [--study]" >&2; exit 2 ;;
  esac
done
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
OUT="${OUT:-$PWD/gpu-check-out}"
export DIVWEIGHTS_REQUIRE_GPU=1  # tests/conftest.py: a GPU test fails instead of skipping without CUDA
export DIVWEIGHTS_DATA_DIR="${DIVWEIGHTS_DATA_DIR:-$PWD/data}"

step() {  # step NAME COMMAND...: run it (or print it), its output into $OUT/NAME.txt
  local name="$1"
  shift
  if [ "$DRY" = 1 ]; then
    echo "[$name] $* > $OUT/$name.txt"
    return 0
  fi
  echo "=== [$name] $*"
  local started=$SECONDS
  if ! "$@" 2>&1 | tee "$OUT/$name.txt"; then
    echo "FAILED: [$name] $* (see $OUT/$name.txt)" >&2
    exit 1
  fi
  echo "=== [$name] done in $((SECONDS - started)) s"
}

mkdir -p "$OUT"
if [ "$DRY" = 0 ]; then
  "$PY" - <<'PYCHECK' | tee "$OUT/device.txt"
import sys, torch
if not torch.cuda.is_available():
    sys.exit("no CUDA GPU is usable here: this check needs one (use --dry-run to see what it would run)")
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)}, "
      f"{torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB")
PYCHECK
fi

step gpu_tests "$PY" -m pytest -m gpu -q -rs
step bench_weights "$PY" benchmarks/bench_weights.py --device cuda --sizes 6000,1000000 --repeats 3
step bench_embed "$PY" benchmarks/bench_embed.py --device cuda --models ViT-L-14 --n 12000
step bench_train "$PY" benchmarks/bench_train.py --device cuda --preset paper --steps 20
step bench_metrics "$PY" benchmarks/bench_metrics.py --device cuda --d 768 --n-real 10000 --n-gen 10000
if [ "$STUDY" = 1 ]; then
  step study "$PY" -m core study --dataset "${STUDY_DATASET:-mnist}" --pairs 0-1 --seeds 1 --gammas 0.6,0.8,1.0 \
    --device cuda --out "$OUT/study"
fi
[ "$DRY" = 1 ] || echo "all steps passed; tables in $OUT"
