"""`selfinstruct mix` of a grow run (fake teacher over HTTP) and conversions of the shared datasets: rates with
a cap and a temperature, dedup across sources, decontamination, splits, and exports `datasets` loads; and the
scale-out case, two grow run directories whose pools overlap, mixed with one global dedup."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import SHARED
from selfinstruct.cli import app
from selfinstruct.core.config import build_config
from selfinstruct.convert import ConvertConfig, convert_dataset
from selfinstruct.export.formats import ALPACA_FILE, PROVENANCE_FILE, TRAIN_FILE, VALIDATION_FILE
from selfinstruct.mix import mix_run, read_mix_config
from selfinstruct.grow import grow
from fakes.fake_teacher import FakeTeacher, FakeTeacherConfig

DATA = SHARED / "datasets"
FAMILIES = {"xquad": ("extractive-qa", DATA / "xquad_en" / "xquad.en.json"),
            "banking77": ("classification", DATA / "banking77" / "test.csv"),
            "scitldr": ("summarization", DATA / "scitldr_a" / "dev.jsonl"),
            "snli": ("nli", DATA / "snli_dev" / "dev.jsonl")}
runner = CliRunner()


def jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line]


@pytest.fixture(scope="module")
def teacher() -> Iterator[FakeTeacher]:
    with FakeTeacher(FakeTeacherConfig(seed=7)) as server:
        yield server


def grow_run(teacher: FakeTeacher, out: Path, target: int, seed: int = 0) -> Path:
    grow(build_config({"backend": "openai", "base_url": [teacher.base_url], "out": out, "target": target,
                       "seed": seed}))
    return out


@pytest.fixture(scope="module")
def sources(teacher: FakeTeacher, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if not DATA.is_dir():
        pytest.skip(f"{DATA} is not beside the checkout")
    base = tmp_path_factory.mktemp("sources")
    found = {"nightly": grow_run(teacher, base / "nightly", 30)}
    for name, (family, path) in FAMILIES.items():
        convert_dataset(ConvertConfig(data=str(path), task=family, out=base / name,
                                      split="test" if name == "banking77" else None))
        found[name] = base / name
    return found


def write_config(path: Path, body: str) -> Path:
    path.write_text(body, encoding="utf-8")
    return path


def mix_toml(sources: dict[str, Path], extra: str = "") -> str:
    blocks = "".join(f'[[source]]\npath = "{path}"\n' for path in sources.values())
    return f"target = 6000\ncap = 2000\ntemperature = 2.0\nseed = 0\n{blocks}{extra}"


def test_a_mix_meets_its_rates_and_every_export_loads(sources: dict[str, Path], tmp_path: Path) -> None:
    from datasets import load_dataset

    evals = tmp_path / "evals.jsonl"
    snli = jsonl(FAMILIES["snli"][1])[:200]  # pretend these 200 SNLI pairs are someone's test set
    evals.write_text("".join(json.dumps(row) + "\n" for row in snli), encoding="utf-8")
    config = write_config(tmp_path / "mix.toml", mix_toml(sources, f'[decontaminate]\nfiles = ["{evals}"]\n'))
    result = runner.invoke(app, ["mix", "--config", str(config), "--out", str(tmp_path / "mix")],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = tmp_path / "mix"
    rows = json.loads((out / ALPACA_FILE).read_text(encoding="utf-8"))
    provenance = jsonl(out / PROVENANCE_FILE)
    assert len(rows) == len(provenance) == 6000
    taken = Counter(str(item["mix_source"]) for item in provenance)
    mixture = {line["label"]: line for line in mixture_of(out)}
    assert {name: line["taken"] for name, line in mixture.items()} == dict(taken)
    # The grow run (30 tasks) is far below its share: taken whole, its share redistributed.
    nightly = mixture["nightly"]
    assert nightly["taken"] == nightly["available"] - nightly["dedup"] - nightly["decontaminated"]
    # Capped at 2000 with T=2, the three large conversions have equal rates (sqrt 2000) and equal shares.
    big = [mixture[name] for name in ("xquad", "banking77", "snli")]
    assert len({round(line["rate"], 6) for line in big[1:]}) == 1 and big[1]["rate"] == pytest.approx(2000 ** 0.5)
    assert abs(taken["banking77"] - taken["snli"]) <= 1
    # Decontamination removed SNLI rows holding those pairs' text (13-gram overlaps), and lists each.
    removed = jsonl(out / "removed.jsonl")
    dirty = [item for item in removed if item["reason"] == "decontaminated"]
    assert mixture["snli"]["decontaminated"] == len([i for i in dirty if i["source"] == "snli"]) > 0
    assert all("evals.jsonl" in str(item["detail"]) for item in dirty)
    for name in ("alpaca_data.json", "alpaca_data.jsonl", "messages.jsonl", "text.jsonl"):
        assert len(load_dataset("json", data_files=str(out / name), split="train")) == 6000
    splits = load_dataset("parquet", data_files={"train": str(out / TRAIN_FILE), "validation": str(out / VALIDATION_FILE)})
    assert len(splits["train"]) + len(splits["validation"]) == 6000
    # banking77 was converted as --split test: none of its rows may train.
    train_texts = {(row["instruction"], row["input"]) for row in splits["train"]}
    banking = [row for row, item in zip(rows, provenance) if item["mix_source"] == "banking77"]
    assert banking and not any((row["instruction"], row["input"]) in train_texts for row in banking)
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "| source | rows available | removed by dedup | removed by decontamination | rate |" in card
    assert "Taken whole" in card and "nightly" in card


def mixture_of(out: Path) -> list[dict[str, object]]:
    from selfinstruct.core.store import Store

    with Store.open(out) as store:
        return json.loads(store.get_meta("mixture") or "[]")


def test_the_same_config_gives_byte_identical_files(sources: dict[str, Path], tmp_path: Path) -> None:
    small = {name: sources[name] for name in ("nightly", "scitldr", "xquad")}
    config = read_mix_config(write_config(tmp_path / "mix.toml", mix_toml(small).replace("6000", "900")))
    first, second = tmp_path / "a" / "mix", tmp_path / "b" / "mix"
    mix_run(config, first)
    mix_run(config, second)
    names = sorted(path.name for path in first.iterdir() if not path.name.startswith("selfinstruct.sqlite"))
    assert {name: (first / name).read_bytes() for name in names} == {name: (second / name).read_bytes()
                                                                     for name in names}


def test_fixed_weights_and_a_source_smaller_than_its_share(sources: dict[str, Path], tmp_path: Path) -> None:
    body = (f'target = 2000\nseed = 3\n[[source]]\npath = "{sources["snli"]}"\nweight = 0.25\n'
            f'[[source]]\npath = "{sources["scitldr"]}"\nweight = 0.5\n[[source]]\npath = "{sources["banking77"]}"\n')
    result = mix_run(read_mix_config(write_config(tmp_path / "mix.toml", body)), tmp_path / "mix")
    taken = {line.label: line.taken for line in result.lines}
    clean = {line.label: line.clean for line in result.lines}
    # scitldr (about 619 clean rows) cannot fill its 1000: taken whole; what it leaves goes to the others by
    # share: snli's fixed 0.25 and banking77's rest of 0.25 are equal.
    assert 600 < taken["scitldr"] == clean["scitldr"] < 1000 and sum(taken.values()) == 2000
    left = (2000 - taken["scitldr"]) / 2
    assert taken["snli"] == pytest.approx(left, abs=1) and taken["banking77"] == pytest.approx(left, abs=1)


def test_two_grow_runs_whose_pools_overlap_are_deduplicated_once(teacher: FakeTeacher, tmp_path: Path) -> None:
    # Scale-out as documented: machine A grows; machine B started from a copy of A's run and grew on with its
    # own seed, so B's pool holds all of A's and more. One mix keeps each task once.
    first = grow_run(teacher, tmp_path / "machine-a", 12, seed=1)
    second = tmp_path / "machine-b"
    shutil.copytree(first, second)
    grow_run(teacher, second, 24, seed=2)
    body = f'target = 1000\n[[source]]\npath = "{first}"\n[[source]]\npath = "{second}"\n'
    result = mix_run(read_mix_config(write_config(tmp_path / "mix.toml", body)), tmp_path / "mix")
    lines = {line.label: line for line in result.lines}
    a_rows, b_rows = lines["machine-a"].available, lines["machine-b"].available
    assert lines["machine-b"].dedup >= a_rows  # every row B shares with A goes (exact, MinHash or ROUGE-L)
    assert len(result.rows) == a_rows + b_rows - lines["machine-a"].dedup - lines["machine-b"].dedup
    texts = [(row.instruction, row.input, row.output) for row in result.rows]
    assert len(texts) == len(set(texts))
    reasons = Counter(item.reason for item in result.removed)
    assert reasons["dedup_exact"] >= a_rows - lines["machine-a"].dedup


@pytest.mark.parametrize(("body", "fragments"), [
    ("target = 10\n[[source]]\npath = 'a'\nweight = 0.7\n[[source]]\npath = 'b'\nweight = 0.6\n",
     ("mix.toml", "weights add up to 1.3")),
    ("target = 10\ncap = 0\n[[source]]\npath = 'a'\n", ("mix.toml:2", "field 'cap'")),
    ("target = 10\n[[source]]\npath = 'missing-dir'\n", ("missing-dir", "field 'path'")),
    ("target = 10\nsources = []\n", ("mix.toml", "field 'source'")),
])
def test_a_bad_mix_config_names_the_file(tmp_path: Path, body: str, fragments: tuple[str, ...]) -> None:
    config = write_config(tmp_path / "mix.toml", body)
    result = runner.invoke(app, ["mix", "--config", str(config), "--out", str(tmp_path / "o")],
                           env={"COLUMNS": "300"})
    assert result.exit_code == 2, result.output
    [line] = [text for text in result.output.splitlines() if text.startswith("error:")]
    assert all(fragment in line for fragment in fragments), line
    assert not (tmp_path / "o").exists()
