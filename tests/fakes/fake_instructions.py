"""Novel-looking instructions from cores, slots and modifiers, with some junk. Pure: rng in, text out.

An instruction is a core verb phrase with slots drawn from long word lists, plus
clauses drawn independently of it (a persona, a detail, a format, a purpose), so two
instructions share most of their words only if they share a core, its slots and
their clauses: with the word lists in `fake_vocab`, about nine in ten of 4,000
instructions have no neighbour at ROUGE-L 0.7 or above among the ones before them.
About one in seven is deliberately bad (too short, leading punctuation, a blacklisted
word, "Write a program", or a near-copy of a demo) so every filter has work to do.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence

from . import fake_vocab as v

JUNK_RATE = 0.15
CLASSIFICATION_SHARE = 0.2

_NUMBER_WORDS = ("two", "three", "four", "five", "six", "seven")
_BARE_A = re.compile(r"\ba (?=(?!one\b|uni|use|eu)[aeiou])", re.IGNORECASE)


class _Slots(dict):
    """`format_map` source: a slot is drawn from its word list the first time a template names it."""

    def __init__(self, rng: random.Random) -> None:
        super().__init__()
        self.rng = rng

    def __missing__(self, key: str) -> str:
        value = _SLOT_DRAWS[key](self.rng, self)
        self[key] = value
        return value


def _pick(words: tuple[str, ...]) -> Callable[[random.Random, _Slots], str]:
    return lambda rng, slots: rng.choice(words)


def _other(key: str, words: tuple[str, ...]) -> Callable[[random.Random, _Slots], str]:
    def draw(rng: random.Random, slots: _Slots) -> str:
        first = slots[key]
        while (word := rng.choice(words)) == first:
            pass
        return word
    return draw


def _topic(rng: random.Random, slots: _Slots) -> str:
    subject = slots["subject"]
    return f"{rng.choice(v.ASPECTS)} {subject}" if rng.random() < 0.5 else subject


def _unit_pair(rng: random.Random, slots: _Slots) -> str:
    source, target = rng.choice(v.UNITS)
    return f"{source} to {target}"


def _item_and_groups(key: str) -> Callable[[random.Random, _Slots], str]:
    def draw(rng: random.Random, slots: _Slots) -> str:
        item, groups = rng.choice(v.ITEM_GROUPS)
        slots.update(item=item, groups=", ".join(groups))
        return slots[key]
    return draw


def _label_choice(rng: random.Random, slots: _Slots) -> str:
    labels = rng.choice(v.LABEL_SETS)
    return ", ".join(label.lower() for label in labels[:-1]) + f" or {labels[-1].lower()}"


_SLOT_DRAWS: dict[str, Callable[[random.Random, _Slots], str]] = {
    "tone": _pick(v.TONES), "genre": _pick(v.GENRES), "subject": _pick(v.SUBJECTS), "topic": _topic,
    "subject2": _other("subject", v.SUBJECTS), "person": _pick(v.PEOPLE), "person2": _other("person", v.PEOPLE),
    "audience": _pick(v.AUDIENCES), "document": _pick(v.DOCUMENTS), "recipient": _pick(v.RECIPIENTS),
    "event": _pick(v.EVENTS), "n": _pick(_NUMBER_WORDS), "place": _pick(v.PLACES), "product": _pick(v.PRODUCTS),
    "venture": _pick(v.VENTURES), "object": _pick(v.OBJECTS), "text_kind": _pick(v.TEXT_KINDS),
    "language": _pick(v.LANGUAGES), "process": _pick(v.PROCESSES), "question": _pick(v.QUESTIONS),
    "debate": _pick(v.DEBATES), "domain": _pick(v.DOMAINS), "constraint": _pick(v.CONSTRAINTS),
    "vehicle": _pick(v.VEHICLES), "unit_pair": _unit_pair, "stat": _pick(v.STATS), "lang": _pick(v.LANGS),
    "lang2": _other("lang", v.LANGS), "code_task": _pick(v.CODE_TASKS), "sql_task": _pick(v.SQL_TASKS),
    "regex_target": _pick(v.REGEX_TARGETS), "traveler": _pick(v.TRAVELERS), "budget": _pick(v.BUDGETS),
    "goal": _pick(v.GOALS), "timeframe": _pick(v.TIMEFRAMES), "meal": _pick(v.MEALS),
    "occasion": _pick(v.OCCASIONS), "diet": _pick(v.DIETS), "problem": _pick(v.PROBLEMS),
    "decision": _pick(v.DECISIONS), "choice": _pick(v.CHOICES), "entity": _pick(v.ENTITIES),
    "role": _pick(v.ROLES), "science_topic": _pick(v.SCIENCE_TOPICS), "feature": _pick(v.FEATURES),
    "labels": _label_choice, "item": _item_and_groups("item"), "groups": _item_and_groups("groups"),
    "number_labels": lambda rng, slots: rng.choice(("prime or composite", "even or odd")),
    "qty": lambda rng, slots: str(rng.randint(2, 48)), "price": lambda rng, slots: str(rng.randint(3, 950)),
    "pct": lambda rng, slots: str(rng.randint(4, 25)), "dist": lambda rng, slots: str(rng.randint(12, 900)),
    "hours": lambda rng, slots: str(rng.randint(2, 14)), "big": lambda rng, slots: str(rng.randint(10, 90) * 100),
    "counterfactual": _pick(v.COUNTERFACTUALS), "goods": _pick(v.GOODS), "season": _pick(v.SEASONS),
    "household_item": _pick(v.HOUSEHOLD_ITEMS), "place2": _other("place", v.PLACES),
    "measurements": lambda rng, slots: rng.choice(v.MEASUREMENTS).format_map(slots),
    "name": _pick(v.NAMES), "amount": lambda rng, slots: str(rng.randint(2, 500)),
    "num": lambda rng, slots: str(rng.randint(3, 12) * 10),
}


def make_instruction(rng: random.Random, demos: Sequence[str] = ()) -> str:
    """One instruction: usually a novel combination, sometimes junk for the filters to catch."""
    if rng.random() < JUNK_RATE:
        return _junk_instruction(rng, demos)
    slots = _Slots(rng)
    if rng.random() < CLASSIFICATION_SHARE:
        text = rng.choice(v.CLASSIFICATION_CORES).format_map(slots)
        text = text if text.endswith("?") else text + "."
        text = _follow_up(text, v.CLASSIFICATION_NOTES, 0.5, rng)
    elif (core := rng.choice(v.CORES)).endswith("?"):
        text = _follow_up(core.format_map(slots), v.FOLLOW_UPS, 0.7, rng)
    else:
        text = _with_modifiers(core.format_map(slots), slots, rng)
    if rng.random() < 0.2:
        context = rng.choice(v.CONTEXTS).format_map(_Slots(rng))
        text = f"{context} {text[0].lower()}{text[1:]}"
    return _BARE_A.sub("an ", text[0].upper() + text[1:])


def _follow_up(text: str, sentences: tuple[str, ...], chance: float, rng: random.Random) -> str:
    if rng.random() < chance:
        return f"{text} {rng.choice(sentences).format_map(_Slots(rng))}"
    return text


def _with_modifiers(text: str, slots: _Slots, rng: random.Random) -> str:
    """Clauses drawn independently of the core, so sharing a core is not enough to collide."""
    clauses = []
    if "name" not in slots and rng.random() < 0.6:
        clauses.append(f" for {rng.choice(v.NAMES)}, {rng.choice(v.PEOPLE)} from {rng.choice(v.PLACES)}")
    elif "audience" not in slots and rng.random() < 0.5:
        clauses.append(f" for {rng.choice(v.AUDIENCES)}")
    if rng.random() < 0.5:
        clauses.append(" " + rng.choice(v.DETAILS).format_map(_Slots(rng)))
    if rng.random() < 0.5 or len(clauses) < 2:
        clauses.append(f", {rng.choice(v.CONSTRAINTS)}")
    if rng.random() < 0.2:
        clauses.append(f", so that {rng.choice(v.PURPOSES)}")
    return text + "".join(clauses) + "."


def _junk_instruction(rng: random.Random, demos: Sequence[str]) -> str:
    kind = rng.randrange(5)
    if kind == 0:
        return rng.choice(v.SHORT_JUNK)
    if kind == 1:
        return rng.choice(("- ", "... ", "(", "\u2014 ")) + make_instruction(rng, demos)
    if kind == 2:
        return rng.choice(v.BLACKLISTED_JUNK).format_map(_Slots(rng))
    if kind == 3:
        return "Write a program that " + rng.choice(v.CODE_TASKS) + "."
    # A near-copy: one of the prompt's demos (already in the pool) with a word added.
    source = rng.choice(demos) if demos else make_instruction(rng)
    return source.rstrip(".?!") + rng.choice((" please.", ", briefly.", " again.", " for me."))
