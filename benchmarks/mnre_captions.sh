#!/usr/bin/env bash
# MNRE with captions of the real photos (NOT the paper's pixel setting), and the protocol gap.
#   bash benchmarks/mnre_captions.sh protocol-twitter2017 [text-only|mmib]  # Twitter-2017 text-only CRF and
#                                          # MMIB-captions (default both), seed 1, test scored after every epoch
#   bash benchmarks/mnre_captions.sh screen                 # the four captioners, pair baseline, dev only
#   bash benchmarks/mnre_captions.sh rows [SEEDS...]        # text-only, pair, MMIB-captions (chosen captioner)
#   bash benchmarks/mnre_captions.sh ablations [SEEDS...]   # MMIB-captions w/o L_rr, w/o L_ar; BLIP-2 MMIB
# Seed 1 of every MNRE row also scores test after every epoch (never for selection). Results accumulate in
# benchmarks/results/; rerunning skips seeds already recorded. RUN_ROOT moves the run folders (default runs/).
set -euo pipefail
cd "$(dirname "$0")/.."
SECTION="${1:-screen}"
shift || true
SEEDS=("${@:-1}")
RUNS="${RUN_ROOT:-runs}"
MNRE=../shared/data/mnre
CAPTIONS=../shared/data/image-captions
# The converged MNRE recipe of the text-only marker row (best epoch 4 of 5), 128 caption sub-words (CogVLM's
# paragraphs: p90 100, p99 146 MiniLM sub-words; BLIP-2's sentences never reach it).
RECIPE=(--entity-markers --lr 5e-5 --epochs 5 --batch-size 16 --patience 2 --final-lr-ratio 0.1 --threads 2
  --caption-max-tokens 128)

row() {  # row NAME VARIANT [ARGS...]: seed 1 with the per-epoch test scores, the other seeds without
  local name=$1 variant=$2
  shift 2
  for seed in "${SEEDS[@]}"; do
    local watch=()
    [ "$seed" = 1 ] && watch=(--score-test-each-epoch)
    python benchmarks/train_eval.py --name "$name" --variant "$variant" --data "$MNRE" --seeds "$seed" \
      --run-root "$RUNS/bench/$name" "${RECIPE[@]}" "${watch[@]}" "$@"
  done
}

case "$SECTION" in
  protocol-twitter2017)
    T17=(--data ../shared/data/twitter2017 --lr 5e-5 --seeds 1 --epochs 8 --batch-size 16 --patience 2
      --final-lr-ratio 0.1 --threads 2 --score-test-each-epoch)
    WHICH="${SEEDS[0]}"  # here the argument names the row
    if [ "$WHICH" != mmib ]; then
      python benchmarks/train_eval.py --name twitter2017-text-only-protocol --variant text-only \
        --run-root "$RUNS/bench/twitter2017-text-only-protocol" "${T17[@]}"
    fi
    if [ "$WHICH" != text-only ]; then
      python benchmarks/train_eval.py --name twitter2017-mmib-captions-protocol --variant mmib \
        --logvar-head linear --captions "$CAPTIONS/blip2/twitter2017.txt" \
        --run-root "$RUNS/bench/twitter2017-mmib-captions-protocol" "${T17[@]}"
    fi
    ;;
  screen)
    for captioner in blip2 instructblip qwen cogvlm; do
      python benchmarks/train_eval.py --name "screen-mnre-pair-$captioner" --dev-only --variant text-caption-pair \
        --captions "$CAPTIONS/mnre/$captioner.txt" --data "$MNRE" --seeds 1 --run-root "$RUNS/screen/$captioner" \
        "${RECIPE[@]}" --epochs 2
    done
    python benchmarks/captioner_screen.py
    ;;
  rows)
    CHOSEN=$(python benchmarks/captioner_screen.py --choice)
    echo "captioner chosen on dev: $CHOSEN"
    row mnre-text-only-markers-converged text-only
    row mnre-text-caption-pair text-caption-pair --captions "$CHOSEN"
    row mnre-mmib-captions mmib --logvar-head linear --captions "$CHOSEN"
    ;;
  ablations)
    CHOSEN=$(python benchmarks/captioner_screen.py --choice)
    row mnre-mmib-captions-no-rr no-rr --logvar-head linear --captions "$CHOSEN"
    row mnre-mmib-captions-no-ar no-ar --logvar-head linear --captions "$CHOSEN"
    row mnre-mmib-captions-blip2 mmib --logvar-head linear --captions "$CAPTIONS/mnre/blip2.txt"
    ;;
  *)
    echo "unknown section $SECTION (protocol-twitter2017, screen, rows, ablations)" >&2
    exit 2
    ;;
esac
