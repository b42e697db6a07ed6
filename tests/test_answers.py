"""The answer checks: each with replies that must drop and the look-alikes a user would hate to lose."""

from __future__ import annotations

import pytest

from selfinstruct.core.config import AnswerCheckConfig, FilterConfig
from selfinstruct.filters.answers import AnswerChecks, is_code_like, script_counts, task_facts
from selfinstruct.filters.base import KEEP, Verdict
from selfinstruct.filters.instances import check_task
from selfinstruct.generate.prompts import (
    prompt_fragments,
    render_alpaca_prompt, render_classify_prompt, render_instance_prompt, render_instruction_prompt,
)
from selfinstruct.core.records import Instance

DEFAULT = FilterConfig()


def first_verdict(instruction: str, output: str, input: str = "", is_classification: bool = False,
                  config: FilterConfig = DEFAULT) -> Verdict:
    result = check_task(instruction, [Instance(input=input, output=output)], is_classification, config,
                        prompt_text=prompt_fragments())
    return result.dropped[0][1] if result.dropped else KEEP


def case(id: str, instruction: str, output: str, reason: str | None, input: str = "",
         classification: bool = False) -> pytest.param:
    return pytest.param(instruction, input, output, classification, reason, id=id)


REFUSALS = [
    case("sorry-cant", "Write a haiku about the sea.", "I'm sorry, but I can't write poetry on demand.",
         "answer_refusal"),
    case("as-an-ai-model", "What is your favourite colour?",
         "As an AI language model, I don't have personal preferences, but many people like blue.", "answer_refusal"),
    case("cannot-provide", "Give me the current price of Bitcoin.",
         "I cannot provide real-time data. Please check a financial website.", "answer_refusal"),
    case("unable-browse", "Summarise today's top headline.", "I am unable to browse the internet.", "answer_refusal"),
    case("please-provide", "Rewrite the paragraph in a formal tone.",
         "Please provide the paragraph you would like me to rewrite.", "answer_refusal",
         input="hey guys, the meeting is moved to friday lol"),
    case("nothing-given", "Find the main idea of the passage.", "There is no passage provided, so I cannot say.",
         "answer_refusal", input="Bees dance to tell other bees where flowers are."),
    case("knowledge-cutoff", "Who won the most recent World Cup?",
         "Based on my training data, the latest winner I know of is Argentina.", "answer_refusal"),
    case("disclaimer-at-end", "Give one tip for investing.",
         "Diversify your portfolio. Note: I am an AI and this is not financial advice.", "answer_refusal"),
    # Look-alikes that are the answer the task asked for.
    case("refusal-letter", "Write a refusal letter to a job applicant.",
         "Dear Ms. Patel,\nI'm sorry, but we cannot offer you the position at this time.", None),
    case("decline-invitation", "Politely decline an invitation to a wedding.",
         "I'm so sorry, but I can't attend your wedding in June. I wish you both every happiness.", None),
    case("story-narrated-by-robot", "Write a short story narrated by a robot.",
         "As an AI, I was built to sort mail. One morning a letter arrived addressed to me.", None),
    case("customer-reply", "Reply to a customer who asks for a refund after 60 days.",
         "I'm sorry, but I cannot offer a refund after 30 days. I can offer store credit instead.", None),
    case("cant-help-but", "Describe how you feel on the first day of spring.",
         "I can't help but smile when the first crocuses appear in the park.", None),
    case("negative-fact", "Can penguins fly?", "No, penguins cannot fly; their wings are adapted for swimming.", None),
    case("explains-language-models", "Explain what a large language model is.",
         "A large language model is a neural network trained on text. As a language model, it predicts words.", None),
    case("ai-researcher", "Describe a day in the life of a scientist.",
         "As an AI researcher, Maya starts her day reading papers and then trains models until lunch.", None),
    case("how-to-please-provide", "Explain how to reset a forgotten password on a website.",
         "Click 'Forgot password'. Please provide your email address, then open the link the site sends you.", None),
    case("could-you-clarify-input", "Summarize the main argument.", "Could you share the text you would like "
         "summarized?", "answer_refusal", input="Cities should invest in bike lanes because they cut traffic."),
    case("dialogue-line", "Write a short dialogue between a customer and a baker.",
         "Customer: Do you have rye bread today?\nBaker: I'm sorry, but I can't bake rye until Monday.", None),
]

PLACEHOLDERS = [
    case("your-name", "Write a cover letter for a junior accountant position.",
         "Dear Hiring Manager,\nI am applying for the junior accountant role.\nSincerely,\n[Your Name]",
         "answer_placeholder"),
    case("insert-angle", "Write a product description for a water bottle.",
         "The <insert brand> bottle keeps drinks cold for 24 hours.", "answer_placeholder"),
    case("braces", "Write a welcome note for new employees.", "Welcome to {company}! We are glad you are here.",
         "answer_placeholder"),
    case("xxx-phone", "Write a short ad for a plumbing service.", "Fast, friendly plumbers. Call (555) XXX-XXXX today!",
         "answer_placeholder"),
    case("date", "Write a meeting invitation for the sales team.",
         "Please join us on [Date] at 10 am in the main hall.", "answer_placeholder"),
    case("lorem-ipsum", "Write a paragraph about the history of tea.", "Lorem ipsum dolor sit amet, consectetur.",
         "answer_placeholder"),
    # Look-alikes.
    case("template-task", "Create an email template for a job offer with placeholders for the name and salary.",
         "Dear [Candidate Name],\nWe are pleased to offer you the role at a salary of [Salary].", None),
    case("fill-in-the-blank", "Make a fill-in-the-blank exercise about the past tense.",
         "Yesterday I ____ (go) to the market and [verb] some apples.", None),
    case("python-fstring", "Write a Python function that greets a user by name.",
         "def greet(name):\n    return f'Hello, {name}!'", None),
    case("fenced-config", "Give an example of a web server configuration.",
         "```nginx\nserver {\n    listen 80;\n    server_name {domain};\n}\n```", None),
    case("markdown-link", "Recommend a website for learning Spanish.",
         "Try [Duolingo](https://www.duolingo.com): it is free and has short daily lessons.", None),
    case("song-sections", "Write a short song about summer.",
         "[Verse 1]\nSun on the sand, salt in the air\n[Chorus]\nSummer, summer, everywhere", None),
    case("roman-numeral", "Which Super Bowl was played in January 1996?",
         "Super Bowl XXX, in which the Dallas Cowboys beat the Pittsburgh Steelers.", None),
    case("kisses", "Write a short note to a friend who moved away.", "Miss you lots! See you in May. Anna xxx", None),
    case("math-set", "List the prime numbers smaller than ten as a set.", "{2, 3, 5, 7}", None),
    case("latex-fraction", "How do you write one half as a fraction in a formula?", "\\frac{1}{2}", None),
]

NO_INPUT_MARKERS = [
    case("whole-none-tag", "Give two tips for staying focused.", "<none>", "answer_no_input_marker"),
    case("whole-na", "Name the capital of Australia.", "N/A", "answer_no_input_marker"),
    case("noinput-line", "Write a slogan for a bakery.", "<noinput>\nFresh bread every morning.",
         "answer_no_input_marker"),
    case("leaked-input-line", "Suggest a name for a grey cat.", "Smokey\nInput: <none>", "answer_no_input_marker"),
    case("none-as-answer", "Which of the numbers 4, 6 and 8 are prime?", "None of them.", None),
    case("none-label", "Which animal in the sentence is a mammal, if any? Answer with its name or none.", "None",
         None, input="The shark chased the trout.", classification=True),
    case("na-as-offered-label", "Rate the answer as correct, incorrect or N/A.", "N/A",
         None, input="Q: What is 2+2? A: The sky is blue.", classification=True),
]

MISSING_INPUTS = [
    case("the-following-text", "Summarize the following text in one sentence.", "The text discusses climate change.",
         "answer_missing_input"),
    case("this-paragraph", "Rewrite this paragraph in a formal tone.", "The meeting is postponed until further notice.",
         "answer_missing_input"),
    case("the-given-list", "Sort the given list of numbers in ascending order.", "1, 2, 3, 4",
         "answer_missing_input"),
    case("the-sentence-below", "Translate the sentence below into French.", "Bonjour tout le monde.",
         "answer_missing_input"),
    case("classification-pointer", "Classify the following sentence as positive or negative.", "Positive",
         "answer_missing_input", classification=True),
    case("summarize-the-article", "Summarize the article.", "The article is about a new bridge.",
         "answer_missing_input"),
    # Look-alikes.
    case("inline-after-colon", "Translate the following sentence into French: I love cats.", "J'aime les chats.", None),
    case("inline-in-quotes", 'Correct the grammar in this sentence: "She don\'t like apples."',
         "She doesn't like apples.", None),
    case("no-pointer", "Give three tips for better sleep.", "1. Keep a schedule.\n2. Avoid screens.\n3. Exercise.", None),
    case("label-only", "Is a tomato a fruit or a vegetable?", "Fruit", None, classification=True),
    case("code-given-a-list", "Write a Python function that, given a list of numbers, returns the largest.",
         "def largest(numbers):\n    return max(numbers)", None),
    case("code-reverse-the-string", "Write a function to reverse the string.",
         "def reverse(text):\n    return text[::-1]", None),
    case("the-following-morning", "Write a diary entry about the following morning after a storm.",
         "The street was quiet and full of branches.", None),
    case("refers-back", "Write a funny interview question. Why did you choose this question?",
         "If you were a kitchen tool, which would you be? It shows how someone thinks on the spot.", None),
    case("input-present", "Summarize the following text.", "Cats sleep most of the day.", None,
         input="Cats sleep twelve to sixteen hours a day, more than most mammals."),
]

REPETITION = [
    case("looping", "Explain why the sky is blue.", "The sky is blue because " * 12, "answer_repetition"),
    case("repeated-line", "List some benefits of regular exercise.",
         "\n".join(["Exercise improves your mood.", "It strengthens the heart and lungs over the years.",
                    "Exercise improves your mood.", "Regular walks help people sleep deeply at night.",
                    "Exercise improves your mood.", "Lifting weights keeps bones dense as we age.",
                    "Exercise improves your mood.", "Exercise improves your mood."]), "answer_repetition"),
    # Look-alikes.
    case("repeat-a-word", "Repeat the word 'hello' ten times.", "hello " * 10, None),
    case("chant", "Write a chant for a football team.", "Go team go! " * 12, None),
    case("song-chorus", "Write a song about the rain.",
         ("Rain on the roof, rain on the street,\nRain in my heart and under my feet.\n" * 3), None),
    case("natural-paragraph", "Explain how vaccines work.",
         "Vaccines train the immune system to recognise a germ without causing the disease. They contain a "
         "weakened or inactive part of the germ, or instructions for making one of its proteins. The body "
         "responds by making antibodies and memory cells. If the real germ arrives later, the immune system "
         "recognises it quickly and fights it off before it can cause serious illness.", None),
    case("repetitive-code", "Write a Python class for a point in three dimensions.",
         "class Point:\n    def __init__(self, x, y, z):\n        self.x = x\n        self.y = y\n        self.z = z\n\n"
         "    def __repr__(self):\n        return f'Point({self.x}, {self.y}, {self.z})'", None),
    case("markdown-table", "Compare three planets by size and distance from the Sun in a table.",
         "| Planet | Diameter (km) | Distance (AU) |\n| --- | --- | --- |\n| Mercury | 4,879 | 0.39 |\n"
         "| Venus | 12,104 | 0.72 |\n| Earth | 12,742 | 1.00 |\n| Mars | 6,779 | 1.52 |", None),
    case("numbered-list", "List ten fruits.", "\n".join(f"{n}. {fruit}" for n, fruit in enumerate(
        "Apple Banana Cherry Date Fig Grape Kiwi Lemon Mango Orange".split(), 1)), None),
]

RESTATEMENTS = [
    case("identical", "Write a haiku about autumn leaves.", "Write a haiku about autumn leaves.",
         "answer_restates_instruction"),
    case("near-identical", "Describe the water cycle in simple terms.",
         "Describe the water cycle in simple terms, please.", "answer_restates_instruction"),
    # Look-alikes.
    case("quotes-the-instruction", "Explain what the proverb 'The early bird catches the worm' means.",
         "'The early bird catches the worm' means that people who start early succeed.", None),
    case("answer-restates-question", "What is the capital of France?", "The capital of France is Paris.", None),
    case("copy-task", "Repeat this sentence exactly: Practice makes perfect.", "Practice makes perfect.", None),
    case("short-label", "Is the sentence positive or negative?", "Positive", None,
         input="I loved every minute of it.", classification=True),
]

PROMPT_LEAKS = [
    case("header-sentence", "Write a tagline for a bookshop.",
         "Below is a numbered list of tasks that people ask a helpful assistant to do.", "answer_prompt_leak"),
    case("alpaca-rule", "Suggest a name for a podcast about gardening.",
         "Dig Deep. You are helping build a training set for an assistant.", "answer_prompt_leak"),
    # The grow on the bundled model that filed issue 11 accepted this header sentence as a task.
    case("header-as-instruction", "Continue the list with new tasks that are unlike the ones already there.",
         "Task 9: Write a haiku about the sea.", "answer_prompt_leak"),
    case("task-marker", "Write a limerick about a cat.",
         "There once was a cat from Peru\nwho dreamt it was eating a shoe\nTask 12: Write a poem about a dog.",
         "answer_prompt_leak"),
    case("markdown-task-header", "Give one synonym for happy.", "Joyful\n\n### Task 4", "answer_prompt_leak"),
    case("input-output-lines", "Summarize the article in one sentence.",
         "Cats are great pets.\nInput: Dogs are loyal.\nOutput: Dogs make good pets.", "answer_prompt_leak",
         input="Cats are independent, clean and affectionate animals that suit small flats."),
    case("instruction-line", "Write a tweet about coffee.", "Coffee first, questions later!\nInstruction: Write a "
         "tweet about tea.", "answer_prompt_leak"),
    # Look-alikes.
    case("docstring-io", "Write a function that doubles a number.",
         'def double(n):\n    """Input: a number.\n    Output: twice the number."""\n    return 2 * n', None),
    case("io-example-task", "Give an example of an input and output for a spell checker.",
         "Input: teh cat\nOutput: the cat", None),
    case("nutrition-label", "Create a nutrition label for a granola bar.", "Label: Granola Bar\nCalories: 190", None),
    case("tasks-asked-for", "Plan my morning as three tasks.", "Task 1: Answer emails.\nTask 2: Gym.\nTask 3: Read.",
         None),
]

SCRIPTS = [
    case("cyrillic-for-english", "Describe the benefits of drinking water.",
         "Вода помогает организму оставаться здоровым и бодрым.", "answer_wrong_script"),
    case("japanese-for-english", "Write a sentence about the moon.", "月はとても美しいです。", "answer_wrong_script"),
    case("english-for-russian", "Опишите преимущества утренней зарядки.",
         "Morning exercise improves your mood and energy.", "answer_wrong_script"),
    case("arabic-for-english", "Give a short greeting for a birthday card.", "عيد ميلاد سعيد يا صديقي",
         "answer_wrong_script"),
    # Look-alikes.
    case("translate-to-japanese", "Translate 'good morning' into Japanese.", "おはようございます", None),
    case("in-russian", "Write a short greeting in Russian.", "Привет, как дела?", None),
    case("input-in-russian", "Summarize the text in one sentence.", "Кошки спят большую часть дня.", None,
         input="Кошки спят от двенадцати до шестнадцати часов в сутки, больше, чем большинство животных."),
    case("code-for-chinese", "写一个Python函数，返回两个数的和。", "def add(a, b):\n    return a + b", None),
    case("accented-latin", "Name a famous French pastry.", "Crème brûlée", None),
    case("greek-letter", "Which Greek letter stands for the ratio of a circle's circumference to its diameter?",
         "π (pi)", None),
    case("emoji", "Reply with an emoji that means happy.", "😊", None),
    case("chinese-label", "判断这句话的情感是正面还是负面。", "正面", None, input="这部电影太好看了！", classification=True),
]

ALL_CASES = REFUSALS + PLACEHOLDERS + NO_INPUT_MARKERS + MISSING_INPUTS + REPETITION + RESTATEMENTS + PROMPT_LEAKS + SCRIPTS


@pytest.mark.parametrize(("instruction", "input", "output", "classification", "reason"), ALL_CASES)
def test_answer_checks(instruction: str, input: str, output: str, classification: bool, reason: str | None) -> None:
    verdict = first_verdict(instruction, output, input, classification)
    assert verdict.reason == reason, verdict.detail
    assert verdict.keep is (reason is None)
    if reason:
        assert verdict.detail  # every drop says what matched


def test_details_name_what_matched() -> None:
    assert "[Your Name]" in first_verdict("Write a thank-you letter to a teacher.", "Thanks!\n[Your Name]").detail
    assert "As an AI language model" in first_verdict("Name a colour.", "As an AI language model, I like blue.").detail
    assert "the following" in first_verdict("Summarize the following text.", "It is about cats.").detail
    assert "cyrillic" in first_verdict("Describe a cat.", "Кошка - это маленькое животное.").detail


def test_cut_off_drops_only_the_last_instance() -> None:
    instances = [Instance(input="3, 1, 2", output="1, 2, 3"), Instance(input="9, 7, 8", output="7, 8")]
    result = check_task("Sort the numbers in ascending order.", instances, False, DEFAULT, cut_off=True)
    assert result.kept == instances[:1]
    assert [(inst, verdict.reason) for inst, verdict in result.dropped] == [(instances[1], "answer_cut_off")]
    assert check_task("Sort the numbers in ascending order.", instances, False, DEFAULT).kept == instances


def test_cut_off_single_instance_drops_the_task() -> None:
    result = check_task("Write a poem about rain.", [Instance(output="Rain falls on the")], False, DEFAULT, cut_off=True)
    assert result.kept == [] and result.task_verdict.reason == "answer_cut_off"


# One true positive per switch: turned off, the row is kept.
SWITCHED = [
    ("refusal", "Write a haiku about the sea.", "", "I'm sorry, but I can't write poetry on demand."),
    ("placeholder", "Write a cover letter for a nurse.", "", "Dear Sir,\nI am a nurse.\n[Your Name]"),
    ("no_input_marker", "Give two tips for focus.", "", "<none>"),
    ("missing_input", "Summarize the following text.", "", "It is about cats."),
    ("repetition", "Explain why the sky is blue.", "", "The sky is blue because " * 12),
    ("restates_instruction", "Write a haiku about autumn leaves.", "", "Write a haiku about autumn leaves."),
    ("prompt_leak", "Write a limerick about a cat.", "", "A cat sat on a mat\nTask 12: Write a poem."),
    ("script", "Describe the benefits of drinking water.", "", "Вода помогает организму оставаться здоровым."),
]


@pytest.mark.parametrize(("switch", "instruction", "input", "output"), SWITCHED, ids=[row[0] for row in SWITCHED])
def test_a_check_turned_off_keeps_the_row(switch: str, instruction: str, input: str, output: str) -> None:
    assert not first_verdict(instruction, output, input).keep
    off = FilterConfig(answers=AnswerCheckConfig(**{switch: False}))
    assert first_verdict(instruction, output, input, config=off).keep


def test_cut_off_switch() -> None:
    off = FilterConfig(answers=AnswerCheckConfig(cut_off=False))
    result = check_task("Write a poem about rain.", [Instance(output="Rain falls on the")], False, off, cut_off=True)
    assert result.task_verdict.keep


def with_answers(**settings: object) -> FilterConfig:
    return FilterConfig(answers=AnswerCheckConfig(**settings))


def test_repetition_thresholds_change_the_decision() -> None:
    # 30 words, each 3-gram of "a b c" repeating: a share of about 0.9; a chatty answer with a refrain about 0.3.
    refrain = ("Keep calm and carry on. " * 3) + "Then make a cup of tea and call a friend you have not seen for years."
    instruction = "Give advice for a stressful day."
    assert first_verdict(instruction, refrain).keep
    assert first_verdict(instruction, refrain, config=with_answers(repetition_max_share=0.2)).reason == "answer_repetition"
    looping = "The sky is blue because " * 12
    assert first_verdict("Explain the sky.", looping, config=with_answers(repetition_min_words=100)).keep
    lines = "Drink water every day.\n" * 6
    assert first_verdict("Give health tips.", lines, config=with_answers(line_repeat_max=8, repetition=True,
                                                                         repetition_min_words=1000)).keep
    assert not first_verdict("Give health tips.", lines, config=with_answers(repetition_min_words=1000)).keep


def test_restate_similarity_threshold() -> None:
    instruction, output = "Describe the water cycle in simple terms.", "Describe the water cycle in simple words."
    assert first_verdict(instruction, output).keep  # F1 6/7 is below 0.9
    assert first_verdict(instruction, output, config=with_answers(restate_similarity=0.8)).reason == (
        "answer_restates_instruction")


def test_script_thresholds() -> None:
    mixed = "Leo Tolstoy wrote it (Лев Толстой)"  # 17 Latin letters of 27
    assert first_verdict("Who wrote War and Peace?", mixed).keep
    assert not first_verdict("Who wrote War and Peace?", mixed, config=with_answers(script_min_share=0.7)).keep
    assert first_verdict("Describe a cat.", "Кот", config=with_answers(script_min_letters=4)).keep
    assert not first_verdict("Describe a cat.", "Кот", config=with_answers(script_min_letters=3)).keep


def test_extra_refusal_phrases() -> None:
    text = "Let me check with my supervisor first."
    assert first_verdict("Summarize the benefits of tea.", text).keep
    config = with_answers(extra_refusal_phrases=("check with my supervisor",))
    verdict = first_verdict("Summarize the benefits of tea.", text, config=config)
    assert verdict.reason == "answer_refusal" and "check with my supervisor" in verdict.detail


def test_prompt_fragments_follow_our_prompts() -> None:
    prompts = (render_instruction_prompt([]), render_classify_prompt(""), render_instance_prompt("", False),
               render_instance_prompt("", True), render_alpaca_prompt([], 3))
    rendered = " ".join(" ".join(prompts).lower().split())
    fragments = prompt_fragments()
    assert len(fragments) >= 10
    assert all(fragment in rendered for fragment in fragments)


def test_code_detection() -> None:
    assert is_code_like("```python\nprint(1)\n```")
    assert is_code_like("def f(x):\n    return x")
    assert is_code_like("SELECT name FROM users WHERE age > 30;")
    assert not is_code_like("Paris is the capital of France.")
    assert not is_code_like("1. Apples\n2. Pears")


def test_script_counts() -> None:
    assert script_counts("Hello мир 世界") == {"latin": 5, "cyrillic": 3, "cjk": 2}
    assert script_counts("123 !?") == {}


def test_checks_compile_once_and_facts_are_per_task() -> None:
    checks = AnswerChecks(AnswerCheckConfig())
    facts = task_facts("Summarize the following text.")
    assert facts.input_pointer == "the following"
    assert checks.check(facts, Instance(input="Cats sleep a lot.", output="Cats sleep.")).keep
    assert len(AnswerChecks(AnswerCheckConfig(refusal=False, script=False)).checks) == len(checks.checks) - 2


def test_leaks_seen_from_the_bundled_model() -> None:
    """Two rows a real grow on SmolLM2-135M accepted before these patterns existed."""
    from selfinstruct.core.config import FilterConfig
    from selfinstruct.filters.instances import check_task
    from selfinstruct.core.records import Instance

    config = FilterConfig()
    marker = check_task("What is your favorite color?", [Instance(input="None, Example 2", output="Red")], False,
                        config)
    assert marker.task_verdict.reason == "answer_prompt_leak"
    field = check_task("Provide an example for how to use your mobile app offline.",
                       [Instance(input="", output="Visit https://example.org / ++YourAppName today.")], False, config)
    assert field.task_verdict.reason == "answer_placeholder"
    fine = check_task("Give an example sentence for each of the words.", [Instance(
        input="Example 2: river", output="The river was wide. Your turn: write one.")], False, config)
    assert fine.task_verdict.keep  # the instruction says "example": a numbered example is its content
