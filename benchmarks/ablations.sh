#!/usr/bin/env bash
# Table V of the paper: full MMIB, --no-rr, --no-ar, both removed, --text-only, 3 seeds each, on the synthetic
# NER and MRE benchmarks (full size), and MMIB vs --no-rr on the real Twitter-2017 text (image-absent, so only
# the text-side bottleneck acts). One result file per row; finished seeds are kept, so it resumes across
# sessions. Then: python benchmarks/ablation_table.py > reports/ablations.md
# A slice: bash benchmarks/ablations.sh PATTERN. Budget: about 10 min per synthetic NER seed on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${MMIB_SHARED_DIR:-../shared}
PY=${PYTHON:-python}
PATTERN=${1:-}
run() {
  local name=$1; shift
  if [[ -n "$PATTERN" && "$name" != *$PATTERN* ]]; then return; fi
  $PY benchmarks/train_eval.py --name "$name" "$@"
}
for size in small full; do
  epochs=$([[ $size == small ]] && echo 8 || echo 2)
  for variant in mmib no-rr no-ar no-rr-no-ar text-only; do
    run "synth-ner-$size-$variant" --synth ner:$size --variant $variant --seeds 1 2 3 --epochs $epochs --batch-size $([[ $size == small ]] && echo 8 || echo 16)
  done
done
for variant in mmib no-rr no-ar no-rr-no-ar text-only; do
  run "synth-re-full-$variant" --synth re:full --variant $variant --seeds 1 2 3 --epochs 2 --batch-size 16
done
run twitter2017-mmib  --data "$SHARED/data/twitter2017" --variant mmib  --seeds 1 2 3 --epochs 4 --batch-size 16
run twitter2017-no-rr --data "$SHARED/data/twitter2017" --variant no-rr --seeds 1 2 3 --epochs 4 --batch-size 16
