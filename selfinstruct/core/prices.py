"""What API tokens cost: a price table by model name, and the estimated cost of a run.

Prices change: the defaults below are EXAMPLES (list prices in USD per million tokens as we last saw
them) to check against the provider's price page and override in the config's `[prices]` table. A model
priced `None`, or found nowhere, has an unknown cost. Self-hosted backends (cpu, vllm) cost nothing here.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field


class ModelPrice(BaseModel):
    """USD per million tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: float = Field(ge=0)
    output: float = Field(ge=0)


# EXAMPLES to check: not kept up to date by anyone.
DEFAULT_PRICES: dict[str, ModelPrice | None] = {
    "gpt-4o-mini": ModelPrice(input=0.15, output=0.60),
    "gpt-4o": ModelPrice(input=2.50, output=10.00),
    "gpt-4.1-mini": ModelPrice(input=0.40, output=1.60),
    "gpt-4.1-nano": ModelPrice(input=0.10, output=0.40),
    "gpt-3.5-turbo": ModelPrice(input=0.50, output=1.50),
}
SELF_HOSTED = frozenset({"cpu", "vllm"})
FREE = ModelPrice(input=0.0, output=0.0)
# The Batch API bills input and output tokens at half the synchronous price (the config's prices are the
# synchronous ones, as price pages list them).
BATCH_DISCOUNT = 0.5


def price_for(model: str, backend: str, table: Mapping[str, ModelPrice | None], batch: bool = False) -> ModelPrice | None:
    """The config's entry, else the default's; a dated name ('gpt-4o-mini-2024-07-18') matches its prefix.

    With `batch`, the Batch API's price: BATCH_DISCOUNT of it.
    """
    if backend in SELF_HOSTED:
        return FREE
    prices = {**DEFAULT_PRICES, **table}
    prefixes = [name for name in prices if model.startswith(name + "-")]
    price = prices[model] if model in prices else prices[max(prefixes, key=len)] if prefixes else None
    if price is None or not batch:
        return price
    return ModelPrice(input=price.input * BATCH_DISCOUNT, output=price.output * BATCH_DISCOUNT)


def cost(price: ModelPrice | None, prompt_tokens: int, completion_tokens: int) -> float | None:
    if price is None:
        return None
    return (prompt_tokens * price.input + completion_tokens * price.output) / 1e6
