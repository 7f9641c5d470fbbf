"""The paper's claims at small scale: one evaluation, the same for every row (issue 16).

    python bench/reproduction.py --shards data/full/shards \\
        --row "GnM (adapters, frozen backbone)=models/gnm-small" \\
        --row "GnM (full fine-tune)=out/runs/gnm-small/full" \\
        --row "Scratch (four composers only)=out/runs/gnm-small/scratch" \\
        --real --backbone models/gnm-small

Each model row (NAME=a run or a released model):
  * validation loss per composer: every bar-aligned window of that composer's valid split;
  * `--samples` pieces of `--bars` bars per composer, sample i drawn with seed i (temperature
    0.9, top-p 0.95), evaluated by `gnm eval`'s `evaluate_samples` against the real test split:
    the share the composer classifier gives back to their composer, the overlapping area (OA)
    of each metric's distribution with the composer's real pieces, the n-gram repetition rate,
    and memorisation (the longest run of bars shared with the training split; flagged at > 4).
Real pieces are cut into segments of `--bars` bars to compare like with like (most metrics depend
on length). The Real row is the valid split's segments (up to `--samples` per composer) in the
samples' place: the ceiling. Its classifier figure is the grouped cross-validation recall, since the classifier
is fitted on every split. With `--backbone`, the pre-trained model (the released model with the
adapters where pre-training left them) samples Composer_None, compared with the folk genre.

Rows already in --out are kept, so rows can come from different sessions; `--redo` recomputes the
named ones. `--render N` also renders N samples per composer of the first row (WAV and the
engraved first page) into WORK/<row>/report/.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gnm_model import metrics as M  # noqa: E402
from gnm_model.data import TokenSplit, evaluation_batches  # noqa: E402
from gnm_model.generate import SampleConfig, Sampler  # noqa: E402
from gnm_model.report import (  # noqa: E402
    Fitted,
    bar_segments,
    evaluate_samples,
    load_samples,
    reference_metrics,
)
from gnm_model.sampling import load_model, with_extension, write_sample  # noqa: E402
from gnm_model.train import evaluate  # noqa: E402
from gnm_model.transformer import GnMTransformer  # noqa: E402
from pipeline.errors import GnmError  # noqa: E402
from pipeline.io.atomic import write_text_atomic  # noqa: E402
from pipeline.io.shards import ShardSet, open_shards  # noqa: E402
from pipeline.tokenizer import Tokenizer  # noqa: E402
from pipeline.tokenizer.vocab import DEFAULT_COMPOSERS  # noqa: E402

OA_METRICS = ("pitch_class_entropy", "groove_consistency", "scale_consistency")
SAMPLING = SampleConfig(bars=32, temperature=0.9, top_p=0.95)
FLAG_BARS = 4  # a sample sharing more bars than this with one training piece is a near-copy


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()


def composer_losses(
    model: GnMTransformer, shards: ShardSet, composers: list[str]
) -> dict[str, float]:
    """Token-weighted loss over every window of each composer's valid split."""
    out = {}
    for composer in composers:
        try:
            data = TokenSplit.load(shards, "valid", [composer])
        except GnmError:  # no valid piece of this composer
            out[composer] = math.nan
            continue
        batches = evaluation_batches(data, model.cfg.context, 16, 10**6, True)
        with torch.no_grad():
            out[composer] = round(evaluate(model, batches, torch.device("cpu")), 4)
    return out


def write_samples(
    model: GnMTransformer, shards: ShardSet, composer: str | None, n: int, bars: int, folder: Path
) -> None:
    """Samples 0..n-1 of `composer` as token JSON files; sample i is drawn with seed i."""
    sampler = Sampler(model, shards.vocab)
    cfg = SampleConfig(bars=bars, temperature=SAMPLING.temperature, top_p=SAMPLING.top_p)
    for i in range(n):
        stem = folder / f"{composer or 'None'}-{i:03d}"
        if not with_extension(stem, ".json").is_file():
            write_sample(sampler, composer, cfg, i, stem, scores=False)


def write_real(shards: ShardSet, composers: list[str], n: int, bars: int, folder: Path) -> None:
    """Up to n `bars`-bar segments of valid-split pieces per composer, as samples."""
    folder.mkdir(parents=True, exist_ok=True)
    eos = shards.vocab.index["EOS"]
    for composer in composers:
        try:
            data = TokenSplit.load(shards, "valid", [composer])
        except GnmError:  # no valid piece of this composer
            continue
        segments = []
        for i in range(len(data.ids)):
            piece = [int(t) for t in data.piece(i)]
            offsets = [int(b) for b in data.bar_starts[i]]
            segments += [(data.ids[i], ids) for ids in bar_segments(piece, offsets, bars, eos)]
        for k, (piece_id, ids) in enumerate(segments[:n]):
            body = {"composer": composer, "piece": piece_id, "ids": ids}
            (folder / f"{composer}-{k:03d}.json").write_text(json.dumps(body) + "\n")


def _oa(report: dict[str, Any], group: str, metric: str) -> float:
    for row in report["metric_table"]:
        if row["group"] == group and row["metric"] == metric:
            return float(row["overlap"])
    return math.nan


def summarise(report: dict[str, Any], composers: list[str]) -> dict[str, Any]:
    """Per composer and averaged: classifier, OA per metric, repetition, memorisation."""
    structure = sorted(
        {r["metric"] for r in report["metric_table"] if r["metric"].startswith("structure_")}
    )
    per: dict[str, dict[str, Any]] = {}
    for c in composers:
        mine = [s for s in report["samples"] if s["composer"] == c and s["metrics"]]
        mem = [s["memorisation"] for s in mine if s["memorisation"]]
        per[c] = {
            "samples": len(mine),
            "classifier_accuracy": (
                sum(s["predicted"] == c for s in mine) / len(mine) if mine else math.nan
            ),
            "oa": {m: _oa(report, c, m) for m in (*OA_METRICS, *structure)},
            "ngram_repetition_rate": float(
                np.mean([s["metrics"]["ngram_repetition_rate"] for s in mine])
            )
            if mine
            else math.nan,
            "longest_shared_bars": max((m["longest_bar_run"] for m in mem), default=0),
            "near_copies": sum(m["longest_bar_run"] > FLAG_BARS for m in mem),
        }
    return {"per_composer": per, "mean": _means(per)}


def _means(per: dict[str, dict[str, Any]]) -> dict[str, Any]:
    def mean(values: list[float]) -> float:
        finite = [v for v in values if not math.isnan(v)]
        return round(float(np.mean(finite)), 4) if finite else math.nan

    rows = list(per.values())
    return {
        "classifier_accuracy": mean([r["classifier_accuracy"] for r in rows]),
        "oa": {m: mean([r["oa"][m] for r in rows]) for m in rows[0]["oa"]} if rows else {},
        "ngram_repetition_rate": mean([r["ngram_repetition_rate"] for r in rows]),
        "longest_shared_bars": max((r["longest_shared_bars"] for r in rows), default=0),
        "near_copies": sum(r["near_copies"] for r in rows),
    }


def evaluate_folder(args: argparse.Namespace, shards: ShardSet, folder: Path, out: Path) -> Any:
    samples = load_samples(folder, Tokenizer(shards.vocab))
    return evaluate_samples(shards, samples, out, args.composers, 100, None, log=print,
                            reference_bars=args.bars, fitted=args.fitted)  # fmt: skip


def model_row(
    args: argparse.Namespace, name: str, path: Path, shards: ShardSet, old: dict[str, Any] | None
) -> dict[str, Any]:
    work = args.work / slug(name)
    model = load_model(path, shards.vocab)
    started = time.perf_counter()
    if args.keep_losses and old and old.get("source") == str(path) and old.get("valid_loss"):
        losses = {c: math.nan if v is None else v for c, v in old["valid_loss"].items()}
    else:
        losses = composer_losses(model, shards, args.composers)
    print(f"{name}: valid loss per composer {losses}", flush=True)
    for c in args.composers:
        write_samples(model, shards, c, args.samples, args.bars, work / "samples")
        print(f"{name}: {args.samples} samples of {c} in {time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip
    report = evaluate_folder(args, shards, work / "samples", work / "report")
    row = summarise(report, args.composers)
    row.update(source=str(path), valid_loss=losses, seconds=round(time.perf_counter() - started))
    known = [v for v in losses.values() if not math.isnan(v)]
    row["mean"]["valid_loss"] = round(float(np.mean(known)), 4) if known else math.nan
    return row


def real_row(args: argparse.Namespace, shards: ShardSet) -> dict[str, Any]:
    work = args.work / "real"
    if work.exists():
        shutil.rmtree(work)
    write_real(shards, args.composers, args.samples, args.bars, work / "samples")
    report = evaluate_folder(args, shards, work / "samples", work / "report")
    row = summarise(report, args.composers)
    cv = report["classifier"]["cross_validation"]
    for c in args.composers:
        row["per_composer"][c]["classifier_accuracy"] = cv["per_composer_recall"][c]
    row["mean"] = _means(row["per_composer"])
    row["source"] = "valid split (samples' place) against the test split; classifier: grouped CV"
    return row


def backbone_row(args: argparse.Namespace, shards: ShardSet) -> dict[str, Any]:
    """Composer_None samples of the pre-trained model against the folk genre's real pieces."""
    work = args.work / "backbone"
    model = load_model(args.backbone, shards.vocab, pretrained=True)
    write_samples(model, shards, None, args.samples, args.bars, work / "samples")
    tokenizer = Tokenizer(shards.vocab)
    generated = []
    for sample in load_samples(work / "samples", tokenizer):
        score = tokenizer.decode_full(sample.ids, strict=True, score_id=sample.name).score
        generated.append(M.all_metrics(score))
    folk = {"folk": lambda r: bool(r["genre"] == "folk")}
    real = reference_metrics(shards, folk, 100, args.bars)["folk"]
    oa = {}
    for metric in (*OA_METRICS, "ngram_repetition_rate"):
        oa[metric] = round(
            M.overlapping_area([g[metric] for g in generated], [r[metric] for r in real]), 4
        )
    return {
        "source": f"{args.backbone} (adapters as pre-training left them), Composer_None",
        "compared_with": f"genre folk, {len(real)} test pieces or {args.bars}-bar segments",
        "samples": len(generated),
        "oa": oa,
        "ngram_repetition_rate": round(
            float(np.mean([g["ngram_repetition_rate"] for g in generated])), 4
        ),
        "real_ngram_repetition_rate": round(
            float(np.mean([r["ngram_repetition_rate"] for r in real])), 4
        ),
    }


def render(args: argparse.Namespace, name: str, shards: ShardSet) -> None:
    from gnm_model.render import find_soundfont

    work = args.work / slug(name)
    folder = work / "render-samples"
    folder.mkdir(parents=True, exist_ok=True)
    for c in args.composers:
        for i in range(args.render):
            shutil.copy(work / "samples" / f"{c}-{i:03d}.json", folder)
    samples = load_samples(folder, Tokenizer(shards.vocab))
    font = find_soundfont(None)
    evaluate_samples(shards, samples, work / "report-rendered", args.composers, 100, font, log=print,
                     reference_bars=args.bars, fitted=args.fitted)  # fmt: skip


def _cell(value: Any, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def markdown(result: dict[str, Any]) -> str:
    """The table of docs/model.md: one line per row and composer, then the folk comparison."""
    head = ("| Row | Composer | Valid loss | Classifier | OA pitch-class entropy | OA groove | "
            "OA scale | OA structure (short/mid/long) | 4-gram repetition | Longest shared bars | Near-copies |")  # fmt: skip
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, row in result["rows"].items():
        if "per_composer" not in row:
            continue
        for composer, c in [*row["per_composer"].items(), ("mean", row["mean"])]:
            oa = c["oa"]
            structure = "/".join(_cell(oa.get(f"structure_{k}")) for k in ("short", "mid", "long"))
            loss = (
                row.get("valid_loss", {}).get(composer)
                if composer != "mean"
                else row["mean"].get("valid_loss")
            )
            lines.append(
                f"| {name} | {composer} | {_cell(loss, 3)} | {_cell(c['classifier_accuracy'])} | "
                f"{_cell(oa.get('pitch_class_entropy'))} | {_cell(oa.get('groove_consistency'))} | "
                f"{_cell(oa.get('scale_consistency'))} | {structure} | {_cell(c['ngram_repetition_rate'])} | "
                f"{c['longest_shared_bars']} | {c['near_copies']} |"
            )  # fmt: skip
    for name, row in result["rows"].items():
        if "per_composer" in row:
            continue
        oa = row["oa"]
        lines += ["", f"{name}: {row['samples']} samples against {row['compared_with']}: OA pitch-class "
                  f"entropy {_cell(oa['pitch_class_entropy'])}, groove {_cell(oa['groove_consistency'])}, "
                  f"scale {_cell(oa['scale_consistency'])}; 4-gram repetition {_cell(row['ngram_repetition_rate'])} "
                  f"(real {_cell(row['real_ngram_repetition_rate'])})."]  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shards", type=Path, default=ROOT / "data/full/shards")
    parser.add_argument("--row", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--real", action="store_true", help="Add the Real (valid split) row.")
    parser.add_argument("--backbone", type=Path, default=None, help="Add the folk row from it.")
    parser.add_argument("--composers", default=",".join(DEFAULT_COMPOSERS))
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--bars", type=int, default=32)
    parser.add_argument("--render", type=int, default=0)
    parser.add_argument("--redo", action="store_true", help="Recompute the named rows.")
    parser.add_argument("--keep-losses", action="store_true", help="With --redo: keep a model row's validation losses (they do not depend on the evaluation).")  # fmt: skip
    parser.add_argument("--threads", type=int, default=max(1, min(2, os.cpu_count() or 1)), help="Torch threads (1 beside a training run: two busy-waiting thread pools on 2 cores slow both many times).")  # fmt: skip
    parser.add_argument("--work", type=Path, default=ROOT / "out/reproduction")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/reproduction.json")
    parser.add_argument("--markdown", action="store_true", help="Print --out as a table; compute nothing.")  # fmt: skip
    args = parser.parse_args()
    if args.markdown:
        print(markdown(json.loads(args.out.read_text())), end="")
        return
    args.composers = [c.strip() for c in args.composers.split(",") if c.strip()]
    args.fitted = Fitted()  # the classifier and the training index, fitted once for every row
    torch.set_num_threads(args.threads)
    shards = open_shards(args.shards)
    result = json.loads(args.out.read_text()) if args.out.is_file() else {"rows": {}}
    settings = {"samples": args.samples, "bars": args.bars, "temperature": SAMPLING.temperature,
                "top_p": SAMPLING.top_p, "seeds": f"0..{args.samples - 1}", "shards": str(args.shards),
                "composers": args.composers, "near_copy_bars": FLAG_BARS}  # fmt: skip
    if result.get("settings", settings) != settings:
        print("settings differ from the rows in --out: recomputing every named row", flush=True)
        result = {"rows": {}}
    result.update(format="gnm-reproduction/1", settings=settings)
    todo: list[tuple[str, Any]] = []
    for item in args.row:
        name, _, path = item.partition("=")
        old = result["rows"].get(name)
        todo.append((name, lambda n=name, p=Path(path), o=old: model_row(args, n, p, shards, o)))
    if args.real:
        todo.append(("Real (valid-split segments)", lambda: real_row(args, shards)))
    if args.backbone is not None:
        todo.append(("Backbone (Composer_None) vs folk", lambda: backbone_row(args, shards)))
    for name, compute in todo:
        if name in result["rows"] and not args.redo:
            print(f"{name}: kept from {args.out}", flush=True)
            continue
        result["rows"][name] = compute()
        result["machine"] = {"cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__}  # fmt: skip
        write_text_atomic(args.out, json.dumps(finite(result), indent=1) + "\n")
        print(f"{name}: {json.dumps(finite(result['rows'][name].get('mean', result['rows'][name])))}", flush=True)  # fmt: skip
    if args.render and args.row:
        render(args, args.row[0].partition("=")[0], shards)


def finite(value: Any) -> Any:
    """`value` with every NaN replaced by None (strict JSON)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


if __name__ == "__main__":
    main()
