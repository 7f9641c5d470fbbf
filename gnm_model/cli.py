"""`gnm model info`, `gnm train pretrain|finetune`, `gnm generate`; the `gnm` entry point.

The entry point lives here because the data side never imports the model side (DESIGN.md):
this module adds the model commands to `pipeline.cli.main`. torch is imported inside the
commands, so the data commands work without it.
"""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gnm_model.config import PRESETS, TrainConfig
from pipeline.cli import main
from pipeline.cli.common import PARAMS_OPTION
from pipeline.cli.limits import cli_limits, limit_options, run_limited
from pipeline.params import load_params
from pipeline.tokenizer.vocab import DEFAULT_COMPOSERS

if TYPE_CHECKING:
    from pipeline.tokenizer import Tokenizer

PRESET_OPTION = click.option(
    "--preset", type=click.Choice(list(PRESETS)), default="tiny", show_default=True
)
TRAIN = TrainConfig()  # the option defaults of `gnm train`: TrainConfig's own
COMPOSERS = ",".join(DEFAULT_COMPOSERS)  # fine-tuning's default: the vocabulary's composers


@click.group()
def model() -> None:
    """Inspect model presets."""


@model.command()
@PRESET_OPTION
@click.option(
    "--vocab", "vocab_path", type=click.Path(exists=True, dir_okay=False), default=None,
    help="Vocabulary JSON (default: the default vocabulary).",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def info(preset: str, vocab_path: str | None, as_json: bool) -> None:
    """Parameter counts of a preset: backbone, adapters, embeddings, total.

    \b
    Example:
      gnm model info --preset paper
    """
    from gnm_model.config import preset as get_preset
    from gnm_model.transformer import GnMTransformer
    from pipeline.tokenizer.vocab import Vocab, VocabConfig

    vocab = Vocab.load(vocab_path) if vocab_path else Vocab(VocabConfig())
    cfg = get_preset(preset).for_vocab(vocab)
    counts = GnMTransformer(cfg).parameter_groups()
    if as_json:
        click.echo(
            json.dumps({"preset": preset, "config": cfg.to_json(), "parameters": counts}, indent=1)
        )
        return
    click.echo(
        f"{preset}: {cfg.n_layers} layers, d_model {cfg.d_model}, {cfg.n_heads} heads, d_ff {cfg.d_ff}, "
        f"context {cfg.context}, adapters on layers {', '.join(map(str, cfg.adapter_layers))}"
    )
    for name, n in counts.items():
        click.echo(f"  {name:<11} {n:>12,}  ({n / 1e6:.2f}M)")


main.add_command(model)


@click.group()
def train() -> None:
    """Pre-train on every genre, then fine-tune on composers."""


def _train_options(func: Any) -> Any:
    for option in reversed(
        [
            click.option("--steps", type=int, default=TRAIN.steps, show_default=True),
            click.option("--batch-size", type=int, default=TRAIN.batch_size, show_default=True),
            click.option("--lr", type=float, default=TRAIN.lr, show_default=True),
            click.option("--warmup", type=int, default=TRAIN.warmup, show_default=True),
            click.option("--accumulation", type=int, default=TRAIN.accumulation, show_default=True, help="Micro-batches per step."),
            click.option("--eval-every", type=int, default=TRAIN.eval_every, show_default=True),
            click.option("--checkpoint-every", type=int, default=TRAIN.checkpoint_every, show_default=True),
            click.option("--max-minutes", type=float, default=TRAIN.max_seconds / 60, help="Stop (with a checkpoint) after this long."),
            click.option("--seed", type=int, default=TRAIN.seed, show_default=True),
            click.option("--transpose", type=int, default=TRAIN.transpose, show_default=True, help="± semitones of augmentation (0: off)."),
            click.option("--workers", type=int, default=TRAIN.workers, show_default=True, help="DataLoader worker processes."),
            click.option("--compile", "use_compile", is_flag=True, help="torch.compile the model."),
            click.option("--device", default=None, help="cpu or cuda (default: cuda when available)."),
            click.option("--resume", is_flag=True, help="Continue the run in --out from its latest checkpoint."),
            click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True, help="Run folder."),
            click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON."),
        ]
    ):  # fmt: skip
        func = option(func)
    return func


def _train_config(kw: dict[str, Any]) -> Any:
    return TrainConfig(
        steps=kw["steps"], batch_size=kw["batch_size"], lr=kw["lr"], warmup=kw["warmup"],
        accumulation=kw["accumulation"], eval_every=kw["eval_every"],
        checkpoint_every=kw["checkpoint_every"], max_seconds=60 * kw["max_minutes"],
        seed=kw["seed"], transpose=kw["transpose"], workers=kw["workers"], compile=kw["use_compile"],
    )  # fmt: skip


def _report(summary: dict[str, Any], out_dir: Path, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(summary, indent=1))
        return
    if summary["start_step"] >= summary["steps"]:
        click.echo(f"{out_dir}: already trained to step {summary['steps']}; nothing to do")
        return
    first, last = summary.get("initial_valid_loss"), summary.get("final_valid_loss")
    change = f"valid loss {first:.4f} -> {last:.4f}; " if first and last else ""
    click.echo(
        f"trained {summary['steps']} steps in {summary['seconds']} s ({summary['tokens_per_s']:,} tokens/s); "
        f"{change}run in {out_dir}"
    )


@train.command()
@click.option("--shards", "shards_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("data/default/shards"), show_default=True)  # fmt: skip
@PRESET_OPTION
@_train_options
def pretrain(shards_dir: Path, preset: str, **kw: Any) -> None:
    """Pre-train on every piece of the train split, with Composer_None.

    \b
    Example:
      gnm train pretrain --shards data/default/shards --preset small --max-minutes 10 --out runs/pre
    """
    from gnm_model.config import preset as get_preset
    from gnm_model.train import train as run_training
    from pipeline.io.shards import open_shards

    shards = open_shards(shards_dir)
    summary = run_training(kw["out_dir"], get_preset(preset), shards, _train_config(kw), "pretrain",
                           resume=kw["resume"], device=kw["device"])  # fmt: skip
    _report(summary, kw["out_dir"], kw["as_json"])


@train.command()
@click.option("--from", "from_run", type=click.Path(file_okay=False, path_type=Path), required=True, help="Pre-training run folder, or a released model (models/gnm-small).")  # fmt: skip
@click.option("--shards", "shards_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("data/default/shards"), show_default=True)  # fmt: skip
@click.option(
    "--composers",
    default=COMPOSERS,
    show_default=True,
    help="Comma-separated.",
)
@click.option(
    "--mode", type=click.Choice(["adapters", "full"]), default="adapters", show_default=True
)
@click.option("--restart-adapters", is_flag=True, help="Start the adapters and composer embeddings where pre-training left them, not from --from's fine-tuned ones (a released model keeps them).")  # fmt: skip
@_train_options
def finetune(from_run: Path, shards_dir: Path, composers: str, mode: str, restart_adapters: bool, **kw: Any) -> None:  # fmt: skip
    """Fine-tune a pre-trained run on composers: adapters only (backbone frozen) or everything.

    \b
    Examples:
      gnm train finetune --from runs/pre --composers Bach,Mozart --mode adapters --out runs/ft
      gnm train finetune --from models/gnm-small --restart-adapters --steps 500 --out runs/mine
    """
    from gnm_model import checkpoint as ckpt
    from gnm_model.release import resolve_model
    from gnm_model.release import restart_adapters as pretrained_adapters
    from gnm_model.train import train as run_training
    from pipeline.io.shards import open_shards

    shards = open_shards(shards_dir)
    run_vocab = ckpt.run_vocab(from_run)
    shards.require_vocab(run_vocab, f"run {from_run}")
    init = resolve_model(from_run, run_vocab)
    if restart_adapters:
        init = pretrained_adapters(init)
    names = [c.strip() for c in composers.split(",") if c.strip()]
    summary = run_training(kw["out_dir"], init.config, shards, _train_config(kw), mode, names, init=init,  # type: ignore[arg-type]
                           resume=kw["resume"], device=kw["device"])  # fmt: skip
    _report(summary, kw["out_dir"], kw["as_json"])


@train.command()
@click.option("--shards", "shards_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("data/default/shards"), show_default=True)  # fmt: skip
@PRESET_OPTION
@click.option("--composers", default=COMPOSERS, show_default=True, help="Comma-separated.")
@_train_options
def scratch(shards_dir: Path, preset: str, composers: str, **kw: Any) -> None:
    """Train a fresh model on composers only, with no pre-training (the paper's ablation).

    Every parameter trains from its initialisation, conditioned on the composers as in
    fine-tuning; compare it with `finetune` over a pre-trained backbone at the same steps.

    \b
    Example:
      gnm train scratch --preset small --composers Bach,Mozart --steps 1500 --out runs/scratch
    """
    from gnm_model.config import preset as get_preset
    from gnm_model.train import train as run_training
    from pipeline.io.shards import open_shards

    shards = open_shards(shards_dir)
    names = [c.strip() for c in composers.split(",") if c.strip()]
    summary = run_training(kw["out_dir"], get_preset(preset), shards, _train_config(kw), "full", names,
                           resume=kw["resume"], device=kw["device"])  # fmt: skip
    _report(summary, kw["out_dir"], kw["as_json"])


@train.command("export")
@click.option("--run", "runs", multiple=True, required=True, metavar="NAME=RUN", help="A training stage and its run folder, in training order; the last one's weights are shipped (repeat: --run pretrain=... --run adapters=...).")  # fmt: skip
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True, help="The model folder (replaced).")  # fmt: skip
@click.option("--name", default=None, help="The model's name (default: the --out folder's name).")
@click.option("--command", "command", default=None, help="The exact command that trained it, recorded in meta.json.")  # fmt: skip
@click.option("--recipe", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None, help="The recipe script, copied into the folder.")  # fmt: skip
def export_model(runs: tuple[str, ...], out_dir: Path, name: str | None, command: str | None, recipe: Path | None) -> None:  # fmt: skip
    """Export a trained model into a small folder that `--run` reads (weights, vocab, logs, plot).

    \b
    Example:
      gnm train export --run pretrain=runs/pre --run adapters=runs/ft --out models/mine
    """
    from gnm_model.release import export

    stages = []
    for item in runs:
        stage, sep, folder = item.partition("=")
        if not sep or not stage or not folder:
            raise click.BadParameter(f"{item!r}: expected NAME=RUN_FOLDER", param_hint="--run")
        stages.append((stage, Path(folder)))
    meta = export(stages, out_dir, name or out_dir.name, command, recipe)
    size = sum(p.stat().st_size for p in out_dir.rglob("*") if p.is_file())
    click.echo(f"exported {meta['parameters']:,} parameters (step {meta['step']}) to {out_dir} "
               f"({size / 2**20:.1f} MiB)")  # fmt: skip


main.add_command(train)


@click.command()
@click.option("--run", "run_dir", type=click.Path(file_okay=False, path_type=Path), required=True, help="A training run, or a released model folder (models/gnm-small).")  # fmt: skip
@click.option("--composer", default=None, help="Composer to condition on (default: None).")
@click.option("--bars", type=int, default=16, show_default=True)
@click.option("--n", "count", type=int, default=1, show_default=True, help="Samples.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--temperature", type=float, default=1.0, show_default=True)
@click.option("--top-k", type=int, default=0, show_default=True)
@click.option("--top-p", type=float, default=1.0, show_default=True)
@click.option("--prompt", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None, help="A score file to continue.")  # fmt: skip
@click.option("--device", default=None)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--json", "as_json", is_flag=True, help="Print the list of written files as JSON.")
@PARAMS_OPTION
@limit_options
def generate(
    run_dir: Path, composer: str | None, bars: int, count: int, seed: int, temperature: float,
    top_k: int, top_p: float, prompt: Path | None, device: str | None, out_dir: Path, as_json: bool,
    params_path: str | None, timeout_s: float | None, memory_mb: int | None,
) -> None:  # fmt: skip
    """Sample pieces: tokens (JSON), MIDI and MusicXML per sample; every sample decodes.

    Sample i is drawn with seed --seed + i, so each one can be made again on its own.

    A --prompt file is read in an isolated child under ingest's time and memory limits
    (--timeout, --memory-mb).

    \b
    Example:
      gnm generate --run runs/ft --composer Mozart --bars 16 --n 4 --seed 1 --out samples/
    """
    from gnm_model import checkpoint as ckpt
    from gnm_model.generate import SampleConfig, Sampler
    from gnm_model.sampling import load_model, write_sample
    from pipeline.cli.common import tracked
    from pipeline.tokenizer import Tokenizer

    vocab = ckpt.run_vocab(run_dir)
    sampler = Sampler(load_model(run_dir, vocab, device), vocab)
    sampler.composer_row(composer)  # unknown composer: fail before any work
    try:
        cfg = SampleConfig(bars=bars, temperature=temperature, top_k=top_k, top_p=top_p)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    tokenizer = Tokenizer(vocab)
    prompt_ids = None
    if prompt is not None:
        limits = cli_limits(load_params(params_path), timeout_s, memory_mb)
        job = partial(_prompt_ids, tokenizer=tokenizer, composer=composer)
        prompt_ids = run_limited(job, prompt, limits, prompt)
    written = [
        write_sample(sampler, composer, cfg, seed + i, out_dir / f"{composer or 'None'}-{seed}-{i:03d}",
                     prompt=prompt_ids, extra={"index": i}).as_dict()
        for i in tracked(range(count), "sampling")  # sample i: seed + i, reproducible on its own
    ]  # fmt: skip
    if as_json:
        click.echo(json.dumps(written, indent=1))
        return
    for w in written:
        click.echo(f"wrote {w['midi']} (+ .json, .musicxml): {w['bars']} bars, {w['notes']} notes")


main.add_command(generate)


def _prompt_ids(prompt: Path, *, tokenizer: Tokenizer, composer: str | None) -> list[int]:
    """The token ids of a prompt file's first score, without its EOS (runs in the limited child)."""
    from pipeline.readers import read_scores
    from pipeline.tokenizer.chain import tokenize_score

    return tokenize_score(read_scores(prompt)[0], tokenizer, composer).ids[:-1]


@click.command()
@click.argument("source", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("out/render"), show_default=True)  # fmt: skip
@click.option("--soundfont", type=click.Path(dir_okay=False), default=None, help="A .sf2 file (default: an installed GM soundfont).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the written files as JSON.")
@PARAMS_OPTION
@limit_options
def render(
    source: Path,
    out_dir: Path,
    soundfont: str | None,
    as_json: bool,
    params_path: str | None,
    timeout_s: float | None,
    memory_mb: int | None,
) -> None:
    """Render one score file: WAV audio (fluidsynth) and the engraved first page (SVG, verovio).

    Reading and engraving run in an isolated child under ingest's time and memory limits
    (--timeout, --memory-mb).

    \b
    Example:
      gnm render samples/Mozart-1-000.mid --out renders/
    """
    from gnm_model.render import find_soundfont
    from gnm_model.render import render as render_file

    limits = cli_limits(load_params(params_path), timeout_s, memory_mb)
    done = render_file(source, out_dir, find_soundfont(soundfont), limits)
    info = {"midi": str(done.midi), "musicxml": str(done.musicxml), "wav": str(done.wav.path),
            "seconds": round(done.wav.seconds, 2), "peak": round(done.wav.peak, 3), "svg": str(done.svg)}  # fmt: skip
    if as_json:
        click.echo(json.dumps(info, indent=1))
        return
    click.echo(f"wrote {info['wav']} ({info['seconds']} s, peak {info['peak']}) and {info['svg']}")


main.add_command(render)


@click.command("eval")
@click.option("--run", "run_dir", type=click.Path(file_okay=False, path_type=Path), required=True, help="The run that made the samples (its vocabulary).")  # fmt: skip
@click.option(
    "--samples", "samples_dir", type=click.Path(file_okay=False, path_type=Path), required=True
)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True, help="Report folder.")  # fmt: skip
@click.option("--shards", "shards_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("data/default/shards"), show_default=True)  # fmt: skip
@click.option("--composers", default=COMPOSERS, show_default=True)
@click.option(
    "--max-reference",
    type=int,
    default=100,
    show_default=True,
    help="Real test pieces (or segments) per group.",
)
@click.option("--reference-bars", type=int, default=0, show_default=True, help="Compare with the real pieces' segments of this many bars (the samples' length); 0: whole pieces.")  # fmt: skip
@click.option("--soundfont", type=click.Path(dir_okay=False), default=None)
@click.option("--json", "as_json", is_flag=True, help="Print report.json.")
def evaluate(run_dir: Path, samples_dir: Path, out_dir: Path, shards_dir: Path, composers: str,
             max_reference: int, reference_bars: int, soundfont: str | None, as_json: bool) -> None:  # fmt: skip
    """Evaluate samples against real data: metrics, classifier, memorisation, audio and scores.

    Writes REPORT/report.json and REPORT/report.html (open it in a browser).

    \b
    Example:
      gnm eval --run runs/ft --samples samples/ --out reports/eval
    """
    from gnm_model import checkpoint as ckpt
    from gnm_model.render import RenderError, find_soundfont
    from gnm_model.report import evaluate_samples, load_samples
    from pipeline.io.shards import open_shards
    from pipeline.tokenizer import Tokenizer

    vocab = ckpt.run_vocab(run_dir)
    shards = open_shards(shards_dir)
    shards.require_vocab(vocab, f"run {run_dir}")
    try:
        font = find_soundfont(soundfont)
    except RenderError as exc:
        if soundfont is not None:
            raise
        click.echo(f"note: {exc}; the report will have no audio", err=True)
        font = None
    names = [c.strip() for c in composers.split(",") if c.strip()]
    samples = load_samples(samples_dir, Tokenizer(vocab))
    report = evaluate_samples(
        shards,
        samples,
        out_dir,
        names,
        max_reference,
        font,
        log=lambda line: click.echo(line, err=True),
        reference_bars=reference_bars,
    )
    if as_json:
        click.echo((out_dir / "report.json").read_text())
        return
    for message in report["messages"]:
        click.echo(f"note: {message}")
    left_out = [s for s in report["samples"] if s["error"]]
    cv = report["classifier"].get("cross_validation")
    if cv:
        click.echo(
            f"classifier: {100 * cv['accuracy']:.1f}% on {cv['pieces']} real pieces ({cv['folds']}-fold by group)"
        )
    click.echo(f"{len(report['samples']) - len(left_out)} samples evaluated, {len(left_out)} left out, "
               f"{len(report['near_copies'])} near-copies; wrote {out_dir / 'report.html'}")  # fmt: skip


main.add_command(evaluate)


def _register_quickstart() -> None:
    from gnm_model.quickstart import quickstart

    main.add_command(quickstart)


_register_quickstart()


if __name__ == "__main__":  # `python -m gnm_model.cli ...` (torchrun uses it)
    main()
