"""The line-level reading of a teacher reply: code blocks, field labels, item numbers and chat chatter.

`parse` builds items from these; nothing here knows about stages. A line inside a fenced code block is never a
label or an item number, and a label is only recognised at the start of a line (at most three spaces in, as in
markdown: deeper lines are indented code), in the shapes our prompts use, with the markdown emphasis that chat
models add (`**Input:**`, `### Output`, `- Label: Spam`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from .prompts import PROMPT_HEADERS
from ..core.sanitize import sanitize_text


@dataclass(frozen=True)
class Line:
    text: str
    code: bool = False  # inside a fenced code block, or one of its fence lines


_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*([\w+#.-]*)[^`]*$")
# Fences around prose rather than code: their content is read as the reply itself.
_PROSE_FENCES = {"", "text", "txt", "plain", "plaintext", "markdown", "md"}
# A label may follow a bullet, a list number or a markdown heading mark ("## Output"; one "#" is a code comment).
_LEAD = r"^ {0,3}(?:(?:[-*+>]|\d{1,3}[.)])\s+)?(?:#{2,6}\s*)?(?:[*_]+\s*)?"
# "Input:", "**Output:**", "- Label: Spam", "Example 2", "### Output", "Input 1:". A word followed by
# anything but a colon (`output = sorted(items)`) is no label.
_LABEL = re.compile(_LEAD + r"(?P<name>[a-z]+)(?:\s*#?\d{1,3})?[*_]*\s*(?::[*_]*\s?(?P<rest>.*)|[*_]*\s*$)",
                    re.IGNORECASE)
_HEADING_ONLY = {"example", "input", "output", "response"}  # may stand alone on a line, without a colon
# "9. ", "10) ", "Task 11.", "**12:**", "### Task 13:", "Task #14 -"; a bare "- " or "* " bullet as well.
_NUMBERED = re.compile(
    r"^ {0,3}(?:#{1,6}\s*)?[*_]*\s*(?:task\s*#?\s*)?(?P<n>\d{1,4})\s*[*_]*\s*(?:[.:)]|\s-)[*_]*\s*(?P<rest>.*)$",
    re.IGNORECASE)
_BULLET = re.compile(r"^ {0,3}[-*+\u2022]\s+(?P<rest>\S.*)$")
# "Task 9" with nothing after it: an empty item (a model that wrote the marker and moved on).
_BARE_MARKER = re.compile(r"^\s*[#*_]*\s*task\s*#?\s*\d{1,4}\s*[*_]*\s*$", re.IGNORECASE)

_CHATTER_PATTERNS = (
    # Openers of a chat answer.
    r"(?:sure|certainly|of course|absolutely|okay|ok|alright|great|no problem|gladly|happy to help)\b(?:[!,.:]|$)",
    r"(?:great|good|excellent|interesting) (?:question|idea|request)\b",
    # "Here are eight new tasks", "Below is a numbered list of tasks", but not "Here is a list of words: ...".
    r"(?:here(?:'s| is| are)|below (?:is|are)|the following (?:is|are)|following are)\b[^.:!?\n]{0,60}?"
    r"\b(?:tasks?|instructions?|examples?|ideas?|prompts?|pairs?|labels?|answer|json|response)\b",
    r"(?:here(?:'s| is| are)) (?:some |a few |the |my )?(?:more|new|additional|list continued|continued list|"
    r"continuation|rest)\b",
    r"here you (?:go|are)\b",
    r"(?:new|more|additional|extra|generated|some)?\s*(?:tasks?|instructions?|examples?|items?)(?: list)?\s*:?$",
    r"(?:i(?:'ve| have| will|'ll)|let me|we(?:'ve| have)) (?:come up|generated|created|written|write|continue|"
    r"provide|list|add|made|put together)",
    r"(?:continuing|to continue) (?:the|with)",
    # Talk about the prompt or the task instead of a task.
    r"(?:this|it) is a task\b",
    r"(?:the|this) task (?:is|was|requires|asks|involves)\b",
    r"(?:the|this) (?:original |given |above )?(?:text|list|prompt) (?:is|contains|has|consists)\b",
    # Refusals: no item ever starts like this.
    r"(?:i'm sorry|i am sorry|sorry, |i apologi[sz]e|i cannot|i can't|i can not|unfortunately, i|as an ai\b)",
    # Sign-offs.
    r"(?:i hope|hope (?:this|these|that|it)|let me know|feel free|if you (?:need|want|would|have|'d)|"
    r"would you like|do you want|want me to|shall i|enjoy|happy (?:learning|writing|coding|practicing)|"
    r"good luck|have fun|thank you|thanks\b|i can (?:also )?(?:provide|generate|write|create|make|help)|"
    r"(?:these|this|the above) (?:tasks?|examples?|instructions?|list|set|pairs?) (?:cover|covers|span|should|"
    r"are|vary|varies|include|includes|show|shows|gives?|range|ranges|offer|demonstrate))",
)
# A model that echoes our prompt's opening words writes no item there.
_ECHO_LENGTH = 40
_PROMPT_ECHO = tuple(re.escape(header[:_ECHO_LENGTH]) for header in PROMPT_HEADERS)
_CHATTER = re.compile(r"^[\s*_#>-]*(?:" + "|".join((*_CHATTER_PATTERNS, *_PROMPT_ECHO)) + ")", re.IGNORECASE)
# A sign-off that may follow the last line of an answer directly, with no blank line before it.
_GLUED_SIGNOFF = re.compile(
    r"^[\s*_]*(?:i hope (?:these|this|that|they|it) (?:help|are|is|will|was|were|meet|fit|work)|"
    r"hope (?:this|these|that) helps?)", re.IGNORECASE)
_RULE = re.compile(r"^\s*(?:[-*_=]\s*){3,}$")
_EMPHASIS = re.compile(r"(\*\*|__)(.+?)\1")


def split_lines(text: str) -> list[Line]:
    """The reply's lines, each marked when it belongs to a fenced code block (fence lines included)."""
    lines: list[Line] = []
    fence: str | None = None
    for raw in sanitize_text(text).split("\n"):
        match = _FENCE.match(raw)
        if fence is None and match:
            fence = match.group(1)
        elif fence is not None and raw.strip().startswith(fence[0] * len(fence)) and not raw.strip(fence[0] + " "):
            lines.append(Line(raw, code=True))
            fence = None
            continue
        lines.append(Line(raw, code=fence is not None))
    return lines


def unwrap_prose_fences(lines: list[Line], is_marker: Callable[[str], bool]) -> list[Line]:
    """Read the content of bare or prose (```text, ```markdown) fences as the reply when every item marker
    of the reply is inside one.

    A model that wraps its whole answer in ``` ... ``` still answers in our layout; a code answer inside an
    output has its labels outside the fence.
    """
    if any(not line.code and is_marker(line.text) for line in lines):
        return lines
    unwrapped: list[Line] = []
    inside: str | None = None  # "prose" or "code": the kind of fence the line is in
    for line in lines:
        fence = _FENCE.match(line.text) if line.code else None
        if fence and inside is None:
            inside = "prose" if fence.group(2).lower() in _PROSE_FENCES else "code"
            if inside == "prose":
                continue
        elif fence and not fence.group(2) and not line.text.strip().strip(fence.group(1)[0]):
            closing, inside = inside, None
            if closing == "prose":
                continue
        unwrapped.append(Line(line.text, code=line.code and inside != "prose"))
    return unwrapped


def label_of(text: str, names: tuple[str, ...]) -> tuple[str, str] | None:
    """(name, rest of the line) when the line starts a field of one of `names`, else None."""
    match = _LABEL.match(text)
    if not match or match.group("name").lower() not in names:
        return None
    name = match.group("name").lower()
    if match.group("rest") is None and name not in _HEADING_ONLY:
        return None
    return name, strip_emphasis(match.group("rest") or "").strip()


def numbered_item(text: str) -> str | None:
    """The text of a numbered (or bulleted) list item, else None."""
    if _BARE_MARKER.match(text):
        return ""
    match = _NUMBERED.match(text) or _BULLET.match(text)
    return match.group("rest") if match else None


def is_chatter(text: str) -> bool:
    """A chat preamble, sign-off, refusal or list heading: words about the answer, not part of it."""
    return bool(_CHATTER.match(text.strip())) or bool(_RULE.match(text))


def strip_emphasis(text: str) -> str:
    """Markdown bold around words removed, and stray emphasis marks at the ends."""
    return _EMPHASIS.sub(r"\2", text).strip().strip("*_").strip()


def drop_trailing_chatter(lines: list[Line]) -> list[Line]:
    """Lines without the trailing paragraphs that are chat sign-offs (or rules); code is never dropped.

    The paragraph holding the first line of text is the field's own: only a glued sign-off may leave it.
    """
    first = next((i for i, line in enumerate(lines) if line.text.strip()), len(lines))
    end = len(lines)
    while end > first:
        while end > first and not lines[end - 1].text.strip():
            end -= 1
        start = end
        while start > first and lines[start - 1].text.strip():
            start -= 1
        paragraph = lines[start:end]
        if any(line.code for line in paragraph):
            break
        if start > first and is_chatter(paragraph[0].text):
            end = start
        elif end - 1 > first and _GLUED_SIGNOFF.match(paragraph[-1].text):
            end -= 1
        else:
            break
    return lines[:end]
