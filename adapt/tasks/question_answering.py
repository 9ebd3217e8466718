"""Extractive question answering (SQuAD v1 and v2 style): datasets, tuner, SQuAD metrics and `EasyQuestionAnswering`.

Long contexts are split into overlapping windows (`max_length`, `doc_stride`) with offset mappings, in
training and inference alike (both use `adapt.inference.encode`). `HFQuestionAnswerer` turns start/end logits
into character spans of the original context; it is shared by the tuner's metrics and `predict`, the Easy
module and the server. Importing this module is cheap: datasets, transformers, torch and fastai load when used.
"""

from __future__ import annotations

import functools

import collections
import json
import logging
import os
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from ..data import LoadOptions, TaskDatasets, check_columns, check_rows, row_name
from ..easy import EasyBase, ModelRef
from ..enums import DetailLevel, LongText
from ..errors import DataNotFoundError, DecodeError, InvalidInputError, is_count
from ..inference import Encoded, Field, encode, forward_logits, model_max_length, trim_span
from ..options import Option
from ..results import Results
from ..tuner import Tuner
from .base import TaskSpec

logger = logging.getLogger(__name__)

TASK = "question_answering"
HF_HEAD = "ForQuestionAnswering"
OUTPUT_KEYS = ("start_logits", "end_logits")
DEFAULT_MAX_LENGTH = 384
DEFAULT_DOC_STRIDE = 128
DEFAULT_QA_MODEL = "distilbert/distilbert-base-cased-distilled-squad"

__all__ = [
    "TASKS",
    "Answer",
    "EasyQuestionAnswering",
    "HFQuestionAnswerer",
    "QAResult",
    "QAResults",
    "QuestionAnsweringDatasets",
    "QuestionAnsweringTuner",
    "qa_loss",
    "read_squad_json",
    "squad_exact_match",
    "squad_f1",
    "squad_normalize",
    "squad_scores",
]


# ---------------------------------------------------------------------------------------------------
# SQuAD metrics: the normalisation and EM/F1 of the official v2.0 evaluation script
# ---------------------------------------------------------------------------------------------------
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = set(string.punctuation)


def squad_normalize(text: str) -> str:
    """Lower-case, drop punctuation and the articles a/an/the, collapse whitespace (as the official script does)."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def squad_exact_match(prediction: str, gold_answers: Sequence[str]) -> float:
    """1.0 if the normalised prediction equals any normalised gold answer; no gold answers means the answer is ""."""
    golds = [g for g in gold_answers if squad_normalize(g)] or [""]
    return float(max(squad_normalize(prediction) == squad_normalize(g) for g in golds))


def _f1(prediction: str, gold: str) -> float:
    pred, ref = squad_normalize(prediction).split(), squad_normalize(gold).split()
    if not pred or not ref:  # an unanswerable question: right only if both are empty
        return float(pred == ref)
    same = sum((collections.Counter(pred) & collections.Counter(ref)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def squad_f1(prediction: str, gold_answers: Sequence[str]) -> float:
    """Token-overlap F1 against the best-matching gold answer (the official script's max over golds)."""
    golds = [g for g in gold_answers if squad_normalize(g)] or [""]
    return max(_f1(prediction, g) for g in golds)


def squad_scores(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, float]:
    """Mean exact match and F1 in percent, as the official SQuAD script reports them."""
    if len(predictions) != len(references) or not predictions:
        raise InvalidInputError("squad_scores needs as many predictions as reference lists, and at least one.")
    n = len(predictions)
    em = sum(squad_exact_match(p, r) for p, r in zip(predictions, references, strict=True))
    f1 = sum(squad_f1(p, r) for p, r in zip(predictions, references, strict=True))
    return {"exact_match": 100.0 * em / n, "f1": 100.0 * f1 / n}


# ---------------------------------------------------------------------------------------------------
# records and checks
# ---------------------------------------------------------------------------------------------------
def _answers_of(value: Any, where: str) -> tuple[list[str], list[int]]:
    """(texts, starts) from a SQuAD `answers` value: `{"text": [...], "answer_start": [...]}`; empty = unanswerable."""
    if value is None:
        return [], []
    if not isinstance(value, dict) or "text" not in value or "answer_start" not in value:
        raise InvalidInputError(f"{where}: answers must be a dict with 'text' and 'answer_start' lists, got {value!r:.100}.")
    texts, starts = value["text"], value["answer_start"]
    texts = [texts] if isinstance(texts, str) else list(texts or [])
    starts = [starts] if isinstance(starts, int) else list(starts or [])
    if len(texts) != len(starts):
        raise InvalidInputError(f"{where}: {len(texts)} answer texts but {len(starts)} answer_start values.")
    return texts, starts


def check_answer(context: str, text: str, start: Any, where: str) -> None:
    """Raise `InvalidInputError` unless `context[start:start + len(text)] == text`, saying where the text really is."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError(f"{where}: an answer text is empty; list no answers for an unanswerable question.")
    if not is_count(start, 0) or not start < len(context):
        raise InvalidInputError(f"{where}: answer_start={start!r} is not a character offset inside the context.")
    found = context[start : start + len(text)]
    if found != text:
        at = context.find(text)
        hint = f" The text occurs at offset {at}." if at >= 0 else " The text does not occur in the context."
        raise InvalidInputError(
            f"{where}: the answer {text!r} does not match the context at answer_start={start} (found {found!r}).{hint}"
        )


def _check_text(value: Any, what: str, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f"{where}: the {what} is {'empty' if isinstance(value, str) else repr(value)[:40]}; pass text.")
    return value


def _record_problem(question: Any, context: Any, answers: Any) -> str | None:
    """What is wrong with one SQuAD record (the reason `_tokenize_qa` would stop at), or None."""
    try:
        _check_text(question, "question", "")
        _check_text(context, "context", "")
        for text, start in zip(*_answers_of(answers, ""), strict=True):
            check_answer(context, text, start, "")
    except InvalidInputError as e:
        return str(e).removeprefix(": ")
    return None


def read_squad_json(path: str | os.PathLike[str], encoding: str = "utf-8") -> list[dict[str, Any]]:
    """Flat records (`id`, `question`, `context`, `answers`) from official SQuAD JSON, a JSON list or JSON Lines."""
    p = Path(path)
    if not p.is_file():
        raise DataNotFoundError(f"JSON file {str(p)!r} does not exist.")
    try:
        raw = p.read_text(encoding=encoding)
    except UnicodeDecodeError as e:
        raise DecodeError(str(p), encoding, e) from e
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        try:
            data = [json.loads(line) for line in raw.splitlines() if line.strip()]
        except json.JSONDecodeError as e:
            raise InvalidInputError(f"{str(p)!r} is neither JSON nor JSON Lines: {e}") from e
    if isinstance(data, dict) and isinstance(data.get("data"), list):  # official nested SQuAD layout
        return _flatten_squad(data["data"])
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise InvalidInputError(f"{str(p)!r} holds no SQuAD records (a 'data' list, a list of objects or JSON Lines).")
    return data


def _flatten_squad(articles: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for article in articles:
        for para in article.get("paragraphs", []):
            for qa in para.get("qas", []):
                answers = [] if qa.get("is_impossible") else qa.get("answers", [])
                rows.append(
                    {
                        "id": str(qa.get("id", len(rows))),
                        "question": qa["question"],
                        "context": para["context"],
                        "answers": {
                            "text": [a["text"] for a in answers],
                            "answer_start": [int(a["answer_start"]) for a in answers],
                        },
                    }
                )
    return rows


# ---------------------------------------------------------------------------------------------------
# windows -> features
# ---------------------------------------------------------------------------------------------------
def _cls_index(input_ids: Sequence[int], tokenizer: Any) -> int:
    cls = tokenizer.cls_token_id
    return input_ids.index(cls) if cls is not None and cls in input_ids else 0


def _context_offsets(enc: Encoded, w: int) -> list[list[int]]:
    """Window `w`'s character offsets into the context; [-1, -1] for question and special tokens."""
    assert enc.offsets is not None and enc.sequence_ids is not None
    return [list(o) if s == 1 else [-1, -1] for o, s in zip(enc.offsets[w], enc.sequence_ids[w], strict=True)]


def _span_tokens(offsets: list[list[int]], start: int, end: int) -> tuple[int, int] | None:
    """Token indices of the first and last context tokens of chars [start, end), or None when not inside this window."""
    ctx = [k for k, (s, _) in enumerate(offsets) if s >= 0]
    if not ctx or offsets[ctx[0]][0] > start or offsets[ctx[-1]][1] < end:
        return None
    first = next(k for k in ctx if offsets[k][1] > start)
    last = next(k for k in reversed(ctx) if offsets[k][0] < end)
    return first, last


def _tokenize_qa(
    batch: dict[str, list[Any]],
    indices: list[int],
    tokenizer: Any,
    cols: tuple[str, str, str],
    max_length: int,
    doc_stride: int,
    split: str,
    keep_offsets: bool,
) -> dict[str, list[Any]]:
    """Check each example, cut it into windows and label each window's answer tokens (CLS when it is not inside)."""
    q_col, c_col, a_col = cols
    pairs, answers = [], []
    for i, q, c, a in zip(indices, batch[q_col], batch[c_col], batch[a_col], strict=True):
        where = row_name(split, i)
        q, c = _check_text(q, "question", where), _check_text(c, "context", where)
        texts, starts = _answers_of(a, where)
        for t, s in zip(texts, starts, strict=True):
            check_answer(c, t, s, where)
        pairs.append((q, c))
        answers.append((texts[0], starts[0]) if texts else None)
    enc = encode(tokenizer, pairs, max_length, LongText.Window, doc_stride, return_offsets=True, return_sequence_ids=True)
    out: dict[str, list[Any]] = {k: list(v) for k, v in enc.features.items()}
    out["start_positions"], out["end_positions"], out["example_id"] = [], [], []
    if keep_offsets:
        out["offset_mapping"] = []
    for w, sid in enumerate(enc.sample_ids):
        offsets = _context_offsets(enc, w)
        cls = _cls_index(enc.features["input_ids"][w], tokenizer)
        ans = answers[sid]
        span = _span_tokens(offsets, ans[1], ans[1] + len(ans[0])) if ans else None
        out["start_positions"].append(span[0] if span else cls)
        out["end_positions"].append(span[1] if span else cls)
        out["example_id"].append(indices[sid])
        if keep_offsets:
            out["offset_mapping"].append(offsets)
    return out


class QuestionAnsweringDatasets(TaskDatasets):
    """SQuAD-style examples (question, context, answers with `text` and `answer_start`) cut into labelled windows.

    Contexts longer than `max_length` tokens become overlapping windows (`doc_stride` tokens of overlap); a window
    that does not hold the answer is labelled with the CLS token, as is every window of an unanswerable
    question (an empty `answers` list, SQuAD v2). Every answer must match its context at `answer_start`.

    Example:
        >>> dsets = QuestionAnsweringDatasets.from_dfs(df, model_path, max_length=384, doc_stride=128)
        >>> dsets.dataloaders(batch_size=16).show_batch()
    """

    def __init__(
        self,
        train_dset: Any,
        valid_dset: Any = None,
        tokenizer_name: str | None = None,
        question_col: str = "question",
        context_col: str = "context",
        answers_col: str = "answers",
        max_length: int | None = None,
        doc_stride: int | None = None,
        **shared: Any,
    ) -> None:
        """`shared`: `TaskDatasets` arguments (`tokenizer`, `auto_kwargs`, `num_proc`, `tokenize_kwargs`)."""
        labels = ["start_positions", "end_positions"]
        super().__init__(train_dset, valid_dset, tokenizer_name, tokenize=False, label_keys=labels, **shared)
        self.cols = (question_col, context_col, answers_col)
        splits = (("train", self.train), ("validation", self.valid))
        for split, d in splits:
            check_columns(d.column_names, list(self.cols), f"{split} split")
        check_rows(splits, self.cols, _record_problem)
        limit = model_max_length(None, self.tokenizer)
        self.qa_max_length = min(max_length or DEFAULT_MAX_LENGTH, limit)
        # the default overlap leaves room for the question in short windows (128 of 384 tokens, a quarter below)
        default_stride = min(DEFAULT_DOC_STRIDE, self.qa_max_length // 4)
        self.doc_stride = min(doc_stride or default_stride, self.qa_max_length // 2 - 1)
        if doc_stride is not None and self.doc_stride != doc_stride:
            logger.warning(
                "doc_stride=%d is too large for max_length=%d; using %d", doc_stride, self.qa_max_length, self.doc_stride
            )
        self.valid_examples = self.valid.select_columns(list(self.cols))
        self.unanswerable = self._any_unanswerable(self.train)
        self.train = self._windows(self.train, "train", keep_offsets=False)
        self.valid = self._windows(self.valid, "validation", keep_offsets=True)
        logger.info("%d training and %d validation windows of up to %d tokens", len(self.train), len(self.valid), self.max_length)
        self._publish()

    @property
    def max_length(self) -> int:
        return self.qa_max_length

    def manifest(self) -> dict[str, Any]:
        return {"max_length": self.max_length, "doc_stride": self.doc_stride, "allow_no_answer": self.unanswerable}

    def _any_unanswerable(self, dset: Any) -> bool:
        col = self.cols[2]
        return any(not (a or {}).get("text") for a in dset[col])

    def _windows(self, dset: Any, split: str, keep_offsets: bool) -> Any:
        fn = partial(
            _tokenize_qa,
            tokenizer=self.tokenizer,
            cols=self.cols,
            max_length=self.qa_max_length,
            doc_stride=self.doc_stride,
            split=split,
            keep_offsets=keep_offsets,
        )
        return self._map_split(dset, fn, "Windowing", split)

    def row_view(self, row: dict[str, Any], raw: bool = False) -> dict[str, Any]:
        """A window: its question, a decoded snippet of its context, and the labelled answer (or `<no answer>`)."""
        ids = list(row["input_ids"])
        s, e = int(row["start_positions"]), int(row["end_positions"])
        if raw:
            return {"n_tokens": len(ids), "start_positions": s, "end_positions": e}
        cls = _cls_index(ids, self.tokenizer)
        answer = "<no answer>" if s == e == cls else self.tokenizer.decode(ids[s : e + 1], skip_special_tokens=True)
        return {"window": self.tokenizer.decode(ids, skip_special_tokens=True), "answer": answer, "n_tokens": len(ids)}

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(train={len(self.train)} windows, valid={len(self.valid)} windows from "
            f"{len(self.valid_examples)} questions, max_length={self.max_length}, doc_stride={self.doc_stride})"
        )

    # -- constructors ---------------------------------------------------------------------------------------
    options: ClassVar[tuple[Option, ...]] = (
        Option("question_col", str, "question", "column of the questions", "question"),
        Option("context_col", str, "context", "column of the contexts", "context"),
        Option("answers_col", str, "answers", "column of SQuAD answers: {'text': [...], 'answer_start': [...]}", "answers"),
        Option("doc_stride", int, None, f"overlap of context windows in tokens (default {DEFAULT_DOC_STRIDE})", 32),
    )
    max_length_option = "max_length"
    unused_shared = ("tokenize_kwargs",)  # windows come from max_length and doc_stride

    @classmethod
    def _from_splits(
        cls, train: Any, valid: Any, tokenizer_name: str | None, load: LoadOptions, **options: Any
    ) -> QuestionAnsweringDatasets:
        return cls(train, valid, tokenizer_name=tokenizer_name, **options, **load.build_kwargs())

    @classmethod
    def _read_jsons(cls, files: dict[str, str], encoding: str, cache_dir: Any, reader: dict[str, Any]) -> Any:
        """Official SQuAD JSON (v1.1 or v2.0), JSON lists of records or JSON Lines (see `read_squad_json`)."""
        from datasets import Dataset

        features = reader.get("features")
        return {split: Dataset.from_list(read_squad_json(path, encoding), features=features) for split, path in files.items()}


# ---------------------------------------------------------------------------------------------------
# logits -> answers (shared by the tuner's metrics, predict, the Easy module and the server)
# ---------------------------------------------------------------------------------------------------
@dataclass
class Answer:
    """An answer span: `start`/`end` are character offsets into the context (`context[start:end] == text`)."""

    text: str
    score: float
    start: int | None
    end: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"answer": self.text, "score": self.score, "start": self.start, "end": self.end}


@dataclass
class QAResult:
    """One question's best answer (empty when `no_answer`), its top-n candidates and the no-answer probability."""

    question: str
    context: str
    answer: Answer
    no_answer: bool
    best_n: list[Answer]
    no_answer_score: float
    windows: int = 1


@dataclass
class QAResults(Results):
    """Answers for a list of (question, context) pairs."""

    items: list[QAResult]

    def decisions(self) -> list[str]:
        return [r.answer.text for r in self.items]

    def to_dict(self, detail_level: DetailLevel | str = DetailLevel.Low) -> dict[str, Any]:
        """Low: questions and answers (`answer`, `score`, `start`, `end`, `no_answer`). Medium adds the top-n
        candidates per question (`best_n`). High adds the no-answer probability and the number of windows."""
        level = DetailLevel(detail_level)
        out: dict[str, Any] = {
            "questions": [r.question for r in self.items],
            "answers": [{**r.answer.to_dict(), "no_answer": r.no_answer} for r in self.items],
            # AdaptNLP's keys: the questions, and per question its top-n answer texts by rank (best first)
            "queries": [r.question for r in self.items],
            "best_answers": [[a.text for a in r.best_n] for r in self.items],
        }
        if level.at_least(DetailLevel.Medium):
            out["best_n"] = [[a.to_dict() for a in r.best_n] for r in self.items]
            contexts = [r.context for r in self.items]
            out["context"] = contexts[0] if len(contexts) == 1 else contexts
            out["pairings"] = {r.question: [[a.text for a in r.best_n], [a.score for a in r.best_n]] for r in self.items}
        if level.at_least(DetailLevel.High):
            out["no_answer_scores"] = [r.no_answer_score for r in self.items]
            out["windows"] = [r.windows for r in self.items]
            out["n_best_json"] = {
                str(i): [{"text": a.text, "probability": a.score} for a in r.best_n] for i, r in enumerate(self.items)
            }
        return out


def _probs(logits: Any, allowed: Any) -> Any:
    """Softmax over the allowed positions only (context tokens and CLS); 0 elsewhere."""
    import numpy as np

    x = np.where(allowed, logits.astype(np.float64), -np.inf)
    e = np.exp(x - x.max())
    return e / e.sum()


def window_candidates(
    start_logits: Any, end_logits: Any, offsets: Sequence[Sequence[int]], cls: int, n_best: int, max_answer_length: int
) -> tuple[list[tuple[float, int, int]], float]:
    """A window's top spans `(probability, char start, char end)` and its no-answer probability.

    Start and end probabilities are softmaxes over the window's context tokens plus CLS; a span scores
    `p_start * p_end` and no answer scores `p_start[CLS] * p_end[CLS]`.
    """
    import numpy as np

    ctx = np.array([o[0] >= 0 for o in offsets])
    allowed = ctx.copy()
    allowed[cls] = True
    ps, pe = _probs(np.asarray(start_logits), allowed), _probs(np.asarray(end_logits), allowed)
    starts = [int(k) for k in np.argsort(-ps)[: n_best + 1] if ctx[k]]
    ends = [int(k) for k in np.argsort(-pe)[: n_best + 1] if ctx[k]]
    spans = [
        (float(ps[s] * pe[e]), int(offsets[s][0]), int(offsets[e][1]))
        for s in starts
        for e in ends
        if s <= e < s + max_answer_length
    ]
    return sorted(spans, reverse=True)[:n_best], float(ps[cls] * pe[cls])


def best_answers(
    question: str,
    context: str,
    windows: Sequence[tuple[Any, Any, Sequence[Sequence[int]], int]],
    n_best: int,
    max_answer_length: int,
    allow_no_answer: bool,
) -> QAResult:
    """Merge the candidates of every window of one question into its `QAResult`.

    A span found in several windows keeps its best score. With `allow_no_answer`, the question is unanswerable
    when the least confident window's no-answer probability beats the best span (SQuAD v2 post-processing).
    """
    spans: dict[tuple[int, int], float] = {}
    null = 1.0
    for start_logits, end_logits, offsets, cls in windows:
        cands, w_null = window_candidates(start_logits, end_logits, offsets, cls, n_best, max_answer_length)
        null = min(null, w_null)
        for score, s, e in cands:
            ts, te = trim_span(context, s, e)  # a span may end on a token of whitespace alone
            s, e = (ts, te) if ts < te else (s, e)
            spans[(s, e)] = max(score, spans.get((s, e), 0.0))
    ranked = sorted(spans.items(), key=lambda kv: -kv[1])[:n_best]
    top = [Answer(context[s:e], score, s, e) for (s, e), score in ranked]
    if not top or (allow_no_answer and null > top[0].score):
        return QAResult(question, context, Answer("", null, None, None), True, top, null, len(windows))
    return QAResult(question, context, top[0], False, top, null, len(windows))


def _check_positive(name: str, value: Any) -> int:
    if not is_count(value):
        raise InvalidInputError(f"{name} must be a positive integer, got {value!r}.")
    return value


@dataclass
class HFQuestionAnswerer:
    """A QA model, its tokenizer and window settings; `predict` answers (question, context) pairs."""

    options: ClassVar[tuple[Option, ...]] = (
        Option("n_best_size", int, 20, "candidate answers kept per question (shown from Medium)", 3),
        Option("max_answer_length", int, None, "longest answer in tokens (default: the trained one, 30)", 20),
        Option("allow_no_answer", bool, None, "answer '' when no span beats no-answer (default: as trained)", True),
    )

    model: Any
    tokenizer: Any
    max_length: int = DEFAULT_MAX_LENGTH
    doc_stride: int = DEFAULT_DOC_STRIDE
    allow_no_answer: bool = False
    max_answer_length: int = 30

    @classmethod
    def from_model(cls, model: Any, tokenizer: Any, manifest: dict[str, Any] | None = None) -> HFQuestionAnswerer:
        m = manifest or {}
        limit = model_max_length(model, tokenizer)
        max_length = min(int(m.get("max_length") or DEFAULT_MAX_LENGTH), limit)
        stride = min(int(m.get("doc_stride") or DEFAULT_DOC_STRIDE), max_length // 2 - 1)
        return cls(
            model, tokenizer, max_length, stride, bool(m.get("allow_no_answer", False)), int(m.get("max_answer_length", 30))
        )

    def predict(
        self,
        texts: Sequence[Any],
        batch_size: int = 32,
        n_best_size: int = 20,
        max_answer_length: int | None = None,
        allow_no_answer: bool | None = None,
    ) -> QAResults:
        """Answer each (question, context) pair; contexts of any length are read in overlapping windows.

        `allow_no_answer` (default: whether the model was trained with unanswerable questions) lets the model
        answer "" when no span beats its no-answer score.
        """
        pairs = [t for t in texts if isinstance(t, tuple) and len(t) == 2]
        if len(pairs) != len(texts):
            raise InvalidInputError("Question answering needs (question, context) pairs; question answering needs both.")
        n_best = _check_positive("n_best_size", n_best_size)
        max_len = _check_positive("max_answer_length", max_answer_length or self.max_answer_length)
        no_answer = self.allow_no_answer if allow_no_answer is None else bool(allow_no_answer)
        enc = encode(
            self.tokenizer,
            pairs,
            self.max_length,
            LongText.Window,
            self.doc_stride,
            return_offsets=True,
            return_sequence_ids=True,
        )
        logits = forward_logits(self.model, self.tokenizer, enc, batch_size, output_keys=OUTPUT_KEYS)
        per_example: list[list[Any]] = [[] for _ in pairs]
        for w, sid in enumerate(enc.sample_ids):
            ids = enc.features["input_ids"][w]
            n = len(ids)  # the batch was padded further
            per_example[sid].append(
                (logits[w][0][:n], logits[w][1][:n], _context_offsets(enc, w), _cls_index(ids, self.tokenizer))
            )
        return QAResults([best_answers(q, c, per_example[i], n_best, max_len, no_answer) for i, (q, c) in enumerate(pairs)])


def qa_loss(pred: tuple[Any, Any], start_positions: Any, end_positions: Any) -> Any:
    """Mean of the start and end cross-entropies (the loss of transformers' QA heads)."""
    import torch.nn.functional as F

    start_logits, end_logits = pred
    return (F.cross_entropy(start_logits.float(), start_positions) + F.cross_entropy(end_logits.float(), end_positions)) / 2


# ---------------------------------------------------------------------------------------------------
# tuner
# ---------------------------------------------------------------------------------------------------
class QuestionAnsweringTuner(Tuner):
    """Fine-tune an extractive QA model with fastai; exact match and F1 (official SQuAD) are reported every epoch.

    Example:
        >>> tuner = QuestionAnsweringTuner(dsets.dataloaders(batch_size=16), model_path)
        >>> tuner.tune(2, lr=5e-5)
        >>> tuner.predict({"question": "Who won?", "context": "Arsenal won the cup."})
    """

    output_keys = OUTPUT_KEYS
    options = (
        Option("n_best_size", int, 20, "candidate spans per window scored in validation", 20),
        Option("max_answer_length", int, 30, "longest answer in tokens", 30),
    )
    n_best_size: int
    max_answer_length: int
    datasets: QuestionAnsweringDatasets

    def _check_data(self, dls: Any) -> Any:
        _check_positive("n_best_size", self.n_best_size)
        _check_positive("max_answer_length", self.max_answer_length)
        return super()._check_data(dls)

    @functools.cached_property
    def scorer(self) -> Any:
        """The validation pass's answers, scored once per epoch for every metric (`ValidationScorer`)."""
        from ..engine import ValidationScorer

        return ValidationScorer(self._collect, self._score, list(self.spec.metrics))

    def default_loss(self) -> Any:
        return qa_loss

    def default_metrics(self) -> list[Any]:
        return self.scorer.metrics()

    # validation metrics: the logits of each validation window, in order, then the shared post-processing
    @staticmethod
    def _collect(learn: Any) -> list[tuple[Any, Any]]:
        start, end = learn.pred
        mask = learn.xb[0]["attention_mask"].bool()
        return [(s[m].float().cpu().numpy(), e[m].float().cpu().numpy()) for s, e, m in zip(start, end, mask, strict=True)]

    def _score(self, kept: list[list[tuple[Any, Any]]]) -> dict[str, float]:
        logits = [w for batch in kept for w in batch]
        dsets = self.datasets
        windows = dsets.split("valid")
        if len(logits) != len(windows):  # a partial validation run (e.g. interrupted): nothing to score
            return {"exact_match": float("nan"), "f1": float("nan")}
        examples = dsets.valid_examples
        grouped: dict[int, list[Any]] = collections.defaultdict(list)
        for (s, e), ex_id, offsets, ids in zip(
            logits, windows["example_id"], windows["offset_mapping"], windows["input_ids"], strict=True
        ):
            grouped[ex_id].append((s, e, offsets, _cls_index(ids, self.tokenizer)))
        q_col, c_col, a_col = dsets.cols
        preds, refs = [], []
        for i, ex in enumerate(examples):
            res = best_answers(ex[q_col], ex[c_col], grouped[i], self.n_best_size, self.max_answer_length, dsets.unanswerable)
            preds.append(res.answer.text)
            refs.append(_answers_of(ex[a_col], "")[0])
        return squad_scores(preds, refs)

    def predict(  # type: ignore[override]  # QA takes a question and a context
        self,
        question: Any,
        context: Any = None,
        bs: int = 32,
        detail_level: DetailLevel | str = DetailLevel.Low,
        **options: Any,
    ) -> dict[str, Any]:
        """Answer a question about a context, or equal-length lists of both (options as `EasyQuestionAnswering`)."""
        return super().predict(qa_pairs(question, context), bs, detail_level, **options)

    def heldout_texts(self, n: int = 200) -> list[Any]:
        """Up to `n` validation (question, context) pairs, for the int8 parity check."""
        q_col, c_col, _ = self.datasets.cols
        ex = self.datasets.valid_examples.select(range(min(n, len(self.datasets.valid_examples))))
        return list(zip(ex[q_col], ex[c_col], strict=True))

    def _manifest(self) -> dict[str, Any]:
        return {"max_answer_length": self.max_answer_length}


# ---------------------------------------------------------------------------------------------------
# Easy module and the task declaration
# ---------------------------------------------------------------------------------------------------
def qa_pairs(query: Any, context: Any) -> Any:
    """Front-door inputs from a question and a context, two equal-length lists, or (without a context) objects
    with `question` and `context` fields; the front door checks every text."""
    if context is None:
        if isinstance(query, str):
            raise InvalidInputError("Pass a context: predict_qa(question, context), or objects with 'question' and 'context'.")
        return query
    if isinstance(query, str) != isinstance(context, str):
        raise InvalidInputError("Pass one question with one context, or two lists of the same length.")
    if isinstance(query, str):
        return [(query, context)]
    if isinstance(query, (bytes, dict)) or not hasattr(query, "__len__") or not hasattr(context, "__len__"):
        raise InvalidInputError("Pass the questions and contexts as two lists of the same length.")
    if len(query) != len(context):
        raise InvalidInputError(f"Got {len(query)} questions and {len(context)} contexts; pass lists of the same length.")
    return list(zip(query, context, strict=True))


class EasyQuestionAnswering(EasyBase):
    """Answer questions about texts with any extractive QA folder or hub model (adapt save, plain transformers).

    Example:
        >>> qa = EasyQuestionAnswering()
        >>> qa.predict_qa("Who won the cup?", "Arsenal won the cup on Saturday.", model_name_or_path="models/qa")
        {'questions': ['Who won the cup?'], 'answers': [{'answer': 'Arsenal', 'score': 0.93, 'start': 0, 'end': 7,
        'no_answer': False}]}
    """


    def predict_qa(
        self,
        query: Any,
        context: Any,
        n_best_size: int = 20,
        mini_batch_size: int = 32,
        model_name_or_path: ModelRef = DEFAULT_QA_MODEL,
        detail_level: DetailLevel | str = DetailLevel.Low,
        **options: Any,
    ) -> dict[str, Any]:
        """Best answer to each question in its context: text, score and character `start`/`end` in the context.

        `query` and `context` are a string each, or equal-length lists paired element by element. Low also has
        AdaptNLP's `queries` and `best_answers` (the top `n_best_size` answer texts per query, best first). Medium
        and High add the top `n_best_size` candidates (`best_n`); High adds no-answer probabilities and window counts. An
        unanswerable question (models trained with some, or `allow_no_answer=True`) gives `"answer": ""`,
        `"no_answer": true`. Contexts longer than the model maximum are read in overlapping windows.
        Options: `max_answer_length`, `allow_no_answer`.
        """
        inputs = qa_pairs(query, context)
        return self.predict(inputs, model_name_or_path, mini_batch_size, detail_level, n_best_size=n_best_size, **options)


TASKS = (
    TaskSpec(
        name=TASK,
        summary="extract the answer to a question from a context (SQuAD v1/v2)",
        aliases=("qa", "extractive_qa"),
        datasets=QuestionAnsweringDatasets,
        tuner=QuestionAnsweringTuner,
        easy=EasyQuestionAnswering,
        predictor=HFQuestionAnswerer,
        fields=(Field("question"), Field("context")),
        auto_class="AutoModelForQuestionAnswering",
        pipeline_tag="question-answering",
        heads=(HF_HEAD,),
        verb="predict_qa",
        metrics=("exact_match", "f1"),
        fast_copies=frozenset({"int8"}),
        data_forms=("jsonl", "csv"),
    ),
)
