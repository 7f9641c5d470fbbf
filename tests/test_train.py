from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from gnm_model import checkpoint as ckpt
from gnm_model.cli import main
from gnm_model.config import preset
from gnm_model.train import TrainConfig, lr_at, train
from pipeline.errors import CheckpointError
from pipeline.io.atomic import sha256_file
from pipeline.io.shards import open_shards

FAST = TrainConfig(
    steps=80, batch_size=8, lr=3e-3, warmup=10, eval_every=40, checkpoint_every=40, log_every=20
)


def losses(run: Path) -> dict[int, float]:
    lines = [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in lines if "loss" in r}


@pytest.fixture(scope="module")
def pretrained(
    quick_shards: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, float]]:
    run = tmp_path_factory.mktemp("runs") / "pre"
    summary = train(
        run, preset("tiny"), open_shards(quick_shards), FAST, "pretrain", echo=lambda s: None
    )
    return run, summary


def test_a_tiny_pretrain_lowers_validation_loss_by_30_percent(
    pretrained: tuple[Path, dict[str, float]],
) -> None:
    run, summary = pretrained
    assert summary["final_valid_loss"] <= 0.7 * summary["initial_valid_loss"], summary
    assert (run / "latest.json").is_file() and (run / "vocab.json").is_file()
    meta = json.loads((ckpt.latest(run) / "meta.json").read_text())
    assert meta["step"] == 80 and meta["mode"] == "pretrain"


def test_adapter_finetuning_leaves_every_backbone_tensor_bit_identical(
    pretrained: tuple[Path, dict[str, float]], quick_shards: Path, tmp_path: Path
) -> None:
    run, _ = pretrained
    init = ckpt.load(ckpt.latest(run))
    cfg = TrainConfig(steps=30, batch_size=8, lr=3e-3, warmup=5, eval_every=30, checkpoint_every=30)
    summary = train(tmp_path / "ft", init.config, open_shards(quick_shards), cfg, "adapters",
                    ["Bach", "Beethoven", "Mozart", "Chopin"], init=init, echo=lambda s: None)  # fmt: skip
    after = ckpt.load(ckpt.latest(tmp_path / "ft")).weights
    changed = [k for k in after if not torch.equal(after[k], init.weights[k])]
    assert changed and all(".adapter." in k or k.startswith("composers.") for k in changed)
    assert any(".adapter." in k for k in changed)
    assert summary["final_valid_loss"] < summary["initial_valid_loss"]


def test_resume_after_an_interruption_gives_the_same_losses(
    quick_shards: Path, tmp_path: Path
) -> None:
    cfg = TrainConfig(
        steps=30, batch_size=4, lr=3e-3, warmup=5, eval_every=10, checkpoint_every=10, log_every=1
    )
    shards = open_shards(quick_shards)
    train(tmp_path / "a", preset("tiny"), shards, cfg, echo=lambda s: None)
    train(tmp_path / "b", preset("tiny"), shards, cfg, echo=lambda s: None)
    # On disk, a run killed just after its step-10 checkpoint: later checkpoints never happened.
    for late in ("step-0000020", "step-0000030"):
        shutil.rmtree(tmp_path / "b" / "checkpoints" / late)
    (tmp_path / "b" / "latest.json").write_text(
        json.dumps({"checkpoint": "step-0000010", "step": 10})
    )
    train(tmp_path / "b", preset("tiny"), shards, cfg, resume=True, echo=lambda s: None)
    assert losses(tmp_path / "a") == losses(tmp_path / "b")
    a = load_file(str(tmp_path / "a/checkpoints/step-0000030/model.safetensors"))
    b = load_file(str(tmp_path / "b/checkpoints/step-0000030/model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_learning_rate_warms_up_then_decays() -> None:
    cfg = TrainConfig(steps=100, lr=1.0, warmup=10, min_lr_ratio=0.1)
    assert lr_at(0, cfg) == pytest.approx(0.1) and lr_at(9, cfg) == pytest.approx(1.0)
    assert lr_at(99, cfg) == pytest.approx(0.1, abs=1e-3) and lr_at(50, cfg) < lr_at(20, cfg)


def test_bad_input_is_a_one_line_error(
    pretrained: tuple[Path, dict[str, float]], quick_shards: Path, tmp_path: Path
) -> None:
    run, _ = pretrained
    runner = CliRunner()
    missing = runner.invoke(
        main,
        ["train", "pretrain", "--shards", str(tmp_path / "none"), "--out", str(tmp_path / "r")],
    )
    assert missing.exit_code == 1 and "index.json: missing" in missing.output
    unknown = runner.invoke(main, ["train", "finetune", "--from", str(run), "--shards", str(quick_shards),
                                   "--composers", "Liszt", "--out", str(tmp_path / "r2"), "--steps", "1"])  # fmt: skip
    assert unknown.exit_code == 1 and "unknown composer Liszt" in unknown.output
    # A checkpoint trained on another vocabulary.
    other = tmp_path / "other"
    shutil.copytree(run, other)
    vocab = json.loads((other / "vocab.json").read_text())
    (other / "vocab.json").write_text(json.dumps({**vocab, "hash": "0" * 64}))
    wrong = runner.invoke(
        main,
        [
            "train",
            "finetune",
            "--from",
            str(other),
            "--shards",
            str(quick_shards),
            "--out",
            str(tmp_path / "r3"),
        ],
    )
    assert (
        wrong.exit_code == 1
        and "vocab" in wrong.output
        and wrong.output[-1] == "\n"
        and wrong.output.count("\n") == 1
    )
    # A corrupted checkpoint.
    broken = tmp_path / "broken"
    shutil.copytree(run, broken)
    weights = ckpt.latest(broken) / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match="sha256 does not match"):
        ckpt.load(ckpt.latest(broken))
    corrupt = runner.invoke(main, ["generate", "--run", str(broken), "--out", str(tmp_path / "s")])
    assert corrupt.exit_code == 1 and "corrupted or tampered" in corrupt.output


def test_ddp_with_two_gloo_processes_trains_and_checkpoints(
    quick_shards: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "gnm_model.cli", "train", "pretrain", "--shards", str(quick_shards), "--preset", "tiny",
         "--steps", "6", "--batch-size", "2", "--eval-every", "3", "--checkpoint-every", "3",
         "--device", "cpu", "--out", str(tmp_path / "ddp"), "--json"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    meta = json.loads((ckpt.latest(tmp_path / "ddp") / "meta.json").read_text())
    assert meta["step"] == 6 and meta["world_size"] == 2


def test_same_inputs_and_seed_give_byte_identical_checkpoints_and_samples(
    quick_shards: Path, tmp_path: Path
) -> None:
    from gnm_model.generate import SampleConfig, Sampler
    from gnm_model.transformer import GnMTransformer

    cfg = TrainConfig(steps=12, batch_size=4, warmup=2, eval_every=6, checkpoint_every=6, seed=11)
    shards = open_shards(quick_shards)
    samples = []
    for name in ("one", "two"):
        train(tmp_path / name, preset("tiny"), shards, cfg, echo=lambda s: None)
        loaded = ckpt.load(ckpt.latest(tmp_path / name))
        model = GnMTransformer(loaded.config.for_vocab(shards.vocab))
        model.load_state_dict(dict(loaded.weights))
        samples.append(
            Sampler(model, shards.vocab).sample(
                "Bach", SampleConfig(bars=4), torch.Generator().manual_seed(5)
            )
        )
    for file in ("model.safetensors", "state.safetensors"):
        one = (tmp_path / "one/checkpoints/step-0000012" / file).read_bytes()
        assert one == (tmp_path / "two/checkpoints/step-0000012" / file).read_bytes(), file
    assert samples[0] == samples[1]


def test_a_checkpoint_that_is_really_a_pickle_is_refused(
    pretrained: tuple[Path, dict[str, float]], tmp_path: Path
) -> None:
    import pickle

    run = tmp_path / "pickled"
    shutil.copytree(pretrained[0], run)
    folder = ckpt.latest(run)
    payload = pickle.dumps({"model": "would run code on load"})
    (folder / "model.safetensors").write_bytes(payload)
    meta = json.loads((folder / "meta.json").read_text())
    meta["sha256"]["model.safetensors"] = sha256_file(
        folder / "model.safetensors"
    )  # a consistent forgery
    (folder / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="unreadable safetensors"):
        ckpt.load(folder)
