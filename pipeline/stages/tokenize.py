"""The tokenize stage: quantised scores -> Extended REMI ids, written to tokens.parquet.

`TokenizeStage` is the DVC stage (see `stages.base`): its input is already meter-normalised and
quantised by the earlier stages, so it only encodes. Outside the build, one score goes the same
way through `pipeline.tokenizer.chain.tokenize_score`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipeline.errors import TokenizeError
from pipeline.ledger import Decision, quarantined
from pipeline.score import Score
from pipeline.stages.base import ItemStage, Result, Stage, Tally, stage_input
from pipeline.stages.meter import COLUMNS as METER_COLUMNS
from pipeline.stages.quantize import COLUMNS as QUANTIZE_COLUMNS
from pipeline.tokenizer import Tokenizer
from pipeline.tokenizer.vocab import Vocab, VocabConfig

# -- the DVC stage ---------------------------------------------------------------------------
STAGE = "tokenize"

# Metadata columns carried from the earlier stages' rows into tokens.parquet (and the shards).
CARRIED = [
    pa.field("id", pa.string()),  # the piece id: <corpus>/<relative path>[#X:<n>]
    pa.field("corpus", pa.string()),
    pa.field("genre", pa.string()),
    pa.field("composer", pa.string()),  # the label (may be outside the vocabulary)
    pa.field("title", pa.string()),
    pa.field("reader", pa.string()),  # fast | reference | reader_fallback:<what>
    pa.field("notes", pa.uint32()),
    pa.field("source_notes", pa.uint32()),  # as written in the source; null: not counted (MIDI)
    *METER_COLUMNS,
    *QUANTIZE_COLUMNS,
]
TOKEN_COLUMNS = [
    pa.field("composer_token", pa.string()),  # Composer_<name> or Composer_None
    pa.field("tempo_bin", pa.uint8()),  # index into vocab tempo_bins
    pa.field("bars", pa.uint32()),
    pa.field("token_count", pa.uint32()),
    pa.field("tokens", pa.list_(pa.uint16())),
    pa.field("bar_offsets", pa.list_(pa.uint32())),  # index of each Bar token in `tokens`
    pa.field("meters", pa.list_(pa.string())),  # meter of each bar after normalisation
    pa.field("durations_clipped", pa.uint32()),
    pa.field("unison_merged", pa.uint32()),
]
TOKENS_SCHEMA = pa.schema([*CARRIED, *TOKEN_COLUMNS])


class TokenizeStage(ItemStage):
    """Encode every quantised score in Extended REMI: tokens.parquet, vocab.json, decisions.

    Items an earlier stage after quantize rejected are skipped; an encoding failure quarantines
    the piece (`tokenize`).
    """

    writes = "rows"
    row_schema = TOKENS_SCHEMA
    rows_file = "tokens.parquet"

    def __init__(self, configs: Mapping[str, Any], inputs: Mapping[str, Path]) -> None:
        self.vocab = Vocab(configs["vocab"])
        self.tokenizer = Tokenizer(self.vocab)
        if max(len(self.vocab), 1) > 2**16:
            raise TokenizeError(
                f"a vocabulary of {len(self.vocab)} tokens does not fit uint16 shards"
            )
        self.bar_id = self.vocab.index["Bar"]
        self.known = set(self.vocab.config.composers)

    def transform(self, row: dict[str, Any], score: Score) -> Result:
        """The tokens row of one prepared score, or a quarantine decision."""
        vocab = self.vocab
        composer = row.get("composer") if row.get("composer") in self.known else None
        try:
            encoding = self.tokenizer.encode_with_report(score, composer)
        except TokenizeError as exc:
            return Decision.of(row, STAGE, quarantined("tokenize"), str(exc))
        ids = encoding.ids
        out = {f.name: row.get(f.name) for f in CARRIED}
        out.update(
            composer_token=vocab.tokens[ids[0]],
            tempo_bin=ids[1] - vocab.tempo_base,
            bars=len(score.bars),
            token_count=len(ids),
            tokens=ids,
            bar_offsets=[i for i, t in enumerate(ids) if t == self.bar_id],
            meters=[str(b.meter) for b in score.bars],
            durations_clipped=encoding.report.get("durations_clipped", 0),
            unison_merged=encoding.report.get("unison_merged", 0),
        )
        return out

    def count(self, result: Result, counts: Counter[str]) -> None:
        """Tokens, and composer labels that have no Composer token."""
        if isinstance(result, dict):
            counts["tokens"] += result["token_count"]
            if result["composer"] and result["composer_token"] == "Composer_None":
                counts[UNTOKENED + result["composer"]] += 1

    def finish(self, out_dir: Path) -> None:
        """vocab.json beside tokens.parquet (the shard stage copies it)."""
        self.vocab.save(out_dir / "vocab.json")

    def report(self, tally: Tally, out_dir: Path) -> tuple[dict[str, Any], list[str], list[str]]:
        """Pieces, tokens, quarantines and the vocabulary's hash; a note on untokened composers."""
        vocab, n, quarantines = self.vocab, tally.written, len(tally.decisions)
        info = {"pieces": n, "tokens": tally.counts["tokens"], "quarantined": quarantines,
                "vocab_hash": vocab.hash}  # fmt: skip
        line = (
            f"tokenize: {n} pieces, {info['tokens']:,} tokens ({quarantines} quarantined); "
            f"vocabulary {len(vocab)} tokens, hash {vocab.hash[:12]}; wrote {out_dir}"
        )
        untokened = [(k.removeprefix(UNTOKENED), v) for k, v in tally.counts.most_common()
                     if k.startswith(UNTOKENED)]  # fmt: skip
        # A label without a token is legitimate (pre-training data); say so, never silently.
        notes = [
            "note: composers without a Composer token (encoded as Composer_None, label kept in "
            "the `composer` column; add them to vocab.composers for a token): "
            + ", ".join(f"{name} ({count})" for name, count in untokened)
        ] if untokened else []  # fmt: skip
        return info, [line], notes


UNTOKENED = "untokened:"  # counter key prefix: a composer label without a Composer token

SPEC = Stage(
    STAGE,
    sections={"vocab": VocabConfig},
    inputs=(stage_input("quantize"),),
    columns=tuple(TOKEN_COLUMNS),
    decides=True,
    item=TokenizeStage,
)
