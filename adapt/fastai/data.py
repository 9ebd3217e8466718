"""A fastai `DataBlock` block for every registered task, over the task's own `TaskDatasets`.

`TaskBlock(task, tokenizer, *columns, **options)` is the whole sample (inputs and targets): the `DataBlock`
gives the rows (a DataFrame's rows, or dicts) and their split, and the task's datasets encode them exactly as
`TaskDatasets.from_hf` does for the same rows (labels, tokenization, windows, blocks), so a batch of the
`DataBlock` is the batch `TaskDatasets.dataloaders()` makes: one tokenize and collate path, not two. The
`DataLoaders` carry the tokenizer and the task's datasets, so `show_batch`/`show_results` (registered with
fastai's own dispatch on `TaskBatch`), adapt's `Tuner` and `adapt.fastai.save` work on them.

    dblock = DataBlock(blocks=TaskBlock("classification", tokenizer, "text", "label"), splitter=ColSplitter())
    dls = dblock.dataloaders(df, bs=16)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from fastai.data.block import TransformBlock
from fastai.data.core import Datasets
from fastai.data.load import DataLoader
from fasttransform import Pipeline, Transform
from plum import dispatch

from ..engine import HFBatchCollate, display_table
from ..errors import InvalidDataError, InvalidInputError

__all__ = ["TaskBatch", "TaskBlock", "TaskDL", "TaskRows", "predicted_row"]

IGNORE = -100


def _record(item: Any) -> dict[str, Any]:
    """One DataBlock item as a row of named columns (a DataFrame row, a dict, or a `datasets` row)."""
    if isinstance(item, pd.Series):
        return item.to_dict()
    if isinstance(item, Mapping):
        return dict(item)
    raise InvalidDataError(
        f"TaskBlock reads rows with named columns (a DataFrame's rows, or dicts); got a {type(item).__name__}. Pass the "
        "DataFrame itself to dblock.dataloaders(df), or a list of dicts, and leave get_x out (or make it return a row). "
        "To predict texts with a trained Learner: adapt.fastai.predict(learn, texts).")


def _rows_dataset(records: list[dict[str, Any]]) -> Any:
    from ..data import _frame_dataset

    return _frame_dataset(pd.DataFrame.from_records(records), "DataBlock's rows")


class TaskRows(Transform):
    """The `DataBlock`'s rows, kept as they are, and (set up once on every row, with the `DataBlock`'s split) the
    task's datasets built from them: `task_datasets`."""

    train_setup = False  # set up on every item: the validation rows are encoded by the same datasets

    def __init__(self, task: Any, tokenizer: Any, columns: Sequence[Any], options: dict[str, Any]) -> None:
        super().__init__()
        from ..tasks import get_task

        self.spec = get_task(task) if isinstance(task, str) else task
        self.tokenizer, self.columns, self.options = tokenizer, tuple(columns), dict(options)
        self.task_datasets: Any = None
        self.records: tuple[list[dict[str, Any]], list[dict[str, Any]]] = ([], [])

    def setups(self, items: Any) -> None:
        try:
            splits = list(getattr(items, "splits", None) or [range(len(items)), []])
            rows = [_record(items[i]) for i in range(len(items))]
            self.records = tuple([rows[int(i)] for i in s] for s in (splits[0], splits[1]))  # type: ignore[assignment]
            if not self.records[1]:
                raise InvalidInputError("TaskBlock needs validation rows: give the DataBlock a splitter (RandomSplitter, "
                                        "ColSplitter, ...) that leaves some rows for validation.")
            data = {"train": _rows_dataset(self.records[0]), "validation": _rows_dataset(self.records[1])}
            opts = {"tokenizer": self.tokenizer, **self.options}
            self.task_datasets = self.spec.datasets.from_hf(data, *self.columns, **opts)
        except AttributeError as e:  # fastai skips a setup that raises AttributeError; this one must not be skipped
            raise InvalidDataError(f"TaskBlock could not read the rows: {e}") from e

    def encodes(self, x: Any) -> Any:
        return x

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (`Learner.export`) without the rows: the datasets keep their tokenizer, labels and settings (what
        `adapt.fastai.predict` and `save` read), with empty splits, so an export is not a copy of the data."""
        import copy

        dsets = copy.copy(self.task_datasets)
        if dsets is not None:
            dsets.train, dsets.valid = (d.select([]) for d in (dsets.train, dsets.valid))
        return {**self.__dict__, "records": ([], []), "task_datasets": dsets}

    def encode(self, items: Any) -> Any:
        """Other rows (a DataFrame, a list of dicts), encoded as the validation rows are: the validation split of the
        task's datasets built from the block's training rows and these (a test set with labels, `dls.test_dl(df)`)."""
        records = [_record(r) for _, r in items.iterrows()] if isinstance(items, pd.DataFrame) else [_record(r) for r in items]
        if not self.records[0]:
            raise InvalidInputError("These dataloaders were loaded from an export and hold no training rows to encode new "
                                    "rows alike: predict with adapt.fastai.predict(learn, texts), or build a DataBlock.")
        if not records:
            raise InvalidInputError("No rows to encode: pass at least one.")
        from ..errors import MissingColumnError

        data = {"train": _rows_dataset(self.records[0]), "validation": _rows_dataset(records)}
        try:
            return self.spec.datasets.from_hf(data, *self.columns, **{"tokenizer": self.tokenizer, **self.options}).split(1)
        except MissingColumnError as e:
            raise MissingColumnError(f"{e} A test set is encoded with its targets, as the validation rows are; to predict "
                                     "rows without them use adapt.fastai.predict(learn, texts).") from e


class TaskSplit:
    """One split's rows for a `TaskDL`: a `datasets.Dataset` with fastai's `new_empty` (what `Learner.export` keeps)."""

    def __init__(self, dset: Any) -> None:
        self.dset = dset

    def __len__(self) -> int:
        return len(self.dset)

    def __getitem__(self, i: Any) -> Any:
        return self.dset[i]

    def __getattr__(self, name: str) -> Any:  # the rest of `datasets.Dataset` (`column_names`, `select`, ...)
        if name.startswith("_") or name == "dset":
            raise AttributeError(name)
        return getattr(self.dset, name)

    def new_empty(self) -> TaskSplit:
        return TaskSplit(self.dset.select([]))


def TaskBlock(task: Any, tokenizer: Any, *columns: Any, **options: Any) -> TransformBlock:
    """A `DataBlock` block for `task` (a registry name or alias, or a `TaskSpec`): the task's `columns` (as its
    `from_dfs` takes them, positionally) and keyword `options`; `tokenizer` is a loaded tokenizer or a model name."""
    if isinstance(tokenizer, (str, bytes)) or hasattr(tokenizer, "__fspath__"):
        from ..modelio import load_tokenizer

        tokenizer = load_tokenizer(str(tokenizer), **dict(options.pop("auto_kwargs", None) or {}))
    return TransformBlock(type_tfms=TaskRows(task, tokenizer, columns, options), dl_type=TaskDL)


def _task_rows(dataset: Any) -> TaskRows | None:
    for tl in getattr(dataset, "tls", ()):
        for f in getattr(tl.tfms, "fs", ()):
            if isinstance(f, TaskRows):
                return f
    return None


def _block_split(dataset: Datasets, rows: TaskRows) -> Any:
    """The encoded split a fastai `Datasets` subset holds: the block's own (by `split_idx`), or other rows (a test set
    made by `test_dl`) encoded as the validation rows are."""
    split = int(getattr(dataset, "split_idx", None) or 0)
    given = [_record(dataset.tls[0][i]) for i in range(len(dataset))]
    if len(given) == len(rows.records[split]) and pd.DataFrame.from_records(given).equals(
            pd.DataFrame.from_records(rows.records[split])):
        return rows.task_datasets.split(split)
    return rows.encode(given)


class TaskDL(DataLoader):
    """A fastai `DataLoader` over one split of a task's datasets, padded per batch by the task's collator.

    Like `TaskDatasets.dataloaders()`, it carries `tokenizer`, `vocab`, `label_keys`, `multi_label` and
    `task_datasets`, so adapt's `Tuner`, `show_batch`/`show_results` and `adapt.fastai.save` work on it."""

    def __init__(self, dataset: Any = None, block: TaskRows | None = None, **kwargs: Any) -> None:
        block = block or (_task_rows(dataset) if isinstance(dataset, Datasets) else None)
        if block is None or block.task_datasets is None:
            raise InvalidInputError("TaskDL loads the rows of a DataBlock whose block is a TaskBlock.")
        if isinstance(dataset, Datasets):
            dataset = _block_split(dataset, block)
        elif isinstance(dataset, (pd.DataFrame, list, tuple)):  # rows given to `dls.test_dl`
            dataset = block.encode(dataset)
        for key in ("after_item", "before_batch", "verbose"):  # rows are dicts of lists; the collator makes the batch
            kwargs.pop(key, None)
        if "after_batch" in kwargs and not callable(kwargs["after_batch"]):  # a DataBlock's batch_tfms
            kwargs["after_batch"] = Pipeline(list(kwargs["after_batch"]))
        dataset = dataset if isinstance(dataset, TaskSplit) else TaskSplit(dataset)
        self.block = block
        self._collate = HFBatchCollate(self.task_datasets.default_collate(), self.task_datasets.label_keys)
        self._columns = self.task_datasets.model_columns(dataset)
        self._last_rows: list[dict[str, Any]] = []
        super().__init__(dataset, **kwargs)

    task_datasets = property(lambda self: self.block.task_datasets)
    task_spec = property(lambda self: self.block.spec)
    output_keys = property(lambda self: self.block.spec.tuner.output_keys)  # what `HFCallback` hands to the loss
    tokenizer = property(lambda self: self.task_datasets.tokenizer)
    vocab = property(lambda self: self.task_datasets.vocab)
    label_keys = property(lambda self: self.task_datasets.label_keys)
    multi_label = property(lambda self: bool(getattr(self.task_datasets, "multi_label", False)))
    n_inp = 1

    def create_batch(self, rows: list[dict[str, Any]]) -> tuple[Any, ...]:
        self._last_rows = list(rows)
        return self._collate([{k: row[k] for k in self._columns} for row in rows])

    def new(self, dataset: Any = None, cls: Any = None, **kwargs: Any) -> Any:
        return super().new(dataset, cls, block=self.block, **kwargs)

    # -- showing -------------------------------------------------------------------------------------------
    def _rows_of(self, b: Sequence[Any]) -> list[dict[str, Any]]:
        n = len(b[1]) if len(b) > 1 else len(next(iter(b[0].values())))
        if len(self._last_rows) != n:
            raise InvalidInputError("show_batch/show_results show the batch this dataloader made last: call them without "
                                    "a batch (dls.show_batch(), learn.show_results()), or right after one_batch().")
        return self._last_rows

    def _pre_show_batch(self, b: Any, max_n: int = 9) -> tuple[Any, Any, list[dict[str, Any]]]:
        rows = self._rows_of(b)[:max_n]
        return TaskBatch(self.task_datasets, rows), None, [self.task_datasets.row_view(r) for r in rows]

    def show_batch(self, b: Any = None, max_n: int = 9, ctxs: Any = None, show: bool = True, **kwargs: Any) -> Any:
        """Rows of a batch (a new one unless `b` is given) as the task shows them: decoded text and label names."""
        shown = self._pre_show_batch(self.one_batch() if b is None else b, max_n)
        return show_batch(*shown, ctxs=ctxs, max_n=max_n, **kwargs) if show else shown

    def show_results(self, b: Any, out: Any, max_n: int = 9, ctxs: Any = None, show: bool = True, **kwargs: Any) -> Any:
        """Each row as `show_batch` shows it, with what the model predicted for its targets (`predicted ...`)."""
        x, _, samples = self._pre_show_batch(b, max_n)
        outs = out if isinstance(out, (tuple, list)) else (out,)
        predicted = [self.task_datasets.row_view(predicted_row(r, [o[i] for o in outs], self.label_keys))
                     for i, r in enumerate(x.rows)]
        if not show:
            return x, None, samples, predicted
        return show_results(x, None, samples, predicted, ctxs=ctxs, max_n=max_n, **kwargs)


class TaskBatch:
    """What fastai's `show_batch`/`show_results` dispatch on for a `TaskDL` batch: its rows and their datasets."""

    def __init__(self, task_datasets: Any, rows: list[dict[str, Any]]) -> None:
        self.task_datasets, self.rows = task_datasets, rows


def _prediction(target: Any, out: Any) -> Any:
    """A model output for one row as the row's target would hold it (ids, multi-hot, a value, token ids); `out` is
    raw (logits) or already decoded by the loss (`CrossEntropyLossFlat` gives class ids, BCE a boolean mask)."""
    out = out.detach().cpu()
    if not out.is_floating_point():  # decoded by the loss
        vals = out.tolist()
        if isinstance(target, (list, tuple)):
            if target and isinstance(target[0], float):
                return [float(v) for v in vals]
            return [IGNORE if t == IGNORE else p for t, p in zip(target, vals, strict=False)]
        return int(vals)
    out = out.float()
    if isinstance(target, (list, tuple)):
        if out.dim() == 1:  # multi-label: one score per class
            return [float(v) for v in (out.sigmoid() >= 0.5).float().tolist()]
        ids = out.argmax(-1).tolist()[: len(target)]
        return [IGNORE if t == IGNORE else p for t, p in zip(target, ids, strict=False)]
    if isinstance(target, float) or out.numel() == 1:  # regression
        return float(out.reshape(-1)[0])
    return int(out.argmax(-1))


def predicted_row(row: dict[str, Any], outs: Sequence[Any], label_keys: Sequence[str]) -> dict[str, Any]:
    """`row` with each target (`label_keys`, in the order of the model's outputs `outs`) replaced by the prediction:
    the class, the token tags, the answer start and end, or the next tokens (a causal LM's targets are its inputs)."""
    new = dict(row)
    keys = [k for k in label_keys if k in row] or ["input_ids"]
    for key, out in zip(keys, outs, strict=False):
        if key == "input_ids":  # a causal LM: position t predicts token t+1
            ids = out.detach().argmax(-1).tolist()
            new[key] = [row[key][0], *ids[: len(row[key]) - 1]]
        else:
            new[key] = _prediction(row[key], out)
    return new


@dispatch
def show_batch(x: TaskBatch, y: Any, samples: Any, ctxs: Any = None, max_n: int = 9, **kwargs: Any) -> Any:
    """A table of the batch's rows as the task shows them (decoded text and label names)."""
    df = pd.DataFrame.from_records(list(samples)[:max_n])
    display_table(df)
    return df


@dispatch
def show_results(x: TaskBatch, y: Any, samples: Any, outs: Any, ctxs: Any = None, max_n: int = 9, **kwargs: Any) -> Any:
    """The rows as `show_batch` shows them, then `predicted <column>` for every column the predictions change and the
    targets."""
    targets = set(x.task_datasets.label_keys)
    rows = list(samples)[:max_n]
    preds = list(outs)[:max_n]
    keys = list(preds[0]) if preds else []
    changed = [k for k in keys if k in targets or any(p.get(k) != r.get(k) for p, r in zip(preds, rows, strict=True))]
    changed = changed or [k for k in keys if not k.startswith("n_")]
    shown = [{**r, **{f"predicted {k}": p.get(k) for k in changed}} for r, p in zip(rows, preds, strict=True)]
    df = pd.DataFrame.from_records(shown)
    display_table(df)
    return df

