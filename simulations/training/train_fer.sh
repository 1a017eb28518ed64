#!/usr/bin/env bash
# Trains and measures the shipped frame model on FER2013 with `emofl` itself (docs/benchmarks.md).
# Usage: simulations/training/train_fer.sh [FER2013_ROOT] [RUNS_DIR]
# Each step is skipped when its model exists and resumed from its checkpoint when interrupted.
set -euo pipefail
FER=${1:-../shared/data/fer2013}
RUNS=${2:-runs/fer}
EMOFL=${EMOFL:-emofl}
mkdir -p "$RUNS"

PUBLIC="$RUNS/public_pretrained.pt"
[ -f "$PUBLIC" ] || $EMOFL pretrain --data "$FER/train" --val-data "$FER/val" \
    --public-fraction 0.2 --seed 0 --epochs 30 --model-width 24 --out "$PUBLIC"

COMMON=(--data "$FER/train" --val-data "$FER/val" --clients 10 --alpha 0.5 --seed 0
        --delta 1e-5 --local-epochs 1 --batch-size 128)

simulate() {  # simulate NAME ROUNDS ARGS...: one federated run, resumable
    local out="$RUNS/$1" rounds=$2
    shift 2
    if [ -f "$out/model.pt" ]; then echo "done: $out"; return; fi
    if [ -f "$out/checkpoint.pt" ]; then
        $EMOFL simulate --out "$out" --rounds "$rounds" --resume
    else
        $EMOFL simulate "${COMMON[@]}" --out "$out" --rounds "$rounds" "$@"
    fi
}

# The ε table: the same federation and recipe (DP-Adam on the top layers), ε = 8, 3, 1, ∞.
simulate eps8 10 --epsilon 8 --init-model "$PUBLIC" --trainable top --lr 1e-3
simulate eps3 10 --epsilon 3 --init-model "$PUBLIC" --trainable top --lr 1e-3
simulate eps1 10 --epsilon 1 --init-model "$PUBLIC" --trainable top --lr 1e-3
simulate noDP_top 10 --no-dp --init-model "$PUBLIC" --trainable top --lr 1e-3
# Non-private, every layer trained.
simulate noDP 10 --no-dp --init-model "$PUBLIC" --trainable all --lr 1e-3
# DP from scratch, no public data: the figure the public pre-training is there to beat.
simulate eps8_scratch 4 --epsilon 8 --trainable all --model-width 24 --lr 2e-3
# A smaller client learning rate against client drift under label skew (the shipped model).
simulate eps8_lr3e-4 10 --epsilon 8 --init-model "$PUBLIC" --trainable top --lr 3e-4
simulate noDP_top_lr3e-4 10 --no-dp --init-model "$PUBLIC" --trainable top --lr 3e-4
