"""Settings of `GrowConfig` by name and by dotted path, for the CLI's flags and `--set`, and the flow's parameters.

COMMON_SETTINGS become named flags of `selfinstruct grow` and named parameters of the Prefect flow; every other
setting, nested ones included, is reached by a dotted path: `--set filters.min_words=5` on the command line,
`settings={"filters.min_words": 5}` (or `{"filters": {"min_words": 5}}`) in the flow. Both are derived from the
model here, so a new field needs no CLI or flow code.
"""

from __future__ import annotations

import json
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from .config import GrowConfig, build_config, check_renamed, key_line, read_config_file
from .errors import ConfigError

# The settings most runs change, as named flags and flow parameters (in this order); the rest go through --set.
COMMON_SETTINGS: tuple[str, ...] = (
    "out", "target", "seeds", "backend", "model", "base_url", "api", "method", "structured", "seed",
    "prompts_per_round", "concurrency", "batch_prompts", "pipeline_rounds", "max_rounds",
    "request_timeout", "max_attempts", "requests_per_minute", "tokens_per_minute", "failure_threshold",
    "max_prompts", "max_total_tokens", "max_cost", "batch", "retry_budget", "adaptive_concurrency",
    "server_startup_timeout",
)

# Nested settings with a named flag and flow parameter of their own: the name, then the setting's dotted path.
NESTED_COMMON: dict[str, str] = {"judge": "judge.enabled"}


@dataclass(frozen=True)
class SettingSpec:
    """One top-level setting as a flag or parameter: its type without None, choices, shown default, help."""

    name: str
    kind: Any  # int, float, str, bool, Path, list[str], a Literal of choices
    choices: tuple[str, ...] | None
    default: Any  # the model's default, for help text; None when it has none or it is computed
    description: str


def common_specs(names: tuple[str, ...] = COMMON_SETTINGS,
                 nested: Mapping[str, str] = NESTED_COMMON) -> list[SettingSpec]:
    """The named flags' settings: `names` of GrowConfig, then the `nested` ones by their own names."""
    return [_spec(name, GrowConfig.model_fields[name]) for name in names] + [
        _spec(name, field_at(path)) for name, path in nested.items()]


def model_specs(model: type[BaseModel], names: tuple[str, ...]) -> list[SettingSpec]:
    """Flags for fields of a settings section (e.g. the judge command's, from JudgeConfig)."""
    return [_spec(name, model.model_fields[name]) for name in names]


def field_at(path: str, model: type[BaseModel] = GrowConfig) -> FieldInfo:
    """The field a dotted path names ("judge.enabled")."""
    *parents, name = path.split(".")
    for part in parents:
        model = _without_none(model.model_fields[part].annotation)
    return model.model_fields[name]


def _spec(name: str, field: FieldInfo) -> SettingSpec:
    kind = _without_none(field.annotation)
    choices = None
    if typing.get_origin(kind) is Literal:
        choices = tuple(str(arg) for arg in typing.get_args(kind))
    default = None if field.default is PydanticUndefined else field.default
    return SettingSpec(name, kind, choices, default, field.description or "")


def _without_none(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (Union, types.UnionType):
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def setting_paths(model: type[BaseModel] = GrowConfig, prefix: str = "") -> list[str]:
    """Every leaf setting as a dotted path ("target", "filters.min_words", "vllm.dtype", ...)."""
    paths = []
    for name, field in model.model_fields.items():
        kind = _without_none(field.annotation)
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            paths += setting_paths(kind, f"{prefix}{name}.")
        else:
            paths.append(prefix + name)
    return paths


def parse_value(text: str) -> Any:
    """A TOML or JSON value (5, 0.7, true, "x", ["a", "b"], {input = 1.0}), else the text itself (a bare word)."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        pass
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_assignment(text: str, flag: str = "--set") -> tuple[str, Any]:
    """'section.key=value' as (path, parsed value)."""
    path, equals, value = text.partition("=")
    if not equals or not path.strip() or any(not part for part in path.strip().split(".")):
        raise ConfigError(flag, None, f"a dotted.name=value, e.g. {flag} filters.min_words=5", repr(text))
    return path.strip(), parse_value(value.strip())


def apply_settings(values: dict[str, Any], settings: Mapping[str, Any], where: str) -> dict[str, Any]:
    """`values` with `settings` laid over it: keys may be dotted paths, values nested tables (merged key by key)."""
    merged = dict(values)
    for path, value in settings.items():
        *parents, key = path.split(".")
        table = merged
        for depth, part in enumerate(parents):
            child = table.get(part)
            if child is None:
                child = _table_default(part) if depth == 0 else {}
            elif isinstance(child, BaseModel):
                child = child.model_dump()
            elif not isinstance(child, dict):
                raise ConfigError(where, path, f"'{part}' to be a table of settings", json.dumps(child, default=str))
            table[part] = child = dict(child)
            table = child
        table[key] = _merged(table.get(key), value)
    return merged


def _table_default(name: str) -> dict[str, Any]:
    """A nested table's default settings: setting one key of instruction_decoding keeps the others' defaults
    (its stop strings, say), not those of a bare Decoding()."""
    field = GrowConfig.model_fields.get(name)
    default = None if field is None else field.default
    return default.model_dump() if isinstance(default, BaseModel) else {}


def with_table_defaults(values: dict[str, Any]) -> dict[str, Any]:
    """`values` (e.g. a config file's) with each partial nested table completed from the model's default."""
    return {key: {**_table_default(key), **value} if isinstance(value, dict) and key != "prices" else value
            for key, value in values.items()}


def _merged(old: Any, new: Any) -> Any:
    if isinstance(new, BaseModel):
        new = new.model_dump(exclude_unset=True)
    if isinstance(old, BaseModel):
        old = old.model_dump()
    if isinstance(old, dict) and isinstance(new, dict):
        return {**old, **{key: _merged(old.get(key), value) for key, value in new.items()}}
    return new


def resolve_config(
    config_file: Path | None, named: Mapping[str, Any], settings: Mapping[str, Any], *,
    named_where: Callable[[str], str], settings_where: Callable[[str], str], base: Mapping[str, Any] | None = None,
) -> GrowConfig:
    """`base` (e.g. a run's stored settings), the config file, then the named settings (None: unset; the
    NESTED_COMMON ones by name), then the dotted ones: one GrowConfig.

    An invalid value is reported where it was given: the flag or parameter, the `--set` path, else the
    config file's line.
    """
    values = dict(base or {})
    values.update(with_table_defaults(read_config_file(config_file)) if config_file else {})
    values.update({key: value for key, value in named.items() if value is not None and key not in NESTED_COMMON})
    nested = {NESTED_COMMON[key]: value for key, value in named.items() if value is not None and key in NESTED_COMMON}
    values = apply_settings(values, nested, "options")
    for path in settings:
        check_renamed({path.split(".")[0]: None}, settings_where(path))
    values = apply_settings(values, settings, "settings")

    def locate(loc: tuple[str, ...]) -> str:
        dotted = ".".join(loc)
        for path in reversed(list(settings)):
            if dotted == path or dotted.startswith(path + ".") or path.startswith(dotted + "."):
                return settings_where(path)
        for name, path in NESTED_COMMON.items():
            if dotted == path and named.get(name) is not None:
                return named_where(name)
        if named.get(loc[0]) is not None and loc[0] not in NESTED_COMMON:
            return named_where(loc[0])
        if config_file is None:
            return "options"
        line = key_line(config_file, loc)
        return f"{config_file}:{line}" if line else str(config_file)

    return build_config(values, str(config_file) if config_file else "options", locate=locate)
