from __future__ import annotations

from fractions import Fraction as F

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import MeterError
from pipeline.score import Bar, Meter, Note, Score, ScoreMeta
from pipeline.stages.meter import DEFAULT_RULES, SUPPORTED_METERS, MeterConfig, normalize_meters
from tests.conftest import m21_path, read_one

REQUIRED_RULES = {
    "2/2": ["4/4"], "4/2": ["4/4", "4/4"], "3/2": ["3/4", "3/4"], "6/4": ["3/4", "3/4"],
    "5/4": ["2/4", "3/4"], "7/4": ["4/4", "3/4"], "9/8": ["6/8", "3/8"], "12/8": ["6/8", "6/8"],
    "7/8": ["2/4", "3/8"], "4/8": ["2/4"], "6/16": ["3/8"], "12/16": ["6/8"],
}  # fmt: skip


def score_of(
    bars: list[tuple[F, str]], notes: list[tuple[F, int, F]], pickup: bool = False
) -> Score:
    out, start = [], F(0)
    for i, (length, meter) in enumerate(bars):
        out.append(Bar(start, length, Meter.parse(meter), pickup=pickup and i == 0))
        start += length
    return Score(
        ScoreMeta("t"), tuple(sorted(Note(o, p, d) for o, p, d in notes)), tuple(out)
    ).validate()


def test_rule_table_has_every_required_rule() -> None:
    for meter, parts in REQUIRED_RULES.items():
        assert list(DEFAULT_RULES[meter]) == parts


@pytest.mark.parametrize("meter", SUPPORTED_METERS)
def test_supported_meters_are_unchanged(meter: str) -> None:
    length = Meter.parse(meter).length
    s = score_of([(length, meter)] * 3, [(F(0), 60, F(1)), (length, 62, F(1, 2))])
    assert normalize_meters(s) == s.replace(report={})


def test_5_4_alternates_and_keeps_onsets() -> None:
    s = score_of([(F(5), "5/4")] * 2, [(F(0), 60, F(1)), (F(2), 62, F(1)), (F(7), 64, F(3))])
    n = normalize_meters(s)
    assert n.meters() == ["2/4", "3/4", "2/4", "3/4"]
    assert n.note_keys() == s.note_keys()


def test_unknown_meter_raises_naming_it() -> None:
    s = score_of([(F(5, 2), "5/8")], [(F(0), 60, F(1))])
    with pytest.raises(MeterError) as info:
        normalize_meters(s)
    assert info.value.reason == "meter:5/8" and "5/8" in str(info.value)


def test_pickup_right_aligned_in_shortest_tail() -> None:
    # 5/4 with a one-quarter pickup: it fills the last quarter of the 3/4 part.
    s = score_of([(F(1), "5/4"), (F(5), "5/4")], [(F(0), 67, F(1)), (F(1), 60, F(1))], pickup=True)
    n = normalize_meters(s)
    assert n.pickup_shift == 2
    assert n.meters() == ["3/4", "2/4", "3/4"]
    assert n.note_keys() == [(F(2), 67, F(1)), (F(3), 60, F(1))]
    assert n.report["pickup_right_aligned"] == 1


def test_incomplete_bar_reexpressed_when_a_meter_fits() -> None:
    s = score_of(
        [(F(4), "4/4"), (F(2), "4/4"), (F(4), "4/4")], [(F(4), 60, F(1)), (F(6), 62, F(1))]
    )
    n = normalize_meters(s)
    assert n.meters() == ["4/4", "2/4", "4/4"]
    assert n.note_keys() == s.note_keys()
    assert n.report["incomplete_bars_reexpressed"] == 1


def test_lone_incomplete_bar_padding_policy() -> None:
    # 4/4: a lone bar of 2.5 quarters has no meter of its length -> padded at its end.
    s = score_of(
        [(F(4), "4/4"), (F(5, 2), "4/4"), (F(4), "4/4")],
        [(F(4), 60, F(1, 2)), (F(13, 2), 62, F(1, 2))],
    )
    n = normalize_meters(s, MeterConfig(incomplete_bars="pad"))
    assert n.meters() == ["4/4", "4/4", "4/4"]
    assert n.report["incomplete_bars_padded"] == 1 and n.report["padding_quarters"] == 1.5
    assert n.note_keys() == [(F(4), 60, F(1, 2)), (F(8), 62, F(1, 2))]
    with pytest.raises(MeterError, match="5/2"):
        normalize_meters(s, MeterConfig(incomplete_bars="error"))


def test_short_bar_merged_into_previous_or_next_bar() -> None:
    # 2/4: a lone one-quarter bar after a full bar -> one 3/4 bar; onsets exact, nothing padded.
    s = score_of(
        [(F(2), "2/4"), (F(1), "2/4"), (F(2), "2/4")], [(F(2), 60, F(1)), (F(3), 62, F(1))]
    )
    n = normalize_meters(s)
    assert n.meters() == ["3/4", "2/4"] and n.note_keys() == s.note_keys()
    assert n.report["short_bars_merged"] == 1 and "padding_quarters" not in n.report
    # After a 6/8 bar (3 + 1 quarters = 8/8 -> 4/4) the merge also works across families.
    s = score_of([(F(3), "6/8"), (F(1), "2/4")], [(F(3), 60, F(1))])
    assert normalize_meters(s).meters() == ["4/4"]
    # With no previous bar to join (the first bar is a pickup) it joins the next one.
    s = score_of(
        [(F(1, 2), "2/4"), (F(1, 2), "3/4"), (F(3), "3/4")], [(F(1, 2), 60, F(1, 2))], pickup=True
    )
    n = normalize_meters(s)
    assert n.report["short_bars_merged"] == 1 and n.meters()[-2:] == ["2/4", "3/8"]  # 7/8


def test_split_bar_halves_are_merged_back() -> None:
    # 3/4: 2 quarters then 1 quarter around a repeat sign -> one 3/4 bar, nothing moves.
    s = score_of([(F(3), "3/4"), (F(2), "3/4"), (F(1), "3/4"), (F(3), "3/4")], [(F(5), 60, F(1))])
    n = normalize_meters(s, MeterConfig(incomplete_bars="error"))
    assert n.meters() == ["3/4", "3/4", "3/4"]
    assert n.note_keys() == s.note_keys() and n.report["split_bars_merged"] == 1


def test_overfull_bar_split_into_meter_and_remainder() -> None:
    s = score_of([(F(6), "4/4")], [(F(5), 60, F(1))])
    assert normalize_meters(s).meters() == ["3/4", "3/4"]  # 6 quarters = 6/4 -> 3/4 + 3/4
    odd = score_of([(F(17, 4), "4/4")], [(F(4), 60, F(1, 4))])
    n = normalize_meters(odd)
    assert n.meters() == ["4/4", "4/4"] and n.report["overfull_bars_split"] == 1


def test_bad_rule_tables_are_refused() -> None:
    with pytest.raises(ValueError, match="does not add up"):
        MeterConfig(rules={"5/4": ("2/4", "2/4")})
    with pytest.raises(ValueError, match="unsupported"):
        MeterConfig(rules={"5/8": ("5/8",)})
    cfg = MeterConfig.from_params(
        {"rules": {"5/8": ["3/8", "2/8"]}, "supported": [*SUPPORTED_METERS, "2/8"]}
    )
    assert [str(m) for m in cfg.decompose(Meter(5, 8))] == ["3/8", "2/8"]


# -- real pieces --------------------------------------------------------------------------------


def _onsets_preserved(before: Score, after: Score) -> bool:
    shifted = sorted((o + after.pickup_shift, p, d) for o, p, d in before.note_keys())
    return shifted == after.note_keys() and "padding_quarters" not in after.report


def test_essen_5_4_tune_alternates_2_4_and_3_4() -> None:
    s = read_one(m21_path("essenFolksong/ballad40.abc"), "203")
    n = normalize_meters(s)
    assert set(s.meters()) == {"5/4"}
    body = n.meters()[1:-1]  # after the pickup's 3/4 home, before the closing bar
    assert body == ["2/4", "3/4"] * (len(body) // 2)
    assert _onsets_preserved(s, n)


def test_essen_7_8_tune() -> None:
    s = read_one(m21_path("essenFolksong/ballad20.abc"), "100")
    n = normalize_meters(s)
    assert set(s.meters()) == {"7/8"}
    assert n.meters()[1:5] == ["2/4", "3/8", "2/4", "3/8"]
    assert _onsets_preserved(s, n)


def test_bach_12_8_becomes_pairs_of_6_8() -> None:
    s = read_one(m21_path("bach/bwv248.23-2.mxl"))
    n = normalize_meters(s)
    assert set(s.meters()) == {"12/8"} and set(n.meters()) == {"6/8"}
    assert s.bars[0].pickup and n.pickup_shift == F(3) - s.bars[0].length
    assert _onsets_preserved(s, n)


def test_bach_pickup_and_meter_changes() -> None:
    pickup = read_one(m21_path("bach/bwv66.6.mxl"))
    n = normalize_meters(pickup)
    assert n.pickup_shift == 3 and n.meters()[0] == "4/4"
    assert _onsets_preserved(pickup, n)
    changes = read_one(m21_path("bach/bwv171.6.mxl"))
    n = normalize_meters(changes)
    assert "3/4" in n.meters() and n.meters()[1] == "4/4" and n.meters()[-2] == "4/4"
    assert _onsets_preserved(changes, n)


def test_tuplets_and_grace_pieces_normalise_without_moving_onsets() -> None:
    for name in ("chopin/mazurka06-2.krn", "beethoven/opus133.mxl"):
        s = read_one(m21_path(name))
        assert _onsets_preserved(s, normalize_meters(s)), name


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["2/4", "3/4", "4/4", "6/8", "5/4", "12/8", "7/8", "2/2"]),
            st.integers(1, 12),
        ),
        min_size=1,
        max_size=8,
    ),
    st.booleans(),
)
def test_normalisation_is_idempotent_and_bars_are_full(
    spec: list[tuple[str, int]], pickup: bool
) -> None:
    bars = []
    for i, (meter, eighths) in enumerate(spec):
        full = Meter.parse(meter).length
        # Every third bar gets an odd length to exercise the incomplete/overfull paths.
        length = F(eighths, 2) if i % 3 == 2 or (pickup and i == 0) else full
        if pickup and i == 0:
            length = min(length, full - F(1, 2)) if full > F(1, 2) else full
        bars.append((length, meter))
    s = score_of(
        bars, [(F(0), 60, F(1, 2))], pickup=pickup and bars[0][0] < Meter.parse(bars[0][1]).length
    )
    once = normalize_meters(s)
    assert all(b.complete and str(b.meter) in SUPPORTED_METERS for b in once.bars)
    assert normalize_meters(once).bars == once.bars
    assert normalize_meters(once).note_keys() == once.note_keys()


def test_short_bars_in_unruled_meters_are_read_as_incomplete_bars_of_their_neighbours() -> None:
    # music21 writes ABC line-start fragments of a 2/4 tune as 1/4 and 1/8 bars.
    s = score_of(
        [(F(1, 2), "1/8"), (F(2), "2/4"), (F(1), "1/4"), (F(2), "2/4")],
        [(F(0), 60, F(1, 2)), (F(5, 2), 62, F(1))],
    )
    n = normalize_meters(s)
    assert n.report["unruled_meter_reinterpreted"] == 2
    assert n.meters() == ["2/4", "3/4", "2/4"]  # pickup home, then 2 + 1 quarters merged into 3/4
    assert n.note_keys() == [(o + n.pickup_shift, p, d) for o, p, d in s.note_keys()]
    whole = score_of([(F(1), "1/4")] * 4, [(F(0), 60, F(1))])
    with pytest.raises(MeterError, match="1/4"):
        normalize_meters(whole)
    with pytest.raises(MeterError, match="1/8"):
        normalize_meters(s, MeterConfig(reinterpret_short_unruled=False))
