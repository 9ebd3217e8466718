"""`TaskDatasets`: Hugging Face train/valid splits plus a tokenizer and a batched tokenize function.

`datasets` and `transformers` are imported when a dataset is built; fastai only when `dataloaders()` is called.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from .errors import EmptyDatasetError, MissingColumnError

logger = logging.getLogger(__name__)

__all__ = [
    "TaskDatasets",
    "random_split",
    "train_valid_splits",
    "dataframe_splits",
    "read_text_folder",
    "check_columns",
    "tokenize_text_columns",
]

DEFAULT_MAX_LENGTH = 512


def check_columns(available: Sequence[str], wanted: Sequence[str | None], what: str = "dataset") -> None:
    """Raise `MissingColumnError` naming the missing columns and listing those that exist."""
    missing = [c for c in wanted if c is not None and c not in available]
    if missing:
        raise MissingColumnError(f"Column(s) {missing} not found in the {what}. Available columns: {list(available)}.")


def random_split(n: int, valid_pct: float = 0.2, seed: int | None = 42) -> tuple[list[int], list[int]]:
    """Seedable random split of `range(n)` into (train indices, valid indices)."""
    import numpy as np

    if not 0 < valid_pct < 1:
        raise ValueError(f"valid_pct/split_pct must be between 0 and 1, got {valid_pct}.")
    perm = np.random.default_rng(seed).permutation(n)
    cut = int(round(n * valid_pct))
    cut = min(max(cut, 1), n - 1) if n > 1 else 0
    return sorted(perm[cut:].tolist()), sorted(perm[:cut].tolist())


def train_valid_splits(
    dataset_or_dict: Any,
    train_split: str = "train",
    valid_split: str = "validation",
    split_pct: float = 0.2,
    seed: int | None = 42,
) -> tuple[Any, Any]:
    """(train, valid) from a `DatasetDict` with named splits, or a `Dataset` split randomly by `split_pct`.

    A `DatasetDict` without `valid_split` is split the same way.
    """
    from datasets import Dataset, DatasetDict

    if isinstance(dataset_or_dict, (DatasetDict, dict)):
        if train_split not in dataset_or_dict:
            raise KeyError(f"No {train_split!r} split; the DatasetDict has {list(dataset_or_dict.keys())}. Pass train_split=...")
        train, valid = dataset_or_dict[train_split], dataset_or_dict.get(valid_split)
    elif isinstance(dataset_or_dict, Dataset):
        train, valid = dataset_or_dict, None
    else:
        raise TypeError(f"Expected a datasets.Dataset or DatasetDict, got {type(dataset_or_dict).__name__}.")
    if len(train) == 0:
        raise EmptyDatasetError("The training split is empty; pass at least one row.")
    if valid is None:
        tr, va = random_split(len(train), split_pct, seed)
        train, valid = train.select(tr), train.select(va)
    return train, valid


def dataframe_splits(
    train_df: Any,
    cols: Sequence[str],
    valid_df: Any = None,
    split_func: Callable[[Any], tuple[Sequence[int], Sequence[int]]] | None = None,
    split_pct: float = 0.2,
    seed: int | None = 42,
) -> tuple[Any, Any]:
    """(train, valid) `datasets.Dataset`s holding `cols` of pandas DataFrames.

    Without `valid_df`, `split_func(train_df)` (row positions) or a seeded `split_pct` split makes one.
    """
    from datasets import Dataset

    check_columns(list(train_df.columns), cols, "training DataFrame")
    if len(train_df) == 0:
        raise EmptyDatasetError("The training DataFrame is empty; pass at least one row.")
    if valid_df is None:
        tr, va = split_func(train_df) if split_func is not None else random_split(len(train_df), split_pct, seed)
        train_df, valid_df = train_df.iloc[list(tr)], train_df.iloc[list(va)]
    check_columns(list(valid_df.columns), cols, "validation DataFrame")
    cols = list(cols)
    return tuple(Dataset.from_pandas(df[cols].reset_index(drop=True), preserve_index=False) for df in (train_df, valid_df))


def read_text_folder(
    path: str | os.PathLike[str],
    get_label: Callable[[Path], Any] | None = None,
    extensions: Sequence[str] = (".txt",),
    encoding: str = "utf-8",
    max_items: int | None = None,
    seed: int | None = 42,
) -> dict[str, list[Any]]:
    """Every file with one of `extensions` under `path`: `{"text": [...]}` plus `"label"` when `get_label` is given.

    `max_items` keeps a seeded random subset of the files (in path order).
    """
    from .errors import DecodeError

    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"Folder {str(root)!r} does not exist.")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in tuple(extensions))
    if not files:
        raise EmptyDatasetError(f"No {list(extensions)} files under {str(root)!r}.")
    if max_items is not None and max_items < len(files):
        import numpy as np

        pick = np.random.default_rng(seed).choice(len(files), size=max_items, replace=False)
        files = [files[i] for i in sorted(pick)]
    texts = []
    for f in files:
        try:
            texts.append(f.read_text(encoding=encoding))
        except UnicodeDecodeError as e:
            raise DecodeError(str(f), encoding, e) from e
    out: dict[str, list[Any]] = {"text": texts}
    if get_label is not None:
        out["label"] = [get_label(f) for f in files]
    return out


def tokenize_text_columns(
    batch: dict[str, list[Any]],
    tokenizer: Any,
    tokenize_kwargs: dict[str, Any],
    text_col: str = "text",
    text_pair_col: str | None = None,
) -> Any:
    """Default tokenize function: `tokenizer(batch[text_col] [, batch[text_pair_col]], **tokenize_kwargs)`."""
    pairs = batch[text_pair_col] if text_pair_col else None
    return tokenizer(batch[text_col], pairs, **tokenize_kwargs)


def token_lengths(dset: Any) -> Any:
    """Number of tokens in each row of a tokenized `datasets.Dataset` (NumPy), read from Arrow without Python lists."""
    import pyarrow.compute as pc

    col = dset.with_format("arrow")[:]["input_ids"]
    return pc.list_value_length(col).to_numpy(zero_copy_only=False)


def _count_rows(dset: Any) -> int:
    return 0 if dset is None else len(dset)


class TaskDatasets:
    """Train and validation `datasets.Dataset` splits, tokenized with batched `.map`.

    Example:
        >>> dsets = TaskDatasets(raw["train"], raw["validation"], tokenizer_name=model_path,
        ...                      tokenize_func=lambda b, tok, kw: tok(b["sentence1"], b["sentence2"], **kw),
        ...                      tokenize_kwargs={"max_length": 64, "padding": True},
        ...                      remove_cols=["idx", "sentence1", "sentence2"])
        >>> dls = dsets.dataloaders(batch_size=8)

    A tokenize function is called as `tokenize_func(batch, tokenizer, tokenize_kwargs)`. Without one,
    the `text` column is tokenized. By default inputs are truncated to the model maximum and left
    unpadded: the collate function pads each batch to its own longest item.

    Splits stay Arrow-backed: file-based datasets (CSV, `load_dataset`) are tokenized into memory-mapped
    cache files, so data larger than memory works; `num_proc` tokenizes in that many processes.
    """

    def __init__(
        self,
        train_dset: Any,
        valid_dset: Any = None,
        tokenizer_name: str | None = None,
        tokenize: bool = True,
        tokenize_func: Callable[..., Any] | None = None,
        tokenize_kwargs: dict[str, Any] | None = None,
        auto_kwargs: dict[str, Any] | None = None,
        remove_cols: str | Sequence[str] | None = None,
        label_keys: Sequence[str] | None = None,
        vocab: Sequence[str] | None = None,
        tokenizer: Any = None,
        multi_label: bool = False,
        num_proc: int | None = None,
    ) -> None:
        if tokenizer is None:
            if tokenizer_name is None:
                raise ValueError("Pass tokenizer_name (a hub name or local model path) or a tokenizer.")
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(tokenizer_name, **dict(auto_kwargs or {}))
        self.tokenizer = tokenizer
        self.tokenizer_name = tokenizer_name or getattr(tokenizer, "name_or_path", None)
        self.label_keys = list(label_keys) if label_keys is not None else ["labels"]
        self.multi_label = multi_label
        self.num_proc = num_proc
        default_max = min(int(getattr(tokenizer, "model_max_length", DEFAULT_MAX_LENGTH)), DEFAULT_MAX_LENGTH)
        self.tokenize_kwargs: dict[str, Any] = {"truncation": True, "max_length": default_max, **dict(tokenize_kwargs or {})}
        self.tokenize_func = tokenize_func or tokenize_text_columns
        if valid_dset is None:
            raise EmptyDatasetError(
                "TaskDatasets needs a validation split (fastai validates every epoch); "
                "split one off with adapt.random_split or datasets' train_test_split."
            )
        self.train = self._prepare(train_dset, "train")
        self.valid = self._prepare(valid_dset, "valid")
        self.vocab = list(vocab) if vocab is not None else self._vocab_from_features()
        if tokenize:
            cols = [remove_cols] if isinstance(remove_cols, str) else list(remove_cols or [])
            self.train = self._tokenize(self.train, cols)
            if self.valid is not None:
                self.valid = self._tokenize(self.valid, cols)

    @property
    def max_length(self) -> int:
        return int(self.tokenize_kwargs.get("max_length") or DEFAULT_MAX_LENGTH)

    def _prepare(self, dset: Any, split: str) -> Any:
        if dset is None or _count_rows(dset) == 0:
            raise EmptyDatasetError(f"The {split} dataset is empty; pass at least one row.")
        if "labels" in self.label_keys and "label" in dset.column_names and "labels" not in dset.column_names:
            dset = dset.rename_column("label", "labels")
        return dset

    def _vocab_from_features(self) -> list[str] | None:
        feat = self.train.features.get(self.label_keys[0]) if self.label_keys else None
        names = getattr(feat, "names", None) or getattr(getattr(feat, "feature", None), "names", None)
        return list(names) if names else None

    def _tokenize(self, dset: Any, remove_cols: list[str]) -> Any:
        fn = partial(_call_tokenize, func=self.tokenize_func, tokenizer=self.tokenizer, tokenize_kwargs=self.tokenize_kwargs)
        check_columns(dset.column_names, remove_cols, "dataset (remove_cols)")
        return dset.map(fn, batched=True, remove_columns=remove_cols or None, num_proc=self.num_proc, desc="Tokenizing")

    def model_columns(self, dset: Any) -> list[str]:
        """Columns the model and loss need: the tokenizer's model inputs plus the label keys."""
        keep = [c for c in self.tokenizer.model_input_names if c in dset.column_names]
        return keep + [k for k in self.label_keys if k in dset.column_names]

    def default_collate(self) -> Any:
        """The collate function used when `dataloaders()` gets none: pads each batch to its longest item."""
        from transformers import DataCollatorWithPadding

        return DataCollatorWithPadding(self.tokenizer)

    def rows(self, ds_idx: int, idxs: Sequence[int]) -> Any:
        """Rows `idxs` of split `ds_idx` (0 train, 1 valid), all columns."""
        return (self.train if ds_idx == 0 else self.valid).select(list(idxs))

    def label_text(self, y: Any) -> str:
        """A label id (or multi-hot list) as label names."""
        vocab = self.vocab
        if isinstance(y, list):
            return ", ".join(vocab[i] if vocab else str(i) for i, v in enumerate(y) if v >= 0.5)
        if isinstance(y, int) and vocab and 0 <= y < len(vocab):
            return vocab[y]
        return str(y)

    def row_view(self, row: dict[str, Any], raw: bool = False) -> dict[str, Any]:
        """How `show_batch` shows one row: decoded text and label names, or token ids and length if `raw`."""
        ids = row["input_ids"]
        if raw:
            view: dict[str, Any] = {"input_ids": str(ids[:12])[:-1] + (", ...]" if len(ids) > 12 else "]"), "n_tokens": len(ids)}
        else:
            view = {"text": self.tokenizer.decode(ids, skip_special_tokens=True)}
        for key in self.label_keys:
            if key in row:
                view[key] = row[key] if raw else self.label_text(row[key])
        return view

    def dataloaders(
        self,
        batch_size: int = 8,
        shuffle_train: bool = True,
        collate_fn: Callable[..., Any] | None = None,
        group_by_length: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Build `AdaptiveDataLoaders` (a fastai `DataLoaders`) that pad each batch dynamically.

        `group_by_length=True` puts training texts of similar length in the same batch (order still random):
        faster on mixed-length data.
        """
        from .engine import AdaptiveDataLoaders

        return AdaptiveDataLoaders.from_task_datasets(
            self,
            batch_size=batch_size,
            shuffle_train=shuffle_train,
            collate_fn=collate_fn,
            group_by_length=group_by_length,
            **kwargs,
        )

    def __repr__(self) -> str:
        n_valid = _count_rows(self.valid)
        return f"{type(self).__name__}(train={len(self.train)}, valid={n_valid}, labels={self.vocab})"


def _call_tokenize(batch: dict[str, list[Any]], func: Callable[..., Any], tokenizer: Any, tokenize_kwargs: dict[str, Any]) -> Any:
    return func(batch, tokenizer, tokenize_kwargs)
