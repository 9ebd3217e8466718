"""Helpers AdaptNLP's data tutorials used (`ParentLabeller`, `ColReader`, `Categorize`, `MultiCategorize`,
`RandomSplitter`) and its `SentenceResult`, so that code written for AdaptNLP 0.3.7 runs unchanged.

They are small and standalone (no fastai import): adapt's own datasets classes build labels and splits
themselves, and take these wherever AdaptNLP did (`get_label=ParentLabeller()`, `split_func=RandomSplitter(.2)`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from .errors import UnknownLabelError

__all__ = ["Categorize", "ColReader", "MultiCategorize", "ParentLabeller", "RandomSplitter", "SentenceResult"]


class ParentLabeller:
    """Label a file by the name of the folder `level` levels up (`level=1`: its own folder)."""

    def __init__(self, level: int = 1) -> None:
        self.level = level

    def __call__(self, o: str | os.PathLike[str]) -> str:
        path = Path(o)
        for _ in range(self.level):
            path = path.parent
        return path.name


class ColReader:
    """Read column(s) `cols` of a row or a DataFrame, with an optional prefix/suffix, or split by `label_delim`."""

    def __init__(self, cols: Any, pref: str | os.PathLike[str] = "", suff: str = "", label_delim: str | None = None) -> None:
        self.cols = list(cols) if isinstance(cols, (list, tuple)) else [cols]
        self.pref = f"{pref}{os.path.sep}" if isinstance(pref, Path) else pref
        self.suff, self.label_delim = suff, label_delim

    def _one(self, row: Any, col: Any) -> Any:
        value = row[col] if isinstance(col, int) or col in ("name", "cat") or hasattr(row, "columns") else getattr(row, col)
        if hasattr(value, "tolist") and hasattr(row, "columns"):
            value = value.tolist()
        if not self.pref and not self.suff and self.label_delim is None:
            return value
        if self.label_delim is not None:
            return value.split(self.label_delim) if value else []
        return f"{self.pref}{value}{self.suff}"

    def __call__(self, o: Any) -> Any:
        if len(self.cols) == 1:
            return self._one(o, self.cols[0])
        return [self._one(o, c) for c in self.cols]


class Categorize:
    """Map labels to class ids and back; `classes` are the distinct labels (sorted when `sort`)."""

    def __init__(self, names: Iterable[Any], sort: bool = True) -> None:
        unique = list(dict.fromkeys(n for n in names if not (isinstance(n, float) and math.isnan(n))))
        self.classes = sorted(unique) if sort else unique
        self.o2i = {c: i for i, c in enumerate(self.classes)}

    def map_objs(self, objs: Iterable[Any]) -> list[int]:
        return [self.o2i[o] for o in objs]

    def map_ids(self, ids: Iterable[int]) -> list[Any]:
        return [self.classes[i] for i in ids]

    def __call__(self, o: Any) -> int:
        if o not in self.o2i:
            raise UnknownLabelError(f"Label {o!r} is not one of the classes {self.classes}.")
        return int(self.o2i[o])

    def decode(self, o: int) -> Any:
        return self.classes[o]


class MultiCategorize(Categorize):
    """`Categorize` for rows with several labels: `mc(["a", "c"]) == [0, 2]`."""

    def __init__(self, names: Iterable[Any] | None = None) -> None:
        super().__init__(names or [], sort=names is None)

    def __call__(self, o: Iterable[Any]) -> list[int]:  # type: ignore[override]
        labels = list(o)
        unknown = [x for x in labels if x not in self.o2i]
        if unknown:
            raise UnknownLabelError(f"Labels {unknown} were not included in the training dataset (classes: {self.classes}).")
        return [int(self.o2i[x]) for x in labels]

    def decode(self, o: Iterable[int]) -> list[Any]:  # type: ignore[override]
        return [self.classes[x] for x in o]


def RandomSplitter(valid_pct: float = 0.2, seed: int | None = None) -> Callable[[Sequence[Any]], tuple[list[int], list[int]]]:
    """A `split_func`: a random `(train_indices, valid_indices)` split of `items`, `valid_pct` of them for validation."""
    import numpy as np

    def split(items: Sequence[Any]) -> tuple[list[int], list[int]]:
        order = np.random.default_rng(seed).permutation(len(items)).tolist()
        cut = int(valid_pct * len(items))
        return order[cut:], order[:cut]

    return split


class SentenceResult:
    """Inputs as given and as tokenized, from flair `Sentence`s or plain strings (AdaptNLP's base result)."""

    def __init__(self, sentences: Sequence[Any]) -> None:
        self._sentences = list(sentences)

    @property
    def inputs(self) -> list[str]:
        return [s if isinstance(s, str) else s.to_original_text() for s in self._sentences]

    @property
    def tokenized_inputs(self) -> list[str]:
        return [" ".join(s.split()) if isinstance(s, str) else s.to_tokenized_string() for s in self._sentences]
