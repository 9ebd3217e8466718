"""blurr's modeling names on adapt: the model wrapper and callback, splitters, `Blearner` and `BlearnerFor*`
(`from_data`, and 2021's `from_dataframe`/`from_csv`/`from_dictionaries`) and the `blurr_*` prediction methods.

`BlearnerFor*.from_data` builds the task's `adapt.fastai.TaskBlock` dataloaders and the model with adapt's task
head, so what a blurr learner trains is an adapt model: `adapt.fastai.save(learn, path)` writes the folder Easy,
`adapt predict`, `adapt serve` and Docker load. Predictions go through adapt's predictors (windows, batching),
reshaped as blurr 1.0 returned them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from fastai.data.block import DataBlock
from fastai.data.transforms import ColSplitter, RandomSplitter
from fastai.callback.core import Callback
from fastai.learner import Learner
from fastai.losses import BCEWithLogitsLossFlat, CrossEntropyLossFlat
from torch import nn

from ..engine import HFCallback, HFLoss, WrapsModel
from ..errors import InvalidInputError
from ..fastai import TaskBlock, TaskDL, hf_splitter, predict, seq2seq_splitter
from ._data import BertMLMStrategy, CausalLMStrategy, first_blurr_tfm
from ._utils import PreCalculatedBCELoss, PreCalculatedCrossEntropyLoss, PreCalculatedLoss, PreCalculatedMSELoss

__all__ = [
    "BaseModelCallback",
    "BaseModelWrapper",
    "Blearner",
    "BlearnerForLM",
    "BlearnerForQuestionAnswering",
    "BlearnerForSequenceClassification",
    "BlearnerForSummarization",
    "BlearnerForTokenClassification",
    "BlearnerForTranslation",
    "HF_BaseModelCallback",
    "HF_BaseModelWrapper",
    "HF_QstAndAnsModelCallback",
    "QAModelCallback",
    "blurr_seq2seq_splitter",
    "blurr_splitter",
    "calculate_token_class_metrics",
    "hf_splitter",
    "seq2seq_splitter",
]


class BaseModelWrapper(nn.Module):
    """A transformers model called with one dict of inputs (keys its `forward` does not take are left out); it
    returns the model's output object, whose `logits` `BaseModelCallback` hands to fastai."""

    def __init__(self, hf_model: nn.Module, output_hidden_states: bool = False, output_attentions: bool = False,
                 hf_model_kwargs: dict[str, Any] | None = None) -> None:
        super().__init__()
        import inspect

        self.hf_model = hf_model
        self.hf_model_fwd_args = set(inspect.signature(hf_model.forward).parameters)
        self.extra = {"output_hidden_states": output_hidden_states, "output_attentions": output_attentions,
                      "return_dict": True, **(hf_model_kwargs or {})}

    def forward(self, x: dict[str, Any]) -> Any:
        return self.hf_model(**{k: v for k, v in x.items() if k in self.hf_model_fwd_args}, **self.extra)


HF_BaseModelWrapper = BaseModelWrapper


class BaseModelCallback(WrapsModel):
    """blurr's callback: wraps a transformers model given to the `Learner` as it is, hands its `logits` to fastai
    (other outputs go to `learn.blurr_model_outputs`), and with a `PreCalculated*Loss` trains on the model's loss."""

    wrapper = BaseModelWrapper
    output_keys: tuple[str, ...] = ("logits",)

    def __init__(self, base_model_wrapper_kwargs: dict[str, Any] | None = None) -> None:
        self.wrapper_kwargs = dict(base_model_wrapper_kwargs or {})

    def wrap(self, model: nn.Module) -> nn.Module:
        return BaseModelWrapper(model, **self.wrapper_kwargs)

    def before_batch(self) -> None:
        self.hf_loss: Any = None

    def after_pred(self) -> None:
        out = self.learn.pred
        if isinstance(self.learn.loss_func, PreCalculatedLoss) and getattr(out, "loss", None) is not None:
            self.hf_loss = out.loss
        self.learn.blurr_model_outputs = {k: v for k, v in out.items() if k not in ("loss", *self.output_keys)}
        preds = tuple(out[k] for k in self.output_keys)
        self.learn.pred = preds[0] if len(preds) == 1 else preds

    def after_loss(self) -> None:
        if self.hf_loss is not None and getattr(self.learn.loss_func, "reduction", "mean") != "none":
            self.learn.loss_grad = self.hf_loss
            self.learn.loss = self.hf_loss.clone().detach()


HF_BaseModelCallback = BaseModelCallback


class QAModelCallback(BaseModelCallback):
    """For question answering: fastai gets `(start_logits, end_logits)`."""

    output_keys = ("start_logits", "end_logits")


HF_QstAndAnsModelCallback = QAModelCallback
blurr_splitter = hf_splitter


def blurr_seq2seq_splitter(m: nn.Module, arch: str | None = None) -> list[list[nn.Parameter]]:
    """blurr's encoder-decoder splitter (`arch` is not needed: the model says what it is)."""
    return seq2seq_splitter(m)


def calculate_token_class_metrics(pred_toks: Sequence[Sequence[str]], targ_toks: Sequence[Sequence[str]],
                                  metric_key: str) -> Any:
    """seqeval's `accuracy`, `precision`, `recall`, `f1` or `classification_report` over tag sequences."""
    import seqeval.metrics as sm

    func = {"accuracy": sm.accuracy_score, "precision": sm.precision_score, "recall": sm.recall_score,
            "f1": sm.f1_score, "classification_report": sm.classification_report}[metric_key]
    return func(targ_toks, pred_toks)


class TaskReportCallback(Callback):
    """What blurr's metrics callbacks left on the learner after a fit: `learn.token_classification_report` (seqeval's
    per-entity precision, recall, F1 and support on the validation set) for token classification."""

    order = 100

    def after_fit(self) -> None:
        if _task(self.learn) == "token_classification":
            from ..fastai import tuner_from_learner

            self.learn.token_classification_report = tuner_from_learner(self.learn).entity_report()


# -- Blearner -----------------------------------------------------------------------------------------------------
_PRECALCULATED = ((CrossEntropyLossFlat, PreCalculatedCrossEntropyLoss), (BCEWithLogitsLossFlat, PreCalculatedBCELoss))


def _precalculated(loss_func: Any) -> Any:
    """blurr 1.0: when the text block puts the labels in the inputs, the model's own loss trains it."""
    for plain, pre in _PRECALCULATED:
        if isinstance(loss_func, plain) and not isinstance(loss_func, PreCalculatedLoss):
            return pre()
    if isinstance(getattr(loss_func, "func", None), nn.MSELoss) and not isinstance(loss_func, PreCalculatedLoss):
        return PreCalculatedMSELoss()
    return loss_func


class Blearner(Learner):
    """blurr's `Learner` over a transformers model, returned frozen (only the head trains until `unfreeze()`).

    With a `TaskBlock`'s dataloaders (what `from_data` builds) it uses adapt's `HFCallback` and the model's own loss;
    with blurr's `TextBlock` it uses `base_model_cb` and fastai's loss (a `PreCalculated*Loss` when the block passes
    the labels to the model)."""

    task: str | None = None

    def __init__(self, dls: Any, hf_model: nn.Module, base_model_cb: Any = BaseModelCallback, **kwargs: Any) -> None:
        splitter = kwargs.pop("splitter", hf_splitter)
        cbs = list(kwargs.pop("cbs", None) or [])
        if isinstance(dls.train, TaskDL):  # the outputs the task's loss takes come from the dataloaders
            loss_func, model = kwargs.pop("loss_func", None) or HFLoss(), kwargs.pop("model", hf_model)
            cbs.insert(0, HFCallback())
        else:
            loss_func = kwargs.pop("loss_func", getattr(dls, "loss_func", None))
            tfm = first_blurr_tfm(dls)
            if getattr(tfm, "include_labels", False):
                loss_func = _precalculated(loss_func)
            model = kwargs.pop("model", BaseModelWrapper(hf_model))
            cbs.insert(0, base_model_cb() if isinstance(base_model_cb, type) else base_model_cb)
        super().__init__(dls, model, loss_func=loss_func, splitter=splitter, cbs=cbs, **kwargs)
        self.freeze()


def _read(data: Any) -> pd.DataFrame:
    """`from_data`'s data as a DataFrame: a DataFrame, a `datasets.Dataset`, a list of dicts, or a path to a
    .csv, .xlsx/.xls, .json or .jsonl file."""
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, (str, os.PathLike)):
        path = Path(data)
        readers: dict[str, Callable[[Path], pd.DataFrame]] = {
            ".csv": pd.read_csv, ".xlsx": pd.read_excel, ".xls": pd.read_excel,
            ".jsonl": partial(pd.read_json, lines=True), ".json": pd.read_json}
        if path.suffix.lower() not in readers:
            from ..errors import InvalidChoiceError, unknown_name

            raise InvalidChoiceError(unknown_name("file type", path.suffix, sorted(readers)))
        return readers[path.suffix.lower()](path)
    if hasattr(data, "to_pandas"):
        return data.to_pandas()
    return pd.DataFrame.from_records(list(data))


class _FromData:
    """`from_data` (1.0) and `from_dataframe`/`from_csv`/`from_dictionaries` (2021) of every `BlearnerFor*`."""

    task: str | None = None
    text_gen_kwargs: dict[str, Any]

    @classmethod
    def _columns(cls, df: pd.DataFrame, **attrs: Any) -> tuple[pd.DataFrame, tuple[Any, ...], dict[str, Any]]:
        """(the data as the task's columns expect it, the TaskBlock's columns, its options)."""
        raise NotImplementedError

    @classmethod
    def _build(cls, data: Any, name: Any, splitter: Any, dl_kwargs: dict[str, Any] | None,
               learner_kwargs: dict[str, Any] | None, **attrs: Any) -> Any:
        from ..tasks import get_task

        from ..data import check_columns

        df = _read(data)
        check_columns(list(df.columns), [v for k, v in attrs.items() if k.endswith("_attr") and isinstance(v, str)],
                      "data (from_data)")
        if splitter is None:
            splitter = ColSplitter() if "is_valid" in df else RandomSplitter()
        df, columns, options = cls._columns(df, **attrs)
        spec = get_task(str(cls.task))
        tok_kwargs = attrs.get("hf_tok_kwargs") or {}
        block = TaskBlock(spec, str(name), *columns, **{**spec.data_defaults, **options,
                                                         **({"auto_kwargs": tok_kwargs} if tok_kwargs else {})})
        dls = DataBlock(blocks=block, splitter=splitter).dataloaders(df, **(dl_kwargs or {}))
        tuner = spec.tuner(dls, str(name))  # the model with adapt's task head, and the task's metrics
        kwargs = {"metrics": list(tuner.learn.metrics), **cls._learner_defaults(), **(learner_kwargs or {})}
        learn = cls(dls, tuner.model, **kwargs)  # type: ignore[call-arg]
        learn.text_gen_kwargs = dict(attrs.get("text_gen_kwargs") or {})  # blurr_generate's defaults
        return learn

    @classmethod
    def _learner_defaults(cls) -> dict[str, Any]:
        return {}

    @classmethod
    def get_metrics_cb(cls) -> Any:
        """blurr's metrics callback: the learner already reports the task's metrics each epoch, so this adds what
        blurr's callbacks also left on the learner (`token_classification_report` for NER) and nothing else."""
        return TaskReportCallback()

    @classmethod
    def from_dataframe(cls, df: Any, pretrained_model_name_or_path: Any, preprocess_func: Any = None, **kwargs: Any) -> Any:
        """2021's name of `from_data` (`dblock_splitter`, `dl_kwargs`, `learner_kwargs` and the column names alike)."""
        if preprocess_func is not None:
            raise InvalidInputError("preprocess_func is not supported: prepare the DataFrame first, then call from_data.")
        return cls.from_data(df, pretrained_model_name_or_path, **kwargs)  # type: ignore[attr-defined]

    @classmethod
    def from_csv(cls, csv_file: Any, pretrained_model_name_or_path: Any, **kwargs: Any) -> Any:
        return cls.from_dataframe(pd.read_csv(csv_file), pretrained_model_name_or_path, **kwargs)

    @classmethod
    def from_dictionaries(cls, ds: Any, pretrained_model_name_or_path: Any, **kwargs: Any) -> Any:
        return cls.from_dataframe(pd.DataFrame.from_records(list(ds)), pretrained_model_name_or_path, **kwargs)


class BlearnerForSequenceClassification(_FromData, Blearner):
    """Text (or text-pair) classification; a list of label columns makes it multi-label, a float label column a
    regression (one output, MSE)."""

    task = "sequence_classification"

    def predict(self, text: Any) -> Any:
        return self.blurr_predict(text)

    @classmethod
    def from_data(cls, data: Any, pretrained_model_name_or_path: Any, text_attr: str | list[str] = "text",
                  label_attr: str | list[str] = "label", n_labels: int | None = None, dblock_splitter: Any = None,
                  dl_kwargs: dict[str, Any] | None = None, learner_kwargs: dict[str, Any] | None = None) -> Any:
        return cls._build(data, pretrained_model_name_or_path, dblock_splitter, dl_kwargs, learner_kwargs,
                          text_attr=text_attr, label_attr=label_attr, n_labels=n_labels)

    @classmethod
    def _columns(cls, df: pd.DataFrame, **attrs: Any) -> tuple[pd.DataFrame, tuple[Any, ...], dict[str, Any]]:
        text, label = attrs["text_attr"], attrs["label_attr"]
        pair = text[1] if isinstance(text, (list, tuple)) else None
        text = text[0] if isinstance(text, (list, tuple)) else text
        options: dict[str, Any] = {"text_pair_col": pair} if pair else {}
        if not isinstance(label, (list, tuple)) and _is_regression(df[label], attrs["n_labels"]):  # blurr #58
            options["regression"] = True
        elif attrs["n_labels"] is not None:
            options["num_classes_check"] = attrs["n_labels"]
        if isinstance(label, (list, tuple)):  # one 0/1 column per label: multi-label
            names = [str(c) for c in label]
            joined = df[label].apply(lambda r: "|".join(n for n, v in zip(names, r, strict=True) if v), axis=1)
            df = df.assign(_labels=joined)
            label, options = "_labels", {**options, "is_multicategory": True, "label_delim": "|"}
        n = options.pop("num_classes_check", None)
        found = len(label) if isinstance(label, (list, tuple)) else df[label].nunique()
        if n is not None and not options.get("is_multicategory") and n != found:
            from ..errors import NumClassesError

            raise NumClassesError(f"n_labels={n}, but {label!r} holds {found} labels: {sorted(map(str, df[label].unique()))}.")
        return df, (text, label), options


def _is_regression(values: pd.Series, n_labels: int | None) -> bool:
    """A regression target: `n_labels=1`, or a float column whose values are not all whole numbers."""
    if n_labels == 1:
        return True
    if not pd.api.types.is_float_dtype(values):
        return False
    present = values.dropna()
    return bool(len(present)) and not bool((present == present.round()).all())


class BlearnerForTokenClassification(_FromData, Blearner):
    """Named entities: word lists and their tags (names, or ids into `labels`)."""

    task = "token_classification"

    def predict(self, text: Any) -> Any:
        return self.blurr_predict_tokens(text)

    @classmethod
    def from_data(cls, data: Any, pretrained_model_name_or_path: Any, tokens_attr: str = "tokens",
                  token_labels_attr: str = "token_labels", labels: list[str] | None = None, dblock_splitter: Any = None,
                  dl_kwargs: dict[str, Any] | None = None, learner_kwargs: dict[str, Any] | None = None) -> Any:
        return cls._build(data, pretrained_model_name_or_path, dblock_splitter, dl_kwargs, learner_kwargs,
                          tokens_attr=tokens_attr, token_labels_attr=token_labels_attr, labels=labels)

    @classmethod
    def _columns(cls, df: pd.DataFrame, **attrs: Any) -> tuple[pd.DataFrame, tuple[Any, ...], dict[str, Any]]:
        tags, labels = attrs["token_labels_attr"], attrs["labels"]
        df = df.assign(**{tags: df[tags].map(list), attrs["tokens_attr"]: df[attrs["tokens_attr"]].map(list)})
        if labels is not None and len(df) and all(isinstance(t, (int,)) or hasattr(t, "item") for t in df[tags].iloc[0]):
            df = df.assign(**{tags: df[tags].map(lambda row: [labels[int(t)] for t in row])})
        return df, (attrs["tokens_attr"], tags), {}


class BlearnerForQuestionAnswering(_FromData, Blearner):
    """Extractive QA from question, context and answer (`answer_text` and `ans_start_char_idx`, or SQuAD's
    `answers`); long contexts are windowed (`max_seq_len` tokens per window)."""

    task = "question_answering"

    @classmethod
    def from_data(cls, data: Any, pretrained_model_name_or_path: Any, max_seq_len: int | None = None,
                  id_attr: str | None = None, context_attr: str = "context", question_attr: str = "question",
                  tok_ans_start_attr: str = "ans_start_token_idx", tok_ans_end_attr: str = "ans_end_token_idx",
                  dblock_splitter: Any = None, dl_kwargs: dict[str, Any] | None = None,
                  learner_kwargs: dict[str, Any] | None = None, answer_text_attr: str = "answer_text",
                  ans_start_char_idx_attr: str = "ans_start_char_idx") -> Any:
        return cls._build(data, pretrained_model_name_or_path, dblock_splitter, dl_kwargs, learner_kwargs,
                          max_seq_len=max_seq_len, context_attr=context_attr, question_attr=question_attr,
                          answer_text_col=answer_text_attr, start_col=ans_start_char_idx_attr)

    @classmethod
    def _columns(cls, df: pd.DataFrame, **attrs: Any) -> tuple[pd.DataFrame, tuple[Any, ...], dict[str, Any]]:
        if "answers" not in df:
            from ..data import check_columns

            check_columns(list(df.columns), [attrs["answer_text_col"], attrs["start_col"]], "data (from_data: the answers)")
            text, start = df[attrs["answer_text_col"]].fillna("").astype(str), df[attrs["start_col"]].fillna(0).astype(int)
            df = df.assign(answers=[{"text": [t] if t else [], "answer_start": [s] if t else []}
                                    for t, s in zip(text, start, strict=True)], **{attrs["start_col"]: start})
        options: dict[str, Any] = {"question_col": attrs["question_attr"], "context_col": attrs["context_attr"]}
        if attrs["max_seq_len"]:
            options["max_length"] = attrs["max_seq_len"]
        return df, (), options


class BlearnerForLM(_FromData, Blearner):
    """Causal (`CausalLMStrategy`) or masked (`BertMLMStrategy`) language modelling."""

    task = "language_modeling"

    @classmethod
    def from_data(cls, data: Any, pretrained_model_name_or_path: Any, lm_strategy_cls: type = CausalLMStrategy,
                  text_attr: Any = "text", dblock_splitter: Any = None, dl_kwargs: dict[str, Any] | None = None,
                  learner_kwargs: dict[str, Any] | None = None) -> Any:
        target = BlearnerForMaskedLM if issubclass(lm_strategy_cls, BertMLMStrategy) else cls
        return target._build(data, pretrained_model_name_or_path, dblock_splitter, dl_kwargs, learner_kwargs,
                             text_attr=text_attr)

    @classmethod
    def _columns(cls, df: pd.DataFrame, **attrs: Any) -> tuple[pd.DataFrame, tuple[Any, ...], dict[str, Any]]:
        return df.assign(text=df[attrs["text_attr"]].astype(str)), ("text",), {}


class BlearnerForMaskedLM(BlearnerForLM):
    """`BlearnerForLM` with `BertMLMStrategy`."""

    task = "masked_language_modeling"


class _Seq2Seq(_FromData, Blearner):
    @classmethod
    def _learner_defaults(cls) -> dict[str, Any]:
        return {"splitter": seq2seq_splitter}

    @classmethod
    def get_metrics_cb(cls) -> Any:
        """The learner reports ROUGE (summarization) or BLEU (translation) each epoch already; blurr's BERTScore and
        METEOR need downloads at run time and are left out."""
        import warnings

        warnings.warn("adapt.blurr leaves out BERTScore and METEOR (they download models and data when used); the learner "
                      "reports the task's metrics (ROUGE with rouge-score, BLEU with sacrebleu) each epoch.", stacklevel=2)
        return super().get_metrics_cb()

    @classmethod
    def _columns(cls, df: pd.DataFrame, **attrs: Any) -> tuple[pd.DataFrame, tuple[Any, ...], dict[str, Any]]:
        (source, target), prefix = attrs["cols"], attrs["prefix"]
        options = {"max_source_length": attrs.get("max_length"), "max_target_length": attrs.get("max_target_length"),
                   "prefix": prefix}
        return df, (), {"source_col": source, "target_col": target, **{k: v for k, v in options.items() if v}}


def _t5(name: Any) -> bool:
    return "t5" in str(name).lower()


class BlearnerForSummarization(_Seq2Seq):
    """Summarization with an encoder-decoder model (T5 gets its "summarize: " prefix)."""

    task = "summarization"

    def predict(self, text: Any, **kwargs: Any) -> Any:
        return self.blurr_summarize(text, **kwargs)

    @classmethod
    def from_data(cls, data: Any, pretrained_model_name_or_path: Any, text_attr: str = "text", summary_attr: str = "summary",
                  max_length: int | None = None, max_target_length: int | None = None, dblock_splitter: Any = None,
                  hf_tok_kwargs: dict[str, Any] | None = None, text_gen_kwargs: dict[str, Any] | None = None,
                  dl_kwargs: dict[str, Any] | None = None, learner_kwargs: dict[str, Any] | None = None) -> Any:
        prefix = "summarize: " if _t5(pretrained_model_name_or_path) else ""
        return cls._build(data, pretrained_model_name_or_path, dblock_splitter, dl_kwargs, learner_kwargs,
                          cols=(text_attr, summary_attr), prefix=prefix, max_length=max_length,
                          max_target_length=max_target_length, text_attr=text_attr, summary_attr=summary_attr,
                          hf_tok_kwargs=hf_tok_kwargs, text_gen_kwargs=text_gen_kwargs)


class BlearnerForTranslation(_Seq2Seq):
    """Translation with an encoder-decoder model (T5 gets its "translate X to Y: " prefix)."""

    task = "translation"

    def predict(self, text: Any, **kwargs: Any) -> Any:
        return self.blurr_translate(text, **kwargs)

    @classmethod
    def from_data(cls, data: Any, pretrained_model_name_or_path: Any, src_lang_name: str = "English",
                  src_lang_attr: str = "src_lang", trg_lang_name: str = "English", trg_lang_attr: str = "trg_lang",
                  max_length: int | None = None, max_target_length: int | None = None, dblock_splitter: Any = None,
                  hf_tok_kwargs: dict[str, Any] | None = None, text_gen_kwargs: dict[str, Any] | None = None,
                  dl_kwargs: dict[str, Any] | None = None, learner_kwargs: dict[str, Any] | None = None) -> Any:
        prefix = f"translate {src_lang_name} to {trg_lang_name}: " if _t5(pretrained_model_name_or_path) else ""
        return cls._build(data, pretrained_model_name_or_path, dblock_splitter, dl_kwargs, learner_kwargs,
                          cols=(src_lang_attr, trg_lang_attr), prefix=prefix, max_length=max_length,
                          max_target_length=max_target_length, src_lang_attr=src_lang_attr, trg_lang_attr=trg_lang_attr,
                          hf_tok_kwargs=hf_tok_kwargs, text_gen_kwargs=text_gen_kwargs)


# -- blurr's prediction methods, as blurr 1.0 shaped their results ---------------------------------------------
def _listed(items: Any) -> tuple[list[Any], bool]:
    if isinstance(items, pd.DataFrame):
        return items.to_dict(orient="records"), True
    return (list(items), True) if isinstance(items, list) else ([items], False)


def _task(learn: Any) -> str | None:
    """The task of a learner over a `TaskBlock`'s (or `TaskDatasets`') dataloaders, else None."""
    from ..fastai import task_of

    return task_of(learn).name if getattr(learn.dls, "task_datasets", None) is not None else None


def _predict(learn: Any, items: list[Any], task: str, level: str = "medium", **options: Any) -> dict[str, Any]:
    """adapt's front door for a blurr learner: a `TaskBlock` learner as it is; a `TextBlock` one with the
    tokenizer its block holds and the dataloaders' labels."""
    if _task(learn) is not None:
        return predict(learn, items, detail_level=level, **options)
    tfm = first_blurr_tfm(learn.dls)
    if tfm is None:
        raise InvalidInputError("blurr_* predictions need a learner whose dataloaders come from TextBlock or from_data.")
    vocab = [str(v) for v in getattr(learn.dls, "vocab", None) or []] or None
    return predict(learn, items, task=task, tokenizer=tfm.hf_tokenizer, labels=vocab, detail_level=level, **options)


def _classification_row(pred: Any, probs: list[float], classes: list[str]) -> dict[str, Any]:
    if isinstance(pred, list):  # multi-label
        hot = [int(c in pred) for c in classes]
        return {"labels": pred, "scores": [p for p, h in zip(probs, hot, strict=True) if h], "class_indices": hot,
                "class_labels": classes, "probs": probs}
    idx = classes.index(pred)
    return {"label": pred, "score": probs[idx], "class_index": idx, "class_labels": classes, "probs": probs}


def blurr_predict(self: Learner, items: Any, rm_type_tfms: Any = None) -> list[dict[str, Any]]:
    """Classify a text, a `(text, text_pair)` tuple, a dict row, a list of those or a DataFrame: per item
    `label`, `score`, `class_index`, `class_labels`, `probs` (multi-label: `labels`, `scores`, `class_indices`)."""
    rows, _ = _listed(items)
    dsets = getattr(self.dls, "task_datasets", None)
    cols = (getattr(dsets, "text_col", None) or "text", getattr(dsets, "text_pair_col", None))
    inputs = [_pair(r, *cols) for r in rows]
    res = _predict(self, inputs, "sequence_classification")
    if "classes" not in res:  # regression: the value
        return [{"label": v, "score": v} for v in res["predictions"]]
    return [_classification_row(p, probs, res["classes"]) for p, probs in zip(res["predictions"], res["probs"], strict=True)]


def _pair(item: Any, text_col: str = "text", pair_col: str | None = None) -> Any:
    """One input as the classifier takes it, from blurr's forms: a text, a `(text, pair)` tuple or a row (a dict with
    the data's text columns, or blurr's `{"text": ...}`)."""
    if isinstance(item, dict):
        key = text_col if text_col in item else "text"
        if key not in item:
            from ..errors import MissingColumnError

            raise MissingColumnError(f"A row to classify needs its {text_col!r} column; it has {sorted(item)}.")
        item = (item[key], item[pair_col]) if pair_col and pair_col in item else item[key]
    if isinstance(item, (tuple, list)) and len(item) == 2:
        return {"text": str(item[0]), "text_pair": str(item[1])}
    return item


def blurr_predict_tokens(self: Learner, items: Any, aggregation_strategy: str = "simple", non_entity_label: str = "O",
                         slow_word_ids_func: Any = None) -> list[list[dict[str, Any]]]:
    """Entities per text: `entity_group`, `score`, `word`, `start`, `end` (character offsets into the text)."""
    texts, _ = _listed(items)
    strategy = "none" if aggregation_strategy == "token" else aggregation_strategy  # blurr's per-token name
    res = _predict(self, texts, "token_classification", aggregation_strategy=strategy)
    key = "entity" if strategy == "none" else "entity_group"
    return [[{key: e["label"], "score": e["score"], "word": e["text"], "start": e["start"], "end": e["end"]}
             for e in ents] for ents in res["entities"]]


def blurr_predict_answers(self: Learner, question_contexts: Any, slow_word_ids_func: Any = None) -> list[dict[str, Any]]:
    """Answers for `{"question", "context"}` dicts: `answer` (None when there is none), `start`, `end`, `score`."""
    items, _ = _listed(question_contexts)
    res = _predict(self, items, "question_answering")
    return [{"answer": a["answer"] if not a["no_answer"] else None, "start": a["start"] or 0, "end": a["end"] or 0,
             "score": a["score"]} for a in res["answers"]]


def _generation_task(learn: Any) -> str:
    task = _task(learn)
    if task is None:
        raise InvalidInputError("blurr_generate needs a learner from BlearnerForLM, BlearnerForSummarization or "
                                "BlearnerForTranslation (.from_data).")
    return task


def blurr_generate(self: Learner, items: Any, key: str = "generated_texts", **kwargs: Any) -> list[dict[str, Any]]:
    """Generate for a text or a list: per item `{key: text}`, or a list of texts with `num_return_sequences > 1`."""
    texts, _ = _listed(items)
    task = _generation_task(self)
    kwargs = {**getattr(self, "text_gen_kwargs", {}), **kwargs}  # from_data's text_gen_kwargs, then the call's
    n = int(kwargs.pop("num_return_sequences", 1) or 1)
    if n > 1:
        return [{key: _sequences(self, t, n, kwargs)} for t in texts]
    res = _predict(self, texts, task, level="low", **_generation_options(task, kwargs))
    outputs = next(v for k, v in res.items() if k != "sentences")
    return [{key: o} for o in outputs]


def _generation_options(task: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    """blurr's `generate` keywords as adapt's options: `max_length` (blurr: the whole length) becomes the number of
    tokens to produce; the task's declared options stay options, the rest go to `generate_kwargs`."""
    from ..tasks import get_task

    given = dict(kwargs)
    if "max_length" in given:
        given["num_tokens_to_produce"] = given.pop("max_length")
    declared = {o.name for o in get_task(task).predictor.options}
    extra = {k: v for k, v in given.items() if k not in declared}
    return {**{k: v for k, v in given.items() if k in declared}, **({"generate_kwargs": extra} if extra else {})}


def _sequences(learn: Any, text: str, n: int, kwargs: dict[str, Any]) -> list[str]:
    """`n` generated texts for one input (transformers' `num_return_sequences`, beams by default)."""
    from ..fastai.learner import _hf_model

    model, tok = _hf_model(learn), learn.dls.tokenizer
    dsets = learn.dls.task_datasets
    enc = tok(getattr(dsets, "prefix", "") + text, return_tensors="pt", truncation=True,
              max_length=getattr(dsets, "max_source_length", None) or 512).to(next(model.parameters()).device)
    given = dict(kwargs)
    new_tokens = given.pop("max_length", None) or given.pop("num_tokens_to_produce", None) or 32
    gen = {"num_beams": max(n, 1), **given, "max_new_tokens": new_tokens, "num_return_sequences": n}
    with torch.no_grad():
        out = model.eval().generate(**enc, **gen)
    start = 0 if model.config.is_encoder_decoder else enc["input_ids"].shape[1]
    return [tok.decode(o[start:], skip_special_tokens=True) for o in out]


def blurr_summarize(self: Learner, inp: Any, **kwargs: Any) -> list[dict[str, Any]]:
    return blurr_generate(self, inp, key="summary_texts", **kwargs)


def blurr_translate(self: Learner, inp: Any, **kwargs: Any) -> list[dict[str, Any]]:
    return blurr_generate(self, inp, key="translation_texts", **kwargs)


def blurr_fill_mask(self: Learner, inp: str, n_preds: int = 1, **kwargs: Any) -> list[str]:
    """The text with its first mask filled by each of the `n_preds` likeliest tokens."""
    res = _predict(self, [inp], "masked_language_modeling", level="low", top_k=n_preds)
    return [c["sequence"] for c in res["predictions"][0][0]]


LEARNER_METHODS: dict[str, Callable[..., Any]] = {
    "blurr_predict": blurr_predict,
    "blurr_predict_tokens": blurr_predict_tokens,
    "blurr_predict_answers": blurr_predict_answers,
    "blurr_generate": blurr_generate,
    "blurr_summarize": blurr_summarize,
    "blurr_translate": blurr_translate,
    "blurr_fill_mask": blurr_fill_mask,
}
