"""Sequence classification: datasets, tuner, shared prediction path and `EasySequenceClassifier`.

Single-label (softmax, cross-entropy) and multi-label (sigmoid, BCE, tuned threshold) models.
Importing this module is cheap: datasets, transformers, fastai and flair are imported when used.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from ..data import (
    TaskDatasets,
    check_columns,
    dataframe_splits,
    read_text_folder,
    token_lengths,
    tokenize_text_columns,
    train_valid_splits,
)
from ..enums import DetailLevel, LongText
from ..errors import (
    EmptyDatasetError,
    InvalidInputError,
    NumClassesError,
    UnknownLabelError,
)
from ..inference import EasyBase, encode, forward_logits, model_max_length, normalize_texts, resolve_max_length, softmax
from ..results import ClassificationResult, ClassificationResults
from ..tuner import Tuner

logger = logging.getLogger(__name__)

TASK = "sequence_classification"

__all__ = [
    "SequenceClassificationDatasets",
    "SequenceClassificationTuner",
    "EasySequenceClassifier",
    "HFClassifier",
    "FlairClassifier",
    "parent_label",
    "best_threshold",
    "classification_metrics",
]


# ---------------------------------------------------------------------------------------------------
# labels
# ---------------------------------------------------------------------------------------------------
def parent_label(path: str | os.PathLike[str]) -> str:
    """Label a file by the name of the folder it sits in."""
    return Path(path).parent.name


def _sorted_vocab(values: set[Any]) -> list[str]:
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return [str(v) for v in sorted(values)]
    return sorted(str(v) for v in values)


def _split_labels(value: Any, delim: str) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [s for s in str(value).split(delim) if s] if value is not None else []


def _label_values(dset: Any, label_col: str, multi: bool, delim: str) -> set[str] | set[Any]:
    """Every distinct label in a split (multi-label: every distinct single label)."""
    if not multi:
        return set(dset.unique(label_col))
    seen: set[str] = set()
    for batch in dset.select_columns([label_col]).iter(batch_size=4096):
        for v in batch[label_col]:
            seen.update(_split_labels(v, delim))
    return seen


def _ids_to_names(batch: dict[str, list[Any]], indices: list[int], label_col: str, names: list[str]) -> dict[str, list[str]]:
    for row, i in zip(indices, batch[label_col], strict=True):
        if i is None or not 0 <= i < len(names):
            raise InvalidInputError(
                f"Row {row} has label id {i!r}, not one of the {len(names)} classes (-1 marks unlabelled rows)."
            )
    return {label_col: [names[i] for i in batch[label_col]]}


def _with_string(features: Any, col: str) -> Any:
    from datasets import Value

    out = features.copy()
    out[col] = Value("string")
    return out


def _encode_labels(
    batch: dict[str, list[Any]],
    indices: list[int],
    text_cols: list[str],
    label_col: str,
    index: dict[str, int],
    multi: bool,
    delim: str,
    split: str,
) -> dict[str, list[Any]]:
    for col in text_cols:
        for i, t in zip(indices, batch[col], strict=True):
            if not isinstance(t, str) or not t.strip():
                raise InvalidInputError(f"Row {i} of the {split} split has an empty or non-string {col!r}: {t!r:.60}.")
    if multi:
        out = []
        for labs in batch[label_col]:
            hot = [0.0] * len(index)
            for lab in _split_labels(labs, delim):
                hot[index[lab]] = 1.0
            out.append(hot)
        return {"labels": out}
    for i, v in zip(indices, batch[label_col], strict=True):
        if v is None:
            raise InvalidInputError(f"Row {i} of the {split} split has no label ({label_col!r} is None).")
    return {"labels": [index[str(v)] for v in batch[label_col]]}


# ---------------------------------------------------------------------------------------------------
# datasets
# ---------------------------------------------------------------------------------------------------
class SequenceClassificationDatasets(TaskDatasets):
    """Text classification splits with a sorted, stable label vocabulary.

    Example:
        >>> dsets = SequenceClassificationDatasets.from_folders(bbc_dir, parent_label, model_path, max_items=400)
        >>> dls = dsets.dataloaders(batch_size=16)
        >>> dls.show_batch()
    """

    text_col: str = "text"
    text_pair_col: str | None = None
    label_col: str | None = None
    label_delim: str = " "

    @classmethod
    def from_hf(
        cls,
        dataset_or_dict: Any,
        text_col: str,
        label_col: str,
        tokenizer_name: str,
        train_split: str = "train",
        valid_split: str = "validation",
        text_pair_col: str | None = None,
        is_multicategory: bool = False,
        label_delim: str = " ",
        split_pct: float = 0.2,
        seed: int | None = 42,
        tokenize: bool = True,
        tokenize_kwargs: dict[str, Any] | None = None,
        auto_kwargs: dict[str, Any] | None = None,
        num_proc: int | None = None,
    ) -> SequenceClassificationDatasets:
        """From a `datasets.Dataset` (split randomly by `split_pct`) or a `DatasetDict` with named splits.

        Arrow-backed datasets stay memory-mapped; `num_proc` tokenizes in parallel processes.
        """
        train, valid = train_valid_splits(dataset_or_dict, train_split, valid_split, split_pct, seed)
        return cls._build(
            train,
            valid,
            text_col,
            label_col,
            tokenizer_name,
            text_pair_col,
            is_multicategory,
            label_delim,
            tokenize,
            tokenize_kwargs,
            auto_kwargs,
            num_proc=num_proc,
        )

    @classmethod
    def from_dfs(
        cls,
        train_df: Any,
        text_col: str,
        label_col: str,
        tokenizer_name: str,
        tokenize: bool = True,
        is_multicategory: bool = False,
        label_delim: str = " ",
        valid_df: Any = None,
        split_func: Callable[[Any], tuple[Sequence[int], Sequence[int]]] | None = None,
        split_pct: float = 0.2,
        tokenize_kwargs: dict[str, Any] | None = None,
        auto_kwargs: dict[str, Any] | None = None,
        text_pair_col: str | None = None,
        seed: int | None = 42,
    ) -> SequenceClassificationDatasets:
        """From pandas DataFrames; without `valid_df`, `split_func(df)` or a seeded `split_pct` split is used."""
        cols = [c for c in (text_col, text_pair_col, label_col) if c]
        train, valid = dataframe_splits(train_df, cols, valid_df, split_func, split_pct, seed)
        return cls._build(
            train,
            valid,
            text_col,
            label_col,
            tokenizer_name,
            text_pair_col,
            is_multicategory,
            label_delim,
            tokenize,
            tokenize_kwargs,
            auto_kwargs,
        )

    @classmethod
    def from_csvs(
        cls,
        train_csv: str | os.PathLike[str],
        text_col: str,
        label_col: str,
        tokenizer_name: str,
        tokenize: bool = True,
        is_multicategory: bool = False,
        label_delim: str = " ",
        valid_csv: str | os.PathLike[str] | None = None,
        split_pct: float = 0.2,
        tokenize_kwargs: dict[str, Any] | None = None,
        auto_kwargs: dict[str, Any] | None = None,
        text_pair_col: str | None = None,
        seed: int | None = 42,
        num_proc: int | None = None,
        **kwargs: Any,
    ) -> SequenceClassificationDatasets:
        """From CSV files read by `datasets` (Arrow, memory-mapped, cached), so files larger than memory work.

        `num_proc` tokenizes in parallel processes; `**kwargs` go to the CSV reader (e.g. `encoding`).
        """
        from datasets import load_dataset

        files = {"train": str(train_csv)}
        if valid_csv is not None:
            files["validation"] = str(valid_csv)
        for f in files.values():
            if not Path(f).is_file():
                raise FileNotFoundError(f"CSV file {f!r} does not exist.")
        dd = load_dataset("csv", data_files=files, **kwargs)
        return cls.from_hf(
            dd,
            text_col,
            label_col,
            tokenizer_name,
            text_pair_col=text_pair_col,
            is_multicategory=is_multicategory,
            label_delim=label_delim,
            split_pct=split_pct,
            seed=seed,
            tokenize=tokenize,
            tokenize_kwargs=tokenize_kwargs,
            auto_kwargs=auto_kwargs,
            num_proc=num_proc,
        )

    @classmethod
    def from_folders(
        cls,
        train_path: str | os.PathLike[str],
        get_label: Callable[[Path], Any] = parent_label,
        tokenizer_name: str | None = None,
        valid_path: str | os.PathLike[str] | None = None,
        tokenize: bool = True,
        is_multicategory: bool = False,
        label_delim: str = " ",
        split_pct: float = 0.2,
        extensions: Sequence[str] = (".txt",),
        encoding: str = "utf-8",
        max_items: int | None = None,
        seed: int | None = 42,
        tokenize_kwargs: dict[str, Any] | None = None,
        auto_kwargs: dict[str, Any] | None = None,
    ) -> SequenceClassificationDatasets:
        """One text file per item; `get_label(path)` names its label (default: the parent folder).

        `max_items` takes a seeded random subset of the files, handy for quick runs.
        """
        from datasets import Dataset

        if tokenizer_name is None:
            raise ValueError("Pass tokenizer_name (a hub name or a local model path).")
        train = Dataset.from_dict(read_text_folder(train_path, get_label, extensions, encoding, max_items, seed))
        valid = None
        if valid_path is not None:
            valid = Dataset.from_dict(read_text_folder(valid_path, get_label, extensions, encoding, None, seed))
        return cls.from_hf(
            {"train": train, **({"validation": valid} if valid is not None else {})},
            "text",
            "label",
            tokenizer_name,
            is_multicategory=is_multicategory,
            label_delim=label_delim,
            split_pct=split_pct,
            seed=seed,
            tokenize=tokenize,
            tokenize_kwargs=tokenize_kwargs,
            auto_kwargs=auto_kwargs,
        )

    @classmethod
    def _build(
        cls,
        train: Any,
        valid: Any,
        text_col: str,
        label_col: str,
        tokenizer_name: str,
        text_pair_col: str | None,
        multi: bool,
        delim: str,
        tokenize: bool,
        tokenize_kwargs: dict[str, Any] | None,
        auto_kwargs: dict[str, Any] | None,
        num_proc: int | None = None,
    ) -> SequenceClassificationDatasets:
        for split, d in (("train", train), ("validation", valid)):
            check_columns(d.column_names, [text_col, text_pair_col, label_col], f"{split} split")
            if len(d) == 0:
                raise EmptyDatasetError(f"The {split} split is empty; pass at least one row.")
        names = getattr(train.features[label_col], "names", None)
        vocab = list(names) if names and not multi else _sorted_vocab(_label_values(train, label_col, multi, delim))
        if names and not multi:  # ClassLabel: keep the dataset's own id order, work with names from here on
            to_names = partial(_ids_to_names, label_col=label_col, names=list(names))
            train, valid = (
                d.map(to_names, batched=True, with_indices=True, features=_with_string(d.features, label_col))
                for d in (train, valid)
            )
        unknown = {str(v) for v in _label_values(valid, label_col, multi, delim)} - set(vocab)
        if unknown:
            raise UnknownLabelError(
                f"Validation labels {sorted(unknown)} never occur in the training split (training labels: {vocab}). "
                "Move such rows into training or drop them."
            )
        index = {name: i for i, name in enumerate(vocab)}
        text_cols = [c for c in (text_col, text_pair_col) if c]
        encoded = [
            d.map(
                partial(
                    _encode_labels, text_cols=text_cols, label_col=label_col, index=index, multi=multi, delim=delim, split=split
                ),
                batched=True,
                with_indices=True,
                remove_columns=[c for c in d.column_names if c not in text_cols],
                num_proc=num_proc,
                desc="Encoding labels",
            )
            for split, d in (("train", train), ("validation", valid))
        ]
        dsets = cls(
            encoded[0],
            encoded[1],
            tokenizer_name=tokenizer_name,
            tokenize=tokenize,
            tokenize_func=partial(tokenize_text_columns, text_col=text_col, text_pair_col=text_pair_col),
            tokenize_kwargs=tokenize_kwargs,
            auto_kwargs=auto_kwargs,
            vocab=vocab,
            multi_label=multi,
            num_proc=num_proc,
        )
        dsets.text_col, dsets.text_pair_col, dsets.label_col, dsets.label_delim = text_col, text_pair_col, label_col, delim
        dsets._log_truncation()
        return dsets

    def _log_truncation(self) -> None:
        if "input_ids" not in self.train.column_names:
            return
        lengths = token_lengths(self.train)  # from Arrow: no Python copy of the token ids
        hit = int((lengths >= self.max_length).sum())
        if hit:
            logger.info("%d of %d training texts reach max_length=%d and were truncated", hit, len(lengths), self.max_length)


# ---------------------------------------------------------------------------------------------------
# shared prediction path
# ---------------------------------------------------------------------------------------------------
def _sigmoid(x: Any) -> Any:
    import numpy as np

    return 1.0 / (1.0 + np.exp(-x))


def _check_class_names(class_names: Sequence[str] | None, n: int) -> list[str] | None:
    if class_names is None:
        return None
    if len(class_names) != n:
        raise NumClassesError(f"class_names has {len(class_names)} names but the model has {n} classes.")
    return [str(c) for c in class_names]


def _decide(probs: Any, classes: list[str], multi_label: bool, threshold: float) -> str | list[str]:
    if multi_label:
        return [c for c, p in zip(classes, probs, strict=True) if p >= threshold]
    return classes[int(probs.argmax())]


@dataclass
class HFClassifier:
    """A transformers sequence classifier with its labels and threshold; `predict` is the one prediction path."""

    model: Any
    tokenizer: Any
    classes: list[str]
    multi_label: bool = False
    threshold: float = 0.5
    max_length: int | None = None

    @classmethod
    def from_model(cls, model: Any, tokenizer: Any, manifest: dict[str, Any] | None = None) -> HFClassifier:
        """Read labels, problem type and threshold from the model config (and manifest)."""
        cfg = model.config
        id2label = {int(k): v for k, v in (cfg.id2label or {}).items()}
        classes = [str(id2label.get(i, f"LABEL_{i}")) for i in range(cfg.num_labels)]
        manifest = manifest or {}
        threshold = getattr(cfg, "threshold", None)
        threshold = manifest.get("threshold") if threshold is None else threshold
        threshold = 0.5 if threshold is None else threshold
        return cls(
            model,
            tokenizer,
            classes,
            multi_label=cfg.problem_type == "multi_label_classification",
            threshold=float(threshold),
            max_length=manifest.get("max_length"),
        )

    def predict(
        self,
        texts: Sequence[Any],
        batch_size: int = 32,
        class_names: Sequence[str] | None = None,
        long_text: LongText | str = LongText.Truncate,
        max_length: int | None = None,
        stride: int | None = None,
        threshold: float | None = None,
    ) -> ClassificationResults:
        """Classify validated texts: encode (truncate or window), length-sorted batches, average window logits."""
        import numpy as np

        classes = _check_class_names(class_names, len(self.classes)) or self.classes
        if threshold is not None and not (isinstance(threshold, (int, float)) and 0 <= threshold <= 1):
            raise InvalidInputError(f"threshold must be a number in [0, 1], got {threshold!r}.")
        max_len = resolve_max_length(max_length, self.max_length, model_max_length(self.model, self.tokenizer))
        enc = encode(self.tokenizer, texts, max_len, long_text, stride)
        window_logits = forward_logits(self.model, self.tokenizer, enc, batch_size)
        sums = np.zeros((len(texts), len(classes)), dtype=np.float64)
        for sid, lg in zip(enc.sample_ids, window_logits, strict=True):
            sums[sid] += lg
        counts = np.bincount(enc.sample_ids, minlength=len(texts))[:, None]
        logits = sums / counts
        probs = _sigmoid(logits) if self.multi_label else softmax(logits)
        thr = self.threshold if threshold is None else float(threshold)
        items = [
            ClassificationResult(
                text=t,
                prediction=_decide(p, classes, self.multi_label, thr),
                probs=[float(x) for x in p],
                logits=[float(x) for x in lg],
                windows=int(c),
                truncated=bool(n > c),
            )
            for t, p, lg, c, n in zip(texts, probs, logits, counts[:, 0], enc.n_windows, strict=True)
        ]
        return ClassificationResults(items, classes, self.multi_label, thr if self.multi_label else None)


@dataclass
class FlairClassifier:
    """A flair `TextClassifier` behind the same `predict` interface as `HFClassifier`."""

    model: Any

    @property
    def classes(self) -> list[str]:
        return [str(c) for c in self.model.label_dictionary.get_items() if c != "<unk>"]

    def predict(
        self,
        texts: Sequence[Any],
        batch_size: int = 32,
        class_names: Sequence[str] | None = None,
        threshold: float | None = None,
        **_: Any,
    ) -> ClassificationResults:
        """Classify with flair (which sorts by length itself); probabilities for every class."""
        from flair.data import Sentence

        if any(isinstance(t, tuple) for t in texts):
            raise InvalidInputError("A flair TextClassifier takes single texts, not (text, text_pair) pairs.")
        classes = self.classes
        names = _check_class_names(class_names, len(classes)) or classes
        multi = bool(getattr(self.model, "multi_label", False))
        thr = float(threshold if threshold is not None else getattr(self.model, "multi_label_threshold", 0.5) if multi else 0.5)
        sentences = [Sentence(t) for t in texts]
        self.model.predict(sentences, mini_batch_size=batch_size, return_probabilities_for_all_classes=True, verbose=False)
        items = []
        for t, s in zip(texts, sentences, strict=True):
            scores = {lab.value: float(lab.score) for lab in s.get_labels(self.model.label_type)}
            probs = [scores.get(c, 0.0) for c in classes]
            pred: str | list[str] = (
                [n for n, p in zip(names, probs, strict=True) if p >= thr]
                if multi
                else names[max(range(len(probs)), key=probs.__getitem__)]
            )
            items.append(ClassificationResult(text=t, prediction=pred, probs=probs, logits=None))
        return ClassificationResults(items, names, multi, thr if multi else None)


# ---------------------------------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------------------------------
def best_threshold(probs: Any, targets: Any, average: str = "micro", grid: Sequence[float] | None = None) -> float:
    """The decision threshold in `grid` (default 0.01..0.99) that maximises F1 (`average`) on multi-hot targets."""
    import numpy as np
    from sklearn.metrics import f1_score

    p, y = np.asarray(probs, dtype=float), np.asarray(targets).astype(int)
    candidates = np.round(np.arange(0.01, 1.0, 0.01), 2) if grid is None else np.asarray(grid, dtype=float)
    scores = [f1_score(y, (p >= t).astype(int), average=average, zero_division=0) for t in candidates]
    return float(candidates[int(np.argmax(scores))])


def classification_metrics(
    probs: Any, targets: Any, classes: Sequence[str], multi_label: bool, threshold: float = 0.5
) -> dict[str, Any]:
    """Accuracy, macro/micro F1 and a confusion matrix (per-class 2x2 matrices for multi-label), JSON-safe."""
    import numpy as np
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, multilabel_confusion_matrix

    p = np.asarray(probs, dtype=float)
    if multi_label:
        y = np.asarray(targets).astype(int)
        pred = (p >= threshold).astype(int)
        cm = multilabel_confusion_matrix(y, pred).tolist()
        acc = float((pred == y).mean())
    else:
        y = np.asarray(targets).astype(int)
        pred = p.argmax(axis=1)
        cm = confusion_matrix(y, pred, labels=list(range(len(classes)))).tolist()
        acc = float(accuracy_score(y, pred))
    return {
        "n": int(len(y)),
        "accuracy": acc,
        "f1_macro": float(f1_score(y, pred, average="macro", zero_division=0)),
        "f1_micro": float(f1_score(y, pred, average="micro", zero_division=0)),
        "labels": list(classes),
        "confusion_matrix": cm,
        **({"threshold": float(threshold)} if multi_label else {}),
    }


# ---------------------------------------------------------------------------------------------------
# tuner
# ---------------------------------------------------------------------------------------------------
def _elementwise_accuracy(y_true: Any, y_pred: Any) -> float:
    """Share of correct (sample, label) decisions: multi-label accuracy, as fastai's `accuracy_multi`."""
    import numpy as np

    return float((np.asarray(y_true) == np.asarray(y_pred)).mean())


def _default_metrics(multi_label: bool, threshold: float) -> list[Any]:
    """Accuracy and macro F1, named like the keys of `evaluate()` so the tables and reports agree."""
    from fastai.metrics import accuracy, skm_to_fastai
    from sklearn.metrics import f1_score

    if multi_label:
        return [
            skm_to_fastai(_elementwise_accuracy, thresh=threshold, flatten=False, name="accuracy"),
            skm_to_fastai(f1_score, thresh=threshold, flatten=False, average="macro", zero_division=0, name="f1_macro"),
        ]
    return [accuracy, skm_to_fastai(f1_score, average="macro", zero_division=0, name="f1_macro")]


def _train_label_ids(dls: Any) -> list[int]:
    dset = dls.train.dataset
    return [int(v) for v in dset["labels"]] if "labels" in dset.column_names else []


class SequenceClassificationTuner(Tuner):
    """Fine-tune a sequence classifier (single- or multi-label) with fastai.

    Example:
        >>> tuner = SequenceClassificationTuner(dls, model_path)
        >>> tuner.tune(2, lr=1e-4, strategy="one_cycle")
        >>> tuner.predict("Shares fell sharply", detail_level="medium")
        >>> tuner.save("models/bbc")
    """

    task = TASK

    def __init__(
        self,
        dls: Any,
        model_name: Any,
        tokenizer: Any = None,
        loss_func: Callable[..., Any] | None = None,
        metrics: Any = None,
        opt_func: Callable[..., Any] | None = None,
        additional_cbs: Any = None,
        expose_fastai_api: bool = False,
        num_classes: int | None = None,
        class_weights: Sequence[float] | str | None = None,
        threshold: float | None = None,
        device: Any = None,
        mixed_precision: str | None = None,
        **learner_kwargs: Any,
    ) -> None:
        self.multi_label = bool(getattr(dls, "multi_label", False))
        self.classes = self._resolve_classes(dls, num_classes)
        self.user_threshold = threshold
        self.threshold = 0.5 if threshold is None else float(threshold)
        self.base_model = str(getattr(model_name, "name_or_path", model_name))
        model = self._load_model(model_name)
        loss_func = loss_func or self._default_loss(dls, class_weights)
        self._default_metrics_used = metrics is None
        metrics = _default_metrics(self.multi_label, self.threshold) if metrics is None else metrics
        super().__init__(
            dls,
            model,
            tokenizer=tokenizer,
            loss_func=loss_func,
            metrics=metrics,
            opt_func=opt_func,
            additional_cbs=additional_cbs,
            expose_fastai_api=expose_fastai_api,
            device=device,
            mixed_precision=mixed_precision,
            **learner_kwargs,
        )

    # -- set-up ------------------------------------------------------------------------------------------
    def _resolve_classes(self, dls: Any, num_classes: int | None) -> list[str]:
        vocab = getattr(dls, "vocab", None)
        if vocab:
            if num_classes is not None and num_classes != len(vocab):
                raise NumClassesError(f"num_classes={num_classes}, but the data has {len(vocab)} classes: {list(vocab)}.")
            return [str(v) for v in vocab]
        ids = set(_train_label_ids(dls)) if not self.multi_label else set()
        seen = max(ids) + 1 if ids else None
        if num_classes is None:
            if seen is None:
                raise NumClassesError("Cannot infer the number of classes from the data; pass num_classes=...")
            num_classes = seen
        if seen is not None and seen > num_classes:
            raise NumClassesError(f"num_classes={num_classes}, but the training labels use ids {sorted(ids)}.")
        return [f"LABEL_{i}" for i in range(num_classes)]

    def _load_model(self, model_name: Any) -> Any:
        return self._pretrained(
            model_name,
            "AutoModelForSequenceClassification",
            problem_type="multi_label_classification" if self.multi_label else "single_label_classification",
        )

    def _default_loss(self, dls: Any, class_weights: Sequence[float] | str | None) -> Any:
        import torch
        from fastai.losses import BCEWithLogitsLossFlat, CrossEntropyLossFlat

        if self.multi_label:
            return BCEWithLogitsLossFlat(thresh=self.threshold)
        weight = None
        if isinstance(class_weights, str):
            if class_weights != "balanced":
                raise ValueError(f"class_weights must be a list of floats or 'balanced', got {class_weights!r}.")
            import numpy as np
            from sklearn.utils.class_weight import compute_class_weight

            ids = np.asarray(_train_label_ids(dls))
            present = np.unique(ids)
            w = np.ones(len(self.classes))
            w[present] = compute_class_weight("balanced", classes=present, y=ids)
            weight = torch.tensor(w, dtype=torch.float32)
        elif class_weights is not None:
            if len(class_weights) != len(self.classes):
                raise NumClassesError(f"class_weights has {len(class_weights)} values for {len(self.classes)} classes.")
            weight = torch.tensor(list(class_weights), dtype=torch.float32)
        return CrossEntropyLossFlat(weight=weight)

    # -- after training: the multi-label threshold ---------------------------------------------------------
    def _after_tune(self) -> None:
        if self.multi_label and self.user_threshold is None and self.dls.valid is not None:
            with self.learn.no_bar():
                probs, targets = self.learn.get_preds(dl=self.dls.valid)
            self.threshold = best_threshold(probs.numpy(), targets.numpy())
            logger.info("tuned multi-label threshold on validation: %.2f", self.threshold)
            self._sync_threshold()

    def _sync_threshold(self) -> None:
        """Make the loss's decoding and the default metrics use the current threshold."""
        if hasattr(self.learn.loss_func, "thresh"):
            self.learn.loss_func.thresh = self.threshold
        if self._default_metrics_used:
            self.learn.metrics = _default_metrics(self.multi_label, self.threshold)

    # -- inference ----------------------------------------------------------------------------------------
    def predictor(self) -> HFClassifier:
        """The shared prediction path over this tuner's model (the same one `EasySequenceClassifier` uses)."""
        dsets = getattr(self.dls, "task_datasets", None)
        return HFClassifier(
            self.model,
            self.tokenizer,
            list(self.classes),
            self.multi_label,
            self.threshold,
            max_length=getattr(dsets, "max_length", None),
        )

    def predict(
        self,
        text: Any,
        bs: int = 64,
        detail_level: DetailLevel | str = DetailLevel.Low,
        class_names: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Predict one text or a list; returns the same JSON-safe dict as `EasySequenceClassifier.tag_text`."""
        level = DetailLevel(detail_level)
        texts, _ = normalize_texts(text)
        return self.predictor().predict(texts, batch_size=bs, class_names=class_names, **kwargs).to_dict(level)

    def evaluate(
        self, data: Any = None, text_col: str | None = None, label_col: str | None = None, bs: int = 64
    ) -> dict[str, Any]:
        """Metrics and a confusion matrix on the validation set (`data=None`) or on a labelled DataFrame/Dataset."""
        import numpy as np

        if data is None:
            with self.learn.no_bar():
                probs, targets = self.learn.get_preds(dl=self.dls.valid)
            return classification_metrics(probs.numpy(), targets.numpy(), self.classes, self.multi_label, self.threshold)
        dsets = getattr(self.dls, "task_datasets", None)
        text_col = text_col or getattr(dsets, "text_col", "text")
        label_col = label_col or getattr(dsets, "label_col", None) or "label"
        columns = list(data.columns if hasattr(data, "columns") else getattr(data, "column_names", []))
        check_columns(columns, [text_col, getattr(dsets, "text_pair_col", None), label_col], "evaluation data")
        pair_col = getattr(dsets, "text_pair_col", None)
        texts = list(data[text_col]) if not pair_col else list(zip(data[text_col], data[pair_col], strict=True))
        labels = list(data[label_col])
        index = {c: i for i, c in enumerate(self.classes)}
        delim = getattr(dsets, "label_delim", " ")
        wanted = {lab for v in labels for lab in (_split_labels(v, delim) if self.multi_label else [str(v)])}
        unknown = wanted - set(index)
        if unknown:
            raise UnknownLabelError(f"Labels {sorted(unknown)} are unknown to the model (labels: {self.classes}).")
        normalize_texts(texts)
        res = self.predictor().predict(texts, batch_size=bs)
        probs = np.asarray([r.probs for r in res.items])
        if self.multi_label:
            targets = np.zeros_like(probs)
            for i, v in enumerate(labels):
                for lab in _split_labels(v, delim):
                    targets[i, index[lab]] = 1
        else:
            targets = np.asarray([index[str(v)] for v in labels])
        return classification_metrics(probs, targets, self.classes, self.multi_label, self.threshold)

    # -- persistence --------------------------------------------------------------------------------------
    def _update_config(self) -> None:
        cfg = self.model.config
        cfg.id2label = dict(enumerate(self.classes))
        cfg.label2id = {c: i for i, c in enumerate(self.classes)}
        cfg.problem_type = "multi_label_classification" if self.multi_label else "single_label_classification"
        cfg.threshold = self.threshold if self.multi_label else None

    def manifest(self) -> dict[str, Any]:
        dsets = getattr(self.dls, "task_datasets", None)
        return {
            "task": TASK,
            "labels": list(self.classes),
            "multi_label": self.multi_label,
            "threshold": self.threshold if self.multi_label else None,
            "problem_type": self.model.config.problem_type,
            "max_length": getattr(dsets, "max_length", None),
            "base_model": self.base_model,
        }


# ---------------------------------------------------------------------------------------------------
# Easy module
# ---------------------------------------------------------------------------------------------------
class EasySequenceClassifier(EasyBase):
    """Classify text with any saved HF sequence classifier (adapt save/export, plain transformers, hub) or flair `.pt`.

    Example:
        >>> clf = EasySequenceClassifier()
        >>> clf.tag_text(["Shares fell sharply", "A late goal won the match"], "models/bbc", detail_level="medium")
    """

    task = TASK
    auto_class = "AutoModelForSequenceClassification"
    hf_head = "ForSequenceClassification"
    flair_class = "TextClassifier"
    hf_predictor = HFClassifier
    flair_predictor = FlairClassifier
    allow_pairs = True

    def tag_text(
        self,
        text: Any,
        model_name_or_path: Any,
        mini_batch_size: int = 32,
        detail_level: DetailLevel | str = DetailLevel.Low,
        class_names: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Classify one string, a `(text, text_pair)` tuple, or a list of either.

        kwargs: `long_text` ('truncate' or 'window'), `max_length`, `stride`, `threshold` (multi-label).
        Returns a JSON-safe dict with lists of length 1 for a single input.
        """
        return super().tag_text(text, model_name_or_path, mini_batch_size, detail_level, class_names=class_names, **kwargs)
