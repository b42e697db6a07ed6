"""Test helpers that stand in for the outside world; `FakeTeacher` is an OpenAI-compatible server.

Names are loaded on first use, so `python -m fakes.fake_teacher`
does not import its own module twice (runpy warns when a package has already
imported the module it is asked to run).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .fake_teacher import FAULTS, FakeTeacher, FakeTeacherConfig

__all__ = ["FAULTS", "FakeTeacher", "FakeTeacherConfig"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import fake_teacher

        return getattr(fake_teacher, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
