#!/usr/bin/env bash
# The result matrix of the model issue, one result file per line. Seeds already in a result file are
# kept and skipped (train_eval.py), so the matrix grows across sessions. A slice: bash benchmarks/matrix.sh PATTERN
# Budget notes (2 CPU cores): all-MiniLM-L6-v2 trains at ~16 samples/s with the MMIB layers at batch 8;
# image features are cached after the first run of a dataset. Synthetic full runs use 2 epochs: 4000 posts x 2
# epochs at batch 16 is more updates than the small runs needed to reach 90 F1, and fits the session budget.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${MMIB_SHARED_DIR:-../shared}
PY=${PYTHON:-python}
run() {
  local name=$1; shift
  if [[ -n "${PATTERN:-}" && "$name" != *$PATTERN* ]]; then return; fi
  $PY benchmarks/train_eval.py --name "$name" "$@"
}
PATTERN=${1:-}
# Synthetic benchmark, small (README main-job size) and full (real-benchmark size)
run synth-ner-small-text-only --synth ner:small --variant text-only --seeds 1 2 3 --epochs 8
run synth-ner-small-mmib      --synth ner:small --variant mmib      --seeds 1 2 3 --epochs 8
run synth-ner-full-text-only  --synth ner:full  --variant text-only --seeds 1 2 3 --epochs 2 --batch-size 16
run synth-ner-full-mmib       --synth ner:full  --variant mmib      --seeds 1 2 3 --epochs 2 --batch-size 16
run synth-re-full-text-only   --synth re:full   --variant text-only --seeds 1 2 3 --epochs 2 --batch-size 16
run synth-re-full-mmib        --synth re:full   --variant mmib      --seeds 1 2 3 --epochs 2 --batch-size 16
# Real benchmark text (no images here: every post is image-absent for the MMIB runs)
run twitter2017-text-only     --data "$SHARED/data/twitter2017" --variant text-only --seeds 1 2 3 --epochs 4 --batch-size 16
run twitter2017-mmib          --data "$SHARED/data/twitter2017" --variant mmib      --seeds 1 2 3 --epochs 4 --batch-size 16
run twitter2015-text-only     --data "$SHARED/data/twitter2015" --variant text-only --seeds 1 --epochs 4 --batch-size 16
run twitter2015-mmib          --data "$SHARED/data/twitter2015" --variant mmib      --seeds 1 --epochs 4 --batch-size 16
run mnre-text-only            --data "$SHARED/data/mnre"        --variant text-only --seeds 1 --epochs 2 --batch-size 16
run mnre-mmib                 --data "$SHARED/data/mnre"        --variant mmib      --seeds 1 --epochs 2 --batch-size 16
run twitter2017-mpnet-text-only --data "$SHARED/data/twitter2017" --variant text-only --seeds 1 --epochs 2 --batch-size 16 --text-encoder all-mpnet-base-v2
