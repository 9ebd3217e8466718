"""Exceptions raised by adapt. Each one says what went wrong and what to do about it."""

from __future__ import annotations

__all__ = [
    "AdaptError",
    "InvalidChoiceError",
    "InvalidInputError",
    "UnknownLabelError",
    "NumClassesError",
    "EmptyDatasetError",
    "MissingColumnError",
    "ModelNotFoundError",
    "CorruptModelError",
    "WrongTaskError",
    "DecodeError",
    "TargetExistsError",
]


class AdaptError(Exception):
    """Base class of every error adapt raises on purpose."""


class InvalidChoiceError(AdaptError, ValueError):
    """A value is not one of a fixed set of choices (e.g. a misspelled `Strategy`)."""


class InvalidInputError(AdaptError, ValueError):
    """Input text is empty, None or not a string."""


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


class CorruptModelError(AdaptError, ValueError):
    """A model folder exists but lacks files or holds unreadable ones."""


class WrongTaskError(AdaptError, ValueError):
    """A model folder holds a model for a different task than the one asked for."""


class TargetExistsError(AdaptError, FileExistsError):
    """A save or export would overwrite something that is not a previous model save."""


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
