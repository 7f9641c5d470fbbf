"""Pipeline benchmark: per-stage wall time and peak memory, shard read throughput, scaling.

Each profile is built in a scratch copy of the repository's pipeline files (dvc.yaml, params.yaml,
corpora/) by running the stages of its dvc.yaml directly, one subprocess per stage, while a
sampler adds up the resident memory of the stage's whole process tree (Dask workers included)
every 50 ms. The ingest cache is shared with the repository (`.cache/gnm`) unless `--cold`, so
ingest figures are cache reads unless said otherwise.

Read throughput: every shard of the largest built profile read end to end through pyarrow
(`iter_batches`, tokens column flattened to numpy) and polars (`read_parquet` + explode), in
tokens/s, compared with the trainer's consumption rate from `bench/results/model.json` when
that benchmark has run (the model issue writes it), else reported as not yet measured.

Scaling: the same stages on 1x, 2x and 4x as many files of one corpus (distinct files, not
copies, so that dedupe keeps them), reporting peak RSS per stage: flat memory means the 4x peak is
close to the 1x peak for every stage.

Synthetic load (`--synthetic`): a generated MIDI corpus (`pipeline.synthetic`, distinct scores,
not copies) of 1x, 3x and 10x the default profile's accepted pieces, each built from a cold ingest
cache, reporting items/s and peak RSS per stage and the growth of the peak from 1x to 10x.

    python bench/build.py                                  # quick profile + scaling (minutes)
    python bench/build.py --profiles default full --scaling-corpus m21-palestrina --scaling-base 300
    python bench/build.py --synthetic --out bench/results/pipeline_synthetic.json   # about an hour
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.build import stage_commands  # noqa: E402


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += p.memory_info().rss  # a child may exit between listing and reading
    return total


def run_measured(command: str, cwd: Path, env: dict[str, str]) -> dict[str, Any]:
    """Run one shell command; wall seconds and the peak RSS of its process tree (MB)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        command, shell=True, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    peak = 0
    watched = psutil.Process(proc.pid)
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            try:
                peak = max(peak, _tree_rss(watched))
            except psutil.NoSuchProcess:
                return
            stop.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = proc.communicate()
    stop.set()
    sampler.join()
    wall = time.perf_counter() - started
    if proc.returncode:
        raise SystemExit(f"stage failed ({proc.returncode}): {command}\n{output.decode()[-3000:]}")
    return {
        "wall_s": round(wall, 2),
        "peak_rss_mb": round(peak / 2**20, 1),
        "output": output.decode().strip().splitlines()[-1:],
    }


def scratch_root(
    base: Path, profile_text: str | None = None, cold: bool = False, data_root: str | None = None
) -> Path:
    """A copy of dvc.yaml, params.yaml and corpora/ (the default profile replaced if asked)."""
    base.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dvc.yaml", base / "dvc.yaml")
    shutil.copytree(REPO / "corpora", base / "corpora")
    params = (REPO / "params.yaml").read_text()
    if data_root is None:
        data_root = os.environ.get("GNM_DATA_ROOT", str(REPO.parent / "shared" / "data"))
    params = params.replace("data_root: ../shared/data", f"data_root: {data_root}")
    if profile_text is not None:
        start = params.index("  default:\n", params.index("profiles:"))
        end = params.index("  quick:\n", start)
        params = params[:start] + f"  default:\n    corpora: {profile_text}\n" + params[end:]
    (base / "params.yaml").write_text(params)
    (base / ".cache").mkdir()
    if not cold:
        (REPO / ".cache" / "gnm").mkdir(parents=True, exist_ok=True)
        (base / ".cache" / "gnm").symlink_to(REPO / ".cache" / "gnm")
    return base


def build_profile(root: Path, profile: str, env: dict[str, str]) -> dict[str, Any]:
    """Run every stage of the profile; per-stage figures."""
    stages = {}
    for name, command in stage_commands(REPO / "dvc.yaml", profile):
        stages[name] = run_measured(command, root, env)
        print(
            f"  {profile:>8} {name:<9} {stages[name]['wall_s']:>8.1f} s {stages[name]['peak_rss_mb']:>8.0f} MB  {stages[name]['output'][0][:90] if stages[name]['output'] else ''}"
        )
    return stages


def read_throughput(shards: Path) -> dict[str, Any]:
    """Tokens/s reading every shard through pyarrow and through polars (best of 3)."""
    import numpy as np
    import polars as pl
    import pyarrow.parquet as pq

    files = sorted(shards.glob("*.parquet"))
    total = 0
    for f in files:
        total += int(
            pq.ParquetFile(f).metadata.num_rows
            and pq.read_table(f, columns=["token_count"]).column("token_count").to_numpy().sum()
        )

    def with_pyarrow() -> int:
        n = 0
        for f in files:
            for batch in pq.ParquetFile(f).iter_batches(batch_size=512, columns=["tokens"]):
                n += np.asarray(batch.column(0).values).size
        return n

    def with_polars() -> int:
        n = 0
        for f in files:
            n += pl.read_parquet(f, columns=["tokens"]).explode("tokens").height
        return n

    out: dict[str, Any] = {"files": len(files), "tokens": total}
    for name, fn in (("pyarrow", with_pyarrow), ("polars", with_polars)):
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            assert fn() == total
            best = min(best, time.perf_counter() - started)
        out[f"{name}_tokens_per_s"] = round(total / best)
    model = REPO / "bench" / "results" / "model.json"
    trainer = None
    if model.is_file():
        trainer = json.loads(model.read_text()).get("train_tokens_per_s")
    out["trainer_tokens_per_s"] = trainer
    out["read_over_trainer"] = round(out["pyarrow_tokens_per_s"] / trainer, 1) if trainer else None
    return out


def synthetic_scaling(
    tmp: Path, base: int, factors: list[int], env: dict[str, str]
) -> dict[str, Any]:
    """Build 1x, 3x, 10x (`factors`) of `base` synthetic pieces, each from a cold cache."""
    from pipeline import synthetic

    data_root = tmp / "synthetic-data"
    pieces = base * max(factors)
    started = time.perf_counter()
    synthetic.write_corpus(data_root / "synthetic", pieces)
    print(f"synthetic corpus: {pieces} MIDI files in {time.perf_counter() - started:.0f} s")
    out: dict[str, Any] = {"base_pieces": base, "runs": {}}
    for factor in factors:
        n = base * factor
        root = scratch_root(
            tmp / f"synthetic{factor}", json.dumps({"synthetic": n}), True, str(data_root)
        )
        (root / "corpora" / "synthetic.yaml").write_text(
            synthetic.declaration("synthetic", "synthetic")
        )
        print(f"synthetic {factor}x ({n} pieces, cold ingest cache)")
        stages = build_profile(root, "default", env)
        stats = json.loads((root / "reports/default/stats.json").read_text())
        ledger = json.loads((root / "reports/default/ledger.json").read_text())
        out["runs"][f"{factor}x"] = {
            "pieces_in": n,
            "accepted": stats["totals"]["pieces"],
            "notes": stats["totals"]["notes"],
            "tokens": stats["totals"]["tokens"],
            "ledger": {k: ledger.get(k) for k in ("items", "accepted", "duplicate", "quarantined", "adds_up")},
            "wall_s": {k: v["wall_s"] for k, v in stages.items()},
            "items_per_s": {k: round(n / v["wall_s"], 1) for k, v in stages.items()},
            "peak_rss_mb": {k: v["peak_rss_mb"] for k, v in stages.items()},
        }  # fmt: skip
        shutil.rmtree(root / ".cache", ignore_errors=True)  # a cold cache of 10x is a gigabyte
    lo, hi = f"{min(factors)}x", f"{max(factors)}x"
    runs = out["runs"]
    out[f"peak_rss_{hi}_over_{lo}"] = {
        stage: round(runs[hi]["peak_rss_mb"][stage] / runs[lo]["peak_rss_mb"][stage], 2)
        for stage in runs[lo]["peak_rss_mb"]
    }
    print(f"peak RSS {hi} / {lo}: {out[f'peak_rss_{hi}_over_{lo}']}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profiles", nargs="*", default=["quick"])
    parser.add_argument("--scaling-corpus", default="m21-palestrina")
    parser.add_argument("--scaling-base", type=int, default=100, help="files at 1x")
    parser.add_argument("--no-scaling", action="store_true")
    parser.add_argument("--cold", action="store_true", help="an empty ingest cache per build")
    parser.add_argument(
        "--synthetic", action="store_true", help="only the synthetic 1x/3x/10x load test"
    )
    parser.add_argument(
        "--synthetic-base", type=int, default=13708, help="pieces at 1x (the default profile's)"
    )
    parser.add_argument("--synthetic-factors", type=int, nargs="*", default=[1, 3, 10])
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "pipeline.json"))
    args = parser.parse_args()

    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    result: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "memory_gb": round(psutil.virtual_memory().total / 2**30, 1)},
        "ingest_cache": "cold" if args.cold else "shared (.cache/gnm): ingest figures are mostly cache reads",
        "profiles": {},
        "scaling": None,
    }  # fmt: skip
    if args.synthetic:
        with tempfile.TemporaryDirectory(prefix="gnm-bench-") as tmp:
            result["profiles"] = None
            result["ingest_cache"] = "cold for every synthetic build"
            result["synthetic"] = synthetic_scaling(
                Path(tmp), args.synthetic_base, args.synthetic_factors, env
            )
        write_result(result, Path(args.out))
        return
    with tempfile.TemporaryDirectory(prefix="gnm-bench-") as tmp:
        largest: tuple[int, Path] | None = None
        for profile in args.profiles:
            print(f"profile {profile}")
            profile_yaml = None
            if profile != "default":  # build any profile as the scratch root's `default`
                import yaml

                body = yaml.safe_load((REPO / "params.yaml").read_text())["profiles"][profile][
                    "corpora"
                ]
                profile_yaml = json.dumps(body)
            root = scratch_root(Path(tmp) / profile, profile_yaml, args.cold)
            started = time.perf_counter()
            stages = build_profile(root, "default", env)
            stats = json.loads((root / "reports/default/stats.json").read_text())
            result["profiles"][profile] = {
                "wall_s": round(time.perf_counter() - started, 1),
                "stages": {k: {"wall_s": v["wall_s"], "peak_rss_mb": v["peak_rss_mb"]} for k, v in stages.items()},
                "totals": stats["totals"],
                "by_genre": stats["by"]["genre"],
                "by_composer": stats["by"]["composer"],
                "ledger": json.loads((root / "reports/default/ledger.json").read_text()),
            }  # fmt: skip
            tokens = stats["totals"]["tokens"]
            if largest is None or tokens > largest[0]:
                largest = (tokens, root / "data/default/shards")
        if largest is not None:
            result["read_throughput"] = read_throughput(largest[1])
            print(f"read throughput: {result['read_throughput']}")
        if not args.no_scaling:
            result["scaling"] = {"corpus": args.scaling_corpus, "runs": {}}
            for factor in (1, 2, 4):
                files = args.scaling_base * factor
                root = scratch_root(
                    Path(tmp) / f"scale{factor}",
                    json.dumps({args.scaling_corpus: files}),
                    args.cold,
                )
                print(f"scaling {factor}x ({files} files of {args.scaling_corpus})")
                stages = build_profile(root, "default", env)
                stats = json.loads((root / "reports/default/stats.json").read_text())
                result["scaling"]["runs"][f"{factor}x"] = {
                    "files": files, "pieces": stats["totals"]["pieces"], "tokens": stats["totals"]["tokens"],
                    "peak_rss_mb": {k: v["peak_rss_mb"] for k, v in stages.items()},
                    "wall_s": {k: v["wall_s"] for k, v in stages.items()},
                }  # fmt: skip
            runs = result["scaling"]["runs"]
            result["scaling"]["peak_rss_4x_over_1x"] = {
                stage: round(runs["4x"]["peak_rss_mb"][stage] / runs["1x"]["peak_rss_mb"][stage], 2)
                for stage in runs["1x"]["peak_rss_mb"]
            }
            print(f"peak RSS 4x / 1x: {result['scaling']['peak_rss_4x_over_1x']}")
    write_result(result, Path(args.out))


def write_result(result: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
