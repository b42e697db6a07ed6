"""Budgets over a whole run directory: prompts, tokens and estimated cost, from the store's totals.

A prompt counts once when the teacher answered it or it was dead-lettered; its retries are not counted
again (providers do not bill failed attempts). The spending is the store's totals when the session
opened plus what this process has asked since, so a budget holds across runs of the same directory:
run again with a higher budget to continue.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.config import GrowConfig
from ..core.errors import ConfigError
from ..core.prices import cost, price_for
from .usage import Usage


@dataclass(frozen=True)
class Spent:
    prompts: int = 0  # answered or dead-lettered; a batched request carries several
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = 0.0  # None: some model's price is unknown

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class Ledger:
    """The run directory's spending: the store's totals when the session opened, plus this process's usage.

    The store does not record which model answered, so every token is priced at the current model's price
(in batch mode, the Batch API's).
    """

    config: GrowConfig
    stored: tuple[int, int, int]
    model: str
    live: Usage

    def spent(self) -> Spent:
        prompts, prompt, completion = self.stored
        live = self.live
        prompts, prompt, completion = (prompts + live.requests + live.failed, prompt + live.prompt_tokens,
                                       completion + live.completion_tokens)
        price = price_for(self.model, self.config.backend, self.config.prices, self.config.batch)
        return Spent(prompts, prompt, completion, cost(price, prompt, completion))

    def exhausted(self) -> str | None:
        """Which budget is spent ('max_prompts: 1000 of 1000 prompts spent'), or None."""
        return budget_exhausted(self.config, self.spent())


def budget_exhausted(config: GrowConfig, spent: Spent) -> str | None:
    if config.max_prompts is not None and spent.prompts >= config.max_prompts:
        return f"max_prompts: {spent.prompts} of {config.max_prompts} prompts spent"
    if config.max_total_tokens is not None and spent.tokens >= config.max_total_tokens:
        return f"max_total_tokens: {spent.tokens} of {config.max_total_tokens} tokens spent"
    if config.max_cost is not None and spent.cost is not None and spent.cost >= config.max_cost:
        return f"max_cost: ${spent.cost:.4f} of ${config.max_cost:.4f} spent"
    return None


def check_cost_budget(config: GrowConfig, model: str) -> None:
    """A cost budget needs a price for the model; refuse to start rather than overspend blindly."""
    if config.max_cost is not None and price_for(model, config.backend, config.prices, config.batch) is None:
        raise ConfigError(
            "--max-cost", "prices", f"a price for model {model!r} in the config's [prices] table "
            f'(e.g. [prices."{model}"] input = 0.15, output = 0.60, in USD per million tokens)', "no price",
        )
