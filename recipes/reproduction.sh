#!/usr/bin/env bash
# The reproduction table of docs/model.md (issue 16): the paper's ablations at small scale, each
# for the same 1,500 steps of 16 x 512 tokens, the same learning rate (1e-3, 200 warmup steps,
# cosine) and seed as the released model's adapter stage, then one evaluation of every row.
#
#   bash recipes/gnm-small.sh        # first: the pre-training and the released model
#   bash recipes/reproduction.sh     # then: about 1.5 hours on 2 CPU cores
#
# Rows: GnM (adapters over the frozen backbone: models/gnm-small), GnM with every parameter
# fine-tuned (what the paper's released code does), Scratch (the same preset trained only on the
# four composers, no pre-training), Real (the valid split against the test split), and the
# pre-trained backbone's Composer_None samples against the folk genre. Resumable like the
# recipe: finished runs and finished rows are kept.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-out/runs/gnm-small}
MODEL=${MODEL:-models/gnm-small}
SHARDS=${SHARDS:-data/full/shards}
GNM=${GNM:-.venv/bin/gnm}
PYTHON=${PYTHON:-.venv/bin/python}
COMPOSERS=Bach,Beethoven,Mozart,Chopin
SAME=(--shards "$SHARDS" --composers "$COMPOSERS" --steps 1500 --batch-size 16 --lr 1e-3
      --warmup 200 --eval-every 250 --checkpoint-every 250 --seed 0 --resume)

"$GNM" train finetune --from "$RUNS/pretrain" --mode full "${SAME[@]}" --out "$RUNS/full"
"$GNM" train scratch --preset small "${SAME[@]}" --out "$RUNS/scratch"

"$PYTHON" bench/reproduction.py --shards "$SHARDS" \
  --row "GnM (adapters, frozen backbone)=$MODEL" \
  --row "GnM (full fine-tune)=$RUNS/full" \
  --row "Scratch (four composers only)=$RUNS/scratch" \
  --real --backbone "$MODEL" --render 4
