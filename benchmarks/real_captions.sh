#!/usr/bin/env bash
# Real Twitter-2017 with BLIP-2 captions as the image side (NOT the paper's pixel setting): a dev-only
# grid over the encoder learning rate (text-only CRF), then every row at the chosen rate with the same
# recipe and seeds. Results accumulate in benchmarks/results/; rerunning skips seeds already recorded.
#   bash benchmarks/real_captions.sh [SEEDS...]     (default: 1)
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=("${@:-1}")
DATA=../shared/data/twitter2017
CAPTIONS=../shared/data/image-captions/blip2/twitter2017.txt
RECIPE=(--data "$DATA" --epochs 8 --batch-size 16 --patience 2 --final-lr-ratio 0.1 --threads 2)

for lr in 5e-5 1e-4; do
  python benchmarks/train_eval.py --name "grid-twitter2017-text-only-lr$lr" --dev-only --variant text-only \
    --lr "$lr" --seeds 1 --run-root "runs/grid/twitter2017-text-only-lr$lr" "${RECIPE[@]}"
done
python benchmarks/lr_grid.py twitter2017-text-only
LR=$(python benchmarks/lr_grid.py twitter2017-text-only --choice)
echo "chosen encoder lr (dev): $LR"

# Seed 1 of the text-only row is the chosen grid point's run, scored on test as it is.
python benchmarks/train_eval.py --name twitter2017-text-only-tuned --variant text-only --lr "$LR" \
  --seeds "${SEEDS[@]}" --run-root "runs/grid/twitter2017-text-only-lr$LR" "${RECIPE[@]}"
python benchmarks/train_eval.py --name twitter2017-mmib-captions --variant mmib --captions "$CAPTIONS" \
  --lr "$LR" --seeds "${SEEDS[@]}" "${RECIPE[@]}"
python benchmarks/train_eval.py --name twitter2017-text-caption-pair --variant text-caption-pair \
  --captions "$CAPTIONS" --lr "$LR" --seeds "${SEEDS[@]}" "${RECIPE[@]}"
