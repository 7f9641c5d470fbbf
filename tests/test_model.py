from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from gnm_model.cli import main
from gnm_model.config import PRESETS, ModelConfig, preset
from gnm_model.transformer import GnMTransformer
from pipeline.errors import GnmError
from pipeline.tokenizer import Vocab, VocabConfig

VOCAB = Vocab(VocabConfig())


@pytest.mark.corpus
def test_the_paper_preset_has_46m_parameters_with_the_split() -> None:
    result = CliRunner().invoke(main, ["model", "info", "--preset", "paper", "--json"])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.output)["parameters"]
    assert abs(counts["total"] - 46_000_000) <= 1_500_000
    assert counts["total"] == counts["backbone"] + counts["adapters"] + counts["embeddings"]
    assert 7_000_000 < counts["adapters"] < 9_000_000
    text = CliRunner().invoke(main, ["model", "info", "--preset", "paper"]).output
    assert "46.01M" in text and "adapters on layers 1, 3, 5, 7, 9" in text


def test_composer_rows_follow_the_vocabulary() -> None:
    five = Vocab(VocabConfig(composers=("Bach", "Beethoven", "Mozart", "Chopin", "Haydn")))
    small = GnMTransformer(preset("tiny").for_vocab(VOCAB))
    big = GnMTransformer(preset("tiny").for_vocab(five))
    assert big.composers.weight.shape[0] == small.composers.weight.shape[0] + 1 == 6


def test_a_config_round_trips_and_bad_ones_are_refused() -> None:
    for cfg in PRESETS.values():
        assert ModelConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ValueError, match="multiple of n_heads"):
        ModelConfig(2, 65, 4, 128, 64, (1,), 8, 8)
    with pytest.raises(ValueError, match="adapter layers"):
        ModelConfig(2, 64, 4, 128, 64, (2,), 8, 8)
    with pytest.raises(GnmError, match="unknown preset"):
        preset("huge")


def test_the_kv_cache_gives_the_same_logits_as_a_full_pass() -> None:
    torch.manual_seed(0)
    model = GnMTransformer(preset("tiny").for_vocab(VOCAB)).eval()
    idx = torch.randint(0, len(VOCAB), (2, 30))
    rows = torch.tensor([0, 3])
    full, _ = model(idx, rows)
    _, cache = model(idx[:, :17], rows)
    steps = []
    for i in range(17, 30):
        logits, cache = model(idx[:, i : i + 1], rows, cache)
        steps.append(logits)
    assert torch.allclose(torch.cat(steps, dim=1), full[:, 17:], atol=1e-5)
    with pytest.raises(ValueError, match="exceeds the context"):
        model(torch.zeros(1, 257, dtype=torch.long), rows[:1])


def test_fresh_adapters_are_the_identity_and_condition_once_trained() -> None:
    torch.manual_seed(0)
    model = GnMTransformer(preset("tiny").for_vocab(VOCAB)).eval()
    idx = torch.randint(0, len(VOCAB), (1, 12))
    a, _ = model(idx, torch.tensor([1]))
    b, _ = model(idx, torch.tensor([2]))
    assert torch.equal(a, b)  # the composer does not matter before fine-tuning
    for block in model.blocks:
        if block.adapter is not None:
            torch.nn.init.normal_(block.adapter.down.weight, std=0.1)
    a, _ = model(idx, torch.tensor([1]))
    b, _ = model(idx, torch.tensor([2]))
    assert not torch.allclose(a, b)
