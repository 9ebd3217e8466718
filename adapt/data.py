"""`TaskDatasets`: Hugging Face train/valid splits plus a tokenizer and a batched tokenize function.

Every task's datasets class gets one set of constructors from here: `from_dfs`, `from_csvs`, `from_jsons`,
`from_hf` and (where the task has a folder form) `from_folders`. Their shared keyword parameters are declared
once (`SHARED_OPTIONS`); a task declares its positional columns and its own keyword options, and builds
itself from a (train, valid) pair of `datasets.Dataset`s in `_from_splits`.
`datasets` and `transformers` are imported when a dataset is built; fastai only when `dataloaders()` is called.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from .errors import (
    DataNotFoundError,
    EmptyDatasetError,
    InvalidChoiceError,
    InvalidDataError,
    InvalidInputError,
    MissingColumnError,
)
from .options import Option, check_options, defaults
from .utils import datasets_bars
from .utils import token_lengths  # noqa: F401 - importable from here, as before

logger = logging.getLogger(__name__)

__all__ = [
    "SHARED_OPTIONS",
    "LoadOptions",
    "TaskDatasets",
    "check_columns",
    "dataframe_splits",
    "random_split",
    "read_text_folder",
    "tokenize_text_columns",
    "train_valid_splits",
]

DEFAULT_MAX_LENGTH = 512
SplitFunc = Callable[[Any], tuple[Sequence[int], Sequence[int]]]
D = TypeVar("D", bound="TaskDatasets")

def _shared(kind: Any, default: Any, meaning: str, example: Any = None, nullable: bool = False) -> Any:
    """A `LoadOptions` field with what its `Option` says (type, help, example)."""
    return field(default=default, metadata={"kind": kind, "help": meaning, "example": example, "nullable": nullable})


@dataclass(frozen=True)
class LoadOptions:
    """The constructor parameters every task's datasets share, declared once: `SHARED_OPTIONS` are their `Option`s,
    as `TaskDatasets._bind` checks them and the CLI's `--option` and `adapt tasks` show them."""

    split_pct: float = _shared(float, 0.2, "validation share when no validation data is given", 0.2)
    split_func: SplitFunc | None = _shared(Callable, None, "split_func(items) -> (train_indices, valid_indices), instead of "
                                           "split_pct")
    seed: int | None = _shared(int, 42, "seed of the random split (None: a new one each run)", 0, nullable=True)
    train_split: str = _shared(str, "train", "the training split of a DatasetDict", "train")
    valid_split: str = _shared(str, "validation", "the validation split of a DatasetDict", "validation")
    max_length: int | None = _shared(int, None, "tokens kept per item (the task's window, block or source length)", 64)
    tokenize_kwargs: dict[str, Any] | None = _shared(dict, None, "extra keyword arguments of the tokenizer call", {})
    auto_kwargs: dict[str, Any] | None = _shared(dict, None, "keyword arguments of AutoTokenizer.from_pretrained "
                                                 "(revision, ...)", {})
    num_proc: int | None = _shared(int, None, "tokenize in this many processes", 1)
    cache_dir: str | os.PathLike[str] | None = _shared((str, os.PathLike), None, "cache folder for files read by datasets")
    tokenizer: Any = _shared(object, None, "a loaded tokenizer, instead of loading tokenizer_name")

    def build_kwargs(self) -> dict[str, Any]:
        """What every task's `__init__` takes from the shared parameters."""
        return {
            "tokenize_kwargs": self.tokenize_kwargs,
            "auto_kwargs": self.auto_kwargs,
            "num_proc": self.num_proc,
            "tokenizer": self.tokenizer,
        }


SHARED_OPTIONS = tuple(Option(f.name, f.metadata["kind"], f.default, f.metadata["help"], f.metadata["example"],
                              nullable=f.metadata["nullable"]) for f in fields(LoadOptions))


def check_columns(available: Sequence[str], wanted: Sequence[str | None], what: str = "dataset") -> None:
    """Raise `MissingColumnError` naming the missing columns, the closest existing one, and those that exist."""
    from .errors import closest

    missing = [c for c in wanted if c is not None and c not in available]
    if missing:
        guess = closest(missing[0], available)
        hint = f" Did you mean {guess!r}?" if guess else ""
        raise MissingColumnError(f"Column(s) {missing} not found in the {what}.{hint} Available columns: {list(available)}.")


def random_split(n: int, valid_pct: float = 0.2, seed: int | None = 42) -> tuple[list[int], list[int]]:
    """Seedable random split of `range(n)` into (train indices, valid indices)."""
    import numpy as np

    if isinstance(valid_pct, bool) or not isinstance(valid_pct, (int, float)) or not 0 < valid_pct < 1:
        raise InvalidInputError(f"valid_pct/split_pct must be between 0 and 1, got {valid_pct!r}.")
    perm = np.random.default_rng(seed).permutation(n)
    cut = round(n * valid_pct)
    cut = min(max(cut, 1), n - 1) if n > 1 else 0
    return sorted(perm[cut:].tolist()), sorted(perm[:cut].tolist())


def train_valid_splits(
    dataset_or_dict: Any,
    train_split: str = "train",
    valid_split: str = "validation",
    split_pct: float = 0.2,
    seed: int | None = 42,
    split_func: SplitFunc | None = None,
) -> tuple[Any, Any]:
    """(train, valid) from a `DatasetDict` with named splits, or a `Dataset` split by `split_func` or `split_pct`.

    A `DatasetDict` without `valid_split` is split the same way.
    """
    load = LoadOptions(split_pct=split_pct, split_func=split_func, seed=seed, train_split=train_split,
                       valid_split=valid_split)
    train, valid, _ = _splits_with_rows(dataset_or_dict, load)
    return train, valid


Rows = tuple[list[int] | None, list[int] | None]  # where each split's rows were in the data given (None: in order)


def _splits_with_rows(dataset_or_dict: Any, load: LoadOptions) -> tuple[Any, Any, Rows]:
    """`train_valid_splits` by `load`'s split settings, and the position in the given data of each row of a split
    cut from it."""
    from datasets import Dataset, DatasetDict

    train_split, valid_split = load.train_split, load.valid_split

    if isinstance(dataset_or_dict, (DatasetDict, dict)):
        if train_split not in dataset_or_dict:
            raise MissingColumnError(
                f"No {train_split!r} split; the DatasetDict has {list(dataset_or_dict.keys())}. Pass train_split=..."
            )
        train, valid = dataset_or_dict[train_split], dataset_or_dict.get(valid_split)
    elif isinstance(dataset_or_dict, Dataset):
        train, valid = dataset_or_dict, None
    else:
        raise InvalidInputError(f"Expected a datasets.Dataset or DatasetDict, got {type(dataset_or_dict).__name__}.")
    if len(train) == 0:
        raise EmptyDatasetError("The training split is empty; pass at least one row.")
    if valid is None:  # a split_func gets the rows as a pandas DataFrame, as AdaptNLP and fastai's splitters expect
        items = train.to_pandas() if load.split_func is not None else train
        tr, va = _split_indices(items, len(train), load.split_func, load.split_pct, load.seed)
        return train.select(tr), train.select(va), (list(tr), list(va))
    return train, valid, (None, None)


# ---------------------------------------------------------------------------------------------------
# bad rows, named where the user finds them
# ---------------------------------------------------------------------------------------------------
_ROW_NAMES: contextvars.ContextVar[dict[str, Callable[[int], str]] | None] = contextvars.ContextVar(
    "adapt_row_names", default=None
)
BAD_ROWS_SHOWN = 10


@contextlib.contextmanager
def naming_rows(train: Callable[[int], str] | None, valid: Callable[[int], str] | None) -> Iterator[None]:
    """Inside, `row_name` names row i of a split as the user's data has it (`train(i)`, `valid(i)`)."""
    token = _ROW_NAMES.set({k: f for k, f in (("train", train), ("validation", valid)) if f is not None})
    try:
        yield
    finally:
        _ROW_NAMES.reset(token)


def row_namer(source: str, rows: list[int] | None, first: int = 0, unit: str = "row") -> Callable[[int], str]:
    """Row i of a split as `"{source} {unit} N"`: N is its position in the data given (`rows[i]` when the split
    was cut from it), counted from `first` (a CSV file's first data line is 2)."""
    return lambda i: f"{source} {unit} {(rows[i] if rows is not None else i) + first}"


def index_namer(source: str, labels: Sequence[Any]) -> Callable[[int], str]:
    """Row i of a split as `"{source} index L"`, L the DataFrame index label it had."""
    return lambda i: f"{source} index {labels[i]}"


def row_name(split: str, i: int) -> str:
    """Where row `i` of `split` is in the user's data (`DataFrame index 17`, `'train.csv' line 9`), else its place."""
    namer = (_ROW_NAMES.get() or {}).get("validation" if split.startswith("valid") else "train")
    return namer(i) if namer is not None else f"Row {i} of the {split} split"


def bad_rows(problems: Sequence[tuple[str, int, str]]) -> InvalidDataError:
    """One error naming every bad row (`(split, row, what is wrong)`; up to `BAD_ROWS_SHOWN`, then the count) where
    the user finds it."""
    shown = "; ".join(f"{row_name(split, i)}: {why}" for split, i, why in problems[:BAD_ROWS_SHOWN])
    more = f"; and {len(problems) - BAD_ROWS_SHOWN} more" if len(problems) > BAD_ROWS_SHOWN else ""
    return InvalidDataError(f"{len(problems)} bad row(s): {shown}{more}. Fix or drop them.")


def check_rows(splits: Sequence[tuple[str, Any]], cols: Sequence[str], problem: Callable[..., str | None]) -> None:
    """One `bad_rows` error naming every row of every `(split name, dataset)` for which `problem(*values of cols)`
    gives a reason, before anything is tokenized (a check inside a map stops at the first)."""
    problems = [(split, i, why) for split, d in splits for i, values in enumerate(zip(*(d[c] for c in cols), strict=True))
                if (why := problem(*values)) is not None]
    if problems:
        raise bad_rows(problems)


def _split_indices(
    items: Any, n: int, split_func: SplitFunc | None, split_pct: float, seed: int | None
) -> tuple[list[int], list[int]]:
    if split_func is None:
        return random_split(n, split_pct, seed)
    tr, va = split_func(items)
    return [int(i) for i in tr], [int(i) for i in va]


def dataframe_splits(
    train_df: Any,
    cols: Sequence[str],
    valid_df: Any = None,
    split_func: SplitFunc | None = None,
    split_pct: float = 0.2,
    seed: int | None = 42,
) -> tuple[Any, Any]:
    """(train, valid) `datasets.Dataset`s holding `cols` of pandas DataFrames.

    Without `valid_df`, `split_func(train_df)` (row positions) or a seeded `split_pct` split makes one.
    """
    load = LoadOptions(split_pct=split_pct, split_func=split_func, seed=seed)
    train, valid, _ = _frame_splits(train_df, cols, valid_df, load)
    return train, valid


def _frame_splits(
    train_df: Any, cols: Sequence[str], valid_df: Any, load: LoadOptions
) -> tuple[Any, Any, tuple[list[Any], list[Any]]]:
    """`dataframe_splits` by `load`'s split settings, and the DataFrame index label of each row of each split."""
    split_func, split_pct, seed = load.split_func, load.split_pct, load.seed
    if not hasattr(train_df, "columns") or not hasattr(train_df, "iloc"):
        raise InvalidInputError(f"Expected a pandas DataFrame, got {type(train_df).__name__}; use from_hf for datasets.")
    check_columns(list(train_df.columns), cols, "training DataFrame")
    if len(train_df) == 0:
        raise EmptyDatasetError("The training DataFrame is empty; pass at least one row.")
    if valid_df is None:
        tr, va = _split_indices(train_df, len(train_df), split_func, split_pct, seed)
        train_df, valid_df = train_df.iloc[tr], train_df.iloc[va]
    check_columns(list(valid_df.columns), cols, "validation DataFrame")
    cols = list(cols)
    frames = ((train_df, "training"), (valid_df, "validation"))
    train, valid = (_frame_dataset(df[cols].reset_index(drop=True), name) for df, name in frames)
    return train, valid, (list(train_df.index), list(valid_df.index))


def _frame_dataset(df: Any, name: str) -> Any:
    """`Dataset.from_pandas`, with a column Arrow cannot type (mixed ints and strings, lists and NaN) named."""
    import pyarrow as pa
    from datasets import Dataset

    try:
        return Dataset.from_pandas(df, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        mixed = {c: sorted({type(v).__name__ for v in df[c]}) for c in df.columns}
        col = next((c for c, kinds in mixed.items() if len(kinds) > 1), None)
        what = f"column {col!r} mixes {', '.join(mixed[col])} values" if col else "a column cannot be stored"
        raise InvalidInputError(
            f"The {name} DataFrame: {what} ({e}). Give each column one type (e.g. labels all strings, tags all lists)."
        ) from e


def text_files(
    path: str | os.PathLike[str], extensions: Sequence[str] = (".txt",), max_items: int | None = None, seed: int | None = 42
) -> list[Path]:
    """The files with one of `extensions` under `path` (recursively, in path order); `max_items` keeps a seeded subset."""
    root = Path(path)
    if not root.is_dir():
        raise DataNotFoundError(f"Folder {str(root)!r} does not exist.")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in tuple(extensions))
    if not files:
        raise EmptyDatasetError(f"No {list(extensions)} files under {str(root)!r}.")
    if max_items is not None and max_items < len(files):
        import numpy as np

        pick = np.random.default_rng(seed).choice(len(files), size=max_items, replace=False)
        files = [files[i] for i in sorted(pick)]
    return files


def read_text_files(files: Sequence[Path], get_label: Callable[[Path], Any] | None, encoding: str) -> dict[str, list[Any]]:
    """`{"text": [...]}` of `files`, plus `"label"` from `get_label(path)` when given."""
    from .errors import DecodeError

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
    return read_text_files(text_files(path, extensions, max_items, seed), get_label, encoding)


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


_SHARED_NAMES = frozenset(o.name for o in SHARED_OPTIONS)
_CONSTRUCTORS = ("from_hf", "from_dfs", "from_csvs", "from_jsons", "from_folders")


def _rows_hint(values: Sequence[Any]) -> int:
    """About how many rows the data among `values` holds (tables, `datasets` objects, files at ~100 bytes a row,
    folders at a file a row): what decides whether `datasets`' bars are worth showing."""
    n = 0
    for value in values:
        try:
            n += _rows_of(value)
        except (OSError, TypeError, ValueError):  # a long string, an IterableDataset: no size to go by
            continue
    return n


def _rows_of(value: Any) -> int:
    if isinstance(value, str | os.PathLike):
        path = Path(value)
        if path.is_file():
            return path.stat().st_size // 100
        return sum(1 for _ in path.rglob("*")) if path.is_dir() else 0
    if isinstance(getattr(value, "num_rows", None), dict):  # a DatasetDict
        return sum(value.num_rows.values())
    if hasattr(value, "column_names") or hasattr(value, "columns"):  # a Dataset or a DataFrame
        return len(value)
    return 0


def _quiet_for_small_data(func: Callable[..., Any]) -> Callable[..., Any]:
    """`func` (building a task's datasets) with `datasets`' bars shown only when the data is large."""
    import functools

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with datasets_bars(_rows_hint([*args[1:], *kwargs.values()])):
            return func(*args, **kwargs)

    return wrapper


def _constructor(func: Callable[..., Any], cls: type, name: str) -> Callable[..., Any]:
    """`func` (a `TaskDatasets` constructor) for `cls`, with a signature listing the task's parameters."""
    import functools
    import inspect

    @functools.wraps(func)
    def constructor(klass: Any, *args: Any, **kwargs: Any) -> Any:
        with datasets_bars(_rows_hint([*args, *kwargs.values()])):
            return func(klass, *args, **kwargs)

    own = inspect.signature(func).parameters
    kinds = inspect.Parameter
    positional = getattr(cls, "folder_args" if name == "from_folders" else "columns")
    params = [own["cls"], next(p for p in own.values() if p.kind is kinds.POSITIONAL_OR_KEYWORD and p.name != "cls")]
    params += [kinds(o.name, kinds.POSITIONAL_OR_KEYWORD, default=o.default, annotation=o.type_name()) for o in positional]
    params.append(kinds("tokenizer_name", kinds.POSITIONAL_OR_KEYWORD, default=None, annotation="str | None"))
    params += [p for p in own.values() if p.kind is kinds.KEYWORD_ONLY]
    taken = {p.name for p in params}
    params += [
        kinds(o.name, kinds.KEYWORD_ONLY, default=o.default, annotation=o.type_name())
        for o in (*SHARED_OPTIONS, *getattr(cls, "options", ()))
        if o.name not in taken and o.name not in getattr(cls, "unused_shared", ())
    ]
    if name in ("from_csvs", "from_jsons"):
        params.append(kinds("reader_kwargs", kinds.VAR_KEYWORD))
    constructor.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    return constructor
LOAD_DATASET_KEYS = ("features", "keep_in_memory", "download_mode", "verification_mode", "storage_options")


def _data_files(train: str | os.PathLike[str], valid: str | os.PathLike[str] | None, kind: str) -> dict[str, str]:
    files = {"train": str(train), **({"validation": str(valid)} if valid is not None else {})}
    for f in files.values():
        if not Path(f).is_file():
            raise DataNotFoundError(f"{kind} file {f!r} does not exist.")
    return files


@contextlib.contextmanager
def _reading(files: dict[str, str], encoding: str) -> Iterator[None]:
    """Errors of the `datasets` readers (an empty file, only a header, a ragged row, bad bytes) as adapt errors."""
    from .errors import AdaptError, DecodeError

    try:
        yield
    except AdaptError:
        raise
    except UnicodeDecodeError as e:
        raise DecodeError(", ".join(files.values()), encoding, e) from e
    except Exception as e:  # datasets wraps pandas' and pyarrow's errors in DatasetGenerationError and others
        cause = e.__cause__ or e.__context__ or e
        if isinstance(cause, UnicodeDecodeError):
            raise DecodeError(", ".join(files.values()), encoding, cause) from e
        text = f"{type(cause).__name__}: {cause}"
        if "no data" in text or "No columns to parse" in text or "EmptyDataError" in text:
            raise EmptyDatasetError(f"{', '.join(files.values())} holds no rows ({text}); add data below the header.") from e
        raise InvalidInputError(
            f"Cannot read {', '.join(files.values())} ({text}). Check the file: one header line, the same number of "
            "fields on every line, quoted text, one encoding (pass encoding=...)."
        ) from e


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

    Task subclasses get the constructors `from_dfs`, `from_csvs`, `from_jsons`, `from_hf` and `from_folders`:
    the data, the task's `columns` (positional, in order), `tokenizer_name`, then keyword arguments: the
    shared ones of `SHARED_OPTIONS` and the task's own `options`. Unknown keywords are refused with the list of
    accepted ones.
    """

    # -- what a task declares -------------------------------------------------------------------------------
    columns: ClassVar[tuple[Option, ...]] = ()  # positional column parameters of the table forms
    options: ClassVar[tuple[Option, ...]] = ()  # the task's keyword options
    folder_args: ClassVar[tuple[Option, ...]] = ()  # positional parameters of from_folders before tokenizer_name
    folder_columns: ClassVar[tuple[tuple[str, str], ...]] = ()  # from_folders: (column option, value); () = no folder form
    max_length_option: ClassVar[str | None] = None  # the option `max_length` sets (default: tokenize_kwargs)
    unused_shared: ClassVar[tuple[str, ...]] = ()  # shared keywords this task has no use for (refused, not ignored)
    copy_labels: ClassVar[bool] = False  # rows show `labels` = `input_ids` (language modelling)
    words_pre_split: ClassVar[bool] = False  # inputs arrive as word lists (NER): byte-level BPE marks each word's space

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = dict(cls.__dict__)  # the task's own members (the generated constructors below quiet bars already)
        # each task's constructors show its own columns and options to help(), IDEs and inspect.signature
        for name in _CONSTRUCTORS:
            if name not in cls.__dict__:
                setattr(cls, name, classmethod(_constructor(TaskDatasets.__dict__[name].__func__, cls, name)))
        for name, member in own.items():  # the task's own constructors: bars only for large data
            if name == "__init__":
                cls.__init__ = _quiet_for_small_data(member)  # type: ignore[method-assign]
            elif name.startswith("from_") and isinstance(member, classmethod):
                setattr(cls, name, classmethod(_quiet_for_small_data(member.__func__)))

    @classmethod
    def _from_splits(cls: type[D], train: Any, valid: Any, tokenizer_name: str | None, load: LoadOptions, **options: Any) -> D:
        """Build the task's datasets from (train, valid) `datasets.Dataset`s; `options` are the checked task options."""
        raise InvalidChoiceError(f"{cls.__name__} has no table constructors; build it with {cls.__name__}(train, valid, ...).")

    # -- constructors ---------------------------------------------------------------------------------------
    @classmethod
    def from_hf(cls: type[D], dataset_or_dict: Any, *args: Any, **kwargs: Any) -> D:
        """From a `datasets.Dataset` (split by `split_func` or `split_pct`) or a `DatasetDict` with named splits.

        Arrow-backed datasets stay memory-mapped; `num_proc` tokenizes in parallel processes.
        """
        return cls._from_table(dataset_or_dict, cls._bind(args, kwargs, cls.columns, "from_hf"))

    @classmethod
    def _from_table(
        cls: type[D], data: Any, bound: tuple[str | None, LoadOptions, dict[str, Any]],
        files: dict[str, str] | None = None, first: int = 0, unit: str = "row",
    ) -> D:
        """From a Dataset or DatasetDict; bad rows are named by their place in `files` (from `first`, in `unit`s),
        or in the Dataset given."""
        name, load, opts = bound
        train, valid, (tr, va) = _splits_with_rows(data, load)
        where = {k: repr(Path(f).name) for k, f in (files or {}).items()}
        source = where.get("train", "Dataset")
        valid_source = where.get("validation", source if va is not None else "validation Dataset")
        with naming_rows(row_namer(source, tr, first, unit), row_namer(valid_source, va, first, unit)):
            return cls._from_splits(train, valid, name, load, **opts)

    @classmethod
    def from_dfs(cls: type[D], train_df: Any, *args: Any, valid_df: Any = None, **kwargs: Any) -> D:
        """From pandas DataFrames; without `valid_df`, `split_func(df)` or a seeded `split_pct` split makes one."""
        name, load, opts = cls._bind(args, kwargs, cls.columns, "from_dfs")
        cols = [v for k, v in opts.items() if k.endswith("_col") and isinstance(v, str)]
        train, valid, (tr, va) = _frame_splits(train_df, cols, valid_df, load)
        valid_source = "DataFrame" if valid_df is None else "valid_df"
        with naming_rows(index_namer("DataFrame", tr), index_namer(valid_source, va)):
            return cls._from_splits(train, valid, name, load, **opts)

    @classmethod
    def from_csvs(
        cls: type[D], train_csv: str | os.PathLike[str], *args: Any, valid_csv: str | os.PathLike[str] | None = None,
        encoding: str = "utf-8", **kwargs: Any,
    ) -> D:
        """From CSV files read by `datasets` (Arrow, memory-mapped, cached), so files larger than memory work.

        Keywords of the `datasets` CSV reader (`sep`, `quotechar`, `column_names`, ...) and of `load_dataset`
        (`features`, `keep_in_memory`, ...) are passed on to them; every other keyword is checked before reading.
        """
        from datasets import load_dataset
        from datasets.packaged_modules.csv.csv import CsvConfig

        reader_names = {f for f in CsvConfig.__dataclass_fields__ if f not in ("name", "data_files", "encoding")}
        reader = cls._reader_kwargs(kwargs, reader_names | set(LOAD_DATASET_KEYS))
        bound = cls._bind(args, kwargs, cls.columns, "from_csvs")
        files = _data_files(train_csv, valid_csv, "CSV")
        with _reading(files, encoding):
            dd = load_dataset("csv", data_files=files, encoding=encoding, cache_dir=bound[1].cache_dir, **reader)
        return cls._from_table(dd, bound, files, first=2, unit="line")  # line 1 is the header

    @classmethod
    def _reader_kwargs(cls, kwargs: dict[str, Any], names: set[str]) -> dict[str, Any]:
        """Take out of `kwargs` the keywords a file reader understands and the task does not declare."""
        taken = _SHARED_NAMES | {o.name for o in (*cls.columns, *cls.options)}
        return {k: kwargs.pop(k) for k in list(kwargs) if k in names and k not in taken}

    @classmethod
    def from_jsons(
        cls: type[D], train_json: str | os.PathLike[str], *args: Any, valid_json: str | os.PathLike[str] | None = None,
        encoding: str = "utf-8", **kwargs: Any,
    ) -> D:
        """From JSON Lines files (one object per line) or JSON lists of objects, read by `datasets`.

        `load_dataset` keywords (`features`, `keep_in_memory`, ...) are passed on.
        """
        reader = cls._reader_kwargs(kwargs, set(LOAD_DATASET_KEYS))
        bound = cls._bind(args, kwargs, cls.columns, "from_jsons")
        files = _data_files(train_json, valid_json, "JSON")
        with _reading(files, encoding):
            data = cls._read_jsons(files, encoding, bound[1].cache_dir, reader)
        return cls._from_table(data, bound, files, first=1, unit="record")

    @classmethod
    def _read_jsons(cls, files: dict[str, str], encoding: str, cache_dir: Any, reader: dict[str, Any]) -> Any:
        from datasets import load_dataset

        return load_dataset("json", data_files=files, encoding=encoding, cache_dir=cache_dir, **reader)

    @classmethod
    def from_folders(
        cls: type[D],
        train_path: str | os.PathLike[str],
        *args: Any,
        valid_path: str | os.PathLike[str] | None = None,
        extensions: Sequence[str] = (".txt",),
        encoding: str = "utf-8",
        max_items: int | None = None,
        **kwargs: Any,
    ) -> D:
        """One text file per item, searched recursively; `max_items` takes a seeded random subset of the files.

        Without `valid_path`, `split_func(files)` (a list of paths) or a seeded `split_pct` split makes one.
        """
        from datasets import Dataset

        if not cls.folder_columns:
            raise InvalidChoiceError(f"{cls.__name__} has no folder form; use from_dfs, from_csvs, from_jsons or from_hf.")
        name, load, opts = cls._bind(args, kwargs, cls.folder_args, "from_folders")
        get_label = opts.pop("get_label", None)
        files = text_files(train_path, extensions, max_items, load.seed)
        data = {"train": Dataset.from_dict(read_text_files(files, get_label, encoding))}
        if valid_path is not None:
            data["validation"] = Dataset.from_dict(read_text_files(text_files(valid_path, extensions), get_label, encoding))
        elif load.split_func is not None:
            tr, va = _split_indices(files, len(files), load.split_func, load.split_pct, load.seed)
            data = {"train": data["train"].select(tr), "validation": data["train"].select(va)}
        train, valid = train_valid_splits(data, split_pct=load.split_pct, seed=load.seed)
        return cls._from_splits(train, valid, name, load, **{**opts, **dict(cls.folder_columns)})

    # -- binding ----------------------------------------------------------------------------------------------
    @classmethod
    def _bind(
        cls, args: Sequence[Any], kwargs: dict[str, Any], positional: Sequence[Option], method: str
    ) -> tuple[str | None, LoadOptions, dict[str, Any]]:
        """(tokenizer_name, shared parameters, task options) from a constructor call, every name checked."""
        where = f"{cls.__name__}.{method}"
        names = [o.name for o in positional] + ["tokenizer_name"]
        if len(args) > len(names):
            raise InvalidInputError(
                f"{where} takes {len(names)} positional arguments after the data ({', '.join(names)}), got {len(args)}; "
                "pass the others by keyword."
            )
        given = dict(zip(names, args, strict=False))
        twice = sorted(set(given) & set(kwargs))
        if twice:
            raise InvalidInputError(f"{where} got {twice} both positionally and by keyword.")
        given.update(kwargs)
        cls._normalize_args(given)
        unused = sorted(set(given) & set(cls.unused_shared))
        if unused:
            raise InvalidInputError(f"{where} does not use {unused}; its own options set how it tokenizes.")
        name = given.pop("tokenizer_name", None)
        table = (*SHARED_OPTIONS, *positional, *cls.options)
        checked = check_options(given, table, where, "argument")
        shared = {k: v for k, v in checked.items() if k in _SHARED_NAMES}
        opts = {**defaults((*positional, *cls.options)), **{k: v for k, v in checked.items() if k not in _SHARED_NAMES}}
        load = LoadOptions(**shared)
        if name is None and load.tokenizer is None and opts.get("tokenize", True):
            raise InvalidInputError(f"{where} needs tokenizer_name (a hub name or a local model folder).")
        return name, cls._place_max_length(load, opts, where), opts

    @classmethod
    def _normalize_args(cls, given: dict[str, Any]) -> None:
        """Hook: reinterpret the arguments of a constructor call in place (e.g. an older argument order)."""

    @classmethod
    def _place_max_length(cls, load: LoadOptions, opts: dict[str, Any], where: str) -> LoadOptions:
        """`max_length` sets the task's own length option, or the tokenizer's `max_length`."""
        import dataclasses

        if load.max_length is None:
            return load
        target = cls.max_length_option
        if target is not None:
            if opts.get(target) is not None and opts[target] != load.max_length:
                raise InvalidInputError(f"{where}: pass either max_length or {target}, not both.")
            opts[target] = load.max_length
            return load
        tok = dict(load.tokenize_kwargs or {})
        if tok.get("max_length") not in (None, load.max_length):
            raise InvalidInputError(f"{where}: pass either max_length or tokenize_kwargs['max_length'], not both.")
        return dataclasses.replace(load, tokenize_kwargs={**tok, "max_length": load.max_length})

    @_quiet_for_small_data
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
        if tokenizer is None and tokenizer_name is not None:
            from .modelio import load_tokenizer

            tokenizer = load_tokenizer(tokenizer_name, **dict(auto_kwargs or {}))
        elif tokenizer is None and tokenize:
            raise InvalidInputError(
                "Pass tokenizer_name (a hub name or local model path) or a tokenizer; or tokenize=False, then "
                "set_tokenizer(...) and tokenize()."
            )
        self.tokenizer: Any = self._ready(tokenizer)
        self.tokenizer_name = tokenizer_name or getattr(tokenizer, "name_or_path", None)
        self.label_keys = list(label_keys) if label_keys is not None else ["labels"]
        self.multi_label = multi_label
        self.num_proc = num_proc
        self._given_tokenize_kwargs = dict(tokenize_kwargs or {})
        self.tokenize_kwargs: dict[str, Any] = self._tokenize_kwargs_for(tokenizer)
        self.tokenize_func = tokenize_func or tokenize_text_columns
        self.remove_cols = [remove_cols] if isinstance(remove_cols, str) else list(remove_cols or [])
        if valid_dset is None:
            raise EmptyDatasetError(
                "TaskDatasets needs a validation split (fastai validates every epoch); "
                "split one off with adapt.random_split or datasets' train_test_split."
            )
        self.train = self._prepare(train_dset, "train")
        self.valid = self._prepare(valid_dset, "valid")
        self.vocab = list(vocab) if vocab is not None else self._vocab_from_features()
        if tokenize:
            self.train = self._tokenize(self.train, self.remove_cols)
            self.valid = self._tokenize(self.valid, self.remove_cols)
        if type(self).__init__ is TaskDatasets.__init__:  # a task with its own __init__ publishes at its end
            self._publish()

    def _ready(self, tokenizer: Any) -> Any:
        """The tokenizer as this task uses it: padding with EOS when it has no pad token (decoder-only models), and
        for words that come pre-split, adding the space before each word that byte-level BPE expects (as
        transformers' `run_ner.py` does for RoBERTa and GPT-2); the model is saved with this tokenizer."""
        from .inference import slow_tokenizer_message
        from .modelio import for_split_words, pad_with_eos

        if tokenizer is None:
            return None
        if self.words_pre_split and not getattr(tokenizer, "is_fast", False):  # word ids need the Rust tokenizer
            raise InvalidInputError(slow_tokenizer_message(tokenizer))
        return pad_with_eos(for_split_words(tokenizer) if self.words_pre_split else tokenizer)

    def _tokenize_kwargs_for(self, tokenizer: Any) -> dict[str, Any]:
        """Truncation to the model maximum (at most 512 tokens), then the keywords given."""
        default_max = min(int(getattr(tokenizer, "model_max_length", DEFAULT_MAX_LENGTH)), DEFAULT_MAX_LENGTH)
        return {"truncation": True, "max_length": default_max, **self._given_tokenize_kwargs}

    # -- the rows users see ---------------------------------------------------------------------------------
    def _publish(self) -> None:
        """Show `train[i]`/`valid[i]` as the model's inputs and labels, keys sorted (AdaptNLP's rows).

        The other columns (the text, ids of examples) stay in the data: `dsets.raw.train[i]` has them all.
        """
        if self.tokenizer is None:
            return
        self.train, self.valid = (self._row_view(d) for d in (self.raw.train, self.raw.valid))

    def _row_view(self, dset: Any) -> Any:
        cols = self.model_columns(dset)
        if "input_ids" not in cols:
            return dset
        return dset.with_transform(RowView(sorted(cols), copy_labels=self.copy_labels))

    @property
    def raw(self) -> Any:
        """`raw.train` and `raw.valid`: the splits with every column (text, ids of examples) as stored."""
        from types import SimpleNamespace

        return SimpleNamespace(train=_unformatted(self.train), valid=_unformatted(self.valid))

    def split(self, ds_idx: int | str) -> Any:
        """Split `ds_idx` (0 or "train", 1 or "valid") with every column."""
        return self.raw.train if ds_idx in (0, "train") else self.raw.valid

    # -- AdaptNLP's setters -----------------------------------------------------------------------------------
    def set_tokenizer(self, tokenizer_name: Any, override_existing: bool = False, **auto_kwargs: Any) -> None:
        """Load the tokenizer `tokenizer_name` (a hub name, folder or Hub search result); `tokenize()` then uses it.

        A tokenizer already set is kept (with a warning) unless `override_existing=True`.
        """
        import warnings

        from .hub import model_name
        from .modelio import load_tokenizer

        if self.tokenizer is not None and not override_existing:
            warnings.warn(
                f"Keeping the tokenizer {self.tokenizer_name!r}; pass override_existing=True to use {tokenizer_name!r}.",
                stacklevel=2,
            )
            return
        name = model_name(tokenizer_name)
        self.tokenizer, self.tokenizer_name = self._ready(load_tokenizer(name, **auto_kwargs)), str(name)
        self.tokenize_kwargs = self._tokenize_kwargs_for(self.tokenizer)

    def tokenize(self) -> None:
        """Tokenize the splits with the current tokenizer (after `tokenize=False`, or a new `set_tokenizer`)."""
        if self.tokenizer is None:
            raise InvalidInputError("No tokenizer yet: call set_tokenizer(name) first, then tokenize().")
        if type(self).__init__ is not TaskDatasets.__init__ or "input_ids" in self.raw.train.column_names:
            raise InvalidInputError(
                f"{type(self).__name__} is already tokenized; build it again from the data with the new tokenizer."
            )
        self.train = self._tokenize(self.raw.train, self.remove_cols)
        self.valid = self._tokenize(self.raw.valid, self.remove_cols)
        self._publish()

    def set_classes(self, classes: Sequence[Any]) -> None:
        """Name the label ids: label id `i` is `classes[i]` (the order given; AdaptNLP sorted them)."""
        names = [str(c) for c in classes]
        if len(set(names)) != len(names):
            raise InvalidInputError(f"set_classes got repeated names: {names}.")
        if self.vocab is not None and len(names) != len(self.vocab):
            raise InvalidInputError(f"set_classes got {len(names)} names for {len(self.vocab)} classes ({self.vocab}).")
        self.vocab = names

    @property
    def max_length(self) -> int:
        return int(self.tokenize_kwargs.get("max_length") or DEFAULT_MAX_LENGTH)

    def manifest(self) -> dict[str, Any]:
        """The data settings a saved model keeps in `adapt.json` (inference reads them back)."""
        return {"max_length": self.max_length}

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

    def _map_split(self, dset: Any, fn: Callable[..., Any], what: str, split: str) -> Any:
        """`dset` (one split) mapped in batches by `fn(rows, indices)` into new rows (its columns replaced), in
        `num_proc` processes: how the tasks that window or group their rows tokenize a split."""
        return dset.map(fn, batched=True, with_indices=True, remove_columns=dset.column_names, num_proc=self.num_proc,
                        desc=f"{what} ({split})")

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
        return self.split(ds_idx).select(list(idxs))

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
        """Build `AdaptiveDataLoaders` (a fastai `DataLoaders`) that pad each batch dynamically (`bs=`, fastai's
        and AdaptNLP's spelling, is accepted for `batch_size`).

        `group_by_length=True` puts training texts of similar length in the same batch (order still random):
        faster on mixed-length data.
        """
        from .engine import AdaptiveDataLoaders

        if self.tokenizer is None or "input_ids" not in self.raw.train.column_names:
            raise InvalidInputError("The data is not tokenized yet: call set_tokenizer(name) and tokenize() first.")
        from .options import batch_size_option

        batch_size = batch_size_option(batch_size, 8, kwargs, "batch_size", key="bs")
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


class RowView:
    """A `datasets` transform showing rows as `columns` in this order; `labels` copied from `input_ids` if asked.

    Reading one column that is not shown (`dset["text"]`) still works.
    """

    def __init__(self, columns: Sequence[str], copy_labels: bool = False) -> None:
        self.columns, self.copy_labels = list(columns), copy_labels

    def __call__(self, batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        out = {k: batch[k] for k in self.columns if k in batch}
        if not out:
            return batch
        if self.copy_labels and "labels" not in out and "input_ids" in out:
            out = dict(sorted({**out, "labels": [list(ids) for ids in out["input_ids"]]}.items()))
        return out


def _unformatted(dset: Any) -> Any:
    """`dset` without the row view (a dataset the user formatted otherwise keeps its format)."""
    transform = (getattr(dset, "format", None) or {}).get("format_kwargs", {}).get("transform")
    return dset.with_format(None) if isinstance(transform, RowView) else dset


def _call_tokenize(batch: dict[str, list[Any]], func: Callable[..., Any], tokenizer: Any, tokenize_kwargs: dict[str, Any]) -> Any:
    return func(batch, tokenizer, tokenize_kwargs)
