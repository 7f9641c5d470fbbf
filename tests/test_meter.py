from __future__ import annotations

from fractions import Fraction as F

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.config_section import parse_section
from pipeline.errors import MeterError
from pipeline.music.meter import (
    DEFAULT_PAIRS,
    DEFAULT_RULES,
    SUPPORTED_METERS,
    IncompletePolicy,
    MeterConfig,
    normalize_meters,
)
from pipeline.score import Bar, Meter, Note, Score, ScoreMeta
from pipeline.tokenizer import Tokenizer
from pipeline.tokenizer.chain import tokenize_score
from tests.helpers import m21_path, read_one, shared_data_root

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


def test_a_bar_thousands_of_quarters_long_is_cut_without_recursion(tokenizer: Tokenizer) -> None:
    # A MusicXML file without bar lines: one 4/4 bar of 4,001 quarters (a RecursionError once).
    s = score_of([(F(4001), "4/4")], [(F(k), 60 + k % 12, F(1)) for k in range(4001)])
    n = normalize_meters(s, MeterConfig(incomplete_bars="error"))
    assert n.meters() == ["4/4"] * 998 + ["3/4"] * 3  # the last 9 quarters are 9/4
    assert n.note_keys() == s.note_keys() and n.report["overfull_bars_split"] == 998
    assert len(tokenize_score(s, tokenizer).score.bars) == 1001
    odd = score_of([(F(16005, 4), "4/4")], [(F(0), 60, F(1))])  # leaves 5/4 of a quarter
    with pytest.raises(MeterError, match="bar at quarter 4000 is 5/4 quarters long"):
        normalize_meters(odd, MeterConfig(incomplete_bars="error"))
    assert normalize_meters(odd).report["overfull_bars_split"] == 1000


def test_bad_rule_tables_are_refused() -> None:
    with pytest.raises(ValueError, match="does not add up"):
        MeterConfig(rules={"5/4": ("2/4", "2/4")})
    with pytest.raises(ValueError, match="unsupported"):
        MeterConfig(rules={"5/8": ("5/8",)})
    cfg = parse_section(
        MeterConfig, {"rules": {"5/8": ["3/8", "2/8"]}, "supported": [*SUPPORTED_METERS, "2/8"]}
    )
    assert [str(m) for m in cfg.decompose(Meter(5, 8))] == ["3/8", "2/8"]


def test_pair_rule_drops_every_second_bar_line() -> None:
    assert DEFAULT_PAIRS == {"2/8": "2/4", "3/16": "3/8"}
    s = score_of([(F(1), "2/8")] * 4, [(F(0), 60, F(1, 2)), (F(3, 2), 62, F(1)), (F(3), 64, F(1))])
    n = normalize_meters(s, MeterConfig(incomplete_bars="error"))
    assert n.meters() == ["2/4", "2/4"] and [b.start for b in n.bars] == [0, 2]
    assert n.note_keys() == s.note_keys()  # the note across the dropped bar line is untouched
    assert n.report == {"bars_paired": 2}
    s = score_of([(F(3, 4), "3/16")] * 2 + [(F(3), "3/4")], [(F(1, 2), 60, F(1, 2))])
    assert normalize_meters(s).meters() == ["3/8", "3/4"]


@pytest.mark.parametrize(
    ("policy", "meters", "counts"),
    [
        # the odd last 2/8 bar joins its previous bar: 2 + 1 quarters -> 3/4
        ("merge", ["2/4", "3/4"], {"short_bars_merged": 1, "overfull_bars_reexpressed": 1}),
        ("pad", ["2/4", "2/4", "2/4"], {"incomplete_bars_padded": 1, "padding_quarters": 1}),
    ],
)
def test_pair_rule_pickup_and_odd_last_bar(
    policy: IncompletePolicy, meters: list[str], counts: dict[str, float]
) -> None:
    # 2/8: an eighth pickup, then three full bars.
    s = score_of(
        [(F(1, 2), "2/8"), (F(1), "2/8"), (F(1), "2/8"), (F(1), "2/8")],
        [(F(0), 67, F(1, 2)), (F(1, 2), 60, F(1)), (F(5, 2), 64, F(1))],
        pickup=True,
    )
    n = normalize_meters(s, MeterConfig(incomplete_bars=policy))
    assert n.pickup_shift == F(3, 2) and n.meters() == meters
    assert n.report == {"bars_paired": 1, "bars_unpaired": 2, "pickup_right_aligned": 1, **counts}
    assert n.note_keys() == [(o + F(3, 2), p, d) for o, p, d in s.note_keys()]
    with pytest.raises(MeterError, match="bar at quarter 5/2 is 1 quarters long"):
        normalize_meters(s, MeterConfig(incomplete_bars="error"))


def test_a_lone_bar_in_a_paired_meter_is_read_as_part_of_its_neighbours() -> None:
    # A 3/16 fragment between 4/4 bars of a reel (O'Neill's 1850 has such bars) has nothing to
    # pair with: as before pairs existed, it is an incomplete 4/4 bar; two of them make a 3/8 bar.
    lone = score_of([(F(4), "4/4"), (F(3, 4), "3/16"), (F(4), "4/4")], [(F(4), 60, F(1, 4))])
    n = normalize_meters(lone)
    assert n.report["unruled_meter_reinterpreted"] == 1 and "bars_paired" not in n.report
    twice = score_of([(F(4), "4/4"), (F(3, 4), "3/16"), (F(3, 4), "3/16")], [(F(4), 60, F(1, 4))])
    assert normalize_meters(twice).meters() == ["4/4", "3/8"]


def test_pair_rules_are_data_and_validated() -> None:
    cfg = parse_section(MeterConfig, {"rules": {"5/4": ["2/4", "3/4"], "2/8": {"pair": "2/4"}}})
    assert cfg.rules == {"5/4": ("2/4", "3/4")} and cfg.pairs == {"2/8": "2/4"}
    assert parse_section(MeterConfig, {}) == MeterConfig()
    no_pairs = parse_section(MeterConfig, {"rules": {"5/4": ["2/4", "3/4"]}})
    with pytest.raises(MeterError, match="2/8"):
        normalize_meters(score_of([(F(1), "2/8")] * 2, [(F(0), 60, F(1))]), no_pairs)
    bad = [
        ({"2/8": {"pair": "3/4"}}, "3/4 is not twice 2/8"),
        ({"4/8": {"pair": "4/4"}, "2/8": ["2/8"]}, "unsupported"),
        ({"2/4": {"pair": "4/4"}}, "2/4 is supported or has a rule already"),
        ({"2/8": {"pairs": "2/4"}}, "neither"),
        ({"2/8": "2/4"}, "neither"),
    ]
    for rules, message in bad:
        with pytest.raises(ValueError, match=message):
            parse_section(MeterConfig, {"rules": rules})
    with pytest.raises(ValueError, match="unsupported meter"):
        MeterConfig(pairs={"4/16": "2/8"})


@settings(max_examples=80, deadline=None)
@given(
    st.sampled_from(sorted(DEFAULT_PAIRS)),
    st.integers(1, 40),
    st.sampled_from(["merge", "pad"]),
    st.booleans(),
)
def test_pairing_keeps_every_note_and_halves_the_bars(
    meter: str, n_bars: int, policy: IncompletePolicy, with_pickup: bool
) -> None:
    full = Meter.parse(meter).length
    bars = [(full / 2, meter)] * with_pickup + [(full, meter)] * n_bars
    onsets = [sum((length for length, _ in bars[:i]), F(0)) for i in range(len(bars))]
    s = score_of(bars, [(o, 60 + i % 12, full / 3) for i, o in enumerate(onsets)], with_pickup)
    n = normalize_meters(s, MeterConfig(incomplete_bars=policy))
    assert all(b.complete and str(b.meter) in SUPPORTED_METERS for b in n.bars)
    assert n.report.get("bars_paired", 0) == n_bars // 2
    assert n.report.get("bars_unpaired", 0) == n_bars % 2 + with_pickup
    # the odd last bar joins the previous pair only where the sum has a meter (2/8: 3/4)
    joined = policy == "merge" and meter == "2/8" and n_bars >= 3
    assert len(n.bars) == with_pickup + n_bars // 2 + (n_bars % 2 and not joined)
    # every note keeps its onset (moved by the pickup's shift only) and its duration
    assert n.note_keys() == [(o + n.pickup_shift, p, d) for o, p, d in s.note_keys()]
    padding = F(n.report.get("padding_quarters", 0))
    assert n.bars[-1].end == s.bars[-1].end + n.pickup_shift + padding
    assert normalize_meters(n).bars == n.bars


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


def test_chopin_prelude_op28_no1_in_2_8_is_kept_with_every_second_bar_line_dropped(
    tokenizer: Tokenizer,
) -> None:
    path = shared_data_root() / "sapp-chopin-preludes" / "prelude28-01.krn"
    if not path.is_file():
        pytest.skip("shared data not present")
    s = read_one(path)
    assert s.meters() == ["2/8"] * 34
    result = tokenize_score(s, tokenizer, "Chopin")
    n = result.score
    assert n.meters() == ["2/4"] * 17 and [b.start for b in n.bars] == [
        b.start for b in s.bars[::2]
    ]
    assert result.report["bars_paired"] == 17 and "bars_unpaired" not in result.report
    assert "padding_quarters" not in result.report and n.pickup_shift == 0
    decoded = tokenizer.decode(result.ids)
    assert decoded.meters() == n.meters() and set(decoded.note_keys()) == set(n.note_keys())


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
