"""blurr's utilities on adapt: `get_hf_objects` (every generation's spelling), the task and architecture
enums, seeds, versions, and the "the model computed the loss" markers (`PreCalculated*Loss`)."""

from __future__ import annotations

import importlib
import os
import re
import sys
from enum import Enum
from typing import Any

import torch
from fastai.losses import BaseLoss, BCEWithLogitsLossFlat, CrossEntropyLossFlat
from fastai.torch_core import Module
from torch import nn

__all__ = [
    "BLURR",
    "BLURR_MODEL_HELPER",
    "HF_ARCHITECTURES",
    "HF_TASKS",
    "HF_TASKS_ALL",
    "HF_TASKS_AUTO",
    "NLP",
    "BlurrText",
    "BlurrUtil",
    "HF_PreCalculatedLoss",
    "ModelHelper",
    "MultiTargetLoss",
    "PreCalculatedBCELoss",
    "PreCalculatedCrossEntropyLoss",
    "PreCalculatedLoss",
    "PreCalculatedMSELoss",
    "Singleton",
    "get_hf_objects",
    "print_versions",
    "set_seed",
    "str_to_class",
    "str_to_type",
]

_TASKS = ("CausalLM", "LMHead", "MaskedLM", "MultipleChoice", "NextSentencePrediction", "PreTraining",
          "QuestionAnswering", "Seq2SeqLM", "SequenceClassification", "TableQuestionAnswering", "TokenClassification")
HF_TASKS_AUTO = Enum("HF_TASKS_AUTO", _TASKS)  # type: ignore[misc]
HF_TASKS_ALL = Enum("HF_TASKS_ALL", (*_TASKS, "Classification", "ConditionalGeneration", "Generation",  # type: ignore[misc]
                                     "LMHeadModel", "QuestionAnsweringSimple"))
HF_TASKS = HF_TASKS_ALL


def _architectures() -> list[str]:
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    return sorted(CONFIG_MAPPING_NAMES)


HF_ARCHITECTURES = Enum("HF_ARCHITECTURES", _architectures())  # type: ignore[misc]


class Singleton:
    """blurr's class decorator: the first call builds the instance, later calls return it."""

    def __init__(self, cls: type) -> None:
        self._cls, self._instance = cls, None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._instance is None:
            self._instance = self._cls(*args, **kwargs)
        return self._instance


def str_to_type(typename: str) -> type:
    """A transformers or fastai class by name."""
    for module in ("transformers", "fastai.text.all"):
        found = getattr(importlib.import_module(module), typename, None)
        if isinstance(found, type):
            return found
    from ..errors import InvalidChoiceError

    raise InvalidChoiceError(f"No transformers or fastai class is named {typename!r}.")


str_to_class = str_to_type


def print_versions(packages: str | list[str]) -> None:
    """Print `name: version` for each package (blurr's `print_versions`)."""
    for name in [packages] if isinstance(packages, str) else packages:
        sys.stdout.write(f"{name}: {importlib.import_module(name).__version__}\n")


def set_seed(seed_value: int = 42) -> None:
    """Seed Python, NumPy and torch (adapt's `set_seed`)."""
    from ..utils import set_seed as seed

    seed(seed_value)


def _model_cls(task: Any) -> Any:
    import transformers

    name = getattr(task, "name", task)
    cls = getattr(transformers, f"AutoModelFor{name}", None)
    if cls is None:
        from ..errors import InvalidChoiceError, unknown_name

        raise InvalidChoiceError(unknown_name("task", str(name), [t.name for t in HF_TASKS_ALL]))
    return cls


def _arch(model: Any) -> str:
    parts = type(model).__module__.split(".")
    return parts[2] if len(parts) > 2 and parts[0] == "transformers" else "unknown"


def get_hf_objects(pretrained_model_name_or_path: str | os.PathLike[str], model_cls: Any = None, config: Any = None,
                   tokenizer_cls: Any = None, config_kwargs: dict[str, Any] | None = None,
                   tokenizer_kwargs: dict[str, Any] | None = None, model_kwargs: dict[str, Any] | None = None,
                   cache_dir: str | os.PathLike[str] | None = None, task: Any = None) -> tuple[str, Any, Any, Any]:
    """(arch, config, tokenizer, model), as blurr returned them: `model_cls` (an `AutoModelFor...` class), or the
    2020 `task=HF_TASKS_AUTO.SequenceClassification`; byte-level BPE tokenizers get `add_prefix_space=True`."""
    import transformers

    name = str(pretrained_model_name_or_path)
    if config is None:
        config = transformers.AutoConfig.from_pretrained(name, cache_dir=cache_dir, **(config_kwargs or {}))
    elif isinstance(config, (str, os.PathLike)):
        config = transformers.AutoConfig.from_pretrained(config, cache_dir=cache_dir, **(config_kwargs or {}))
    tok_kwargs = dict(tokenizer_kwargs or {})
    if re.search("gpt2|roberta|bart|longformer", name, re.IGNORECASE):
        tok_kwargs = {"add_prefix_space": True, **tok_kwargs}
    tokenizer = (tokenizer_cls or transformers.AutoTokenizer).from_pretrained(name, cache_dir=cache_dir, **tok_kwargs)
    cls = model_cls or (_model_cls(task) if task is not None else transformers.AutoModel)
    model = cls.from_pretrained(name, config=config, cache_dir=cache_dir, **(model_kwargs or {}))
    return _arch(model), config, tokenizer, model


class BlurrUtil:
    """The 2020/2021 helper object (`BLURR_MODEL_HELPER`, `BLURR`, `NLP`): `get_hf_objects` and lookups."""

    def get_hf_objects(self, *args: Any, **kwargs: Any) -> tuple[str, Any, Any, Any]:
        return get_hf_objects(*args, **kwargs)

    def get_architectures(self) -> list[str]:
        return _architectures()

    def get_tasks(self, arch: str | None = None) -> list[str]:
        return sorted(_TASKS)

    def get_models(self, arch: str | None = None, task: str | None = None) -> list[str]:
        import transformers

        names = [n for n in dir(transformers) if (n[0].isupper() and "For" in n) or n.endswith("Model")]
        return sorted(n for n in names if (task is None or n.endswith(task)) and (arch is None or n.lower().startswith(arch)))

    def get_model_architecture(self, model_name_or_enum: Any) -> str:
        return str(getattr(model_name_or_enum, "name", model_name_or_enum)).split("For")[0].lower()


ModelHelper = BlurrText = BlurrUtil
BLURR_MODEL_HELPER = BLURR = NLP = BlurrUtil()


class PreCalculatedLoss(BaseLoss):
    """`loss_func=`: train on the loss the transformers model computed from the batch's labels (the callback hands
    it over); fastai still calls this for the value it shows, so it returns 0."""

    def __call__(self, inp: Any, targ: Any = None, **kwargs: Any) -> torch.Tensor:
        if getattr(self, "reduction", "mean") == "none":  # per-item losses (get_preds(with_loss=True), Interpretation)
            return super().__call__(inp, targ, **kwargs)
        return torch.tensor(0.0)


class PreCalculatedCrossEntropyLoss(PreCalculatedLoss, CrossEntropyLossFlat):
    """The model's own loss, with cross-entropy's activation and decodes (argmax)."""


class PreCalculatedBCELoss(PreCalculatedLoss, BCEWithLogitsLossFlat):
    """The model's own loss, with BCE's activation (sigmoid) and decodes (threshold)."""


class PreCalculatedMSELoss(PreCalculatedLoss):
    """The model's own loss for a regression head."""

    def __init__(self, *args: Any, axis: int = -1, floatify: bool = True, **kwargs: Any) -> None:
        super().__init__(nn.MSELoss, *args, axis=axis, floatify=floatify, is_2d=False, **kwargs)


HF_PreCalculatedLoss = PreCalculatedCrossEntropyLoss


class MultiTargetLoss(Module):
    """A weighted sum of one loss per output and target (QA's start and end)."""

    def __init__(self, loss_classes: tuple[Any, ...] = (CrossEntropyLossFlat, CrossEntropyLossFlat),
                 loss_classes_kwargs: tuple[dict[str, Any], ...] = ({}, {}), weights: tuple[float, ...] = (1, 1),
                 reduction: str = "mean") -> None:
        self.losses = [cls(**kw, reduction=reduction) for cls, kw in zip(loss_classes, loss_classes_kwargs, strict=True)]
        self.weights = list(weights)

    def forward(self, outputs: Any, *targets: Any) -> Any:
        return sum(w * f(o, t) for w, f, o, t in zip(self.weights, self.losses, outputs, targets, strict=True))

    def activation(self, outs: Any) -> Any:
        return [f.activation(o) for f, o in zip(self.losses, outs, strict=True)]

    def decodes(self, outs: Any) -> Any:
        return [f.decodes(o) for f, o in zip(self.losses, outs, strict=True)]
