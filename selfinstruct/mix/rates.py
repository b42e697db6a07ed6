"""Mixing rates and per-source quotas, as seqio's mixtures take them: the sampler does not know how rates were
chosen, the card prints them.

examples-proportional with a cap K and a temperature T: rate = min(n, K) ** (1 / T). A source with a fixed
`weight` gets that share of the target; the others share the rest in proportion to their rates. A source smaller
than its quota is taken whole and what it could not fill goes to the others, in proportion to their shares.
"""

from __future__ import annotations

import math


def rate(available: int, cap: int | None, temperature: float) -> float:
    return float(min(available, cap) if cap is not None else available) ** (1.0 / temperature)


def shares(available: list[int], weights: list[float | None], cap: int | None, temperature: float) -> list[float]:
    """Each source's target share of the mix (adds up to 1 when any source has rows)."""
    fixed = sum(weight for weight in weights if weight is not None)
    rates = [rate(n, cap, temperature) if weight is None else 0.0 for n, weight in zip(available, weights)]
    rest = max(1.0 - fixed, 0.0)
    total_rate = sum(rates)
    out = [weight if weight is not None else (rest * r / total_rate if total_rate else 0.0)
           for weight, r in zip(weights, rates)]
    scale = sum(out)
    return [share / scale for share in out] if scale else out


def quotas(available: list[int], target_shares: list[float], target: int) -> list[int]:
    """Rows to take from each source: target x share, capped by what a source holds, the rest redistributed."""
    target = min(target, sum(available))
    taken = [0] * len(available)
    open_ = {n for n, count in enumerate(available) if count > 0 and target_shares[n] > 0}
    remaining = target
    while remaining > 0 and open_:
        weight = sum(target_shares[n] for n in open_)
        want = _apportion({n: remaining * target_shares[n] / weight for n in open_}, remaining)
        full = {n for n in open_ if taken[n] + want[n] >= available[n]}
        if not full:
            for n in open_:
                taken[n] += want[n]
            break
        for n in full:  # saturated: take it whole, then share what is left among the others
            remaining -= available[n] - taken[n]
            taken[n] = available[n]
        open_ -= full
    return taken


def _apportion(exact: dict[int, float], total: int) -> dict[int, int]:
    """Largest-remainder rounding: integers that add up to `total` (ties to the earlier source)."""
    floors = {n: math.floor(value) for n, value in exact.items()}
    short = total - sum(floors.values())
    for n in sorted(exact, key=lambda n: (-(exact[n] - floors[n]), n))[:max(short, 0)]:
        floors[n] += 1
    return floors
