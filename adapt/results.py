"""The results contract every predictor returns: per-input `items`, `to_dict(level)`, `decisions()` and slicing.

A task's results type is a dataclass subclass of `Results` whose first field is `items` (one entry per input,
in input order). `to_dict(detail_level)` returns plain JSON-safe data (lists, strings, numbers, bools, None),
the same dict `Tuner.predict`, the `Easy*` verbs, `adapt predict` and `POST /predict` give. `select(i, j)`
keeps inputs `i..j-1` with every shared field (classes, tags, ...), which is how the micro-batcher hands
each request its own part of a batched call.

Embeddings (`adapt.tasks.embeddings`) are apart: they return vectors through `to_dict(detail_level, return_tensors)`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol, TypeVar, runtime_checkable

from .enums import DetailLevel

__all__ = ["ByInput", "Results", "ResultsLike", "concat_results", "json_text"]

R = TypeVar("R", bound="Results")


@runtime_checkable
class ResultsLike(Protocol):
    """What the engine, the server and the CLI rely on."""

    items: list[Any]

    def to_dict(self, detail_level: DetailLevel | str = DetailLevel.Low) -> dict[str, Any]: ...

    def decisions(self) -> list[Any]: ...

    def select(self: Any, start: int, stop: int) -> Any: ...


@dataclasses.dataclass
class Results:
    """Base of every task's results dataclass."""

    items: list[Any]

    def __len__(self) -> int:
        return len(self.items)

    def select(self: R, start: int, stop: int) -> R:
        """The results of inputs `start..stop-1` only (shared fields kept)."""
        return dataclasses.replace(self, items=self.items[start:stop])

    def decisions(self) -> list[Any]:
        """One comparable decision per input (parity checks of int8/ONNX copies)."""
        raise NotImplementedError

    def to_dict(self, detail_level: DetailLevel | str = DetailLevel.Low) -> dict[str, Any]:
        """JSON-safe output at `detail_level`."""
        raise NotImplementedError


def concat_results(parts: list[Any]) -> Any:
    """One results object from the parts of one request run in several model calls (shared fields from the first)."""
    if len(parts) == 1:
        return parts[0]
    return dataclasses.replace(parts[0], items=[item for part in parts for item in part.items])


def json_text(text: Any) -> Any:
    """An input as JSON: a `(text, text_pair)` tuple becomes a list."""
    return list(text) if isinstance(text, tuple) else text


class ByInput(dict[str, Any]):
    """A result dict that also answers `result[i]` with input `i`'s own entry.

    AdaptNLP returned some results as one entry per input (`sentences[0]["entities"]`); this keeps that code
    working while the dict (and its JSON) stays the one every door returns.
    """

    def __init__(self, data: dict[str, Any], per_input: list[Any]) -> None:
        super().__init__(data)
        self.per_input = per_input

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, int) and not isinstance(key, bool):
            return self.per_input[key]
        return super().__getitem__(key)

    def __reduce__(self) -> Any:
        return (type(self), (dict(self), self.per_input))
