#!/usr/bin/env bash
# The reference model's recipe (issue 16): the `small` preset (about 2M parameters) pre-trained on
# every genre of the full profile (Generality), then its style adapters fine-tuned on Bach,
# Beethoven, Mozart and Chopin with the backbone frozen (Mastery). Seeded and resumable: run it
# again after an interruption and each stage continues from its latest checkpoint with the same
# losses (the trainer checkpoints its RNG state; `--resume` refuses changed settings).
#
#   bash recipes/gnm-small.sh            # everything; on 2 CPU cores the pre-training takes hours
#   RUNS=/somewhere bash recipes/gnm-small.sh   (default: out/runs/gnm-small, not tracked)
#
# Pre-training: 8,000 steps of 16 x 512 tokens (65M tokens, about six passes over the full
# profile's 10.9M training tokens, with +-5 semitone transposition), AdamW at 1e-3 with 500
# warmup steps and cosine decay; validation every 250 steps.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-out/runs/gnm-small}
GNM=${GNM:-.venv/bin/gnm}
SHARDS=data/full/shards

if [ ! -f "$SHARDS/index.json" ]; then
  echo "recipe: $SHARDS is missing; build it first: $GNM data build --profile full" >&2
  exit 1
fi

"$GNM" train pretrain --shards "$SHARDS" --preset small \
  --steps 8000 --batch-size 16 --lr 1e-3 --warmup 500 \
  --eval-every 250 --checkpoint-every 250 --seed 0 \
  --resume --out "$RUNS/pretrain"

"$GNM" train finetune --from "$RUNS/pretrain" --shards "$SHARDS" \
  --composers Bach,Beethoven,Mozart,Chopin --mode adapters \
  --steps 3000 --batch-size 16 --lr 1e-3 --warmup 200 \
  --eval-every 250 --checkpoint-every 250 --seed 0 \
  --resume --out "$RUNS/adapters"
