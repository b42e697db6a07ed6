"""One config surface: `selfinstruct grow`'s flags, `--set` and the Prefect flow's parameters are all derived from
GrowConfig, and accept the same settings.

The parity test gives every setting of the model (found by walking it, so a new field is covered without editing
this file) a value other than its default, once through the real command line (`grow ... --show-config`) and once
through the flow's parameters, and compares the two configurations.
"""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel
from typer.testing import CliRunner

from selfinstruct.cli import app
from selfinstruct.core.config import GrowConfig
from selfinstruct.core.config_overrides import (
    COMMON_SETTINGS, NESTED_COMMON, _without_none, apply_settings, parse_value, setting_paths,
)
from selfinstruct.core.errors import ConfigError
from selfinstruct.flows.grow import flow_config, grow as grow_flow

runner = CliRunner()
# Values the walk cannot invent: a setting whose type says too little, or whose neighbours constrain it.
SAMPLES: dict[str, Any] = {
    "prices": {"sample-model": {"input": 1.0, "output": 2.0}},
    "backend": "openai",  # vllm would need a model or URL, cpu refuses batched prompts without a URL
    "api": "completions",
    "batch_prompts": 1,  # batch mode (sampled on) sends one prompt per request line
}


def _field(path: str) -> Any:
    model: type[BaseModel] = GrowConfig
    *parents, name = path.split(".")
    for part in parents:
        model = _without_none(model.model_fields[part].annotation)
    return model.model_fields[name]


def _sample(path: str) -> Any:
    """A valid value other than the default, from the field's type and default."""
    if path in SAMPLES:
        return SAMPLES[path]
    field = _field(path)
    kind, default = _without_none(field.annotation), field.get_default(call_default_factory=True)
    if typing.get_origin(kind) is Literal:
        return next(choice for choice in reversed(typing.get_args(kind)) if choice != default)
    if kind is bool:
        return not default
    low = max([getattr(m, "ge", None) or getattr(m, "gt", None) or 0 for m in field.metadata], default=0)
    if kind is int:
        return max(3, low) if default is None else default + 1
    if kind is float:
        return max(0.5, low) if not default else default / 2
    if kind in (str, Path):
        return "sample/value"
    if typing.get_origin(kind) in (list, tuple):
        return ["sample-item"]
    raise AssertionError(f"add a sample value for {path} ({kind}) to SAMPLES")


def _cli_args(values: dict[str, Any]) -> list[str]:
    args = []
    for path, value in values.items():
        if path in COMMON_SETTINGS and isinstance(value, bool):
            args.append(f"--{'' if value else 'no-'}{path.replace('_', '-')}")
        elif path in COMMON_SETTINGS:
            for item in value if isinstance(value, list) else [value]:
                args += [f"--{path.replace('_', '-')}", str(item)]
        else:
            args += ["--set", f"{path}={json.dumps(value)}"]
    return args


def _cli_config(args: list[str]) -> dict[str, Any]:
    result = runner.invoke(app, ["grow", *args, "--show-config"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _flow_config(values: dict[str, Any]) -> dict[str, Any]:
    named = {path: value for path, value in values.items() if path in COMMON_SETTINGS}
    settings = {path: value for path, value in values.items() if path not in COMMON_SETTINGS}
    # Through Prefect's own parameter validation, as a deployment run's parameters are.
    parameters = grow_flow.validate_parameters({**named, "settings": settings})
    return json.loads(flow_config(parameters).model_dump_json())


def test_the_flow_and_the_cli_accept_every_setting_alike() -> None:
    values = {path: _sample(path) for path in setting_paths()}
    from_cli, from_flow = _cli_config(_cli_args(values)), _flow_config(values)
    assert from_cli == from_flow
    # Against the defaults of the sampled backend: api, batch_prompts, concurrency, ... default by backend.
    default = json.loads(GrowConfig(backend=SAMPLES["backend"]).model_dump_json()) | {"backend": "cpu"}
    # batch_prompts must be 1 with batch mode on, which is also its default on chat: it cannot differ from both.
    for path in (path for path in setting_paths() if path != "batch_prompts"):
        *parents, name = path.split(".")
        got, was = from_cli, default
        for part in parents:
            got, was = got[part], was[part]
        assert got[name] != was[name], f"{path} did not reach the config"


def test_named_flags_and_flow_parameters_are_the_common_settings() -> None:
    command = next(c for c in typer_commands() if c.name == "grow")
    flags = {param.name for param in command.params}
    assert flags == {*COMMON_SETTINGS, *NESTED_COMMON, "config", "set", "show_config"}
    assert set(grow_flow.parameters.properties) == {*COMMON_SETTINGS, *NESTED_COMMON, "config_file", "settings",
                                                     "fail_on_gates", "filters"}
    for name in COMMON_SETTINGS:  # help and UI descriptions come from the model
        description = GrowConfig.model_fields[name].description
        assert description and grow_flow.parameters.properties[name]["description"] == description
    for name, path in NESTED_COMMON.items():
        assert grow_flow.parameters.properties[name]["description"] == _field(path).description


def test_a_nested_common_flag_and_its_flow_parameter_set_the_same_setting() -> None:
    # `grow --judge` is judge.enabled, as is the flow's `judge` parameter and `--set judge.enabled=true`.
    assert _cli_config(["--judge"])["judge"]["enabled"] is True
    assert _cli_config(["--set", "judge.enabled=true"])["judge"]["enabled"] is True
    assert flow_config({"judge": True}).judge.enabled is True
    assert _cli_config(["--judge", "--set", "judge.model=m"])["judge"] | {"enabled": False, "model": None} == \
        json.loads(GrowConfig().judge.model_dump_json())


def typer_commands() -> list[Any]:
    import typer.main

    return list(typer.main.get_command(app).commands.values())


def test_every_setting_has_a_description() -> None:
    missing = [path for path in setting_paths() if not _field(path).description]
    assert missing == []


def test_a_config_file_then_flags_then_set(tmp_path: Path) -> None:
    config = tmp_path / "grow.toml"
    config.write_text('target = 40\nseed = 5\n[filters]\nmin_words = 6\nmax_words = 90\n')
    got = _cli_config(["--config", str(config), "--target", "50", "--set", "filters.min_words=7"])
    assert (got["target"], got["seed"], got["filters"]["min_words"], got["filters"]["max_words"]) == (50, 5, 7, 90)
    flow = flow_config({"config_file": config, "target": 50, "settings": {"filters": {"min_words": 7}}})
    assert flow.model_dump(mode="json") == got


@pytest.mark.parametrize(("text", "value"), [
    ("5", 5), ("0.25", 0.25), ("true", True), ('"x y"', "x y"), ("bfloat16", "bfloat16"),
    ('["--enforce-eager", "--seed=1"]', ["--enforce-eager", "--seed=1"]), ("{input = 1.5}", {"input": 1.5}),
])
def test_set_values_are_toml_or_json(text: str, value: Any) -> None:
    assert parse_value(text) == value


def test_dotted_and_nested_settings_merge() -> None:
    merged = apply_settings({"filters": {"min_words": 6}}, {"filters.max_words": 90, "vllm": {"dtype": "half"}}, "t")
    assert merged == {"filters": {"min_words": 6, "max_words": 90}, "vllm": {"dtype": "half"}}


@pytest.mark.parametrize(("parameters", "message"), [
    ({"settings": {"max_tokens": 10}},
     "flow parameter settings['max_tokens']: field 'max_tokens': expected max_total_tokens instead"),
    ({"settings": {"max_requests": 10}}, "expected max_prompts instead (max_requests was renamed)"),
    ({"filters": {"min_words": 5}}, "field 'filters': expected settings="),
    ({"target": 0}, "flow parameter target: field 'target'"),
    ({"settings": {"filters.rouge_threshold": 2}}, "flow parameter settings['filters.rouge_threshold']"),
])
def test_the_flow_names_a_bad_or_old_setting(parameters: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        flow_config(parameters)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_stored_config_of_an_older_version_is_read_under_the_new_names() -> None:
    from selfinstruct.core.config import stored_settings

    assert GrowConfig.model_validate(stored_settings({"max_tokens": 9, "max_requests": 4})).max_total_tokens == 9


def test_setting_one_key_of_a_table_keeps_the_defaults_of_the_others(tmp_path: Path) -> None:
    config = tmp_path / "grow.toml"
    config.write_text("[classify_decoding]\nmax_tokens = 8\n")
    got = _cli_config(["--config", str(config), "--set", "instruction_decoding.temperature=1.0"])
    assert got["instruction_decoding"] | {"temperature": 0.7} == GrowConfig().instruction_decoding.model_dump(mode="json")
    assert got["classify_decoding"]["stop"] == ["\n"] and got["classify_decoding"]["max_tokens"] == 8


@pytest.mark.parametrize(("param", "message"), [
    ("nope.target=3", "--param: field 'nope': expected a deployment name: one of grow, mix"),
    ("grow.targt=3", "but was provided with parameters ['targt']"),
    ("grow", "--param: expected a dotted.name=value"),
])
def test_serve_refuses_a_parameter_no_deployment_has(param: str, message: str) -> None:
    result = runner.invoke(app, ["serve", "--param", param], env={"COLUMNS": "400"})
    assert result.exit_code == 2 and message in result.output, result.output
