"""One module per task, each on the task-agnostic data, tuner and inference engine; and the task registry."""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import WrongTaskError

__all__ = ["TaskSpec", "TASKS", "task_for_folder"]


@dataclass(frozen=True)
class TaskSpec:
    """What serving and the CLI need to know about a task: its Easy class, HF head and input fields."""

    name: str
    module: str
    easy: str
    hf_head: str | tuple[str, ...]  # suffixes of the HF architectures this task serves
    fields: tuple[str, ...]  # keys of an object item in a REST body, mapped to a tuple input

    def easy_class(self) -> Any:
        """The task's `Easy*` class (imports the task module)."""
        return getattr(importlib.import_module(self.module), self.easy)

    @property
    def allow_pairs(self) -> bool:
        return len(self.fields) > 1


TASKS: dict[str, TaskSpec] = {
    "sequence_classification": TaskSpec(
        "sequence_classification",
        "adapt.tasks.sequence_classification",
        "EasySequenceClassifier",
        "ForSequenceClassification",
        ("text", "text_pair"),
    ),
    "token_classification": TaskSpec(
        "token_classification", "adapt.tasks.token_classification", "EasyTokenTagger", "ForTokenClassification", ("text",)
    ),
    "question_answering": TaskSpec(
        "question_answering",
        "adapt.tasks.question_answering",
        "EasyQuestionAnswering",
        "ForQuestionAnswering",
        ("question", "context"),
    ),
    # a plain transformers encoder-decoder folder has no task of its own; it is served as a summarizer
    "summarization": TaskSpec(
        "summarization",
        "adapt.tasks.summarization",
        "EasySummarizer",
        ("ForConditionalGeneration", "EncoderDecoderModel"),
        ("text",),
    ),
    "translation": TaskSpec(
        "translation", "adapt.tasks.translation", "EasyTranslator", ("ForConditionalGeneration", "EncoderDecoderModel"), ("text",)
    ),
}


def _heads() -> str:
    return ", ".join(sorted({h for t in TASKS.values() for h in ((t.hf_head,) if isinstance(t.hf_head, str) else t.hf_head)}))


def task_for_folder(model_dir: str | Path) -> TaskSpec:
    """The task of a saved model folder: from `adapt.json`, else from the HF `architectures` in `config.json`."""
    from ..modelio import read_manifest, resolve_model_source

    src = resolve_model_source(model_dir)
    if src.kind != "hf_dir":
        raise WrongTaskError(f"{str(model_dir)!r} is not a transformers model folder; serving needs one.")
    task = read_manifest(src.location).get("task")
    if task is None:
        config = json.loads((Path(src.location) / "config.json").read_text(encoding="utf-8"))
        archs = config.get("architectures") or []
        task = next((t.name for t in TASKS.values() for a in archs if a.endswith(t.hf_head)), None)
        if task is None:
            raise WrongTaskError(
                f"{str(model_dir)!r} holds {archs or 'an unknown architecture'}; adapt serves {_heads()} models."
            )
    if task not in TASKS:
        raise WrongTaskError(f"{str(model_dir)!r} holds a {task!r} model; known tasks: {sorted(TASKS)}.")
    return TASKS[task]
