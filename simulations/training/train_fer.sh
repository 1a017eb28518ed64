#!/usr/bin/env bash
# Trains and measures the shipped frame model on FER2013 with `emofl` itself (docs/benchmarks.md
# §9, docs/model_card.md). Usage: simulations/training/train_fer.sh [FER2013_ROOT] [RUNS_DIR]
# Each step is skipped when its model exists and resumed from its checkpoint when interrupted.
set -euo pipefail
FER=${1:-../shared/data/fer2013}
RUNS=${2:-runs/fer}
EMOFL=${EMOFL:-emofl}
PYTHON=${PYTHON:-python}
mkdir -p "$RUNS"

# Public pre-training: the declared, seeded public half of train, no DP.
PUBLIC="$RUNS/public_vgg16.pt"
[ -f "$PUBLIC" ] || $EMOFL pretrain --data "$FER/train" --val-data "$FER/val" \
    --public-fraction 0.5 --seed 0 --epochs 50 --batch-size 128 --lr 3e-3 --weight-decay 5e-4 \
    --label-smoothing 0.1 --model-kind vgg --model-width 16 --model-pool average --out "$PUBLIC"

# The federation over the private half: 10 clients, Dirichlet α = 0.5, DP-FedSGD with FedAvgM.
COMMON=(--data "$FER/train" --val-data "$FER/val" --clients 10 --alpha 0.5 --seed 0
        --rounds 40 --sample-rate 0.2 --client-optimizer sgd
        --server-momentum 0.9)

simulate() {  # simulate NAME ARGS...: one federated run from the model $START, resumable
    local out="$RUNS/$1"
    shift
    if [ -f "$out/model.pt" ]; then echo "done: $out"; return; fi
    if [ -f "$out/checkpoint.pt" ]; then
        $EMOFL simulate --out "$out" --rounds 40 --resume
    else
        $EMOFL simulate "${COMMON[@]}" --init-model "$START" --out "$out" "$@"
    fi
}

finetune() {  # finetune MODEL ON OUT ARGS...: central non-private fine-tuning, the ceiling
    local model=$1 on=$2 out=$3
    shift 3
    [ -f "$out" ] || $PYTHON -m emofl.simulations.benchmarks.central_finetune "$model" \
        "$FER/train" "$FER/val" --on "$on" --epochs 10 --out "$out" "$@"
}

START="$PUBLIC"
# The shipped model: the head only, 5 DP-SGD steps per round, ε = 8.
simulate dp_head_eps8 --epsilon 8 --trainable head --local-steps 5 --lr 0.5
# Every layer, one DP-SGD step per round, ε = 8; and its ε = ∞ twin.
simulate dpsgd_eps8 --epsilon 8 --local-steps 1 --lr 0.1
simulate nodp_twin --no-dp --local-steps 1 --lr 0.1
# The shipped recipe at smaller budgets.
simulate dp_head_eps3 --epsilon 3 --trainable head --local-steps 5 --lr 0.5
simulate dp_head_eps1 --epsilon 1 --trainable head --local-steps 5 --lr 0.5
# The projection and the head (16k parameters), 5 DP-SGD steps per round, ε = 8; its ε = ∞
# twin; and every layer without DP over the longer schedule (200 steps, not 40).
simulate dp_projection_eps8 --epsilon 8 --trainable projection --local-steps 5 --lr 0.5
simulate nodp_projection --no-dp --trainable projection --local-steps 5 --lr 0.5
simulate nodp_twin_200steps --no-dp --local-steps 5 --lr 0.05
# The ceiling of fine-tuning the public model: central, non-private, 10 epochs.
finetune "$PUBLIC" private "$RUNS/finetune/central_private.json"
finetune "$PUBLIC" private "$RUNS/finetune/central_private_lr3e-3.json" --lr 3e-3
finetune "$PUBLIC" all "$RUNS/finetune/central_all.json"

# A smaller public share (a quarter of train), so that the private stage has more to teach:
# its public model, the ceiling of fine-tuning it, the DP stage on every layer and on the head,
# and the ε = ∞ twin of every layer.
QUARTER="$RUNS/frac25/public_vgg16.pt"
[ -f "$QUARTER" ] || $EMOFL pretrain --data "$FER/train" --val-data "$FER/val" \
    --public-fraction 0.25 --seed 0 --epochs 50 --batch-size 128 --lr 3e-3 --weight-decay 5e-4 \
    --label-smoothing 0.1 --model-kind vgg --model-width 16 --model-pool average --out "$QUARTER"
finetune "$QUARTER" private "$RUNS/frac25/central_private.json"
START="$QUARTER"
simulate frac25/dpsgd_eps8 --epsilon 8 --local-steps 1 --lr 0.1
simulate frac25/dp_head_eps8 --epsilon 8 --trainable head --local-steps 5 --lr 0.5
simulate frac25/nodp_twin --no-dp --local-steps 1 --lr 0.1
