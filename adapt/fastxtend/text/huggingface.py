"""fastxtend's Hugging Face compatibility (`fastxtend.text.huggingface`) on adapt, with its behaviour:

- `HuggingFaceLoader` wraps a PyTorch `DataLoader` over a tokenized `datasets.Dataset` so each batch is fastai's
  tuple (one dict of model inputs, labels included);
- `HuggingFaceCallback` wraps the transformers model (`HuggingFaceWrapper`) when the `Learner` is created, moves
  the batch's labels to fastai's targets and hands the model's logits to the loss; with `loss_func=HuggingFaceLoss()`
  the model's own loss trains it, and any other loss replaces it; `learn.hf_model` (and `learn.model.hf_model` while
  wrapped) is the transformers model, unwrapped after the fit unless `unwrap=False`.

What fastxtend stops at, adapt goes on with: `save_adapt_folder(learn, path, task, tokenizer)` writes the trained
model as an adapt folder (manifest, labels, checksums, card), which the Easy classes, `adapt predict`,
`adapt serve`, `adapt export` (int8/ONNX) and the Docker images load like any tuned model.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader as _TorchDataLoader

from ...engine import WrapsModel

__all__ = ["HuggingFaceCallback", "HuggingFaceLoader", "HuggingFaceLoss", "HuggingFaceWrapper", "save_adapt_folder"]


class HuggingFaceLoss:
    """`Learner(..., loss_func=HuggingFaceLoss())`: train on the transformers model's own loss (its labels stay in
    the batch); the value fastai sees comes from `HuggingFaceCallback`."""

    def __call__(self, pred: Any, *targets: Any, **kwargs: Any) -> torch.Tensor:
        return torch.tensor(0.0)


class HuggingFaceWrapper(nn.Module):
    """A transformers model called with one dict of inputs (entries its `forward` does not take are left out)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.hf_model = model
        self._forward_args = set(inspect.signature(model.forward).parameters)

    def forward(self, x: dict[str, Any]) -> Any:
        return self.hf_model(**{k: v for k, v in x.items() if k in self._forward_args})


class HuggingFaceCallback(WrapsModel):
    """The glue between a `Learner`, a transformers model and `HuggingFaceLoader` batches (see the module)."""

    run_valid = True
    wrapper = HuggingFaceWrapper

    def __init__(self, labels: str | None = "labels", loss: str = "loss", logits: str = "logits", unwrap: bool = True):
        self.label_key, self.loss_key, self.logit_key, self.unwrap = labels, loss, logits, unwrap

    @property
    def model_loss(self) -> bool:
        return isinstance(self.learn.loss_func, HuggingFaceLoss)

    def before_batch(self) -> None:
        self.loss_value: Any = None
        if self.label_key is None:
            self.learn.yb = ()
        elif self.model_loss:  # the model computes its loss from the labels in the batch
            self.learn.yb = (self.xb[0][self.label_key],)
        else:
            self.learn.yb = (self.xb[0].pop(self.label_key),)

    def after_pred(self) -> None:
        out = self.learn.pred
        if self.model_loss:
            self.loss_value = out[self.loss_key].float()
        self.learn.pred = out.get(self.logit_key) if hasattr(out, "get") else out

    def after_loss(self) -> None:
        if self.model_loss:
            self.learn.loss_grad = self.loss_value
            self.learn.loss = self.loss_value.clone().detach()
        elif self.label_key is not None and self.yb:
            self.xb[0][self.label_key] = self.yb[0]  # the batch as the loader gave it

    def after_fit(self) -> None:
        if self.unwrap and isinstance(self.learn.model, HuggingFaceWrapper):
            self.learn.model = self.learn.model.hf_model


class HuggingFaceLoader(_TorchDataLoader):
    """A PyTorch `DataLoader` whose batches are fastai tuples: `(dict_of_inputs,)`, labels inside the dict."""

    @property
    def bs(self) -> int:
        return int(self.batch_size or 1)

    def __iter__(self) -> Any:
        for batch in super().__iter__():
            yield (batch,)


def save_adapt_folder(learn: Any, path: str | os.PathLike[str], task: Any, tokenizer: Any,
                      labels: Sequence[str] | None = None, base_model_name: str | None = None,
                      card_data: dict[str, Any] | None = None) -> Path:
    """Write the learner's transformers model and `tokenizer` as an adapt folder of `task` (a registry name or
    alias, or a `TaskSpec`): weights, config with `labels` (else the config's own), `adapt.json` with checksums,
    and a model card (`adapt.fastai.save`). Returns the folder."""
    from ...fastai import save

    return save(learn, path, task, tokenizer, labels, base_model_name, card_data)
