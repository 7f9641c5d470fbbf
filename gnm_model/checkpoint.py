"""Checkpoints: safetensors for every tensor, JSON for everything else; never pickle.

A run folder holds `vocab.json`, `log.jsonl`, `checkpoints/step-<n>/` and `latest.json`. A
checkpoint folder holds `model.safetensors` (the weights), `state.safetensors` (the optimizer's
moments and the RNG state) and `meta.json` (model config, vocabulary hash, step, training setup,
the optimizer's hyper-parameters and the sha256 of both tensor files). It is written into a
temporary folder and renamed; `latest.json` is rewritten (atomically) only after that, so the
latest checkpoint is always a complete one. Loading checks the hashes and the vocabulary.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from gnm_model.config import ModelConfig
from pipeline.errors import CheckpointError
from pipeline.io.atomic import sha256_file, write_text_atomic
from pipeline.tokenizer.vocab import Vocab

FORMAT = "gnm-checkpoint/1"
LATEST = "latest.json"


def optimizer_tensors(
    optimizer: torch.optim.Optimizer,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The optimizer state as flat tensors plus its JSON-able hyper-parameters."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            tensor = value if torch.is_tensor(value) else torch.tensor(value)
            tensors[f"optim.{index}.{key}"] = tensor.detach().cpu().contiguous()
    return tensors, {"param_groups": state["param_groups"]}


def restore_optimizer(
    optimizer: torch.optim.Optimizer, tensors: Mapping[str, torch.Tensor], groups: Any
) -> None:
    """Load what `optimizer_tensors` wrote."""
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, tensor in tensors.items():
        if not name.startswith("optim."):
            continue
        _, index, key = name.split(".", 2)
        state.setdefault(int(index), {})[key] = tensor
    optimizer.load_state_dict({"state": state, "param_groups": groups})


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint."""

    folder: Path
    meta: Mapping[str, Any]
    weights: Mapping[str, torch.Tensor]
    state: Mapping[str, torch.Tensor]

    @property
    def config(self) -> ModelConfig:
        """The model config."""
        return ModelConfig.from_json(self.meta["config"])

    @property
    def step(self) -> int:
        """Optimizer steps taken."""
        return int(self.meta["step"])


def save(
    run: Path,
    step: int,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None,
    vocab: Vocab,
    extra: Mapping[str, Any],
) -> Path:
    """Write checkpoint `step` of `run` and point latest.json at it; return its folder."""
    folder = run / "checkpoints" / f"step-{step:07d}"
    tmp = run / "checkpoints" / f".step-{step:07d}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(weights, str(tmp / "model.safetensors"))
    state: dict[str, torch.Tensor] = {"rng.torch": torch.get_rng_state()}
    groups: Any = None
    if optimizer is not None:
        tensors, hyper = optimizer_tensors(optimizer)
        state.update(tensors)
        groups = hyper["param_groups"]
    save_file(state, str(tmp / "state.safetensors"))
    meta = {
        "format": FORMAT,
        "step": step,
        "vocab_hash": vocab.hash,
        "config": extra["config"],
        "optimizer_param_groups": groups,
        "sha256": {
            "model.safetensors": sha256_file(tmp / "model.safetensors"),
            "state.safetensors": sha256_file(tmp / "state.safetensors"),
        },
        **{k: v for k, v in extra.items() if k != "config"},
    }
    write_text_atomic(tmp / "meta.json", json.dumps(meta, indent=1, sort_keys=True) + "\n")
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)
    write_text_atomic(
        run / LATEST,
        json.dumps({"checkpoint": folder.name, "step": step}, indent=1, sort_keys=True) + "\n",
    )
    return folder


def latest(run: Path) -> Path:
    """The folder of the run's latest complete checkpoint."""
    pointer = run / LATEST
    if not pointer.is_file():
        raise CheckpointError(f"{run}: no {LATEST} (not a training run, or no checkpoint yet)")
    try:
        name = json.loads(pointer.read_text())["checkpoint"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise CheckpointError(f"{pointer}: unreadable") from None
    return run / "checkpoints" / name


def check_vocab(folder: Path, meta: Mapping[str, Any], vocab: Vocab | None) -> None:
    """Refuse weights trained with another vocabulary than `vocab` (when given)."""
    if vocab is not None and meta.get("vocab_hash") != vocab.hash:
        raise CheckpointError(
            f"{folder}: trained with vocabulary {str(meta.get('vocab_hash'))[:12]}, not "
            f"{vocab.hash[:12]} (resolution or token list differ); use shards built with the "
            "model's vocab.json"
        )


def read_meta(folder: Path, fmt: str, what: str) -> dict[str, Any]:
    """A folder's meta.json, refused unless it is JSON of format `fmt` (`what` names the folder)."""
    meta_path = folder / "meta.json"
    try:
        meta: dict[str, Any] = json.loads(meta_path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{meta_path}: missing (not {what})") from None
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{meta_path}: not JSON ({exc})") from None
    if meta.get("format") != fmt:
        raise CheckpointError(f"{meta_path}: format {meta.get('format')!r}, expected {fmt}")
    return meta


def read_tensors(folder: Path, meta: Mapping[str, Any], name: str) -> dict[str, torch.Tensor]:
    """The tensors of `folder/name`, after checking its sha256 against meta.json."""
    path = folder / name
    if not path.is_file():
        raise CheckpointError(f"{path}: missing")
    if sha256_file(path) != meta.get("sha256", {}).get(name):
        raise CheckpointError(f"{path}: sha256 does not match meta.json (corrupted or tampered)")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"{path}: unreadable safetensors ({exc})") from None


def load(folder: Path, vocab: Vocab | None = None) -> Checkpoint:
    """Read and check a checkpoint folder (hashes; the vocabulary when given)."""
    meta = read_meta(folder, FORMAT, "a checkpoint folder")
    check_vocab(folder, meta, vocab)
    weights = read_tensors(folder, meta, "model.safetensors")
    return Checkpoint(folder, meta, weights, read_tensors(folder, meta, "state.safetensors"))


def run_vocab(run: Path) -> Vocab:
    """The vocabulary a run was trained with (its vocab.json)."""
    path = run / "vocab.json"
    if not path.is_file():
        raise CheckpointError(f"{path}: missing (not a training run or a released model)")
    return Vocab.load(path)
