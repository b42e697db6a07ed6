"""Root verb and direct object of an instruction: the Self-Instruct paper's verb–noun view, without a parser.

The paper parses each instruction (Berkeley Neural Parser) and keeps the verb closest to the root and its first
direct noun object. A parser model is a download we cannot make here, so this module uses word lists instead:

- the root verb is the first word when it is one of ~300 common imperative task verbs (`TASK_VERBS`); when the
  instruction opens with a question word or a modal ("How would you reverse…", "Can you write…"), it is the first
  task verb in the next few words; when it opens with a short lead-in clause ("Given a list, sort…", "For a school
  newsletter, write…"), the clause before the first comma is skipped once;
- the direct object is the head of the noun phrase after the verb (and its particle, "come up with"): the phrase
  runs until a preposition, conjunction, relative word or punctuation, and English noun phrases end in their head,
  so its last noun-like word is taken ("a short *table* with rows", "three central *themes* of").

Pure functions: text in, words out. Limits are documented in docs/report.md.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

# Common verbs that open task instructions, in their imperative (base) form.
TASK_VERBS = frozenset("""
    accept acknowledge act adapt add address adjust adopt advise advocate align allocate alphabetize analyse analyze
    annotate answer anticipate apply appraise approximate archive argue arrange ask assemble assess assign assist
    audit balance brainstorm break build calculate calibrate capitalize caption categorise categorize celebrate
    challenge change chart check choose cite clarify classify clean collect combine come comment communicate compare
    compete compile complete compose compress compute conclude condense conduct confirm conjugate connect consider
    consolidate construct continue contrast convert convince coordinate copy correct count cover craft create
    critique crop cut debate debug decide decipher decode deduce defend define delete deliver demonstrate derive
    describe design detail detect determine develop devise diagnose diagram differentiate direct discuss distinguish
    divide draft draw edit elaborate elect eliminate emphasize encode engage enhance ensure enter enumerate
    establish estimate evaluate evolve examine exclude execute exemplify expand explain explore express extend
    extract fetch figure fill filter find finish fix flag flesh forecast forge form format formulate frame gather
    gauge generate give grade group guess guide help highlight hypothesize identify illustrate imagine implement
    improve incorporate infer inform insert instruct integrate interpret interview introduce invent invert
    investigate iterate join judge justify keep label launch lay lead learn limit link list locate look maintain
    make manage map mark match maximize measure memorize mention merge minimize model modify monitor motivate
    multiply name narrate narrow negate negotiate nominate normalize note observe obtain offer optimize order
    organise organize outline paint paraphrase parse perform persuade pick pinpoint pitch place plan play point
    polish port position practice praise predict prepare present price prioritize process produce program promote
    pronounce proofread propose prove provide publish pull punctuate put qualify quantify question quote raise rank
    rate read reason recall recite recognize recommend reconstruct record rectify redact redesign redraft reduce
    refactor reflect reformat reformulate reframe regroup relate remove render reorder reorganize repair repeat
    rephrase replace reply report represent request research resolve respond restate restructure retell return
    reverse review revise reword rewrite rhyme round route rule run say scale scan schedule score script search
    select separate sequence serve set share shorten show signal simplify simulate situate sketch soften solve sort
    specify spell spin split spot standardize start state stress structure study style substitute suggest sum
    summarise summarize supply suppose survey swap synthesize tabulate tag take tally target teach tell test think
    tidy tighten title tone trace track train transcribe transfer transform translate transpose troubleshoot turn
    type uncover underline unpack unscramble update use validate verify walk weigh word work write
""".split())

# Phrasal verbs whose particle belongs to the verb: "come up with five names" is not about an "up".
PHRASAL = {
    "come": ("up with",), "sum": ("up",), "point": ("out",), "break": ("down",), "spell": ("out",),
    "figure": ("out",), "find": ("out",), "fill": ("in",), "carry": ("out",), "work": ("out",), "look": ("up",),
    "set": ("up",), "write": ("down", "up", "out"), "think": ("up", "of"), "make": ("up",), "put": ("together",),
    "pick": ("out",), "rule": ("out",), "lay": ("out",), "map": ("out",), "narrow": ("down",), "boil": ("down",),
    "tone": ("down",), "flesh": ("out",), "wrap": ("up",), "walk": ("through",), "clean": ("up",),
}

QUESTION_WORDS = frozenset("what how why which who whom whose when where whether".split())
MODALS = frozenset("can could would will should shall may might must do does did is are was were please".split())
# Words between the verb and the head noun that are never the head.
DETERMINERS = frozenset("""a an the this that these those my your our their his her its each every some any no all
    both either neither several many few more most much another other such what which whose one two three four five
    six seven eight nine ten twelve twenty hundred first second third next last""".split())
PRONOUNS = frozenset("me us him her them you it someone somebody".split())
ADJECTIVES = frozenset("""short long brief detailed simple new old good bad best better great small large big little
    few funny creative catchy concise clear polite formal informal friendly professional persuasive original
    interesting common different similar main key important possible following given single whole complete full
    quick easy hard difficult basic general specific random healthy modern famous popular typical positive negative
    appropriate relevant real fictional personal helpful useful unique strong weak""".split())
# A noun phrase ends before these (prepositions, conjunctions, relative words, "-ing" clause openers).
BOUNDARIES = frozenset("""of in on for to with about from into as at by between using based like than over under
    without within through during after before against among per via and or but so then nor that which who whom
    whose where when while if whether because since until unless how what why is are was were be can could would
    will should may might must shall""".split())
# After its head, an article starts a new phrase: "the arguments *a* nurse might make".
ARTICLES = frozenset("a an the this these those my your our their his its".split())
# Irregular past participles that open a reduced relative clause: "a podcast intro *told* from …".
PARTICIPLES = frozenset("""told written made given taken seen known found built sent held shown done kept brought
    bought caught drawn spoken sung read heard""".split())
PUNCTUATION = frozenset(",.;:!?()\"“”[]")

_WORD = re.compile(r"[^\W_][\w'’\-]*|[,.;:!?()\"“”\[\]]")
_LEAD_IN_MAX = 12  # words before a comma that we still read as a lead-in clause ("Given the text below, …")
_QUESTION_WINDOW = 5  # words after a question word/modal searched for the task verb
_PHRASE_MAX = 6  # words of a noun phrase read before giving up on its head


def words(text: str) -> list[str]:
    """Lowercased words and the punctuation marks that end phrases."""
    return _WORD.findall(text.lower())


def _verb_at(tokens: list[str]) -> int | None:
    """Index of the root verb in `tokens`, or None (see the module docstring for the three cases)."""
    start = 0
    while start < len(tokens) - 1 and (tokens[start] == "please" or tokens[start].endswith("ly")):
        start += 1  # "Please write…", "Briefly explain…"
    if start >= len(tokens):
        return None
    if tokens[start] in TASK_VERBS:
        return start
    if tokens[start] in QUESTION_WORDS or tokens[start] in MODALS:
        for index in range(start + 1, min(len(tokens), start + 1 + _QUESTION_WINDOW)):
            if tokens[index] in PUNCTUATION:
                return None
            # After a determiner a task verb is a noun: "What is the *time* complexity…".
            if tokens[index] in TASK_VERBS and tokens[index - 1] not in DETERMINERS | ADJECTIVES:
                return index
    return None


def _root_index(tokens: list[str]) -> int | None:
    index = _verb_at(tokens)
    if index is not None:
        return index
    if "," in tokens[:_LEAD_IN_MAX]:
        after = tokens.index(",") + 1
        index = _verb_at(tokens[after:])
        return None if index is None else after + index
    return None


def _particle_end(tokens: list[str], verb_index: int) -> int:
    """Index just after the verb and its particle, if it has one."""
    for particle in PHRASAL.get(tokens[verb_index], ()):
        parts = particle.split()
        if tokens[verb_index + 1: verb_index + 1 + len(parts)] == parts:
            return verb_index + 1 + len(parts)
    return verb_index + 1


def _is_head_candidate(token: str) -> bool:
    return (token[0].isalpha() and "-" not in token and token not in DETERMINERS and token not in ADJECTIVES
            and not token.endswith("ly") and token not in PRONOUNS)


def _opens_clause(token: str, following: str) -> bool:
    """A participle that takes its own object or phrase ends the noun phrase: "a story *featuring* a cat",
    "the device *used* in"; before a noun it is a modifier: "terse *meeting* notes"."""
    participle = token in PARTICIPLES or (len(token) >= 4 and token.endswith(("ing", "ed")))
    return participle and (following in DETERMINERS or following in BOUNDARIES or following in PUNCTUATION)


def _object_after(tokens: list[str]) -> str | None:
    """The last noun-like word of the noun phrase that opens `tokens`."""
    while tokens and tokens[0] in PRONOUNS and len(tokens) > 1 and tokens[1] not in PUNCTUATION:
        tokens = tokens[1:]  # "give me a list": "me" is the indirect object
    head = None
    window = tokens[:_PHRASE_MAX]
    for index, token in enumerate(window):
        following = tokens[index + 1] if index + 1 < len(tokens) else "."
        ends = token in ARTICLES or _opens_clause(token, following)
        if token in PUNCTUATION or token in BOUNDARIES or (head and ends):
            break
        if _is_head_candidate(token):
            head = token.removesuffix("'s").removesuffix("’s")
    return head


def verb_object(instruction: str) -> tuple[str | None, str | None]:
    """(root verb, direct object) of an instruction; either may be None."""
    tokens = words(instruction)
    index = _root_index(tokens)
    if index is None:
        return None, None
    end = _particle_end(tokens, index)
    verb = " ".join(tokens[index:end])
    return verb, _object_after(tokens[end:])


def verb_object_counts(pairs: Iterable[tuple[str | None, str | None]]) -> dict[str, Counter[str]]:
    """Root verb -> Counter of its direct objects, for the pairs that have a verb (an object may be absent: "")."""
    table: dict[str, Counter[str]] = {}
    for verb, noun in pairs:
        if verb is not None:
            table.setdefault(verb, Counter())[noun or ""] += 1
    return table
