"""One error tree. Messages are for people: what failed, where, what was expected.

Exit codes are assigned only in the CLI (see `cli.EXIT_CODES`).
"""

from __future__ import annotations


class SelfInstructError(Exception):
    """Base of every error this package raises on purpose."""


class InputError(SelfInstructError):
    """A file, flag or config value given by the user is not what we expected."""

    def __init__(self, where: str, field: str | None, expected: str, got: str | None = None):
        self.where = where
        self.field = field
        self.expected = expected
        self.got = got
        parts = [where]
        if field:
            parts.append(f"field '{field}'")
        message = ": ".join(parts) + f": expected {expected}"
        if got:
            message += f", got {got}"
        super().__init__(message)


class SeedError(InputError):
    """A seed file is malformed."""


class ConfigError(InputError):
    """A config file or flag is malformed."""


class TeacherError(SelfInstructError):
    """The teacher could not be reached or answered unusably."""


class TeacherUnavailable(TeacherError):
    """The teacher server did not start or cannot be reached."""


class StoreError(SelfInstructError):
    """The run's store cannot be opened or written."""


class StoreLocked(StoreError):
    """Another process holds the run directory."""


class DataError(InputError):
    """A labelled data file (convert, mix) is malformed: names the file, the row and the field."""


class TemplateError(InputError):
    """A template file is malformed, or a template cannot render a row."""
