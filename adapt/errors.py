"""Exceptions raised by adapt. Each one says what went wrong and what to do about it.

Every error a user can cause is an `AdaptError`. Most also subclass the built-in exception a caller would
expect (`ValueError`, `FileNotFoundError`, `ImportError`, ...), so existing `except` clauses keep working.
"""

from __future__ import annotations

import contextlib
import contextvars
import difflib
from collections.abc import Iterable, Iterator

__all__ = [
    "AdaptError",
    "CorruptModelError",
    "DataNotFoundError",
    "DecodeError",
    "EmptyDatasetError",
    "InvalidChoiceError",
    "InvalidDataError",
    "InvalidInputError",
    "InvalidOptionError",
    "MissingColumnError",
    "MissingDependencyError",
    "ModelNotFoundError",
    "NumClassesError",
    "TargetExistsError",
    "TrackerError",
    "UnknownLabelError",
    "UntrustedPickleError",
    "WrongTaskError",
]  # the exceptions (exported by `adapt`); the helpers below are imported by name


class AdaptError(Exception):
    """Base class of every error adapt raises on purpose."""


class InvalidChoiceError(AdaptError, ValueError):
    """A value is not one of a fixed set of choices (e.g. a misspelled `Strategy`)."""


class InvalidInputError(AdaptError, ValueError):
    """An input or option is empty, of the wrong type, out of range or unknown."""


class InvalidDataError(InvalidInputError):
    """The data has rows a task cannot use (no text, a missing label, an answer outside its context, ...)."""


class InvalidOptionError(InvalidInputError):
    """An option or keyword argument is unknown, or has a value of the wrong kind."""


class UnknownLabelError(AdaptError, ValueError):
    """A label appears that the model or training set does not know."""


class NumClassesError(AdaptError, ValueError):
    """`num_classes` disagrees with the data or the model."""


class EmptyDatasetError(AdaptError, ValueError):
    """A dataset or split has no rows."""


class MissingColumnError(AdaptError, KeyError):
    """A named column does not exist; the message lists the columns that do."""

    def __str__(self) -> str:  # KeyError would otherwise wrap the message in quotes
        return str(self.args[0]) if self.args else ""


class ModelNotFoundError(AdaptError, FileNotFoundError):
    """A model path does not exist, or cannot be fetched."""


class DataNotFoundError(AdaptError, FileNotFoundError):
    """A data file or folder does not exist."""


class CorruptModelError(AdaptError, ValueError):
    """A model folder exists but lacks files or holds unreadable ones."""


class WrongTaskError(AdaptError, ValueError):
    """A model folder holds a model for a different task than the one asked for."""


class TargetExistsError(AdaptError, FileExistsError):
    """A save or export would overwrite something that is not a previous model save."""


class UntrustedPickleError(AdaptError, PermissionError):
    """Loading the file would unpickle it (run code from it), and that was not allowed."""


class MissingDependencyError(AdaptError, ImportError):
    """An optional dependency is not installed; the message says which `pip install` adds it."""


class TrackerError(AdaptError, RuntimeError):
    """A tracker asked for by `tune(report_to=...)` could not start (W&B without a login, for one)."""


class DecodeError(AdaptError, UnicodeDecodeError):
    """A text file cannot be decoded with the given encoding."""

    def __init__(self, path: str, encoding: str, err: UnicodeDecodeError) -> None:
        super().__init__(err.encoding, err.object, err.start, err.end, err.reason)
        self.path, self.wanted_encoding = path, encoding

    def __str__(self) -> str:
        return (
            f"Cannot decode {self.path!r} as {self.wanted_encoding!r} ({self.reason} at byte {self.start}). "
            "Pass the file's encoding, e.g. encoding='latin-1' or encoding='cp1252'."
        )


def closest(name: str, choices: Iterable[str]) -> str | None:
    """The choice most similar to `name` (case-insensitive), or None when nothing is close."""
    options = list(choices)
    lowered = {c.lower(): c for c in options}
    match = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[match[0]] if match else None


def unknown_name(what: str, name: str, valid: Iterable[str], where: str = "") -> str:
    """'Unknown option 'x' for y. Did you mean 'z'? Accepted: a, b, c.' (the shared wording of name errors)."""
    valid = list(valid)
    guess = closest(name, valid)
    hint = f" Did you mean {guess!r}?" if guess else ""
    accepted = ", ".join(valid) if valid else "none"
    return f"Unknown {what} {name!r}{' for ' + where if where else ''}.{hint} Accepted: {accepted}."


DISTRIBUTION = "adapt-tuner"  # settings.ini's lib_name; the import name is `adapt`


def is_count(value: object, least: int = 1) -> bool:
    """True for an `int` of at least `least` (`True` is not a count, though Python calls it an int)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def is_number(value: object) -> bool:
    """True for an `int` or `float` that is not a `bool`."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def install_hint(extra: str) -> str:
    """`pip install '<this distribution>[extra]'`, with the name pip knows this package by."""
    return f"pip install '{distribution_name()}[{extra}]'"


def distribution_name() -> str:
    """The name adapt is published under on PyPI (`adapt` itself belongs to another project there)."""
    return DISTRIBUTION


# while a CLI command runs: its option names for the Python keywords that messages mention (`resume_from` -> `--resume`)
_CLI_NAMES: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("adapt_cli_names", default=None)


@contextlib.contextmanager
def cli_names(names: dict[str, str]) -> Iterator[None]:
    """While inside, `as_given` names keywords by these CLI options: messages speak the user's language."""
    token = _CLI_NAMES.set(names)
    try:
        yield
    finally:
        _CLI_NAMES.reset(token)


def as_given(keyword: str, value: object = None) -> str:
    """`keyword=value` as the user passes it: `resume_from='x'` in Python, `--resume x` from the CLI; without a
    value, the name alone (`checkpoint_every`, `--checkpoint-every`)."""
    names = _CLI_NAMES.get()
    name = names.get(keyword, keyword) if names else keyword
    if value is None:
        return name
    if name != keyword:
        return f"{name} {value}"
    return f"{keyword}={value!r}" if isinstance(value, str) else f"{keyword}={value}"
