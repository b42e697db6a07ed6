"""The report: verb–noun heuristic on crafted instructions, HTML and markdown from a store, and a real look at the
page in headless Chromium after a real grow against the fake teacher."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from selfinstruct.core.records import Candidate, Instance, Rejection, SeedTask
from selfinstruct.report.gates import GateConfig
from selfinstruct.report.html import REPORT_DIR, REPORT_FILE, build_report, report_markdown, report_run
from selfinstruct.report.plots import PLOTS
from selfinstruct.core.store import RoundRecord, Store
from selfinstruct.report.verbs import verb_object, verb_object_counts

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
DOCS_SCREENSHOT = ROOT / "docs" / "report.png"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(("instruction", "expected"), [
    ("Write a short story about a dragon.", ("write", "story")),
    ("Give me a list of five healthy snacks.", ("give", "list")),  # "me" is the indirect object
    ("Generate a random password.", ("generate", "password")),  # adjective before the head
    ("Please briefly explain the theory of relativity.", ("explain", "theory")),  # politeness and adverb skipped
    ("Can you write a poem about the sea?", ("write", "poem")),  # modal question
    ("How would you reverse a string in Go?", ("reverse", "string")),
    ("Given a paragraph, summarize it in one sentence.", ("summarize", None)),  # lead-in clause; pronoun object
    ("For a school newsletter, write unit tests in Ruby.", ("write", "tests")),
    ("Come up with five names for a bakery.", ("come up with", "names")),  # phrasal verb keeps its particle
    ("Expand these terse meeting notes into a paragraph.", ("expand", "notes")),  # "-ing" before a noun modifies
    ("Write a story featuring a talking cat.", ("write", "story")),  # "-ing" before an article opens a clause
    ("Name the literary device used in each line.", ("name", "device")),
    ("Write a podcast intro told from a cat's view.", ("write", "intro")),
    ("Summarize the arguments a nurse might make.", ("summarize", "arguments")),
    ("Build a minimal HTML sign-up form.", ("build", "form")),  # a task verb after the head is still a noun
    ("What is the time complexity of this loop?", (None, None)),  # "time" after "the" is a noun
    ("Why is the sky blue?", (None, None)),
    ("Tell me whether 221 is prime.", ("tell", None)),
    ("Improve these résumé bullet points.", ("improve", "points")),
    ("", (None, None)),
    ("?!", (None, None)),
])
def test_verb_object(instruction: str, expected: tuple[str | None, str | None]) -> None:
    assert verb_object(instruction) == expected


def test_verb_object_counts_group_objects_under_verbs() -> None:
    counts = verb_object_counts([("write", "poem"), ("write", "poem"), ("write", None), ("give", "list"),
                                 (None, None)])
    assert counts == {"write": {"poem": 2, "": 1}, "give": {"list": 1}}


HOSTILE = "<script>alert('x')</script> & <b>bold</b>"


def _make_run(run_dir: Path, rounds: int = 3) -> Path:
    """Seeds, `rounds` rounds of accepted examples and rejections of two reasons, with markup in the text."""
    seeds = [SeedTask(id="s0", instruction="Write a haiku about rain.", instances=[Instance(output="Rain.")])]
    with Store.open(run_dir) as store:
        store.add_seeds(seeds, "f" * 64)
        store.set_meta("config", json.dumps({"model": "teacher-x", "filters": {"rouge_threshold": 0.7}}))
        for number in range(1, rounds + 1):
            accepted = [Candidate(instruction=f"Write a poem number {number}-{i} about {topic}.", round=number,
                                  instances=(Instance(input=HOSTILE if i == 0 else "", output="A poem " * i),))
                        for i, topic in enumerate(("rain", "snow", "fog", "wind"))]
            rejected = [Rejection(candidate=Candidate(instruction=HOSTILE + str(number), round=number),
                                  reason=reason, detail=f"evidence <i>{reason}</i>")
                        for reason in ("rouge", "blacklist")]
            stats = {"round": number, "generated": 6, "kept": 4, "dropped": {"rouge": 1, "blacklist": 1},
                     "accepted_total": 4 * number, "requests": 5, "cached": 1, "failed": 0, "prompt_tokens": 100,
                     "completion_tokens": 50, "seconds": 2.5}
            store.commit_round(RoundRecord(number, accepted, rejected, stats),
                               lambda cand: {"teacher": "teacher-x", "method": "self-instruct", "round": cand.round})
    return run_dir


def test_report_is_escaped_and_self_contained(tmp_path: Path) -> None:
    run = _make_run(tmp_path / "run")
    before = {path.name for path in run.iterdir()}
    html_path = report_run(run)
    assert {path.name for path in run.iterdir()} - before == {REPORT_DIR}  # nothing written beside the store
    assert html_path == run / REPORT_DIR / REPORT_FILE
    html = html_path.read_text(encoding="utf-8")
    assert "<script>" not in html and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "evidence &lt;i&gt;rouge&lt;/i&gt;" in html
    for name in PLOTS:  # relative paths to real PNGs beside the page
        assert f'src="{name}.png"' in html
        assert (run / REPORT_DIR / f"{name}.png").read_bytes().startswith(PNG_MAGIC)
    for text in ("teacher-x", "quality gates", "min_acceptance_rate", "<code>rouge</code> · 3 dropped", "66.7%"):
        assert text in html


def test_markdown_summary(tmp_path: Path) -> None:
    markdown = report_markdown(_make_run(tmp_path / "run"))
    for text in ("| accepted tasks | 12 | of 18 generated |", "| acceptance rate | 66.7% |", "| `rouge` | 3 |",
                 "`min_acceptance_rate`", "Teacher `teacher-x`", "write (12)"):
        assert text in markdown
    # Few examples: the diversity gates are shown but not judged.
    assert "not judged on 12 examples" in markdown


def test_build_report_returns_the_gates_it_shows(tmp_path: Path) -> None:
    run = _make_run(tmp_path / "run")
    result = build_report(run, GateConfig(min_acceptance_rate=0.9))
    [failed] = [gate for gate in result.gates if not gate.passed]
    assert failed.name == "min_acceptance_rate"
    html = result.path.read_text(encoding="utf-8")
    assert "1 of 7 quality gates failed" in html and "acceptance rate 0.667 &lt; 0.9" in html


def test_report_of_a_run_with_no_rounds_yet(tmp_path: Path) -> None:
    run = _make_run(tmp_path / "run", rounds=0)
    html = report_run(run).read_text(encoding="utf-8")
    assert "No candidate was dropped." in html
    assert all((run / REPORT_DIR / f"{name}.png").is_file() for name in PLOTS)


@pytest.fixture(scope="module")
def grown_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real grow of 100 examples against the fake OpenAI-compatible teacher."""
    from selfinstruct.core.config import build_config
    from selfinstruct.grow import grow
    from fakes import FakeTeacher, FakeTeacherConfig

    out = tmp_path_factory.mktemp("grown") / "fake-teacher-100"
    with FakeTeacher(FakeTeacherConfig(seed=1)) as server:
        grow(build_config({"backend": "openai", "base_url": [server.base_url], "out": str(out), "target": 100}))
    return out


def _screenshot(page: Path, out: Path, profile: Path) -> None:
    command = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", f"--screenshot={out}", "--window-size=1280,2000", page.resolve().as_uri(),
    ]
    subprocess.run(command, check=True, capture_output=True, timeout=120)


@pytest.mark.skipif(not CHROMIUM.is_file(), reason="needs /usr/bin/chromium (apt-get install chromium)")
def test_report_renders_in_chromium(grown_run: Path, tmp_path: Path) -> None:
    from PIL import Image

    page = report_run(grown_run)
    shot = tmp_path / "report.png"
    _screenshot(page, shot, tmp_path / "profile")
    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 2000)
    # The figures' dark teal (#264653) is in the PNGs, not the CSS: seeing it means the images loaded.
    colours = {colour for _, colour in image.getcolors(maxcolors=1 << 20) or []}
    assert (0x26, 0x46, 0x53) in colours
    if os.environ.get("SELFINSTRUCT_UPDATE_DOCS") == "1":  # refresh the screenshot shown in docs/report.md
        shutil.copyfile(shot, DOCS_SCREENSHOT)


def test_grown_run_exports_and_reports(grown_run: Path) -> None:
    from selfinstruct.publish import export_run

    names = [path.name for path in export_run(grown_run, ["all"])]
    assert "README.md" in names and "provenance.jsonl" in names
    markdown = report_markdown(grown_run)
    assert "| accepted tasks | 100 |" in markdown
