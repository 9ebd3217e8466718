"""A fastai `Learner` over a transformers model, as adapt sees it: its task, its splitters, prediction through the
task's predictor (windows, batching and JSON as `Tuner.predict`), and the bridge to adapt: `tuner_from_learner`
and `save` (an adapt folder that Easy, `adapt predict`, `adapt serve`, `adapt export` and Docker load)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from ..engine import hf_layer_groups
from ..errors import InvalidInputError

if TYPE_CHECKING:
    from ..tasks.base import TaskSpec
    from ..tuner import Tuner

__all__ = ["hf_splitter", "layer_splitter", "predict", "save", "seq2seq_splitter", "task_of", "tuner_from_learner"]


def hf_splitter(model: nn.Module) -> list[list[nn.Parameter]]:
    """fastai `splitter=`: embeddings, lower encoder half, upper half, head (`freeze()` trains the head only).
    The model may be a transformers model or wrapped (`HFModel`, fastxtend's and blurr's wrappers)."""
    return hf_layer_groups(model)


def layer_splitter(chunks: int) -> Any:
    """A finer splitter: embeddings, the encoder's layers in `chunks` groups, head (`chunks=n_layers`: one per layer,
    for gradual unfreezing with `freeze_to`)."""
    return partial(hf_layer_groups, chunks=chunks)


def seq2seq_splitter(model: nn.Module) -> list[list[nn.Parameter]]:
    """fastai `splitter=` for encoder-decoder models (T5, BART, Marian): shared embeddings, encoder, decoder with
    the rest (a head tied to the embeddings has no weights of its own), so `freeze()` trains the decoder."""
    hf: Any = getattr(model, "hf_model", model)
    if not (hasattr(hf, "get_encoder") and hasattr(hf, "get_decoder")):
        return hf_layer_groups(model)
    seen: set[int] = set()
    groups: list[list[nn.Parameter]] = []
    for part in (hf.get_input_embeddings(), hf.get_encoder()):
        groups.append([p for p in part.parameters() if id(p) not in seen])
        seen.update(id(p) for p in part.parameters())
    groups.append([p for p in model.parameters() if id(p) not in seen])
    return [g for g in groups if g]


def _hf_model(learn: Any) -> Any:
    model = getattr(learn, "hf_model", None) or learn.model
    model = getattr(model, "module", model)  # data-parallel
    return getattr(model, "hf_model", model)


def task_of(learn: Any, task: Any = None) -> TaskSpec:
    """The task of `learn`: `task` (a registry name or alias, or a `TaskSpec`), else that of its dataloaders'
    datasets (a `TaskBlock` or `TaskDatasets.dataloaders()`)."""
    from ..tasks import all_tasks, get_task
    from ..tasks.base import TaskSpec

    if isinstance(task, TaskSpec):
        return task
    if task is not None:
        return get_task(str(task))
    known = getattr(learn.dls, "task_spec", None)  # a TaskBlock's
    if isinstance(known, TaskSpec):
        return known
    dsets = getattr(learn.dls, "task_datasets", None)
    kinds = [s for s in all_tasks().values() if dsets is not None and isinstance(dsets, s.datasets)
             and all(bool(getattr(dsets, k, False)) == bool(v) for k, v in s.variant.items())]
    kinds.sort(key=lambda s: type(dsets).__mro__.index(s.datasets))  # the nearest datasets class: a subclass's own task
    if not kinds:
        raise InvalidInputError(
            "Name the task (task='classification', ...): this Learner's dataloaders were not built by a TaskBlock or "
            f"TaskDatasets. Tasks: {sorted(all_tasks())}.")
    return kinds[0]


def tuner_from_learner(learn: Any, task: Any = None, **tuner_kwargs: Any) -> Tuner:
    """adapt's `Tuner` over a fastai `Learner`'s dataloaders (from a `TaskBlock` or `TaskDatasets`) and its model (the
    same weights, not a copy), with its training history: `predict`, `evaluate`, `save`, `export` and `push_to_hub`
    as after `tune`. `tuner_kwargs` go to the task's tuner (`base_model_name=`, task options)."""
    from ..tracking import recorded_history, recorded_losses

    spec = task_of(learn, task)
    if getattr(learn.dls, "task_datasets", None) is None:
        raise InvalidInputError("tuner_from_learner needs dataloaders that carry a tokenizer and the task's datasets (a "
                                "TaskBlock's, or TaskDatasets.dataloaders()); save a Learner without them with "
                                "adapt.fastai.save(learn, path, task=..., tokenizer=...).")
    model = _hf_model(learn)
    tuner = spec.tuner(learn.dls, model, device=next(model.parameters()).device, **tuner_kwargs)
    recorder = getattr(learn, "recorder", None)
    if recorder is not None and getattr(recorder, "values", None):
        tuner._history, tuner._losses = recorded_history(recorder), recorded_losses(recorder)
    return tuner


def predict(learn: Any, inputs: Any, task: Any = None, tokenizer: Any = None, labels: Sequence[str] | None = None,
            bs: int = 32, detail_level: str = "low", **options: Any) -> dict[str, Any]:
    """Predict with a fastai `Learner` through the task's predictor: one input or a list, in the forms the task's
    server takes (texts, or `{"question": ..., "context": ...}` items), with the same windows, batching and JSON-safe
    dict as `Tuner.predict` and the task's `Easy*` verb (`detail_level=`, `bs=` and the task's options)."""
    from ..inference import predict_json

    spec = task_of(learn, task)
    if getattr(learn.dls, "task_datasets", None) is not None and tokenizer is None:
        predictor = tuner_from_learner(learn, spec).predictor()
    else:
        tok = tokenizer if tokenizer is not None else getattr(learn.dls, "tokenizer", None)
        if tok is None:
            raise InvalidInputError("Pass tokenizer=: this Learner's dataloaders carry none.")
        model = _hf_model(learn)
        if labels is not None:  # the names of the model's outputs, as `save` writes them into its config
            from ..publish import name_labels

            name_labels(model.config, labels)
        predictor = spec.predictor.from_model(model, tok, {"labels": [str(c) for c in labels]} if labels is not None else {})
    return predict_json(predictor, inputs, spec.fields, bs, detail_level, options)


def save(learn: Any, path: str | os.PathLike[str], task: Any = None, tokenizer: Any = None,
         labels: Sequence[str] | None = None, base_model_name: str | None = None,
         card_data: dict[str, Any] | None = None) -> Path:
    """Write a fastai `Learner`'s transformers model as an adapt folder (weights, tokenizer, `adapt.json` with
    checksums, a model card): the durable format, which Easy, `adapt predict`, `adapt serve`, `adapt export` and the
    Docker images load. With a `TaskBlock`'s or `TaskDatasets`' dataloaders it is `Tuner.save` (the data settings and
    training history included); otherwise name the `task` and pass the `tokenizer` (and the `labels` in output order)."""
    if getattr(learn.dls, "task_datasets", None) is not None and tokenizer is None:
        return tuner_from_learner(learn, task, base_model_name=base_model_name).save(path, card_data=card_data)
    from ..publish import save_model

    if tokenizer is None:
        raise InvalidInputError("Pass tokenizer=: this Learner's dataloaders carry none.")
    return save_model(_hf_model(learn), tokenizer, path, task_of(learn, task), labels, base_model_name, card_data)
