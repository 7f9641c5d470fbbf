from __future__ import annotations

from fractions import Fraction as F

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.errors import TokenizeError
from pipeline.music.prepare import prepare
from pipeline.score import Bar, Meter, Note, Part, Score, ScoreMeta, TempoChange, bars_from_meters
from pipeline.tokenizer import Tokenizer
from pipeline.tokenizer.chain import tokenize_score
from pipeline.tokenizer.grammar import Phase
from tests.helpers import TEST_DATA, m21_path, read_one


def hand_score() -> Score:
    notes = [
        Note(F(0), 60, F(1)),
        Note(F(0), 64, F(1)),
        Note(F(0), 64, F(2)),  # same pitch, longer: a second note at the same position
        Note(F(0), 64, F(2), part=1),  # unison doubling: merged
        Note(F(7, 2), 67, F(13)),  # longer than 8 quarters: clipped
    ]
    return Score(
        ScoreMeta("hand"),
        tuple(sorted(notes)),
        bars_from_meters([Meter(4, 4), Meter(3, 8), Meter(6, 8)]),
        parts=(Part(0), Part(1)),
        tempos=(TempoChange(F(0), 100.0),),
    ).validate()


def test_encode_layout_and_report(tokenizer: Tokenizer) -> None:
    enc = tokenizer.encode_with_report(hand_score(), composer="Bach")
    assert tokenizer.to_strings(enc.ids) == [
        "Composer_Bach", "Tempo_96", "BOS",
        "Bar", "TS_4/4", "Pos_0", "Pitch_64", "Dur_12", "Pitch_64", "Dur_24", "Pitch_60", "Dur_12",
        "Pos_42", "Pitch_67", "Dur_96",
        "Bar", "TS_3/8", "Bar", "TS_6/8", "EOS",
    ]  # fmt: skip
    assert enc.report == {"unison_merged": 1, "durations_clipped": 1}


def test_decode_inverts_encode(tokenizer: Tokenizer) -> None:
    s = hand_score()
    out = tokenizer.decode_full(tokenizer.encode(s, "Mozart"))
    assert out.composer == "Mozart" and out.errors == []
    assert out.score.meters() == ["4/4", "3/8", "6/8"]
    assert out.score.note_keys() == [
        (F(0), 60, F(1)),
        (F(0), 64, F(1)),
        (F(0), 64, F(2)),
        (F(7, 2), 67, F(8)),
    ]
    assert out.score.tempo == 96.0


def test_encode_refuses_unprepared_scores(tokenizer: Tokenizer) -> None:
    off_grid = hand_score().replace(notes=[Note(F(1, 5), 60, F(1))])
    with pytest.raises(TokenizeError, match="quantise"):
        tokenizer.encode(off_grid)
    five_four = Score(ScoreMeta("x"), (), (Bar(F(0), F(5), Meter(5, 4)),))
    with pytest.raises(TokenizeError, match="normalise"):
        tokenizer.encode(five_four)
    with pytest.raises(TokenizeError, match="unknown composer"):
        tokenizer.encode(hand_score(), composer="Nobody")


def test_invalid_sequences_strict_and_lenient(tokenizer: Tokenizer) -> None:
    ids = tokenizer.encode(hand_score())
    broken = [*ids[:8], tokenizer.vocab.id("Pos_47"), tokenizer.vocab.id("Bar"), *ids[8:]]
    with pytest.raises(TokenizeError, match="token 9: Bar is not allowed here"):
        tokenizer.decode(broken)
    lenient = tokenizer.decode_full(broken, strict=False)
    assert len(lenient.errors) >= 1 and lenient.score.report["invalid_tokens"] == len(
        lenient.errors
    )
    with pytest.raises(TokenizeError, match="without EOS"):
        tokenizer.decode(ids[:-1])
    with pytest.raises(TokenizeError, match="outside the vocabulary"):
        tokenizer.decode([10_000])


def test_grammar_constraints(tokenizer: Tokenizer) -> None:
    g, v = tokenizer.grammar, tokenizer.vocab
    state = g.walk(v.id(t) for t in ["Composer_None", "Tempo_96", "BOS", "Bar", "TS_3/8", "Pos_5"])
    assert state.phase is Phase.PITCH
    state = g.walk([v.id("Pitch_60"), v.id("Dur_3")], state)
    allowed = {v.tokens[i] for i in g.allowed(state)}
    assert (
        "Pos_17" in allowed and "Pos_18" not in allowed and "Pos_5" not in allowed
    )  # 18 positions in 3/8
    assert (
        "Pitch_60" in allowed and "Pitch_61" not in allowed
    )  # pitches do not rise within a position
    state = g.step(state, v.id("Pitch_60"))
    assert {v.tokens[i] for i in g.allowed(state)} == {f"Dur_{d}" for d in range(4, 97)}
    assert g.next_tokens([]) == {v.composer_base + i for i in range(5)}
    assert g.allowed(g.walk(tokenizer.encode(hand_score()))) == set()


@st.composite
def grammar_valid_ids(draw: st.DrawFn) -> list[int]:
    """Walk the grammar choosing allowed ids; past a budget, head for EOS."""
    g = Tokenizer().grammar if not hasattr(grammar_valid_ids, "g") else grammar_valid_ids.g  # type: ignore[attr-defined]
    grammar_valid_ids.g = g  # type: ignore[attr-defined]
    budget = draw(st.integers(3, 120))
    state, ids = g.start(), []
    while not g.is_complete(state):
        ranges = g.allowed_ranges(state)
        if len(ids) >= budget and state.phase in (Phase.BODY, Phase.BAR):
            choice = g.eos
        else:
            lo, hi = draw(st.sampled_from(ranges))
            choice = draw(st.integers(lo, hi - 1))
        ids.append(choice)
        state = g.step(state, choice)
    return ids


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(grammar_valid_ids())
def test_any_grammar_valid_sequence_decodes_and_reencodes_to_itself(ids: list[int]) -> None:
    tok = Tokenizer()
    out = tok.decode_full(ids)
    assert tok.encode(out.score, out.composer) == ids


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 294), max_size=80))
def test_decoding_never_crashes_on_arbitrary_ids(ids: list[int]) -> None:
    out = Tokenizer().decode_full(ids, strict=False)
    out.score.validate()
    assert len(out.errors) == out.score.report.get("invalid_tokens", 0)


@pytest.mark.parametrize(
    "name",
    ["bach/bwv66.6.mxl", "bach/bwv248.23-2.mxl", "chopin/mazurka06-2.krn", "beethoven/opus133.mxl"],
)
def test_grammar_accepts_encoded_real_scores(tokenizer: Tokenizer, name: str) -> None:
    result = tokenize_score(read_one(m21_path(name)), tokenizer, "Beethoven")
    assert tokenizer.grammar.validate(result.ids) == []


def test_edge_case_file_round_trip(tokenizer: Tokenizer) -> None:
    s = read_one(TEST_DATA / "edge_cases.musicxml")
    prepared, stats = prepare(s)
    decoded = tokenizer.decode(tokenizer.encode(prepared))
    assert decoded.note_keys() == prepared.note_keys() and stats.notes_moved == 0
    # The one-quarter pickup is right-aligned in a 4/4 bar; the final three quarters become 3/4.
    assert decoded.meters() == ["4/4", "4/4", "4/4", "3/4"]
    assert prepared.pickup_shift == 3
