"""Released models: a training run's latest weights exported into one small, self-checking folder.

`gnm train export` writes, from the run that is shipped (and the runs it started from):

    model.safetensors   the weights (backbone, composer embeddings and adapters), fp32
    vocab.json          the vocabulary the model reads and writes
    meta.json           format, model config, vocabulary hash, sha256 of the weights, and for
                        every training stage its settings, steps and validation losses; the
                        recipe's exact command and the commit it ran at
    logs/<stage>.jsonl  each stage's training log (loss, learning rate, validation loss)
    pretrained.safetensors  the adapters and composer embeddings as pre-training left them, when
                        the shipped run fine-tuned adapters over a frozen backbone: with the
                        backbone of model.safetensors they are the pre-trained model exactly,
                        so Mastery can be redone from Generality (`--restart-adapters`)
    valid_loss.png      the validation loss curves
    recipe.sh           a copy of the recipe script, when one is given

Every command that takes `--run` reads a released folder as well as a run folder
(`resolve_model`), with the same checks as a checkpoint: hashes, format, vocabulary.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from gnm_model import checkpoint as ckpt
from pipeline.errors import CheckpointError
from pipeline.io.atomic import sha256_file, write_text_atomic
from pipeline.tokenizer.vocab import Vocab

FORMAT = "gnm-model/1"
WEIGHTS = "model.safetensors"
PRETRAINED = "pretrained.safetensors"


def is_release(folder: Path) -> bool:
    """Whether `folder` holds a released model (rather than a training run)."""
    meta = folder / "meta.json"
    if not meta.is_file() or (folder / ckpt.LATEST).exists():
        return False
    try:
        return bool(json.loads(meta.read_text()).get("format") == FORMAT)
    except (json.JSONDecodeError, AttributeError):
        return False


def _valid_losses(run: Path) -> list[tuple[int, float]]:
    path = run / "log.jsonl"
    if not path.is_file():
        return []
    records = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return [(int(r["step"]), float(r["valid_loss"])) for r in records if "valid_loss" in r]


def _stage(name: str, run: Path) -> dict[str, Any]:
    setup = json.loads((run / "run.json").read_text())
    latest = ckpt.read_meta(ckpt.latest(run), ckpt.FORMAT, "a checkpoint folder")  # tensors: export
    losses = _valid_losses(run)
    return {
        "name": name,
        "run": str(run),
        "mode": setup["mode"],
        "composers": setup["composers"],
        "train": setup["train"],
        "from": setup.get("from"),
        "steps": int(latest["step"]),
        "checkpoint_sha256": dict(latest["sha256"]),
        "valid_loss": [[s, round(v, 5)] for s, v in losses],
    }


def _git_commit(root: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip() or None


def _adapter_names(checkpoint: ckpt.Checkpoint) -> set[str]:
    """The tensors adapter fine-tuning trains: adapters and composer embeddings."""
    from gnm_model.transformer import GnMTransformer

    model = GnMTransformer(checkpoint.config)
    backbone = {name for name, _ in model.backbone_parameters()}
    return {name for name, _ in model.named_parameters()} - backbone


def _pretrained_part(first: Path, last: ckpt.Checkpoint) -> dict[str, torch.Tensor]:
    """The pre-training run's adapter tensors, after checking that `last` kept its backbone."""
    start = ckpt.load(ckpt.latest(first))
    adapters = _adapter_names(last)
    for name, tensor in last.weights.items():
        if name not in adapters and not torch.equal(tensor, start.weights[name]):
            raise CheckpointError(
                f"export: {name} differs between {first} and the adapter run: the backbone was "
                "not frozen, or the adapter run did not start from this pre-training"
            )
    return {name: start.weights[name].contiguous() for name in sorted(adapters)}


def plot_valid_loss(stages: Sequence[Mapping[str, Any]], path: Path) -> None:
    """One panel per stage: validation loss against optimizer step."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(1, len(stages), figsize=(5 * len(stages), 3.6), squeeze=False)
    for ax, stage in zip(axes[0], stages, strict=True):
        points = stage["valid_loss"]
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3)
        who = ", ".join(stage["composers"] or []) or "every genre (Composer_None)"
        ax.set_title(f"{stage['name']} ({stage['mode']}): {who}", fontsize=9)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("validation loss (nats/token)")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def export(
    runs: Sequence[tuple[str, Path]],
    out: Path,
    name: str,
    command: str | None = None,
    recipe: Path | None = None,
) -> dict[str, Any]:
    """Export the last run of `runs` (name, run folder), in training order, to `out`; return meta.

    The earlier runs (the pre-training an adapter run started from) contribute their logs and
    losses. `out` is replaced as a whole, so a folder never mixes two exports.
    """
    if not runs:
        raise CheckpointError("export: no run given")
    final = runs[-1][1]
    vocab = ckpt.run_vocab(final)
    for stage_name, run in runs:
        if ckpt.run_vocab(run).hash != vocab.hash:
            raise CheckpointError(f"export: run {run} ({stage_name}) has another vocabulary")
    last = ckpt.load(ckpt.latest(final), vocab)
    stages = [_stage(stage_name, run) for stage_name, run in runs]
    tmp = out.with_name(f".{out.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "logs").mkdir(parents=True)
    shutil.copyfile(last.folder / WEIGHTS, tmp / WEIGHTS)
    vocab.save(tmp / "vocab.json")
    for stage_name, run in runs:
        shutil.copyfile(run / "log.jsonl", tmp / "logs" / f"{stage_name}.jsonl")
    if recipe is not None:
        shutil.copyfile(recipe, tmp / "recipe.sh")
    pretrained = _pretrained_part(runs[0][1], last) if stages[-1]["mode"] == "adapters" else None
    if pretrained is not None:
        save_file(pretrained, str(tmp / PRETRAINED))
    plot_valid_loss(stages, tmp / "valid_loss.png")
    meta = {
        "format": FORMAT,
        "name": name,
        "step": last.step,
        "config": last.meta["config"],
        "vocab_hash": vocab.hash,
        "sha256": {
            name: sha256_file(tmp / name)
            for name in (WEIGHTS, PRETRAINED)
            if (tmp / name).is_file()
        },
        "parameters": sum(t.numel() for t in last.weights.values()),
        "stages": stages,
        "recipe": {
            "command": command,
            "script": "recipe.sh" if recipe is not None else None,
            "script_sha256": sha256_file(recipe) if recipe is not None else None,
            "commit": _git_commit(Path(__file__).resolve().parent.parent),
        },
    }
    write_text_atomic(tmp / "meta.json", json.dumps(meta, indent=1, sort_keys=True) + "\n")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return meta


def load_release(folder: Path, vocab: Vocab | None = None) -> ckpt.Checkpoint:
    """A released folder as a `Checkpoint` (no optimizer state), checked like one."""
    meta = ckpt.read_meta(folder, FORMAT, "a released model")
    ckpt.check_vocab(folder, meta, vocab)
    return ckpt.Checkpoint(folder, meta, ckpt.read_tensors(folder, meta, WEIGHTS), {})


def restart_adapters(checkpoint: ckpt.Checkpoint) -> ckpt.Checkpoint:
    """`checkpoint` with its adapters and composer embeddings as pre-training left them.

    A run folder is returned unchanged (its latest checkpoint is where its own training left
    them); a released model takes them from its pretrained.safetensors.
    """
    if checkpoint.meta.get("format") != FORMAT:
        return checkpoint
    if not (checkpoint.folder / PRETRAINED).is_file():
        raise CheckpointError(
            f"{checkpoint.folder}: no {PRETRAINED} (the model was not fine-tuned with adapters "
            "over a frozen backbone), so there is no pre-trained state to restart from"
        )
    pretrained = ckpt.read_tensors(checkpoint.folder, checkpoint.meta, PRETRAINED)
    if set(pretrained) != _adapter_names(checkpoint):
        raise CheckpointError(
            f"{checkpoint.folder / PRETRAINED}: does not hold exactly the model's adapter tensors"
        )
    weights = {**checkpoint.weights, **pretrained}
    return ckpt.Checkpoint(checkpoint.folder, checkpoint.meta, weights, {})


def resolve_model(folder: Path, vocab: Vocab | None = None) -> ckpt.Checkpoint:
    """The weights behind `--run`: a released model folder, or a run's latest checkpoint."""
    if is_release(folder):
        return load_release(folder, vocab)
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: no such folder (expected a run or a released model)")
    return ckpt.load(ckpt.latest(folder), vocab)
