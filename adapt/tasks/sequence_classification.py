"""Sequence classification: datasets, tuner, shared prediction path and `EasySequenceClassifier`.

Single-label (softmax, cross-entropy) and multi-label (sigmoid, BCE, tuned threshold) models, and regression
(`regression=True`: one output, MSE loss, a number per text).
Importing this module is cheap: datasets, transformers, fastai and flair are imported when used.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import numbers
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from ..data import LoadOptions, TaskDatasets, bad_rows, check_columns, tokenize_text_columns
from ..easy import EasyBase
from ..enums import DetailLevel, LongText
from ..errors import (
    EmptyDatasetError,
    InvalidDataError,
    InvalidInputError,
    InvalidOptionError,
    NumClassesError,
    UnknownLabelError,
)
from ..inference import TEXT_PAIR, encode, forward_logits, model_max_length, normalize_texts, resolve_max_length, softmax
from ..options import Option
from ..results import Results, json_text
from ..tuner import Tuner
from ..utils import token_lengths
from .base import TaskSpec

logger = logging.getLogger(__name__)

TASK = "sequence_classification"

__all__ = [
    "TASKS",
    "ClassificationResult",
    "ClassificationResults",
    "EasySequenceClassifier",
    "FlairClassifier",
    "HFClassifier",
    "RegressionResult",
    "RegressionResults",
    "SequenceClassificationDatasets",
    "SequenceClassificationTuner",
    "best_threshold",
    "classification_metrics",
    "parent_label",
    "regression_metrics",
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


def _check_vocab(vocab: list[str], multi: bool, label_col: str) -> None:
    """A single-label classifier needs two classes; labels that differ only in case or spaces are probably one."""
    if len(vocab) < 2 and not multi:
        raise NumClassesError(
            f"The training split has only {len(vocab)} class ({vocab}) in {label_col!r}; a classifier needs at least two. "
            "Add examples of the other classes (multi-label data, with is_multicategory=True, may have one)."
        )
    folded: dict[str, list[str]] = {}
    for v in vocab:
        folded.setdefault(" ".join(v.split()).casefold(), []).append(v)
    clashes = [names for names in folded.values() if len(names) > 1]
    if clashes:
        warnings.warn(
            f"Labels {clashes} differ only in case or spaces and are separate classes; clean the labels if they are one.",
            stacklevel=5,
        )


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
    batch: dict[str, list[Any]], label_col: str, index: dict[str, int], multi: bool, delim: str
) -> dict[str, list[Any]]:
    """Label names -> ids (multi-hot for multi-label); the rows were checked before (`_row_problems`)."""
    if multi:
        out = []
        for labs in batch[label_col]:
            hot = [0.0] * len(index)
            for lab in _split_labels(labs, delim):
                hot[index[lab]] = 1.0
            out.append(hot)
        return {"labels": out}
    return {"labels": [index[str(v)] for v in batch[label_col]]}


def _number(value: Any) -> float | None:
    """A regression target as a float (a number, or text that reads as one), or None when it is not a finite number."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    if not isinstance(value, numbers.Real):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _label_problem(value: Any, label_col: str, regression: bool) -> str | None:
    """What is wrong with a row's label (a class: missing; a regression target: not a finite number), or None."""
    if regression:
        return None if _number(value) is not None else f"{label_col!r} is missing or not a finite number ({value!r:.40})"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"{label_col!r} is missing ({value!r})"
    return None


def _row_problems(dset: Any, text_cols: Sequence[str], label_col: str, regression: bool = False) -> list[tuple[int, str]]:
    """Every row without text or without a label, with what is wrong (checked before anything is encoded)."""
    problems: dict[int, str] = {}
    for col in text_cols:
        for i, t in enumerate(dset[col]):
            if not isinstance(t, str) or not t.strip():
                problems.setdefault(i, f"{col!r} is empty or not text ({t!r:.40})")
    for i, v in enumerate(dset[label_col]):
        why = _label_problem(v, label_col, regression)
        if why is not None:
            problems.setdefault(i, why)
    return sorted(problems.items())


def _checked_splits(
    train: Any, valid: Any, text_col: str, text_pair_col: str | None, label_col: str, regression: bool = False
) -> list[str]:
    """The text columns, once both splits have the columns, rows, and no bad rows (all of these named at once)."""
    for split, d in (("train", train), ("validation", valid)):
        check_columns(d.column_names, [text_col, text_pair_col, label_col], f"{split} split")
        if len(d) == 0:
            raise EmptyDatasetError(f"The {split} split is empty; pass at least one row.")
    text_cols = [c for c in (text_col, text_pair_col) if c]
    problems = [(s, i, why) for s, d in (("train", train), ("validation", valid))
                for i, why in _row_problems(d, text_cols, label_col, regression)]
    if problems:
        raise bad_rows(problems)
    return text_cols


def _encode_targets(batch: dict[str, list[Any]], label_col: str) -> dict[str, list[Any]]:
    """Regression targets -> floats (the rows were checked before: `_row_problems`)."""
    return {"labels": [_number(v) for v in batch[label_col]]}


def _with_targets(dset: Any, text_cols: list[str], label_col: str, num_proc: int | None) -> Any:
    """`dset` with only its text columns and the regression targets as float `labels`."""
    return dset.map(
        partial(_encode_targets, label_col=label_col),
        batched=True,
        remove_columns=[c for c in dset.column_names if c not in text_cols],
        num_proc=num_proc,
        desc="Encoding targets",
    )


def _check_targets_vary(train: Any, label_col: str) -> None:
    """A regression needs training targets that differ (a constant has nothing to learn)."""
    values = {_number(v) for v in train[label_col]}
    if len(values) < 2:
        raise InvalidDataError(
            f"Every training target in {label_col!r} is {next(iter(values))!r}; a regression needs targets that vary."
        )


def _label_vocab(train: Any, valid: Any, label_col: str, multi: bool, delim: str) -> tuple[list[str], Any, Any]:
    """(the label vocabulary, train, valid with label names, not `ClassLabel` ids); every validation label is in training."""
    names = getattr(train.features[label_col], "names", None)
    vocab = list(names) if names and not multi else _sorted_vocab(_label_values(train, label_col, multi, delim))
    _check_vocab(vocab, multi, label_col)
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
    return vocab, train, valid


def _with_label_ids(
    dset: Any, text_cols: list[str], label_col: str, vocab: list[str], multi: bool, delim: str, num_proc: int | None
) -> Any:
    """`dset` with only its text columns and the labels as ids of `vocab` (multi-hot when `multi`)."""
    index = {name: i for i, name in enumerate(vocab)}
    return dset.map(
        partial(_encode_labels, label_col=label_col, index=index, multi=multi, delim=delim),
        batched=True,
        remove_columns=[c for c in dset.column_names if c not in text_cols],
        num_proc=num_proc,
        desc="Encoding labels",
    )


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

    columns: ClassVar[tuple[Option, ...]] = (
        Option("text_col", str, "text", "column of the texts", "text"),
        Option("label_col", str, "label", "column of the labels (delimited strings when multi-label)", "label"),
    )
    options: ClassVar[tuple[Option, ...]] = (
        Option("text_pair_col", str, None, "column of the second texts of sentence pairs"),
        Option("is_multicategory", bool, False, "multi-label: each row has several labels", False),
        Option("label_delim", str, " ", "separator of the labels of a multi-label row", " "),
        Option("tokenize", bool, True, "tokenize now (False: keep raw text)", True),
        Option("regression", bool, False, "regression: the labels are numbers, the model predicts one per text (MSE)",
               True),
    )
    folder_args: ClassVar[tuple[Option, ...]] = (
        Option("get_label", Callable, parent_label, "get_label(path) -> label (default: the parent folder's name)"),
    )
    folder_columns: ClassVar[tuple[tuple[str, str], ...]] = (("text_col", "text"), ("label_col", "label"))

    text_col: str = "text"
    text_pair_col: str | None = None
    label_col: str | None = None
    label_delim: str = " "
    regression: bool = False  # numeric targets (float `labels`, no vocabulary), for a one-output MSE model

    @classmethod
    def _from_splits(  # type: ignore[override]
        cls,
        train: Any,
        valid: Any,
        tokenizer_name: str | None,
        load: LoadOptions,
        text_col: str = "text",
        label_col: str = "label",
        text_pair_col: str | None = None,
        is_multicategory: bool = False,
        label_delim: str = " ",
        tokenize: bool = True,
        regression: bool = False,
    ) -> SequenceClassificationDatasets:
        multi, delim = is_multicategory, label_delim
        if regression and multi:
            raise InvalidOptionError(
                "regression=True predicts one number per text; it cannot be multi-label too (is_multicategory=True). "
                "Pass one of them."
            )
        text_cols = _checked_splits(train, valid, text_col, text_pair_col, label_col, regression)
        vocab: list[str] | None = None
        if regression:
            _check_targets_vary(train, label_col)
            encoded = [_with_targets(d, text_cols, label_col, load.num_proc) for d in (train, valid)]
        else:
            vocab, train, valid = _label_vocab(train, valid, label_col, multi, delim)
            encoded = [_with_label_ids(d, text_cols, label_col, vocab, multi, delim, load.num_proc) for d in (train, valid)]
        dsets = cls(
            encoded[0],
            encoded[1],
            tokenizer_name=tokenizer_name,
            tokenize=tokenize,
            tokenize_func=partial(tokenize_text_columns, text_col=text_col, text_pair_col=text_pair_col),
            vocab=vocab,
            multi_label=multi,
            **load.build_kwargs(),
        )
        dsets.text_col, dsets.text_pair_col, dsets.label_col, dsets.label_delim = text_col, text_pair_col, label_col, delim
        dsets.regression = regression
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
# results
# ---------------------------------------------------------------------------------------------------
@dataclass
class ClassificationResult:
    """One input's prediction. `prediction` is a label, or a list of labels for multi-label models."""

    text: Any
    prediction: str | list[str]
    probs: list[float]
    logits: list[float] | None = None
    windows: int = 1
    truncated: bool = False


@dataclass
class ClassificationResults(Results):
    """Predictions for a list of inputs, with the class order of every `probs` row."""

    items: list[ClassificationResult]
    classes: list[str] = dataclasses.field(default_factory=list)
    multi_label: bool = False
    threshold: float | None = None

    def decisions(self) -> list[Any]:
        """One hashable decision per input (the predicted label, or a tuple of labels), for parity checks."""
        return [tuple(r.prediction) if isinstance(r.prediction, list) else r.prediction for r in self.items]

    def to_dict(self, detail_level: DetailLevel | str = DetailLevel.Low) -> dict[str, Any]:
        """Low: sentences, predictions, probs. Medium adds classes and pairings. High adds logits and windows."""
        level = DetailLevel(detail_level)
        out: dict[str, Any] = {
            "sentences": [json_text(r.text) for r in self.items],
            "predictions": [r.prediction for r in self.items],
            "probs": [r.probs for r in self.items],
        }
        if level.at_least(DetailLevel.Medium):
            out["classes"] = list(self.classes)
            out["pairings"] = [dict(zip(self.classes, r.probs, strict=True)) for r in self.items]
        if level.at_least(DetailLevel.High):
            out["logits"] = [r.logits for r in self.items]
            out["truncated"] = [r.truncated for r in self.items]
            out["windows"] = [r.windows for r in self.items]
            out["multi_label"] = self.multi_label
            out["threshold"] = self.threshold
        return out


PARITY_TOLERANCE = 0.1  # int8/ONNX copies of a regressor agree when values differ by at most 10% of their spread


@dataclass(frozen=True, eq=False)
class _Close:
    """A predicted value as a parity decision: equal to another within the larger of their tolerances (not hashable:
    equality within a tolerance is not transitive)."""

    value: float
    tolerance: float

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, _Close):
            return NotImplemented
        return abs(self.value - other.value) <= max(self.tolerance, other.tolerance)

    __hash__ = None  # type: ignore[assignment]


@dataclass
class RegressionResult:
    """One input's predicted value (a regression model)."""

    text: Any
    prediction: float
    windows: int = 1
    truncated: bool = False


@dataclass
class RegressionResults(Results):
    """Predicted values for a list of inputs; `target` names what they predict (the training label column)."""

    items: list[RegressionResult]
    target: str = "LABEL_0"

    def decisions(self) -> list[Any]:
        """Each value, for parity checks: two agree within `PARITY_TOLERANCE` of the values' standard deviation (of
        their mean magnitude when they do not vary)."""
        import numpy as np

        values = np.asarray([r.prediction for r in self.items], dtype=float)
        scale = float(values.std()) or float(np.abs(values).mean()) or 1.0
        return [_Close(float(v), PARITY_TOLERANCE * scale) for v in values]

    def to_dict(self, detail_level: DetailLevel | str = DetailLevel.Low) -> dict[str, Any]:
        """Low: `sentences` and `predictions` (one float per input). Medium adds `target` (the name of the predicted
        value). High adds `truncated`, `windows` and `regression` (True).

        Example: `{"sentences": ["Great film"], "predictions": [4.31], "target": "stars"}` at Medium.
        """
        level = DetailLevel(detail_level)
        out: dict[str, Any] = {
            "sentences": [json_text(r.text) for r in self.items],
            "predictions": [r.prediction for r in self.items],
        }
        if level.at_least(DetailLevel.Medium):
            out["target"] = self.target
        if level.at_least(DetailLevel.High):
            out["truncated"] = [r.truncated for r in self.items]
            out["windows"] = [r.windows for r in self.items]
            out["regression"] = True
        return out


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


CLASSIFIER_OPTIONS = (
    Option("class_names", list, None, "names to report instead of the model's labels (same order and number)"),
    Option("threshold", float, None, "multi-label decision threshold (default: the tuned one)", 0.5),
)
HF_CLASSIFIER_OPTIONS = (
    *CLASSIFIER_OPTIONS,
    Option("long_text", LongText, LongText.Truncate, "texts over max_length: truncate, or window and average", "window"),
    Option("max_length", int, None, "tokens per window (default: the trained length)", 64),
    Option("stride", int, None, "overlap of windows in tokens (default: max_length // 4)", 8),
)


@dataclass
class HFClassifier:
    """A transformers sequence classifier with its labels and threshold; `predict` is the one prediction path."""

    options: ClassVar[tuple[Option, ...]] = HF_CLASSIFIER_OPTIONS

    model: Any
    tokenizer: Any
    classes: list[str]
    multi_label: bool = False
    threshold: float = 0.5
    max_length: int | None = None
    regression: bool = False  # one output, the predicted value (`problem_type="regression"`)

    @classmethod
    def from_model(cls, model: Any, tokenizer: Any, manifest: dict[str, Any] | None = None) -> HFClassifier:
        """Read labels, problem type (regression too) and threshold from the model config (and manifest)."""
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
            regression=cfg.problem_type == "regression" or bool(manifest.get("regression")),
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
    ) -> ClassificationResults | RegressionResults:
        """Classify validated texts: encode (truncate or window), length-sorted batches, average window logits (a
        regression model: its output, the predicted value)."""
        import numpy as np

        classes = _check_class_names(class_names, len(self.classes)) or self.classes
        if threshold is not None and self.regression:
            raise InvalidInputError("threshold is the decision threshold of multi-label classifiers; this model is a "
                                    "regression (it predicts a number per text).")
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
        if self.regression:
            return _regression_results(texts, logits, counts[:, 0], enc.n_windows, classes[0])
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


def _regression_results(
    texts: Sequence[Any], outputs: Any, windows: Any, n_windows: Sequence[int], target: str
) -> RegressionResults:
    """One predicted value per input (a regression model's single output, averaged over its windows)."""
    items = [
        RegressionResult(text=t, prediction=float(out[0]), windows=int(c), truncated=bool(n > c))
        for t, out, c, n in zip(texts, outputs, windows, n_windows, strict=True)
    ]
    return RegressionResults(items, str(target))


@dataclass
class FlairClassifier:
    """A flair `TextClassifier` behind the same `predict` interface as `HFClassifier`."""

    options: ClassVar[tuple[Option, ...]] = CLASSIFIER_OPTIONS

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


ADVICE = "Try a lower learning rate (for example lr=5e-5), class_weights='balanced', or more epochs."


def classification_metrics(
    probs: Any,
    targets: Any,
    classes: Sequence[str],
    multi_label: bool,
    threshold: float = 0.5,
    majority: int | None = None,
) -> dict[str, Any]:
    """Accuracy, macro/micro F1, a confusion matrix (per-class 2x2 matrices for multi-label), sklearn's per-class
    precision/recall/F1/support `report`, the `majority_baseline` (always predicting the training set's most frequent
    class, `majority`, else the evaluated set's), and a `warning` when the predictions collapsed; JSON-safe."""
    import numpy as np
    from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, f1_score, multilabel_confusion_matrix

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
    f1_macro = float(f1_score(y, pred, average="macro", zero_division=0))
    labels = list(range(len(classes)))
    report = classification_report(y, pred, labels=labels, target_names=[str(c) for c in classes], output_dict=True,
                                   zero_division=0)
    out: dict[str, Any] = {
        "n": len(y),
        "accuracy": acc,
        "f1_macro": f1_macro,
        "f1_micro": float(f1_score(y, pred, average="micro", zero_division=0)),
        "labels": list(classes),
        "confusion_matrix": cm,
        "report": {name: _json_row(row) for name, row in report.items()},
        **({"threshold": float(threshold)} if multi_label else {}),
    }
    if not multi_label and len(y):
        out["majority_baseline"] = _majority_baseline(y, classes, majority)
    warning = _collapse_warning(y, pred, classes, f1_macro, out.get("majority_baseline"), multi_label)
    return {**out, **({"warning": warning} if warning else {})}


def _json_row(row: Any) -> Any:
    return {k: float(v) for k, v in row.items()} if isinstance(row, dict) else float(row)


def _majority_baseline(y: Any, classes: Sequence[str], majority: int | None) -> dict[str, Any]:
    """The scores of always predicting one class (the training set's most frequent, as sklearn's DummyClassifier)."""
    import numpy as np
    from sklearn.metrics import accuracy_score, f1_score

    label = int(np.bincount(y, minlength=len(classes)).argmax()) if majority is None else int(majority)
    const = np.full_like(y, label)
    return {"label": str(classes[label]), "accuracy": float(accuracy_score(y, const)),
            "f1_macro": float(f1_score(y, const, average="macro", zero_division=0))}


def _collapse_warning(
    y: Any, pred: Any, classes: Sequence[str], f1_macro: float, baseline: dict[str, Any] | None, multi_label: bool
) -> str | None:
    """Why these predictions show a model that learned nothing useful, or None."""
    import numpy as np

    rows = [tuple(r) for r in np.atleast_2d(pred)] if multi_label else [(int(p),) for p in pred]
    truths = {tuple(r) for r in np.atleast_2d(y)} if multi_label else {(int(t),) for t in y}
    if len(rows) > 1 and len(set(rows)) == 1 and len(truths) > 1:
        what = "the same labels" if multi_label else repr(str(classes[rows[0][0]]))
        return (f"The model predicts {what} for all {len(rows)} evaluated texts: it has learned nothing beyond one "
                f"answer. {ADVICE}")
    if baseline is not None and len(truths) > 1 and f1_macro <= baseline["f1_macro"] + 1e-9:
        return (f"Macro-F1 {f1_macro:.3f} is no better than always predicting the majority class "
                f"{baseline['label']!r} ({baseline['f1_macro']:.3f}). {ADVICE}")
    return None


REGRESSION_METRICS = ("mse", "rmse", "mae", "r2", "pearson")
REGRESSION_ADVICE = "Try another learning rate (for example lr=5e-5 or 3e-4), more epochs, or targets scaled to about unit size."
COLLAPSE_SPREAD = 0.01  # predictions whose spread is under 1% of the targets' are one value for every text


def _regression_scores(targets: Any, preds: Any) -> dict[str, float]:
    """MSE, RMSE, MAE, R^2 and Pearson's r (NaN where undefined: r^2 of constant targets, r of constant values)."""
    import numpy as np
    from scipy.stats import pearsonr
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    y, p = np.asarray(targets, dtype=float).reshape(-1), np.asarray(preds, dtype=float).reshape(-1)
    if not len(y) or not np.isfinite(p).all():  # nothing to score, or a model whose outputs overflowed
        return {name: float("nan") for name in REGRESSION_METRICS}
    mse = float(mean_squared_error(y, p))
    y_varies, p_varies = len(y) > 1 and np.ptp(y) > 0, len(p) > 1 and np.ptp(p) > 0
    return {
        "mse": mse,
        "rmse": math.sqrt(mse),
        "mae": float(mean_absolute_error(y, p)),
        "r2": float(r2_score(y, p)) if y_varies else float("nan"),
        "pearson": float(pearsonr(y, p)[0]) if y_varies and p_varies else float("nan"),
    }


def _regression_score(targets: Any, preds: Any, key: str) -> float:
    return _regression_scores(targets, preds)[key]


def _regression_fastai_metrics() -> list[Any]:
    """mse, rmse, mae, r2 and pearson as fastai metrics, named like the keys of `evaluate()`."""
    from fastai.metrics import skm_to_fastai

    return [skm_to_fastai(_regression_score, is_class=False, name=name, key=name) for name in REGRESSION_METRICS]


def _json_number(value: float) -> float | None:
    return value if math.isfinite(value) else None


def regression_metrics(preds: Any, targets: Any, train_mean: float | None = None) -> dict[str, Any]:
    """`n`, mse, rmse, mae, r2 and pearson (None where undefined), the `mean_baseline` (always predicting the
    training targets' mean, `train_mean`, else the evaluated targets' mean) and a `warning` when the predictions show
    a model that learned nothing useful; JSON-safe."""
    import numpy as np

    y, p = np.asarray(targets, dtype=float).reshape(-1), np.asarray(preds, dtype=float).reshape(-1)
    scores = _regression_scores(y, p)
    mean = float(train_mean) if train_mean is not None else float(y.mean()) if len(y) else 0.0
    base = _regression_scores(y, np.full_like(y, mean))
    baseline = {"value": mean, **{k: _json_number(base[k]) for k in ("mse", "rmse", "mae", "r2")}}
    out: dict[str, Any] = {"n": len(y), **{k: _json_number(v) for k, v in scores.items()}, "mean_baseline": baseline}
    warning = _regression_warning(y, p, scores["mse"], base["mse"], mean)
    return {**out, **({"warning": warning} if warning else {})}


def _regression_warning(y: Any, p: Any, mse: float, baseline_mse: float, mean: float) -> str | None:
    """Why these predicted values show a model that learned nothing useful, or None."""
    import numpy as np

    if not np.isfinite(p).all():
        return f"The model answers NaN or infinite values: training diverged. {REGRESSION_ADVICE}"
    if len(y) < 2 or not np.ptp(y) > 0:
        return None
    if float(np.std(p)) < COLLAPSE_SPREAD * float(np.std(y)):
        return (f"The model predicts about the same value ({float(np.mean(p)):.4g}) for all {len(y)} evaluated texts: it "
                f"has learned nothing beyond one answer. {REGRESSION_ADVICE}")
    if mse >= baseline_mse:
        return (f"MSE {mse:.4g} is no better than always predicting the training mean {mean:.4g} ({baseline_mse:.4g}). "
                f"{REGRESSION_ADVICE}")
    return None


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


def _train_mean(dls: Any) -> float | None:
    """The mean of the training targets (a regression), the mean-predictor baseline."""
    import numpy as np

    dset = dls.train.dataset
    return float(np.mean(dset["labels"])) if "labels" in dset.column_names and len(dset) else None


def _checked_targets(values: Sequence[Any], label_col: str) -> Any:
    """Regression targets of evaluation data as floats; rows that are not finite numbers are named."""
    import numpy as np

    problems = [("evaluation", i, why) for i, v in enumerate(values) if (why := _label_problem(v, label_col, True))]
    if problems:
        raise bad_rows(problems)
    return np.asarray([_number(v) for v in values], dtype=float)


class SequenceClassificationTuner(Tuner):
    """Fine-tune a sequence classifier (single- or multi-label) or a regressor with fastai.

    Options: `num_classes` (checked against the data), `class_weights` (a list, or "balanced"), `threshold`
    (multi-label; tuned on validation after training when not given). Data built with `regression=True` trains a
    one-output head (`problem_type="regression"`) with MSE, reported as mse, rmse, mae, r2 and pearson.

    Example:
        >>> tuner = SequenceClassificationTuner(dls, model_path)
        >>> tuner.tune(2, lr=1e-4, strategy="one_cycle")
        >>> tuner.predict("Shares fell sharply", detail_level="medium")
        >>> tuner.save("models/bbc")
    """

    options = (
        Option("num_classes", int, None, "number of classes (checked against the data)", 5),
        Option("class_weights", (list, str), None, "loss weight per class, or 'balanced'", "balanced"),
        Option("threshold", float, None, "multi-label decision threshold (default: tuned on validation)", 0.5),
    )
    metric_aliases: ClassVar[dict[str, str]] = {  # AdaptNLP named it f1_score; sklearn's and scipy's names
        "f1_score": "f1_macro", "f1": "f1_macro", "r2_score": "r2", "pearsonr": "pearson",
        "mean_squared_error": "mse", "mean_absolute_error": "mae",
    }
    num_classes: int | None
    class_weights: list[float] | str | None
    threshold: float

    def _check_data(self, dls: Any) -> Any:
        # any TaskDatasets with a label vocabulary or integer labels (e.g. a hand-built sentence-pair dataset)
        dsets = getattr(dls, "task_datasets", None)
        if not isinstance(dsets, TaskDatasets):
            raise InvalidInputError("SequenceClassificationTuner needs dataloaders built by TaskDatasets(...).dataloaders().")
        self.multi_label = bool(getattr(dls, "multi_label", False))
        self.regression = bool(getattr(dsets, "regression", False))
        if self.regression:
            self._check_regression_options()
        self.user_threshold = self.threshold
        self.threshold = 0.5 if self.threshold is None else float(self.threshold)
        return dsets

    def _check_regression_options(self) -> None:
        """Refuse the classifier options on regression data (and multi-label regression)."""
        if self.multi_label:
            raise InvalidOptionError("The data is both multi-label and regression; build it with one of them.")
        given = [name for name in ("class_weights", "threshold") if getattr(self, name) is not None]
        if given:
            raise InvalidOptionError(f"{', '.join(given)} apply to classifiers; this data is for regression (a number "
                                     "per text). Leave them out.")
        if self.num_classes not in (None, 1):
            raise NumClassesError(f"num_classes={self.num_classes}, but a regression model has one output.")

    def _classes(self, dls: Any) -> list[str]:
        if self.regression:  # one output, named by the target's column
            return [str(getattr(self.datasets, "label_col", None) or "LABEL_0")]
        vocab = getattr(dls, "vocab", None)
        num_classes = self.num_classes
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

    def _problem_type(self) -> str:
        """transformers' `problem_type` of this model."""
        if self.regression:
            return "regression"
        return "multi_label_classification" if self.multi_label else "single_label_classification"

    def _config_kwargs(self) -> dict[str, Any]:
        return {"problem_type": self._problem_type()}

    def default_loss(self) -> Any:
        from fastai.losses import BCEWithLogitsLossFlat, CrossEntropyLossFlat, MSELossFlat

        if self.regression:
            return MSELossFlat()
        if self.multi_label:
            return BCEWithLogitsLossFlat(thresh=self.threshold)
        return CrossEntropyLossFlat(weight=self._class_weight_tensor())

    def _searchable(self) -> tuple[str, ...]:
        """Class weights, where the default single-label loss uses them."""
        return ("class_weights",) if self._default_loss_used and not (self.multi_label or self.regression) else ()

    def _search_space(self) -> dict[str, Any]:
        """Class weights (none or balanced) unless the user chose them."""
        return {"class_weights": [None, "balanced"]} if self._searchable() and self.class_weights is None else {}

    def _search_state(self) -> tuple[str, ...]:
        return (*super()._search_state(), "threshold", "class_weights")

    def _apply_settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        rest = {k: v for k, v in settings.items() if k != "class_weights"}
        old = super()._apply_settings(rest)
        if "class_weights" in settings:
            old["class_weights"] = self.class_weights
            self.class_weights = settings["class_weights"]
            self.learn.loss_func = self.default_loss()
        return old

    def _class_weight_tensor(self) -> Any:
        import numpy as np
        import torch

        weights = self.class_weights
        if weights is None:
            return None
        if isinstance(weights, str):
            if weights != "balanced":
                raise InvalidInputError(f"class_weights must be a list of floats or 'balanced', got {weights!r}.")
            from sklearn.utils.class_weight import compute_class_weight

            ids = np.asarray(_train_label_ids(self.dls))
            present = np.unique(ids)
            w = np.ones(len(self.classes))
            w[present] = compute_class_weight("balanced", classes=present, y=ids)
            return torch.tensor(w, dtype=torch.float32)
        if len(weights) != len(self.classes):
            raise NumClassesError(f"class_weights has {len(weights)} values for {len(self.classes)} classes.")
        return torch.tensor([float(w) for w in weights], dtype=torch.float32)

    def default_metrics(self) -> list[Any]:
        if self.regression:
            return _regression_fastai_metrics()
        return _default_metrics(self.multi_label, self.threshold)

    # -- after training: the multi-label threshold ---------------------------------------------------------
    def _task_callbacks(self) -> list[Any]:
        return [_threshold_tuning(self)] if self.multi_label else []

    def _tune_threshold(self, probs: Any = None, targets: Any = None) -> None:
        """The multi-label decision threshold that scores best on validation (unless the user set one): on the
        validation predictions given (probabilities, multi-hot targets), else on new ones."""
        if self.multi_label and self.user_threshold is None and self.dls.valid is not None:
            from ..engine import without_progress

            if probs is None:
                with without_progress(self.learn):
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

    # -- evaluation -----------------------------------------------------------------------------------------
    def evaluate(
        self, data: Any = None, text_col: str | None = None, label_col: str | None = None, bs: int = 32
    ) -> dict[str, Any]:
        """Metrics and a confusion matrix on the validation set (`data=None`) or on a labelled DataFrame/Dataset (a
        regression: mse, rmse, mae, r2, pearson and the `mean_baseline`, see `regression_metrics`)."""
        import numpy as np

        if data is None:
            return self._metrics(*self._valid_preds())
        dsets = self.datasets
        text_col = text_col or getattr(dsets, "text_col", "text")
        label_col = label_col or getattr(dsets, "label_col", None) or "label"
        pair_col = getattr(dsets, "text_pair_col", None)
        columns = list(data.columns if hasattr(data, "columns") else getattr(data, "column_names", []))
        check_columns(columns, [text_col, pair_col, label_col], "evaluation data")
        texts = list(data[text_col]) if not pair_col else list(zip(data[text_col], data[pair_col], strict=True))
        labels = list(data[label_col])
        if self.regression:
            targets = _checked_targets(labels, label_col)
            res = self.predictor().predict(normalize_texts(texts)[0], batch_size=bs)
            return self._metrics(np.asarray([r.prediction for r in res.items]), targets)
        index = {c: i for i, c in enumerate(self.classes)}
        delim = getattr(dsets, "label_delim", " ")
        wanted = {lab for v in labels for lab in (_split_labels(v, delim) if self.multi_label else [str(v)])}
        unknown = wanted - set(index)
        if unknown:
            raise UnknownLabelError(f"Labels {sorted(unknown)} are unknown to the model (labels: {self.classes}).")
        inputs, _ = normalize_texts(texts)
        res = self.predictor().predict(inputs, batch_size=bs)
        probs = np.asarray([r.probs for r in res.items])
        if self.multi_label:
            targets = np.zeros_like(probs)
            for i, v in enumerate(labels):
                for lab in _split_labels(v, delim):
                    targets[i, index[lab]] = 1
        else:
            targets = np.asarray([index[str(v)] for v in labels])
        return self._metrics(probs, targets)

    def _valid_preds(self) -> tuple[Any, Any]:
        from ..engine import without_progress

        with without_progress(self.learn):
            probs, targets = self.learn.get_preds(dl=self.dls.valid)
        return probs.numpy(), targets.numpy()

    def _metrics(self, probs: Any, targets: Any, log: bool = True) -> dict[str, Any]:
        """`classification_metrics`, the baseline being the training set's majority class (a regression:
        `regression_metrics`, the baseline its mean); a collapse is logged."""
        import numpy as np

        if self.regression:
            out = regression_metrics(probs, targets, _train_mean(self.dls))
        else:
            ids = [] if self.multi_label else list(_train_label_ids(self.dls))
            majority = int(np.bincount(ids).argmax()) if ids else None
            out = classification_metrics(probs, targets, self.classes, self.multi_label, self.threshold, majority)
        if log and out.get("warning"):
            logger.warning("%s", out["warning"])
        return out

    def _learning_warning(self) -> str | None:
        return self._metrics(*self._valid_preds(), log=False).get("warning")

    def plot_confusion_matrix(self, path: str | os.PathLike[str] | None = None) -> Any:
        """A heatmap of the validation confusion matrix (single-label), as a matplotlib Figure; `path=` saves it."""
        from ..plots import confusion_matrix_figure, save_figure

        if self.regression:
            raise InvalidInputError("A regression model has no confusion matrix: evaluate() gives its mse, rmse, mae, r2 "
                                    "and pearson.")
        if self.multi_label:
            raise InvalidInputError("A multi-label model has one 2x2 matrix per label: see evaluate()['confusion_matrix'].")
        return save_figure(confusion_matrix_figure(self.evaluate()["confusion_matrix"], self.classes), path)

    # -- persistence --------------------------------------------------------------------------------------
    def _update_config(self) -> None:
        super()._update_config()
        cfg = self.model.config
        cfg.problem_type = self._problem_type()
        cfg.threshold = self.threshold if self.multi_label else None

    def _manifest(self) -> dict[str, Any]:
        return {
            "multi_label": self.multi_label,
            "threshold": self.threshold if self.multi_label else None,
            "problem_type": self.model.config.problem_type,
            **({"regression": True} if self.regression else {}),
        }


# ---------------------------------------------------------------------------------------------------
# Easy module and the task declaration
# ---------------------------------------------------------------------------------------------------
def _threshold_tuning(tuner: SequenceClassificationTuner) -> Any:
    """A fastai callback that keeps the validation predictions of the epoch whose weights the fit ends with (the last,
    or with `keep_best` the best) and tunes the multi-label threshold on them after the fit: no second pass."""
    from fastai.callback.core import Callback
    from fastai.callback.tracker import SaveModelCallback
    from fastai.imports import noop

    class ThresholdTuning(Callback):
        order = 98

        def before_fit(self) -> None:
            self.kept: tuple[Any, Any] | None = None
            self.seen: tuple[int, list[Any], list[Any]] = (-1, [], [])

        def before_validate(self) -> None:
            self.seen = (self.epoch, [], [])

        def after_batch(self) -> None:
            if not self.training and self.yb:
                activation = getattr(self.learn.loss_func, "activation", noop)
                self.seen[1].append(self.learn.to_detach(activation(self.pred)))
                self.seen[2].append(self.learn.to_detach(self.yb[0]))

        def after_epoch(self) -> None:
            # keep_best's own SaveModelCallback (`fname="best"`): the weights the fit ends with are its best epoch's
            saver = next((cb for cb in self.learn.cbs if isinstance(cb, SaveModelCallback) and cb.fname == "best"), None)
            epoch, probs, targets = self.seen
            if epoch == self.epoch and probs and (saver is None or getattr(saver, "new_best", False)):
                self.kept = (_cat(probs), _cat(targets))

        after_cancel_fit = after_epoch  # early stopping ends the epoch before this callback sees it

        def after_fit(self) -> None:
            if self.kept is not None:
                tuner._tune_threshold(*self.kept)

    return ThresholdTuning()


def _cat(parts: list[Any]) -> Any:
    import torch

    return torch.cat(parts)


class EasySequenceClassifier(EasyBase):
    """Classify text with any saved HF sequence classifier (adapt save/export, plain transformers, hub) or flair `.pt`.

    `tag_text(text, model_name_or_path, mini_batch_size=32, detail_level="low", **options)` takes one string, a
    `(text, text_pair)` tuple or `{"text", "text_pair"}` object, or a list mixing them. Options: `long_text`
    ('truncate' or 'window'), `max_length`, `stride`, `threshold` (multi-label), `class_names`. It returns a
    JSON-safe dict with lists of length 1 for a single input. A regression model (`problem_type="regression"`)
    answers a number per input: `{"sentences": [...], "predictions": [float, ...]}` (see `RegressionResults`).

    Example:
        >>> clf = EasySequenceClassifier()
        >>> clf.tag_text(["Shares fell sharply", "A late goal won the match"], "models/bbc", detail_level="medium")
    """


    def tag_text(
        self,
        text: Any,
        model_name_or_path: Any,
        mini_batch_size: int = 32,
        detail_level: DetailLevel | str = DetailLevel.Low,
        class_names: Sequence[str] | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """Classify one input or a list (see the class doc); `class_names` relabels the output."""
        if class_names is not None:
            options["class_names"] = list(class_names)
        return self.predict(text, model_name_or_path, mini_batch_size, detail_level, **options)


TASKS = (
    TaskSpec(
        name=TASK,
        summary="label texts or text pairs (single- or multi-label), or score them (regression)",
        aliases=("classification", "text_classification", "cls"),
        datasets=SequenceClassificationDatasets,
        tuner=SequenceClassificationTuner,
        easy=EasySequenceClassifier,
        predictor=HFClassifier,
        fields=TEXT_PAIR,
        auto_class="AutoModelForSequenceClassification",
        pipeline_tag="text-classification",
        heads=("ForSequenceClassification",),
        metrics=("accuracy", "f1_macro"),
        fast_copies=frozenset({"int8", "onnx"}),
        flair="TextClassifier",
        flair_predictor=FlairClassifier,
        data_forms=("csv", "jsonl", "folder"),
        exports=("ClassificationResults", "RegressionResults", "parent_label"),
    ),
)
