from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.errors import GnmError
from pipeline.readers import read_scores
from pipeline.stages.tokenize import tokenize_score
from pipeline.tokenizer import Tokenizer
from pipeline.writers import write_score
from tests.conftest import TEST_DATA, m21_path, read_one


@pytest.mark.parametrize("ext", [".mid", ".musicxml", ".mxl"])
@pytest.mark.parametrize(
    "source",
    ["bach/bwv66.6.mxl", "chopin/mazurka06-2.krn", "essenFolksong/ballad20.abc"],
    ids=lambda s: s.split("/")[-1],
)
def test_written_files_read_back_to_the_same_notes_and_bars(
    tmp_path: Path, tokenizer: Tokenizer, ext: str, source: str
) -> None:
    decoded = tokenizer.decode(tokenize_score(read_one(m21_path(source)), tokenizer).ids)
    path = write_score(decoded, tmp_path / f"out{ext}")
    (back,) = read_scores(path)
    assert back.note_keys() == decoded.note_keys()
    assert back.meters() == decoded.meters()


def test_unknown_output_extension(tmp_path: Path) -> None:
    with pytest.raises(GnmError, match="cannot write '.wav'"):
        write_score(read_one(TEST_DATA / "edge_cases.musicxml"), tmp_path / "x.wav")
