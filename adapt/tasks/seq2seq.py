"""The encoder-decoder engine shared by summarization and translation.

`Seq2SeqDatasets` tokenizes source and target columns (separate max lengths), `Seq2SeqTuner` trains with
teacher forcing and generates on the validation set each epoch for its text metrics, and `HFSeq2SeqGenerator`
(batched `model.generate`) is the prediction path of the tuner's `predict`, the Easy modules and the server.
Task modules (`summarization`, `translation`) pick column names, the metric and the output name.
Importing this module is cheap: datasets, transformers, torch and fastai load when used.
"""

from __future__ import annotations

import functools

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

from ..data import LoadOptions, TaskDatasets, check_columns, check_rows, row_name
from ..easy import EasyBase, ModelRef
from ..enums import DetailLevel
from ..errors import InvalidDataError, InvalidInputError, WrongTaskError, is_count
from ..generation import GENERATE_OPTIONS, check_generate_options, check_num_tokens, generate_batch, seeded
from ..inference import TEXT, model_max_length, note_truncated, progress
from ..options import Option
from ..results import Results
from ..tuner import Tuner
from .base import TaskSpec
from .language_modeling import IGNORE, token_cross_entropy

logger = logging.getLogger(__name__)

SEQ2SEQ_TASKS = ("summarization", "translation")
SEQ2SEQ_HEADS = ("ForConditionalGeneration", "EncoderDecoderModel")
DEFAULT_MAX_SOURCE = 512
DEFAULT_MAX_TARGET = 128

__all__ = [
    "EasySeq2SeqBase",
    "HFSeq2SeqGenerator",
    "Seq2SeqCollate",
    "Seq2SeqDatasets",
    "Seq2SeqResult",
    "Seq2SeqResults",
    "Seq2SeqTuner",
    "seq2seq_task",
]


# ---------------------------------------------------------------------------------------------------
# datasets
# ---------------------------------------------------------------------------------------------------
def _text_problem(value: Any, col: str) -> str | None:
    if isinstance(value, str) and value.strip():
        return None
    what = "empty" if isinstance(value, str) else f"a {type(value).__name__}, not text"
    return f"{col!r} is {what} ({value!r:.60})"


def _check_texts(values: Sequence[Any], indices: Sequence[int], col: str, split: str) -> list[str]:
    for i, v in zip(indices, values, strict=True):
        why = _text_problem(v, col)
        if why is not None:
            raise InvalidDataError(f"{row_name(split, i)}: {why}.")
    return list(values)


def _tokenize_pairs(
    batch: dict[str, list[Any]],
    indices: list[int],
    tokenizer: Any,
    cols: tuple[str, str],
    lengths: tuple[int, int],
    prefix: str,
    split: str,
) -> dict[str, Any]:
    """Tokenize sources (with `prefix`) and targets (`text_target`), truncated to their max lengths; flag truncation."""
    src = [prefix + s for s in _check_texts(batch[cols[0]], indices, cols[0], split)]
    tgt = _check_texts(batch[cols[1]], indices, cols[1], split)
    enc = tokenizer(src, truncation=True, max_length=lengths[0], verbose=False)
    labels = tokenizer(text_target=tgt, truncation=True, max_length=lengths[1], verbose=False)["input_ids"]
    full_src = tokenizer(src, truncation=False, verbose=False)["input_ids"]
    full_tgt = tokenizer(text_target=tgt, truncation=False, verbose=False)["input_ids"]
    out = dict(enc)
    out["labels"] = labels
    out["source_truncated"] = [len(f) > lengths[0] for f in full_src]
    out["target_truncated"] = [len(f) > lengths[1] for f in full_tgt]
    return out


class Seq2SeqCollate:
    """Pads sources and labels per batch (labels with -100) with transformers' `DataCollatorForSeq2Seq`.

    Once the tuner sets `model`, the collator also builds the teacher-forcing `decoder_input_ids` (labels
    shifted right, starting from the model's decoder start token).
    """

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.model: Any = None

    def __call__(self, rows: list[dict[str, Any]]) -> Any:
        from transformers import DataCollatorForSeq2Seq

        return DataCollatorForSeq2Seq(self.tokenizer, model=self.model, label_pad_token_id=IGNORE)(rows)


def _seq2seq_options(cols: tuple[str, str]) -> tuple[Option, ...]:
    return (
        Option("source_col", str, cols[0], "column of the source texts", cols[0]),
        Option("target_col", str, cols[1], "column of the target texts", cols[1]),
        Option("max_source_length", int, None, f"tokens kept per source (default {DEFAULT_MAX_SOURCE})", 64),
        Option("max_target_length", int, None, f"tokens kept per target (default {DEFAULT_MAX_TARGET})", 32),
        Option("prefix", str, "", "prepended to every source (a T5 task prefix), saved with the model", ""),
    )


class Seq2SeqDatasets(TaskDatasets):
    """Source and target text columns tokenized for an encoder-decoder model, with separate max lengths.

    Over-long texts are truncated (a warning counts them; nothing fails). `prefix` is prepended to every source
    (T5-style task prefixes such as "summarize: ") and saved with the model, so inference adds it too.
    """

    default_cols: ClassVar[tuple[str, str]] = ("source", "target")

    def __init__(
        self,
        train_dset: Any,
        valid_dset: Any = None,
        tokenizer_name: str | None = None,
        source_col: str | None = None,
        target_col: str | None = None,
        max_source_length: int | None = None,
        max_target_length: int | None = None,
        prefix: str = "",
        **shared: Any,
    ) -> None:
        """`shared`: `TaskDatasets` arguments (`tokenizer`, `auto_kwargs`, `num_proc`, `tokenize_kwargs`)."""
        super().__init__(train_dset, valid_dset, tokenizer_name, tokenize=False, label_keys=["labels"], **shared)
        self.cols = (source_col or self.default_cols[0], target_col or self.default_cols[1])
        splits = (("train", self.train), ("validation", self.valid))
        for split, d in splits:
            check_columns(d.column_names, list(self.cols), f"{split} split")
        src, tgt = self.cols
        check_rows(splits, self.cols, lambda s, t: _text_problem(s, src) or _text_problem(t, tgt))
        if not isinstance(prefix, str):
            raise InvalidInputError(f"prefix must be a string, got {type(prefix).__name__}.")
        limit = model_max_length(None, self.tokenizer)
        self.max_source_length = _check_length("max_source_length", max_source_length, min(DEFAULT_MAX_SOURCE, limit))
        self.max_target_length = _check_length("max_target_length", max_target_length, min(DEFAULT_MAX_TARGET, limit))
        self.prefix = prefix
        self.collate = Seq2SeqCollate(self.tokenizer)
        self.valid_sources = list(self.valid[self.cols[0]])
        self.train = self._tokenized(self.train, "train")
        self.valid = self._tokenized(self.valid, "validation")
        self._publish()

    @property
    def max_length(self) -> int:
        return self.max_source_length

    def manifest(self) -> dict[str, Any]:
        return {
            "max_source_length": self.max_source_length,
            "max_target_length": self.max_target_length,
            "prefix": self.prefix,
            "source_col": self.cols[0],
            "target_col": self.cols[1],
        }

    def _tokenized(self, dset: Any, split: str) -> Any:
        fn = partial(
            _tokenize_pairs,
            tokenizer=self.tokenizer,
            cols=self.cols,
            lengths=(self.max_source_length, self.max_target_length),
            prefix=self.prefix,
            split=split,
        )
        out = self._map_split(dset, fn, "Tokenizing", split)
        n_src, n_tgt = sum(out["source_truncated"]), sum(out["target_truncated"])
        if n_src or n_tgt:
            logger.warning(
                "%s split: %d of %d sources exceed max_source_length=%d and %d targets exceed max_target_length=%d tokens; "
                "they were truncated",
                split,
                n_src,
                len(out),
                self.max_source_length,
                n_tgt,
                self.max_target_length,
            )
        return out

    def default_collate(self) -> Any:
        return self.collate

    def row_view(self, row: dict[str, Any], raw: bool = False) -> dict[str, Any]:
        """Decoded source and target (token counts when `raw`)."""
        labels = [t for t in row["labels"] if t != IGNORE]
        if raw:
            return {"source_tokens": len(row["input_ids"]), "target_tokens": len(labels)}
        decode = partial(self.tokenizer.decode, skip_special_tokens=True)
        return {self.cols[0]: decode(row["input_ids"]), self.cols[1]: decode(labels)}

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(train={len(self.train)}, valid={len(self.valid)}, "
            f"max_source_length={self.max_source_length}, max_target_length={self.max_target_length})"
        )

    # -- constructors ---------------------------------------------------------------------------------------
    options: ClassVar[tuple[Option, ...]] = _seq2seq_options(("source", "target"))
    max_length_option = "max_source_length"
    unused_shared = ("tokenize_kwargs",)  # lengths come from max_source_length and max_target_length

    def __init_subclass__(cls, **kwargs: Any) -> None:
        cls.options = _seq2seq_options(cls.default_cols)  # the column defaults are the task's
        super().__init_subclass__(**kwargs)

    @classmethod
    def _from_splits(
        cls, train: Any, valid: Any, tokenizer_name: str | None, load: LoadOptions, **options: Any
    ) -> Seq2SeqDatasets:
        return cls(train, valid, tokenizer_name=tokenizer_name, **options, **load.build_kwargs())


def _check_length(name: str, value: Any, default: int) -> int:
    if value is None:
        return default
    if not is_count(value, 2):
        raise InvalidInputError(f"{name} must be an integer >= 2, got {value!r}.")
    return value


# ---------------------------------------------------------------------------------------------------
# generation: the path shared by Tuner.predict, the Easy modules and the server
# ---------------------------------------------------------------------------------------------------
@dataclass
class Seq2SeqResult:
    """One source text and its generated output; `token_scores` are log-probabilities of the generated tokens."""

    source: str
    output: str
    token_ids: list[int]
    token_scores: list[float] | None = None
    truncated: bool = False


@dataclass
class Seq2SeqResults(Results):
    """Outputs for a list of sources; `output_key` names them in `to_dict` ("summaries" or "translations")."""

    items: list[Seq2SeqResult]
    output_key: str = "outputs"

    def decisions(self) -> list[str]:
        return [r.output for r in self.items]

    def to_dict(self, detail_level: DetailLevel | str = DetailLevel.Low) -> dict[str, Any]:
        """Low: `sentences` and the outputs. Medium adds whether each source was truncated. High adds the generated
        token ids and their log-probabilities."""
        level = DetailLevel(detail_level)
        out: dict[str, Any] = {"sentences": [r.source for r in self.items], self.output_key: [r.output for r in self.items]}
        if level.at_least(DetailLevel.Medium):
            out["truncated"] = [r.truncated for r in self.items]
        if level.at_least(DetailLevel.High):
            out["token_ids"] = [r.token_ids for r in self.items]
            out["token_scores"] = [r.token_scores for r in self.items]
        return out


@dataclass
class HFSeq2SeqGenerator:
    """An encoder-decoder model, its tokenizer and the source settings it was trained with."""

    options: ClassVar[tuple[Option, ...]] = (
        Option("num_tokens_to_produce", int, None, "tokens to generate (default: the trained target length)", 8),
        Option("prefix", str, None, "prepended to every source (default: the trained prefix)", ""),
        Option("t5_prefix", str, None, "AdaptNLP's T5 task prefix: 'summarize' prepends 'summarize: '", "summarize"),
        Option("max_length", int, None, "AdaptNLP's name of num_tokens_to_produce", 8),
        *GENERATE_OPTIONS,
    )
    computes_scores: ClassVar[bool] = True
    output_key: ClassVar[str] = "outputs"

    model: Any
    tokenizer: Any
    max_source_length: int = DEFAULT_MAX_SOURCE
    max_target_length: int = DEFAULT_MAX_TARGET
    prefix: str = ""

    @classmethod
    def from_model(cls, model: Any, tokenizer: Any, manifest: dict[str, Any] | None = None) -> HFSeq2SeqGenerator:
        m = manifest or {}
        limit = model_max_length(model, tokenizer)
        src = min(int(m.get("max_source_length") or DEFAULT_MAX_SOURCE), limit)
        return cls(model, tokenizer, src, int(m.get("max_target_length") or DEFAULT_MAX_TARGET), str(m.get("prefix") or ""))

    def predict(
        self,
        texts: Sequence[str],
        batch_size: int = 32,
        scores: bool = False,
        num_tokens_to_produce: int | None = None,
        seed: int | None = None,
        prefix: str | None = None,
        t5_prefix: str | None = None,
        max_length: int | None = None,
        **generate_options: Any,
    ) -> Seq2SeqResults:
        """Generate an output per source with `model.generate` (greedy by default), longest sources batched first.

        `num_tokens_to_produce` defaults to the trained `max_target_length`; sources longer than `max_source_length`
        are truncated (flagged in the result and logged). The other options (`GENERATE_OPTIONS`: num_beams, top_k,
        top_p, temperature, no_repeat_ngram_size, ...) go to `generate`; `scores=True` adds log-probabilities.
        """
        if t5_prefix is not None:
            if prefix is not None:
                raise InvalidInputError("Pass prefix= or t5_prefix= (AdaptNLP's), not both.")
            prefix = f"{t5_prefix.strip().rstrip(':')}: "
        if max_length is not None:
            if num_tokens_to_produce is not None:
                raise InvalidInputError("Pass num_tokens_to_produce= or max_length= (AdaptNLP's), not both.")
            num_tokens_to_produce = max_length
        n = check_num_tokens(self.max_target_length if num_tokens_to_produce is None else num_tokens_to_produce)
        options = check_generate_options(batch_size, generate_options, defaults={"num_beams": 1, "do_sample": False})
        pre = self.prefix if prefix is None else prefix
        enc = self.tokenizer([pre + t for t in texts], truncation=True, max_length=self.max_source_length, verbose=False)
        full = self.tokenizer([pre + t for t in texts], truncation=False, verbose=False)["input_ids"]
        cut = [len(f) > self.max_source_length for f in full]
        if any(cut):
            note_truncated(sum(cut), f"were sources over {self.max_source_length} tokens and were truncated")
        feats = {k: enc[k] for k in ("input_ids", "attention_mask")}
        order = sorted(range(len(texts)), key=lambda i: len(feats["input_ids"][i]), reverse=True)
        items: list[Seq2SeqResult | None] = [None] * len(texts)
        with seeded(seed):
            for start in progress(list(range(0, len(order), batch_size)), len(order)):
                idx = order[start : start + batch_size]
                outs = generate_batch(self.model, self.tokenizer, feats, idx, n, scores, options, left_pad=False)
                for i, (ids, token_scores) in zip(idx, outs, strict=True):
                    text = self.tokenizer.decode(ids, skip_special_tokens=True).strip()
                    items[i] = Seq2SeqResult(texts[i], text, ids, token_scores, cut[i])
        return Seq2SeqResults([r for r in items if r is not None], self.output_key)


# ---------------------------------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------------------------------
def _warm_start(location: str, tokenizer: Any) -> Any:
    """A BERT2BERT-style `EncoderDecoderModel` from one encoder checkpoint (decoder gets new cross-attention)."""
    from transformers import EncoderDecoderModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        model = EncoderDecoderModel.from_encoder_decoder_pretrained(location, location)
    start = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    eos = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    if start is None or eos is None or tokenizer.pad_token_id is None:
        raise WrongTaskError(f"{location!r}: the tokenizer needs start (CLS/BOS), end (SEP/EOS) and pad tokens.")
    configs: tuple[Any, ...] = (model.config, model.generation_config)
    for cfg in configs:
        cfg.decoder_start_token_id, cfg.eos_token_id, cfg.pad_token_id = start, eos, tokenizer.pad_token_id
    model.config.vocab_size = model.config.decoder.vocab_size
    logger.info("warm-started an encoder-decoder model from %s (encoder and decoder; cross-attention is new)", location)
    return model


# ---------------------------------------------------------------------------------------------------
# tuner
# ---------------------------------------------------------------------------------------------------
class Seq2SeqTuner(Tuner):
    """Fine-tune an encoder-decoder model with fastai: teacher forcing in training, generation in validation.

    Subclasses set `task` and `score_texts` (the text metric, named as the task's `metrics`). A seq2seq checkpoint
    (BART, T5, Marian, a saved `EncoderDecoderModel`) loads as is; an encoder such as BERT is warm-started as
    BERT2BERT.
    """

    task: ClassVar[str] = "seq2seq"
    also_loads = SEQ2SEQ_TASKS
    datasets: Seq2SeqDatasets

    @functools.cached_property
    def scorer(self) -> Any:
        """The validation pass's generations, scored once per epoch for every metric (`ValidationScorer`)."""
        from ..engine import ValidationScorer

        return ValidationScorer(self._collect, self._score, list(self.spec.metrics))

    @property
    def model(self) -> Any:
        return self.__dict__["model"]

    @model.setter
    def model(self, model: Any) -> None:
        """The collator shifts the labels right into decoder inputs with the model being trained (teacher forcing)."""
        self.__dict__["model"] = model
        self.datasets.collate.model = model

    def _check_model(self, model: Any) -> Any:
        if not model.config.is_encoder_decoder:
            raise WrongTaskError(f"{type(model).__name__} is not an encoder-decoder model.")
        return model

    def _from_pretrained(self, location: str, config: Any) -> Any:
        import transformers
        from transformers.models.auto import modeling_auto as auto

        kind = config.model_type
        if kind in auto.MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES:
            return transformers.AutoModelForSeq2SeqLM.from_pretrained(location, config=config, trust_remote_code=False)
        if kind in auto.MODEL_FOR_MASKED_LM_MAPPING_NAMES and kind in auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
            return _warm_start(location, self.tokenizer)
        raise WrongTaskError(
            f"{self.base_model!r} is a {kind!r} model: neither an encoder-decoder (BART, T5, ...) nor an encoder (BERT, "
            f"RoBERTa, ...) that can warm-start one, so it cannot be trained for {self.task}."
        )

    def default_loss(self) -> Any:
        return token_cross_entropy

    def default_metrics(self) -> list[Any]:
        return self.scorer.metrics()

    @staticmethod
    def score_texts(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
        """The task's text metric(s) of `predictions` against `references`."""
        raise NotImplementedError

    def _collect(self, learn: Any) -> tuple[list[str], list[str]]:
        """Greedy generation for one validation batch, decoded, with its decoded references."""
        x, labels = learn.xb[0], learn.yb[0]
        rows = [
            [t for t, m in zip(ids, mask, strict=True) if m]
            for ids, mask in zip(x["input_ids"].tolist(), x["attention_mask"].tolist(), strict=True)
        ]
        feats = {"input_ids": rows, "attention_mask": [[1] * len(r) for r in rows]}
        greedy = {"num_beams": 1, "do_sample": False}
        n = self.datasets.max_target_length
        outs = generate_batch(self.model, self.tokenizer, feats, range(len(rows)), n, False, greedy, left_pad=False)
        preds = [self.tokenizer.decode(ids, skip_special_tokens=True).strip() for ids, _ in outs]
        refs = [
            self.tokenizer.decode([t for t in row if t != IGNORE], skip_special_tokens=True).strip() for row in labels.tolist()
        ]
        return preds, refs

    def _score(self, kept: list[tuple[list[str], list[str]]]) -> dict[str, float]:
        preds = [p for batch_preds, _ in kept for p in batch_preds]
        refs = [r for _, batch_refs in kept for r in batch_refs]
        self._empty_outputs = (sum(not p for p in preds), len(preds))  # for the learning check after tune()
        return self.score_texts(preds, refs)

    def _learning_warning(self) -> str | None:
        empty, n = getattr(self, "_empty_outputs", (0, 0))
        self._empty_outputs = (0, 0)  # read once: a later tune() without validation scoring says nothing
        if not n or empty < n:
            return None
        return (f"The model generates empty text for all {n} validation inputs: it has learned to stop at once. "
                "Try more epochs, a higher learning rate, or check that the targets are not empty.")

    def heldout_texts(self, n: int = 200) -> list[Any]:
        return list(self.datasets.valid_sources[:n])


# ---------------------------------------------------------------------------------------------------
# Easy base and the declaration helper
# ---------------------------------------------------------------------------------------------------
class EasySeq2SeqBase(EasyBase):
    """What `EasySummarizer` and `EasyTranslator` share: load any encoder-decoder folder or hub model, generate."""

    def run(
        self,
        text: Any,
        model_name_or_path: ModelRef,
        mini_batch_size: int = 32,
        num_tokens_to_produce: int | None = None,
        detail_level: DetailLevel | str = DetailLevel.Low,
        **generate_options: Any,
    ) -> dict[str, Any]:
        """Outputs for one text or a list, batched: `{"sentences": [...], "<summaries|translations>": [...]}`.

        `num_tokens_to_produce` defaults to the trained target length (128 for other models). Greedy by default;
        options such as `num_beams=4`, `do_sample=True, seed=0`, `no_repeat_ngram_size=3` or a T5 `prefix=` are
        passed on (`GENERATE_OPTIONS`). Medium adds `truncated` (the source was cut to the model's input length);
        High adds token ids and log-probabilities.
        """
        if num_tokens_to_produce is not None:
            generate_options["num_tokens_to_produce"] = check_num_tokens(num_tokens_to_produce)
        return self.predict(text, model_name_or_path, mini_batch_size, detail_level, **generate_options)


def seq2seq_task(
    name: str, summary: str, aliases: tuple[str, ...], classes: tuple[type, ...], verb: str, metrics: tuple[str, ...]
) -> TaskSpec:
    """The declaration of an encoder-decoder task: `classes` are its datasets, tuner, Easy and predictor classes."""
    datasets, tuner, easy, predictor = classes
    return TaskSpec(
        name=name,
        summary=summary,
        aliases=aliases,
        datasets=datasets,
        tuner=tuner,
        easy=easy,
        predictor=predictor,
        fields=TEXT,
        auto_class="AutoModelForSeq2SeqLM",
        pipeline_tag=name,  # "summarization" and "translation" are the Hub's pipeline tags too
        heads=SEQ2SEQ_HEADS,
        verb=verb,
        metrics=metrics,
    )
