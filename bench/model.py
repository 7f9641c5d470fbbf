"""Model benchmark: training tokens/s and peak memory, generation with and without the KV cache,
and the shard loader's rate against the trainer's.

Each training measurement runs in its own Python process (so its peak RSS is its own): a few
warm-up steps, then timed optimizer steps of the preset on full-context batches drawn from the
shards by the real loader. Generation: 1024 new tokens from the `small` preset (context raised to
1100 so no re-windowing happens) under the grammar, with the cache and without it (the full
prefix re-run at every step), same seed. Loader: batches/s of `Windows.batch` for the trainer's
batch shape, in tokens/s, over the trainer's tokens/s. With a CUDA device, the paper preset in
bf16 as well (tokens/s, peak memory, model FLOPs utilisation against the card's bf16 peak).

    python bench/model.py --shards data/default/shards       # about 3 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BF16_PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0}  # dense bf16, per the vendor


def train_rate(
    preset_name: str, shards_dir: str, steps: int, batch_size: int, device: str
) -> dict[str, Any]:
    """Tokens/s of optimizer steps (this process), peak RSS and, on CUDA, memory and MFU."""
    import torch

    from gnm_model.config import preset
    from gnm_model.data import DataConfig, TokenSplit, Windows
    from gnm_model.train import loss_of
    from gnm_model.transformer import GnMTransformer
    from pipeline.io.shards import open_shards

    shards = open_shards(Path(shards_dir))
    cfg = preset(preset_name).for_vocab(shards.vocab)
    dev = torch.device(device)
    model = GnMTransformer(cfg).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    windows = Windows(
        TokenSplit.load(shards, "train"), DataConfig(context=cfg.context, batch_size=batch_size)
    )
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if dev.type == "cuda"
        else torch.autocast("cpu", enabled=False)
    )
    tokens = 0
    started = 0.0
    for step in range(steps + 2):
        if step == 2:
            if dev.type == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
            tokens = 0
        x, y, rows = (t.to(dev) for t in windows.batch(step))
        with autocast:
            loss = loss_of(model, x, y, rows)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        tokens += x.numel()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    out: dict[str, Any] = {
        "preset": preset_name, "device": device, "batch_size": batch_size, "context": cfg.context,
        "steps": steps, "tokens_per_s": round(tokens / seconds),
        "parameters": model.parameter_groups()["total"],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }  # fmt: skip
    if dev.type == "cuda":
        name = torch.cuda.get_device_name()
        out["gpu"] = name
        out["peak_gpu_memory_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        # 6 N per token for the dense weights plus attention's 12 L T d (Kaplan-style count).
        flops_per_token = 6 * out["parameters"] + 12 * cfg.n_layers * cfg.context * cfg.d_model
        peak = next((v for k, v in BF16_PEAK_TFLOPS.items() if k in name), None)
        out["model_flops_utilisation"] = (
            round(flops_per_token * out["tokens_per_s"] / (peak * 1e12), 4) if peak else None
        )
    return out


def generation_rate(new_tokens: int) -> dict[str, Any]:
    """Tokens/s generating `new_tokens` with and without the KV cache (same seed)."""
    import torch

    from gnm_model.config import preset
    from gnm_model.generate import SampleConfig, Sampler
    from gnm_model.transformer import GnMTransformer
    from pipeline.tokenizer import Vocab, VocabConfig

    vocab = Vocab(VocabConfig())
    cfg = dataclasses.replace(preset("small"), context=new_tokens + 76).for_vocab(vocab)
    torch.manual_seed(0)
    sampler = Sampler(GnMTransformer(cfg), vocab)
    out: dict[str, Any] = {"preset": "small", "context": cfg.context}
    for cache in (True, False):
        sample_cfg = SampleConfig(bars=10_000, max_tokens=new_tokens, use_cache=cache)
        started = time.perf_counter()
        ids = sampler.sample("Bach", sample_cfg, torch.Generator().manual_seed(1))
        seconds = time.perf_counter() - started
        out["with_cache" if cache else "without_cache"] = {"tokens": len(ids), "seconds": round(seconds, 2), "tokens_per_s": round(len(ids) / seconds, 1)}  # fmt: skip
    out["speedup"] = round(
        out["with_cache"]["tokens_per_s"] / out["without_cache"]["tokens_per_s"], 2
    )
    return out


def loader_rate(shards_dir: str, preset_name: str, batch_size: int, batches: int) -> dict[str, Any]:
    """Tokens/s the window sampler produces for the trainer's batch shape (one process)."""
    from gnm_model.config import preset
    from gnm_model.data import DataConfig, TokenSplit, Windows
    from pipeline.io.shards import open_shards

    shards = open_shards(Path(shards_dir))
    started = time.perf_counter()
    split = TokenSplit.load(shards, "train")
    load_s = time.perf_counter() - started
    ctx = preset(preset_name).context
    windows = Windows(split, DataConfig(context=ctx, batch_size=batch_size))
    started = time.perf_counter()
    for step in range(batches):
        windows.batch(step)
    seconds = time.perf_counter() - started
    return {"split_tokens": split.n_tokens, "load_s": round(load_s, 2), "context": ctx, "batch_size": batch_size,
            "tokens_per_s": round(batches * batch_size * ctx / seconds)}  # fmt: skip


def _child(kind: str, args: list[str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", kind, *args],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shards", default=str(REPO / "data" / "default" / "shards"))
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "model.json"))
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *params = args.child
        if kind == "train":
            print(
                json.dumps(
                    train_rate(params[0], args.shards, int(params[1]), int(params[2]), params[3])
                )
            )
        elif kind == "generate":
            print(json.dumps(generation_rate(int(params[0]))))
        elif kind == "loader":
            print(json.dumps(loader_rate(args.shards, params[0], int(params[1]), int(params[2]))))
        return
    import torch

    result: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__,
                    "threads": torch.get_num_threads(), "cuda": torch.cuda.is_available()},
        "shards": args.shards,
    }  # fmt: skip
    result["train"] = {}
    for preset_name, batch in (("tiny", 16), ("small", 8)):
        result["train"][preset_name] = r = _child(
            "train", [preset_name, str(args.steps), str(batch), "cpu"]
        )
        print(
            f"train {preset_name} (CPU): {r['tokens_per_s']:,} tokens/s, peak RSS {r['peak_rss_mb']} MB"
        )
    if torch.cuda.is_available():
        result["train"]["paper_cuda"] = r = _child("train", ["paper", str(args.steps), "8", "cuda"])
        print(
            f"train paper ({r['gpu']}): {r['tokens_per_s']:,} tokens/s, {r['peak_gpu_memory_gb']} GB, MFU {r['model_flops_utilisation']}"
        )
    result["train_tokens_per_s"] = result["train"]["small"]["tokens_per_s"]
    result["generate"] = g = _child("generate", ["1024"])
    print(
        f"generate 1024 tokens: {g['with_cache']['tokens_per_s']} tok/s cached, {g['without_cache']['tokens_per_s']} uncached: {g['speedup']}x"
    )
    result["loader"] = ld = _child("loader", ["small", "8", "200"])
    ld["over_small_trainer"] = round(ld["tokens_per_s"] / result["train_tokens_per_s"], 1)
    print(
        f"loader: {ld['tokens_per_s']:,} tokens/s = {ld['over_small_trainer']}x the small trainer's consumption"
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
