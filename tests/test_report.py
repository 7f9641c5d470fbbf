from __future__ import annotations

import functools
import http.server
import json
import math
import shutil
import subprocess
import threading
from pathlib import Path
from typing import ClassVar

import pytest
import torch

from gnm_model.classifier import ClassifierConfig
from gnm_model.config import preset
from gnm_model.generate import SampleConfig, Sampler
from gnm_model.render import find_soundfont, wav_peak
from gnm_model.report import Fitted, bar_segments, evaluate_samples, load_samples, metric_table
from gnm_model.transformer import GnMTransformer
from pipeline.io.shards import open_shards
from pipeline.tokenizer import Tokenizer
from tests.helpers import m21_path

FAST = ClassifierConfig(epochs=20, folds=3, hash_bits=12)
COMPOSERS = ["Bach", "Beethoven", "Mozart", "Chopin"]


@pytest.fixture(scope="module")
def samples_dir(quick_shards: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("samples")
    vocab = open_shards(quick_shards).vocab
    torch.manual_seed(0)
    sampler = Sampler(GnMTransformer(preset("tiny").for_vocab(vocab)), vocab)
    generator = torch.Generator().manual_seed(0)
    for composer in ("Bach", "Mozart"):
        ids = sampler.sample(composer, SampleConfig(bars=4), generator)
        (folder / f"{composer}.json").write_text(json.dumps({"composer": composer, "ids": ids}))
    # Not a valid sequence: a Pitch straight after BOS.
    (folder / "broken.json").write_text(
        json.dumps(
            {
                "composer": "Bach",
                "ids": [
                    vocab.composer_id("Bach"),
                    vocab.tempo_base,
                    vocab.index["BOS"],
                    vocab.pitch_base + 60,
                ],
            }
        )
    )
    return folder


def test_samples_load_from_token_files_and_scores_and_a_bad_file_keeps_its_error(
    tmp_path: Path, tokenizer: Tokenizer
) -> None:
    (tmp_path / "a.json").write_text(json.dumps({"composer": "Bach", "ids": [5, 6, 7]}))
    (tmp_path / "bad.json").write_text(json.dumps({"composer": "Bach"}))
    shutil.copy(m21_path("bach/bwv66.6.mxl"), tmp_path / "chorale.mxl")
    by_name = {s.name: s for s in load_samples(tmp_path, tokenizer)}
    assert by_name.keys() == {"a", "bad", "chorale.mxl"}
    assert (by_name["a"].composer, by_name["a"].ids, by_name["a"].error) == (
        "Bach",
        [5, 6, 7],
        None,
    )
    assert str(by_name["bad"].error).startswith("unreadable token file")
    assert by_name["chorale.mxl"].ids[2] == tokenizer.vocab.index["BOS"]


def test_the_metric_table_pairs_generated_and_real_means_per_group() -> None:
    generated = {"Bach": [{"entropy": 1.0}, {"entropy": 2.0}]}
    real = {"Bach": [{"entropy": 3.0}], "Mozart": [{"entropy": 4.0}]}
    rows = {(r["group"], r["metric"]): r for r in metric_table(generated, real)}
    assert rows.keys() == {("Bach", "entropy"), ("Mozart", "entropy")}
    bach, mozart = rows["Bach", "entropy"], rows["Mozart", "entropy"]
    assert (bach["generated_n"], bach["real_n"]) == (2, 1)
    assert (bach["generated_mean"], bach["real_mean"]) == (1.5, 3.0)
    assert mozart["generated_n"] == 0 and mozart["real_mean"] == 4.0
    assert math.isnan(mozart["generated_mean"]) and math.isnan(mozart["overlap"])


class _Log(http.server.SimpleHTTPRequestHandler):
    requested: ClassVar[list[tuple[str, int]]] = []

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        _Log.requested.append((self.path, int(code)))


@pytest.mark.skipif(
    shutil.which("chromium") is None or shutil.which("fluidsynth") is None,
    reason="chromium and fluidsynth: .ci/run installs them",
)
def test_the_report_opens_in_a_real_browser_with_its_table_images_and_audio(
    quick_shards: Path, samples_dir: Path, tmp_path: Path
) -> None:
    shards = open_shards(quick_shards)
    samples = load_samples(samples_dir, Tokenizer(shards.vocab))
    report = evaluate_samples(
        shards, samples, tmp_path, COMPOSERS, 5, find_soundfont(), FAST, log=lambda line: None
    )
    by_name = {s["name"]: s for s in report["samples"]}
    assert "does not decode" in by_name["broken"]["error"]
    assert by_name["Bach"]["audio"] and by_name["Mozart"]["page"]
    for name in ("Bach", "Mozart"):
        seconds, peak = wav_peak(tmp_path / by_name[name]["audio"])
        assert seconds > 1 and peak > 0.01  # a valid, non-silent WAV
    _Log.requested = []
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Log, directory=str(tmp_path))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/report.html"
    try:
        done = subprocess.run(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000", "--dump-dom", url],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        server.shutdown()
    dom = done.stdout
    assert '<table id="metrics">' in dom and '<table id="confusion">' in dom
    assert dom.count("<audio") == 2 and dom.count('class="page"') == 2
    fetched = {path for path, code in _Log.requested if code == 200}
    for wanted in (
        "/metrics.png",
        "/confusion.png",
        f"/{by_name['Bach']['page']}",
        f"/{by_name['Mozart']['page']}",
    ):
        assert wanted in fetched, (wanted, sorted(fetched))
    assert any(path.endswith(".wav") for path in fetched)  # the audio elements loaded their files


def test_an_empty_folder_and_a_missing_soundfont_still_give_a_report(
    quick_shards: Path, samples_dir: Path, tmp_path: Path
) -> None:
    shards = open_shards(quick_shards)
    (tmp_path / "empty").mkdir()
    report = evaluate_samples(
        shards,
        load_samples(tmp_path / "empty", Tokenizer(shards.vocab)),
        tmp_path / "a",
        COMPOSERS,
        5,
        None,
        FAST,
        log=lambda line: None,
    )
    assert (
        "holds no samples" in report["messages"][0] and (tmp_path / "a" / "report.html").is_file()
    )
    assert report["metric_table"]  # the real references are there
    report = evaluate_samples(
        shards,
        load_samples(samples_dir, Tokenizer(shards.vocab)),
        tmp_path / "b",
        COMPOSERS,
        5,
        None,
        FAST,
        log=lambda line: None,
    )
    rendered = [s for s in report["samples"] if not s["error"]]
    assert rendered and all("no soundfont" in s["render_error"] for s in rendered)
    assert all(s["metrics"] and s["predicted"] in COMPOSERS for s in rendered)
    assert json.loads((tmp_path / "b" / "report.json").read_text())["format"] == "gnm-eval/1"
    fitted = Fitted()  # fitted by the first call, reused as they are by the second
    samples = load_samples(samples_dir, Tokenizer(shards.vocab))
    args = (shards, samples, tmp_path / "c", COMPOSERS, 5, None, FAST)
    first = evaluate_samples(*args, log=lambda line: None, fitted=fitted)
    classifier, index = fitted.classifier, fitted.index
    again = evaluate_samples(*args, log=lambda line: None, fitted=fitted)
    assert classifier is not None and index is not None
    assert (fitted.classifier, fitted.index) == (classifier, index)
    assert first["classifier"] == again["classifier"] == report["classifier"]
    assert [s["probabilities"] for s in again["samples"]] == [
        s["probabilities"] for s in report["samples"]
    ]


def test_bar_segments_cut_a_real_piece_into_decodable_pieces_of_n_bars(
    tokenizer: Tokenizer,
) -> None:
    """Every segment decodes on its own, has N bars (the last at least N/2), and together they
    hold the piece's bars in order; 0 bars gives the piece itself."""
    from pipeline.readers import read_scores
    from pipeline.tokenizer.chain import tokenize_score

    ids = tokenize_score(read_scores(m21_path("bach/bwv66.6.mxl"))[0], tokenizer, "Bach").ids
    bar = tokenizer.vocab.index["Bar"]
    offsets = [i for i, t in enumerate(ids) if t == bar]
    eos = tokenizer.vocab.index["EOS"]
    assert bar_segments(ids, offsets, 0, eos) == [ids]
    for n in (1, 3, 4, len(offsets), len(offsets) + 5):
        segments = bar_segments(ids, offsets, n, eos)
        counts = [
            len(tokenizer.decode_full(s, strict=True, score_id="s").score.bars) for s in segments
        ]
        assert all(c == n for c in counts[:-1]) and (counts[-1] >= n / 2 or len(segments) == 1)
        bodies = [t for s in segments for t in s[offsets[0] : -1]]
        assert bodies == ids[offsets[0] : offsets[0] + len(bodies)]
        assert sum(counts) <= len(offsets) and all(
            s[: offsets[0]] == ids[: offsets[0]] for s in segments
        )
