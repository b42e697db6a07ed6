"""From rows of fields to Alpaca rows: a template chosen per row by a seeded hash, rendered, optionally
preceded by few-shot exemplars.

The choice hashes the seed and the row's own fields, not its position, so the same input gives the same row on
every run and in any order. Among the templates that apply to a row (`when`), the hash picks one; over a data
set of more rows than templates every template is used.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Any

from .templates import Template

SHOT_HEADER = "Examples:"
SHOT_FOOTER = "Now this one:"


def row_key(seed: int, fields: dict[str, Any]) -> int:
    """A 64-bit hash of the seed and the row's fields (their order in the row does not matter)."""
    text = repr(sorted(fields.items()))
    digest = hashlib.blake2b(f"{seed}\0{text}".encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def choose_template(templates: tuple[Template, ...], context: dict[str, Any], key: int) -> Template | None:
    """The row's template, picked by its hash among all; when the pick has a `when` that does not hold, among
    the templates without a condition. A row evaluates at most one condition, and every template gets used."""
    picked = templates[key % len(templates)]
    if picked.applies(context):
        return picked
    plain = [template for template in templates if template.when is None]
    return plain[(key // len(templates)) % len(plain)] if plain else None


@dataclass(frozen=True)
class Rendered:
    """A rendered row before it becomes an ExampleRow."""

    instruction: str
    input: str
    output: str
    template: str


def render_row(template: Template, context: dict[str, Any]) -> Rendered:
    instruction, input_, output = template.render(context)
    return Rendered(instruction, input_, output, template.id)


def with_shots(row: Rendered, exemplars: list[Rendered]) -> Rendered:
    """The row's instruction, then its exemplars' inputs and answers, then its own input.

    An exemplar rendered by a template whose instruction differs (it holds the data) shows that instruction too.
    """
    if not exemplars:
        return row
    blocks = []
    for shot in exemplars:
        asked = shot.input if shot.instruction == row.instruction else "\n".join(
            part for part in (shot.instruction, shot.input) if part)
        blocks.append(f"{asked}\nAnswer: {shot.output}")
    own = row.input or "(as instructed above)"
    return Rendered(row.instruction, "\n\n".join([SHOT_HEADER, *blocks, SHOT_FOOTER, own]), row.output, row.template)


def pick_shots(candidates: list[int], key: int, own: int, count: int) -> list[int]:
    """`count` exemplar indexes from `candidates` (never the row itself), drawn by a generator seeded with the
    row's hash: the same row gets the same exemplars on every run."""
    if count <= 0:
        return []
    draw = random.Random(key).sample(candidates, min(count + 1, len(candidates)))
    return [index for index in draw if index != own][:count]
