"""Word lists and patterns of the answer checks, compiled once at import.

Each list says what it looks for; `answers.py` decides when it applies (the exemptions read the
instruction). They are written to miss rather than to misfire: a junk row that slips through costs one
row, a good row dropped for a pattern is a pattern a user stops trusting.

Speed: Python's `re` scans fast for a pattern that starts with a literal ("[", "<") and slowly for an
alternation of words that starts with `\\b` (it tries the whole alternation at every position). So
questions about an instruction's words go through `Lexicon` (set lookups on its words), and output
patterns of the slow kind run only after a substring test says they can match.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_I = re.IGNORECASE
_WORD_PHRASE = re.compile(r"^[a-z0-9 ]+$")


class Lexicon:
    """Named lists of terms, found among a text's words in one pass.

    A term is a "word", a "stem*" (any word it starts), or a phrase with spaces, looked for between
    spaces in the text's space-joined words; a term with other characters ("a.i.", "c++", "英语": other
    scripts have no spaces to split words on) is looked for as a substring of the lower-cased text.
    """

    def __init__(self, named_terms: dict[str, Iterable[str]]) -> None:
        kinds: dict[str, dict[str, set[str]]] = {"word": {}, "stem": {}, "phrase": {}, "substring": {}}
        for name, terms in named_terms.items():
            for term in terms:
                if term.endswith("*"):
                    kind, key = "stem", term[:-1]
                elif not term.isascii() or not _WORD_PHRASE.match(term):
                    kind, key = "substring", term
                elif " " in term:
                    kind, key = "phrase", f" {term} "
                else:
                    kind, key = "word", term
                kinds[kind].setdefault(key, set()).add(name)
        frozen = {kind: {key: frozenset(names) for key, names in table.items()} for kind, table in kinds.items()}
        self.words, self.stems = frozen["word"], frozen["stem"]
        self.stem_lengths = tuple(sorted({len(stem) for stem in self.stems}))
        self.phrases = tuple(frozen["phrase"].items())
        self.ascii_substrings = tuple((key, names) for key, names in frozen["substring"].items() if key.isascii())
        self.other_substrings = tuple((key, names) for key, names in frozen["substring"].items() if not key.isascii())

    def names(self, words: Iterable[str], padded: str, lowered: str) -> set[str]:
        """The names of the lists with a term in the text: `words` are its lower-cased words, `padded`
        them joined by spaces with a space at each end, `lowered` the lower-cased text."""
        found: set[str] = set()
        for word in words:
            hit = self.words.get(word)
            if hit:
                found |= hit
            for length in self.stem_lengths:
                if length > len(word):
                    break
                hit = self.stems.get(word[:length])
                if hit:
                    found |= hit
        for table, text in ((self.phrases, padded), (self.ascii_substrings, lowered)):
            found.update(*(names for key, names in table if key in text))
        if not lowered.isascii():
            found.update(*(names for key, names in self.other_substrings if key in lowered))
        return found


# --- Refusals and AI disclaimers (patterns run on the lower-cased output) --------------------------
# A disclaimer is junk wherever it stands, unless the task is about an AI (a story told by a robot).
_AN_AI = (
    r"an? (?:ai|a\.i\.|artificial intelligence|(?:large )?language model|virtual assistant|chatbot)"
    r"(?: (?:language )?model| assistant| chatbot| system)?"
)
# What follows "as an AI" in a disclaimer: a comma, "I ...", the end. "As an AI researcher, she" is a job.
_DISCLAIMER_END = (
    r"(?=\s*[,;:.!?)]|\s*$|\s+(?:i|myself|and|so|therefore|without|with|that|who|developed|created|trained|"
    r"designed|built)\b)"
)
DISCLAIMER = re.compile(
    rf"\bas {_AN_AI}{_DISCLAIMER_END}"
    rf"|\bi(?:'m| am) (?:just |only |merely |simply )?{_AN_AI}{_DISCLAIMER_END}"
    r"|\bmy (?:training data|knowledge cut-?off)\b"
    r"|\bi (?:was|have been) (?:created|trained|developed|programmed) by (?:openai|anthropic|google|meta)\b"
)
# Substrings without which DISCLAIMER cannot match.
DISCLAIMER_HINTS = (
    " ai", "a.i.", "artificial intelligence", "language model", "virtual assistant", "chatbot", "training data",
    "knowledge cut", "openai", "anthropic", " by google", " by meta",
)
_ASK_FOR_INPUT = (
    r"(?:provide|share|paste|specify|supply|send|give)\s+(?:me\s+)?(?:with\s+)?(?:the|a|an|some|more)?\s*"
    r"(?:\w+\s+)?(?:text|passage|paragraph|sentence|article|list|data|code|input|details|information|context|"
    r"document|question)\b"
)
# Apologies and "I can't ..." count only at the very start of an output: inside a story or a letter a
# character may well say "I'm sorry, but I can't come".
OPENING_REFUSAL = re.compile(
    r"\W*(?:(?:i(?:'m| am) (?:so |very |really )?(?:sorry|afraid)|sorry|unfortunately|apologies|"
    r"i apologi[sz]e)\b[^.!?\n]{0,80}?\b(?:i|we)\s+(?:can(?:'|no)?t|cannot|can not|am unable|am not able|"
    r"won't|will not|do not|don't)\b"
    r"|i\s+(?:can(?:'|no)?t|cannot|can not|am unable to|am not able to|won't be able to|will not|"
    r"must (?:decline|refuse)|do not have (?:access|the ability)|don't have (?:access|the ability))"
    r"(?:\s+\w+){0,3}?\s+(?:help(?!\s+(?:but|it|myself|feeling|thinking|wondering))|assist|provide|fulfil+|"
    r"comply|complete|do|write|create|generate|answer|perform|browse|access|see|view|give|offer|support|"
    r"engage|produce|draw|share|process|read|open|translate|summari[sz]e)\b"
    # Asking for the missing input, not "Please provide your email address on the form" in a how-to.
    rf"|(?:please|kindly)\s+{_ASK_FOR_INPUT}"
    rf"|(?:could|can|would) you (?:please )?{_ASK_FOR_INPUT}"
    r"|i (?:need|would need|require) (?:more|additional|some) (?:information|context|details)\b)"
)
# How far into an output a refusal may start (after a quote mark, or "Sure, but I'm afraid...").
OPENING_CHARS = 160
# "There is no text provided" reads as a refusal at the start of an output, where it stands in for the answer.
NOTHING_GIVEN = re.compile(
    r"\b(?:there is|there's|you have|you've) (?:no|not (?:provided|given|included) (?:any|a|the)) "
    r"(?:\w+\s+){0,2}?(?:text|input|passage|paragraph|sentence|article|list|data|code|context|information)\b"
    r"|\b(?:no|the) (?:text|input|passage|paragraph|sentence|article|list|data|code) (?:was|is|has been) "
    r"(?:not )?(?:provided|given|included|missing)\b"
)
NOTHING_GIVEN_HINTS = ("there is no", "there's no", "you have n", "you've n", "provided", "given", "included",
                       "missing")
NOTHING_GIVEN_CHARS = 300
# An instruction that asks for a refusal or an apology, or for a message in someone's voice.
ASKS_REFUSAL = (
    "refus*", "declin*", "reject*", "apolog*", "regret*", "turn down", "turning down", "say no", "saying no",
    "sorry", "deny", "denial", "cannot", "unable", "can't",
    "repl*", "respond*", "response", "responses", "email", "emails", "e-mail", "letter", "letters", "message",
    "messages", "note", "notes", "memo", "dialogue", "dialogues", "dialog", "conversation", "conversations",
    "script", "scripts", "roleplay", "role-play", "role play", "customer", "customers", "client", "clients",
    "chat", "speech", "monologue", "story", "stories", "scene", "scenes", "character", "characters", "narrat*",
    "fiction", "quote", "quotes", "say", "says", "said",
)
MENTIONS_AI = (
    "ai", "a.i.", "artificial intelligence", "robot*", "chatbot*", "bot", "bots", "assistant*", "language model",
    "language models", "llm", "llms", "android*", "machine*", "computer*", "virtual", "cyborg*", "siri", "alexa",
    "chatgpt", "gpt", "disclaimer*",
)

# --- Template placeholders (on the output as written, outside code) ---------------------------------
_FIELD_WORDS = (
    r"(?:(?:first|last|full|company|recipient(?:'s)?|sender(?:'s)?|manager(?:'s)?|job|event|product|"
    r"business|school|customer(?:'s)?|client(?:'s)?|contact|start|end|today's|due|current|street|team|"
    r"brand|store|hotel|restaurant|doctor(?:'s)?|friend(?:'s)?)\s+)?"
    r"(?:name|date|address|phone(?:\s+number)?|e-?mail(?:\s+address)?|title|position|city|state|country|"
    r"company|organi[sz]ation|signature|contact\s+(?:info|information|details)|location|time|amount|"
    r"price|number|website|url|link|topic|product|recipient|sender)"
)
_ASK_WORDS = r"(?:your|insert|enter|add|fill\s+in|type|put|specify|include|replace|placeholder)"
# One pattern per opening character, so each scan jumps from bracket to bracket.
PLACEHOLDERS = (
    ("[", re.compile(rf"\[\s*(?:{_ASK_WORDS}\b[^\[\]\n]{{0,40}}|{_FIELD_WORDS}\s*)\](?!\()", _I)),
    ("<", re.compile(rf"<\s*(?:{_ASK_WORDS}\b[^<>\n]{{0,40}}|{_FIELD_WORDS}\s*)>", _I)),
    # {company}, {{name}}: not after a word character or a backslash (LaTeX \textbf{Bold}, x^{2}).
    ("{", re.compile(r"(?<![\w\\^_$])\{\{?\s*[A-Za-z][A-Za-z_ ]{2,30}\s*\}\}?")),
    # YourName, YourAppName: a field name in CamelCase (seen from the bundled model: "++YourAppName").
    ("Your", re.compile(r"\bYour(?:[A-Z][a-z]+){1,4}\b")),
)
# "Example 2" inside an input: a numbered item of our prompt written into a field (seen: "None, Example 2").
INPUT_ITEM_MARKER = re.compile(r"\b(task|example|label)[ \t]*\d+\b")
# Upper case only: "xxx" at the end of a letter is a kiss; "XXX" after "Chapter" is thirty.
BLANK_X = re.compile(r"(?<![A-Za-z])X{3,}(?![A-Za-z])")
ROMAN_CONTEXT = frozenset((
    "chapter", "part", "book", "volume", "vol", "bowl", "article", "section", "act", "canto", "psalm",
    "olympiad", "olympics", "games", "dynasty", "pope", "king", "louis", "century", "no", "number", "legion",
))
ASKS_TEMPLATE = (
    "template*", "placeholder*", "fill-in", "fill in", "blank", "blanks", "form letter", "form letters",
    "mad libs", "madlibs", "mad lib", "boilerplate", "mail merge", "format string", "format strings",
    "variable", "variables", "bracket*", "brace*", "mockup*", "mock-up", "mock up", "outline*", "skeleton",
    "lorem ipsum", "redact*", "censor*", "anonymi*", "mask*",
)

# --- Code ------------------------------------------------------------------------------------------
FENCED = re.compile(r"```.*?(?:```|\Z)|~~~.*?(?:~~~|\Z)", re.DOTALL)
INLINE_CODE = re.compile(r"`[^`\n]+`")
# A line that starts so is code whatever follows; other starts need CODE_START to confirm.
CODE_PREFIXES = (
    "def ", "#include", "function(", "console.", "print(", "printf(", "<?php", "<!doctype", "<!DOCTYPE", "<html",
    "<div", "<span", "<p>", "for (", "for(", "if (", "if(", "while (", "while(", "#!/", ">>> ", "SELECT ",
    "INSERT INTO ", "CREATE TABLE ", "UPDATE ", "DELETE FROM ", "} ", "};", "#define ", "using namespace",
    "System.out.", "std::",
)
CODE_START = re.compile(
    r"(?:from\s+[\w.]+\s+import\b|import\s+[\w.]+(?:\s+as\s+\w+)?\s*;?$|(?:let|const|var)\s+\w+\s*=|"
    r"class\s+\w+\s*[:({<]|(?:public|private|static)\s+\w+.*[({;]$|function\s+\w+\s*\(|return\b.*[;)\]}]$|"
    r"for\s+\w+\s+in\s.+:$|[\w.\[\]]+\s*(?:=|\+=|-=|==)\s*[\w\[{(\"'-])"
)
CODE_TASK = (
    "code", "coding", "program*", "function", "functions", "script", "scripts", "python", "java", "javascript",
    "typescript", "c++", "c#", "rust", "golang", "ruby", "php", "sql", "html", "css", "regex", "regular expression",
    "regular expressions", "json", "yaml", "xml", "bash", "shell", "latex", "markdown", "api", "class", "method",
    "snippet", "algorithm", "query", "compile*", "syntax",
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
_POINTING_VERBS = (
    "summarize", "summarise", "rewrite", "paraphrase", "proofread", "classify", "translate", "shorten",
    "simplify", "edit", "correct", "analyze", "analyse", "categorize", "categorise", "sort", "reverse",
    "reorder", "rephrase", "tag", "label",
)
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
    rf"|\b(?:{'|'.join(_POINTING_VERBS)})\s+(?:the|it|them)\b"
    rf"(?:\s+{_INPUT_NOUNS}\b(?!\s+(?:of|about|for|on|that|which|who)\b))?"
    rf"(?:\s*[.?!]|\s*$|\s+(?:as|so|into|in|to|by|and|using|with)\b)",
)
# Words without one of which POINTS_AT_INPUT cannot match.
POINTER_HINTS = frozenset((
    "following", "given", "provided", "above", "below", "preceding", "attached", "enclosed", "aforementioned",
    "supplied", "accompanying", "included", "quoted", "listed", "specified", "this", "these", "those",
    "shown", *_POINTING_VERBS,
))
INPUT_NOUN = re.compile(rf"\b{_INPUT_NOUNS}\b")
# The content is in the instruction itself: after a colon, in quotes, or on its own lines.
INLINE_CONTENT = re.compile(r":\s*\S+\s+\S+|:\s*\S{6,}|[\"“«„][^\"”»“]{6,}[\"”»“]|(?:^|\s)'[^'\n]{6,}'|\n\s*\S")

# --- Repetition and copying ----------------------------------------------------------------------------
ASKS_REPETITION = (
    "repeat*", "repetit*", "chant*", "refrain*", "chorus*", "mantra*", "over and over", "times", "echo*",
    "tongue twister", "tongue twisters", "tongue-twister", "cheer", "cheers", "slogan*", "song", "songs",
    "lyrics", "rhyme*", "litany", "affirmation*", "drill*", "pattern*", "sequence*", "loop*", "count", "counts",
    "counting", "again", "copies", "duplicat*", "lines of", "line of", "same",
)
ASKS_COPY = (
    "repeat*", "copy", "copies", "echo*", "verbatim", "unchanged", "as is", "as-is", "identical*", "same",
    "reproduce", "quote", "recite", "return the input", "return the text", "return the string",
    "if it is correct", "if it is already correct", "unless", "no change", "no changes", "otherwise",
)

# --- Prompt leaks (on the lower-cased output) ------------------------------------------------------------
ITEM_MARKER = re.compile(
    r"^[ \t]*(?:[#*>_]+[ \t]*)?(task|example)[ \t]*\d+[ \t]*[*_]*[ \t]*(?:[:.)]|$)|^[ \t]*#{2,}[ \t]*(task)\b",
    re.MULTILINE,
)
FIELD_LINE = re.compile(
    r"^[ \t]*[*_#]*[ \t]*(instruction|input|output|label|classification|task)[*_]*[ \t]*:", re.MULTILINE
)
FIELD_HINTS = ("instruction", "input", "output", "label", "classification", "task")

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
ASKS_LANGUAGE = (
    "english", "french", "spanish", "german", "italian", "portuguese", "russian", "ukrainian", "chinese",
    "mandarin", "cantonese", "japanese", "korean", "arabic", "hebrew", "hindi", "bengali", "urdu", "punjabi",
    "tamil", "telugu", "marathi", "gujarati", "thai", "vietnamese", "greek", "turkish", "persian", "farsi",
    "polish", "dutch", "swedish", "norwegian", "danish", "finnish", "czech", "hungarian", "romanian",
    "bulgarian", "serbian", "croatian", "indonesian", "malay", "filipino", "tagalog", "swahili", "latin",
    "esperanto", "yiddish", "armenian", "georgian", "mongolian", "nepali", "sanskrit", "khmer", "lao",
    "burmese", "amharic", "kazakh", "uzbek", "belarusian", "catalan", "basque", "irish", "welsh", "icelandic",
    "klingon", "elvish",
    "translat*", "transliterat*", "romaniz*", "romanis*", "language", "languages", "alphabet*", "script",
    "scripts", "kanji", "hiragana", "katakana", "hanzi", "pinyin", "cyrillic", "character", "characters",
    "native", "foreign", "bilingual", "multilingual", "phonetic*", "ipa", "pronunciation", "pronounce",
    "spelling in", "written in", "in the original", "locali*",
    # A few ways to name a language in the scripts a teacher writes most (matched as substrings).
    "英语", "英文", "英語", "中文", "汉语", "漢語", "日本語", "日语", "韓国語", "한국어", "영어", "英訳", "翻訳", "翻译",
    "английск", "русск", "французск", "немецк", "испанск", "китайск", "японск", "перев",
    "الإنجليزية", "العربية", "ترجم", "अंग्रेज़ी", "अंग्रेजी", "हिंदी", "अनुवाद",
)


def words_pattern(words: Iterable[str]) -> re.Pattern[str]:
    """Whole-word, case-insensitive match of any of `words` (spaces match any run of whitespace)."""
    ordered = sorted(words, key=len, reverse=True)
    alternatives = "|".join(re.escape(word).replace(r"\ ", r"\s+") for word in ordered)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", _I)


# What the answer checks ask of an instruction, in one pass over its words.
INSTRUCTION_TERMS = Lexicon({
    "refusal": ASKS_REFUSAL, "ai": MENTIONS_AI, "template": ASKS_TEMPLATE, "code": CODE_TASK,
    "repetition": ASKS_REPETITION, "copy": ASKS_COPY, "language": ASKS_LANGUAGE, "pointer": POINTER_HINTS,
})
