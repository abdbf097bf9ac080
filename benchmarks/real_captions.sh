#!/usr/bin/env bash
# The real benchmarks trained to convergence, with BLIP-2 captions of the real photos as the image side
# where captions exist (NOT the paper's pixel setting). Per benchmark: a dev-only grid over the encoder
# learning rate (text-only model), then every row at the chosen rate with the same recipe and seeds.
# Results accumulate in benchmarks/results/; rerunning skips seeds already recorded.
#   bash benchmarks/real_captions.sh [twitter2017|twitter2017-ablations|twitter2015|mnre] [SEEDS...]
#   (default: twitter2017, seed 1)
set -euo pipefail
cd "$(dirname "$0")/.."
SECTION="${1:-twitter2017}"
shift || true
SEEDS=("${@:-1}")
RECIPE=(--epochs 8 --batch-size 16 --patience 2 --final-lr-ratio 0.1 --threads 2)

grid() {  # grid NAME DATA VARIANT: dev-only grid points, then print the chosen learning rate
  local name=$1 data=$2 variant=$3
  for lr in 5e-5 1e-4; do
    python benchmarks/train_eval.py --name "grid-$name-lr$lr" --dev-only --variant "$variant" --lr "$lr" \
      --seeds 1 --run-root "runs/grid/$name-lr$lr" --data "$data" "${RECIPE[@]}" >&2
  done
  python benchmarks/lr_grid.py "$name" >&2
  python benchmarks/lr_grid.py "$name" --choice
}

case "$SECTION" in
  twitter2017 | twitter2017-ablations | twitter2015)
    BENCH="${SECTION%-ablations}"
    DATA="../shared/data/$BENCH"
    CAPTIONS="../shared/data/image-captions/blip2/$BENCH.txt"
    LR=$(grid "$BENCH-text-only" "$DATA" text-only)
    echo "chosen encoder lr (dev): $LR"
    COMMON=(--data "$DATA" --lr "$LR" --seeds "${SEEDS[@]}" "${RECIPE[@]}")
    if [ "$SECTION" = twitter2017-ablations ]; then
      for variant in no-rr no-ar; do
        python benchmarks/train_eval.py --name "$BENCH-mmib-captions-$variant" --variant "$variant" \
          --captions "$CAPTIONS" "${COMMON[@]}"
      done
      exit 0
    fi
    # Seed 1 of the text-only row is the chosen grid point's run, scored on test as it is.
    python benchmarks/train_eval.py --name "$BENCH-text-only-tuned" --variant text-only \
      --run-root "runs/grid/$BENCH-text-only-lr$LR" "${COMMON[@]}"
    python benchmarks/train_eval.py --name "$BENCH-text-caption-pair" --variant text-caption-pair \
      --captions "$CAPTIONS" "${COMMON[@]}"
    python benchmarks/train_eval.py --name "$BENCH-mmib-captions" --variant mmib --captions "$CAPTIONS" \
      "${COMMON[@]}"
    ;;
  mnre)  # no captions exist for MNRE: text-only and image-absent MMIB
    DATA=../shared/data/mnre
    LR=$(grid mnre-text-only "$DATA" text-only)
    COMMON=(--data "$DATA" --lr "$LR" --seeds "${SEEDS[@]}" "${RECIPE[@]}")
    python benchmarks/train_eval.py --name mnre-text-only-tuned --variant text-only \
      --run-root "runs/grid/mnre-text-only-lr$LR" "${COMMON[@]}"
    python benchmarks/train_eval.py --name mnre-mmib-tuned --variant mmib "${COMMON[@]}"
    ;;
  *)
    echo "unknown section $SECTION (twitter2017, twitter2017-ablations, twitter2015, mnre)" >&2
    exit 2
    ;;
esac
