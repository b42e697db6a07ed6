"""Mixing rates and quotas, table-driven: seqio's examples-proportional rate with a cap and a temperature, fixed
weights, and redistribution from sources smaller than their share."""

from __future__ import annotations

import pytest

from selfinstruct.mix.rates import quotas, rate, shares


@pytest.mark.parametrize(("available", "cap", "temperature", "expected"), [
    (100, None, 1.0, 100.0),
    (5000, 2000, 1.0, 2000.0),
    (5000, 2000, 2.0, 2000 ** 0.5),
    (400, 2000, 2.0, 20.0),
    (0, 2000, 2.0, 0.0),
])
def test_rate(available: int, cap: int | None, temperature: float, expected: float) -> None:
    assert rate(available, cap, temperature) == pytest.approx(expected)


def test_shares_by_rate_and_fixed_weight() -> None:
    assert shares([100, 300], [None, None], None, 1.0) == pytest.approx([0.25, 0.75])
    # A temperature flattens: sqrt(100) : sqrt(400) = 1 : 2.
    assert shares([100, 400], [None, None], None, 2.0) == pytest.approx([1 / 3, 2 / 3])
    # The fixed source keeps 0.5; the other two split the rest by rate, capped at 1000 each.
    assert shares([50, 5000, 9000], [0.5, None, None], 1000, 1.0) == pytest.approx([0.5, 0.25, 0.25])


@pytest.mark.parametrize(("available", "target_shares", "target", "expected"), [
    ([1000, 1000], [0.5, 0.5], 100, [50, 50]),
    ([10, 1000, 1000], [1 / 3, 1 / 3, 1 / 3], 300, [10, 145, 145]),  # the small one taken whole
    ([10, 20, 1000], [0.4, 0.4, 0.2], 100, [10, 20, 70]),  # two saturate in turn
    ([5, 5], [0.5, 0.5], 100, [5, 5]),  # fewer rows than the target: everything
    ([100, 100, 100], [1 / 3, 1 / 3, 1 / 3], 100, [34, 33, 33]),  # rounding adds up, ties to the earlier
])
def test_quotas(available: list[int], target_shares: list[float], target: int, expected: list[int]) -> None:
    assert quotas(available, target_shares, target) == expected
    assert sum(expected) == min(target, sum(available))
