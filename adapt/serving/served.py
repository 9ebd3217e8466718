"""One served model name (`Served`), the token counter of its requests, and `ServeError`, the refusal every
protocol turns into its own error body with the status it carries."""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..inference import TEXT, Field

if TYPE_CHECKING:
    from ..tasks.base import TaskSpec

__all__ = ["ServeError", "Served", "TokenCounter", "model_metadata", "read_json"]


class ServeError(Exception):
    """A request refused with an HTTP `status` (400 bad body, 404 unknown model, 413 too large, 422 bad input, 503
    busy, 504 slow), `headers` for the answer and, where a protocol names it, the offending request field."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers, self.param = status, message, headers or {}, param


async def read_json(request: Any) -> Any:
    """A request's JSON body; one too large or too slow keeps its status (413, 408), bad JSON is a 400."""
    from fastapi import HTTPException

    try:
        return await request.json()
    except HTTPException as e:
        raise ServeError(e.status_code, str(e.detail)) from e
    except ValueError as e:
        raise ServeError(400, f"The body is not valid JSON ({e}).") from e


@dataclass
class Served:
    """One model name of the server: its task (`spec`; None for an embedding model), predictor and manifest."""

    name: str
    predictor: Any
    manifest: dict[str, Any]
    folder: str
    spec: TaskSpec | None = None
    adapter: bool = False  # a LoRA adapter served on the shared base
    counter: Any = field(default=None, repr=False)
    batch_group: str = ""  # models of one group share model calls (adapters that answer alike); default: its name

    def __post_init__(self) -> None:
        if self.counter is None:
            self.counter = TokenCounter(self.predictor)
        self.batch_group = self.batch_group or self.name

    @property
    def kind(self) -> str:
        """"task" for a task's model, "embeddings" for an embedding model."""
        return "task" if self.spec is not None else "embeddings"

    @property
    def task(self) -> str:
        return self.spec.name if self.spec is not None else "embeddings"

    @property
    def fields(self) -> tuple[Field, ...]:
        return self.spec.fields if self.spec is not None else TEXT

    @property
    def labels(self) -> list[str] | None:
        labels = getattr(self.predictor, "classes", None) or getattr(self.predictor, "tags", None)
        return list(labels) if labels else self.manifest.get("labels")

    @property
    def options(self) -> tuple[Any, ...]:
        return tuple(getattr(self.predictor, "options", ()))


class TokenCounter:
    """Counts a request's tokens (both texts of a pair) for `max_tokens`, before it is queued.

    It has a tokenizer of its own and a lock: a fast tokenizer is not safe to use from two threads at once, and the
    model thread uses the predictor's.
    """

    def __init__(self, predictor: Any) -> None:
        tokenizer = getattr(predictor, "tokenizer", None)
        self.tokenizer = copy.deepcopy(tokenizer) if tokenizer is not None else None
        self.lock = threading.Lock()

    def count(self, inputs: list[Any]) -> int:
        if self.tokenizer is None:
            return 0
        texts = [t for item in inputs for t in (item if isinstance(item, tuple) else (item,))]
        with self.lock:
            return sum(len(ids) for ids in self.tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"])


def model_metadata(served: Served) -> dict[str, Any]:
    """One served model's description: task, labels, input fields, parameters, folder and base model names."""
    from ..modelio import public_model_name

    manifest = served.manifest
    return {
        "name": served.name,
        "task": served.task,
        "labels": served.labels,
        "model_dir": public_model_name(served.folder),
        "base_model": public_model_name(manifest.get("base_model")),
        "adapter": served.adapter,
        "input_fields": [f.name for f in served.fields],
        "parameters": {o.name: {"type": o.type_name(), "default": _json_default(o.default), "help": o.help}
                       for o in served.options},
    }


def _json_default(value: Any) -> Any:
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)
