"""The encoder-decoder engine shared by summarization and translation.

`Seq2SeqDatasets` tokenizes source and target columns (separate max lengths), `Seq2SeqTuner` trains with
teacher forcing and generates on the validation set each epoch for its text metrics, and `HFSeq2SeqGenerator`
(batched `model.generate`) is the prediction path of the tuner's `predict`, the Easy modules and the server.
Task modules (`summarization`, `translation`) pick column names, the metric and the output name.
Importing this module is cheap: datasets, transformers, torch and fastai load when used.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

from ..data import TaskDatasets, check_columns, dataframe_splits, train_valid_splits
from ..enums import DetailLevel
from ..errors import InvalidChoiceError, InvalidInputError, ModelNotFoundError, WrongTaskError
from ..inference import EasyBase, _pad_batch, model_max_length, normalize_texts
from ..tuner import Tuner
from .language_modeling import IGNORE, _check_num_tokens, _cut_at_eos, _id_set, _seeded, token_cross_entropy

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
    "load_seq2seq_model",
]


# ---------------------------------------------------------------------------------------------------
# datasets
# ---------------------------------------------------------------------------------------------------
def _check_texts(values: Sequence[Any], indices: Sequence[int], col: str, split: str) -> list[str]:
    for i, v in zip(indices, values, strict=True):
        if not isinstance(v, str) or not v.strip():
            what = "empty" if isinstance(v, str) else f"a {type(v).__name__}, not text"
            raise InvalidInputError(f"Row {i} of the {split} split: {col!r} is {what} ({v!r:.60}).")
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
        auto_kwargs: dict[str, Any] | None = None,
        tokenizer: Any = None,
        num_proc: int | None = None,
    ) -> None:
        super().__init__(
            train_dset,
            valid_dset,
            tokenizer_name=tokenizer_name,
            tokenize=False,
            auto_kwargs=auto_kwargs,
            tokenizer=tokenizer,
            label_keys=["labels"],
            num_proc=num_proc,
        )
        self.cols = (source_col or self.default_cols[0], target_col or self.default_cols[1])
        for split, d in (("train", self.train), ("validation", self.valid)):
            check_columns(d.column_names, list(self.cols), f"{split} split")
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

    @property
    def max_length(self) -> int:
        return self.max_source_length

    def _tokenized(self, dset: Any, split: str) -> Any:
        fn = partial(
            _tokenize_pairs,
            tokenizer=self.tokenizer,
            cols=self.cols,
            lengths=(self.max_source_length, self.max_target_length),
            prefix=self.prefix,
            split=split,
        )
        out = dset.map(
            fn,
            batched=True,
            with_indices=True,
            remove_columns=dset.column_names,
            num_proc=self.num_proc,
            desc=f"Tokenizing ({split})",
        )
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
    @classmethod
    def from_hf(
        cls,
        dataset_or_dict: Any,
        tokenizer_name: str,
        source_col: str | None = None,
        target_col: str | None = None,
        train_split: str = "train",
        valid_split: str = "validation",
        split_pct: float = 0.2,
        seed: int | None = 42,
        max_source_length: int | None = None,
        max_target_length: int | None = None,
        prefix: str = "",
        auto_kwargs: dict[str, Any] | None = None,
        num_proc: int | None = None,
    ) -> Seq2SeqDatasets:
        """From a `datasets.Dataset` (split by `split_pct`) or a `DatasetDict` with named splits."""
        train, valid = train_valid_splits(dataset_or_dict, train_split, valid_split, split_pct, seed)
        return cls(
            train,
            valid,
            tokenizer_name=tokenizer_name,
            source_col=source_col,
            target_col=target_col,
            max_source_length=max_source_length,
            max_target_length=max_target_length,
            prefix=prefix,
            auto_kwargs=auto_kwargs,
            num_proc=num_proc,
        )

    @classmethod
    def from_dfs(
        cls,
        train_df: Any,
        tokenizer_name: str,
        valid_df: Any = None,
        source_col: str | None = None,
        target_col: str | None = None,
        split_func: Callable[[Any], tuple[Sequence[int], Sequence[int]]] | None = None,
        split_pct: float = 0.2,
        seed: int | None = 42,
        max_source_length: int | None = None,
        max_target_length: int | None = None,
        prefix: str = "",
        auto_kwargs: dict[str, Any] | None = None,
        num_proc: int | None = None,
    ) -> Seq2SeqDatasets:
        """From pandas DataFrames; without `valid_df`, `split_func(df)` or a seeded `split_pct` split is used."""
        cols = [source_col or cls.default_cols[0], target_col or cls.default_cols[1]]
        train, valid = dataframe_splits(train_df, cols, valid_df, split_func, split_pct, seed)
        return cls.from_hf(
            {"train": train, "validation": valid},
            tokenizer_name,
            *cols,
            seed=seed,
            max_source_length=max_source_length,
            max_target_length=max_target_length,
            prefix=prefix,
            auto_kwargs=auto_kwargs,
            num_proc=num_proc,
        )

    @classmethod
    def from_csvs(
        cls,
        train_csv: str | os.PathLike[str],
        tokenizer_name: str,
        valid_csv: str | os.PathLike[str] | None = None,
        source_col: str | None = None,
        target_col: str | None = None,
        split_pct: float = 0.2,
        seed: int | None = 42,
        max_source_length: int | None = None,
        max_target_length: int | None = None,
        prefix: str = "",
        auto_kwargs: dict[str, Any] | None = None,
        num_proc: int | None = None,
        **kwargs: Any,
    ) -> Seq2SeqDatasets:
        """From CSV files read by `datasets`; `**kwargs` go to the CSV reader."""
        from pathlib import Path

        from datasets import load_dataset

        files = {"train": str(train_csv), **({"validation": str(valid_csv)} if valid_csv is not None else {})}
        for f in files.values():
            if not Path(f).is_file():
                raise FileNotFoundError(f"CSV file {f!r} does not exist.")
        return cls.from_hf(
            load_dataset("csv", data_files=files, **kwargs),
            tokenizer_name,
            source_col,
            target_col,
            split_pct=split_pct,
            seed=seed,
            max_source_length=max_source_length,
            max_target_length=max_target_length,
            prefix=prefix,
            auto_kwargs=auto_kwargs,
            num_proc=num_proc,
        )


def _check_length(name: str, value: Any, default: int) -> int:
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or value < 2:
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
class Seq2SeqResults:
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

    model: Any
    tokenizer: Any
    max_source_length: int = DEFAULT_MAX_SOURCE
    max_target_length: int = DEFAULT_MAX_TARGET
    prefix: str = ""
    output_key: ClassVar[str] = "outputs"

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
        num_tokens_to_produce: int | None = None,
        num_beams: int = 1,
        do_sample: bool = False,
        seed: int | None = None,
        prefix: str | None = None,
        with_scores: bool = False,
        **generate_kwargs: Any,
    ) -> Seq2SeqResults:
        """Generate an output per source with `model.generate` (greedy by default), longest sources batched first.

        `num_tokens_to_produce` defaults to the trained `max_target_length`; sources longer than `max_source_length`
        are truncated (flagged in the result and logged). Other `generate_kwargs` (top_k, top_p, temperature,
        length_penalty, no_repeat_ngram_size, ...) go to `generate`; ones it rejects raise `InvalidInputError`.
        """
        n = _check_num_tokens(self.max_target_length if num_tokens_to_produce is None else num_tokens_to_produce)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidInputError(f"batch size must be >= 1, got {batch_size}.")
        if not isinstance(num_beams, int) or isinstance(num_beams, bool) or num_beams < 1:
            raise InvalidInputError(f"num_beams must be a positive integer (1 = greedy), got {num_beams!r}.")
        if generate_kwargs.get("num_return_sequences", 1) != 1:
            raise InvalidInputError("num_return_sequences must be 1; call again with another seed for more samples.")
        pre = self.prefix if prefix is None else prefix
        enc = self.tokenizer([pre + t for t in texts], truncation=True, max_length=self.max_source_length, verbose=False)
        full = self.tokenizer([pre + t for t in texts], truncation=False, verbose=False)["input_ids"]
        cut = [len(f) > self.max_source_length for f in full]
        if any(cut):
            logger.warning("%d of %d sources exceed %d tokens and were truncated", sum(cut), len(texts), self.max_source_length)
        feats = {k: enc[k] for k in self.tokenizer.model_input_names if k in enc}
        order = sorted(range(len(texts)), key=lambda i: len(feats["input_ids"][i]), reverse=True)
        kwargs = {"num_beams": num_beams, "do_sample": do_sample, **generate_kwargs}
        items: list[Seq2SeqResult | None] = [None] * len(texts)
        with _seeded(seed):
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                for i, (ids, scores) in zip(idx, self._generate(feats, idx, n, with_scores, kwargs), strict=True):
                    text = self.tokenizer.decode(ids, skip_special_tokens=True).strip()
                    items[i] = Seq2SeqResult(texts[i], text, ids, scores, cut[i])
        return Seq2SeqResults([r for r in items if r is not None], self.output_key)

    def _generate(
        self, feats: dict[str, list[list[int]]], idx: list[int], n: int, with_scores: bool, kwargs: dict[str, Any]
    ) -> list[tuple[list[int], list[float] | None]]:
        import torch

        tok, model = self.tokenizer, self.model
        gen_config = getattr(model, "generation_config", None)
        eos = _id_set(
            tok.eos_token_id, model.config.eos_token_id, getattr(gen_config, "eos_token_id", None), kwargs.get("eos_token_id")
        )
        pad = tok.pad_token_id if tok.pad_token_id is not None else 0
        batch = {k: v.to(model.device) for k, v in _pad_batch(feats, idx, pad, list(feats)).items()}
        model.eval()
        try:
            with torch.inference_mode():
                out = model.generate(**batch, max_new_tokens=n, return_dict_in_generate=True, output_scores=with_scores, **kwargs)
        except (TypeError, ValueError) as e:
            raise InvalidInputError(f"transformers rejected the generation arguments {sorted(kwargs)}: {e}") from e
        seqs = out.sequences[:, 1:]  # drop the decoder start token
        trans = None
        if with_scores:
            beams = getattr(out, "beam_indices", None)
            trans = model.compute_transition_scores(out.sequences, out.scores, beams, normalize_logits=beams is None)
            trans = trans.float().cpu().tolist()
        res = []
        for r, row in enumerate(seqs.tolist()):
            kept = _cut_at_eos(row, eos, pad)
            res.append((kept, [float(x) for x in trans[r][: len(kept)]] if trans is not None else None))
        return res


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
    for cfg in (model.config, model.generation_config):
        cfg.decoder_start_token_id, cfg.eos_token_id, cfg.pad_token_id = start, eos, tokenizer.pad_token_id
    model.config.vocab_size = model.config.decoder.vocab_size
    logger.info("warm-started an encoder-decoder model from %s (encoder and decoder; cross-attention is new)", location)
    return model


def load_seq2seq_model(model_name: Any, tokenizer: Any, task: str) -> Any:
    """An encoder-decoder model: a seq2seq checkpoint (BART, T5, Marian, saved EncoderDecoderModel, ...) as is, or an
    encoder such as BERT warm-started as BERT2BERT."""
    import transformers
    from transformers.models.auto import modeling_auto as auto

    if isinstance(model_name, transformers.PreTrainedModel):
        if not model_name.config.is_encoder_decoder:
            raise WrongTaskError(f"{type(model_name).__name__} is not an encoder-decoder model.")
        return model_name
    from ..modelio import resolve_model_source

    src = resolve_model_source(model_name)
    if src.kind == "flair":
        raise WrongTaskError(f"{model_name!r} is a flair model; {task} fine-tunes transformers models.")
    if src.manifest and src.manifest.get("task") not in (None, *SEQ2SEQ_TASKS):
        raise WrongTaskError(f"{model_name!r} holds a {src.manifest.get('task')!r} model, not an encoder-decoder model.")
    try:
        config = transformers.AutoConfig.from_pretrained(src.location)
    except (OSError, ValueError) as e:
        raise ModelNotFoundError(f"Could not load a model config from {model_name!r} (offline, or not a model): {e}") from e
    kind = config.model_type
    if kind in auto.MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES:
        return transformers.AutoModelForSeq2SeqLM.from_pretrained(src.location, config=config)
    if kind in auto.MODEL_FOR_MASKED_LM_MAPPING_NAMES and kind in auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return _warm_start(src.location, tokenizer)
    raise WrongTaskError(
        f"{model_name!r} is a {kind!r} model: neither an encoder-decoder (BART, T5, ...) nor an encoder (BERT, RoBERTa, "
        f"...) that can warm-start one, so it cannot be trained for {task}."
    )


# ---------------------------------------------------------------------------------------------------
# tuner
# ---------------------------------------------------------------------------------------------------
class Seq2SeqTuner(Tuner):
    """Fine-tune an encoder-decoder model with fastai: teacher forcing in training, generation in validation.

    Subclasses set `task`, `metric_names`, `score_texts` (the text metric) and `generator` (the predictor class).
    """

    task: ClassVar[str] = "seq2seq"
    metric_names: ClassVar[tuple[str, ...]] = ()
    generator: ClassVar[type[HFSeq2SeqGenerator]] = HFSeq2SeqGenerator

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
        device: Any = None,
        mixed_precision: str | None = None,
        **learner_kwargs: Any,
    ) -> None:
        from ..engine import ValidationScorer

        dsets = getattr(dls, "task_datasets", None)
        if not isinstance(dsets, Seq2SeqDatasets):
            raise ValueError(f"{type(self).__name__} needs dataloaders built by a Seq2SeqDatasets subclass's .dataloaders().")
        self.classes = []
        self.base_model = str(getattr(model_name, "name_or_path", model_name))
        model = load_seq2seq_model(model_name, tokenizer or dsets.tokenizer, self.task)
        dsets.collate.model = model  # teacher forcing: decoder inputs are the labels shifted right
        self.scorer = ValidationScorer(self._collect, self._score, self.metric_names)
        super().__init__(
            dls,
            model,
            tokenizer=tokenizer,
            loss_func=loss_func or token_cross_entropy,
            metrics=self.scorer.metrics() if metrics is None else metrics,
            opt_func=opt_func,
            additional_cbs=additional_cbs,
            expose_fastai_api=expose_fastai_api,
            device=device,
            mixed_precision=mixed_precision,
            **learner_kwargs,
        )

    @property
    def datasets(self) -> Seq2SeqDatasets:
        return self.dls.task_datasets

    @staticmethod
    def score_texts(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
        """The task's text metric(s) of `predictions` against `references`."""
        raise NotImplementedError

    def _collect(self, learn: Any) -> tuple[list[str], list[str]]:
        """Greedy generation for one validation batch, decoded, with its decoded references."""
        x, labels = learn.xb[0], learn.yb[0]
        gen = self.generator(self.model, self.tokenizer, self.datasets.max_source_length, self.datasets.max_target_length)
        feats = {k: x[k].tolist() for k in ("input_ids", "attention_mask") if k in x}
        rows = [
            [t for t, m in zip(ids, mask, strict=True) if m]
            for ids, mask in zip(feats["input_ids"], feats["attention_mask"], strict=True)
        ]
        feats = {"input_ids": rows, "attention_mask": [[1] * len(r) for r in rows]}
        outs = gen._generate(
            feats, list(range(len(rows))), self.datasets.max_target_length, False, {"num_beams": 1, "do_sample": False}
        )
        preds = [self.tokenizer.decode(ids, skip_special_tokens=True).strip() for ids, _ in outs]
        refs = [
            self.tokenizer.decode([t for t in row if t != IGNORE], skip_special_tokens=True).strip() for row in labels.tolist()
        ]
        return preds, refs

    def _score(self, kept: list[tuple[list[str], list[str]]]) -> dict[str, float]:
        preds = [p for batch_preds, _ in kept for p in batch_preds]
        refs = [r for _, batch_refs in kept for r in batch_refs]
        return self.score_texts(preds, refs)

    def evaluate(self) -> dict[str, float]:
        """Validation loss (teacher forcing) and the text metrics of greedy generations on the validation set."""
        with self.learn.no_bar():
            res = self.learn.validate()
        return {"valid_loss": float(res[0]), **self.scorer.scores()}

    def predictor(self) -> HFSeq2SeqGenerator:
        """The shared generation path over this tuner's model (what the Easy module uses)."""
        return self.generator.from_model(self.model, self.tokenizer, self.manifest())

    def predict(
        self, text: Any, bs: int = 32, detail_level: DetailLevel | str = DetailLevel.Low, **kwargs: Any
    ) -> dict[str, Any]:
        """Generate for one text or a list (kwargs as the Easy module's: num_tokens_to_produce, num_beams, seed, ...)."""
        level = DetailLevel(detail_level)
        texts, _ = normalize_texts(text, allow_pairs=False)
        with_scores = level.at_least(DetailLevel.High)
        return self.predictor().predict(texts, batch_size=bs, with_scores=with_scores, **kwargs).to_dict(level)

    def heldout_texts(self, n: int = 200) -> list[str]:
        return self.datasets.valid_sources[:n]

    def export(
        self,
        path: str | os.PathLike[str],
        quantize: bool = False,
        onnx: bool = False,
        parity_texts: Sequence[Any] | None = None,
        min_agreement: float = 0.99,
        on_parity_fail: str = "raise",
    ) -> Any:
        """The saved folder plus a model card. int8 and ONNX copies are made for classifiers and taggers only."""
        if quantize or onnx:
            raise InvalidChoiceError(
                f"int8 and ONNX copies are made for classification and tagging models; export a {self.task} model with "
                "quantize=False, onnx=False."
            )
        return super().export(path)

    def manifest(self) -> dict[str, Any]:
        d = self.datasets
        return {
            "task": self.task,
            "max_source_length": d.max_source_length,
            "max_target_length": d.max_target_length,
            "prefix": d.prefix,
            "source_col": d.cols[0],
            "target_col": d.cols[1],
            "base_model": self.base_model,
        }


# ---------------------------------------------------------------------------------------------------
# Easy base
# ---------------------------------------------------------------------------------------------------
class EasySeq2SeqBase(EasyBase):
    """What `EasySummarizer` and `EasyTranslator` share: load any encoder-decoder folder or hub model, generate."""

    auto_class = "AutoModelForSeq2SeqLM"
    hf_head = SEQ2SEQ_HEADS
    PRECISIONS = ("auto", "fp32")

    def _run(
        self,
        text: Any,
        model_name_or_path: Any,
        mini_batch_size: int,
        num_tokens_to_produce: int | None,
        detail_level: DetailLevel | str,
        **generate_kwargs: Any,
    ) -> dict[str, Any]:
        level = DetailLevel(detail_level)
        texts, _ = normalize_texts(text, allow_pairs=False)
        if num_tokens_to_produce is not None:
            _check_num_tokens(num_tokens_to_produce)
        res = self.get_model(model_name_or_path).predict(
            texts,
            batch_size=mini_batch_size,
            num_tokens_to_produce=num_tokens_to_produce,
            with_scores=level.at_least(DetailLevel.High),
            **generate_kwargs,
        )
        return res.to_dict(level)
