"""blurr's text block for a `DataBlock` (`TextBlock`, 2020's `HF_TextBlock`), on adapt's tokenize and collate path.

The block tokenizes each batch with the function and collator `SequenceClassificationDatasets` uses
(`tokenize_text_columns`, `DataCollatorWithPadding`), so with fastai's `CategoryBlock` the batches equal adapt's.
Other tasks' blurr blocks are not provided: `BlearnerFor*.from_data` and `adapt.fastai.TaskBlock` cover them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import Enum
from typing import Any

import pandas as pd
import torch
from fastai.data.block import TransformBlock
from fastai.torch_core import TensorBase
from fasttransform import Transform
from plum import dispatch

__all__ = [
    "BaseLMStrategy",
    "BatchDecodeTransform",
    "BatchTokenizeTransform",
    "BertMLMStrategy",
    "CausalLMStrategy",
    "ClassificationPreprocessor",
    "HF_AfterBatchTransform",
    "HF_BaseInput",
    "HF_BeforeBatchTransform",
    "HF_TextBlock",
    "LMStrategy",
    "LMType",
    "Preprocessor",
    "QAPreprocessor",
    "TextBlock",
    "TextInput",
    "blurr_sort_func",
    "first_blurr_tfm",
    "get_blurr_tfm",
]

IGNORE = -100


class TextInput(TensorBase):
    """The input ids of a decoded batch (what `show_batch` and `show_results` dispatch on)."""


HF_BaseInput = TextInput


def _split_item(x: Any) -> tuple[str, str | None]:
    """blurr's item forms: a text, a (text, text_pair) tuple, or a dict with "text" (itself maybe a pair)."""
    if isinstance(x, Mapping):
        x = x["text"]
    if isinstance(x, (tuple, list)) and len(x) == 2:
        return str(x[0]), str(x[1])
    return str(x), None


class BatchTokenizeTransform(Transform):
    """Tokenize a batch of samples `(x, *targets)` as adapt's classification data does and pad it per batch;
    `include_labels` also puts the first target in the inputs as `labels` (the model then computes its loss)."""

    def __init__(self, hf_arch: str | None = None, hf_config: Any = None, hf_tokenizer: Any = None, hf_model: Any = None,
                 include_labels: bool = True, ignore_token_id: int = IGNORE, max_length: int | None = None,
                 padding: bool | str = True, truncation: bool | str = True, is_split_into_words: bool = False,
                 tok_kwargs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__()
        from ..modelio import pad_with_eos

        self.hf_arch, self.hf_config, self.hf_model = hf_arch, hf_config, hf_model
        self.hf_tokenizer = pad_with_eos(hf_tokenizer)
        self.include_labels, self.ignore_token_id, self.kwargs = include_labels, ignore_token_id, kwargs
        limit = min(int(getattr(self.hf_tokenizer, "model_max_length", 512)), 512)
        self.tok_kwargs = {"truncation": truncation, "max_length": max_length or limit,
                           "is_split_into_words": is_split_into_words, **dict(tok_kwargs or {})}

    def encodes(self, samples: list):
        from transformers import DataCollatorWithPadding

        from ..data import tokenize_text_columns

        items = [_split_item(s[0]) for s in samples]
        pairs = any(p is not None for _, p in items)
        batch = {"text": [t for t, _ in items], **({"text_pair": [p or "" for _, p in items]} if pairs else {})}
        enc = tokenize_text_columns(batch, self.hf_tokenizer, self.tok_kwargs, text_col="text",
                                    text_pair_col="text_pair" if pairs else None)
        rows = [{k: enc[k][i] for k in enc} for i in range(len(items))]
        padded = DataCollatorWithPadding(self.hf_tokenizer)(rows)
        out = []
        for i, s in enumerate(samples):
            inputs = {k: v[i] for k, v in padded.items()}
            if self.include_labels and len(s) > 1:
                inputs["labels"] = torch.as_tensor(s[1])
            out.append((inputs, *s[1:]))
        return out


HF_BeforeBatchTransform = BatchTokenizeTransform


class BatchDecodeTransform(Transform):
    """Decode a batch's inputs to a `TextInput` that knows its tokenizer (for `show_batch`/`show_results`)."""

    def __init__(self, input_return_type: type = TextInput, hf_arch: str | None = None, hf_config: Any = None,
                 hf_tokenizer: Any = None, hf_model: Any = None, **kwargs: Any) -> None:
        super().__init__()
        self.input_return_type, self.hf_tokenizer, self.kwargs = input_return_type, hf_tokenizer, kwargs

    def decodes(self, items: dict):
        return self.input_return_type(items["input_ids"], hf_tokenizer=self.hf_tokenizer)


HF_AfterBatchTransform = BatchDecodeTransform


def TextBlock(hf_arch: str | None = None, hf_config: Any = None, hf_tokenizer: Any = None,
              hf_model: Any = None, include_labels: bool = True, ignore_token_id: int = IGNORE,
              batch_tokenize_tfm: BatchTokenizeTransform | None = None, batch_decode_tfm: BatchDecodeTransform | None = None,
              max_length: int | None = None, padding: bool | str = True, truncation: bool | str = True,
              is_split_into_words: bool = False, input_return_type: type = TextInput, dl_type: Any = None,
              batch_tokenize_kwargs: dict[str, Any] | None = None, batch_decode_kwargs: dict[str, Any] | None = None,
              tok_kwargs: dict[str, Any] | None = None, before_batch_tfm: Any = None, after_batch_tfm: Any = None,
              before_batch_kwargs: dict[str, Any] | None = None, after_batch_kwargs: dict[str, Any] | None = None,
              **kwargs: Any) -> TransformBlock:
    """blurr's text block (1.0 `TextBlock`; 2020/2021 `HF_TextBlock` with `before_batch_tfm`/`after_batch_tfm`)."""
    from ..errors import InvalidInputError

    tokenize = batch_tokenize_tfm or before_batch_tfm
    if tokenize is None:
        if hf_tokenizer is None:
            raise InvalidInputError("TextBlock needs hf_arch, hf_config, hf_tokenizer and hf_model (from get_hf_objects), "
                                    "or a batch_tokenize_tfm.")
        tokenize = BatchTokenizeTransform(hf_arch, hf_config, hf_tokenizer, hf_model, include_labels, ignore_token_id,
                                          max_length, padding, truncation, is_split_into_words, tok_kwargs,
                                          **{**(before_batch_kwargs or {}), **(batch_tokenize_kwargs or {})})
    decode = batch_decode_tfm or after_batch_tfm or BatchDecodeTransform(
        input_return_type, hf_tokenizer=tokenize.hf_tokenizer, **{**(after_batch_kwargs or {}), **(batch_decode_kwargs or {})})
    return TransformBlock(dl_type=dl_type, dls_kwargs={"before_batch": tokenize}, batch_tfms=decode)


HF_TextBlock = TextBlock


def get_blurr_tfm(tfms_list: Any, tfm_class: type = BatchTokenizeTransform) -> Any:
    """The first transform of `tfm_class` in a fastai `Pipeline` (or list), else None."""
    return next((t for t in getattr(tfms_list, "fs", tfms_list) if isinstance(t, tfm_class)), None)


def first_blurr_tfm(dls: Any, tfms: Sequence[type] = (BatchTokenizeTransform, BatchDecodeTransform)) -> Any:
    """The first of `tfms` in the dataloaders' before-batch, then after-batch transforms."""
    for cls in tfms:
        for pipe in (dls.before_batch, dls.after_batch):
            found = get_blurr_tfm(pipe, cls)
            if found is not None:
                return found
    return None


def blurr_sort_func(example: Any, hf_tokenizer: Any, is_split_into_words: bool = False,
                    tok_kwargs: dict[str, Any] | None = None) -> int:
    """An item's token count (blurr's key for `SortedDL`)."""
    text, pair = _split_item(example[0] if isinstance(example, tuple) else example)
    return len(hf_tokenizer(text, pair, is_split_into_words=is_split_into_words, **(tok_kwargs or {}))["input_ids"])


def _tokenizer_of(x: Any, kwargs: dict[str, Any]) -> Any:
    tok = getattr(x, "hf_tokenizer", None)
    if tok is None:
        dls = kwargs.get("dataloaders") or getattr(kwargs.get("learner"), "dls", None)
        tok = getattr(first_blurr_tfm(dls), "hf_tokenizer", None) if dls is not None else None
    return tok


def _text(tok: Any, ids: Any, trunc_at: int | None) -> str:
    pad = getattr(tok, "pad_token_id", None)
    text = tok.decode([int(i) for i in ids if int(i) != pad], skip_special_tokens=True)
    return text[:trunc_at] if trunc_at else text


def _table(x: Any, rows: list[dict[str, Any]], max_n: int) -> pd.DataFrame:
    from ..engine import display_table

    df = pd.DataFrame.from_records(rows[:max_n])
    display_table(df)
    return df


@dispatch
def show_batch(x: TextInput, y: Any, samples: Any, ctxs: Any = None, max_n: int = 6, trunc_at: int | None = None,
               **kwargs: Any) -> Any:
    """blurr's table: the decoded `text` and each `target` (`dataloaders=`, blurr's idiom, is accepted)."""
    tok = _tokenizer_of(x, kwargs)
    rows = [{"text": _text(tok, s[0], trunc_at), **{f"target{'_' + str(j) if j else ''}": str(t) for j, t in enumerate(s[1:])}}
            for s in samples]
    return _table(x, rows, max_n)


@dispatch
def show_results(x: TextInput, y: Any, samples: Any, outs: Any, ctxs: Any = None, max_n: int = 6,
                 trunc_at: int | None = None, **kwargs: Any) -> Any:
    """blurr's table: `text`, `target` and the model's `prediction` (`learner=`, blurr's idiom, is accepted)."""
    tok = _tokenizer_of(x, kwargs)
    rows = [{"text": _text(tok, s[0], trunc_at), "target": str(s[1]) if len(s) > 1 else "", "prediction": str(o[0])}
            for s, o in zip(samples, outs, strict=False)]
    return _table(x, rows, max_n)


# -- preprocessors and LM strategies: blurr's names for what adapt's datasets do themselves -----------------------
class Preprocessor:
    """blurr's preprocessors marked training and validation rows and tokenized ahead; adapt's datasets tokenize
    (and window long texts) when the data is built, so `process_df` only joins the splits with `is_valid`."""

    def __init__(self, hf_tokenizer: Any, batch_size: int = 1000, text_attr: str = "text", text_pair_attr: str | None = None,
                 is_valid_attr: str | None = "is_valid", tok_kwargs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        self.hf_tokenizer, self.text_attr, self.is_valid_attr = hf_tokenizer, text_attr, is_valid_attr or "is_valid"

    def process_df(self, training_df: pd.DataFrame, validation_df: pd.DataFrame | None = None) -> pd.DataFrame:
        df = training_df.copy()
        if validation_df is not None:
            df = pd.concat([df.assign(**{self.is_valid_attr: False}), validation_df.assign(**{self.is_valid_attr: True})],
                           ignore_index=True)
        return self._columns(df)

    def _columns(self, df: pd.DataFrame) -> pd.DataFrame:
        return df.assign(**{f"proc_{self.text_attr}": df[self.text_attr]}) if self.text_attr in df else df


ClassificationPreprocessor = Preprocessor


class QAPreprocessor(Preprocessor):
    """blurr's QA preprocessor: `proc_question`/`proc_context` columns; adapt windows long contexts and finds the
    answer tokens itself (from `answer_text` and `ans_start_char_idx`), so no token indices are computed here."""

    def __init__(self, hf_tokenizer: Any, batch_size: int = 1000, id_attr: str | None = None, ctx_attr: str = "context",
                 qst_attr: str = "question", ans_attr: str = "answer_text", ans_start_char_idx: str = "ans_start_char_idx",
                 ans_end_char_idx: str = "ans_end_char_idx", is_valid_attr: str | None = "is_valid",
                 tok_kwargs: dict[str, Any] | None = None) -> None:
        super().__init__(hf_tokenizer, batch_size, ctx_attr, None, is_valid_attr, tok_kwargs)
        self.qst_attr, self.ans_attr = qst_attr, ans_attr

    def _columns(self, df: pd.DataFrame) -> pd.DataFrame:
        answerable = df[self.ans_attr].fillna("").astype(str).str.len() > 0 if self.ans_attr in df else True
        return df.assign(proc_question=df[self.qst_attr], proc_context=df[self.text_attr], is_answerable=answerable)


class LMType(Enum):
    CAUSAL = 1
    MASKED = 2


class BaseLMStrategy:
    """blurr's LM strategies name the kind of language model `BlearnerForLM.from_data` trains."""

    lm_type = LMType.CAUSAL

    def __init__(self, hf_tokenizer: Any = None, ignore_token_id: int = IGNORE) -> None:
        self.hf_tokenizer, self.ignore_token_id = hf_tokenizer, ignore_token_id

    @classmethod
    def get_lm_type(cls) -> LMType:
        return cls.lm_type


class CausalLMStrategy(BaseLMStrategy):
    """Next-token prediction (adapt's `language_modeling` task)."""


class BertMLMStrategy(BaseLMStrategy):
    """BERT's masking, 15% of tokens (adapt's `masked_language_modeling` task, with transformers' collator)."""

    lm_type = LMType.MASKED


LMStrategy = BaseLMStrategy
