"""params.yaml edits of `gnm data add-corpus`: only the lines they need, checked by re-reading."""

from __future__ import annotations

import pytest

from pipeline.params import ParamsError, parse_params
from pipeline.params_edit import with_composer, with_corpus, with_profile
from tests.helpers import REPO

TEXT = """vocab:
  composers: ["Bach"]   # appended, never reordered

profiles:
  default:
    corpora: [m21-bach]   # a list
  quick:
    description: the first files
    corpora: {m21-bach: 3}
  # a comment closing the section

shard:
  salt: s
"""


def test_a_new_profile_goes_after_the_last_one_and_every_comment_stays() -> None:
    edited = with_profile(TEXT, "p.yaml", "haydn", "Haydn: quartets # op. 74", ["a", "b"])
    assert edited.count("#") == TEXT.count("#") + 1 and "salt: s" in edited
    lines = edited.splitlines()
    assert lines[lines.index("  haydn:") - 1] == "    corpora: {m21-bach: 3}"
    profile = parse_params(edited, "p.yaml").profile("haydn")
    assert profile.corpora == {"a": None, "b": None}
    assert profile.description == "Haydn: quartets # op. 74"  # quoted, as YAML needs it


def test_a_corpus_joins_a_list_or_a_mapping_with_all_its_files() -> None:
    edited = with_corpus(with_corpus(TEXT, "p.yaml", "default", "x"), "p.yaml", "quick", "x")
    profiles = parse_params(edited, "p.yaml").profiles
    assert profiles["default"].corpora == {"m21-bach": None, "x": None}
    assert profiles["quick"].corpora == {"m21-bach": 3, "x": None}
    assert with_corpus(edited, "p.yaml", "quick", "x") == edited


def test_a_layout_the_edit_does_not_understand_is_an_error_not_another_profiles_edit() -> None:
    block = TEXT.replace("    corpora: [m21-bach]   # a list", "    corpora:\n      - m21-bach")
    with pytest.raises(ParamsError, match="no one-line `corpora:`"):
        with_corpus(block, "p.yaml", "default", "x")


@pytest.mark.parametrize(
    ("text", "profile", "message"),
    [
        (TEXT, "quick", "exists already"),
        (TEXT, "Quick", "profile name 'Quick'"),
        ("shard:\n  salt: s\n", "haydn", "no block `profiles:` section"),
    ],
)
def test_a_new_profile_is_refused_where_it_cannot_be_made(
    text: str, profile: str, message: str
) -> None:
    with pytest.raises(ParamsError, match=message):
        with_profile(text, "p.yaml", profile, "d", ["a"])


def test_a_composer_the_vocabulary_refuses_is_refused_before_any_write() -> None:
    assert parse_params(with_composer(TEXT, "p.yaml", "Haydn"), "p").vocab.composers == (
        "Bach",
        "Haydn",
    )
    with pytest.raises(ParamsError, match="must not contain 'None'"):
        with_composer(TEXT, "p.yaml", "None")


def test_the_shipped_params_take_every_edit() -> None:
    text = (REPO / "params.yaml").read_text()
    edited = with_profile(
        with_corpus(text, "params.yaml", "quick", "x"), "params.yaml", "new", "d", ["x"]
    )
    params = parse_params(with_composer(edited, "params.yaml", "Haydn"), "params.yaml")
    assert (
        params.profile("new").corpora == {"x": None}
        and params.profile("quick").corpora["x"] is None
    )
    assert params.vocab.composers[-1] == "Haydn"
