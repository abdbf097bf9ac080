#!/usr/bin/env bash
# The same training commands at two commits, side by side, each importing its own checkout's src: does a
# restructuring change what training computes? Compare the two runs' metrics.jsonl (loss, L_ar, dev F1 per
# epoch) and test F1; identical seeds and thread counts make them comparable to the digit.
#   bash benchmarks/ab_commits.sh BEFORE AFTER [OUT]      # e.g. 5917425 9872674 ~/mmib-runs/ab
# Used for the processing-layer restructuring (its note gives the figures): text-only NER and MMIB MRE with
# entity markers on the small synthetic benchmarks.
set -euo pipefail
BEFORE=$1 AFTER=$2
OUT=$(realpath -m "${3:-runs/ab}")  # absolute: each side runs from its own tree
REPO=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$OUT"
for side in "$BEFORE" "$AFTER"; do
  [ -d "$OUT/tree-$side" ] || git -C "$REPO" worktree add -q "$OUT/tree-$side" "$side"
done
ab() {  # ab NAME ARGS...
  local name=$1
  shift
  for side in "$BEFORE" "$AFTER"; do
    (cd "$OUT/tree-$side" && PYTHONPATH="$OUT/tree-$side/src" python benchmarks/train_eval.py --name "$name" \
      --seeds 1 --threads 2 --run-root "$OUT/$side/$name" "$@" > "$OUT/$side-$name.log" 2>&1) &
  done
  wait
  for side in "$BEFORE" "$AFTER"; do
    echo "== $name at $side"
    cat "$OUT/$side/$name/seed-1/metrics.jsonl"
    tail -1 "$OUT/$side-$name.log"
  done
}
ab ab-ner-small-text-only --synth ner:small --variant text-only --epochs 3 --batch-size 16
ab ab-re-small-mmib-markers --synth re:small --variant mmib --entity-markers --epochs 2 --batch-size 16 \
  --logvar-head linear
