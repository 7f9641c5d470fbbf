"""`gnm quickstart`: the main job on the embedded default data, within a time budget.

1. Build the `default` profile (music21's bundled corpus) with `gnm data build`.
2. Pre-train the `small` preset on every genre (Composer_None) for about 2/3 of the time left.
3. Fine-tune its adapters on Bach, Beethoven, Mozart and Chopin for the remaining third.
4. Generate one piece per composer (tokens JSON, MIDI, MusicXML) and print where they are.

Step counts are set from a short timing of the training step on this machine, so the learning
rate schedule runs to its end inside the budget; `max_seconds` is a hard stop besides. When the
build left less than `MIN_TRAIN_S`, training still gets that and the job says by how much it
goes over, then finishes with exit 0: the budget is a target, not a reason to throw the build away.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import click

from gnm_model.config import PRESETS
from pipeline.tokenizer.vocab import DEFAULT_COMPOSERS

COMPOSERS = DEFAULT_COMPOSERS  # fine-tuned on, one piece generated for each
MIN_TRAIN_S = 240.0  # training time given even when the build overran the budget (seconds)


def training_seconds(available: float) -> tuple[float, float]:
    """(seconds to train, seconds over budget) when `available` seconds are left for training.

    A slow machine must still get a model: when the build left less than `MIN_TRAIN_S`, train
    that minimum and report by how much the budget is exceeded, rather than fail after the build
    did its work.
    """
    if available >= MIN_TRAIN_S:
        return available, 0.0
    return MIN_TRAIN_S, MIN_TRAIN_S - available


def _seconds_per_step(preset_name: str, batch_size: int, vocab: Any, mode: str) -> float:
    """Time a few optimizer steps of the preset on random tokens (after one warm-up step)."""
    import torch

    from gnm_model.config import preset
    from gnm_model.train import loss_of
    from gnm_model.transformer import GnMTransformer

    model = GnMTransformer(preset(preset_name).for_vocab(vocab))
    if mode == "adapters":
        for _, p in model.backbone_parameters():
            p.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    ctx = model.cfg.context
    x = torch.randint(0, len(vocab), (batch_size, ctx))
    rows = torch.zeros(batch_size, dtype=torch.long)
    started = 0.0
    for i in range(4):
        if i == 1:
            started = time.perf_counter()
        loss_of(model, x, x, rows).backward()
        opt.step()
        opt.zero_grad()
    return (time.perf_counter() - started) / 3


@click.command()
@click.option(
    "--minutes", type=float, default=20.0, show_default=True, help="Budget for the whole job."
)
@click.option(
    "--preset", "preset_name", type=click.Choice(list(PRESETS)), default="small", show_default=True
)
@click.option("--batch-size", type=int, default=8, show_default=True)
@click.option("--bars", type=int, default=16, show_default=True, help="Bars per generated piece.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("out/quickstart"), show_default=True)  # fmt: skip
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True, help="Repository root.")  # fmt: skip
@click.option("--seed", type=int, default=0, show_default=True)
def quickstart(minutes: float, preset_name: str, batch_size: int, bars: int, out_dir: Path, root: Path, seed: int) -> None:  # fmt: skip
    """Build the default data, pre-train, fine-tune adapters, generate one piece per composer.

    Aims at the given time budget on a CPU (the paper-size model needs a GPU: `gnm train`):
    training gets what the build left, but at least 4 minutes, and the job says when that takes
    it over budget. Previous runs in --out are replaced.

    \b
    Example:
      gnm quickstart --minutes 20
    """
    import torch

    from gnm_model import checkpoint as ckpt
    from gnm_model.config import preset
    from gnm_model.generate import SampleConfig, Sampler
    from gnm_model.train import TrainConfig, train
    from gnm_model.transformer import GnMTransformer
    from pipeline.build import build
    from pipeline.io.shards import open_shards
    from pipeline.tokenizer import Tokenizer
    from pipeline.writers import write_score

    started = time.perf_counter()
    budget = 60 * minutes

    def left() -> float:
        return budget - (time.perf_counter() - started)

    click.echo(f"[1/4] building the default profile (budget {minutes:g} min)")
    build(root, "default", echo=click.echo)
    shards = open_shards(root / "data/default/shards")
    runs = out_dir / "runs"
    if runs.exists():
        shutil.rmtree(runs)
    reserve = 60.0  # generation and writing
    build_s = time.perf_counter() - started
    click.echo(f"[1/4] build finished in {build_s / 60:.1f} min")
    train_s, overrun = training_seconds(left() - reserve)
    if overrun > 0:
        click.echo(
            f"warning: the build left {max(0.0, left() - reserve):.0f} s for training; training "
            f"the minimum of {MIN_TRAIN_S:.0f} s, so the job exceeds its {minutes:g} min budget "
            f"by about {overrun / 60:.1f} min",
            err=True,
        )
    train_end = time.perf_counter() + train_s
    summaries: dict[str, Any] = {}
    for stage, share, mode in (("pretrain", 2 / 3, "pretrain"), ("finetune", 1.0, "adapters")):
        seconds = (train_end - time.perf_counter()) * share
        per_step = _seconds_per_step(preset_name, batch_size, shards.vocab, mode)
        steps = max(10, int(0.85 * (seconds - 15) / per_step))  # 15 s: loading and evaluation
        cfg = TrainConfig(
            steps=steps, batch_size=batch_size, lr=1e-3 if stage == "pretrain" else 2e-3,
            warmup=max(1, steps // 20), eval_every=max(1, steps // 4), checkpoint_every=max(1, steps // 4),
            eval_batches=4, seed=seed, max_seconds=seconds,
        )  # fmt: skip
        click.echo(f"[{2 if stage == 'pretrain' else 3}/4] {stage}: {preset_name}, {steps} steps "
                   f"(~{per_step:.2f} s each), {seconds / 60:.1f} min")  # fmt: skip
        if stage == "pretrain":
            summaries[stage] = train(
                runs / "pretrain", preset(preset_name), shards, cfg, "pretrain", echo=click.echo
            )
        else:
            init = ckpt.load(ckpt.latest(runs / "pretrain"), shards.vocab)
            summaries[stage] = train(runs / "finetune", init.config, shards, cfg, "adapters", list(COMPOSERS),
                                     init=init, echo=click.echo)  # fmt: skip
    click.echo("[4/4] generating one piece per composer")
    loaded = ckpt.load(ckpt.latest(runs / "finetune"), shards.vocab)
    model = GnMTransformer(loaded.config.for_vocab(shards.vocab))
    model.load_state_dict(dict(loaded.weights))
    sampler = Sampler(model, shards.vocab)
    tokenizer = Tokenizer(shards.vocab)
    samples = out_dir / "samples"
    samples.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    written = []
    for composer in COMPOSERS:
        ids = sampler.sample(
            composer, SampleConfig(bars=bars, temperature=0.9, top_p=0.95), generator
        )
        score = tokenizer.decode_full(ids, strict=True, score_id=composer).score
        stem = samples / composer
        stem.with_suffix(".json").write_text(json.dumps({"composer": composer, "ids": ids, "tokens": tokenizer.to_strings(ids)}) + "\n")  # fmt: skip
        write_score(score, stem.with_suffix(".mid"))
        write_score(score, stem.with_suffix(".musicxml"))
        written.append(
            f"{stem}.mid / .musicxml / .json ({len(score.bars)} bars, {len(score.notes)} notes)"
        )
    total_min = (time.perf_counter() - started) / 60
    report = {
        "minutes": round(total_min, 2),
        "budget_minutes": minutes,
        "build_minutes": round(build_s / 60, 2),
        "over_budget_minutes": round(max(0.0, total_min - minutes), 2),
        **summaries,
    }
    (out_dir / "summary.json").write_text(json.dumps(report, indent=1) + "\n")
    pre, ft = summaries["pretrain"], summaries["finetune"]
    click.echo(
        f"pre-training: valid loss {pre.get('initial_valid_loss', float('nan')):.3f} -> {pre.get('final_valid_loss', float('nan')):.3f}; "
        f"adapters on {', '.join(COMPOSERS)}: {ft.get('initial_valid_loss', float('nan')):.3f} -> {ft.get('final_valid_loss', float('nan')):.3f}"
    )  # fmt: skip
    for line in written:
        click.echo(f"  {line}")
    if total_min > minutes:
        click.echo(
            f"warning: finished {total_min - minutes:.1f} min over the {minutes:g} min budget "
            f"(the build took {build_s / 60:.1f} min)",
            err=True,
        )
    click.echo(
        f"done in {report['minutes']} min; runs in {runs}, samples in {samples}, summary in {out_dir / 'summary.json'}"
    )
