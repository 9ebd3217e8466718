"""`TaskSpec`: what a task is, declared once in its module and read by the engine, the CLI and the server.

A task module defines its datasets, tuner, predictor and `Easy*` classes on the task-agnostic engine and ends
with `TASKS = (TaskSpec(...),)`. The registry (`adapt.tasks`) collects these declarations; the tuner, the Easy
module, `adapt tune/predict/export/serve`, the REST routing and the top-level exports of `adapt` all come from
them, so adding a task is its module plus one registry line.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import WrongTaskError
from ..inference import Field

if TYPE_CHECKING:
    from ..data import TaskDatasets
    from ..easy import EasyBase
    from collections.abc import Callable

    from ..inference import HFPredictor, Predictor
    from ..tuner import Tuner

__all__ = ["Field", "TaskSpec", "declared", "spec_of"]

_DECLARED: list[TaskSpec] = []  # every TaskSpec built so far, in order (the modules imported so far declare them)


@dataclass(frozen=True, eq=False)
class TaskSpec:
    """A task's declaration.

    - `name`, `aliases`: the registry key (and manifest `task`) and the names the CLI also accepts.
    - `datasets`, `tuner`, `easy`, `predictor`: the task's classes; `verb` is the Easy method users call.
    - `auto_class`, `heads`: the transformers auto class it loads, and the architecture suffixes it serves.
    - `pipeline_tag`: the Hugging Face Hub's pipeline tag (and `transformers.pipeline` task) for its models.
    - `fields`: the input fields of one item (`text`, `text_pair`, `question`/`context`, ...).
    - `metrics`: the names of the default metrics, as `tune()`/`evaluate()` report them.
    - `fast_copies`: which deployable copies `export` may add (`"int8"`, `"onnx"`).
    - `flair`, `flair_predictor`: the flair model class a flair `.pt` file must hold, and its predictor.
    - `saved_as`, `variant`: when two registry tasks share one manifest task (causal and masked LM),
      the manifest task name and the manifest entries that pick this one.
    - `data_defaults`: dataset options this task always sets (`masked_lm=True`).
    - `data_forms`: the data the CLI's `adapt tune` takes: "csv", "jsonl", "folder", "conll".
    - `exports`: public names of the tuner's module besides the three classes, for `from adapt import ...`.
    """

    name: str
    summary: str
    datasets: type[TaskDatasets]
    tuner: type[Tuner]
    easy: type[EasyBase]
    predictor: type[HFPredictor]
    fields: tuple[Field, ...]
    auto_class: str
    heads: tuple[str, ...]
    verb: str = "tag_text"
    pipeline_tag: str | None = None
    aliases: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    fast_copies: frozenset[str] = frozenset()
    flair: str | None = None
    flair_predictor: Callable[[Any], Predictor] | None = None
    saved_as: str | None = None
    variant: Mapping[str, Any] = field(default_factory=dict)
    data_defaults: Mapping[str, Any] = field(default_factory=dict)
    data_forms: tuple[str, ...] = ("csv", "jsonl")
    exports: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Bind the task's classes to this declaration: `tuner.spec`, `easy.spec` and their `task` come from it.
        A class two specs share (the LM tuner trains causal and masked models) stays with the first."""
        for cls in (self.tuner, self.easy):
            if "task_spec" not in vars(cls):
                cls.task_spec = self  # type: ignore[union-attr]
                cls.task = self.name
        _DECLARED.append(self)

    @property
    def saved_task(self) -> str:
        """The `task` written to (and expected in) `adapt.json`."""
        return self.saved_as or self.name

    def matches_manifest(self, manifest: Mapping[str, Any]) -> bool:
        """True when a folder's `adapt.json` holds a model of this task."""
        if manifest.get("task") != self.saved_task:
            return False
        return all(bool(manifest.get(k, False)) == bool(v) for k, v in self.variant.items())

    def matches_architecture(self, architectures: list[str]) -> bool:
        """True when a plain transformers folder's `architectures` hold a head of this task (`is_task_head`)."""
        from ..modelio import is_task_head

        return any(is_task_head(a, self.auto_class, self.heads) for a in architectures)

    def __repr__(self) -> str:
        return f"TaskSpec({self.name!r})"


def spec_of(cls: type) -> TaskSpec:
    """The declaration bound to a tuner or Easy class (or to a class it derives from)."""
    spec = getattr(cls, "task_spec", None)
    if spec is None:
        raise WrongTaskError(f"{cls.__name__} belongs to no task: declare it in its module's TASKS = (TaskSpec(..., "
                             f"tuner=..., easy=...),) (adapt.tasks.base), or use a task's class.")
    return spec


def declared() -> tuple[TaskSpec, ...]:
    """The task declarations of the modules imported so far (no module is imported to find more)."""
    return tuple(_DECLARED)
