"""Templates as data: a TOML file of Jinja2 strings, loaded and rendered the same way for our families and
for a user's own file.

    task = "yes/no questions about a passage"      # goes into provenance
    [[template]]
    id = "boolq-plain"                             # optional: FILE-STEM-N by default
    instruction = "Answer the question about the passage with yes or no."
    input = "{{ passage }}\\n\\nQuestion: {{ question }}"
    output = "{{ 'Yes' if answer == 'True' else 'No' }}"
    when = "label == 'contradiction'"              # optional: the rows it applies to (a Jinja expression)

Rendering is sandboxed (a template cannot reach Python internals) and an undefined name is an error, not an
empty string. Names a template uses are checked against the data's fields before any row is rendered.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, meta
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..core.errors import TemplateError

FAMILIES = ("extractive-qa", "classification", "summarization", "nli", "paraphrase", "yes-no-qa")
_PARTS = ("instruction", "input", "output")


class TemplateSpec(BaseModel):
    """One template as written in the file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str | None = None
    instruction: str = Field(min_length=1)
    input: str = ""
    output: str = Field(min_length=1)
    when: str | None = None
    inverted: bool = False  # asks for the input given the answer (a question for this answer, a review …)
    options: bool = False  # lists the answer options


class TemplateFileSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    task: str = ""
    family: str | None = None
    template: list[TemplateSpec] = Field(min_length=1)


def _bullets(items: list[Any]) -> str:
    return "\n".join(f"- {item}" for item in items)


def _letters(items: list[Any]) -> str:
    return "\n".join(f"({chr(65 + n)}) {item}" for n, item in enumerate(items))


def _numbered(items: list[Any]) -> str:
    return "\n".join(f"{n}. {item}" for n, item in enumerate(items, 1))


def _or_list(items: list[Any]) -> str:
    words = [str(item) for item in items]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def make_environment() -> ImmutableSandboxedEnvironment:
    """The one Jinja2 environment: sandboxed, strict about undefined names, no HTML escaping (this is text)."""
    env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
    env.filters.update(bullets=_bullets, letters=_letters, numbered=_numbered, or_list=_or_list)
    return env


ENV = make_environment()


# The three parts are compiled as one template joined by a separator no data holds, so a row costs one
# render (Jinja's per-render context set-up costs more than these small templates do).
_SEPARATOR = "\x1f"


@dataclass(frozen=True)
class Template:
    """A compiled template; `names` are the variables it reads."""

    id: str
    spec: TemplateSpec
    compiled: Any
    when: Any
    names: frozenset[str]

    def applies(self, context: dict[str, Any]) -> bool:
        return self.when is None or render_text(self.when, context) == "1"

    def render(self, context: dict[str, Any]) -> tuple[str, str, str]:
        parts = render_text(self.compiled, context).split(_SEPARATOR)
        if len(parts) != 3:  # the data itself held the separator: render the parts one by one
            parts = [ENV.from_string(getattr(self.spec, part)).render(context) for part in _PARTS]
        return parts[0].strip(), parts[1].strip(), parts[2].strip()


def render_text(template: Any, context: dict[str, Any]) -> str:
    """Render with `context` as the template's variables, without the copy `Template.render` makes of them.

    `context` must already hold the environment's globals (see `template_context`)."""
    return ENV.concat(template.root_render_func(template.new_context(context, shared=True)))  # type: ignore


def template_context(values: dict[str, Any]) -> dict[str, Any]:
    """A row's variables plus the environment's globals (range, dict, …), ready for `render_text`."""
    return {**ENV.globals, **values}


@dataclass(frozen=True)
class TemplateSet:
    """A family's or a user's templates, with the file they came from (for provenance and errors)."""

    task: str
    family: str | None
    source: str
    templates: tuple[Template, ...]


def _compile(spec: TemplateSpec, template_id: str, where: str) -> Template:
    try:
        sources = [getattr(spec, part) for part in _PARTS]
        compiled = ENV.from_string(_SEPARATOR.join(sources))
        when = ENV.from_string("{{ 1 if (" + spec.when + ") else 0 }}") if spec.when else None
        parsed = [*sources, "{{ (" + spec.when + ") }}"] if spec.when else sources
        names = set().union(*(meta.find_undeclared_variables(ENV.parse(text)) for text in parsed))
    except TemplateSyntaxError as err:
        raise TemplateError(f"{where}: template {template_id}", None, "valid Jinja2",
                            f"{err.message} (line {err.lineno})") from err
    return Template(template_id, spec, compiled, when, frozenset(names))  # type: ignore[arg-type]


def parse_template_file(text: str, where: str, default_prefix: str) -> TemplateSet:
    try:
        spec = TemplateFileSpec.model_validate(tomllib.loads(text))
    except tomllib.TOMLDecodeError as err:
        raise TemplateError(where, None, "a TOML file", str(err)) from err
    except ValidationError as err:
        first = err.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise TemplateError(where, field, first["msg"].lower(), None) from err
    templates, seen = [], set()
    for n, template in enumerate(spec.template, 1):
        template_id = template.id or f"{default_prefix}-{n}"
        if template_id in seen:
            raise TemplateError(where, f"template[{n}].id", "a template id used once", template_id)
        seen.add(template_id)
        templates.append(_compile(template, template_id, where))
    return TemplateSet(spec.task, spec.family, where, tuple(templates))


def load_template_file(path: Path) -> TemplateSet:
    """A user's template file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise TemplateError(str(path), None, "a readable template file", err.strerror or str(err)) from err
    return parse_template_file(text, str(path), path.stem)


def load_family(name: str) -> TemplateSet:
    """A built-in family's templates, from its data file in this package, through the same loader."""
    if name not in FAMILIES:
        raise TemplateError("--task", None, f"one of {', '.join(FAMILIES)}", name)
    resource = resources.files(__package__).joinpath("families", f"{name}.toml")
    return parse_template_file(resource.read_text(encoding="utf-8"), f"families/{name}.toml", name)


def check_names(templates: TemplateSet, available: set[str]) -> None:
    """Every name a template reads must be a field of the data (or a Jinja global such as `range`)."""
    for template in templates.templates:
        missing = sorted(template.names - available - set(ENV.globals))
        if missing:
            raise TemplateError(f"{templates.source}: template {template.id}", missing[0],
                                f"a field the data has ({', '.join(sorted(available))})", "no such field")
