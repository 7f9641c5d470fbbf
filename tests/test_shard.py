from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import GnmError
from pipeline.io.shards import open_shards
from pipeline.stages.shard import (
    SHARD_SCHEMA,
    ShardConfig,
    run,
    split_of,
)
from pipeline.stages.tokenize import TOKENS_SCHEMA
from pipeline.tokenizer import Vocab, VocabConfig

VOCAB = Vocab(VocabConfig())


def token_rows(corpus: str, n: int, length: int = 40) -> list[dict[str, object]]:
    """Synthetic tokens.parquet rows (the shard stage never looks inside the tokens)."""
    rows = []
    for i in range(n):
        tokens = [VOCAB.composer_id(None), VOCAB.tempo_base, VOCAB.index["BOS"]]
        tokens += [VOCAB.index["Bar"], VOCAB.ts_base] * ((length + i % 7) // 2) + [
            VOCAB.index["EOS"]
        ]
        row = {f.name: None for f in TOKENS_SCHEMA}
        row.update(
            id=f"{corpus}/piece{i:04d}.mxl", corpus=corpus, genre="classical", notes=0,
            tokens=tokens, token_count=len(tokens), bars=(len(tokens) - 4) // 2,
            bar_offsets=list(range(3, len(tokens) - 1, 2)), tempo_bin=0,
            composer_token="Composer_None", meters=["4/4"] * ((len(tokens) - 4) // 2),
        )  # fmt: skip
        rows.append(row)
    return rows


def write_tokens(path: Path, rows: list[dict[str, object]]) -> Path:
    rows = sorted(rows, key=lambda r: str(r["id"]))
    pq.write_table(pa.Table.from_pylist(rows, schema=TOKENS_SCHEMA), path)
    return path


def shard_ids(folder: Path) -> dict[str, str]:
    out = {}
    for path in open_shards(folder, verify_hashes=True).files():
        table = pq.read_table(path, columns=["id", "split"]).to_pydict()
        out.update(zip(table["id"], table["split"], strict=True))
    return out


def test_split_fractions_are_close_to_the_declared_ones() -> None:
    cfg = ShardConfig()
    counts = Counter(split_of(f"group-{i}", cfg) for i in range(20_000))
    assert abs(counts["train"] / 20_000 - 0.9) < 0.01
    assert abs(counts["valid"] / 20_000 - 0.05) < 0.006


@settings(max_examples=30, deadline=None)
@given(st.text(min_size=1, max_size=40))
def test_split_depends_only_on_the_group_and_the_salt(group: str) -> None:
    cfg = ShardConfig()
    assert split_of(group, cfg) == split_of(group, ShardConfig())
    assert split_of(group, ShardConfig(splits={"train": 0, "valid": 0, "test": 1})) == "test"


def test_duplicates_share_their_group_split_and_adding_a_corpus_moves_nothing(
    tmp_path: Path,
) -> None:
    cfg = ShardConfig(target_tokens=500)
    first = token_rows("alpha", 60)
    groups = {f"alpha/piece{i:04d}.mxl": "alpha/piece0000.mxl" for i in range(5)}
    run(write_tokens(tmp_path / "a.parquet", first), groups, cfg, VOCAB, tmp_path / "a")
    before = shard_ids(tmp_path / "a")
    assert len({before[f"alpha/piece{i:04d}.mxl"] for i in range(5)}) == 1
    both = first + token_rows("beta", 80)
    run(write_tokens(tmp_path / "b.parquet", both), groups, cfg, VOCAB, tmp_path / "b")
    after = shard_ids(tmp_path / "b")
    assert {k: after[k] for k in before} == before
    assert len(after) == 140


def test_same_inputs_give_byte_identical_shards_and_an_index_that_checks(tmp_path: Path) -> None:
    cfg = ShardConfig(target_tokens=700)
    tokens = write_tokens(tmp_path / "t.parquet", token_rows("alpha", 120))
    one = run(tokens, {}, cfg, VOCAB, tmp_path / "one")
    two = run(tokens, {}, cfg, VOCAB, tmp_path / "two")
    assert one == two and len(one["shards"]) > 3
    for shard in one["shards"]:
        assert (tmp_path / "one" / shard["file"]).read_bytes() == (
            tmp_path / "two" / shard["file"]
        ).read_bytes()
        table = pq.read_table(tmp_path / "one" / shard["file"])
        assert table.schema.remove_metadata() == SHARD_SCHEMA
        assert table.column("id").to_pylist() == sorted(table.column("id").to_pylist())
    assert sum(s["rows"] for s in one["shards"]) == 120
    assert one["splits"]["train"]["tokens"] + one["splits"]["valid"]["tokens"] + one["splits"]["test"]["tokens"] == sum(r["token_count"] for r in token_rows("alpha", 120))  # type: ignore[misc]  # fmt: skip


def test_a_smaller_rebuild_removes_stale_shards_and_a_changed_shard_is_caught(
    tmp_path: Path,
) -> None:
    run(write_tokens(tmp_path / "big.parquet", token_rows("alpha", 200)), {}, ShardConfig(target_tokens=300), VOCAB, tmp_path / "s")  # fmt: skip
    run(write_tokens(tmp_path / "small.parquet", token_rows("alpha", 20)), {}, ShardConfig(target_tokens=300), VOCAB, tmp_path / "s")  # fmt: skip
    listed = {s["file"] for s in open_shards(tmp_path / "s").index["shards"]}
    assert {p.name for p in (tmp_path / "s").glob("*.parquet")} == listed
    victim = tmp_path / "s" / sorted(listed)[0]
    victim.write_bytes(victim.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(GnmError, match="sha256 differs"):
        open_shards(tmp_path / "s", verify_hashes=True)
    (tmp_path / "s" / "index.json").write_text('{"format": "gnm-shards/1"}')
    with pytest.raises(GnmError, match="invalid shard index"):
        open_shards(tmp_path / "s")


KILL_SCRIPT = """
import sys
from pathlib import Path
from pipeline.stages.shard import ShardConfig, run
from pipeline.tokenizer import Vocab, VocabConfig
run(Path(sys.argv[1]), {}, ShardConfig(target_tokens=int(sys.argv[3])), Vocab(VocabConfig()), Path(sys.argv[2]))
"""


@pytest.mark.corpus
def test_a_shard_stage_killed_at_random_points_then_rerun_matches_a_clean_build(
    tmp_path: Path,
) -> None:
    tokens = write_tokens(tmp_path / "t.parquet", token_rows("alpha", 3000, length=300))
    target = "3000"
    clean = tmp_path / "clean"
    subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(tokens), str(clean), target], check=True)
    expected = {p.name: p.read_bytes() for p in clean.iterdir()}
    assert len(expected) > 100
    out = tmp_path / "killed"
    visible_at_kill = []
    # Kill once this trial has renamed this many shards into place (0: before the first one).
    for trial, written in enumerate([0, 3, 20, 60, 150, 250]):
        started = time.time_ns()
        proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(tokens), str(out), target])
        done_now = 0
        while proc.poll() is None and done_now < max(written, 1):
            done_now = 0
            # Whatever is visible under a final name is a complete shard of the clean build.
            for path in list(out.glob("[!.]*.parquet")) if out.exists() else []:
                try:
                    data, mtime = path.read_bytes(), path.stat().st_mtime_ns
                except FileNotFoundError:
                    continue  # replaced while we looked
                assert data == expected[path.name], (trial, path.name)
                done_now += mtime >= started
            if written == 0 and out.exists() and any(out.glob(".*.tmp*")):
                break
            time.sleep(0.005)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        visible_at_kill.append(done_now)
    # At least one kill landed in the middle of writing shards.
    assert any(0 < n < len(expected) - 2 for n in visible_at_kill), visible_at_kill
    subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(tokens), str(out), target], check=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == expected


def test_shards_refuse_a_vocabulary_of_another_resolution(tmp_path: Path) -> None:
    run(write_tokens(tmp_path / "t.parquet", token_rows("alpha", 5)), {}, ShardConfig(), VOCAB, tmp_path / "s")  # fmt: skip
    shards = open_shards(tmp_path / "s")
    shards.require_vocab(VOCAB, "checkpoint run1")
    with pytest.raises(GnmError, match="shards at 12 ticks per quarter, checkpoint run1 at 24"):
        shards.require_vocab(Vocab(VocabConfig(resolution=24)), "checkpoint run1")
    with pytest.raises(GnmError, match="different tokens"):
        shards.require_vocab(Vocab(VocabConfig(composers=("Bach", "Haydn"))), "checkpoint run1")
