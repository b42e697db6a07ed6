"""Word lists and regular expressions of the answer checks, compiled once at import.

Each pattern says what it looks for; `answers.py` decides when it applies (the exemptions read the
instruction). Patterns are written to miss rather than to misfire: a junk row that slips through costs
one row, a good row dropped for a pattern is a pattern a user stops trusting.
"""

from __future__ import annotations

import re

_I = re.IGNORECASE
_IM = re.IGNORECASE | re.MULTILINE


def words_pattern(words: tuple[str, ...] | list[str], flags: int = _I) -> re.Pattern[str]:
    """Whole-word match of any of `words` (spaces match any run of whitespace), longest first."""
    ordered = sorted(words, key=len, reverse=True)
    alternatives = "|".join(re.escape(word).replace(r"\ ", r"\s+") for word in ordered)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", flags)


# --- Refusals and AI disclaimers -------------------------------------------------------------------
# A disclaimer is junk wherever it stands, unless the task is about an AI (a story told by a robot).
DISCLAIMER = re.compile(
    r"\bas an? (?:ai|a\.i\.|artificial intelligence|(?:large )?language model|virtual assistant|chatbot)"
    r"(?: (?:language )?model| assistant| chatbot| system)?\b"
    r"|\bi(?:'m| am) (?:just |only |merely |simply )?an? (?:ai|a\.i\.|artificial intelligence|"
    r"(?:large )?language model|virtual assistant|chatbot)\b"
    r"|\bmy (?:training data|knowledge cut-?off)\b"
    r"|\bi (?:was|have been) (?:created|trained|developed|programmed) by (?:openai|anthropic|google|meta)\b",
    _I,
)
# Apologies and "I can't ..." count only at the very start of an output: inside a story or a letter a
# character may well say "I'm sorry, but I can't come".
OPENING_REFUSAL = re.compile(
    r"^\W*(?:(?:i(?:'m| am) (?:so |very |really )?(?:sorry|afraid)|sorry|unfortunately|apologies|"
    r"i apologi[sz]e)\b[^.!?\n]{0,80}?\b(?:i|we)\s+(?:can(?:'|no)?t|cannot|can not|am unable|am not able|"
    r"won't|will not|do not|don't)\b"
    r"|i\s+(?:can(?:'|no)?t|cannot|can not|am unable to|am not able to|won't be able to|will not|"
    r"must (?:decline|refuse)|do not have (?:access|the ability)|don't have (?:access|the ability))"
    r"(?:\s+\w+){0,3}?\s+(?:help(?!\s+(?:but|it|myself|feeling|thinking|wondering))|assist|provide|fulfil+|"
    r"comply|complete|do|write|create|generate|answer|perform|browse|access|see|view|give|offer|support|"
    r"engage|produce|draw|share|process|read|open|translate|summari[sz]e)\b"
    r"|(?:please|kindly)\s+(?:provide|share|paste|specify|supply|send|give me)\b"
    r"|(?:could|can|would) you (?:please )?(?:provide|share|paste|specify|clarify|give me)\b"
    r"|i (?:need|would need|require) (?:more|additional|some) (?:information|context|details)\b)",
    _I,
)
# How far into an output an opening refusal may start (after a "Dear ...," or a quote mark).
OPENING_CHARS = 160
# "There is no text provided" reads as a refusal wherever it stands.
NOTHING_GIVEN = re.compile(
    r"\b(?:there is|there's|you have|you've) (?:no|not (?:provided|given|included) (?:any|a|the)) "
    r"(?:\w+\s+){0,2}?(?:text|input|passage|paragraph|sentence|article|list|data|code|context|information)"
    r"(?: (?:provided|given|included|attached|to work with))?\b"
    r"|\b(?:no|the) (?:text|input|passage|paragraph|sentence|article|list|data|code) (?:was|is|has been) "
    r"(?:not )?(?:provided|given|included|missing)\b",
    _I,
)
# An instruction that asks for a refusal, an apology or a reply in someone's voice.
ASKS_REFUSAL = re.compile(
    r"\b(?:refus\w*|declin\w*|reject\w*|apolog\w*|turn(?:ing)? down|say(?:ing)? no|sorry|regret\w*|"
    r"decline|deny|denial|cannot|can't|unable)\b",
    _I,
)
ASKS_MESSAGE = re.compile(
    r"\b(?:repl(?:y|ies)|respond\w*|responses?|e-?mails?|letters?|messages?|notes?|memos?|dialogues?|"
    r"dialogs?|conversations?|scripts?|role-?play\w*|customers?|clients?|chats?|speech|monologue|"
    r"stor(?:y|ies)|scenes?|characters?|narrat\w*|fiction|quotes?|says?|said)\b",
    _I,
)
MENTIONS_AI = re.compile(
    r"\b(?:ai|a\.i\.|artificial intelligence|robots?|chatbots?|bots?|assistants?|language models?|llms?|"
    r"androids?|machines?|computers?|virtual|cyborgs?|siri|alexa|chatgpt|gpt|disclaimers?)\b",
    _I,
)

# --- Template placeholders -------------------------------------------------------------------------
_FIELD_WORDS = (
    r"(?:(?:first|last|full|company|recipient(?:'s)?|sender(?:'s)?|manager(?:'s)?|job|event|product|"
    r"business|school|customer(?:'s)?|client(?:'s)?|contact|start|end|today's|due|current|street|team|"
    r"brand|store|hotel|restaurant|doctor(?:'s)?|friend(?:'s)?)\s+)?"
    r"(?:name|date|address|phone(?:\s+number)?|e-?mail(?:\s+address)?|title|position|city|state|country|"
    r"company|organi[sz]ation|signature|contact\s+(?:info|information|details)|location|time|amount|"
    r"price|number|website|url|link|topic|product|recipient|sender)"
)
_ASK_WORDS = r"(?:your|insert|enter|add|fill\s+in|type|put|specify|include|replace|placeholder)"
PLACEHOLDER = re.compile(
    rf"\[\s*{_ASK_WORDS}\b[^\[\]\n]{{0,40}}\]"
    rf"|\[\s*{_FIELD_WORDS}\s*\](?!\()"
    rf"|<\s*{_ASK_WORDS}\b[^<>\n]{{0,40}}>"
    rf"|<\s*{_FIELD_WORDS}\s*>"
    # {company}, {{name}}: not after a word character or a backslash (LaTeX \textbf{Bold}, x^{2}).
    r"|(?<![\w\\^_$])\{\{?\s*[A-Za-z][A-Za-z_ ]{2,30}\s*\}\}?"
    r"|\blorem ipsum\b",
    _I,
)
# Upper case only: "xxx" at the end of a letter is a kiss; "XXX" after "Chapter" is thirty.
BLANK_X = re.compile(r"(?<![A-Za-z])X{3,}(?![A-Za-z])")
ROMAN_CONTEXT = words_pattern((
    "chapter", "part", "book", "volume", "vol", "bowl", "article", "section", "act", "canto", "psalm",
    "olympiad", "olympics", "games", "dynasty", "pope", "king", "louis", "century", "no", "number", "legion",
))
ASKS_TEMPLATE = re.compile(
    r"\b(?:templates?|placeholders?|fill(?:-|\s+)in|blanks?|form letters?|mad\s*libs?|boilerplate|"
    r"mail\s*merge|format strings?|variables?|brackets?|braces?|mock-?ups?|outlines?|skeleton|"
    r"lorem ipsum|redact\w*|censor\w*|anonymi[sz]\w*|mask\w*)\b",
    _I,
)

# --- Code --------------------------------------------------------------------------------------------
FENCED = re.compile(r"```.*?(?:```|\Z)|~~~.*?(?:~~~|\Z)", re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]+`")
CODE_LINE = re.compile(
    r"^[ \t]*(?:def\s+\w+\s*\(|class\s+\w+|import\s+\w|from\s+[\w.]+\s+import\b|#include\b|function\b|"
    r"const\s+\w|let\s+\w|var\s+\w|public\s|private\s|static\s|return\b|print\(|console\.|echo\s|"
    r"select\s.+\sfrom\s|insert\s+into\b|create\s+table\b|<\?php|<!doctype|<html|<div|<p>|<span|"
    r"for\s*\(|if\s*\(|while\s*\(|for\s+\w+\s+in\s.+:\s*$|[\w.\[\]]+\s*(?:=|\+=|-=)\s*[\w\[{(\"'-])"
    r"|[;{}][ \t]*$",
    _IM,
)
CODE_TASK = re.compile(
    r"\b(?:code|coding|program\w*|functions?|scripts?|python|java|javascript|typescript|c\+\+|c#|rust|"
    r"golang|ruby|php|sql|html|css|regex|regular expressions?|json|yaml|xml|bash|shell|latex|markdown|"
    r"api|class|method|snippet|algorithm|query|compile\w*|syntax)\b",
    _I,
)

# --- Leaked no-input markers -------------------------------------------------------------------------
NO_INPUT_TAG = re.compile(r"<\s*(?:none|no[\s_-]?input|no[\s_-]?output|empty|blank|nothing)\s*/?\s*>", _I)
# Whole outputs that stand for "nothing": each would train "answer with a marker".
NO_INPUT_OUTPUTS = frozenset({
    "n/a", "n.a.", "n/a.", "no input", "no input.", "noinput", "no output", "(none)", "[none]", "(no input)",
    "(empty)", "[empty]", "none needed", "no input needed", "no input required", "not applicable",
    "not applicable.", "-", "--", "...", "(n/a)",
})

# --- An instruction that points at an input ------------------------------------------------------------
_INPUT_NOUNS = (
    r"(?:texts?|passages?|paragraphs?|sentences?|articles?|excerpts?|snippets?|code|documents?|e-?mails?|"
    r"letters?|lists?|reviews?|tweets?|essays?|poems?|stor(?:y|ies)|data(?:set)?|tables?|numbers?|strings?|"
    r"statements?|questions?|inputs?|sequences?|arrays?|equations?|expressions?|messages?|conversations?|"
    r"dialogues?|phrases?|words?|recipes?|quer(?:y|ies)|descriptions?|items?|songs?|lyrics|transcripts?|"
    r"reports?|summar(?:y|ies)|products?|programs?|functions?|scripts?|sql|json|csv|urls?|links?|news|"
    r"headlines?|titles?|names?|sets?|matrix|matrices|graphs?|claims?|arguments?|options?|choices?|"
    r"pairs?|examples?|instructions?|terms?|quotes?|speech|verses?|lines?|problems?|"
    r"scenarios?|situations?|facts?|events?|characters?|values?|records?|entr(?:y|ies)|notes?|posts?|"
    r"comments?|feedback|responses?|answers?|input)"
)
_TIME_WORDS = r"(?:day|days|week|weeks|month|months|year|years|morning|evening|night|season|decade|century)"
POINTS_AT_INPUT = re.compile(
    rf"\bthe\s+following\b(?!\s+{_TIME_WORDS}\b)"
    # "the given list" points at an input; "given a list of numbers, write a function" does not.
    rf"|\b(?:given|provided|above|below|preceding|attached|enclosed|aforementioned|supplied|accompanying|"
    rf"included|quoted|listed|specified)\s+(?!(?:a|an|any|some|two|three|several|\d+)\b)(?:\w+\s+)?"
    rf"{_INPUT_NOUNS}\b"
    rf"|\b(?:this|these|those)\s+(?:\w+\s+)?{_INPUT_NOUNS}\b(?!\s+(?:of|about|for|that|which|who)\b)"
    rf"|\b{_INPUT_NOUNS}\s+(?:below|above|provided|given|shown|attached)\s*(?:[.:,;?!]|$)"
    rf"|\bthe\s+(?:\w+\s+)?{_INPUT_NOUNS}\s+(?:below|above)\b"
    rf"|\b(?:below|above)\s*:\s*$"
    rf"|\b(?:summari[sz]e|rewrite|paraphrase|proofread|classify|translate|shorten|simplify|edit|correct|"
    rf"analy[sz]e|categori[sz]e|sort|reverse|reorder|rephrase|tag|label)\s+(?:the|it|them)\b"
    rf"(?:\s+{_INPUT_NOUNS}\b(?!\s+(?:of|about|for|on|that|which|who)\b))?(?:\s*[.?!]|\s*$|\s+(?:as|so|into|in|to|by|and|using|with)\b)",
    _I,
)
INPUT_NOUN = re.compile(rf"\b{_INPUT_NOUNS}\b", _I)
# The content is in the instruction itself: after a colon, in quotes, or on its own lines.
INLINE_CONTENT = re.compile(r":\s*\S+\s+\S+|:\s*\S{6,}|[\"“«„][^\"”»“]{6,}[\"”»“]|(?:^|\s)'[^'\n]{6,}'|\n\s*\S", _I)

# --- Repetition ------------------------------------------------------------------------------------
ASKS_REPETITION = re.compile(
    r"\b(?:repeat\w*|repetit\w*|chant\w*|refrains?|chorus\w*|mantras?|over and over|times|echo\w*|"
    r"tongue[- ]twisters?|cheers?|slogans?|songs?|lyrics|rhymes?|litany|affirmations?|drills?|patterns?|"
    r"sequences?|loops?|counts?|counting|again|copies|duplicat\w*|lines? of|same)\b",
    _I,
)
ASKS_COPY = re.compile(
    r"\b(?:repeat\w*|cop(?:y|ies)|echo\w*|verbatim|unchanged|as is|as-is|identical\w*|same|reproduce|"
    r"quote|recite|return the (?:input|text|string)|if (?:it is|it's|they are) (?:already )?correct|"
    r"unless|no changes?|otherwise)\b",
    _I,
)

# --- Prompt leaks ------------------------------------------------------------------------------------
ITEM_MARKER = re.compile(
    r"^[ \t]*(?:[#*>_]+[ \t]*)?(task|example)[ \t]*\d+[ \t]*[*_]*[ \t]*(?:[:.)]|$)"
    r"|^[ \t]*#{2,}[ \t]*(task)\b",
    _IM,
)
FIELD_LINE = re.compile(r"^[ \t]*[*_#]*[ \t]*(instruction|input|output|label|classification|task)[*_]*[ \t]*:", _IM)

# --- Scripts and languages -----------------------------------------------------------------------------
# (first code point, last code point, script); letters outside these ranges are not counted.
SCRIPT_RANGES: tuple[tuple[int, int, str], ...] = (
    (0x00C0, 0x024F, "latin"), (0x0370, 0x03FF, "greek"), (0x0400, 0x052F, "cyrillic"),
    (0x0530, 0x058F, "armenian"), (0x0590, 0x05FF, "hebrew"), (0x0600, 0x06FF, "arabic"),
    (0x0750, 0x077F, "arabic"), (0x0900, 0x097F, "devanagari"), (0x0980, 0x09FF, "bengali"),
    (0x0B80, 0x0BFF, "tamil"), (0x0E00, 0x0E7F, "thai"), (0x10A0, 0x10FF, "georgian"),
    (0x1100, 0x11FF, "hangul"), (0x1200, 0x137F, "ethiopic"), (0x1E00, 0x1EFF, "latin"),
    (0x3040, 0x30FF, "cjk"), (0x3400, 0x4DBF, "cjk"), (0x4E00, 0x9FFF, "cjk"), (0xAC00, 0xD7AF, "hangul"),
    (0xF900, 0xFAFF, "cjk"), (0xFB50, 0xFDFF, "arabic"), (0xFE70, 0xFEFF, "arabic"),
)
ASCII_LETTERS = re.compile(r"[A-Za-z]")
NON_ASCII = re.compile(r"[^\x00-\x7f]")
_LANGUAGES = (
    "english", "french", "spanish", "german", "italian", "portuguese", "russian", "ukrainian", "chinese",
    "mandarin", "cantonese", "japanese", "korean", "arabic", "hebrew", "hindi", "bengali", "urdu", "punjabi",
    "tamil", "telugu", "marathi", "gujarati", "thai", "vietnamese", "greek", "turkish", "persian", "farsi",
    "polish", "dutch", "swedish", "norwegian", "danish", "finnish", "czech", "hungarian", "romanian",
    "bulgarian", "serbian", "croatian", "indonesian", "malay", "filipino", "tagalog", "swahili", "latin",
    "esperanto", "yiddish", "armenian", "georgian", "mongolian", "nepali", "sanskrit", "khmer", "lao",
    "burmese", "amharic", "kazakh", "uzbek", "belarusian", "catalan", "basque", "irish", "welsh", "icelandic",
    "klingon", "elvish",
)
ASKS_LANGUAGE = re.compile(
    words_pattern(_LANGUAGES).pattern
    + r"|\b(?:translat\w*|transliterat\w*|romani[sz]\w*|languages?|alphabets?|scripts?|kanji|hiragana|"
    r"katakana|hanzi|pinyin|cyrillic|characters?|native|foreign|bilingual|multilingual|phonetic\w*|ipa|"
    r"pronunciation|pronounce|spelling in|written in|in the original|locali[sz]\w*)\b"
    # A few ways to name a language in the scripts a teacher writes most.
    r"|英语|英文|英語|中文|汉语|漢語|日本語|日语|韓国語|한국어|영어|英訳|翻訳|翻译|"
    r"английск|русск|французск|немецк|испанск|китайск|японск|перев\w*|"
    r"الإنجليزية|العربية|ترجم|अंग्रेज़ी|अंग्रेजी|हिंदी|अनुवाद",
    _I,
)
