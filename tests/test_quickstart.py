"""`gnm quickstart`'s budget: it never fails for lack of time."""

from __future__ import annotations

import pytest

from gnm_model.quickstart import MIN_TRAIN_S, training_seconds


def test_time_left_goes_to_training() -> None:
    assert training_seconds(900.0) == (900.0, 0.0)
    assert training_seconds(MIN_TRAIN_S) == (MIN_TRAIN_S, 0.0)


@pytest.mark.parametrize("available", [MIN_TRAIN_S - 1, 10.0, 0.0, -808.0])
def test_an_overrun_build_still_trains_the_minimum_and_says_by_how_much(available: float) -> None:
    seconds, over = training_seconds(available)
    assert seconds == MIN_TRAIN_S
    assert over == pytest.approx(MIN_TRAIN_S - available)
    assert over > 0
