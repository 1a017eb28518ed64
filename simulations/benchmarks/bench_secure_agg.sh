#!/usr/bin/env bash
# The same FER2013 federation with and without CKKS secure aggregation (docs/benchmarks.md).
# Usage: simulations/benchmarks/bench_secure_agg.sh [FER2013_ROOT] [RUNS_DIR]   (after training/train_fer.sh)
set -euo pipefail
FER=${1:-../shared/data/fer2013}
RUNS=${2:-runs/fer}
EMOFL=${EMOFL:-emofl}
for mode in none ckks; do
    out="$RUNS/agg_$mode"
    [ -f "$out/model.pt" ] && continue
    $EMOFL simulate --data "$FER/train" --val-data "$FER/val" --clients 10 --alpha 0.5 --seed 0 \
        --delta 1e-5 --local-epochs 1 --batch-size 128 --rounds 3 --epsilon 8 \
        --init-model "$RUNS/public_pretrained.pt" --trainable top --lr 1e-3 \
        --secure-agg "$mode" --out "$out"
done
python -m emofl.simulations.benchmarks.secure_agg compare "$RUNS/agg_none" "$RUNS/agg_ckks"
