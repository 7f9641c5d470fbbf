"""Released models (`gnm train export`): export, load, checks, restart from pre-training, use."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from gnm_model import checkpoint as ckpt
from gnm_model.cli import main
from gnm_model.config import TrainConfig, preset
from gnm_model.release import (
    PRETRAINED,
    WEIGHTS,
    export,
    is_release,
    load_release,
    resolve_model,
    restart_adapters,
)
from gnm_model.train import train
from pipeline.errors import CheckpointError
from pipeline.io.atomic import sha256_file
from pipeline.io.shards import open_shards
from pipeline.params import load_params
from pipeline.tokenizer import Tokenizer
from pipeline.tokenizer.vocab import DEFAULT_COMPOSERS, Vocab, VocabConfig
from tests.helpers import REPO

SHORT = TrainConfig(steps=6, batch_size=4, lr=3e-3, warmup=2, eval_every=3, checkpoint_every=3)


def test_a_released_model_holds_the_adapter_runs_weights_and_its_history(
    tiny_release: dict[str, Path],
) -> None:
    model = tiny_release["model"]
    assert is_release(model) and not is_release(tiny_release["ft"])
    loaded = load_release(model, ckpt.run_vocab(tiny_release["ft"]))
    final = ckpt.load(ckpt.latest(tiny_release["ft"]))
    assert loaded.weights.keys() == final.weights.keys()
    assert all(torch.equal(loaded.weights[k], final.weights[k]) for k in final.weights)
    meta = json.loads((model / "meta.json").read_text())
    assert meta["step"] == 6 and meta["recipe"]["command"] == "cmd"
    assert [(s["name"], s["mode"]) for s in meta["stages"]] == [
        ("pretrain", "pretrain"),
        ("adapters", "adapters"),
    ]
    assert meta["stages"][0]["valid_loss"][0][0] == 0
    assert (model / "logs/pretrain.jsonl").read_text() == (
        tiny_release["pre"] / "log.jsonl"
    ).read_text()
    assert (model / "valid_loss.png").read_bytes()[:4] == b"\x89PNG"


def test_restarting_the_adapters_gives_back_the_pretrained_model_exactly(
    tiny_release: dict[str, Path],
) -> None:
    restarted = restart_adapters(load_release(tiny_release["model"]))
    pretrained = ckpt.load(ckpt.latest(tiny_release["pre"])).weights
    assert restarted.weights.keys() == pretrained.keys()
    assert all(torch.equal(restarted.weights[k], pretrained[k]) for k in pretrained)
    run = ckpt.load(ckpt.latest(tiny_release["ft"]))
    assert restart_adapters(run) is run  # a run folder: where its own training left them


def test_export_refuses_a_backbone_that_is_not_the_pretrained_one(
    tiny_release: dict[str, Path], quick_shards: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    seed1 = dataclasses.replace(SHORT, seed=1)
    train(other, preset("tiny"), open_shards(quick_shards), seed1, "pretrain", echo=lambda s: None)
    with pytest.raises(CheckpointError, match="differs between"):
        export([("pretrain", other), ("adapters", tiny_release["ft"])], tmp_path / "m", "m")
    assert not (tmp_path / "m").exists()


def test_a_tampered_or_foreign_release_is_refused_with_a_clear_message(
    tiny_release: dict[str, Path], tmp_path: Path
) -> None:
    copy = tmp_path / "model"
    subprocess.run(["cp", "-r", str(tiny_release["model"]), str(copy)], check=True)
    other = Vocab(VocabConfig(resolution=24))
    with pytest.raises(CheckpointError, match="trained with vocabulary .* use shards built with"):
        resolve_model(copy, other)
    weights = copy / WEIGHTS
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(CheckpointError, match="sha256 does not match"):
        resolve_model(copy)
    (copy / PRETRAINED).unlink()
    meta = json.loads((copy / "meta.json").read_text())
    meta["sha256"][WEIGHTS] = sha256_file(weights)
    (copy / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="no pretrained.safetensors"):
        restart_adapters(resolve_model(copy))
    with pytest.raises(CheckpointError, match="no such folder"):
        resolve_model(tmp_path / "missing")


def test_generate_and_finetune_take_a_released_model(
    tiny_release: dict[str, Path], quick_shards: Path, tmp_path: Path
) -> None:
    cli = CliRunner()
    done = cli.invoke(main, ["generate", "--run", str(tiny_release["model"]), "--composer", "Chopin",
                             "--bars", "4", "--out", str(tmp_path / "s"), "--json"])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)[0]["bars"] == 4
    done = cli.invoke(main, ["train", "finetune", "--from", str(tiny_release["model"]), "--restart-adapters",
                             "--shards", str(quick_shards), "--steps", "2", "--batch-size", "4",
                             "--eval-every", "2", "--checkpoint-every", "2", "--out", str(tmp_path / "ft"), "--json"])  # fmt: skip
    assert done.exit_code == 0, done.output
    first = json.loads((tmp_path / "ft/log.jsonl").read_text().splitlines()[0])
    original = json.loads((tiny_release["ft"] / "log.jsonl").read_text().splitlines()[0])
    assert first == original  # the same starting point as the recipe's adapter run: step 0 loss


def test_the_quickstart_fine_tunes_over_a_released_backbone_and_samples_each_composer(
    tiny_release: dict[str, Path], quick_shards: Path, tmp_path: Path
) -> None:
    from gnm_model.quickstart import adapt, sample_each

    shards = open_shards(quick_shards)
    summary = adapt(tiny_release["model"], shards, tmp_path / "run", 20.0, 4, 0, lambda line: None)
    assert summary["steps"] >= 10 and summary["final_valid_loss"] > 0
    written = sample_each(tmp_path / "run", shards, tmp_path / "samples", 2, 0)
    assert len(written) == len(DEFAULT_COMPOSERS)
    assert {p.stem for p in (tmp_path / "samples").glob("*.mid")} == set(DEFAULT_COMPOSERS)


def _recipe(root: Path, shards: Path) -> Path:
    env = {**os.environ, "RUNS": str(root / "runs"), "MODEL": str(root / "model"),
           "SHARDS": str(shards), "PRESET": "tiny", "PRETRAIN_STEPS": "4", "ADAPTER_STEPS": "2", "SAMPLE_BARS": "2",
           "EVERY": "2", "GNM": str(Path(sys.executable).parent / "gnm")}  # fmt: skip
    done = subprocess.run(["bash", str(REPO / "recipes/gnm-small.sh")], env=env,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return root


def test_the_recipe_reproduces_its_first_checkpoint_and_its_model_bit_for_bit(
    quick_shards: Path, tmp_path: Path
) -> None:
    a = _recipe(tmp_path / "a", quick_shards)
    b = _recipe(tmp_path / "b", quick_shards)
    first = "runs/pretrain/checkpoints/step-0000002/model.safetensors"
    assert sha256_file(a / first) == sha256_file(b / first)
    for name in (WEIGHTS, PRETRAINED):
        assert sha256_file(a / "model" / name) == sha256_file(b / "model" / name)
    meta = json.loads((a / "model/meta.json").read_text())
    assert meta["recipe"]["command"].startswith("bash recipes/gnm-small.sh")
    assert (a / "model/recipe.sh").read_text() == (REPO / "recipes/gnm-small.sh").read_text()
    samples = sorted(p.name for p in (a / "model/samples").glob("*.json"))
    assert len(samples) == 16 and samples[0] == "Bach-0-000.json"
    assert all(
        (a / "model/samples" / s).read_text() == (b / "model/samples" / s).read_text()
        for s in samples
    )


def test_the_shipped_model_reads_the_current_vocabulary() -> None:
    """Change the vocabulary (params.yaml `vocab`) and this fails: retrain with the recipe."""
    shipped = REPO / "models/gnm-small"
    vocab = Vocab(load_params(REPO / "params.yaml").vocab)
    loaded = resolve_model(shipped, vocab)
    assert loaded.config.n_composers == len(vocab.config.composers)
    assert restart_adapters(loaded).weights.keys() == loaded.weights.keys()
    size = sum(p.stat().st_size for p in shipped.rglob("*") if p.is_file())
    assert size <= 20 * 2**20, f"models/gnm-small is {size / 2**20:.1f} MiB (the limit is 20)"
    meta = json.loads((shipped / "meta.json").read_text())
    assert [s["mode"] for s in meta["stages"]] == ["pretrain", "adapters"]
    assert meta["recipe"]["command"].startswith(
        "bash recipes/gnm-small.sh (RUNS=out/runs/gnm-small"
    )
    tokenizer = Tokenizer(vocab)
    for sample in sorted((shipped / "samples").glob("*.json")):
        body = json.loads(sample.read_text())
        assert len(tokenizer.decode_full(body["ids"], strict=True).score.bars) == 32, sample
