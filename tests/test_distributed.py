"""The stages on a real distributed Dask cluster: a scheduler and a worker started as separate
processes on 127.0.0.1 give the same ingest decisions and scores as the local run. Starting them
takes seconds; the quick test reaches an in-process cluster by its address instead."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.corpora import load_declaration
from pipeline.stages import ingest
from pipeline.stages.ingest import IngestConfig
from tests.helpers import TEST_DATA, m21_path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    log = (tmp_path / "dask.log").open("w")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            stdout=log, stderr=subprocess.STDOUT,
        )
    ]  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                pytest.fail(
                    "dask scheduler did not start: " + (tmp_path / "dask.log").read_text()[-2000:]
                )
            time.sleep(0.2)
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nworkers", "2", "--nthreads", "1",
                 "--no-dashboard", "--local-directory", str(tmp_path / "worker")],
                stdout=log, stderr=subprocess.STDOUT,
            )
        )  # fmt: skip
        from dask.distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
        log.close()


def test_a_scheduler_reached_by_its_address_gives_the_same_result_as_inline(
    tmp_path: Path,
) -> None:
    from dask.distributed import LocalCluster

    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    ) as in_process:
        assert_same_as_inline(tmp_path, in_process.scheduler_address)


@pytest.mark.corpus
def test_distributed_cluster_gives_the_same_result_as_local(tmp_path: Path, cluster: str) -> None:
    assert_same_as_inline(tmp_path, cluster)


def assert_same_as_inline(tmp_path: Path, scheduler: str) -> None:
    """Ingest a few good and bad files inline and on `scheduler`: same decisions and scores."""
    data = tmp_path / "data" / "mixed"
    data.mkdir(parents=True)
    for name in ("edge_cases.musicxml", "two_tunes.abc", "truncated.mid", "latin1.abc"):
        shutil.copy(TEST_DATA / name, data / name)
    for name in ("bach/bwv66.6.mxl", "chopin/mazurka06-2.krn"):
        shutil.copy(m21_path(name), data / Path(name).name)
    decl_path = tmp_path / "mixed.yaml"
    decl_path.write_text(
        "name: mixed\ndescription: d\nsource: {kind: directory, path: mixed, include: ['*']}\n"
        "genre: other\nlicence: test\nredistributable: true\npriority: 1\n"
    )
    decl = load_declaration(decl_path)
    files = decl.files(tmp_path / "data")
    with (
        ingest.run(files, {"mixed": decl}, IngestConfig(), None, scheduler="inline") as local,
        ingest.run(files, {"mixed": decl}, IngestConfig(), None, scheduler=scheduler) as remote,
    ):
        assert remote.decisions() == local.decisions()
        assert [s for s, _ in remote.scores()] == [s for s, _ in local.scores()]
        statuses = {d.status for d in remote.decisions()}
    assert statuses == {
        "accepted",
        "quarantined:bad_midi",
        "quarantined:encoding",
    }
