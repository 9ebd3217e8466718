"""adapt: fine-tune and serve Hugging Face transformers with fastai.

`import adapt` is cheap: torch, transformers, fastai, flair and pandas load only when a name that needs
them is first used. The task classes (`SequenceClassificationTuner`, `EasyTokenTagger`, ...) come from the task
registry (`adapt.tasks`), so a new task module's classes are exported without editing this file.
"""

from __future__ import annotations

import importlib
from typing import Any

from .versions import __version__ as __version__
from .versions import check_versions

# names that are not a task's: module -> names, or None for all of a light module's `__all__` (the exceptions);
# tasks add theirs from the registry
_CORE: dict[str, tuple[str, ...] | None] = {
    "adapt.enums": ("DetailLevel", "LongText", "Strategy"),
    "adapt.errors": None,
    "adapt.utils": ("set_seed",),
    "adapt.data": ("TaskDatasets", "random_split"),
    "adapt.engine": ("AdaptiveDataLoaders",),
    "adapt.tuner": ("AdaptiveTuner", "Tuner"),
    "adapt.hub": None,
    "adapt.publish": ("PushResult", "push_to_hub"),
    "adapt.compat": None,
    "adapt.sentence_embeddings": (
        "EasySentenceEmbeddings",
        "EmbeddingPredictor",
        "SentenceEmbeddings",
        "SentencePooling",
        "load_embedder",
        "save_embedder",
    ),
    "adapt.tasks.embeddings": (
        "EasyDocumentEmbeddings",
        "EasyStackedEmbeddings",
        "EasyWordEmbeddings",
        "EmbeddingResult",
        "Pooling",
    ),
}


def _core_names(module: str) -> tuple[str, ...]:
    names = _CORE[module]
    return tuple(importlib.import_module(module).__all__) if names is None else names


def _exports() -> dict[str, str]:
    """Every public name -> the module defining it: the core names plus each registered task's classes."""
    from .tasks import all_tasks

    out = {name: module for module in _CORE for name in _core_names(module)}
    for spec in all_tasks().values():
        for cls in (spec.datasets, spec.tuner, spec.easy):
            out.setdefault(cls.__name__, cls.__module__)
        for name in spec.exports:
            out.setdefault(name, spec.tuner.__module__)
    return out


def __getattr__(name: str) -> Any:
    if name == "__all__":
        return ["__version__", *sorted(_exports())]
    module = next((m for m, names in _CORE.items() if names is not None and name in names), None)
    if module is None and not name.startswith("__"):
        module = _exports().get(name)
    if module is None:
        raise AttributeError(f"module 'adapt' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_exports()))


check_versions()  # one warning per dependency outside the tested versions (package metadata only)
