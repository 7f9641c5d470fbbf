from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from gnm_model.cli import main
from gnm_model.config import preset
from gnm_model.generate import SampleConfig, Sampler
from gnm_model.transformer import GnMTransformer
from pipeline.errors import GnmError
from pipeline.readers import read_scores
from pipeline.tokenizer import Tokenizer, Vocab, VocabConfig
from tests.helpers import m21_path, untrained_run
from tests.hostile import abc_megabyte_line

VOCAB = Vocab(VocabConfig())


@pytest.fixture(scope="module")
def untrained() -> Sampler:
    torch.manual_seed(0)
    return Sampler(GnMTransformer(preset("tiny").for_vocab(VOCAB)), VOCAB)


@pytest.mark.corpus
def test_100_samples_of_an_untrained_model_all_decode(untrained: Sampler) -> None:
    tokenizer = Tokenizer(VOCAB)
    generator = torch.Generator().manual_seed(0)
    cfg = SampleConfig(bars=2, max_tokens=160)
    composers = [None, "Bach", "Beethoven", "Mozart", "Chopin"]
    for i in range(100):
        ids = untrained.sample(composers[i % 5], cfg, generator)
        assert tokenizer.grammar.validate(ids) == []
        score = tokenizer.decode_full(ids, strict=True).score
        assert len(score.bars) == 2 and ids[-1] == VOCAB.index["EOS"]
        assert ids[0] == VOCAB.composer_id(composers[i % 5])


def test_sampling_with_a_seed_is_reproducible_and_longer_than_the_context(
    untrained: Sampler,
) -> None:
    cfg = SampleConfig(bars=1000, max_tokens=700, top_k=20, top_p=0.9, temperature=0.8)
    one = untrained.sample("Bach", cfg, torch.Generator().manual_seed(7))
    two = untrained.sample("Bach", cfg, torch.Generator().manual_seed(7))
    assert one == two and len(one) > untrained.model.cfg.context
    assert Tokenizer(VOCAB).grammar.validate(one) == []
    nocache = untrained.sample(
        "Bach", SampleConfig(bars=3, use_cache=False), torch.Generator().manual_seed(3)
    )
    assert Tokenizer(VOCAB).grammar.validate(nocache) == []


class _WantsBars(torch.nn.Module):
    """A model that puts almost all its probability on `Bar` whenever the grammar allows one."""

    def __init__(self, inner: GnMTransformer, bonus: float) -> None:
        super().__init__()
        self.inner, self.cfg, self.bonus = inner, inner.cfg, bonus

    def forward(self, x: torch.Tensor, row: torch.Tensor, cache: object = None) -> object:
        logits, cache = self.inner(x, row, cache)
        logits[..., VOCAB.index["Bar"]] += self.bonus
        return logits, cache


def test_the_last_bar_ends_where_the_model_would_open_another(untrained: Sampler) -> None:
    """At the bar limit `EOS` takes `Bar`'s probability: nothing is piled into the last bar."""
    sampler = Sampler(_WantsBars(untrained.model, 60.0), VOCAB)  # type: ignore[arg-type]
    for seed in range(5):
        ids = sampler.sample("Bach", SampleConfig(bars=3), torch.Generator().manual_seed(seed))
        strings = Tokenizer(VOCAB).to_strings(ids)
        bar = max(i for i, t in enumerate(strings) if t == "Bar")
        assert strings.count("Bar") == 3 and strings[bar + 1].startswith("TS_")
        assert strings[bar + 2 :] == ["EOS"]  # the empty last bar is closed at once


def test_an_unknown_composer_is_refused(untrained: Sampler) -> None:
    with pytest.raises(GnmError, match="unknown composer 'Liszt'"):
        untrained.sample("Liszt", SampleConfig(), torch.Generator())


@pytest.mark.corpus
def test_generate_writes_tokens_midi_and_musicxml(tmp_path: Path) -> None:
    run = untrained_run(tmp_path)
    args = [
        "generate",
        "--run",
        str(run),
        "--composer",
        "Mozart",
        "--bars",
        "3",
        "--n",
        "2",
        "--seed",
        "5",
    ]
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "a"), "--json"])
    assert result.exit_code == 0, result.output
    written = json.loads(result.stdout)
    assert len(written) == 2
    for w in written:
        body = json.loads(Path(w["json"]).read_text())
        assert body["tokens"][0] == "Composer_Mozart" and body["bars"] == w["bars"] <= 3
        assert len(read_scores(w["midi"])[0].bars) >= w["bars"]  # notes may ring past the last bar
        assert Path(w["musicxml"]).stat().st_size > 0
    again = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "b"), "--json"])
    assert [Path(w["json"]).read_text() for w in json.loads(again.stdout)] == [
        Path(w["json"]).read_text() for w in written
    ]
    alone = [*args[:-2], "--seed", "6", "--n", "1", "--out", str(tmp_path / "d"), "--json"]
    second = CliRunner().invoke(main, alone)  # sample 1 of seed 5 is sample 0 of seed 6
    body = json.loads(Path(json.loads(second.stdout)[0]["json"]).read_text())
    assert body["ids"] == json.loads(Path(written[1]["json"]).read_text())["ids"]
    missing = CliRunner().invoke(
        main, ["generate", "--run", str(tmp_path / "nope"), "--out", str(tmp_path / "c")]
    )
    assert missing.exit_code == 1 and "vocab.json: missing" in missing.output


def test_a_prompt_is_read_under_ingest_limits(tmp_path: Path) -> None:
    args = ["generate", "--run", str(untrained_run(tmp_path)), "--bars", "1", "--out", str(tmp_path / "o")]  # fmt: skip
    result = CliRunner().invoke(main, [*args, "--prompt", str(m21_path("bach/bwv66.6.mxl"))])
    assert result.exit_code == 0, result.output
    hostile = abc_megabyte_line(tmp_path)
    result = CliRunner().invoke(main, [*args, "--prompt", str(hostile), "--timeout", "10"])
    assert result.exit_code == 1
    assert result.output.startswith(f"gnm: error: {hostile}: too_large (tune of 1000028 characters")
