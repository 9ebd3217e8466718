"""The task registry: one line per task module. Each module ends with `TASKS = (TaskSpec(...), ...)`.

Everything task-shaped comes from here: `adapt`'s top-level exports, the CLI's `--task` choices, the server's
routing and `task_for_folder`. Further task modules join with `register("my_package.my_task")`, or for every
process (the CLI, `adapt serve`) with `ADAPT_TASK_MODULES=my_package.my_task,other.module`.
Importing this package does not import the task modules; the first lookup does (they are cheap to import).
"""

from __future__ import annotations

import importlib
import json
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidChoiceError, WrongTaskError, unknown_name

if TYPE_CHECKING:
    from ..modelio import ModelSource
    from .base import TaskSpec

__all__ = ["BUILTIN_TASK_MODULES", "all_tasks", "get_task", "register", "task_for_folder"]

BUILTIN_TASK_MODULES = (
    "adapt.tasks.sequence_classification",
    "adapt.tasks.token_classification",
    "adapt.tasks.question_answering",
    "adapt.tasks.language_modeling",
    "adapt.tasks.summarization",
    "adapt.tasks.translation",
)

_registry: dict[str, TaskSpec] = {}
_loaded = False
_lock = threading.RLock()


def _add_module(module: str, into: dict[str, TaskSpec] | None = None) -> list[TaskSpec]:
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        raise InvalidChoiceError(f"Cannot import task module {module!r} ({e}); check ADAPT_TASK_MODULES.") from e
    specs = list(getattr(mod, "TASKS", ()))
    if not specs:
        raise InvalidChoiceError(f"Task module {module!r} declares no TASKS = (TaskSpec(...),).")
    for spec in specs:
        _add(spec, _registry if into is None else into)
    return specs


def _add(spec: TaskSpec, into: dict[str, TaskSpec]) -> None:
    taken = {key: t for t in into.values() for key in (t.name, *t.aliases)}
    for key in (spec.name, *spec.aliases):
        other = taken.get(key)
        if other is not None and other is not spec and other.name != spec.name:
            raise InvalidChoiceError(f"Task name {key!r} of {spec.name!r} is already taken by {other.name!r}.")
    into[spec.name] = spec


def _ensure_loaded() -> None:
    """Import every task module once; the registry is published whole, so no caller sees part of it."""
    global _loaded
    if _loaded:
        return
    with _lock:
        if _loaded:
            return
        found: dict[str, TaskSpec] = {}
        extra = [m.strip() for m in os.environ.get("ADAPT_TASK_MODULES", "").split(",") if m.strip()]
        for module in (*BUILTIN_TASK_MODULES, *extra):
            _add_module(module, found)
        _registry.update(found)
        _loaded = True


def register(task: str | TaskSpec) -> list[TaskSpec]:
    """Add a task module (by import name) or one `TaskSpec` to the registry of this process."""
    _ensure_loaded()
    with _lock:
        if isinstance(task, str):
            return _add_module(task)
        _add(task, _registry)
        return [task]


def all_tasks() -> dict[str, TaskSpec]:
    """Every registered task by name, built-in ones first."""
    _ensure_loaded()
    return dict(_registry)


def _aliases() -> dict[str, TaskSpec]:
    out: dict[str, TaskSpec] = {}
    for spec in all_tasks().values():
        for key in (spec.name, *spec.aliases):
            out[key] = spec
    return out


def get_task(name: str) -> TaskSpec:
    """The task named `name` or one of its aliases (case-insensitive; `-` and `_` alike)."""
    table = _aliases()
    key = str(name).strip().lower().replace("-", "_")
    if key in table:
        return table[key]
    raise InvalidChoiceError(unknown_name("task", str(name), sorted(table)))


def __getattr__(name: str) -> Any:
    # names of the previous version: `TaskSpec` lived here, and `TASKS` was the registry dict
    if name == "TaskSpec":
        from .base import TaskSpec

        return TaskSpec
    if name == "TASKS":
        return all_tasks()
    raise AttributeError(f"module 'adapt.tasks' has no attribute {name!r}")


def task_for_folder(model_dir: str | os.PathLike[str] | ModelSource) -> TaskSpec:
    """The task of a saved model folder (or of its `ModelSource`, already resolved): from `adapt.json`, else from the
    HF `architectures` in `config.json`."""
    from ..modelio import ModelSource, resolve_model_source

    src = model_dir if isinstance(model_dir, ModelSource) else resolve_model_source(model_dir)
    if src.kind != "hf_dir":
        raise WrongTaskError(f"{str(model_dir)!r} is not a transformers model folder; serving needs one.")
    tasks = list(all_tasks().values())
    if src.manifest:
        found = next((t for t in tasks if t.matches_manifest(src.manifest)), None)
        if found is None:
            raise WrongTaskError(
                f"{str(model_dir)!r} holds a {src.manifest.get('task')!r} model; known tasks: {sorted(all_tasks())}. "
                "A task from another module needs ADAPT_TASK_MODULES."
            )
        return found
    archs = _architectures(Path(src.location))
    # a head named for its task first (BART's generation head also fills masks), then any head transformers maps
    found = next((t for t in tasks if any(a.endswith(t.heads) for a in archs)), None)
    found = found or next((t for t in tasks if t.matches_architecture(archs)), None)
    if found is None:
        heads = sorted({h for t in tasks for h in t.heads})
        raise WrongTaskError(f"{str(model_dir)!r} holds {archs or 'an unknown architecture'}; adapt serves {heads} models.")
    return found


def _architectures(folder: Path) -> list[str]:
    config: Any = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    return list(config.get("architectures") or []) if isinstance(config, dict) else []
