#!/usr/bin/env bash
# The reference model's recipe (issue 16): the `small` preset (about 2M parameters) pre-trained on
# every genre of the full profile (Generality), then its style adapters fine-tuned on Bach,
# Beethoven, Mozart and Chopin with the backbone frozen (Mastery), then exported to models/.
# Seeded and resumable: run it again after an interruption and each stage continues from its
# latest checkpoint with the same losses (the trainer checkpoints its RNG state; `--resume`
# refuses changed settings). A finished stage is not trained again.
#
#   bash recipes/gnm-small.sh            # everything; on 2 CPU cores it takes about 3 hours
#
# Pre-training: 8,000 steps of 16 x 512 tokens (65M tokens, about six passes over the full
# profile's 10.9M training tokens, with +-5 semitone transposition), AdamW at 1e-3 with 500
# warmup steps and cosine decay; validation every 250 steps.
# Adapters: 1,500 steps of 16 x 512 tokens (12M tokens, about seven passes over the four
# composers' 1.7M training tokens, composers balanced), AdamW at 1e-3, 200 warmup steps.
# Then the export (gnm train export) and 4 samples of 32 bars per composer in $MODEL/samples.
#
# Environment (defaults in brackets); the test suite shrinks the recipe with these to check that
# it reproduces its first checkpoint bit for bit:
#   RUNS [out/runs/gnm-small]  MODEL [models/gnm-small]  SHARDS [data/full/shards]
#   PRESET [small]  PRETRAIN_STEPS [8000]  ADAPTER_STEPS [1500]  EVERY [250]  SAMPLE_BARS [32]
#   GNM [.venv/bin/gnm]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-out/runs/gnm-small}
MODEL=${MODEL:-models/gnm-small}
SHARDS=${SHARDS:-data/full/shards}
PRESET=${PRESET:-small}
PRETRAIN_STEPS=${PRETRAIN_STEPS:-8000}
ADAPTER_STEPS=${ADAPTER_STEPS:-1500}
EVERY=${EVERY:-250}
SAMPLE_BARS=${SAMPLE_BARS:-32}
GNM=${GNM:-.venv/bin/gnm}

if [ ! -f "$SHARDS/index.json" ]; then
  echo "recipe: $SHARDS is missing; build it first: $GNM data build --profile full" >&2
  exit 1
fi

"$GNM" train pretrain --shards "$SHARDS" --preset "$PRESET" \
  --steps "$PRETRAIN_STEPS" --batch-size 16 --lr 1e-3 --warmup 500 \
  --eval-every "$EVERY" --checkpoint-every "$EVERY" --seed 0 \
  --resume --out "$RUNS/pretrain"

"$GNM" train finetune --from "$RUNS/pretrain" --shards "$SHARDS" \
  --composers Bach,Beethoven,Mozart,Chopin --mode adapters \
  --steps "$ADAPTER_STEPS" --batch-size 16 --lr 1e-3 --warmup 200 \
  --eval-every "$EVERY" --checkpoint-every "$EVERY" --seed 0 \
  --resume --out "$RUNS/adapters"

"$GNM" train export --run pretrain="$RUNS/pretrain" --run adapters="$RUNS/adapters" \
  --out "$MODEL" --name gnm-small --recipe recipes/gnm-small.sh \
  --command "bash recipes/gnm-small.sh (RUNS=$RUNS SHARDS=$SHARDS PRESET=$PRESET PRETRAIN_STEPS=$PRETRAIN_STEPS ADAPTER_STEPS=$ADAPTER_STEPS EVERY=$EVERY)"

SAMPLING=(--bars "$SAMPLE_BARS" --n 4 --seed 0 --temperature 0.9 --top-p 0.95)
for composer in Bach Beethoven Mozart Chopin; do
  "$GNM" generate --run "$MODEL" --composer "$composer" "${SAMPLING[@]}" --out "$MODEL/samples"
done
cat > "$MODEL/samples/README.md" <<EOF
# Samples of $(basename "$MODEL")

Made by \`bash recipes/gnm-small.sh\` right after the export, for each composer:

    gnm generate --run $MODEL --composer <composer> ${SAMPLING[*]} --out $MODEL/samples

Sample i is drawn with seed i; each has tokens (.json), MIDI and MusicXML. They are the first
four samples per composer of the reproduction table's GnM row (bench/reproduction.py draws the
same seeds with the same settings). Render one with \`gnm render <file>.mid\` (WAV and the
engraved first page); docs/model.md describes what they look and sound like.
EOF
