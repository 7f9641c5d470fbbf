"""`gnm quickstart`: the main job on the embedded default data, within a time budget.

1. Build the `default` profile (music21's bundled corpus) with `gnm data build`.
2. Mastery from the shipped Generality: take the backbone of the released model
   (`models/gnm-small`, pre-trained for hours on every genre of the full profile) and fine-tune
   its style adapters again, from where pre-training left them, on Bach, Beethoven, Mozart and
   Chopin with the time left.
3. Generate one piece per composer (tokens JSON, MIDI, MusicXML), and point to the released
   model's own samples for comparison.

The step count is set from a short timing of the training step on this machine, so the learning
rate schedule runs to its end inside the budget; `max_seconds` is a hard stop besides. When the
build left less than `MIN_TRAIN_S`, training still gets that and the job says by how much it
goes over, then finishes with exit 0: the budget is a target, not a reason to throw the build away.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

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


def _seconds_per_step(model_cfg: Any, batch_size: int, vocab: Any) -> float:
    """Time a few adapter fine-tuning steps on random tokens (after one warm-up step)."""
    import torch

    from gnm_model.train import loss_of
    from gnm_model.transformer import GnMTransformer

    model = GnMTransformer(model_cfg.for_vocab(vocab))
    for _, p in model.backbone_parameters():
        p.requires_grad_(False)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    x = torch.randint(0, len(vocab), (batch_size, model.cfg.context))
    rows = torch.zeros(batch_size, dtype=torch.long)
    started = 0.0
    for i in range(4):
        if i == 1:
            started = time.perf_counter()
        loss_of(model, x, x, rows).backward()
        opt.step()
        opt.zero_grad()
    return (time.perf_counter() - started) / 3


def adapt(
    backbone: Path, shards: Any, run: Path, seconds: float, batch_size: int, seed: int,
    echo: Callable[[str], None],
) -> dict[str, Any]:  # fmt: skip
    """Fine-tune adapters on `COMPOSERS` over the released backbone, for about `seconds`.

    They start where pre-training left them, as in the recipe, not from the released ones.
    """
    from gnm_model.config import TrainConfig
    from gnm_model.release import resolve_model, restart_adapters
    from gnm_model.train import train

    init = restart_adapters(resolve_model(backbone, shards.vocab))
    per_step = _seconds_per_step(init.config, batch_size, shards.vocab)
    steps = max(10, int(0.85 * (seconds - 15) / per_step))  # 15 s: loading and evaluation
    cfg = TrainConfig(
        steps=steps, batch_size=batch_size, lr=1e-3, warmup=max(1, steps // 20),
        eval_every=max(1, steps // 4), checkpoint_every=max(1, steps // 4), eval_batches=4,
        seed=seed, max_seconds=seconds,
    )  # fmt: skip
    echo(f"[2/3] adapters on {', '.join(COMPOSERS)} over the backbone of {backbone}: {steps} "
         f"steps (~{per_step:.2f} s each), {seconds / 60:.1f} min")  # fmt: skip
    return train(run, init.config, shards, cfg, "adapters", list(COMPOSERS), init=init,
                 echo=echo)  # fmt: skip


def sample_each(run: Path, shards: Any, samples: Path, bars: int, seed: int) -> list[str]:
    """One piece per composer, each drawn with `seed`, from the run's latest checkpoint."""
    from gnm_model.generate import SampleConfig, Sampler
    from gnm_model.sampling import load_model, write_sample

    sampler = Sampler(load_model(run, shards.vocab), shards.vocab)
    cfg = SampleConfig(bars=bars, temperature=0.9, top_p=0.95)
    written = []
    for composer in COMPOSERS:
        w = write_sample(sampler, composer, cfg, seed, samples / composer)
        written.append(
            f"{samples / composer}.mid / .musicxml / .json ({w.bars} bars, {w.notes} notes)"
        )
    return written


@click.command()
@click.option(
    "--minutes", type=float, default=12.0, show_default=True, help="Budget for the whole job."
)
@click.option("--backbone", type=click.Path(file_okay=False, path_type=Path), default=Path("models/gnm-small"), show_default=True, help="Released model (or run) whose backbone the adapters are fine-tuned over.")  # fmt: skip
@click.option("--batch-size", type=int, default=8, show_default=True)
@click.option("--bars", type=int, default=16, show_default=True, help="Bars per generated piece.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("out/quickstart"), show_default=True)  # fmt: skip
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True, help="Repository root.")  # fmt: skip
@click.option("--seed", type=int, default=0, show_default=True)
def quickstart(minutes: float, backbone: Path, batch_size: int, bars: int, out_dir: Path, root: Path, seed: int) -> None:  # fmt: skip
    """Build the default data, fine-tune adapters over the shipped backbone, generate a piece each.

    Pre-training (Generality) took hours and ships in models/gnm-small; this job shows Mastery,
    which is cheap: its adapters fine-tuned again on four composers in the minutes the build left
    (at least 4; the job says when that takes it over budget). Previous runs in --out are replaced.

    \b
    Example:
      gnm quickstart --minutes 12
    """
    from pipeline.build import build
    from pipeline.io.shards import open_shards

    started = time.perf_counter()
    budget = 60 * minutes
    backbone = backbone if backbone.is_absolute() else root / backbone

    def left() -> float:
        return budget - (time.perf_counter() - started)

    click.echo(f"[1/3] building the default profile (budget {minutes:g} min)")
    build(root, "default", echo=click.echo)
    shards = open_shards(root / "data/default/shards")
    run = out_dir / "runs" / "adapters"
    if run.exists():
        shutil.rmtree(run)
    reserve = 45.0  # generation and writing
    build_s = time.perf_counter() - started
    click.echo(f"[1/3] build finished in {build_s / 60:.1f} min")
    train_s, overrun = training_seconds(left() - reserve)
    if overrun > 0:
        click.echo(
            f"warning: the build left {max(0.0, left() - reserve):.0f} s for training; training "
            f"the minimum of {MIN_TRAIN_S:.0f} s, so the job exceeds its {minutes:g} min budget "
            f"by about {overrun / 60:.1f} min",
            err=True,
        )
    summary = adapt(backbone, shards, run, train_s, batch_size, seed, click.echo)
    click.echo("[3/3] generating one piece per composer")
    samples = out_dir / "samples"
    written = sample_each(run, shards, samples, bars, seed)
    total_min = (time.perf_counter() - started) / 60
    report = {
        "minutes": round(total_min, 2),
        "budget_minutes": minutes,
        "build_minutes": round(build_s / 60, 2),
        "over_budget_minutes": round(max(0.0, total_min - minutes), 2),
        "backbone": str(backbone),
        "adapters": summary,
    }
    (out_dir / "summary.json").write_text(json.dumps(report, indent=1) + "\n")
    nan = float("nan")
    click.echo(
        f"adapters on {', '.join(COMPOSERS)}: valid loss {summary.get('initial_valid_loss', nan):.3f} "
        f"-> {summary.get('final_valid_loss', nan):.3f}"
    )  # fmt: skip
    for line in written:
        click.echo(f"  {line}")
    shipped = backbone / "samples"
    if shipped.is_dir():
        click.echo(f"the released model's own samples (trained for hours), to compare: {shipped}/ "
                   f"(README.md there says how they were made)")  # fmt: skip
    if total_min > minutes:
        click.echo(
            f"warning: finished {total_min - minutes:.1f} min over the {minutes:g} min budget "
            f"(the build took {build_s / 60:.1f} min)",
            err=True,
        )
    click.echo(
        f"done in {report['minutes']} min; run in {run}, samples in {samples}, summary in {out_dir / 'summary.json'}"
    )
