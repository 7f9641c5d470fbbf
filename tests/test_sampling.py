from __future__ import annotations

import json
from pathlib import Path

import torch

from gnm_model.generate import SampleConfig, Sampler
from gnm_model.sampling import load_model, with_extension, write_sample
from pipeline.readers import read_scores
from pipeline.tokenizer import Vocab, VocabConfig
from tests.helpers import untrained_run

VOCAB = Vocab(VocabConfig())
CFG = SampleConfig(bars=2, temperature=0.9, top_p=0.95)


def test_a_written_sample_is_the_one_its_seed_draws_and_decodes_to_its_files(
    tmp_path: Path,
) -> None:
    run = untrained_run(tmp_path)
    sampler = Sampler(load_model(run, VOCAB), VOCAB)
    written = write_sample(sampler, "Chopin", CFG, 3, tmp_path / "out" / "Chopin-3")
    body = json.loads(Path(written.json).read_text())
    assert body["ids"] == sampler.sample("Chopin", CFG, torch.Generator().manual_seed(3))
    assert body["composer"] == "Chopin" and body["seed"] == 3 and body["bars"] == 2
    assert body["vocab_hash"] == VOCAB.hash and body["sampling"]["top_p"] == 0.95
    assert written.midi and written.musicxml and written.bars == 2
    assert len(read_scores(written.midi)[0].notes) == written.notes == body["notes"]
    assert "<staves>2</staves>" in Path(written.musicxml).read_text()
    tokens_only = write_sample(
        sampler, "Chopin", CFG, 3, tmp_path / "bench" / "Chopin-3", scores=False
    )
    assert tokens_only.midi is None and sorted(p.name for p in (tmp_path / "bench").iterdir()) == [
        "Chopin-3.json"
    ]
    assert json.loads(Path(tokens_only.json).read_text())["ids"] == body["ids"]


def test_the_loaded_model_is_the_checkpoint_in_eval_mode(tmp_path: Path) -> None:
    run = untrained_run(tmp_path)
    one, two = load_model(run, VOCAB), load_model(run, VOCAB)
    assert not one.training
    for (name, a), (_, b) in zip(one.state_dict().items(), two.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def test_a_dot_in_a_sample_name_is_kept(tmp_path: Path) -> None:
    assert with_extension(tmp_path / "C.P.E.Bach-003", ".json").name == "C.P.E.Bach-003.json"
