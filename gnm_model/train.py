"""Pre-training and fine-tuning: AdamW, warmup + cosine, clipping, accumulation, exact resume.

Modes: `pretrain` trains everything on every genre with `Composer_None`; `adapters` freezes the
backbone (every tensor but the adapters and the composer embeddings) and samples composers evenly;
`full` trains everything on the composers (what the paper's code does). Batches are a function of
(seed, rank, step) and the RNG state is checkpointed, so `resume` reproduces the losses of an
uninterrupted run. Under `torchrun` (WORLD_SIZE > 1) the model is wrapped in DDP (gloo on CPU,
NCCL on CUDA); rank 0 logs, evaluates and writes checkpoints.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch.nn import functional as F

from gnm_model import checkpoint as ckpt
from gnm_model.config import ModelConfig, TrainConfig
from gnm_model.data import (
    IGNORE,
    DataConfig,
    TokenSplit,
    WindowBatches,
    Windows,
    evaluation_batches,
)
from gnm_model.transformer import GnMTransformer
from pipeline.errors import GnmError
from pipeline.io.shards import ShardSet
from pipeline.tokenizer.vocab import Vocab

Mode = Literal["pretrain", "adapters", "full"]
LOG_LINE_S = 60.0  # without a terminal, a progress line once a step ends this long after the last


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup to `lr`, then cosine decay to `lr * min_lr_ratio` at the last step."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + (cfg.lr - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _distributed() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend)
    rank = torch.distributed.get_rank() if world > 1 else 0
    return rank, world


def loss_of(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, rows: torch.Tensor
) -> torch.Tensor:
    """Mean next-token cross-entropy over the non-padding targets."""
    logits, _ = model(x, rows)
    return F.cross_entropy(
        logits.reshape(-1, logits.size(-1)).float(), y.reshape(-1), ignore_index=IGNORE
    )


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, batches: Sequence[tuple[torch.Tensor, ...]], device: torch.device
) -> float:
    """Token-weighted mean loss over fixed batches."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for x, y, rows in batches:
        x, y, rows = x.to(device), y.to(device), rows.to(device)
        logits, _ = model(x, rows)
        total += F.cross_entropy(
            logits.reshape(-1, logits.size(-1)).float(),
            y.reshape(-1),
            ignore_index=IGNORE,
            reduction="sum",
        ).item()
        count += int((y != IGNORE).sum())
    model.train(was_training)
    return total / max(count, 1)


def _freeze_backbone(model: GnMTransformer) -> None:
    for _, p in model.backbone_parameters():
        p.requires_grad_(False)


def _write_log(run: Path, record: dict[str, Any]) -> None:
    with (run / "log.jsonl").open("a") as fh:
        fh.write(json.dumps(record, sort_keys=True) + "\n")


def _truncate_log(run: Path, step: int) -> None:
    """Drop log lines written after checkpoint `step` (by the run that was interrupted)."""
    path = run / "log.jsonl"
    if not path.is_file():
        return
    keep = [
        line for line in path.read_text().splitlines() if json.loads(line).get("step", 0) <= step
    ]
    path.write_text("".join(line + "\n" for line in keep))


def train(
    run: Path,
    model_cfg: ModelConfig,
    shards: ShardSet,
    cfg: TrainConfig,
    mode: Mode = "pretrain",
    composers: Sequence[str] | None = None,
    init: ckpt.Checkpoint | None = None,
    resume: bool = False,
    device: str | None = None,
    echo: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train; return a summary (initial and final validation loss, steps, tokens/s)."""
    vocab: Vocab = shards.vocab
    rank, world = _distributed()
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(cfg.seed)
    model_cfg = model_cfg.for_vocab(vocab)
    model = GnMTransformer(model_cfg).to(dev)
    if init is not None:
        model.load_state_dict(dict(init.weights))
    if mode == "adapters":
        _freeze_backbone(model)
    trainable = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in trainable if p.dim() >= 2]
    no_decay = [p for p in trainable if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr, betas=(0.9, 0.95),
    )  # fmt: skip
    setup = {
        "mode": mode,
        "composers": list(composers) if composers else None,
        "train": dataclasses.asdict(cfg),
        "config": model_cfg.to_json(),
        "from": str(init.folder) if init is not None else None,
        "world_size": world,
    }
    start = 0
    if rank == 0:
        run.mkdir(parents=True, exist_ok=True)
    if resume and (run / ckpt.LATEST).is_file():
        last = ckpt.load(ckpt.latest(run), vocab)
        saved = json.loads((run / "run.json").read_text())
        if {k: saved[k] for k in ("mode", "composers", "train", "config")} != {k: setup[k] for k in ("mode", "composers", "train", "config")}:  # fmt: skip
            raise GnmError(f"{run}: --resume with different settings than the run was started with")
        model.load_state_dict(last.weights)
        ckpt.restore_optimizer(optimizer, last.state, last.meta["optimizer_param_groups"])
        torch.set_rng_state(last.state["rng.torch"])
        start = last.step
        if rank == 0:
            _truncate_log(run, start)
    elif rank == 0:
        if (run / ckpt.LATEST).exists():
            raise GnmError(
                f"{run}: already holds a run (use --resume to continue it, or another --out)"
            )
        vocab.save(run / "vocab.json")
        (run / "run.json").write_text(json.dumps(setup, indent=1, sort_keys=True) + "\n")
    conditioned = mode != "pretrain"
    train_data = TokenSplit.load(shards, "train", composers if conditioned else None)
    valid_data = TokenSplit.load(shards, "valid", composers if conditioned else None)
    data_cfg = DataConfig(
        context=model_cfg.context, batch_size=cfg.batch_size, seed=cfg.seed, transpose=cfg.transpose,
        balanced=conditioned, conditioned=conditioned, rank=rank,
    )  # fmt: skip
    windows = Windows(train_data, data_cfg)
    valid = evaluation_batches(
        valid_data, model_cfg.context, cfg.batch_size, cfg.eval_batches, conditioned
    )
    net: torch.nn.Module = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model)
    if cfg.compile:
        net = torch.compile(net)  # type: ignore[assignment]
    loader = torch.utils.data.DataLoader(
        WindowBatches(windows, start * cfg.accumulation, cfg.steps * cfg.accumulation),
        batch_size=None, num_workers=cfg.workers,
    )  # fmt: skip
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if dev.type == "cuda"
        else contextlib.nullcontext()
    )
    summary: dict[str, Any] = {
        "start_step": start,
        "train_tokens": train_data.n_tokens,
        "valid_windows": sum(b[0].size(0) for b in valid),
    }
    if rank == 0 and start == 0:
        summary["initial_valid_loss"] = evaluate(model, valid, dev)
        _write_log(run, {"step": 0, "valid_loss": summary["initial_valid_loss"]})
    bar = _Progress(
        cfg.steps, start, echo or (lambda line: print(line, file=sys.stderr)), rank == 0
    )
    started = time.perf_counter()
    step = start
    tokens_seen = 0
    micro = 0
    model.train()
    last_loss = float("nan")
    for x, y, rows in loader:
        x, y, rows = x.to(dev), y.to(dev), rows.to(dev)
        with autocast:
            loss = loss_of(net, x, y, rows) / cfg.accumulation
        loss.backward()
        tokens_seen += int((y != IGNORE).sum()) * world
        micro += 1
        last_loss = loss.item() * cfg.accumulation
        if micro % cfg.accumulation:
            continue
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, cfg)
        grad_norm = torch.nn.utils.clip_grad_norm_(trainable, cfg.grad_clip).item()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        elapsed = time.perf_counter() - started
        out_of_time = cfg.max_seconds > 0 and elapsed >= cfg.max_seconds
        if rank == 0:
            record: dict[str, Any] = {
                "step": step,
                "loss": last_loss,
                "lr": lr_at(step - 1, cfg),
                "grad_norm": grad_norm,
            }
            if step % cfg.eval_every == 0 or step == cfg.steps or out_of_time:
                record["valid_loss"] = evaluate(model, valid, dev)
            rate = round(tokens_seen / max(elapsed, 1e-9))
            bar.update(step, f"loss {last_loss:.3f}  {rate:,} tok/s")
            if step % cfg.log_every == 0 or "valid_loss" in record:
                record["tokens_per_s"] = rate
                _write_log(run, record)
                bar.line(
                    f"step {step}/{cfg.steps}  loss {last_loss:.4f}"
                    + (f"  valid {record['valid_loss']:.4f}" if "valid_loss" in record else "")
                    + f"  {rate:,} tok/s"
                )
            if step % cfg.checkpoint_every == 0 or step == cfg.steps or out_of_time:
                ckpt.save(run, step, model, optimizer, vocab, setup)
            if "valid_loss" in record:
                summary["final_valid_loss"] = record["valid_loss"]
        if out_of_time:
            summary["stopped_early"] = True
            break
    bar.close()
    if world > 1:
        torch.distributed.barrier()
    summary.update(
        steps=step, seconds=round(time.perf_counter() - started, 2),
        tokens_per_s=round(tokens_seen / max(time.perf_counter() - started, 1e-9)), last_loss=last_loss,
    )  # fmt: skip
    return summary


class _Progress:
    """A rich progress bar with loss and tokens/s on a terminal; log lines otherwise."""

    def __init__(self, total: int, done: int, say: Callable[[str], None], enabled: bool) -> None:
        self.say = say
        self.live: Any = None
        self.enabled, self.total = enabled, total
        self.last_line = time.perf_counter()
        if enabled and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self.live = Progress(
                TextColumn("train"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}"),
                TimeRemainingColumn(), console=Console(stderr=True), transient=True,
            )  # fmt: skip
            self.live.start()
            self.task = self.live.add_task("train", total=total, completed=done, status="")

    def update(self, step: int, status: str) -> None:
        if self.live is not None:
            self.live.update(self.task, completed=step, status=status)
        elif self.enabled and time.perf_counter() - self.last_line >= LOG_LINE_S:
            self.line(f"step {step}/{self.total}  {status}")  # a log still shows where it is

    def line(self, text: str) -> None:
        self.last_line = time.perf_counter()
        if self.live is not None:
            self.live.console.print(text)
        else:
            self.say(text)

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
